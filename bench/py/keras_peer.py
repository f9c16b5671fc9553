"""The Python peer of `modelbridge convert model.keras model.safetensors`: keras.saving.load_model
then safetensors.numpy.save_file of every weight (named by its variable path, as Keras 3 names
them), the output fsync'd. Usage: keras_peer.py SRC DST. Times exclude `import keras`."""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from common import fsync_paths, max_rss, report  # noqa: E402

src, dst = sys.argv[1], sys.argv[2]
base = max_rss()
t0 = time.perf_counter()
model = keras.saving.load_model(src)
t1 = time.perf_counter()
save_file({w.path: keras.ops.convert_to_numpy(w) for w in model.weights}, dst)
fsync_paths(dst)
t2 = time.perf_counter()
report(load=t1 - t0, save=t2 - t1, seconds=t2 - t0, baseRSS=base, maxRSS=max_rss())
