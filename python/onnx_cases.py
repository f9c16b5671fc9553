"""Dump ONNX backend node tests as JSON for modelbridge's runtime conformance test.

The ONNX package (a peer) decodes model.onnx and the test_data_set_*/*.pb TensorProtos; this
script only re-expresses them as JSON (dtype, shape, base64 little-endian bytes) so the runtime
can be checked against ONNX's own expected outputs. Usage:

    python onnx_cases.py NODE_DIR [NODE_DIR ...]   # prints one JSON document on stdout
"""
import base64
import glob
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

DTYPES = {
    np.float32: "float32", np.float64: "float64", np.float16: "float16",
    np.int8: "int8", np.int16: "int16", np.int32: "int32", np.int64: "int64",
    np.uint8: "uint8", np.uint16: "uint16", np.uint32: "uint32", np.uint64: "uint64",
    np.bool_: "bool",
}


def tensor_json(array):
    array = np.asarray(array)
    name = DTYPES.get(array.dtype.type)
    if name is None and str(array.dtype) == "bfloat16":  # ml_dtypes' bfloat16, as onnx returns it
        name = "bfloat16"
    if name is None:
        return {"unsupported": str(array.dtype)}
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
    return {"dtype": name, "shape": list(array.shape), "data": base64.b64encode(data.tobytes()).decode()}


def attribute_json(attr):
    kind = onnx.AttributeProto.AttributeType.Name(attr.type)
    if kind == "INT":
        return {"int": attr.i}
    if kind == "FLOAT":
        return {"float": attr.f}
    if kind == "STRING":
        return {"string": attr.s.decode("utf-8", "replace")}
    if kind == "INTS":
        return {"ints": list(attr.ints)}
    if kind == "FLOATS":
        return {"floats": list(attr.floats)}
    if kind == "STRINGS":
        return {"strings": [s.decode("utf-8", "replace") for s in attr.strings]}
    if kind == "TENSOR":
        return {"tensor": tensor_json(numpy_helper.to_array(attr.t))}
    return {"unsupported": kind}


def load_proto(path):
    tensor = onnx.TensorProto()
    with open(path, "rb") as f:
        tensor.ParseFromString(f.read())
    return numpy_helper.to_array(tensor)


def case_json(directory):
    model = onnx.load(os.path.join(directory, "model.onnx"))
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    initializers = {t.name: tensor_json(numpy_helper.to_array(t)) for t in graph.initializer}
    nodes = [{
        "name": n.name or (n.output[0] if n.output else n.op_type),
        "op": n.op_type,
        "domain": n.domain,
        "inputs": list(n.input),
        "outputs": list(n.output),
        "attributes": {a.name: attribute_json(a) for a in n.attribute},
    } for n in graph.node]
    inputs = [i.name for i in graph.input if i.name not in initializers]
    outputs = [o.name for o in graph.output]
    sets = []
    for data_dir in sorted(glob.glob(os.path.join(directory, "test_data_set_*"))):
        try:
            feeds = [tensor_json(load_proto(os.path.join(data_dir, f"input_{i}.pb"))) for i in range(len(inputs))]
            expected = [tensor_json(load_proto(os.path.join(data_dir, f"output_{i}.pb"))) for i in range(len(outputs))]
        except Exception as error:  # sequences and optionals are not plain TensorProtos
            return {"name": os.path.basename(directory), "error": f"test data: {error}"}
        sets.append({"inputs": feeds, "outputs": expected})
    return {
        "name": os.path.basename(directory), "opset": opset, "nodes": nodes,
        "inputs": inputs, "outputs": outputs, "initializers": initializers, "sets": sets,
    }


def main():
    cases = []
    for directory in sys.argv[1:]:
        try:
            cases.append(case_json(directory))
        except Exception as error:
            cases.append({"name": os.path.basename(directory), "error": str(error)})
    json.dump(cases, sys.stdout)


if __name__ == "__main__":
    main()
