"""Peers for recurrent models over a sequence length the graph leaves open (test/while-export.peer.test.ts).

  build OUT    torch.nn.LSTM and GRU (2 layers, bidirectional, batch_first, random weights) as
               modelbridge bundles (OUT/torch-<kind>/bundle.safetensors), and Keras 3 GRU and
               LSTM classifiers converted by tf2onnx (OUT/keras-<kind>/model.onnx), each with
               inputs and torch's / Keras's outputs at two sequence lengths (ref-<T>.npz; the
               torch ones also as ref-<T>.json: [x, outputs...] as {shape, values}).
  check DIR KIND FILE [KIND FILE ...]
               runs written files in TensorFlow (KIND savedmodel: tf.saved_model.load and its
               serving_default signature; graphdef: a TF1 session) on every DIR/ref-*.npz and
               prints one JSON line per file: the worst relative error per length, and the While
               loops and functions the file holds.
"""
import json
import os
import sys

import numpy as np

LENGTHS = (3, 7)


def _save_refs(d, run, shape_of):
    rng = np.random.default_rng(7)
    for t in LENGTHS:
        x = rng.standard_normal(shape_of(t)).astype(np.float32)
        outs = run(x)
        np.savez(os.path.join(d, f"ref-{t}.npz"), x=x, **{f"out_{i}": o for i, o in enumerate(outs)})
        # The same as JSON, for the TF.js check in Node.
        arrays = [x, *outs]
        with open(os.path.join(d, f"ref-{t}.json"), "w") as f:
            json.dump([{"shape": list(a.shape), "values": [float(v) for v in a.ravel()]} for a in arrays], f)


def build(out):
    import torch

    sys.path.insert(0, os.path.dirname(__file__))
    import modelbridge_spec

    torch.manual_seed(0)
    for kind in ("LSTM", "GRU"):
        d = os.path.join(out, f"torch-{kind.lower()}")
        os.makedirs(d, exist_ok=True)
        m = getattr(torch.nn, kind)(input_size=4, hidden_size=6, num_layers=2, batch_first=True, bidirectional=True).eval()
        modelbridge_spec.save_bundle(m, os.path.join(d, "bundle.safetensors"))

        def run(x, m=m):
            with torch.no_grad():
                r = m(torch.from_numpy(x))
            y, state = r
            states = list(state) if isinstance(state, tuple) else [state]
            return [y.numpy()] + [s.numpy() for s in states]

        _save_refs(d, run, lambda t: (2, t, 4))

    import keras
    import tf2onnx.convert

    keras.utils.set_random_seed(0)
    d = os.path.join(out, "keras-gru")
    os.makedirs(d, exist_ok=True)
    # Keras 3's GRU, which tf2onnx leaves as a Loop of the cell (as the zoo's keras-gru), at a
    # fixed length (the lifted node then unrolls).
    m = keras.Sequential([keras.Input((5, 4), name="x"), keras.layers.GRU(6), keras.layers.Dense(3)])
    m.export(os.path.join(d, "saved"), verbose=False)
    argv = sys.argv
    sys.argv = ["tf2onnx.convert", "--saved-model", os.path.join(d, "saved"), "--output", os.path.join(d, "model.onnx"), "--opset", "17"]
    try:
        tf2onnx.convert.main()
    finally:
        sys.argv = argv
    x = np.random.default_rng(3).standard_normal((2, 5, 4)).astype(np.float32)
    np.savez(os.path.join(d, "ref-5.npz"), x=x, out_0=np.asarray(m(x)))
    print(json.dumps({"ok": True}))


def _run_tf(kind, path, x):
    import tensorflow as tf

    if kind == "savedmodel":
        fn = tf.saved_model.load(path).signatures["serving_default"]
        name = list(fn.structured_input_signature[1])[0]
        out = fn(**{name: tf.constant(x)})
        return [v.numpy() for _, v in sorted(out.items())], []
    graph_def = tf.compat.v1.GraphDef()
    with open(path, "rb") as f:
        graph_def.ParseFromString(f.read())
    consumed = {i.lstrip("^").split(":")[0] for n in graph_def.node for i in n.input}
    sinks = [n.name for n in graph_def.node if n.name not in consumed and n.op not in ("NoOp", "Const", "Placeholder")]
    (placeholder,) = [n.name for n in graph_def.node if n.op == "Placeholder"]
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        values = sess.run([s + ":0" for s in sinks], {graph.get_tensor_by_name(placeholder + ":0"): x})
    return values, [n.op for n in graph_def.node if n.op in ("While", "StatelessWhile")]


def check(kind, path, d):
    import tensorflow as tf

    result = {"errors": {}, "loops": 0, "functions": []}
    for f in sorted(os.listdir(d)):
        if not (f.startswith("ref-") and f.endswith(".npz")):
            continue
        ref = np.load(os.path.join(d, f))
        want = [ref[k] for k in sorted(ref.files) if k.startswith("out_")]
        got, loops = _run_tf(kind, path, ref["x"])
        result["loops"] = len(loops) if kind == "graphdef" else result["loops"]
        # Outputs matched by shape and values (their names differ between the formats).
        worst = 0.0
        left = list(got)
        for w in want:
            best = None
            for i, g in enumerate(left):
                if g.shape == w.shape:
                    e = float(np.max(np.abs(g - w) / np.maximum(1, np.abs(w)))) if w.size else 0.0
                    if best is None or e < best[0]:
                        best = (e, i)
            if best is None:
                worst = float("inf")
                continue
            worst = max(worst, best[0])
            left.pop(best[1])
        result["errors"][f[4:-4]] = worst
    if kind == "savedmodel":
        from tensorflow.core.protobuf import saved_model_pb2

        sm = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as fh:
            sm.ParseFromString(fh.read())
        g = sm.meta_graphs[0].graph_def
        result["loops"] = sum(n.op in ("While", "StatelessWhile") for n in g.node)
        result["functions"] = sorted(fn.signature.name for fn in g.library.function)
    else:
        graph_def = tf.compat.v1.GraphDef()
        with open(path, "rb") as fh:
            graph_def.ParseFromString(fh.read())
        result["functions"] = sorted(fn.signature.name for fn in graph_def.library.function)
    print(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if sys.argv[1] == "build":
        build(sys.argv[2])
    elif sys.argv[1] == "check":
        pairs = sys.argv[3:]
        for k in range(0, len(pairs), 2):
            check(pairs[k], pairs[k + 1], sys.argv[2])
    else:
        raise SystemExit(f"unknown command {sys.argv[1]}")
