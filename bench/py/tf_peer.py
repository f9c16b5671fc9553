"""TensorFlow's own read + write of a SavedModel: tf.saved_model.load (which restores every
variable from the checkpoint into memory) then tf.saved_model.save of the loaded object to a new
directory, every output file fsync'd. Usage: tf_peer.py SRC DST. Times exclude `import tensorflow`."""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf

from common import fsync_paths, max_rss, report

src, dst = sys.argv[1], sys.argv[2]
base = max_rss()
t0 = time.perf_counter()
model = tf.saved_model.load(src)
t1 = time.perf_counter()
tf.saved_model.save(model, dst, signatures=model.signatures)
fsync_paths(dst)
t2 = time.perf_counter()
report(load=t1 - t0, save=t2 - t1, seconds=t2 - t0, baseRSS=base, maxRSS=max_rss())
