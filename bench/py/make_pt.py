"""Writes a state dict of `count` float32 [rows, 4096] tensors (~total bytes) with real torch.save.
Usage: make_pt.py DST TOTAL_BYTES [COUNT]. Prints the data checksum (see common.word_sum)."""
import sys

import torch

from common import report, signed32, word_sum

dst, total = sys.argv[1], int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 16
rows = total // count // 4 // 4096
g = torch.Generator().manual_seed(0)
state = {}
checksum = 0
for i in range(count):
    t = torch.randn(rows, 4096, generator=g) * 0.02
    state[f"layers.{i:02d}.weight"] = t
    checksum += word_sum(t.numpy())
torch.save(state, dst)
report(sum=signed32(checksum), tensors=count, shape=[rows, 4096], version=torch.__version__)
