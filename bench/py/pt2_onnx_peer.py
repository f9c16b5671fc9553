"""The Python peer of `modelbridge convert model.pt2 model.onnx`: torch.export.load of the
program, then `torch.onnx.export(ep, f=DST)` as a user types it, with the exporter's defaults
(dynamo=True: the program is translated as loaded, no re-tracing of Python code; optimize=True, its
ONNX graph optimizer; external_data=True, the weights in DST.data beside DST), both files fsync'd as
modelbridge's writers fsync. Usage: pt2_onnx_peer.py SRC DST. Times exclude `import torch`; RSS
after the import is reported as baseRSS."""
import os
import sys
import time
import warnings

import torch

from common import fsync_paths, max_rss, report

warnings.filterwarnings("ignore")
src, dst = sys.argv[1], sys.argv[2]
base = max_rss()
t0 = time.perf_counter()
ep = torch.export.load(src)
t1 = time.perf_counter()
torch.onnx.export(ep, f=dst)
written = [p for p in (dst, dst + ".data") if os.path.exists(p)]
fsync_paths(*written)
t2 = time.perf_counter()
report(load=t1 - t0, save=t2 - t1, seconds=t2 - t0, baseRSS=base, maxRSS=max_rss(), bytes=sum(os.path.getsize(p) for p in written))
