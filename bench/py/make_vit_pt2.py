"""Exports torchvision's ViT-B/16 (random weights, eval mode; ~330 MiB of float32) with
torch.export.export(...).run_decompositions() (the core ATen program, as the pt2 peer tests do)
and writes it with torch.export.save. Usage: make_vit_pt2.py DST. Input x [1, 3, 224, 224].
torchvision's C++ ops are not needed: its nms/qnms schemas are declared first so
`import torchvision` works without its compiled extension (as python/zoo.py does)."""
import sys

import torch

lib = torch.library.Library("torchvision", "DEF")
lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
import torchvision  # noqa: E402

from common import report  # noqa: E402

torch.manual_seed(0)
model = torchvision.models.vit_b_16(weights=None).eval()
with torch.no_grad():
    ep = torch.export.export(model, (torch.randn(1, 3, 224, 224),)).run_decompositions()
torch.export.save(ep, sys.argv[1])
report(params=sum(p.numel() for p in model.parameters()), version=torch.__version__)
