"""Builds a Keras 3 Sequential model of `layers` Dense(dim) layers (relu between them, random
weights from Keras's own initializers under a fixed seed) on an Input of `dim` features, and
saves it with model.save as DST.keras, and exports the same model as a SavedModel (model.export,
signature serving_default) to SAVEDMODEL. Usage: make_keras.py DST.keras SAVEDMODEL LAYERS DIM.
4 layers of 4096 make 256 MiB of float32 weights."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402

from common import report  # noqa: E402

dst, saved_model, layers, dim = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
keras.utils.set_random_seed(0)
model = keras.Sequential(
    [keras.Input((dim,), name="x")]
    + [keras.layers.Dense(dim, activation="relu" if i < layers - 1 else None, name=f"dense{i}") for i in range(layers)],
    name="dense_stack",
)
model.save(dst)
model.export(saved_model, format="tf_saved_model", verbose=False)
report(params=model.count_params(), version=keras.__version__)
