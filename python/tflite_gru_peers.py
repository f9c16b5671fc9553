"""GRU and simple RNN layers for test/tflite.gru.peer.test.ts: the sources modelbridge writes to .tflite.

python tflite_gru_peers.py make OUT_DIR
    torch.nn.GRU / nn.RNN (forward and bidirectional, seeded weights) exported with
    torch.onnx.export (dynamo=False, opset 17; onnxruntime checked against torch), and Keras 3
    GRU, SimpleRNN and Bidirectional layers converted with tf.lite.TFLiteConverter (WHILE loops,
    REVERSE_V2 for the backward half; LiteRT checked against Keras). Writes OUT_DIR/<case>.onnx
    or .tflite, <case>.in.npz (x) and <case>.out.npz (torch's or Keras's outputs, by the model's
    output names); prints a JSON list of {name, file, outputs}.

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
        print(json.dumps(torch_cases(sys.argv[2]) + keras_cases(sys.argv[2])))
    else:
        raise SystemExit(__doc__)
