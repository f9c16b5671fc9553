"""Writes an MLP of `layers` Gemm(transB=1) [dim, dim] layers with Relu between them as ONNX with
every initializer in one external data file (`<name>.data`), using the onnx package's own writer.
Usage: make_onnx.py DST LAYERS DIM. Prints the data checksum of every initializer (common.word_sum)."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from common import report, signed32, word_sum

dst, layers, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
nodes, inits, cur, checksum = [], [], "x", 0
for i in range(layers):
    w = rng.standard_normal((dim, dim), dtype=np.float32)
    w *= 1 / np.sqrt(dim)
    b = np.full(dim, 0.01, dtype=np.float32)
    checksum += word_sum(w) + word_sum(b)
    inits += [numpy_helper.from_array(w, f"layers.{i}.weight"), numpy_helper.from_array(b, f"layers.{i}.bias")]
    del w
    nodes.append(helper.make_node("Gemm", [cur, f"layers.{i}.weight", f"layers.{i}.bias"], [f"gemm{i}"], transB=1))
    cur = f"gemm{i}"
    if i < layers - 1:
        nodes.append(helper.make_node("Relu", [cur], [f"relu{i}"]))
        cur = f"relu{i}"
nodes[-1].output[0] = "y"
graph = helper.make_graph(nodes, "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", dim])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", dim])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
onnx.save_model(model, dst, save_as_external_data=True, all_tensors_to_one_file=True,
                location=os.path.basename(dst) + ".data", size_threshold=1024)
report(sum=signed32(checksum), tensors=2 * layers, version=onnx.__version__)
