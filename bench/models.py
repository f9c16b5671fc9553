"""Writes the runtime bench's real models as ONNX (opset 17, torch.onnx.export with dynamo=False),
random weights from fixed seeds, nothing downloaded:
  resnet18.onnx   torchvision resnet18(weights=None), eval mode, input x [1, 3, 224, 224]
  bert-tiny.onnx  transformers BertModel with bert-tiny's sizes (hidden 128, 2 layers, 2 heads,
                  intermediate 512), inputs input_ids and attention_mask int64 [1, 128], output
                  last_hidden_state
  vit-tiny.onnx   transformers ViTModel with ViT-tiny's sizes (hidden 192, 12 layers, 3 heads,
                  intermediate 768, 224x224, patch 16), input pixel_values [1, 3, 224, 224]
  mlp.onnx        torch.nn Linear 784-512-512-10 with ReLUs (the runtime bench's MLP), input x [64, 784]
Usage: models.py DIR [NAME ...]; a file that already exists is kept (the cache is bench/.cache/)."""
import os
import sys

import torch

out_dir = sys.argv[1]
names = sys.argv[2:] or ["resnet18", "bert-tiny", "vit-tiny"]
os.makedirs(out_dir, exist_ok=True)
torch.manual_seed(0)


def export(model, args, path, input_names, output_names):
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(model.eval(), args, tmp, opset_version=17, dynamo=False,
                          input_names=input_names, output_names=output_names)
    os.replace(tmp, path)


def resnet18(path):
    # torchvision's C extension does not load here; its ops only need to be defined for import.
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor qdets, Tensor qscores, float iou_threshold) -> Tensor")
    # torchvision is installed without Pillow, which only its datasets, utils and image I/O use:
    # a stand-in whose every name is a placeholder lets `import torchvision` finish.
    try:
        import PIL  # noqa: F401
    except ImportError:
        class Stand(type):
            """A class whose every attribute is another such class: works as module, class and base."""

            def __getattr__(cls, name):
                if name.startswith("__"):
                    raise AttributeError(name)
                sub = Stand(name, (), {"__version__": "0.0"})
                setattr(cls, name, sub)
                return sub

        pil = Stand("PIL", (), {"__version__": "0.0", "__path__": []})
        sys.modules["PIL"] = pil
        for sub in ("Image", "ImageColor", "ImageDraw", "ImageEnhance", "ImageFont", "ImageOps"):
            sys.modules[f"PIL.{sub}"] = getattr(pil, sub)
    import torchvision
    model = torchvision.models.resnet18(weights=None)
    export(model, (torch.randn(1, 3, 224, 224),), path, ["x"], ["y"])
    return lib


def bert_tiny(path):
    from transformers import BertConfig, BertModel
    config = BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512,
                        vocab_size=30522, max_position_embeddings=512, attn_implementation="eager")
    bert = BertModel(config, add_pooling_layer=False)

    class Model(torch.nn.Module):
        # keyword arguments: BertModel.forward's positional order changes between releases
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    model = Model()
    ids = torch.randint(0, config.vocab_size, (1, 128))
    mask = torch.ones(1, 128, dtype=torch.int64)
    export(model, (ids, mask), path, ["input_ids", "attention_mask"], ["last_hidden_state"])


def vit_tiny(path):
    from transformers import ViTConfig, ViTModel
    config = ViTConfig(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768,
                       image_size=224, patch_size=16, attn_implementation="eager")
    vit = ViTModel(config, add_pooling_layer=False)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.vit = vit

        def forward(self, pixel_values):
            return self.vit(pixel_values=pixel_values).last_hidden_state

    model = Model()
    export(model, (torch.randn(1, 3, 224, 224),), path, ["pixel_values"], ["last_hidden_state"])


def mlp(path):
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 10))
    export(model, (torch.randn(64, 784),), path, ["x"], ["y"])


keep = []
for name in names:
    path = os.path.join(out_dir, f"{name}.onnx")
    if os.path.exists(path):
        continue
    keep.append({"resnet18": resnet18, "bert-tiny": bert_tiny, "vit-tiny": vit_tiny, "mlp": mlp}[name](path))
    print(f"wrote {path}", file=sys.stderr)
