"""TorchScript archives (torch.jit.save) for test/torchscript.peer.test.ts. Run with the peers' python (.peers/venv).

Commands:
  trace OUT [--only a,b]
        builds each model of python/pt2_peers.py (random weights, eval mode, fixed seed), traces it
        with torch.jit.trace and saves it with torch.jit.save (which stores the example inputs in
        traced_inputs.pkl), and writes OUT/<name>/model.pt, input_K.npy (forward's arguments in
        order) and output_K.npy (the traced module's outputs on them), and input_K_b.npy /
        output_K_b.npy: a batch two larger and the eager module's outputs on it. Prints a JSON list of
        {"name", "dir", "inputs", "outputs", "ops"}: ops are the torch.<op> calls in the code records.
  scripted OUT
        archives modelbridge is to refuse with one line: OUT/scripted.pt (torch.jit.script of a
        forward with an `if`) and OUT/unmapped.pt (a traced torch.cumprod, an op outside the
        mapping). Prints {"scripted": path, "unmapped": path}.
The onnxruntime comparison reuses `pt2_peers.py ort`.
"""
from __future__ import annotations

import json
import os
import re
import sys
import warnings
import zipfile

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import pt2_peers  # noqa: E402

# The architectures of pt2_peers.py read here (`rnn` traces to torch.lstm and torch.gru); its
# `math` model is not traced (not checked against the TorchScript lowering yet).
MODELS = ["or_gate", "mlp", "resnet18", "mobilenet_v3_small", "vit", "bert", "rnn"]


def _other_batch(a, rng):
    """The example input with two more rows along the batch: new random floats, repeated ids/masks."""
    if a.dtype.kind == "f":
        extra = rng.standard_normal((2,) + a.shape[1:]).astype(a.dtype)
    else:
        extra = np.repeat(a[:1], 2, axis=0)
    return np.concatenate([a, extra])


def pt2_peers_flatten(out):
    """A module's outputs in order, nested tuples (LSTM's (output, (h_n, c_n))) flattened."""
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in pt2_peers_flatten(o)]
    return [out]


def _ops(path):
    ops = set()
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if "/code/" in name and name.endswith(".py"):
                ops.update(re.findall(r"\btorch\.([A-Za-z_][A-Za-z0-9_]*)\(", z.read(name).decode("utf-8")))
    return sorted(ops)


def trace(out, only):
    import torch

    cases = []
    for name in MODELS:
        if only and name not in only:
            continue
        torch.manual_seed(0)
        module, inputs, _dynamic = pt2_peers.MODELS[name]()
        pt2_peers._randomize(module)
        module.eval()
        args = tuple(torch.from_numpy(a) for a in inputs)
        with torch.no_grad():
            traced = torch.jit.trace(module, args, strict=False)
            outs = traced(*args)
        outs = pt2_peers_flatten(outs)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "model.pt")
        torch.jit.save(traced, path)
        for k, a in enumerate(inputs):
            np.save(os.path.join(d, "input_%d.npy" % k), a)
        for k, t in enumerate(outs):
            np.save(os.path.join(d, "output_%d.npy" % k), t.detach().numpy())
        # Another batch, run by the eager module (the truth whatever the trace fixed): input_K_b.npy
        # and output_K_b.npy, for the programs modelbridge reads with a dynamic batch.
        rng = np.random.default_rng(21)
        other = [_other_batch(a, rng) for a in inputs]
        with torch.no_grad():
            outs_b = module(*(torch.from_numpy(a) for a in other))
        outs_b = pt2_peers_flatten(outs_b)
        for k, a in enumerate(other):
            np.save(os.path.join(d, "input_%d_b.npy" % k), a)
        for k, t in enumerate(outs_b):
            np.save(os.path.join(d, "output_%d_b.npy" % k), t.detach().numpy())
        names = [p for p in traced.forward.schema.arguments[1:]]
        cases.append({"name": name, "dir": d, "inputs": [a.name for a in names], "outputs": len(outs), "ops": _ops(path)})
    print(json.dumps(cases))


def scripted(out):
    import torch

    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)

        def forward(self, x):
            y = self.fc(x)
            if bool(y.sum() > 0):
                y = y * 2
            return y

    class Cumprod(torch.nn.Module):
        def forward(self, x):
            return torch.cumprod(x, 1)

    os.makedirs(out, exist_ok=True)
    s = os.path.join(out, "scripted.pt")
    torch.jit.save(torch.jit.script(Branchy().eval()), s)
    u = os.path.join(out, "unmapped.pt")
    torch.jit.save(torch.jit.trace(Cumprod().eval(), (torch.ones(2, 3),)), u)
    print(json.dumps({"scripted": s, "unmapped": u}))


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "trace":
        only = None
        if "--only" in sys.argv:
            only = set(sys.argv[sys.argv.index("--only") + 1].split(","))
        trace(sys.argv[2], only)
    elif cmd == "scripted":
        scripted(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
