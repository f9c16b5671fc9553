"""torch.export programs (.pt2) for test/pt2.peer.test.ts. Run with the peers' python (.peers/venv).

Commands:
  export OUT [--only a,b]
        builds each model (random weights, eval mode, fixed seed), exports it with
        torch.export.export(...).run_decompositions() and torch.export.save, and writes
        OUT/<name>/model.pt2, input_K.npy (the forward's arguments in order) and output_K.npy
        (torch's outputs on them). Prints a JSON list of {"name", "dir", "inputs", "outputs"}.
  sources OUT
        models from other frameworks for the .pt2 writer: OUT/or_gate_onnx and OUT/cnn_onnx
        (model.onnx built with onnx.helper, batch dimension "N"), OUT/or_gate_tf and OUT/cnn_tf
        (tf.saved_model.save of a tf.Module; a Keras CNN exported with Model.export), each with input_0.npy. Prints a
        JSON list of {"name", "model", "input"}.
  ort JOBS.json
        JOBS: [{"onnx", "inputs": {name: npy}, "outputs": [npy...]}]: onnx.checker, then
        onnxruntime's outputs against the reference npys at 1e-4 x max(1, |ref|). Prints one
        {"ok": true} or {"ok": false, "error"} per job.
  load JOBS.json
        JOBS: [{"pt2", "inputs": [npy...], "out": DIR}]: torch.export.load(pt2).module()(*inputs),
        outputs written as DIR/torch_K.npy. Prints one {"ok", "outputs" | "error"} per job.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

RTOL = 1e-4


def _torchvision():
    import torch

    # torchvision's C extension does not load here; its Python side only needs the op schemas
    # (as python/zoo.py does).
    global _TV_LIB
    if "_TV_LIB" not in globals():
        _TV_LIB = torch.library.Library("torchvision", "DEF")
        _TV_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TV_LIB.define("qnms(Tensor qdets, Tensor qscores, float iou_threshold) -> Tensor")
    import torchvision

    return torchvision


def _image(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# Each builder returns (module, [input arrays], dynamic_shapes or None).


def or_gate():
    import torch

    m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sigmoid(), torch.nn.Linear(2, 1), torch.nn.Sigmoid())
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    return m, [x], ({0: torch.export.Dim("batch")},)


def mlp():
    import torch

    class Mlp(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(6, 16)
            self.fc2 = torch.nn.Linear(16, 16)
            self.fc3 = torch.nn.Linear(16, 3)
            self.register_buffer("scale", torch.full((3,), 0.5))

        def forward(self, x):
            h = torch.nn.functional.gelu(self.fc1(x))
            h = torch.tanh(self.fc2(h)) + torch.nn.functional.silu(h)
            # A view over the symbolic batch: torch.export writes sym_size and a SymInt size list.
            h = (h.view(x.shape[0], 4, 4) * torch.arange(4.0)).view(x.shape[0], 16)
            y = self.fc3(h) * self.scale - torch.tensor([1.0, 2.0, 3.0])
            return torch.softmax(y, dim=-1), torch.where(y > 0, y, y * 0.1).clamp(-1, 1)

    return Mlp(), [_image((5, 6), 7)], ({0: torch.export.Dim("batch")},)


def resnet18():
    tv = _torchvision()
    return tv.models.resnet18(weights=None, num_classes=10), [_image((1, 3, 64, 64), 1)], None


def mobilenet_v3_small():
    tv = _torchvision()
    return tv.models.mobilenet_v3_small(weights=None, num_classes=10), [_image((1, 3, 64, 64), 2)], None


def vit():
    tv = _torchvision()
    m = tv.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10)
    return m, [_image((1, 3, 32, 32), 4)], None


def bert():
    import torch
    from transformers import BertConfig, BertModel

    # The default attention (sdpa): torch.export keeps scaled_dot_product_attention or decomposes it.
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=32)
    model = BertModel(cfg)

    class Bert(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = model

        def forward(self, input_ids, attention_mask):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)
            return out[0], out[1]

    ids = np.random.default_rng(6).integers(1, 100, size=(1, 8)).astype(np.int64)
    mask = np.array([[1, 1, 1, 1, 1, 1, 0, 0]], dtype=np.int64)
    return Bert(), [ids, mask], None


def _randomize(module):
    """Weights that make every layer matter: torchvision zeroes ViT's head and scales MobileNet's
    classifier by 0.01, and fresh batch norms hold the identity statistics."""
    import torch

    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.Linear):
                m.reset_parameters()
            elif isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                c = m.running_mean.shape[0]
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                if m.weight is not None:
                    m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(c, generator=g) * 0.1)


def rnn():
    import torch

    class Rnn(torch.nn.Module):
        # run_decompositions() unrolls LSTM and GRU over the (static) sequence into mm/addmm,
        # sigmoid, tanh, split and cat: no recurrent op reaches the program.
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(4, 5, num_layers=2, batch_first=True)
            self.gru = torch.nn.GRU(5, 3, batch_first=True, bidirectional=True)

        def forward(self, x):
            y, _ = self.lstm(x)
            z, h = self.gru(y)
            return z, h

    return Rnn(), [_image((2, 6, 4), 8)], None


def math():
    import torch

    class Math(torch.nn.Module):
        # Elementwise and shape ops beyond the architectures': what survives run_decompositions
        # is read (remainder, floor division, cumsum, einsum, sign, round, tan, flip, ...).
        def forward(self, x, k):
            a = torch.remainder(x, 1.5) + torch.fmod(x, -1.25) + torch.div(x, 0.7, rounding_mode="floor")
            b = torch.cumsum(torch.sign(x) * torch.round(x * 3), dim=1) + torch.tan(x * 0.3)
            c = torch.einsum("nc,nd->ncd", a, b).flatten(1)
            d = (torch.flip(x, [1]) * torch.isnan(x).logical_not()).repeat(1, 2)
            e = torch.div(k, 3, rounding_mode="floor") + torch.remainder(k, 4) + torch.div(k, 3, rounding_mode="trunc")
            return torch.cat([c, d], dim=1), e

    x = (np.random.default_rng(9).standard_normal((3, 4)) * 3).astype(np.float32)
    k = np.array([[-7, -3, 0, 5], [9, -1, 2, -8], [1, 4, -5, 6]], dtype=np.int64)
    return Math(), [x, k], None


MODELS = {"or_gate": or_gate, "mlp": mlp, "resnet18": resnet18, "mobilenet_v3_small": mobilenet_v3_small, "vit": vit, "bert": bert, "rnn": rnn, "math": math}


def export(out, only):
    import torch

    cases = []
    for name, build in MODELS.items():
        if only and name not in only:
            continue
        torch.manual_seed(0)
        module, inputs, dynamic = build()
        _randomize(module)
        module.eval()
        args = tuple(torch.from_numpy(a) for a in inputs)
        with torch.no_grad():
            ep = torch.export.export(module, args, dynamic_shapes=dynamic).run_decompositions()
            outs = ep.module()(*args)
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        torch.export.save(ep, os.path.join(d, "model.pt2"))
        for k, a in enumerate(inputs):
            np.save(os.path.join(d, "input_%d.npy" % k), a)
        for k, t in enumerate(outs):
            np.save(os.path.join(d, "output_%d.npy" % k), t.detach().numpy())
        names = [s.arg.name for s in ep.graph_signature.input_specs if s.kind == torch.export.graph_signature.InputKind.USER_INPUT]
        ops = sorted({str(n.target) for n in ep.graph.nodes if n.op == "call_function"})
        cases.append({"name": name, "dir": d, "inputs": names, "outputs": len(outs), "ops": ops})
    print(json.dumps(cases))


def sources(out):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    cases = []

    def weight(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.5).astype(np.float32), name)

    def save_onnx(name, nodes, inits, x, y_shape, xin):
        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(model, full_check=True)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        onnx.save(model, os.path.join(d, "model.onnx"))
        np.save(os.path.join(d, "input_0.npy"), xin)
        cases.append({"name": name, "model": os.path.join(d, "model.onnx"), "input": os.path.join(d, "input_0.npy")})

    or_x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    save_onnx("or_gate_onnx", [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Sigmoid", ["h"], ["a"]),
        helper.make_node("Gemm", ["a", "w2", "b2"], ["o"], transB=1),
        helper.make_node("Sigmoid", ["o"], ["y"]),
    ], [weight("w1", 2, 2), weight("b1", 2), weight("w2", 1, 2), weight("b2", 1)], ["N", 2], ["N", 1], or_x)

    c = 4
    save_onnx("cnn_onnx", [
        helper.make_node("Conv", ["x", "k1", "c1"], ["h1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["h1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "k2"], ["h2"], kernel_shape=[3, 3], strides=[1, 1]),
        helper.make_node("BatchNormalization", ["h2", "g", "bt", "mu", "var"], ["n2"], epsilon=1e-3),
        helper.make_node("LeakyRelu", ["n2"], ["r2"], alpha=0.1),
        helper.make_node("AveragePool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[1, 1]),
        helper.make_node("GlobalAveragePool", ["p2"], ["g2"]),
        helper.make_node("Flatten", ["g2"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w", "b"], ["z"], transB=1),
        helper.make_node("Softmax", ["z"], ["y"], axis=-1),
    ], [weight("k1", c, 3, 3, 3), weight("c1", c), weight("k2", c, c, 3, 3), weight("g", c), weight("bt", c), weight("mu", c),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, c).astype(np.float32), "var"), weight("w", 5, c), weight("b", 5)],
        ["N", 3, 12, 12], ["N", 5], rng.standard_normal((2, 3, 12, 12)).astype(np.float32))

    # Many single ops the writer maps, each feeding an output (batch "N", opset 17).
    X = helper.make_tensor_value_info
    ints = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)  # noqa: E731
    nodes = [
        helper.make_node("Softsign", ["x"], ["soft"]),
        helper.make_node("PRelu", ["x", "slope"], ["prelu"]),
        helper.make_node("Sum", ["soft", "prelu", "x"], ["sum"]),
        helper.make_node("Round", ["sum"], ["round"]),
        helper.make_node("Sign", ["round"], ["sign"]),
        helper.make_node("Tan", ["soft"], ["tan"]),
        helper.make_node("Selu", ["tan"], ["selu"]),
        helper.make_node("Mod", ["sum", "three"], ["mod"], fmod=1),
        helper.make_node("CumSum", ["mod", "axis1"], ["cumsum"]),
        helper.make_node("Split", ["cumsum", "halves"], ["left", "right"], axis=1),
        helper.make_node("Einsum", ["left", "right"], ["dot"], equation="nc,nc->n"),
        helper.make_node("Slice", ["x", "rev_start", "rev_end", "axis1", "minus1"], ["reversed"]),
        helper.make_node("Tile", ["reversed", "reps"], ["tiled"]),
        helper.make_node("ArgMax", ["tiled"], ["argmax"], axis=1, keepdims=0),
        helper.make_node("Unsqueeze", ["argmax", "axis1"], ["where_max"]),
        helper.make_node("GatherElements", ["tiled", "where_max"], ["gathered"], axis=1),
        helper.make_node("LayerNormalization", ["x", "ln_scale", "ln_bias"], ["ln"], axis=-1, epsilon=1e-5),
        helper.make_node("Add", ["ln", "selu"], ["y1"]),
        helper.make_node("Mul", ["sign", "gathered"], ["y2"]),
        helper.make_node("Identity", ["dot"], ["y3"]),
    ]
    graph = helper.make_graph(nodes, "ops", [X("x", TensorProto.FLOAT, ["N", 4])],
                              [X("y1", TensorProto.FLOAT, ["N", 4]), X("y2", TensorProto.FLOAT, ["N", 4]), X("y3", TensorProto.FLOAT, ["N"])],
                              [weight("slope", 4), numpy_helper.from_array(np.array(3.0, dtype=np.float32), "three"), ints("axis1", [1]), ints("halves", [2, 2]),
                               ints("rev_start", [-1]), ints("rev_end", [-(2 ** 63)]), ints("minus1", [-1]), ints("reps", [1, 2]), weight("ln_scale", 4), weight("ln_bias", 4)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    d = os.path.join(out, "ops_onnx")
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    np.save(os.path.join(d, "input_0.npy"), (rng.standard_normal((3, 4)) * 3).astype(np.float32))
    cases.append({"name": "ops_onnx", "model": os.path.join(d, "model.onnx"), "input": os.path.join(d, "input_0.npy")})

    import tensorflow as tf

    tf.random.set_seed(3)

    class OrGate(tf.Module):
        def __init__(self):
            self.w1 = tf.Variable(tf.random.normal([2, 2]))
            self.b1 = tf.Variable(tf.random.normal([2]))
            self.w2 = tf.Variable(tf.random.normal([2, 1]))
            self.b2 = tf.Variable(tf.random.normal([1]))

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": tf.sigmoid(tf.matmul(tf.sigmoid(tf.matmul(x, self.w1) + self.b1), self.w2) + self.b2)}

    d = os.path.join(out, "or_gate_tf")
    module = OrGate()
    tf.saved_model.save(module, os.path.join(d, "saved_model"), signatures={"serving_default": module.__call__})
    np.save(os.path.join(d, "input_0.npy"), or_x)
    cases.append({"name": "or_gate_tf", "model": os.path.join(d, "saved_model"), "input": os.path.join(d, "input_0.npy")})

    # A Keras CNN (NHWC): "same" padding with stride 2 (pads that differ at the two ends), a
    # depthwise convolution, batch norm, relu6, both poolings, concat, global pooling, dense.
    keras = tf.keras
    inp = keras.Input((16, 16, 3), name="image")
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(inp)
    h = keras.layers.DepthwiseConv2D(3, padding="same")(h)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Concatenate()([keras.layers.MaxPooling2D(2, padding="same")(h), keras.layers.AveragePooling2D(2)(h)])
    h = keras.layers.Dense(10, activation="tanh")(keras.layers.GlobalAveragePooling2D()(h))
    cnn = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(h))
    for layer in cnn.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.standard_normal(layer.moving_mean.shape).astype(np.float32) * 0.1)
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape).astype(np.float32))
    d = os.path.join(out, "cnn_tf")
    cnn.export(os.path.join(d, "saved_model"), verbose=False)
    np.save(os.path.join(d, "input_0.npy"), rng.standard_normal((2, 16, 16, 3)).astype(np.float32))
    cases.append({"name": "cnn_tf", "model": os.path.join(d, "saved_model"), "input": os.path.join(d, "input_0.npy")})
    print(json.dumps(cases))


def ort(jobs):
    import onnx
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)
    results = []
    for job in jobs:
        try:
            onnx.checker.check_model(onnx.load(job["onnx"]), full_check=True)
            s = onnxruntime.InferenceSession(job["onnx"], providers=["CPUExecutionProvider"])
            feeds = {k: np.load(v) for k, v in job["inputs"].items()}
            got = s.run(None, feeds)
            if len(got) != len(job["outputs"]):
                raise AssertionError("%d outputs, expected %d" % (len(got), len(job["outputs"])))
            for k, (g, ref) in enumerate(zip(got, [np.load(p) for p in job["outputs"]])):
                if g.shape != ref.shape:
                    raise AssertionError("output %d: shape %s, expected %s" % (k, g.shape, ref.shape))
                err = np.max(np.abs(g.astype(np.float64) - ref) / np.maximum(1, np.abs(ref))) if ref.size else 0.0
                if not err <= RTOL:
                    raise AssertionError("output %d: relative error %g" % (k, err))
            results.append({"ok": True})
        except Exception as e:  # one line per job, for the test's message
            results.append({"ok": False, "error": ("%s: %s" % (type(e).__name__, e)).splitlines()[0][:400]})
    print(json.dumps(results))


def load(jobs):
    import torch

    results = []
    for job in jobs:
        try:
            ep = torch.export.load(job["pt2"])
            args = [torch.from_numpy(np.load(p)) for p in job["inputs"]]
            with torch.no_grad():
                outs = ep.module()(*args)
            outs = outs if isinstance(outs, (tuple, list)) else (outs,)
            paths = []
            for k, t in enumerate(outs):
                p = os.path.join(job["out"], "torch_%d.npy" % k)
                np.save(p, t.detach().numpy())
                paths.append(p)
            results.append({"ok": True, "outputs": paths})
        except Exception as e:
            tb = traceback.format_exc().strip().splitlines()[-1]
            results.append({"ok": False, "error": ("%s: %s | %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "", tb))[:600]})
    print(json.dumps(results))


def main(argv):
    if len(argv) >= 2 and argv[0] == "export":
        only = set(argv[argv.index("--only") + 1].split(",")) if "--only" in argv else set()
        export(argv[1], only)
    elif len(argv) == 2 and argv[0] == "sources":
        sources(argv[1])
    elif len(argv) == 2 and argv[0] in ("ort", "load"):
        jobs = json.load(open(argv[1]))
        (ort if argv[0] == "ort" else load)(jobs)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
