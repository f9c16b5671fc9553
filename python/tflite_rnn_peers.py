"""Keras LSTMs as TFLiteConverter fuses them (UNIDIRECTIONAL_SEQUENCE_LSTM), for test/tflite.rnn.peer.test.ts.

python tflite_rnn_peers.py make OUT_DIR
    builds seeded Keras LSTM layers (return_sequences True, False, and two stacked), converts
    each with tf.lite.TFLiteConverter, runs the .tflite in LiteRT on a seeded input and checks
    LiteRT against Keras itself (1e-5). Writes OUT_DIR/<case>.tflite, <case>.in.npz (signature
    input keys) and <case>.out.npz (LiteRT's outputs by signature key); prints a JSON list of the
    cases with the ops LiteRT ran.

Why not TFLiteConverter.from_keras_model(keras.Sequential([LSTM])): Keras 3's LSTM traces to a
While loop, which the converter keeps as a WHILE op; the fused op comes from the converter's
composite-function pass (ConvertKerasLSTMLayer in tensorflow/compiler/mlir/lite/utils/lstm_utils.cc),
which recognises a function marked api_implements="lstm_<id>" with Keras 2's standard_lstm
arguments (inputs, init_h, init_c, kernel, recurrent_kernel, bias) and five results. Keras 2
wrapped its LSTM in exactly such a function; here the Keras 3 layer's weights go through one, and
the check against the Keras layer's own output shows it is the same LSTM.
"""
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
    print(json.dumps(cases))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        raise SystemExit(__doc__)
