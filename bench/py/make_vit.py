"""Exports torchvision's ViT-B/16 (random weights, its zero-initialised head made random too; eval
mode; ~330 MiB of float32) to ONNX with the TorchScript exporter (dynamo=False), opset 17, input
x [1, 3, 224, 224], output logits.
Usage: make_vit.py DST. torchvision's C++ ops are not needed: its nms/qnms schemas are declared
first so `import torchvision` works without its compiled extension."""
import sys

import torch

lib = torch.library.Library("torchvision", "DEF")
lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
import torchvision  # noqa: E402

from common import report  # noqa: E402

torch.manual_seed(0)
model = torchvision.models.vit_b_16(weights=None).eval()
# torchvision zero-initialises the classifier head, which makes every logit 0 for any input (and
# any conversion's output check trivially equal): a random head, as a trained model has.
torch.nn.init.normal_(model.heads.head.weight, std=0.02)
torch.nn.init.normal_(model.heads.head.bias, std=0.02)
torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), sys.argv[1], dynamo=False, input_names=["x"], output_names=["logits"], opset_version=17)
report(params=sum(p.numel() for p in model.parameters()))
