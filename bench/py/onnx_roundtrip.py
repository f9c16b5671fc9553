"""The Python peer of converting a real ONNX model: onnx.load then onnx.save of one file (weights
inline), the output fsync'd. Usage: onnx_roundtrip.py SRC DST. Times exclude `import onnx`."""
import sys
import time

import onnx

from common import fsync_paths, max_rss, report

src, dst = sys.argv[1], sys.argv[2]
base = max_rss()
t0 = time.perf_counter()
model = onnx.load(src)
t1 = time.perf_counter()
onnx.save(model, dst)
fsync_paths(dst)
t2 = time.perf_counter()
report(load=t1 - t0, save=t2 - t1, seconds=t2 - t0, baseRSS=base, maxRSS=max_rss())
