"""The Python peer of `modelbridge convert saved_model model.tflite`:
tf.lite.TFLiteConverter.from_saved_model(SRC).convert() (float32, default options) and the
flatbuffer written to DST, fsync'd. Usage: tflite_peer.py SRC DST. Times exclude `import tensorflow`."""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

from common import fsync_paths, max_rss, report  # noqa: E402

src, dst = sys.argv[1], sys.argv[2]
base = max_rss()
t0 = time.perf_counter()
converter = tf.lite.TFLiteConverter.from_saved_model(src)
flatbuffer = converter.convert()
t1 = time.perf_counter()
with open(dst, "wb") as f:
    f.write(flatbuffer)
fsync_paths(dst)
t2 = time.perf_counter()
report(load=t1 - t0, save=t2 - t1, seconds=t2 - t0, baseRSS=base, maxRSS=max_rss(), bytes=len(flatbuffer))
