"""Peers of `modelbridge serve` (test/serve.peer.test.ts). Run with the peers' python (.peers/venv).

Commands:
  cnn OUT SEED [OUT SEED ...]
                  a small TensorFlow CNN (Conv2D, ReLU, MaxPool, Dense, Softmax; random weights
                  from SEED) per pair, in one interpreter saved as a SavedModel in OUT with signature serving_default
                  (image: float32 [-1, 8, 8, 3] -> probabilities: float32 [-1, 4]), plus
                  OUT/golden-inputs.npz and OUT/golden-outputs.npz: TensorFlow's own outputs on a
                  fixed input, which the server checks the version against before serving it.
  tf DIR          reads {"NAME": nested list} on stdin, runs DIR's serving_default in TensorFlow,
                  prints {"OUTPUT": nested list}
  post URL        reads a JSON request body on stdin and POSTs it with requests, as TF Serving's
                  REST clients do (requests.post(url, data=json.dumps(body))); prints
                  {"status": HTTP status, "body": the parsed JSON answer}
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def cnn(out: str, seed: int) -> None:
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    class Cnn(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.k1 = tf.Variable(rng.normal(0, 0.3, (3, 3, 3, 8)).astype(np.float32))
            self.b1 = tf.Variable(rng.normal(0, 0.1, (8,)).astype(np.float32))
            self.w = tf.Variable(rng.normal(0, 0.3, (4 * 4 * 8, 4)).astype(np.float32))
            self.b = tf.Variable(rng.normal(0, 0.1, (4,)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="image")])
        def serve(self, image):
            h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(image, self.k1, strides=1, padding="SAME"), self.b1))
            h = tf.nn.max_pool2d(h, ksize=2, strides=2, padding="VALID")
            h = tf.reshape(h, [-1, 4 * 4 * 8])
            return {"probabilities": tf.nn.softmax(tf.matmul(h, self.w) + self.b)}

    model = Cnn()
    tf.saved_model.save(model, out, signatures={"serving_default": model.serve})
    image = rng.uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    probabilities = model.serve(tf.constant(image))["probabilities"].numpy()
    np.savez(os.path.join(out, "golden-inputs.npz"), image=image)
    np.savez(os.path.join(out, "golden-outputs.npz"), probabilities=probabilities)


def tf_run(path: str) -> None:
    import numpy as np
    import tensorflow as tf

    inputs = json.load(sys.stdin)
    fn = tf.saved_model.load(path).signatures["serving_default"]
    outputs = fn(**{k: tf.constant(np.asarray(v, dtype=np.float32)) for k, v in inputs.items()})
    print(json.dumps({k: v.numpy().tolist() for k, v in outputs.items()}))


def post(url: str) -> None:
    import requests

    body = json.load(sys.stdin)
    r = requests.post(url, data=json.dumps(body), timeout=60)
    print(json.dumps({"status": r.status_code, "body": r.json()}))


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and len(argv) % 2 == 1 and argv[0] == "cnn":
        for out, seed in zip(argv[1::2], argv[2::2]):
            cnn(out, int(seed))
    elif len(argv) == 2 and argv[0] == "tf":
        tf_run(argv[1])
    elif len(argv) == 2 and argv[0] == "post":
        post(argv[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
