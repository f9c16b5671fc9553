"""Writes an MLP of `layers` dense [dim, dim] layers (MatMul + BiasAdd, Relu between them) as a
TensorFlow SavedModel with real TensorFlow (tf.saved_model.save of a tf.Module; serving_default
takes x [None, dim]). Usage: make_savedmodel.py DST LAYERS DIM. Prints the variables' checksum."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf

from common import report, signed32, word_sum

dst, layers, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)


class Mlp(tf.Module):
    def __init__(self):
        super().__init__()
        self.kernels, self.biases, self.checksum = [], [], 0
        for i in range(layers):
            k = rng.standard_normal((dim, dim), dtype=np.float32)
            k *= 1 / np.sqrt(dim)
            b = np.full(dim, 0.01, dtype=np.float32)
            self.checksum += word_sum(k) + word_sum(b)
            self.kernels.append(tf.Variable(k, name=f"dense{i}/kernel"))
            self.biases.append(tf.Variable(b, name=f"dense{i}/bias"))
            del k

    @tf.function(input_signature=[tf.TensorSpec([None, dim], tf.float32, name="x")])
    def __call__(self, x):
        h = x
        for i, (k, b) in enumerate(zip(self.kernels, self.biases)):
            h = tf.nn.bias_add(tf.matmul(h, k), b)
            if i < layers - 1:
                h = tf.nn.relu(h)
        return {"y": h}


model = Mlp()
tf.saved_model.save(model, dst, signatures=model.__call__)
report(sum=signed32(model.checksum), tensors=2 * layers, version=tf.__version__)
