"""The modelbridge module spec in plain torch: JSON that mirrors torch.nn, stored in a bundle.

A bundle is a safetensors file whose ``__metadata__`` holds the architecture under
``modelbridge.module`` (``{"type": <torch.nn class>, <constructor arguments>...}``; containers
list children in ``modules``, a child's optional ``name`` is its state-dict prefix) and optionally
the graph signature under ``modelbridge.signature``. No pickle is read or written.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

MODULE_KEY = "modelbridge.module"
SIGNATURE_KEY = "modelbridge.signature"


class SpecError(ValueError):
    """A module or spec that modelbridge cannot describe or build."""


# Each supported torch.nn class with its constructor arguments, in the constructor's order
# (device and dtype are left out: they are not architecture). export_spec writes them in this
# order; test_modelbridge_spec.py checks the lists against inspect.signature.
LEAVES: dict[str, tuple[str, ...]] = {
    "Linear": ("in_features", "out_features", "bias"),
    "Conv1d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias", "padding_mode"),
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias", "padding_mode"),
    "ConvTranspose2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "groups", "bias", "dilation", "padding_mode"),
    "Embedding": ("num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse"),
    "MaxPool2d": ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
    "AvgPool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "Flatten": ("start_dim", "end_dim"),
    "ReLU": ("inplace",),
    "Sigmoid": (),
    "Tanh": (),
    "LeakyReLU": ("negative_slope", "inplace"),
    "Softmax": ("dim",),
    "LogSoftmax": ("dim",),
    "GELU": ("approximate",),
    "SiLU": ("inplace",),
    "Hardswish": ("inplace",),
    "BatchNorm1d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "BatchNorm2d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "LayerNorm": ("normalized_shape", "eps", "elementwise_affine", "bias"),
    "GroupNorm": ("num_groups", "num_channels", "eps", "affine"),
    # torch.nn.RNNBase's arguments (LSTM and GRU take *args, **kwargs); GRU has no projections.
    "LSTM": ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional", "proj_size"),
    "GRU": ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"),
    "Dropout": ("p", "inplace"),
    "Identity": (),
}

# Arguments a spec may carry beyond LEAVES. The norms' keyword-only `bias` exists only in recent
# torch; export_spec writes it only when false so specs stay loadable by older torch.
EXTRA_FIELDS: dict[str, tuple[str, ...]] = {"BatchNorm1d": ("bias",), "BatchNorm2d": ("bias",), "GroupNorm": ("bias",)}

# Arguments stored as whether a parameter exists rather than as an attribute of the same name.
_HAS_PARAM = {("Linear", "bias"), ("Conv1d", "bias"), ("Conv2d", "bias"), ("ConvTranspose2d", "bias"), ("LayerNorm", "bias")}

# Containers: Sequential runs its children in order; ModuleList and ModuleDict only hold them
# (they have no forward), so a spec with one describes a state dict's layout, which modelbridge
# can store and check but not run. ModuleDict children always carry their key as `name`.
CONTAINERS: dict[str, type[nn.Module]] = {"Sequential": nn.Sequential, "ModuleList": nn.ModuleList, "ModuleDict": nn.ModuleDict}


def supported_types() -> list[str]:
    """The `type` values build_module accepts."""
    return [*CONTAINERS, *LEAVES]


def _where(path: str) -> str:
    return f"at {path!r}" if path else "at the root"


def _json_value(value: Any, what: str) -> Any:
    """A constructor argument as JSON: tuples become lists; anything else must be plain."""
    if isinstance(value, (tuple, list, torch.Size)):
        return [_json_value(v, what) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(f"{what} is {value}, which JSON cannot hold")
        return value
    raise SpecError(f"{what} has type {type(value).__name__}, which a module spec cannot hold")


def _class_name(module: nn.Module) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_plain(module: nn.Module, path: str) -> None:
    hooks = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    if any(getattr(module, h, None) for h in hooks):
        raise SpecError(f"{_class_name(module)} {_where(path)} has hooks registered; a module spec cannot describe them")


def _export(module: nn.Module, path: str) -> dict[str, Any]:
    _check_plain(module, path)
    cls = type(module)
    container = next((k for k, base in CONTAINERS.items() if isinstance(module, base)), None)
    if container is not None:
        base = CONTAINERS[container]
        if cls.forward is not base.forward:
            raise SpecError(f"unsupported module class {_class_name(module)} {_where(path)}: a {container} subclass with its own forward")
        children = []
        for index, (name, child) in enumerate(module.named_children()):
            sub = _export(child, f"{path}.{name}" if path else name)
            keep_name = container == "ModuleDict" or name != str(index)
            children.append({"name": name, **sub} if keep_name else sub)
        return {"type": container, "modules": children}
    name = cls.__name__
    if name not in LEAVES or cls is not getattr(nn, name):
        known = ", ".join(supported_types())
        base = next((b for b in cls.__mro__[1:] if b.__module__.startswith("torch.nn") and b.__name__ in LEAVES), None)
        detail = f" (a subclass of torch.nn.{base.__name__}; only the exact class is supported)" if base else ""
        if base is None and any(True for _ in module.children()):
            detail = " (a custom module with its own forward; the containers a spec can describe are torch.nn.Sequential, ModuleList and ModuleDict)"
        raise SpecError(f"unsupported module class {_class_name(module)} {_where(path)}{detail}; supported: {known}")
    spec: dict[str, Any] = {"type": name}
    for arg in LEAVES[name]:
        value = getattr(module, arg) is not None if (name, arg) in _HAS_PARAM else getattr(module, arg)
        spec[arg] = _json_value(value, f"{name}.{arg} {_where(path)}")
    if name in ("BatchNorm1d", "BatchNorm2d", "GroupNorm") and module.affine and module.bias is None:
        spec["bias"] = False
    return spec


def export_spec(module: nn.Module) -> dict[str, Any]:
    """The module spec of `module`: a dict ready for json.dumps, every constructor argument written."""
    spec = _export(module, "")
    with torch.device("meta"):
        rebuilt = build_module(spec)
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if want != got:
        unexpected = sorted(set(want) - set(got))
        missing = sorted(set(got) - set(want))
        reshaped = sorted(k for k in set(want) & set(got) if want[k] != got[k])
        raise SpecError(
            "the spec does not reproduce the module's state dict "
            f"(not described: {unexpected[:3]}, missing: {missing[:3]}, other shape: {reshaped[:3]})"
        )
    return spec


def _arg(value: Any) -> Any:
    return tuple(_arg(v) for v in value) if isinstance(value, list) else value


def _build(spec: Any, path: str) -> nn.Module:
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise SpecError(f"module spec {_where(path)} must be an object with a string \"type\"")
    kind = spec["type"]
    if kind == "Graph":
        raise SpecError(
            f"module spec {_where(path)} has type \"Graph\" (the general form of ONNX ops): "
            "only the modelbridge runtime runs it; torch.nn cannot build it"
        )
    if kind in CONTAINERS:
        unknown = sorted(set(spec) - {"type", "name", "modules"})
        if unknown:
            raise SpecError(f"{kind} {_where(path)}: unknown field(s) {', '.join(unknown)}")
        modules = spec.get("modules")
        if not isinstance(modules, list):
            raise SpecError(f"{kind} {_where(path)} needs a \"modules\" list")
        children: OrderedDict[str, nn.Module] = OrderedDict()
        for index, child in enumerate(modules):
            name = child.get("name", str(index)) if isinstance(child, dict) else str(index)
            if not isinstance(name, str) or not name or "." in name or name in children:
                raise SpecError(f"{kind} {_where(path)}: child name {name!r} is empty, repeated, not a string or contains a dot")
            if kind == "ModuleList" and name != str(index):
                raise SpecError(f"ModuleList {_where(path)}: child {index} is named {name!r}; a ModuleList's children are its indices")
            children[name] = _build(child, f"{path}.{name}" if path else name)
        if kind == "ModuleList":
            return nn.ModuleList(children.values())
        return nn.Sequential(children) if kind == "Sequential" else nn.ModuleDict(children)
    if kind not in LEAVES:
        raise SpecError(f"unknown module type {kind!r} {_where(path)}; supported: {', '.join(supported_types())}, and Graph (modelbridge runtime only)")
    allowed = {"type", "name", *LEAVES[kind], *EXTRA_FIELDS.get(kind, ())}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise SpecError(f"{kind} {_where(path)}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(a for a in LEAVES[kind] + EXTRA_FIELDS.get(kind, ()))}")
    kwargs = {k: _arg(v) for k, v in spec.items() if k not in ("type", "name")}
    try:
        return getattr(nn, kind)(**kwargs)
    except Exception as e:  # torch reports bad arguments with TypeError, ValueError, RuntimeError...
        raise SpecError(f"{kind} {_where(path)}: torch.nn.{kind}(**{json.dumps(spec_args(spec))}) failed: {e}") from e


def spec_args(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec's constructor arguments (everything but type, name, modules)."""
    return {k: v for k, v in spec.items() if k not in ("type", "name", "modules")}


def build_module(spec: dict[str, Any]) -> nn.Module:
    """The torch.nn module a spec describes, freshly initialised (torch's default training mode)."""
    return _build(spec, "")


def save_bundle(module: nn.Module, path: str, signature: dict[str, Any] | None = None, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """Writes module's state dict and spec (plus signature, extra metadata) as safetensors; returns the spec."""
    from safetensors.torch import save_file

    spec = export_spec(module)
    meta = {**(metadata or {}), "format": "pt", MODULE_KEY: json.dumps(spec, separators=(",", ":"))}
    if signature is not None:
        meta[SIGNATURE_KEY] = json.dumps(signature, separators=(",", ":"))
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    save_file(state, path, metadata=meta)
    _sort_metadata(path)
    return spec


def _sort_metadata(path: str) -> None:
    """Rewrites the header with `__metadata__` keys sorted, so equal bundles are equal bytes.

    The safetensors package keeps metadata in a hash map whose order varies from run to run. The
    header is rewritten in place only if Python re-serialises the original byte for byte (so the
    new one is formatted as safetensors would), and the new one then has the same length.
    """
    import struct

    with open(path, "r+b") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        raw = f.read(size)
        text = raw.rstrip(b" ").decode("utf-8")
        header = json.loads(text, object_pairs_hook=OrderedDict)
        dump = lambda h: json.dumps(h, separators=(",", ":"), ensure_ascii=False).encode("utf-8")  # noqa: E731
        if "__metadata__" not in header or dump(header) != text.encode("utf-8"):
            return
        header["__metadata__"] = OrderedDict(sorted(header["__metadata__"].items()))
        new = dump(header)
        if len(new) == len(text.encode("utf-8")):
            f.seek(8)
            f.write(new)


def _is_torch_checkpoint(path: str) -> bool:
    return path.endswith((".pt", ".pth"))


def _read_pt_metadata(path: str) -> dict[str, str]:
    """modelbridge's record inside a torch.save archive, read with zipfile: no pickle runs."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/modelbridge/metadata.json")]
            if not names:
                return {}
            data = json.loads(archive.read(names[0]).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise SpecError(f"{path}: not a readable torch.save archive ({e})") from e
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise SpecError(f"{path}: modelbridge/metadata.json must map strings to strings")
    return data


def read_metadata(path: str) -> dict[str, str]:
    """A bundle's metadata: safetensors `__metadata__`, or modelbridge's record in a .pt archive."""
    if _is_torch_checkpoint(path):
        return _read_pt_metadata(path)
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            return dict(f.metadata() or {})
    except SafetensorError as e:
        raise SpecError(f"{path}: not a readable safetensors file ({e})") from e


def load_bundle(path: str) -> nn.Module:
    """The module a bundle (.safetensors, or a .pt written by modelbridge) describes, weights loaded strictly, in eval mode."""
    from safetensors.torch import load_file

    metadata = read_metadata(path)
    text = metadata.get(MODULE_KEY)
    if text is None:
        raise SpecError(f"{path}: no {MODULE_KEY} metadata: a bare state dict, not a modelbridge bundle")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"{path}: metadata {MODULE_KEY} is not valid JSON ({e})") from e
    try:
        module = build_module(spec)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from e
    # A .pt goes through torch's own safe loader, as a careful user would load it.
    state = torch.load(path, weights_only=True) if _is_torch_checkpoint(path) else load_file(path)
    floats = {t.dtype for t in state.values() if t.is_floating_point()}
    if len(floats) == 1:
        module.to(floats.pop())  # keep float64/float16 weights as stored, as torch.save would
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise SpecError(f"{path}: the tensors do not match the module spec: {detail}") from e
    return module.eval()


def load_signature(path: str) -> dict[str, Any] | None:
    """A bundle's stored signature, or None."""
    text = read_metadata(path).get(SIGNATURE_KEY)
    return None if text is None else json.loads(text)
