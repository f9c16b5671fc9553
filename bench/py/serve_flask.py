"""The Flask + TensorFlow server of the classic TensorFlow-vs-PyTorch comparison, for bench/serve.mjs:
a SavedModel loaded with tf.saved_model.load, one Flask route taking TF Serving's
{"instances": [...]} body and answering {"predictions": [...]}, Flask's own (threaded) server.

  python serve_flask.py SAVED_MODEL PORT [NAME]   serves /v1/models/NAME:predict (default or);
                                                prints "ready" once it listens
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
model_name = sys.argv[3] if len(sys.argv) > 3 else "or"
fn = tf.saved_model.load(path).signatures["serving_default"]
name = next(iter(fn.structured_input_signature[1]))
app = Flask(__name__)
logging.getLogger("werkzeug").setLevel(logging.ERROR)


@app.route(f"/v1/models/{model_name}:predict", methods=["POST"])
def predict():
    body = json.loads(request.get_data())
    outputs = fn(**{name: tf.constant(np.asarray(body["instances"], dtype=np.float32))})
    y = next(iter(outputs.values())).numpy()
    return jsonify({"predictions": y.reshape(y.shape[0], -1).tolist()})


# TCP_NODELAY: werkzeug sends headers and body in separate writes, which Nagle's algorithm would
# hold back until the client's delayed ACK. (Werkzeug's server closes every connection after its
# response, HTTP/1.1 or not: the load generator opens a new one, as Flask's users' clients do.)
WSGIRequestHandler.protocol_version = "HTTP/1.1"
WSGIRequestHandler.disable_nagle_algorithm = True
print("ready", flush=True)
app.run(host="127.0.0.1", port=port, threaded=True)
