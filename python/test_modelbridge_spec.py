"""Plain-assert tests for modelbridge_spec (no pytest): `python python/test_modelbridge_spec.py`."""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # keep python/ free of __pycache__

import inspect
import json
import os
import tempfile
import traceback
import warnings
from collections import OrderedDict

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import modelbridge_spec as ms  # noqa: E402


def raises(fn, *needles: str) -> str:
    """Calls fn, which must raise SpecError whose message contains every needle."""
    try:
        fn()
    except ms.SpecError as e:
        for needle in needles:
            assert needle in str(e), f"{needle!r} not in error {str(e)!r}"
        return str(e)
    raise AssertionError(f"no SpecError (wanted one mentioning {needles})")


def randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial values in every parameter and buffer (BatchNorm stats, num_batches_tracked)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict(keep_vars=True).items():
            if name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g))
    return module


def round_trip(module: nn.Module, x: torch.Tensor) -> dict:
    """export_spec -> JSON -> build_module -> load_state_dict(strict): same spec, state and outputs."""
    module = randomise(module).eval()
    spec = ms.export_spec(module)
    text = json.dumps(spec, separators=(",", ":"))
    rebuilt = ms.build_module(json.loads(text))
    rebuilt.load_state_dict(module.state_dict(), strict=True)
    rebuilt.eval()
    assert ms.export_spec(rebuilt) == spec, (spec, ms.export_spec(rebuilt))
    assert list(rebuilt.state_dict()) == list(module.state_dict())
    with torch.no_grad():
        want, got = module(x.clone()), rebuilt(x.clone())
    assert same_outputs(want, got), f"outputs differ for {text}"
    return spec


def same_outputs(a, b) -> bool:
    """Equal tensors, or equal nested tuples of them (an LSTM returns (output, (h, c)))."""
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(same_outputs(x, y) for x, y in zip(a, b))
    return a.shape == b.shape and torch.equal(a, b)


def tokens(*shape: int, n: int = 7) -> torch.Tensor:
    return torch.randint(0, n, shape, generator=torch.Generator().manual_seed(2))


def img(*shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(1))


LEAF_CASES = [
    (nn.Linear(3, 4), img(2, 3)),
    (nn.Linear(3, 4, bias=False), img(2, 5, 3)),
    (nn.Conv2d(2, 4, 3), img(2, 2, 7, 6)),
    (nn.Conv2d(2, 4, (3, 1), stride=2, padding=(1, 0), dilation=(2, 1), groups=2, bias=False, padding_mode="reflect"), img(1, 2, 9, 8)),
    (nn.Conv2d(2, 2, 3, padding="same", padding_mode="circular"), img(1, 2, 5, 5)),
    (nn.Conv2d(2, 2, 2, padding="valid"), img(1, 2, 5, 5)),
    (nn.MaxPool2d(2), img(2, 3, 6, 6)),
    (nn.MaxPool2d((3, 2), stride=(2, 1), padding=1, dilation=(1, 2), ceil_mode=True), img(1, 2, 9, 8)),
    (nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), img(1, 2, 8, 7)),
    (nn.AvgPool2d(2, divisor_override=3), img(1, 2, 4, 4)),
    (nn.Flatten(), img(2, 3, 4, 5)),
    (nn.Flatten(0, 2), img(2, 3, 4, 5)),
    (nn.ReLU(), img(2, 5)),
    (nn.ReLU(inplace=True), img(2, 5)),
    (nn.Sigmoid(), img(2, 5)),
    (nn.Tanh(), img(2, 5)),
    (nn.LeakyReLU(0.3), img(2, 5)),
    (nn.Softmax(dim=1), img(2, 5)),
    (nn.LogSoftmax(dim=-1), img(2, 3, 5)),
    (nn.GELU(), img(2, 5)),
    (nn.GELU(approximate="tanh"), img(2, 5)),
    (nn.BatchNorm2d(3), img(2, 3, 4, 4)),
    (nn.BatchNorm2d(3, eps=1e-3, momentum=None), img(2, 3, 4, 4)),
    (nn.BatchNorm2d(3, affine=False), img(2, 3, 4, 4)),
    (nn.BatchNorm2d(3, track_running_stats=False), img(2, 3, 4, 4)),
    (nn.LayerNorm(5), img(2, 5)),
    (nn.LayerNorm([3, 5], eps=1e-6, bias=False), img(2, 3, 5)),
    (nn.LayerNorm(5, elementwise_affine=False), img(2, 5)),
    (nn.Dropout(0.3), img(2, 5)),
    (nn.Identity(), img(2, 5)),
    (nn.Conv1d(3, 4, 3), img(2, 3, 9)),
    (nn.Conv1d(4, 2, 2, stride=2, padding=1, dilation=2, groups=2, bias=False), img(1, 4, 11)),
    (nn.ConvTranspose2d(3, 2, 3), img(2, 3, 5, 4)),
    (nn.ConvTranspose2d(4, 2, (3, 2), stride=2, padding=1, output_padding=1, groups=2, bias=False, dilation=(1, 2)), img(1, 4, 5, 5)),
    (nn.Embedding(7, 4), tokens(2, 5)),
    (nn.Embedding(7, 3, padding_idx=0), tokens(3, 2)),
    (nn.SiLU(), img(2, 5)),
    (nn.Hardswish(), img(2, 5) * 4),
    (nn.BatchNorm1d(3), img(4, 3)),
    (nn.BatchNorm1d(3, affine=False, eps=1e-3), img(2, 3, 6)),
    (nn.GroupNorm(2, 4), img(2, 4, 3, 3)),
    (nn.GroupNorm(3, 6, eps=1e-3, affine=False), img(2, 6, 5)),
    (nn.LSTM(3, 4), img(5, 2, 3)),
    (nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True), img(2, 5, 3)),
    (nn.LSTM(3, 4, bias=False, proj_size=2), img(5, 2, 3)),
    (nn.GRU(3, 4), img(5, 2, 3)),
    (nn.GRU(3, 4, num_layers=2, batch_first=True, bidirectional=True, bias=False), img(2, 5, 3)),
]
if "bias" in inspect.signature(nn.BatchNorm2d).parameters:  # keyword-only, recent torch only
    LEAF_CASES.append((nn.BatchNorm2d(3, bias=False), img(2, 3, 4, 4)))
    LEAF_CASES.append((nn.BatchNorm1d(3, bias=False), img(2, 3)))
if "bias" in inspect.signature(nn.GroupNorm).parameters:
    LEAF_CASES.append((nn.GroupNorm(2, 4, bias=False), img(2, 4, 3)))

# A Sequential feeds each child's output to the next: an LSTM or GRU (which returns a tuple) can
# only come last there.
CHAINS = [
    (nn.Sequential(nn.Embedding(9, 4), nn.LSTM(4, 3, batch_first=True)), tokens(2, 5, n=9)),
    (nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.BatchNorm1d(4), nn.SiLU(), nn.Conv1d(4, 2, 1)), img(2, 2, 7)),
    (nn.Sequential(nn.ConvTranspose2d(2, 4, 2, stride=2), nn.GroupNorm(2, 4), nn.Hardswish(), nn.GELU(approximate="tanh")), img(1, 2, 3, 3)),
]


def test_leaf_arguments_follow_the_constructors():
    for name, args in ms.LEAVES.items():
        # LSTM and GRU take *args, **kwargs: their arguments are RNNBase's after `mode`.
        cls = nn.RNNBase if name in ("LSTM", "GRU") else getattr(nn, name)
        params = inspect.signature(cls).parameters.values()
        skip = {"device", "dtype", "mode"} | ({"proj_size"} if name == "GRU" else set())
        ordered = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD and p.name not in skip and not p.name.startswith("_")]
        assert list(args) == ordered, f"{name}: {args} != torch's {ordered}"


def test_every_type_round_trips_bare_and_in_a_sequential():
    covered = set()
    for module, x in LEAF_CASES:
        spec = round_trip(module, x)
        covered.add(spec["type"])
        assert list(spec)[1:] == [a for a in ms.LEAVES[spec["type"]] + ms.EXTRA_FIELDS.get(spec["type"], ()) if a in spec], spec
    assert covered == set(ms.LEAVES), set(ms.LEAVES) - covered
    for module, x in LEAF_CASES:
        seq = nn.Sequential(nn.Identity(), module)
        spec = round_trip(seq, x)
        assert spec["type"] == "Sequential" and len(spec["modules"]) == 2 and "name" not in spec["modules"][1]
    for seq, x in CHAINS:
        round_trip(seq, x)


def test_module_lists_and_dicts_nest():
    model = nn.Sequential(OrderedDict(
        embed=nn.Embedding(5, 4),
        blocks=nn.ModuleList([nn.Linear(4, 4), nn.Sequential(nn.LayerNorm(4), nn.GELU())]),
        heads=nn.ModuleDict(OrderedDict(cls=nn.Linear(4, 2), box=nn.ModuleList([nn.Linear(4, 4)]))),
    ))
    randomise(model)
    spec = ms.export_spec(model)
    blocks = spec["modules"][1]
    heads = spec["modules"][2]
    assert blocks["type"] == "ModuleList" and [m.get("name") for m in blocks["modules"]] == [None, None]
    assert heads["type"] == "ModuleDict" and [m["name"] for m in heads["modules"]] == ["cls", "box"]
    rebuilt = ms.build_module(json.loads(json.dumps(spec)))
    assert isinstance(rebuilt.blocks, nn.ModuleList) and isinstance(rebuilt.heads, nn.ModuleDict)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    assert list(rebuilt.state_dict()) == list(model.state_dict())
    assert "heads.box.0.weight" in rebuilt.state_dict()
    assert ms.export_spec(rebuilt) == spec
    raises(lambda: ms.build_module({"type": "ModuleList", "modules": [{"name": "a", "type": "ReLU"}]}), "ModuleList", "indices")
    raises(lambda: ms.build_module({"type": "ModuleDict", "modules": [{"type": "ReLU"}, {"type": "ReLU", "name": "0"}]}), "'0'")

    class Looped(nn.ModuleList):
        def forward(self, x):
            for m in self:
                x = m(x)
            return x

    raises(lambda: ms.export_spec(Looped([nn.ReLU()])), "Looped", "own forward")


def test_stacks_named_and_nested():
    cnn = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 2, 3, groups=2), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2, 5), nn.LogSoftmax(dim=1),
    )
    round_trip(cnn, img(2, 1, 8, 8))
    named = nn.Sequential(OrderedDict(
        fc1=nn.Linear(3, 4), act=nn.Tanh(),
        block=nn.Sequential(OrderedDict(norm=nn.LayerNorm(4), gelu=nn.GELU())),
        inner=nn.Sequential(nn.Linear(4, 2), nn.Softmax(dim=1)),
    ))
    spec = round_trip(named, img(2, 3))
    assert [m.get("name") for m in spec["modules"]] == ["fc1", "act", "block", "inner"]
    assert [m.get("name") for m in spec["modules"][3]["modules"]] == [None, None]
    keys = list(ms.build_module(spec).state_dict())
    assert keys == ["fc1.weight", "fc1.bias", "block.norm.weight", "block.norm.bias", "inner.0.weight", "inner.0.bias"], keys

    class Stack(nn.Sequential):  # a Sequential subclass without its own forward is a Sequential
        pass

    assert ms.export_spec(Stack(nn.Linear(2, 2), nn.ReLU()))["type"] == "Sequential"


def test_the_documented_example_and_omitted_defaults():
    example = {"type": "Sequential", "modules": [
        {"type": "Linear", "in_features": 2, "out_features": 2, "bias": True}, {"type": "Sigmoid"},
        {"type": "Linear", "in_features": 2, "out_features": 1, "bias": True}, {"type": "Sigmoid"},
    ]}
    assert list(ms.build_module(example).state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    named = ms.build_module({"type": "Sequential", "modules": [
        {"name": "fc1", "type": "Linear", "in_features": 2, "out_features": 2}, {"name": "act", "type": "Sigmoid"},
    ]})
    assert list(named.state_dict()) == ["fc1.weight", "fc1.bias"]
    # Omitted arguments take torch's defaults; export writes every one, in constructor order.
    conv = ms.export_spec(ms.build_module({"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3}))
    assert conv == ms.export_spec(nn.Conv2d(1, 2, 3))
    assert list(conv) == ["type", "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias", "padding_mode"]
    assert conv["kernel_size"] == [3, 3] and conv["padding"] == [0, 0] and conv["padding_mode"] == "zeros"
    pool = ms.export_spec(nn.MaxPool2d(2))
    assert pool == {"type": "MaxPool2d", "kernel_size": 2, "stride": 2, "padding": 0, "dilation": 1, "return_indices": False, "ceil_mode": False}
    assert ms.export_spec(nn.AvgPool2d((2, 3)))["divisor_override"] is None
    assert ms.export_spec(nn.LayerNorm(4)) == {"type": "LayerNorm", "normalized_shape": [4], "eps": 1e-5, "elementwise_affine": True, "bias": True}
    assert ms.export_spec(nn.BatchNorm2d(4)) == {"type": "BatchNorm2d", "num_features": 4, "eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True}
    assert ms.export_spec(nn.Sigmoid()) == {"type": "Sigmoid"}


def test_bundles_keep_buffers_metadata_and_dtype():
    model = randomise(nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.LayerNorm(48), nn.Linear(48, 2),
    )).eval()
    x = img(2, 1, 4, 4)
    signature = {"inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 1, 4, 4]}], "outputs": [{"name": "y", "dtype": "float32", "shape": [-1, 2]}]}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.safetensors")
        spec = ms.save_bundle(model, path, signature=signature)
        meta = ms.read_metadata(path)
        assert meta["format"] == "pt"
        assert meta[ms.MODULE_KEY] == json.dumps(spec, separators=(",", ":"))
        assert ms.load_signature(path) == signature
        loaded = ms.load_bundle(path)
        assert not loaded.training
        state = loaded.state_dict()
        assert "1.num_batches_tracked" in state and int(state["1.num_batches_tracked"]) == 7
        assert state["1.num_batches_tracked"].dtype == torch.int64
        for k, v in model.state_dict().items():
            assert torch.equal(v, state[k]), k
        with torch.no_grad():
            assert torch.equal(model(x), loaded(x))

        # Equal bundles are equal bytes: safetensors' own metadata order varies between runs.
        extra = {"note": "ünïcode \"quoted\" \\ / \n\t\u0001 ✓", "zz": "last", "aa": "first"}
        blobs = []
        for i in range(4):
            ms.save_bundle(model, path, signature=signature, metadata=extra)
            with open(path, "rb") as f:
                blobs.append(f.read())
            assert ms.read_metadata(path) == {**extra, "format": "pt", ms.MODULE_KEY: meta[ms.MODULE_KEY], ms.SIGNATURE_KEY: meta[ms.SIGNATURE_KEY]}
        assert all(b == blobs[0] for b in blobs)
        size = int.from_bytes(blobs[0][:8], "little")
        keys = list(json.loads(blobs[0][8 : 8 + size], object_pairs_hook=OrderedDict)["__metadata__"])
        assert keys == sorted(keys), keys

        wide = randomise(nn.Sequential(nn.Linear(3, 2), nn.Tanh())).double().eval()
        ms.save_bundle(wide, path)
        again = ms.load_bundle(path)
        assert again[0].weight.dtype == torch.float64 and ms.load_signature(path) is None
        assert torch.equal(again(img(2, 3).double()), wide(img(2, 3).double()))


def test_unsupported_modules_are_named():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.fc(x)) * 2

    class Twice(nn.Sequential):
        def forward(self, x):
            return super().forward(super().forward(x))

    class MyReLU(nn.ReLU):
        pass

    class Scaled(nn.Sequential):
        def __init__(self):
            super().__init__(nn.Linear(2, 2))
            self.register_buffer("scale", torch.ones(1))

    raises(lambda: ms.export_spec(Net()), "Net", "at the root", "custom module")
    raises(lambda: ms.export_spec(nn.Sequential(nn.Linear(2, 2), Net())), "Net", "at '1'")
    raises(lambda: ms.export_spec(Twice(nn.Linear(2, 2))), "Twice", "own forward")
    raises(lambda: ms.export_spec(nn.Sequential(MyReLU())), "MyReLU", "subclass of torch.nn.ReLU")
    raises(lambda: ms.export_spec(nn.Sequential(nn.Conv3d(1, 1, 1))), "Conv3d", "supported: Sequential")
    raises(lambda: ms.export_spec(Scaled()), "scale")
    hooked = nn.Sequential(nn.Linear(2, 2))
    hooked[0].register_forward_hook(lambda m, i, o: o * 2)
    raises(lambda: ms.export_spec(hooked), "hooks", "at '0'")


def test_bad_specs_are_reported():
    raises(lambda: ms.build_module({"type": "Graph", "nodes": []}), "Graph", "only the modelbridge runtime runs it")
    raises(lambda: ms.build_module({"type": "Sequential", "modules": [{"type": "Graph"}]}), "Graph", "at '0'")
    raises(lambda: ms.build_module({"type": "Conv3d"}), "unknown module type 'Conv3d'")
    raises(lambda: ms.build_module({"type": "Linear", "in_features": 2, "out_feature": 3}), "unknown field(s) out_feature")
    raises(lambda: ms.build_module({"type": "Linear", "in_features": 2}), "Linear", "out_features")
    raises(lambda: ms.build_module({"type": "Sequential"}), "modules")
    raises(lambda: ms.build_module({"type": "Sequential", "modules": [{"name": "a", "type": "ReLU"}, {"name": "a", "type": "ReLU"}]}), "'a'")
    raises(lambda: ms.build_module({"type": "Sequential", "modules": [{"name": "a.b", "type": "ReLU"}]}), "dot")
    raises(lambda: ms.build_module({"type": "Sequential", "modules": ["ReLU"]}), "string \"type\"")
    raises(lambda: ms.build_module([]), "string \"type\"")


def test_bad_bundles_are_reported():
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        bare = os.path.join(tmp, "bare.safetensors")
        save_file({"w": torch.zeros(2)}, bare)
        raises(lambda: ms.load_bundle(bare), "no modelbridge.module metadata")
        short = os.path.join(tmp, "short.safetensors")
        spec = json.dumps({"type": "Sequential", "modules": [{"type": "Linear", "in_features": 2, "out_features": 1}]})
        save_file({"0.weight": torch.zeros(1, 2)}, short, metadata={ms.MODULE_KEY: spec})
        raises(lambda: ms.load_bundle(short), "0.bias")
        wrong = os.path.join(tmp, "wrong.safetensors")
        save_file({"0.weight": torch.zeros(2, 2), "0.bias": torch.zeros(1)}, wrong, metadata={ms.MODULE_KEY: spec})
        raises(lambda: ms.load_bundle(wrong), "0.weight", "size mismatch")
        graph = os.path.join(tmp, "graph.safetensors")
        save_file({"w": torch.zeros(2)}, graph, metadata={ms.MODULE_KEY: '{"type":"Graph"}'})
        raises(lambda: ms.load_bundle(graph), "only the modelbridge runtime runs it")
        garbage = os.path.join(tmp, "garbage.safetensors")
        with open(garbage, "wb") as f:
            f.write(b"not a safetensors file")
        raises(lambda: ms.load_bundle(garbage), "not a readable safetensors file")


def main() -> int:
    warnings.simplefilter("error")  # a deprecation in torch should be seen
    # A note about torch's own CPU kernel choice, not about the spec.
    warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
    tests = [(name, fn) for name, fn in globals().items() if name.startswith("test_") and callable(fn)]
    failed = 0
    for name, fn in tests:
        try:
            fn()
            print(f"ok   {name}")
        except Exception:
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
    print(f"{len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
