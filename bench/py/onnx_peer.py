"""The Python peer of reading and writing an ONNX model with external data: onnx.load (external
data loaded into the ModelProto) then onnx.save_model(save_as_external_data=True) into one
`<name>.data` file, both outputs fsync'd. Usage: onnx_peer.py SRC DST. Times exclude `import onnx`."""
import os
import sys
import time

import onnx

from common import fsync_paths, max_rss, report

src, dst = sys.argv[1], sys.argv[2]
location = os.path.basename(dst) + ".data"
base = max_rss()
t0 = time.perf_counter()
model = onnx.load(src)
t1 = time.perf_counter()
onnx.save_model(model, dst, save_as_external_data=True, all_tensors_to_one_file=True, location=location, size_threshold=1024)
fsync_paths(dst, os.path.join(os.path.dirname(dst), location))
t2 = time.perf_counter()
report(load=t1 - t0, save=t2 - t1, seconds=t2 - t0, baseRSS=base, maxRSS=max_rss())
