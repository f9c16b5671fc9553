"""The Python peer of `modelbridge convert model.pt2 model.onnx`: torch.export.load of the
program, then torch.onnx.export of that ExportedProgram (the exporter for torch.export programs,
dynamo=True: it takes the program as loaded, no re-tracing of Python code), weights inline in one
file as modelbridge writes them, the output fsync'd. Usage: pt2_onnx_peer.py SRC DST.
Times exclude `import torch`; RSS after the import is reported as baseRSS."""
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
# optimize=False and verify=False: the exporter's defaults are optimize=True (a graph rewrite
# modelbridge does not do) and no verification; the plain translation is the fair peer.
program = torch.onnx.export(ep, f=None, dynamo=True, external_data=False, optimize=False, verbose=False)
program.save(dst, external_data=False)
fsync_paths(dst)
t2 = time.perf_counter()
report(load=t1 - t0, save=t2 - t1, seconds=t2 - t0, baseRSS=base, maxRSS=max_rss(), bytes=os.path.getsize(dst))
