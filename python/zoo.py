"""The model zoo (issue 11): real architectures, written by their own frameworks, checked in the
frameworks that consume modelbridge's conversions. Run with the peers' python (.peers/venv).

Commands:
  generate OUT [--only a,b] [--tfjs-python PY]
        builds every architecture (small configs, eval mode, fixed seeds, one fixed input) and
        writes OUT/<architecture>/: the producers' files, reference.json (the producer
        framework's outputs on the fixed input), input.<name>.npy and manifest.json. An
        architecture whose manifest carries this script's hash is kept (a cache).
  tfjs-convert JOBS.json   (in .peers/tfjs-venv) tensorflowjs_converter's Python API on each
        {"src", "dst"} SavedModel, one process for all
  check KIND JOBS.json     consumer checks, one process per KIND: onnx (onnx.checker with
        full_check + onnxruntime), tf (tf.saved_model.load + signature; GraphDef in a TF1
        session), torch (torch.load / safetensors, load_state_dict into the original module)
        Prints one {"ok": true, "detail"} or {"ok": false, "error"} per job, as a JSON list.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# The cache key: the text that builds the models (everything before the consumer checks).
SCRIPT_HASH = hashlib.sha256(open(__file__, "rb").read().split(b"\n# consumer checks")[0]).hexdigest()[:16]
RTOL = 1e-4

# --------------------------------------------------------------------------------------------
# architectures


def _torchvision():
    import torch

    # torchvision's C extension does not load here; its Python side only needs the op schemas.
    global _TV_LIB
    if "_TV_LIB" not in globals():
        _TV_LIB = torch.library.Library("torchvision", "DEF")
        _TV_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TV_LIB.define("qnms(Tensor qdets, Tensor qscores, float iou_threshold) -> Tensor")
    import torchvision

    return torchvision


def _image(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _tokens(shape, vocab, seed):
    return np.random.default_rng(seed).integers(1, vocab, size=shape).astype(np.int64)


def torch_resnet18():
    tv = _torchvision()
    return tv.models.resnet18(weights=None, num_classes=10), {"x": _image((1, 3, 64, 64), 1)}, ["logits"]


def torch_mobilenet_v3_small():
    tv = _torchvision()
    return tv.models.mobilenet_v3_small(weights=None, num_classes=10), {"x": _image((1, 3, 64, 64), 2)}, ["logits"]


def torch_efficientnet_b0():
    tv = _torchvision()
    return tv.models.efficientnet_b0(weights=None, num_classes=10), {"x": _image((1, 3, 64, 64), 3)}, ["logits"]


def torch_vit():
    tv = _torchvision()
    import torch

    m = tv.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10)
    # torchvision zero-initialises the classifier head: every logit would be 0 for any input, and
    # any conversion would match it. A random head makes the logits depend on the whole network.
    torch.nn.init.normal_(m.heads.head.weight, std=0.5)
    torch.nn.init.normal_(m.heads.head.bias, std=0.1)
    return m, {"x": _image((1, 3, 32, 32), 4)}, ["logits"]


def torch_fcn():
    import torch

    tv = _torchvision()
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.segmentation.fcn import FCN, FCNHead

    # FCN as torchvision builds it, on mobilenet_v3_small's features (576 channels at stride 32).
    backbone = IntermediateLayerGetter(tv.models.mobilenet_v3_small(weights=None).features, {"12": "out"})
    fcn = FCN(backbone, FCNHead(576, 3))

    class Seg(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fcn = fcn

        def forward(self, x):
            return self.fcn(x)["out"]

    return Seg(), {"x": _image((1, 3, 64, 64), 5)}, ["out"]


def torch_bert():
    import torch
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=32, attn_implementation="eager")
    bert = BertModel(cfg)

    class Bert(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)
            return out[0], out[1]

    ids = _tokens((1, 8), 100, 6)
    mask = np.array([[1, 1, 1, 1, 1, 1, 0, 0]], dtype=np.int64)
    return Bert(), {"input_ids": ids, "attention_mask": mask}, ["last_hidden_state", "pooler_output"]


def torch_gpt2():
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=100, n_positions=32, n_embd=32, n_layer=2, n_head=2, use_cache=False, attn_implementation="eager")
    gpt = GPT2LMHeadModel(cfg)

    class Gpt2(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gpt = gpt

        def forward(self, input_ids, attention_mask):
            return self.gpt(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, return_dict=False)[0]

    ids = _tokens((1, 8), 100, 7)
    mask = np.array([[1, 1, 1, 1, 1, 1, 1, 1]], dtype=np.int64)
    return Gpt2(), {"input_ids": ids, "attention_mask": mask}, ["logits"]


def _rnn(kind):
    import torch

    m = getattr(torch.nn, kind)(input_size=8, hidden_size=16, num_layers=2, batch_first=True, bidirectional=True)
    outs = ["output", "h_n", "c_n"] if kind == "LSTM" else ["output", "h_n"]
    return m, {"x": _image((2, 5, 8), 8)}, outs


TORCH = {
    "torch-resnet18": torch_resnet18,
    "torch-mobilenet_v3_small": torch_mobilenet_v3_small,
    "torch-efficientnet_b0": torch_efficientnet_b0,
    "torch-vit": torch_vit,
    "torch-fcn": torch_fcn,
    "hf-bert": torch_bert,
    "hf-gpt2": torch_gpt2,
    "torch-lstm": lambda: _rnn("LSTM"),
    "torch-gru": lambda: _rnn("GRU"),
}


def keras_mobilenet_v2():
    import keras

    return keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10), {"x": _image((1, 32, 32, 3), 11)}


def keras_efficientnet_b0():
    import keras

    return keras.applications.EfficientNetB0(input_shape=(32, 32, 3), weights=None, classes=10), {"x": _image((1, 32, 32, 3), 12)}


def keras_cnn():
    import keras
    from keras import layers

    m = keras.Sequential([
        keras.Input((16, 16, 3), name="x"),
        layers.Conv2D(8, 3, padding="same"), layers.BatchNormalization(), layers.ReLU(),
        layers.MaxPooling2D(2),
        layers.Conv2D(16, 3, padding="valid", activation="relu"), layers.BatchNormalization(),
        layers.GlobalAveragePooling2D(), layers.Dense(10, activation="softmax"),
    ])
    # Non-trivial moving statistics, so inference-mode BatchNorm is really exercised.
    for bn in [l for l in m.layers if isinstance(l, layers.BatchNormalization)]:
        n = bn.gamma.shape[0]
        bn.set_weights([np.linspace(0.5, 1.5, n), np.linspace(-0.2, 0.2, n), np.linspace(-0.1, 0.3, n), np.linspace(0.5, 2.0, n)])
    return m, {"x": _image((1, 16, 16, 3), 13)}


def _keras_rnn(kind):
    import keras
    from keras import layers

    m = keras.Sequential([keras.Input((5, 8), name="x"), getattr(layers, kind)(16), layers.Dense(3, activation="softmax")])
    return m, {"x": _image((2, 5, 8), 14)}


def keras_embedding():
    import keras
    from keras import layers

    m = keras.Sequential([
        keras.Input((8,), dtype="int32", name="tokens"),
        layers.Embedding(100, 16), layers.GlobalAveragePooling1D(), layers.Dense(2, activation="softmax"),
    ])
    return m, {"tokens": np.random.default_rng(15).integers(0, 100, size=(2, 8)).astype(np.int32)}


KERAS = {
    "keras-mobilenet_v2": keras_mobilenet_v2,
    "keras-efficientnet_b0": keras_efficientnet_b0,
    "keras-cnn": keras_cnn,
    "keras-lstm": lambda: _keras_rnn("LSTM"),
    "keras-gru": lambda: _keras_rnn("GRU"),
    "keras-embedding": keras_embedding,
}


def tf_module():
    import tensorflow as tf

    class MultiHead(tf.Module):
        """Three named outputs of different shapes from one input."""

        def __init__(self):
            super().__init__()
            init = tf.random.stateless_normal
            self.w1 = tf.Variable(init([6, 8], seed=[1, 2]) * 0.5, name="w1")
            self.b1 = tf.Variable(init([8], seed=[3, 4]) * 0.1, name="b1")
            self.w2 = tf.Variable(init([8, 3], seed=[5, 6]) * 0.5, name="w2")

        @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="x")])
        def __call__(self, x):
            h = tf.nn.relu(tf.matmul(x, self.w1) + self.b1)
            logits = tf.matmul(h, self.w2)
            return {"a_embedding": h, "b_logits": logits, "c_probs": tf.nn.softmax(logits)}

    return MultiHead(), {"x": _image((2, 6), 16)}


TF = {"tf-module": tf_module}

ARCHITECTURES = [*TORCH, *KERAS, *TF]

# --------------------------------------------------------------------------------------------
# generation


def _one_line(e: BaseException) -> str:
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return text[:400]


def _write_reference(d, inputs, outputs, framework, arch, files, errors, output_names):
    for name, a in inputs.items():
        np.save(os.path.join(d, f"input.{name}.npy"), a)
    ref = {
        "inputs": [{"name": k, "dtype": str(v.dtype), "shape": list(v.shape), "file": f"input.{k}.npy"} for k, v in inputs.items()],
        "outputs": [{"name": n, "dtype": str(o.dtype), "shape": list(o.shape), "data": o.reshape(-1).astype(np.float64).tolist()}
                    for n, o in zip(output_names, outputs)],
    }
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f)
    manifest = {"architecture": arch, "framework": framework, "hash": SCRIPT_HASH, "files": files, "producer_errors": errors}
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def _cached(d):
    try:
        with open(os.path.join(d, "manifest.json")) as f:
            return json.load(f).get("hash") == SCRIPT_HASH
    except (OSError, ValueError):
        return False


def _fresh_dir(d):
    import shutil

    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)


def _flatten(out):
    """A module's outputs in order, nested tuples (LSTM's (output, (h_n, c_n))) flattened."""
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _flatten(o)]
    return [out.detach().numpy()]


def gen_torch(arch, d, log):
    import torch

    torch.manual_seed(0)
    model, inputs, out_names = TORCH[arch]()
    model.eval()
    args = tuple(torch.from_numpy(v) for v in inputs.values())
    with torch.no_grad():
        out = model(*args)
    flat = _flatten(out)
    assert len(flat) == len(out_names), (arch, len(flat))
    files, errors = [], []
    torch.save(model.state_dict(), os.path.join(d, "state_dict.pt"))
    files.append({"producer": "torch.save", "source": "state_dict.pt", "holds": "weights"})
    if arch in ("torch-lstm", "torch-gru"):
        # nn.LSTM/GRU are module-spec leaves: the bundle carries the architecture.
        sys.path.insert(0, HERE)
        from modelbridge_spec import save_bundle

        # The signature names the outputs as the torch.onnx exports do (output, h_n, c_n), sizes
        # but the last left open: the sequence length stays dynamic (TF gets While loops).
        io = lambda name, a: {"name": name, "dtype": "float32", "shape": [-1] * (a.ndim - 1) + [int(a.shape[-1])]}  # noqa: E731
        signature = {"inputs": [io(k, v) for k, v in inputs.items()], "outputs": [io(n, a) for n, a in zip(out_names, flat)]}
        try:
            save_bundle(model, os.path.join(d, "bundle.safetensors"), signature=signature)
            files.append({"producer": "modelbridge_spec.save_bundle", "source": "bundle.safetensors", "holds": "graph"})
        except Exception as e:  # noqa: BLE001
            errors.append({"producer": "modelbridge_spec.save_bundle", "error": _one_line(e)})
    exports = [("torch.onnx.export dynamo opset 18", "dynamo-opset18.onnx", dict(dynamo=True, opset_version=18)),
               ("torch.onnx.export dynamo=False opset 17", "torchscript-opset17.onnx", dict(dynamo=False, opset_version=17))]
    for producer, name, kw in exports:
        path = os.path.join(d, name)
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, args, path, input_names=list(inputs), output_names=out_names, external_data=False, **kw) \
                    if kw["dynamo"] else torch.onnx.export(model, args, path, input_names=list(inputs), output_names=out_names, **kw)
            files.append({"producer": producer, "source": name, "holds": "graph"})
        except Exception as e:  # noqa: BLE001
            errors.append({"producer": producer, "error": _one_line(e)})
            log(f"{arch}: {producer} failed: {_one_line(e)}")
    # PyTorch's own program formats (issue 15): the same module, the same example input.
    for producer, name, save in [("torch.export.save", "exported.pt2", _save_export),
                                 ("torch.jit.trace + torch.jit.save", "traced.pt", _save_trace)]:
        try:
            import warnings

            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                save(model, args, os.path.join(d, name))
            files.append({"producer": producer, "source": name, "holds": "graph"})
        except Exception as e:  # noqa: BLE001
            errors.append({"producer": producer, "error": _one_line(e)})
            log(f"{arch}: {producer} failed: {_one_line(e)}")
    _write_reference(d, inputs, flat, "torch", arch, files, errors, out_names)


def _save_export(model, args, path):
    """torch.export.export with static shapes, then run_decompositions(): the core ATen opset
    src/formats/pt2 lowers (what the .pt2 peer tests export too)."""
    import torch

    ep = torch.export.export(model, args).run_decompositions()
    torch.export.save(ep, path)


def _save_trace(model, args, path):
    """torch.jit.trace (strict=False: transformers' models return dicts and tuples) and
    torch.jit.save, which stores the example inputs (traced_inputs.pkl) the reader types the
    inputs from."""
    import torch

    torch.jit.save(torch.jit.trace(model, args, strict=False), path)


def gen_tf(arch, d, log, tf2onnx_jobs, tfjs_jobs):
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    files, errors = [], []
    if arch in KERAS:
        model, inputs = KERAS[arch]()
        x = next(iter(inputs.values()))
        outs = [np.asarray(model(x, training=False))]
        out_names = ["output_0"]
        try:
            model.export(os.path.join(d, "keras-export"), verbose=False)
            files.append({"producer": "keras Model.export", "source": "keras-export", "holds": "graph"})
        except Exception as e:  # noqa: BLE001
            errors.append({"producer": "keras Model.export", "error": _one_line(e)})
        try:
            tf.saved_model.save(model, os.path.join(d, "tf-saved_model"))
            files.append({"producer": "tf.saved_model.save", "source": "tf-saved_model", "holds": "graph"})
        except Exception as e:  # noqa: BLE001
            errors.append({"producer": "tf.saved_model.save", "error": _one_line(e)})
        base = "keras-export"
    else:
        model, inputs = TF[arch]()
        res = model(tf.constant(next(iter(inputs.values()))))
        out_names = sorted(res)
        outs = [res[k].numpy() for k in out_names]
        tf.saved_model.save(model, os.path.join(d, "tf-saved_model"), signatures={"serving_default": model.__call__})
        files.append({"producer": "tf.saved_model.save", "source": "tf-saved_model", "holds": "graph"})
        base = "tf-saved_model"
    if any(f["source"] == base for f in files):
        tf2onnx_jobs.append((arch, os.path.join(d, base), os.path.join(d, "tf2onnx-opset17.onnx"), files, errors))
        tfjs_jobs.append({"arch": arch, "src": os.path.join(d, base), "dst": os.path.join(d, "tfjs")})
    return inputs, outs, out_names, files, errors


def run_tf2onnx(src, dst):
    import tf2onnx.convert

    argv = sys.argv
    sys.argv = ["tf2onnx.convert", "--saved-model", src, "--output", dst, "--opset", "17"]
    try:
        tf2onnx.convert.main()
    finally:
        sys.argv = argv
    if not os.path.exists(dst):
        raise RuntimeError("tf2onnx wrote no file")


def generate(out, only, tfjs_python):
    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    archs = [a for a in ARCHITECTURES if not only or a in only]
    todo = [a for a in archs if not _cached(os.path.join(out, a))]
    for arch in [a for a in todo if a in TORCH]:
        d = os.path.join(out, arch)
        _fresh_dir(d)
        log(f"zoo: generating {arch}")
        gen_torch(arch, d, log)
    tf_todo = [a for a in todo if a not in TORCH]
    if tf_todo:
        tf2onnx_jobs, tfjs_jobs, pending = [], [], {}
        for arch in tf_todo:
            d = os.path.join(out, arch)
            _fresh_dir(d)
            log(f"zoo: generating {arch}")
            pending[arch] = (d, *gen_tf(arch, d, log, tf2onnx_jobs, tfjs_jobs))
        # tensorflowjs_converter (its own venv, its own process) runs while tf2onnx runs here.
        converter = None
        if tfjs_jobs:
            jobs_file = os.path.join(out, "tfjs-jobs.json")
            with open(jobs_file, "w") as f:
                json.dump(tfjs_jobs, f)
            converter = subprocess.Popen([tfjs_python, __file__, "tfjs-convert", jobs_file], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for arch, src, dst, files, errors in tf2onnx_jobs:
            try:
                run_tf2onnx(src, dst)
                files.append({"producer": "tf2onnx opset 17", "source": os.path.basename(dst), "holds": "graph"})
            except BaseException as e:  # noqa: BLE001  (tf2onnx may sys.exit)
                errors.append({"producer": "tf2onnx opset 17", "error": _one_line(e)})
        if converter is not None:
            stdout, stderr = converter.communicate()
            try:
                results = json.loads(stdout.strip().split("\n")[-1])
            except ValueError:
                results = [{"error": f"tensorflowjs_converter exited with {converter.returncode}: {stderr.strip()[-300:]}"}] * len(tfjs_jobs)
            for job, res in zip(tfjs_jobs, results):
                files, errors = pending[job["arch"]][4], pending[job["arch"]][5]
                if "error" in res:
                    errors.append({"producer": "tensorflowjs_converter", "error": res["error"]})
                else:
                    files.append({"producer": "tensorflowjs_converter", "source": "tfjs/model.json", "holds": "graph"})
        for arch, (d, inputs, outs, out_names, files, errors) in pending.items():
            _write_reference(d, inputs, outs, "keras" if arch in KERAS else "tf", arch, files, errors, out_names)
    for arch in archs:
        with open(os.path.join(out, arch, "manifest.json")) as f:
            for e in json.load(f)["producer_errors"]:
                log(f"zoo: {arch}: producer {e['producer']} failed: {e['error']}")
    return {"architectures": archs, "generated": todo}


def tfjs_convert(jobs_file):
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as conv

    import contextlib

    results = []
    with contextlib.redirect_stdout(sys.stderr):
        for job in json.load(open(jobs_file)):
            try:
                conv.convert_tf_saved_model(job["src"], job["dst"], signature_def="serving_default", saved_model_tags="serve")
                results.append({"ok": True})
            except Exception as e:  # noqa: BLE001
                results.append({"error": _one_line(e)})
    print(json.dumps(results))


# --------------------------------------------------------------------------------------------
# consumer checks


def _norm(name):
    name = re.sub(r":\d+$", "", name)
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _load_reference(arch_dir):
    with open(os.path.join(arch_dir, "reference.json")) as f:
        ref = json.load(f)
    inputs = [(i["name"], np.load(os.path.join(arch_dir, i["file"]))) for i in ref["inputs"]]
    outputs = [(o["name"], np.array(o["data"], dtype=np.float64).reshape(o["shape"])) for o in ref["outputs"]]
    return inputs, outputs


def match_inputs(names, ref_inputs):
    """The reference input for each of the model's input names: by name, else by position."""
    by_name = {_norm(n): a for n, a in ref_inputs}
    if all(_norm(n) in by_name for n in names):
        return {n: by_name[_norm(n)] for n in names}
    if len(names) != len(ref_inputs):
        raise ValueError(f"inputs {names} cannot be paired with the reference's {[n for n, _ in ref_inputs]}")
    return {n: a for n, (_, a) in zip(names, ref_inputs)}


def _rel_error(a, r):
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a) == np.isfinite(r)):
        return float("inf")
    err = np.abs(a - r) / np.maximum(1.0, np.abs(r))
    return float(np.nanmax(err)) if err.size else 0.0


def _pair_by_value(got, ref_outputs):
    """When names and shapes cannot pair (a producer such as tensorflowjs_converter lost some output
    names), each reference output takes the one output of its shape that equals it within RTOL;
    None unless every reference output finds its own (then a wrong result still fails by position)."""
    used, pairs = set(), []
    for n, r in ref_outputs:
        k = next((k for k, (_, a) in enumerate(got) if k not in used and tuple(np.shape(a)) == tuple(r.shape) and _rel_error(a, r) <= RTOL), None)
        if k is None:
            return None
        used.add(k)
        pairs.append((n, got[k][1], r))
    return pairs


def compare_outputs(got, ref_outputs):
    """got: [(name, array)] in the model's order. Pairs by name, else unique shape, else value, else position."""
    if len(got) != len(ref_outputs):
        raise ValueError(f"{len(got)} outputs ({', '.join(n for n, _ in got)}), the reference has {len(ref_outputs)}")
    by_name = {_norm(n): a for n, a in got}
    pairs = []
    if all(_norm(n) in by_name for n, _ in ref_outputs):
        pairs = [(n, by_name[_norm(n)], r) for n, r in ref_outputs]
    else:
        shapes = [tuple(np.shape(a)) for _, a in got]
        if all(shapes.count(tuple(r.shape)) == 1 for _, r in ref_outputs) and len(set(shapes)) == len(shapes):
            pairs = [(n, got[shapes.index(tuple(r.shape))][1], r) for n, r in ref_outputs]
        else:
            pairs = _pair_by_value(got, ref_outputs) or [(n, a, r) for (_, a), (n, r) in zip(got, ref_outputs)]
    worst = 0.0
    for n, a, r in pairs:
        a = np.asarray(a)
        if tuple(a.shape) != tuple(r.shape):
            raise ValueError(f"output {n} has shape {list(a.shape)}, the reference {list(r.shape)}")
        a = a.astype(np.float64)
        err = np.abs(a - r) / np.maximum(1.0, np.abs(r))
        if not np.all(np.isfinite(a) == np.isfinite(r)):
            raise ValueError(f"output {n} has non-finite values where the reference has none")
        e = float(np.nanmax(err)) if err.size else 0.0
        if e > RTOL:
            raise ValueError(f"output {n} differs from the reference: max error {e:.3g} x max(1,|ref|)")
        worst = max(worst, e)
    return worst


def check_onnx(job):
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(job["file"], full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(job["file"], opts, providers=["CPUExecutionProvider"])
    ref_in, ref_out = _load_reference(job["arch_dir"])
    feeds = match_inputs([i.name for i in sess.get_inputs()], ref_in)
    types = {i.name: i.type for i in sess.get_inputs()}
    dt = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32}
    feeds = {k: v.astype(dt.get(types[k], v.dtype)) for k, v in feeds.items()}
    names = [o.name for o in sess.get_outputs()]
    got = sess.run(names, feeds)
    worst = compare_outputs(list(zip(names, got)), ref_out)
    return f"onnx.checker full_check + onnxruntime: {len(names)} outputs within {worst:.2g}"


def check_savedmodel(job):
    import tensorflow as tf

    loaded = tf.saved_model.load(job["file"])
    fn = loaded.signatures["serving_default"]
    ref_in, ref_out = _load_reference(job["arch_dir"])
    spec = fn.structured_input_signature[1]
    feeds = match_inputs(list(spec), ref_in)
    out = fn(**{k: tf.constant(v.astype(spec[k].dtype.as_numpy_dtype)) for k, v in feeds.items()})
    got = [(k, v.numpy()) for k, v in out.items()]
    worst = compare_outputs(got, ref_out)
    return f"tf.saved_model.load + serving_default: {len(got)} outputs within {worst:.2g}"


def check_graphdef(job):
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    with open(job["file"], "rb") as f:
        graph_def.ParseFromString(f.read())
    consumed = set()
    for n in graph_def.node:
        for i in n.input:
            consumed.add(i.lstrip("^").split(":")[0])
    placeholders = [n for n in graph_def.node if n.op == "Placeholder"]
    # The graph's outputs: the nodes nothing consumes (what a user would fetch).
    sinks = [n.name for n in graph_def.node if n.name not in consumed and n.op not in ("NoOp", "Const", "Placeholder", "Assert")]
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    ref_in, ref_out = _load_reference(job["arch_dir"])
    feeds = match_inputs([p.name for p in placeholders], ref_in)
    with tf.compat.v1.Session(graph=graph) as sess:
        feed = {}
        for p in placeholders:
            t = graph.get_tensor_by_name(p.name + ":0")
            feed[t] = feeds[p.name].astype(t.dtype.as_numpy_dtype)
        values = sess.run([s + ":0" for s in sinks], feed)
    worst = compare_outputs(list(zip(sinks, values)), ref_out)
    return f"GraphDef in a TF1 session: {len(sinks)} outputs within {worst:.2g}"


def _torch_tensors(path):
    import torch

    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, weights_only=True)


def check_torch(job):
    """A .safetensors or .pt that modelbridge wrote: loaded by torch's own (safe) loaders."""
    import torch

    sys.path.insert(0, HERE)
    import modelbridge_spec as ms

    tensors = _torch_tensors(job["file"])
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise ValueError("the file does not hold a dict of tensors")
    meta = ms.read_metadata(job["file"])
    spec = json.loads(meta[ms.MODULE_KEY]) if ms.MODULE_KEY in meta else None
    kind = spec.get("type") if isinstance(spec, dict) else None
    ref_in, ref_out = _load_reference(job["arch_dir"])
    detail = [f"{len(tensors)} tensors", f"spec {kind or 'none'}"]
    original = job.get("original")  # the producer's torch.save state dict, for torch-origin models
    if original:
        orig = torch.load(original, weights_only=True)
        if set(orig) - set(tensors) <= {k for k in orig if k.endswith("num_batches_tracked")} and set(tensors) <= set(orig):
            for k, v in tensors.items():
                o = orig[k]
                if v.dtype != o.dtype or v.shape != o.shape or v.numpy().tobytes() != o.numpy().tobytes():
                    raise ValueError(f"tensor {k} is not bit-identical to the original")
            sys.path.insert(0, HERE)
            # transformers imports torchvision when it is installed, which needs its op schemas
            # defined first (as generation does): without this the check would depend on whether a
            # torchvision architecture was checked before in this process.
            _torchvision()
            torch.manual_seed(0)
            model = TORCH[job["arch"]]()[0]
            state = {**{k: v for k, v in orig.items() if k not in tensors}, **tensors}
            model.load_state_dict(state, strict=True)
            model.eval()
            with torch.no_grad():
                out = model(*(torch.from_numpy(a) for _, a in ref_in))
            flat = _flatten(out)
            if len(flat) != len(ref_out):
                raise ValueError(f"the module gives {len(flat)} outputs, the reference {len(ref_out)}")
            worst = compare_outputs([(n, t) for (n, _), t in zip(ref_out, flat)], ref_out)
            detail.append(f"load_state_dict(strict) into the original module: bit-identical, outputs within {worst:.2g}")
            return "; ".join(detail)
        detail.append("names differ from the original module's state dict")
    if kind and kind != "Graph":
        model = ms.load_bundle(job["file"])
        with torch.no_grad():
            out = model(*(torch.from_numpy(a) for _, a in ref_in))
        flat = _flatten(out)
        got = list(zip([n for n, _ in ref_out], flat)) if len(flat) == len(ref_out) else [(str(i), t) for i, t in enumerate(flat)]
        worst = compare_outputs(got, ref_out)
        detail.append(f"modelbridge_spec.load_bundle ran it in torch: outputs within {worst:.2g}")
        return "; ".join(detail)
    if kind == "Graph" or job.get("holds") == "weights":
        # The general form runs only in modelbridge: the driver runs the file there.
        return {"detail": "; ".join(detail), "needs_runtime": kind == "Graph"}
    raise ValueError("no module spec: the file holds weights but no architecture")


CHECKS = {"onnx": check_onnx, "savedmodel": check_savedmodel, "graphdef": check_graphdef, "torch": check_torch}


def check(kind, jobs_file):
    with open(jobs_file) as f:
        jobs = json.load(f)
    results = []
    for job in jobs:
        try:
            fn = CHECKS[job["check"]]
            res = fn(job)
            results.append({"ok": True, **(res if isinstance(res, dict) else {"detail": res})})
        except BaseException as e:  # noqa: BLE001  one failed file is reported, the others still run
            if isinstance(e, KeyboardInterrupt):
                raise
            results.append({"ok": False, "error": _one_line(e)})
            if os.environ.get("ZOO_DEBUG"):
                traceback.print_exc()
    json.dump(results, sys.stdout)


def main():
    cmd, *args = sys.argv[1:]
    if cmd == "generate":
        out = args[0]
        only = None
        tfjs_python = os.path.join(os.path.dirname(HERE), ".peers", "tfjs-venv", "bin", "python")
        rest = args[1:]
        while rest:
            flag, value, *rest = rest
            if flag == "--only":
                only = set(value.split(","))
            elif flag == "--tfjs-python":
                tfjs_python = value
        os.makedirs(out, exist_ok=True)
        import contextlib

        # The exporters print progress on stdout; stdout carries only the final JSON line.
        real = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            result = generate(out, only, tfjs_python)
        print(json.dumps(result), file=real)
    elif cmd == "list":
        # Two groups the driver generates in parallel: torch (with transformers) and TensorFlow.
        print(json.dumps({"torch": list(TORCH), "tf": [*KERAS, *TF]}))
    elif cmd == "tfjs-convert":
        tfjs_convert(args[0])
    elif cmd == "check":
        check(args[0], args[1])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
