"""The PyTorch peer of a .pt -> safetensors conversion: torch.load(weights_only=True) then
safetensors.torch.save_file, fsync'd. Usage: pt_peer.py SRC DST [mmap]. Times exclude `import torch`."""
import sys
import time

import torch
from safetensors.torch import save_file

from common import fsync_paths, max_rss, report

src, dst = sys.argv[1], sys.argv[2]
mmap = len(sys.argv) > 3 and sys.argv[3] == "mmap"
base = max_rss()
t0 = time.perf_counter()
state = torch.load(src, weights_only=True, mmap=mmap)
t1 = time.perf_counter()
save_file(state, dst)
fsync_paths(dst)
t2 = time.perf_counter()
report(load=t1 - t0, save=t2 - t1, seconds=t2 - t0, baseRSS=base, maxRSS=max_rss())
