#!/usr/bin/env python3
"""Real PyTorch as modelbridge's peer: the tests run this to cross-check bundles.

Every command prints one JSON document on stdout. Expected failures print one line
(`cross_check: error: ...`) on stderr and exit with code 2.

  predict <bundle.safetensors> --inputs JSON|@file|-
      {"outputs": [<nested list per model output>], "shapes": [[...]],
       "weights": {<state-dict key>: [flat values]}}
  train-or <out.safetensors or out.pt> [--seed N] [--epochs N] [--lr X]   (.pt: plain torch.save state dict + <out>.module.json)
      {"predictions": [p00, p01, p10, p11], "loss": float, "bundle": path}
  make-zoo <dir> [--seed N]
      {"bundles": [{"name", "bundle", "case", "input_shape", "output_shape"}]}
      writing <dir>/<name>.safetensors and <dir>/<name>.json ({"input": [...], "output": [...]})
      for mlp, cnn, cnn_options, norm_mlp and named (batch 2, seeded, eval mode)
  inspect <bundle.safetensors>
      {"metadata": {...}, "tensors": {<key>: {"dtype", "shape"}}}

Non-finite floats appear as the strings "NaN", "Infinity", "-Infinity" (JSON has no such
numbers; JavaScript's Number() reads these strings back).
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # keep python/ free of __pycache__

import argparse
import json
import math
import os
from collections import OrderedDict
from typing import Any, NoReturn

PROG = "cross_check"


class CheckError(Exception):
    """An expected failure: reported as one line, exit code 2."""


def fail(message: str) -> NoReturn:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(2)


torch: Any = None
nn: Any = None
spec_lib: Any = None


def load_frameworks() -> None:
    """Imports torch and modelbridge_spec (about a second), only for the commands that need them."""
    global torch, nn, spec_lib
    try:
        import torch as torch_module

        import modelbridge_spec
    except ImportError as e:  # pragma: no cover - depends on the environment
        fail(f"cannot import {e.name or e}: run scripts/peers-env.sh and use .peers/venv/bin/python")
    torch, nn, spec_lib = torch_module, torch_module.nn, modelbridge_spec


# ---------------------------------------------------------------------------------------------
# JSON helpers


def _finite(value: Any) -> Any:
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def tensor_json(t: torch.Tensor, flat: bool = False) -> Any:
    """A tensor as (nested or flat) JSON numbers; float32 values convert to doubles exactly."""
    t = t.detach().cpu()
    if flat:
        t = t.reshape(-1)
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    return _finite(t.tolist())


def emit(document: Any) -> None:
    sys.stdout.write(json.dumps(document, allow_nan=False, separators=(",", ":")))
    sys.stdout.write("\n")


def read_inputs(text: str) -> Any:
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckError(f"--inputs is not valid JSON: {e}") from None


def signature_for(x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    io = lambda name, t: {"name": name, "dtype": "float32", "shape": [-1, *t.shape[1:]]}  # noqa: E731
    return {"inputs": [io("x", x)], "outputs": [io("y", y)]}


# ---------------------------------------------------------------------------------------------
# Commands


def cmd_predict(args: argparse.Namespace) -> None:
    model = spec_lib.load_bundle(args.bundle)
    data = read_inputs(args.inputs)
    try:
        x = torch.tensor(data, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckError(f"--inputs must be a nested list of numbers with a regular shape: {e}") from None
    floats = {p.dtype for p in model.state_dict().values() if p.is_floating_point()}
    if len(floats) == 1:
        x = x.to(floats.pop())
    try:
        with torch.no_grad():
            y = model(x)
    except RuntimeError as e:
        raise CheckError(f"the model cannot run on an input of shape {list(x.shape)}: {e}") from None
    outputs = list(y) if isinstance(y, (tuple, list)) else [y]
    emit(
        {
            "outputs": [tensor_json(o) for o in outputs],
            "shapes": [list(o.shape) for o in outputs],
            "weights": {k: tensor_json(v, flat=True) for k, v in model.state_dict().items()},
        }
    )


OR_ROWS = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]


def cmd_train_or(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    model = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 1), nn.Sigmoid())
    x = torch.tensor(OR_ROWS[:3])
    target = torch.tensor([[0.0], [1.0], [1.0]])
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    for _ in range(args.epochs):
        optimizer.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        final = loss_fn(model(x), target).item()
        predictions = model(torch.tensor(OR_ROWS)).reshape(-1)
    signature = {
        "inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 2]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": [-1, 1]}],
    }
    if args.out.endswith((".pt", ".pth")):
        # A plain torch.save state dict, as users save them; the architecture goes beside it.
        torch.save(model.state_dict(), args.out)
        spec_path = args.out.rsplit(".", 1)[0] + ".module.json"
        with open(spec_path, "w") as f:
            json.dump(spec_lib.export_spec(model), f)
        emit({"predictions": tensor_json(predictions), "loss": _finite(final), "bundle": args.out, "spec": spec_path})
        return
    spec_lib.save_bundle(model, args.out, signature=signature)
    emit({"predictions": tensor_json(predictions), "loss": _finite(final), "bundle": args.out})


def _randomise_norms(model: nn.Module, generator: torch.Generator) -> None:
    """Gives norm layers non-trivial affine parameters and running statistics, deterministically."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                if m.weight is not None:
                    m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.rand(m.bias.shape, generator=generator) - 0.5)
            if isinstance(m, nn.BatchNorm2d) and m.track_running_stats:
                c = m.num_features
                m.running_mean.copy_(torch.linspace(-0.5, 0.5, c))
                m.running_var.copy_(torch.linspace(0.5, 2.0, c))
                m.num_batches_tracked.fill_(10)


def _zoo(seed: int) -> list[tuple[str, nn.Module, list[int]]]:
    """(name, model, input shape) for each zoo member; seeded init."""
    torch.manual_seed(seed)
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1))

    cnn = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 8x8 -> 4x4
        nn.Conv2d(4, 2, 3, stride=1, padding=0, groups=2),  # -> 2x2
        nn.AvgPool2d(2),  # -> 1x1
        nn.Flatten(),
        nn.Linear(2, 5),
        nn.LogSoftmax(dim=1),
    )

    # Less common constructor arguments: tuples, stride, dilation, no bias, ceil_mode, padding
    # excluded from averages.
    features = nn.Sequential(
        nn.Conv2d(2, 4, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), bias=False),
        nn.BatchNorm2d(4, eps=1e-3, momentum=None),
        nn.Tanh(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True),
        nn.AvgPool2d(kernel_size=2, stride=1, padding=1, count_include_pad=False),
        nn.Flatten(),
    )
    with torch.no_grad():
        width = features(torch.zeros(1, 2, 9, 10)).shape[1]
    cnn_options = nn.Sequential(*features, nn.Linear(width, 3), nn.Sigmoid())

    # Rank-3 input: Linear and LayerNorm act on the last axis.
    norm_mlp = nn.Sequential(
        nn.Linear(6, 8),
        nn.LayerNorm(8),
        nn.GELU(),
        nn.Linear(8, 8),
        nn.Tanh(),
        nn.LayerNorm(8, eps=1e-3, bias=False),
        nn.LeakyReLU(0.2),
        nn.Dropout(0.5),
        nn.Identity(),
        nn.Linear(8, 4),
        nn.GELU(approximate="tanh"),
        nn.LayerNorm(4, elementwise_affine=False),
    )

    named = nn.Sequential(
        OrderedDict(
            fc1=nn.Linear(3, 5),
            act=nn.Sigmoid(),
            block=nn.Sequential(OrderedDict(fc=nn.Linear(5, 5), act=nn.ReLU())),
            fc2=nn.Linear(5, 2, bias=False),
            out=nn.LogSoftmax(dim=-1),
        )
    )
    models = [
        ("mlp", mlp, [2, 4]),
        ("cnn", cnn, [2, 1, 8, 8]),
        ("cnn_options", cnn_options, [2, 2, 9, 10]),
        ("norm_mlp", norm_mlp, [2, 3, 6]),
        ("named", named, [2, 3]),
    ]
    generator = torch.Generator().manual_seed(seed + 1)
    for _, model, _ in models:
        _randomise_norms(model, generator)
        model.eval()
    return models


def cmd_make_zoo(args: argparse.Namespace) -> None:
    os.makedirs(args.dir, exist_ok=True)
    entries = []
    for index, (name, model, shape) in enumerate(_zoo(args.seed)):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed + 100 + index))
        with torch.no_grad():
            y = model(x)
        bundle = os.path.join(args.dir, f"{name}.safetensors")
        case = os.path.join(args.dir, f"{name}.json")
        spec_lib.save_bundle(model, bundle, signature=signature_for(x, y))
        with open(case, "w", encoding="utf-8") as f:
            json.dump({"input": tensor_json(x), "output": tensor_json(y)}, f, allow_nan=False, separators=(",", ":"))
            f.write("\n")
        entries.append({"name": name, "bundle": bundle, "case": case, "input_shape": list(x.shape), "output_shape": list(y.shape)})
    emit({"bundles": entries})


def cmd_inspect(args: argparse.Namespace) -> None:
    from safetensors import SafetensorError, safe_open

    tensors = {}
    try:
        with safe_open(args.bundle, framework="numpy") as f:
            metadata = dict(f.metadata() or {})
            for key in f.keys():
                t = f.get_slice(key)
                tensors[key] = {"dtype": t.get_dtype(), "shape": list(t.get_shape())}
    except SafetensorError as e:
        raise CheckError(f"{args.bundle}: not a readable safetensors file ({e})") from None
    emit({"metadata": metadata, "tensors": tensors})  # dtype as safetensors spells it: F32, I64, ...


# ---------------------------------------------------------------------------------------------
# CLI


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        fail(f"{message} (see {PROG} --help)")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    s = sub.add_parser("predict", help="run a bundle in torch; print outputs and weights")
    s.add_argument("bundle")
    s.add_argument("--inputs", required=True, help="nested list as JSON text, @file, or - for stdin")
    s.set_defaults(run=cmd_predict)

    s = sub.add_parser("train-or", help="train the OR gate in torch; save a bundle (.safetensors) or a torch.save state dict (.pt)")
    s.add_argument("out")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--epochs", type=int, default=5000)
    s.add_argument("--lr", type=float, default=1.0)
    s.set_defaults(run=cmd_train_or)

    s = sub.add_parser("make-zoo", help="write seeded bundles with their torch input/output")
    s.add_argument("dir")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(run=cmd_make_zoo)

    s = sub.add_parser("inspect", help="print a safetensors file's metadata and tensor shapes")
    s.add_argument("bundle")
    s.set_defaults(run=cmd_inspect, light=True)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not getattr(args, "light", False):
        load_frameworks()
    try:
        from safetensors import SafetensorError
    except ImportError:
        fail("cannot import safetensors: run scripts/peers-env.sh and use .peers/venv/bin/python")
    expected: tuple[type[BaseException], ...] = (CheckError, SafetensorError, OSError)
    if spec_lib is not None:
        expected += (spec_lib.SpecError,)
    try:
        args.run(args)
    except expected as e:
        fail(str(e) if not isinstance(e, OSError) or not e.filename else f"{e.strerror}: {e.filename}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
