"""Keras 3 models and their reference outputs, for test/keras.peer.test.ts.

python keras_peers.py build OUT_DIR
    builds each model below with Keras 3 (random weights, fixed seeds, weights=None for the
    applications), saves it as OUT_DIR/<name>.keras and OUT_DIR/<name>.h5, writes the inputs
    (OUT_DIR/<name>.inputs.npz, by input name) and Keras's model.predict outputs
    (OUT_DIR/<name>.outputs.npz, by output name, in the model's output order) and prints a JSON
    list of {name, inputs, outputs}.

python keras_peers.py build-tf-keras OUT_DIR   (with .peers/tfjs-venv's python, which has tf_keras)
    the same for two tf.keras 2 models saved as legacy .h5.

python keras_peers.py check MANIFEST.json
    runs files modelbridge wrote in their real consumers and saves their outputs: each entry
    {kind, path, inputs, out} with kind "onnx" (onnx.checker + onnxruntime), "savedmodel"
    (tf.saved_model.load, serving_default) or "keras" (keras.saving.load_model + predict). Prints
    a JSON list of {path, ok, error?, outputs?}: outputs by name, in the consumer's order.
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np


def build_models():
    import keras
    from keras import layers

    keras.utils.set_random_seed(20261203)
    models = {}

    # A Conv/BN CNN, Sequential, with most image layers.
    models["cnn"] = keras.Sequential(
        [
            keras.Input((16, 16, 3), name="image"),
            layers.Rescaling(1 / 127.5, offset=-1, name="rescale"),
            layers.ZeroPadding2D(((1, 2), (2, 1)), name="pad"),
            layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="conv1"),
            layers.BatchNormalization(name="bn1"),
            layers.ReLU(max_value=6.0, name="relu6"),
            layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw"),
            layers.BatchNormalization(name="bn2"),
            layers.Activation("swish", name="swish"),
            layers.SeparableConv2D(12, 3, padding="valid", activation="relu", name="sep"),
            layers.MaxPooling2D(2, name="pool"),
            layers.Conv2D(6, 3, padding="same", dilation_rate=2, name="dilated"),
            layers.Cropping2D(((1, 0), (0, 1)), name="crop"),
            layers.AveragePooling2D(2, padding="same", name="avg"),
            layers.Conv2D(10, 1, activation="elu", name="conv2"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dropout(0.3, name="drop"),
            layers.Dense(5, activation="softmax", name="probs"),
        ],
        name="cnn",
    )

    # Transposed convolutions (exported to TF as Conv2DBackpropInput and read back from it).
    pic = keras.Input((5, 6, 3), name="pic")
    u = layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="up_same")(pic)
    u = layers.Conv2DTranspose(2, (3, 2), strides=(1, 2), padding="valid", activation="relu", name="up_valid")(u)
    models["upsample"] = keras.Model(pic, u, name="upsample")

    models["mobilenetv2"] = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10)
    models["efficientnetb0"] = keras.applications.EfficientNetB0(input_shape=(32, 32, 3), weights=None, classes=10)

    tokens = keras.Input((12,), dtype="int32", name="tokens")
    x = layers.Embedding(50, 16, name="embed")(tokens)
    x = layers.LSTM(16, return_sequences=True, name="lstm1")(x)
    x = layers.LSTM(8, go_backwards=True, name="lstm2")(x)
    models["lstm"] = keras.Model(tokens, layers.Dense(3, activation="softmax", name="cls")(x), name="lstm_classifier")

    # SimpleRNN and Bidirectional wrappers (a GRU with its own backward layer config).
    steps = keras.Input((7, 5), name="steps")
    r = layers.SimpleRNN(6, return_sequences=True, name="simple")(steps)
    r = layers.Bidirectional(layers.LSTM(4, return_sequences=True), name="bi_lstm")(r)
    r = layers.Bidirectional(layers.GRU(3), backward_layer=layers.GRU(3, go_backwards=True), name="bi_gru")(r)
    models["rnns"] = keras.Model(steps, layers.Dense(2, name="out")(r), name="rnns")

    # A small transformer block: self-attention and a feed-forward layer, each with a residual and LayerNormalization.
    ids = keras.Input((9,), dtype="int32", name="ids")
    h = layers.Embedding(30, 16, name="tok_embed")(ids)
    a = layers.MultiHeadAttention(num_heads=4, key_dim=4, name="attn")(h, h)
    h = layers.LayerNormalization(epsilon=1e-6, name="ln1")(layers.Add(name="res1")([h, a]))
    f = layers.Dense(32, activation="gelu", name="ffn1")(h)
    f = layers.Dense(16, name="ffn2")(f)
    h = layers.LayerNormalization(epsilon=1e-6, name="ln2")(layers.Add(name="res2")([h, f]))
    models["transformer"] = keras.Model(ids, layers.Dense(3, name="logits")(layers.GlobalAveragePooling1D(name="pool")(h)), name="transformer")

    seq = keras.Input((10, 6), name="series")
    x = layers.GRU(12, return_sequences=True, name="gru1")(seq)
    x = layers.GRU(8, reset_after=False, name="gru2")(x)
    models["gru"] = keras.Model(seq, layers.Dense(4, activation="softmax", name="cls")(x), name="gru_classifier")

    words = keras.Input((20,), dtype="int32", name="words")
    x = layers.Embedding(100, 8, name="embed")(words)
    x = layers.Conv1D(16, 3, padding="causal", activation="relu", name="conv")(x)
    x = layers.GlobalMaxPooling1D(name="gmp")(x)
    x = layers.LayerNormalization(name="ln")(x)
    models["text"] = keras.Model(words, layers.Dense(2, activation="sigmoid", name="score")(x), name="text")

    # Two inputs, two outputs, a shared layer called twice, a nested Sequential.
    img = keras.Input((8, 8, 2), name="img")
    vec = keras.Input((5,), name="vec")
    a = layers.Conv2D(4, 3, activation="relu", name="c")(img)
    a = layers.Flatten(name="flat")(a)
    shared = layers.Dense(6, activation="tanh", name="shared")
    b = shared(vec)
    c = shared(layers.Dense(5, name="proj")(layers.Dense(7, name="pre")(a)))
    merged = layers.Concatenate(name="cat")([layers.Add(name="add")([b, c]), layers.Multiply(name="mul")([b, c])])
    head = keras.Sequential([layers.Dense(8, activation="gelu", name="h1"), layers.LayerNormalization(name="hln"), layers.Dense(3, name="h2")], name="head")
    out1 = layers.Softmax(name="out1")(head(merged))
    out2 = layers.Dense(1, name="out2")(layers.Reshape((3, 4), name="rs")(merged))
    out2 = layers.Permute((2, 1), name="perm")(out2)
    models["two_in_two_out"] = keras.Model([img, vec], [out1, out2], name="two_in_two_out")

    # Every built-in activation by name, and the small layers.
    z = keras.Input((6,), name="z")
    names = ["relu", "relu6", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "elu", "selu", "celu", "softplus",
             "softsign", "exponential", "silu", "gelu", "hard_sigmoid", "hard_silu", "hard_tanh", "sparse_sigmoid",
             "soft_shrink", "hard_shrink", "tanh_shrink", "log_sigmoid", "mish", "squareplus", "sparse_plus", "linear"]
    outs = [layers.Dense(4, activation=n, name="act_" + n)(z) for n in names]
    y = layers.Concatenate(name="all")(outs)
    y = layers.Normalization(mean=0.5, variance=2.0, name="norm")(y)
    y = layers.LeakyReLU(negative_slope=0.1, name="leaky")(y)
    y = layers.ReLU(negative_slope=0.05, max_value=2.0, name="relu_layer")(y)
    y = layers.ELU(alpha=0.5, name="elu_layer")(y)
    y = layers.Average(name="avg")([y, layers.Maximum(name="max")([y, layers.Subtract(name="sub")([y, y])])])
    models["activations"] = keras.Model(z, layers.Minimum(name="min")([y, layers.Activation("tanh", name="act")(y)]), name="activations")
    # Keras masks: Embedding(mask_zero=True) and Masking feeding LSTM, GRU (go_backwards),
    # Bidirectional and SimpleRNN, through layers that pass the mask on (Dense) and merges, into a
    # masked GlobalAveragePooling1D. The inputs (masked_inputs) have zeros in the middle and at the ends.
    tok = keras.Input((10,), dtype="int32", name="tok")
    e = layers.Embedding(30, 8, mask_zero=True, name="emb")(tok)
    e = layers.Dense(8, activation="tanh", name="proj")(e)
    s = layers.LSTM(6, return_sequences=True, name="m_lstm")(e)
    g = layers.GRU(5, go_backwards=True, name="m_gru")(s)
    bi = layers.Bidirectional(layers.GRU(3, return_sequences=True), name="m_bi")(s)
    avg = layers.GlobalAveragePooling1D(name="m_avg")(bi)
    series = keras.Input((7, 4), name="series")
    m = layers.Masking(mask_value=0.0, name="m_mask")(series)
    r = layers.SimpleRNN(4, name="m_rnn")(m)
    r2 = layers.Bidirectional(layers.LSTM(2), name="m_bi2")(m)
    out = layers.Dense(3, name="m_out")(layers.Concatenate(name="m_cat")([g, avg, r, r2]))
    models["masked"] = keras.Model([tok, series], [out, layers.Activation("linear", name="m_seq")(s)], name="masked")

    # Attention under the query's and value's masks, then a causal self-attention on its output
    # (which carries the query's mask). MultiHeadAttention clears its inputs' masks when it runs,
    # so the masked tensors here feed nothing after it.
    ids = keras.Input((8,), dtype="int32", name="ids")
    h = layers.Embedding(20, 8, mask_zero=True, name="emb")(ids)
    a = layers.MultiHeadAttention(num_heads=2, key_dim=4, name="attn")(h, h)
    d = layers.Dense(8, name="mid")(a)
    c = layers.MultiHeadAttention(num_heads=2, key_dim=4, name="causal")(d, d, use_causal_mask=True)
    f = layers.Flatten(name="flat")(layers.LayerNormalization(name="ln")(c))
    models["masked_attention"] = keras.Model(ids, layers.Dense(2, name="logits")(f), name="masked_attention")
    return models


def masked_inputs(feeds):
    """Zeros the masking layers act on: token ids 0 at the end of one row and in the middle of
    another, and whole steps of zeros in the float series."""
    for name, v in feeds.items():
        if v.dtype == np.int32:
            v[v == 0] = 1
            v[0, -3:] = 0
            v[1, 2] = 0
            v[1, 5] = 0
        else:
            v[0, -2:] = 0
            v[1, 0] = 0
            v[1, 3] = 0
    return feeds


def layer_name(t):
    """The name of the layer that made a Keras tensor (an InputLayer's name for an input)."""
    return t._keras_history[0].name


def inputs_for(model, rng):
    feeds = {}
    for t in model.inputs:
        shape = [2 if d is None else d for d in t.shape]
        name = layer_name(t)
        if "int" in str(t.dtype):
            feeds[name] = rng.integers(0, 20, size=shape).astype(np.int32)
        else:
            feeds[name] = (rng.standard_normal(shape) * 2).astype(np.float32)
    return feeds


def output_names(model):
    return [layer_name(t) for t in model.outputs]


def build(out):
    rng = np.random.default_rng(20261203)
    result = []
    for name, model in build_models().items():
        # Fresh models have unit BatchNorm statistics and zero biases: random ones make every weight count.
        for w in model.weights:
            if "int" in str(w.dtype):
                continue
            shape = tuple(w.shape)
            if "variance" in w.path:
                w.assign(rng.uniform(0.5, 1.5, shape).astype(np.float32))
            elif "mean" in w.path or "bias" in w.path or "beta" in w.path or "gamma" in w.path:
                w.assign((np.asarray(w) + rng.normal(0, 0.1, shape)).astype(np.float32))
        feeds = inputs_for(model, rng)
        if name.startswith("masked"):
            feeds = masked_inputs(feeds)
        preds = model.predict([feeds[layer_name(t)] for t in model.inputs], verbose=0)
        if not isinstance(preds, (list, tuple)):
            preds = [preds]
        outs = output_names(model)
        model.save(os.path.join(out, name + ".keras"))
        model.save(os.path.join(out, name + ".h5"))
        np.savez(os.path.join(out, name + ".inputs.npz"), **feeds)
        np.savez(os.path.join(out, name + ".outputs.npz"), **{n: np.asarray(p) for n, p in zip(outs, preds)})
        result.append({"name": name, "inputs": [layer_name(t) for t in model.inputs], "outputs": outs})
    print(json.dumps(result))


def build_tf_keras(out):
    """tf.keras 2 (the tf_keras package, in .peers/tfjs-venv) models saved as legacy .h5: Keras 2's
    config (batch_input_shape, inbound_nodes as lists, a nested model's calls numbered from 1)
    and weight names (dense/kernel:0)."""
    import tf_keras as keras
    from tf_keras import layers

    keras.utils.set_random_seed(20261203)
    rng = np.random.default_rng(20261203)
    cnn = keras.Sequential([layers.InputLayer((8, 8, 3), name="img"), layers.Conv2D(4, 3, padding="same", activation="relu", name="c"),
                            layers.BatchNormalization(name="bn"), layers.DepthwiseConv2D(3, name="dw"), layers.MaxPooling2D(name="mp"),
                            layers.Flatten(name="f"), layers.Dense(3, activation="softmax", name="d")], name="k2cnn")
    tok = keras.Input((6,), dtype="int32", name="tok")
    h = layers.Embedding(20, 5, name="emb")(tok)
    h = layers.Bidirectional(layers.LSTM(4, return_sequences=True), name="bi")(h)
    h = layers.GRU(3, name="gru")(h)
    sub = keras.Sequential([layers.Dense(4, activation="tanh", name="s1"), layers.Dense(2, name="s2")], name="sub")
    func = keras.Model(tok, [sub(h), layers.Dense(1, name="other")(h)], name="k2func")
    result = []
    for name, model in [("tfkeras_cnn", cnn), ("tfkeras_func", func)]:
        for w in model.weights:
            if "variance" in w.name:
                w.assign(rng.uniform(0.5, 1.5, w.shape).astype(np.float32))
            elif "bias" in w.name or "beta" in w.name or "mean" in w.name:
                w.assign(rng.normal(0, 0.2, w.shape).astype(np.float32))
        feeds = {}
        for t in model.inputs:
            shape = [2] + list(t.shape[1:])
            feeds[t.name.split(":")[0]] = rng.integers(0, 20, shape).astype(np.int32) if t.dtype.is_integer else rng.standard_normal(shape).astype(np.float32)
        inputs = [t.name.split(":")[0] for t in model.inputs]
        preds = model.predict([feeds[n] for n in inputs], verbose=0)
        if not isinstance(preds, (list, tuple)):
            preds = [preds]
        outs = [n.split("/")[0] for n in model.output_names]
        model.save(os.path.join(out, name + ".h5"))
        np.savez(os.path.join(out, name + ".inputs.npz"), **feeds)
        np.savez(os.path.join(out, name + ".outputs.npz"), **{n: np.asarray(p) for n, p in zip(outs, preds)})
        result.append({"name": name, "inputs": inputs, "outputs": outs})
    print(json.dumps(result))


def check(manifest_path):
    with open(manifest_path) as f:
        manifest = json.load(f)
    report = []
    for entry in manifest:
        feeds = dict(np.load(entry["inputs"]))
        try:
            if entry["kind"] == "onnx":
                import onnx
                import onnxruntime as ort
                onnx.checker.check_model(onnx.load(entry["path"]), full_check=True)
                ort.set_default_logger_severity(3)
                s = ort.InferenceSession(entry["path"], providers=["CPUExecutionProvider"])
                names = [o.name for o in s.get_outputs()]
                values = s.run(None, {i.name: feeds[i.name] for i in s.get_inputs()})
            elif entry["kind"] == "savedmodel":
                import tensorflow as tf
                fn = tf.saved_model.load(entry["path"]).signatures["serving_default"]
                got = fn(**{k: tf.constant(v) for k, v in feeds.items()})
                names = list(got.keys())
                values = [got[n].numpy() for n in names]
            else:
                import keras
                model = keras.saving.load_model(entry["path"])
                values = model.predict([feeds[layer_name(t)] for t in model.inputs], verbose=0)
                if not isinstance(values, (list, tuple)):
                    values = [values]
                names = output_names(model)
            np.savez(entry["out"], **{n: np.asarray(v) for n, v in zip(names, values)})
            report.append({"path": entry["path"], "ok": True, "outputs": names})
        except Exception as e:  # reported per file, so one failure does not hide the others
            report.append({"path": entry["path"], "ok": False, "error": ("%s: %s" % (type(e).__name__, e))[:500]})
    print(json.dumps(report))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2])
    elif sys.argv[1] == "build-tf-keras":
        build_tf_keras(sys.argv[2])
    else:
        check(sys.argv[2])
