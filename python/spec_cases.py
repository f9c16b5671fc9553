"""Writes torch.nn stacks as modelbridge bundles with torch's outputs, for the TypeScript lowering.

`python python/spec_cases.py OUT_DIR [NAME...]` writes OUT_DIR/<name>.safetensors (state dict,
module spec and signature, through modelbridge_spec.save_bundle) and OUT_DIR/<name>.json
({"input": ..., "input_dtype": ..., "output": ...}) for each case, and prints the case names as
JSON. test/module-layers.peer.test.ts runs every bundle in modelbridge's runtime against torch.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import json
import os
from collections import OrderedDict

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import modelbridge_spec as ms  # noqa: E402


def img(*shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(1))


def tokens(*shape: int, n: int) -> torch.Tensor:
    return torch.randint(0, n, shape, generator=torch.Generator().manual_seed(2))


def cases() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    return {
        "conv1d": (nn.Sequential(nn.Conv1d(3, 4, 3, padding=1), nn.BatchNorm1d(4), nn.SiLU(), nn.Conv1d(4, 2, 2, stride=2, dilation=2, groups=2)), img(2, 3, 9)),
        "conv1d_same": (nn.Sequential(nn.Conv1d(2, 3, 3, padding="same", bias=False), nn.Hardswish()), img(2, 2, 6) * 3),
        "conv_transpose": (
            nn.Sequential(nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1), nn.GroupNorm(2, 4), nn.Hardswish(), nn.GELU(approximate="tanh")),
            img(2, 2, 3, 4),
        ),
        "conv_transpose_groups": (nn.Sequential(nn.ConvTranspose2d(4, 2, (3, 2), stride=(2, 1), padding=(1, 0), groups=2, bias=False)), img(1, 4, 4, 3)),
        "embedding": (nn.Sequential(OrderedDict(embed=nn.Embedding(9, 4, padding_idx=0), flat=nn.Flatten(), head=nn.Linear(20, 3))), tokens(2, 5, n=9)),
        "norms_2d": (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.GroupNorm(2, 4, eps=1e-3), nn.SiLU()), img(5, 3)),
        "group_norm_plain": (nn.Sequential(nn.Conv2d(2, 6, 1), nn.GroupNorm(3, 6, affine=False)), img(2, 2, 3, 3)),
        "lstm": (nn.Sequential(nn.LSTM(3, 4)), img(5, 2, 3)),
        "lstm_stacked": (nn.Sequential(nn.Embedding(9, 3), nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True)), tokens(2, 5, n=9)),
        "gru": (nn.Sequential(nn.GRU(3, 4, bias=False)), img(5, 2, 3)),
        "gru_stacked": (nn.Sequential(nn.GRU(3, 4, num_layers=2, batch_first=True, bidirectional=True)), img(2, 5, 3)),
    }


def randomise(module: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in module.state_dict(keep_vars=True).items():
            if name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.5)
    return module.eval()


def main() -> int:
    out = sys.argv[1]
    wanted = sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    written = []
    for name, (module, x) in cases().items():
        if wanted and name not in wanted:
            continue
        randomise(module)
        with torch.no_grad():
            y = module(x)
        if isinstance(y, tuple):  # an RNN last in the stack: the graph's output is its sequence output
            y = y[0]
        dtype = "int64" if x.dtype == torch.int64 else "float32"
        signature = {
            "inputs": [{"name": "x", "dtype": dtype, "shape": [-1, *x.shape[1:]]}],
            "outputs": [{"name": "y", "dtype": "float32", "shape": [-1, *y.shape[1:]]}],
        }
        ms.save_bundle(module, os.path.join(out, f"{name}.safetensors"), signature=signature)
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump({"input": x.tolist(), "input_dtype": dtype, "input_shape": list(x.shape), "output": y.tolist(), "output_shape": list(y.shape)}, f)
        written.append(name)
    print(json.dumps(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
