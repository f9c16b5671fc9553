"""Writes the bench's small CNN as ONNX (opset 17) with the onnx package, seeded weights:
Conv 3x3 (3->32, pad 1) -> Relu -> MaxPool 2x2 -> Conv 3x3 (32->64, pad 1) -> Relu ->
GlobalAveragePool -> Flatten -> Gemm (64->10). Input x [batch, 3, 32, 32], output y [batch, 10].
Usage: make_cnn.py DST."""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from common import report

dst = sys.argv[1]
rng = np.random.default_rng(7)


def uniform(shape, fan_in):
    bound = 1 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


weights = {
    "c1.w": uniform((32, 3, 3, 3), 27), "c1.b": uniform((32,), 27),
    "c2.w": uniform((64, 32, 3, 3), 288), "c2.b": uniform((64,), 288),
    "fc.w": uniform((10, 64), 64), "fc.b": uniform((10,), 64),
}
nodes = [
    helper.make_node("Conv", ["x", "c1.w", "c1.b"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c1"], ["r1"]),
    helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Conv", ["p1", "c2.w", "c2.b"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c2"], ["r2"]),
    helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
    helper.make_node("Flatten", ["g"], ["f"]),
    helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], transB=1),
]
graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 32, 32])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
                          [numpy_helper.from_array(v, k) for k, v in weights.items()])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
onnx.checker.check_model(model, full_check=True)
onnx.save(model, dst)
report(nodes=[n.op_type for n in nodes])
