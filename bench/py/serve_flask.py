"""The Flask + TensorFlow server of the classic TensorFlow-vs-PyTorch comparison, for bench/serve.mjs:
a SavedModel loaded with tf.saved_model.load, one Flask route taking TF Serving's
{"instances": [...]} body and answering {"predictions": [...]}, Flask's own (threaded) server.

  python serve_flask.py SAVED_MODEL PORT      prints "ready" once it listens
"""
import json
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from flask import Flask, jsonify, request  # noqa: E402
from werkzeug.serving import WSGIRequestHandler  # noqa: E402

path, port = sys.argv[1], int(sys.argv[2])
fn = tf.saved_model.load(path).signatures["serving_default"]
name = next(iter(fn.structured_input_signature[1]))
app = Flask(__name__)
logging.getLogger("werkzeug").setLevel(logging.ERROR)


@app.route("/v1/models/or:predict", methods=["POST"])
def predict():
    body = json.loads(request.get_data())
    outputs = fn(**{name: tf.constant(np.asarray(body["instances"], dtype=np.float32))})
    return jsonify({"predictions": next(iter(outputs.values())).numpy().tolist()})


# HTTP/1.1 keep-alive, as the other servers and the load generator use (werkzeug defaults to 1.0).
WSGIRequestHandler.protocol_version = "HTTP/1.1"
print("ready", flush=True)
app.run(host="127.0.0.1", port=port, threaded=True)
