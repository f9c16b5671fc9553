"""GRU and simple RNN layers for test/tflite.gru.peer.test.ts: the sources modelbridge writes to .tflite.

python tflite_gru_peers.py make OUT_DIR
    torch.nn.GRU / nn.RNN (forward and bidirectional, seeded weights) exported with
    torch.onnx.export (dynamo=False, opset 17; onnxruntime checked against torch), and Keras 3
    GRU, SimpleRNN and Bidirectional layers converted with tf.lite.TFLiteConverter (WHILE loops,
    REVERSE_V2 for the backward half; LiteRT checked against Keras). Writes OUT_DIR/<case>.onnx
    or .tflite, <case>.in.npz (x) and <case>.out.npz (torch's or Keras's outputs, by the model's
    output names); prints a JSON list of {name, file, outputs}.

    It also writes torch_lstm_dynamic / torch_gru_dynamic.onnx: nn.LSTM / nn.GRU (batch_first)
    exported with a dynamic batch axis, and keras_bigru_dynamic/ (a Keras Bidirectional GRU and
    Dense saved with model.export, batch None), with inputs x1 (batch 1) and x3 (batch 3) and
    torch's or Keras's outputs y1, y3.

python tflite_gru_peers.py resize JOBS.json
    JOBS.json: a list of [model.tflite, inputs.npz, outputs.npz]; for each array in inputs.npz
    (x1, x3), resize_tensor_input of the model's one input to its shape, allocate_tensors, invoke,
    and store the one output as y1, y3. Prints per job the input's shape_signature.

LiteRT runs what modelbridge writes with `python tflite_rnn_peers.py run JOBS.json`.
"""
import contextlib
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np

SEED = 20261217
T, B, F, H = 6, 2, 3, 4


def close(got, want, what):
    err = float(np.abs(got - want).max())
    if not err <= 1e-5 * max(1.0, float(np.abs(want).max())):
        raise SystemExit("%s differs by %g" % (what, err))


def torch_cases(out_dir):
    import onnx
    import onnxruntime as ort
    import torch
    import torch.nn as nn
    ort.set_default_logger_severity(3)
    torch.manual_seed(SEED)

    class Wrap(nn.Module):
        def __init__(self, rnn, with_h):
            super().__init__()
            self.rnn = rnn
            self.with_h = with_h

        def forward(self, x):
            y, h = self.rnn(x)
            return (y, h) if self.with_h else y

    specs = {
        # name: (class, kwargs, also return h_n)
        "torch_gru": (nn.GRU, {"batch_first": True}, False),
        "torch_gru_bi": (nn.GRU, {"bidirectional": True}, True),
        "torch_rnn": (nn.RNN, {}, False),
        "torch_rnn_bi": (nn.RNN, {"bidirectional": True, "nonlinearity": "relu"}, True),
    }
    cases = []
    for name, (cls, kwargs, with_h) in specs.items():
        model = Wrap(cls(F, H, **kwargs), with_h).eval()
        shape = (B, T, F) if kwargs.get("batch_first") else (T, B, F)
        x = torch.randn(*shape)
        with torch.no_grad():
            want = model(x)
        want = [t.numpy() for t in (want if with_h else (want,))]
        names = ["y", "h"][: len(want)]
        path = os.path.join(out_dir, name + ".onnx")
        torch.onnx.export(model, (x,), path, opset_version=17, dynamo=False, input_names=["x"], output_names=names)
        got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})
        for g, w, n in zip(got, want, names):
            close(g, w, "%s: onnxruntime vs torch (%s)" % (name, n))
        ops = sorted({n.op_type for n in onnx.load(path).graph.node})
        np.savez(os.path.join(out_dir, name + ".in.npz"), x=x.numpy())
        np.savez(os.path.join(out_dir, name + ".out.npz"), **dict(zip(names, want)))
        cases.append({"name": name, "file": path, "outputs": names, "ops": ops})
    return cases


def dynamic_cases(out_dir):
    import onnxruntime as ort
    import torch
    import torch.nn as nn
    ort.set_default_logger_severity(3)
    torch.manual_seed(SEED + 1)

    class First(nn.Module):
        def __init__(self, rnn):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):
            return self.rnn(x)[0]

    cases = []
    for name, cls in (("torch_lstm_dynamic", nn.LSTM), ("torch_gru_dynamic", nn.GRU)):
        model = First(cls(F, H, batch_first=True)).eval()
        xs = {"x1": torch.randn(1, T, F), "x3": torch.randn(3, T, F)}
        path = os.path.join(out_dir, name + ".onnx")
        torch.onnx.export(model, (xs["x3"],), path, opset_version=17, dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        want = {}
        for k, x in xs.items():
            with torch.no_grad():
                want["y" + k[1:]] = model(x).numpy()
            close(session.run(None, {"x": x.numpy()})[0], want["y" + k[1:]], "%s: onnxruntime vs torch (%s)" % (name, k))
        np.savez(os.path.join(out_dir, name + ".in.npz"), **{k: v.numpy() for k, v in xs.items()})
        np.savez(os.path.join(out_dir, name + ".out.npz"), **want)
        cases.append({"name": name, "file": path, "outputs": ["y"]})
    # A Keras 3 source with an unknown batch: Bidirectional(GRU) and a Dense head saved with
    # model.export (a SavedModel whose While loops modelbridge lifts to GRU nodes).
    import keras
    keras.utils.set_random_seed(SEED + 2)
    L = keras.layers
    inp = keras.Input((T, F), name="x")
    model = keras.Model(inp, L.Dense(2)(L.Bidirectional(L.GRU(H))(inp)))
    rng = np.random.default_rng(SEED + 2)
    xs = {"x1": rng.standard_normal((1, T, F)).astype(np.float32), "x3": rng.standard_normal((3, T, F)).astype(np.float32)}
    path = os.path.join(out_dir, "keras_bigru_dynamic")
    with contextlib.redirect_stdout(sys.stderr):
        model.export(path, verbose=False)
    np.savez(path + ".in.npz", **xs)
    np.savez(path + ".out.npz", **{"y" + k[1:]: model(x).numpy() for k, x in xs.items()})
    cases.append({"name": "keras_bigru_dynamic", "file": path, "outputs": ["y"]})
    return cases


def resize(jobs_path):
    from ai_edge_litert.interpreter import Interpreter
    results = []
    for model, inputs, outputs in json.load(open(jobs_path)):
        try:
            it = Interpreter(model_path=model)
            inp = it.get_input_details()[0]
            out = it.get_output_details()[0]
            feeds = np.load(inputs)
            got = {}
            for k in feeds.files:
                it.resize_tensor_input(inp["index"], list(feeds[k].shape))
                it.allocate_tensors()
                it.set_tensor(inp["index"], feeds[k])
                it.invoke()
                got["y" + k[1:]] = it.get_tensor(out["index"])
            np.savez(outputs, **got)
            results.append({"model": model, "signature": inp["shape_signature"].tolist(), "ops": sorted({o["op_name"] for o in it._get_ops_details()})})
        except Exception as e:  # reported per job: the test names the file
            results.append({"model": model, "error": str(e)[-2000:]})
    print(json.dumps(results))


def keras_cases(out_dir):
    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    L = keras.layers
    specs = {
        "keras_gru": lambda: L.GRU(H, return_sequences=True),
        "keras_rnn": lambda: L.SimpleRNN(H, return_sequences=True),
        "keras_bigru": lambda: L.Bidirectional(L.GRU(H, return_sequences=True)),
        "keras_birnn": lambda: L.Bidirectional(L.SimpleRNN(3)),
    }
    cases = []
    for name, make_layer in specs.items():
        layer = make_layer()
        model = keras.Sequential([keras.Input((T, F), batch_size=B), layer])
        # Random biases too (Keras starts them at zero).
        layer.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in layer.get_weights()])
        x = rng.standard_normal((B, T, F)).astype(np.float32)
        want = model(x).numpy()
        path = os.path.join(out_dir, name + ".tflite")
        # Keras prints "Saved artifact at ..." on stdout while converting; stdout carries the JSON.
        with open(path, "wb") as f, contextlib.redirect_stdout(sys.stderr):
            f.write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        it = Interpreter(model_path=path)
        key = next(iter(it.get_signature_list()))
        sig = it.get_signature_list()[key]
        got = it.get_signature_runner(key)(**{sig["inputs"][0]: x})
        out = sig["outputs"][0]
        close(got[out], want, "%s: LiteRT vs Keras" % name)
        ops = sorted({o["op_name"] for o in it._get_ops_details()})
        np.savez(os.path.join(out_dir, name + ".in.npz"), x=x)
        np.savez(os.path.join(out_dir, name + ".out.npz"), **{out: want})
        cases.append({"name": name, "file": path, "outputs": [out], "ops": ops})
    return cases


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        print(json.dumps(torch_cases(sys.argv[2]) + keras_cases(sys.argv[2]) + dynamic_cases(sys.argv[2])))
    elif len(sys.argv) == 3 and sys.argv[1] == "resize":
        resize(sys.argv[2])
    else:
        raise SystemExit(__doc__)
