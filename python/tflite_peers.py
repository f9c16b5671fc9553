"""TFLite models from TensorFlow's own converter, and LiteRT runs, for test/tflite.peer.test.ts.

python tflite_peers.py make OUT_DIR
    builds small seeded Keras models (the OR gate, an MLP, a Conv/BatchNorm CNN, a depthwise
    MobileNet-like block, a transformer block), converts each with tf.lite.TFLiteConverter in
    several flavours (float32; float16 weights; dynamic-range int8 weights; full-integer int8 with
    a representative dataset, where the model allows; the CNN also integer-only with int8 inputs
    and outputs), runs every .tflite in LiteRT
    (ai_edge_litert.interpreter.Interpreter) on one seeded input and writes
    OUT_DIR/<case>.tflite, OUT_DIR/<case>.in.npz (signature input keys) and
    OUT_DIR/<case>.out.npz (signature output keys). The source of each model is kept as the
    SavedModel OUT_DIR/<model>_savedmodel (serving_default: x -> y). Prints a JSON list of the
    cases. The OR gate also comes without a SignatureDef (or_gate_nosig).

python tflite_peers.py batch JOBS.json
    runs many models in one process: JOBS.json is a list of {"kind": "tflite" | "onnx", "model",
    "inputs", "outputs"}; .tflite files run in LiteRT as `run` does, .onnx files in onnxruntime
    (inputs by name, else in order). Prints a JSON list: per job its ops (LiteRT) or an error.

python tflite_peers.py run MODEL.tflite INPUTS.npz OUTPUTS.npz
    runs MODEL.tflite in LiteRT: the inputs by signature key when the model has a signature, else
    by the input tensors' names (or in order, as in_0, in_1, ...), written to OUTPUTS.npz under the
    same kind of names. Prints a JSON summary (the ops LiteRT ran, inputs and outputs).
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np

SEED = 20261203


def interpreter(path):
    from ai_edge_litert.interpreter import Interpreter
    return Interpreter(model_path=path)


def run_tflite(path, feeds):
    """feeds: name -> array. By signature key when the model has a signature, else by input order."""
    it = interpreter(path)
    sigs = it.get_signature_list()
    if sigs:
        key = next(iter(sigs))
        runner = it.get_signature_runner(key)
        names = sigs[key]["inputs"]
        values = list(feeds.values())
        # By key; a model converted from another format may name its inputs otherwise: by order then.
        args = {n: np.asarray(feeds[n] if n in feeds else values[k]) for k, n in enumerate(names)}
        out = runner(**args)
        return {k: np.asarray(v) for k, v in out.items()}
    it.allocate_tensors()
    details = it.get_input_details()
    for i, d in enumerate(details):
        v = feeds.get(d["name"], feeds.get("in_%d" % i))
        if v is None:
            raise SystemExit("no input for %s" % d["name"])
        if list(v.shape) != list(d["shape"]):
            it.resize_tensor_input(d["index"], v.shape)
    it.allocate_tensors()
    for i, d in enumerate(details):
        it.set_tensor(d["index"], np.asarray(feeds.get(d["name"], feeds.get("in_%d" % i))).astype(d["dtype"]))
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}


def ops_of(path):
    it = interpreter(path)
    try:
        return sorted({o["op_name"] for o in it._get_ops_details()})
    except Exception:  # older LiteRT builds lack the private accessor
        return []


def models():
    import keras
    from keras import layers

    keras.utils.set_random_seed(SEED)
    out = {}

    def seq(name, shape, body):
        inp = keras.Input(shape=shape, name="x", batch_size=1)
        out[name] = (keras.Model(inp, body(inp), name=name), shape)

    # The OR gate: 2-2-1 with sigmoids. Dynamic-range quantization leaves weights of fewer than
    # 1024 elements in float32, so the other models have layers past that size.
    seq("or_gate", (2,), lambda x: layers.Dense(1, activation="sigmoid")(layers.Dense(2, activation="sigmoid")(x)))
    seq("mlp", (16,), lambda x: layers.Softmax()(layers.Dense(5)(layers.Dense(64, activation="tanh")(layers.Dense(64, activation="relu")(x)))))

    def cnn(x):
        y = layers.Conv2D(8, 3, padding="same")(x)
        y = layers.BatchNormalization()(y)
        y = layers.ReLU()(y)
        y = layers.MaxPooling2D(2)(y)
        y = layers.Conv2D(16, 3, strides=2, padding="valid", activation="relu6")(y)
        y = layers.AveragePooling2D(2, padding="same")(y)
        y = layers.Flatten()(y)
        return layers.Dense(4, activation="softmax")(y)

    seq("cnn", (16, 16, 3), cnn)

    def mobilenet_block(x):
        y = layers.Conv2D(16, 1, use_bias=False)(x)
        y = layers.BatchNormalization()(y)
        y = layers.Activation("hard_swish")(y)
        y = layers.ZeroPadding2D(((0, 1), (0, 1)))(y)
        y = layers.DepthwiseConv2D(3, strides=2, use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        y = layers.ReLU(6.0)(y)
        y = layers.Conv2D(8, 1)(y)
        z = layers.Conv2D(8, 1, strides=2)(x)
        y = layers.Add()([y, z])
        y = layers.GlobalAveragePooling2D()(y)
        return layers.Dense(3)(y)

    seq("mobilenet_block", (12, 12, 4), mobilenet_block)

    def transformer(x):
        a = layers.MultiHeadAttention(num_heads=2, key_dim=4)(x, x)
        y = layers.LayerNormalization()(layers.Add()([x, a]))
        f = layers.Dense(8, activation="gelu")(y)
        f = layers.Dense(8)(f)
        y = layers.LayerNormalization()(layers.Add()([y, f]))
        return layers.Concatenate(axis=-1)([y, layers.Dense(2, activation="sigmoid")(y)])

    seq("transformer", (6, 8), transformer)
    return out


def save(model, shape, path):
    """The model as a SavedModel with one signature, serving_default(x) -> {"y"}."""
    import tensorflow as tf

    spec = tf.TensorSpec((1,) + tuple(shape), tf.float32, name="x")
    module = tf.Module()
    module.model = model
    module.serve = tf.function(lambda x: {"y": model(x, training=False)}, input_signature=[spec])
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve.get_concrete_function()})


def frozen_savedmodel(saved, path):
    """saved with its variables folded into constants, under the same signature. From the
    original, the converter keeps Keras 3's variables as VAR_HANDLE/READ_VARIABLE ops, which
    calibration for full-integer quantization cannot run."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    loaded = tf.saved_model.load(saved)  # kept alive while its function is used
    sig = loaded.signatures["serving_default"]
    frozen = convert_variables_to_constants_v2(sig)
    module = tf.Module()
    module.serve = tf.function(tf.autograph.experimental.do_not_convert(lambda x: {"y": frozen(x)[0]}),
                               input_signature=[sig.structured_input_signature[1]["x"]])
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve.get_concrete_function()})
    return module


def convert(frozen, flavour, shape, rng):
    import tensorflow as tf

    if flavour == "nosig":
        # From a concrete function the converter writes no SignatureDef, so the model's inputs
        # and outputs are its subgraph's.
        loaded = tf.saved_model.load(frozen)  # kept alive while its function is used
        conv = tf.lite.TFLiteConverter.from_concrete_functions([loaded.signatures["serving_default"]])
    else:
        conv = tf.lite.TFLiteConverter.from_saved_model(frozen)
    if flavour == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif flavour == "dynamic_int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif flavour in ("int8", "int8io"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        samples = [rng.standard_normal((1,) + tuple(shape)).astype(np.float32) for _ in range(16)]
        conv.representative_dataset = lambda: ([s] for s in samples)
        if flavour == "int8io":
            # Integer-only: int8 inputs and outputs, every op an int8 builtin.
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
    return conv.convert()


def make(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(SEED)
    cases = []
    flavours = ["float32", "float16", "dynamic_int8", "int8"]
    for name, (model, shape) in models().items():
        x = rng.standard_normal((1,) + tuple(shape)).astype(np.float32)
        if name == "or_gate":
            x = np.array([[1.0, 1.0]], np.float32)
        saved = os.path.join(out_dir, name + "_savedmodel")
        save(model, shape, saved)
        frozen = os.path.join(out_dir, name + "_frozen")
        frozen_savedmodel(saved, frozen)
        for flavour in flavours + (["nosig"] if name == "or_gate" else []) + (["int8io"] if name == "cnn" else []):
            case = "%s_%s" % (name, flavour)
            path = os.path.join(out_dir, case + ".tflite")
            with open(path, "wb") as f:
                f.write(convert(frozen, flavour, shape, rng))
            feeds = {"x": x}
            if flavour == "int8io":
                d = interpreter(path).get_input_details()[0]
                scale, zero = d["quantization"]
                feeds = {"x": np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)}
            outs = run_tflite(path, feeds)
            np.savez(os.path.join(out_dir, case + ".in.npz"), **feeds)
            np.savez(os.path.join(out_dir, case + ".out.npz"), **outs)
            cases.append({"name": case, "model": name, "flavour": flavour, "file": path, "savedmodel": saved, "ops": ops_of(path), "outputs": sorted(outs)})
    json.dump(cases, sys.stdout)
    print()


def run_onnx(path, feeds):
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    values = list(feeds.values())
    args = {n: np.asarray(feeds.get(n, values[k] if k < len(values) else None)) for k, n in enumerate(names)}
    out = session.run(None, args)
    return {o.name: v for o, v in zip(session.get_outputs(), out)}


def batch(jobs_path):
    results = []
    with open(jobs_path) as f:
        jobs = json.load(f)
    for job in jobs:
        try:
            feeds = dict(np.load(job["inputs"]))
            outs = run_tflite(job["model"], feeds) if job["kind"] == "tflite" else run_onnx(job["model"], feeds)
            np.savez(job["outputs"], **outs)
            results.append({"model": job["model"], "ops": ops_of(job["model"]) if job["kind"] == "tflite" else [], "outputs": sorted(outs)})
        except Exception as e:  # reported per job: the test names the model that failed
            results.append({"model": job["model"], "error": " ".join(str(e).split())[:500]})
    json.dump(results, sys.stdout)
    print()


def run(path, inputs, outputs):
    feeds = dict(np.load(inputs))
    outs = run_tflite(path, feeds)
    np.savez(outputs, **outs)
    json.dump({"ops": ops_of(path), "inputs": sorted(feeds), "outputs": sorted(outs)}, sys.stdout)
    print()


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "batch":
        batch(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(__doc__)
