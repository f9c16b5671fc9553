"""Keras LSTMs as TFLiteConverter fuses them (UNIDIRECTIONAL_SEQUENCE_LSTM), for test/tflite.rnn.peer.test.ts.

python tflite_rnn_peers.py make OUT_DIR
    builds seeded Keras LSTM layers (return_sequences True, False, and two stacked), converts
    each with tf.lite.TFLiteConverter, runs the .tflite in LiteRT on a seeded input and checks
    LiteRT against Keras itself (1e-5). Writes OUT_DIR/<case>.tflite, <case>.in.npz (signature
    input keys) and <case>.out.npz (LiteRT's outputs by signature key); prints a JSON list of the
    cases with the ops LiteRT ran.

python tflite_rnn_peers.py run JOBS.json
    JOBS.json: a list of [model.tflite, inputs.npz, outputs.npz]; runs each in LiteRT through its
    signature (inputs by position) and writes the outputs by signature key; prints the ops each ran.

The make step also writes while_rnn/while_gru/while_lstm/while_gru_v1.tflite (Keras 3's
SimpleRNN, GRU, LSTM and a reset_after=False GRU as the converter writes them directly: WHILE
loops; LiteRT's outputs checked against Keras) and onnx_lstm.onnx: an ONNX LSTM (forward, one layer, default
activations, random weights and biases, time-major X [6, 2, 4], Y [6, 1, 2, 5]) built with
onnx.helper, with onnxruntime's Y in onnx_lstm.out.npz.

Why not TFLiteConverter.from_keras_model(keras.Sequential([LSTM])): Keras 3's LSTM traces to a
While loop, which the converter keeps as a WHILE op; the fused op comes from the converter's
composite-function pass (ConvertKerasLSTMLayer in tensorflow/compiler/mlir/lite/utils/lstm_utils.cc),
which recognises a function marked api_implements="lstm_<id>" with Keras 2's standard_lstm
arguments (inputs, init_h, init_c, kernel, recurrent_kernel, bias) and five results. Keras 2
wrapped its LSTM in exactly such a function; here the Keras 3 layer's weights go through one, and
the check against the Keras layer's own output shows it is the same LSTM.
"""
import contextlib
import json
import os
import sys
import uuid
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np

SEED = 20261203
B, T, F = 2, 7, 3


def standard_lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
    """Keras 2's standard_lstm (batch-major): Keras's gate order i, f, c, o in the kernel's columns."""
    import tensorflow as tf
    xs = tf.transpose(inputs, [1, 0, 2])

    def step(carry, x):
        h, c = carry
        z = tf.matmul(x, kernel) + tf.matmul(h, recurrent_kernel) + bias
        i, f, g, o = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return (tf.sigmoid(o) * tf.tanh(c), c)

    hs, cs = tf.scan(step, xs, initializer=(init_h, init_c))
    return hs[-1], tf.transpose(hs, [1, 0, 2]), hs[-1], cs[-1], tf.constant(1.0)


def fused_lstm():
    import tensorflow as tf
    attributes = {"api_implements": "lstm_" + str(uuid.uuid4()), "api_preferred_device": "CPU", "time_major": False, "go_backwards": False}
    return tf.function(standard_lstm, experimental_attributes=attributes, autograph=False)


def make(out_dir):
    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    specs = {"lstm_seq": [(5, True)], "lstm_last": [(6, False)], "lstm_stacked": [(5, True), (4, False)]}
    cases = []
    for name, layers in specs.items():
        klayers = [keras.layers.LSTM(units, return_sequences=seq) for units, seq in layers]
        model = keras.Sequential([keras.Input((T, F), batch_size=B), *klayers])
        for layer in klayers:  # random biases too (Keras starts them at 0 and 1)
            layer.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in layer.get_weights()])
        x = rng.standard_normal((B, T, F)).astype(np.float32)
        want = model(x).numpy()
        fns = [fused_lstm() for _ in klayers]

        class Module(tf.Module):
            def __init__(self):
                super().__init__()
                self.weights_ = [[tf.Variable(w) for w in layer.get_weights()] for layer in klayers]

            @tf.function(input_signature=[tf.TensorSpec([B, T, F], tf.float32, name="x")])
            def serve(self, x):
                y = x
                for (units, seq), fn, ws in zip(layers, fns, self.weights_):
                    zeros = tf.zeros([B, units])
                    last, outputs, _, _, _ = fn(y, zeros, zeros, *[tf.convert_to_tensor(w) for w in ws])
                    y = outputs if seq else last
                return {"y": y}

        module = Module()
        saved = os.path.join(out_dir, name + "_savedmodel")
        tf.saved_model.save(module, saved, signatures=module.serve.get_concrete_function())
        path = os.path.join(out_dir, name + ".tflite")
        with open(path, "wb") as f:
            f.write(tf.lite.TFLiteConverter.from_saved_model(saved).convert())
        it = Interpreter(model_path=path)
        got = it.get_signature_runner()(x=x)
        err = float(np.abs(got["y"] - want).max())
        if not err <= 1e-5 * max(1.0, float(np.abs(want).max())):
            raise SystemExit("%s: LiteRT differs from Keras by %g" % (name, err))
        np.savez(os.path.join(out_dir, name + ".in.npz"), x=x)
        np.savez(os.path.join(out_dir, name + ".out.npz"), **{k: np.asarray(v) for k, v in got.items()})
        ops = sorted({o["op_name"] for o in it._get_ops_details()})
        cases.append({"name": name, "file": path, "ops": ops, "keras_vs_litert": err})
    cases.append(onnx_lstm(out_dir, rng))
    # Keras 3's recurrent layers converted directly: WHILE loops (random biases too). The GRU
    # with reset_after=False is one modelbridge does not lift (the test checks its one-line refusal).
    direct = {
        "while_rnn": keras.layers.SimpleRNN(5, return_sequences=True),
        "while_gru": keras.layers.GRU(4),
        "while_lstm": keras.layers.LSTM(5, return_sequences=True),
        "while_gru_v1": keras.layers.GRU(4, reset_after=False),
    }
    for name, layer in direct.items():
        model = keras.Sequential([keras.Input((T, F), batch_size=B), layer])
        layer.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in layer.get_weights()])
        x = rng.standard_normal((B, T, F)).astype(np.float32)
        want = model(x).numpy()
        path = os.path.join(out_dir, name + ".tflite")
        # Keras prints "Saved artifact at ..." on stdout while converting; stdout carries the JSON.
        with open(path, "wb") as f, contextlib.redirect_stdout(sys.stderr):
            f.write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        it = Interpreter(model_path=path)
        key = next(iter(it.get_signature_list()))
        runner = it.get_signature_runner(key)
        got = runner(**{it.get_signature_list()[key]["inputs"][0]: x})
        y = next(iter(got.values()))
        err = float(np.abs(y - want).max())
        if not err <= 1e-5 * max(1.0, float(np.abs(want).max())):
            raise SystemExit("%s: LiteRT differs from Keras by %g" % (name, err))
        np.savez(os.path.join(out_dir, name + ".in.npz"), x=x)
        np.savez(os.path.join(out_dir, name + ".out.npz"), y=y)
        ops = sorted({o["op_name"] for o in it._get_ops_details()})
        cases.append({"name": name, "file": path, "ops": ops, "keras_vs_litert": err})
    print(json.dumps(cases))


def onnx_lstm(out_dir, rng):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    steps, batch, features, hidden = 6, 2, 4, 5
    w = (rng.standard_normal((1, 4 * hidden, features)) * 0.5).astype(np.float32)
    r = (rng.standard_normal((1, 4 * hidden, hidden)) * 0.5).astype(np.float32)
    b = (rng.standard_normal((1, 8 * hidden)) * 0.5).astype(np.float32)
    node = helper.make_node("LSTM", ["x", "W", "R", "B"], ["y"], hidden_size=hidden, direction="forward")
    graph = helper.make_graph(
        [node], "lstm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [steps, batch, features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [steps, 1, batch, hidden])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path = os.path.join(out_dir, "onnx_lstm.onnx")
    onnx.save(model, path)
    x = rng.standard_normal((steps, batch, features)).astype(np.float32)
    y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.savez(os.path.join(out_dir, "onnx_lstm.in.npz"), x=x)
    np.savez(os.path.join(out_dir, "onnx_lstm.out.npz"), y=y)
    return {"name": "onnx_lstm", "file": path, "ops": ["LSTM"]}


def run(jobs_path):
    from ai_edge_litert.interpreter import Interpreter
    results = []
    for model, inputs, outputs in json.load(open(jobs_path)):
        try:
            it = Interpreter(model_path=model)
            key = next(iter(it.get_signature_list()))
            names = it.get_signature_list()[key]["inputs"]
            feeds = np.load(inputs)
            args = {n: feeds[k] for n, k in zip(names, feeds.files)}
            got = it.get_signature_runner(key)(**args)
            np.savez(outputs, **{k: np.asarray(v) for k, v in got.items()})
            results.append({"model": model, "ops": sorted({o["op_name"] for o in it._get_ops_details()})})
        except Exception as e:  # reported per job: the test names the file
            results.append({"model": model, "error": str(e)[-2000:]})
    print(json.dumps(results))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "run":
        run(sys.argv[2])
    else:
        raise SystemExit(__doc__)
