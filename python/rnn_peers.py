"""Recurrent-layer models and their reference outputs, for test/rnn.peer.test.ts.

python rnn_peers.py OUT_DIR  writes OUT_DIR/<case>/model.onnx, input_K.pb and output_K.pb (ONNX
TensorProtos, the graph's input and output order) and prints a JSON list of the cases with the
reference each output came from. Three kinds of case:

- onnx:   single LSTM / GRU / RNN nodes built with onnx.helper over the spec's attributes, run by
          onnxruntime. onnxruntime refuses layout=1, so those run it on a layout-0 twin of the node
          with transposed inputs, and transpose the outputs back.
- torch:  torch.nn.LSTM / GRU / RNN exported by torch.onnx.export (dynamo=False at opset 17, and the
          dynamo exporter); the reference is torch's own forward, and onnxruntime's run of the file
          must agree with it (else the case is reported, not written).
- keras:  a Keras LSTM / GRU through tf2onnx, where the installed versions manage it; the reference
          is Keras's forward.

Everything is seeded; sizes are small.
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1]
CASES = []
SKIPPED = []
RNG = np.random.default_rng(20261202)
S, B, I, H = 5, 3, 4, 3
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def save_case(name, model, inputs, outputs, reference):
    """inputs and outputs: lists of (name, array) in graph order; None for an omitted output."""
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    for k, (n, a) in enumerate(inputs):
        with open(os.path.join(d, "input_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(np.ascontiguousarray(a), n).SerializeToString())
    for k, (n, a) in enumerate(outputs):
        with open(os.path.join(d, "output_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(np.ascontiguousarray(a), n).SerializeToString())
    CASES.append({"name": name, "dir": d, "inputs": [n for n, _ in inputs], "outputs": [n for n, _ in outputs], "reference": reference})


def ort_run(model, feeds):
    import onnxruntime as ort
    ort.set_default_logger_severity(3)
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def node_case(name, op, direction="forward", dtype=np.float32, layout=0, bias=True, seq_lens=None, initial=False,
              peephole=False, outputs=("Y", "Y_h", "Y_c"), **attrs):
    dirs = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    x = RNG.standard_normal((S, B, I)).astype(dtype)
    arrays = {
        "X": x,
        "W": (RNG.standard_normal((dirs, g * H, I)) * 0.6).astype(dtype),
        "R": (RNG.standard_normal((dirs, g * H, H)) * 0.6).astype(dtype),
    }
    if bias:
        arrays["B"] = (RNG.standard_normal((dirs, 2 * g * H)) * 0.3).astype(dtype)
    if seq_lens is not None:
        arrays["sequence_lens"] = np.array(seq_lens, dtype=np.int32)
    if initial:
        arrays["initial_h"] = RNG.standard_normal((dirs, B, H)).astype(dtype)
        if op == "LSTM":
            arrays["initial_c"] = RNG.standard_normal((dirs, B, H)).astype(dtype)
    if peephole:
        arrays["P"] = (RNG.standard_normal((dirs, 3 * H)) * 0.5).astype(dtype)
    order = ["X", "W", "R", "B", "sequence_lens", "initial_h"] + (["initial_c", "P"] if op == "LSTM" else [])
    last = max(i for i, n in enumerate(order) if n in arrays)
    node_inputs = [n if n in arrays else "" for n in order[: last + 1]]
    all_outputs = ["Y", "Y_h", "Y_c"] if op == "LSTM" else ["Y", "Y_h"]
    node_outputs = [n if n in outputs else "" for n in all_outputs]
    while node_outputs[-1] == "":
        node_outputs.pop()

    def build(lay, arrs):
        shapes = {n: list(a.shape) for n, a in arrs.items()}
        y_shape = [S, dirs, B, H] if lay == 0 else [B, S, dirs, H]
        h_shape = [dirs, B, H] if lay == 0 else [B, dirs, H]
        out_shapes = {"Y": y_shape, "Y_h": h_shape, "Y_c": h_shape}
        extra = {"layout": lay} if lay else {}
        node = helper.make_node(op, node_inputs, node_outputs, hidden_size=H, direction=direction, **extra, **attrs)
        graph = helper.make_graph(
            [node], name,
            [helper.make_tensor_value_info(n, TensorProto.INT32 if n == "sequence_lens" else elem, shapes[n]) for n in node_inputs if n],
            [helper.make_tensor_value_info(n, elem, out_shapes[n]) for n in node_outputs if n])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)], ir_version=10)

    if layout == 0 and dtype == np.float64:
        # onnxruntime's CPU recurrent kernels are float32 only; ONNX's reference evaluator computes
        # in the inputs' own numpy dtype.
        from onnx.reference import ReferenceEvaluator
        model = build(0, arrays)
        got = ReferenceEvaluator(model).run(None, {n: arrays[n] for n in node_inputs if n})
        reference = "onnx.reference"
        file_arrays = arrays
    elif layout == 0:
        model = build(0, arrays)
        feeds = {n: arrays[n] for n in node_inputs if n}
        got = ort_run(model, feeds)
        reference = "onnxruntime"
        file_arrays = arrays
    else:
        # The file holds the batch-major layout; onnxruntime runs the sequence-major twin.
        twin = build(0, arrays)
        got = ort_run(twin, {n: arrays[n] for n in node_inputs if n})
        got = [np.transpose(a, (2, 0, 1, 3)) if n == "Y" else np.transpose(a, (1, 0, 2))
               for n, a in zip([n for n in node_outputs if n], got)]
        file_arrays = dict(arrays)
        file_arrays["X"] = np.transpose(arrays["X"], (1, 0, 2))
        for n in ("initial_h", "initial_c"):
            if n in arrays:
                file_arrays[n] = np.transpose(arrays[n], (1, 0, 2))
        model = build(1, file_arrays)
        reference = "onnxruntime (layout-0 twin)"
    save_case(name, model, [(n, file_arrays[n]) for n in node_inputs if n],
              list(zip([n for n in node_outputs if n], got)), reference)


def node_cases():
    for op in ("LSTM", "GRU", "RNN"):
        low = op.lower()
        for direction in ("forward", "reverse", "bidirectional"):
            node_case("%s_%s" % (low, direction), op, direction)
            node_case("%s_%s_seq_lens_initial" % (low, direction), op, direction, seq_lens=[5, 2, 3], initial=True)
        node_case("%s_layout1_bidirectional" % low, op, "bidirectional", layout=1, seq_lens=[4, 5, 1], initial=True)
        node_case("%s_no_bias" % low, op, "forward", bias=False)
        node_case("%s_zero_length" % low, op, "bidirectional", seq_lens=[0, 5, 2], initial=True)
        node_case("%s_only_y_h" % low, op, "bidirectional", outputs=("Y_h",))
        node_case("%s_only_y" % low, op, "reverse", outputs=("Y",))
        node_case("%s_clip" % low, op, "bidirectional", clip=0.4)
        node_case("%s_float64" % low, op, "forward", dtype=np.float64, initial=True)
    node_case("lstm_peephole", "LSTM", "bidirectional", peephole=True, seq_lens=[5, 1, 4], initial=True)
    node_case("lstm_input_forget", "LSTM", "forward", peephole=True, input_forget=1)
    node_case("lstm_only_y_c", "LSTM", "forward", outputs=("Y_c",))
    node_case("lstm_activations", "LSTM", "forward", activations=["HardSigmoid", "LeakyRelu", "ScaledTanh"],
              activation_alpha=[0.3, 0.05, 1.5], activation_beta=[0.4, 0.7])
    node_case("lstm_activations_bidirectional", "LSTM", "bidirectional",
              activations=["Sigmoid", "Elu", "Softsign", "HardSigmoid", "Tanh", "Softplus"], activation_alpha=[0.8, 0.25],
              activation_beta=[0.55])
    node_case("gru_linear_before_reset", "GRU", "bidirectional", linear_before_reset=1, seq_lens=[2, 5, 4], initial=True)
    node_case("gru_activations", "GRU", "reverse", activations=["HardSigmoid", "ThresholdedRelu"], activation_alpha=[0.25, 0.1],
              activation_beta=[0.45])
    node_case("gru_affine", "GRU", "forward", activations=["Sigmoid", "Affine"], activation_alpha=[0.7], activation_beta=[0.2],
              linear_before_reset=1)
    for act in ("Relu", "Softsign", "Softplus", "Elu", "LeakyRelu", "HardSigmoid"):
        node_case("rnn_%s" % act.lower(), "RNN", "bidirectional", activations=[act, "Sigmoid"], initial=True)
    # Parameters given: onnxruntime's defaults for these three are not the ONNX operators'.
    node_case("rnn_scaledtanh", "RNN", "bidirectional", activations=["ScaledTanh", "ThresholdedRelu"],
              activation_alpha=[1.3, 0.2], activation_beta=[0.8], initial=True)
    node_case("rnn_affine", "RNN", "forward", activations=["Affine"], activation_alpha=[0.9], activation_beta=[-0.1])


def torch_cases():
    import torch
    import torch.nn as nn
    import onnxruntime as ort
    ort.set_default_logger_severity(3)
    torch.manual_seed(5)

    class Wrap(nn.Module):
        """An nn.LSTM/GRU/RNN whose state tuple is flattened into separate outputs."""

        def __init__(self, rnn, with_state):
            super().__init__()
            self.rnn = rnn
            self.with_state = with_state

        def forward(self, x, *state):
            if self.with_state:
                s = state if isinstance(self.rnn, nn.LSTM) else state[0]
                y, out = self.rnn(x, s)
            else:
                y, out = self.rnn(x)
            return (y, *out) if isinstance(out, tuple) else (y, out)

    batch, seq, feat, hidden, layers = 2, 6, 5, 4, 2
    for kind in ("LSTM", "GRU", "RNN"):
        for with_state in (False, True):
            for exporter in ("torchscript", "dynamo"):
                cls = getattr(nn, kind)
                rnn = cls(feat, hidden, num_layers=layers, bidirectional=True, batch_first=True)
                model = Wrap(rnn, with_state).eval()
                x = torch.randn(batch, seq, feat)
                state = []
                if with_state:
                    state.append(torch.randn(2 * layers, batch, hidden))
                    if kind == "LSTM":
                        state.append(torch.randn(2 * layers, batch, hidden))
                args = (x, *state)
                names = ["x"] + ["h0", "c0"][: len(state)]
                out_names = ["y", "h_n"] + (["c_n"] if kind == "LSTM" else [])
                with torch.no_grad():
                    want = [t.numpy() for t in model(*args)]
                name = "torch_%s_%s%s" % (kind.lower(), exporter, "_state" if with_state else "")
                path = os.path.join(OUT, name + ".tmp.onnx")
                try:
                    if exporter == "torchscript":
                        torch.onnx.export(model, args, path, opset_version=17, dynamo=False, input_names=names, output_names=out_names)
                    else:
                        torch.onnx.export(model, args, path, dynamo=True, input_names=names, output_names=out_names)
                    m = onnx.load(path)
                except Exception as e:  # the exporter cannot do it: reported, not hidden
                    SKIPPED.append({"name": name, "reason": str(e).splitlines()[0][:300] if str(e) else type(e).__name__})
                    continue
                ops = sorted({n.op_type for n in m.graph.node})
                feeds = {n: a.numpy() for n, a in zip(names, args)}
                got = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
                for g, w in zip(got, want):
                    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
                file_inputs = [i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
                file_outputs = [o.name for o in m.graph.output]
                save_case(name, m, [(n, feeds[n]) for n in file_inputs], list(zip(file_outputs, want)), "torch (onnxruntime agrees) ops " + " ".join(ops))
                os.remove(path)


def keras_cases():
    try:
        import tensorflow as tf
        import keras
        import tf2onnx
    except Exception as e:
        SKIPPED.append({"name": "keras", "reason": "tensorflow, keras or tf2onnx missing: %s" % e})
        return
    keras.utils.set_random_seed(3)
    for kind in ("LSTM", "GRU"):
        name = "keras_%s" % kind.lower()
        try:
            layer = getattr(keras.layers, kind)
            inp = keras.Input((7, 5), batch_size=2, name="x")
            h = layer(6, return_sequences=True)(inp)
            out = layer(4)(h)
            out = keras.layers.Dense(3)(out)
            model = keras.Model(inp, out)
            x = np.random.default_rng(4).standard_normal((2, 7, 5)).astype(np.float32)
            want = model(x).numpy()
            fn = tf.function(lambda t: model(t), input_signature=[tf.TensorSpec((2, 7, 5), tf.float32, name="x")])
            m, _ = tf2onnx.convert.from_function(fn, input_signature=[tf.TensorSpec((2, 7, 5), tf.float32, name="x")], opset=17)
        except Exception as e:
            SKIPPED.append({"name": name, "reason": "tf2onnx: " + (str(e).splitlines()[0][:300] if str(e) else type(e).__name__)})
            continue
        ops = sorted({n.op_type for n in m.graph.node})
        file_inputs = [i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
        got = ort_run(m, {file_inputs[0]: x})
        np.testing.assert_allclose(got[0], want, rtol=1e-4, atol=1e-5)
        save_case(name, m, [(file_inputs[0], x)], [(m.graph.output[0].name, want)], "keras (onnxruntime agrees) ops " + " ".join(ops))


def keras_savedmodel_cases():
    """Keras 3 LSTM/GRU models saved with model.export (SavedModel): TensorFlow runs them as While
    loops, which modelbridge lifts back to ONNX LSTM/GRU. The reference is Keras's forward. The
    last case uses a non-default activation, which must be refused, not mis-imported."""
    try:
        import keras
    except Exception as e:
        SKIPPED.append({"name": "keras_savedmodel", "reason": "keras missing: %s" % e})
        return
    L = keras.layers
    variants = {
        "lstm": lambda: [L.LSTM(6)],
        "lstm_stacked_sequences": lambda: [L.LSTM(5, return_sequences=True), L.LSTM(4)],
        "lstm_backwards_no_bias": lambda: [L.LSTM(6, go_backwards=True, use_bias=False)],
        "gru": lambda: [L.GRU(6)],
        "gru_reset_before": lambda: [L.GRU(5, reset_after=False, return_sequences=True), L.GRU(3, reset_after=False)],
        "gru_backwards_sequences": lambda: [L.GRU(4, go_backwards=True, return_sequences=True), L.GRU(3)],
        "lstm_relu_refused": lambda: [L.LSTM(4, activation="relu")],
    }
    for i, (name, layers) in enumerate(variants.items()):
        keras.utils.set_random_seed(10 + i)
        inp = keras.Input((7, 5), name="x")
        h = inp
        for layer in layers():
            h = layer(h)
        out = L.Dense(3)(h)
        model = keras.Model(inp, out)
        x = np.random.default_rng(i).standard_normal((2, 7, 5)).astype(np.float32)
        want = model(x).numpy()
        d = os.path.join(OUT, "keras_sm_" + name)
        os.makedirs(d, exist_ok=True)
        model.export(os.path.join(d, "saved_model"), verbose=False)
        save_case("keras_sm_" + name, onnx.ModelProto(), [("x", x)], [("output_0", want)], "keras")
        os.remove(os.path.join(d, "model.onnx"))


def control_cases():
    """If, Loop and Scan built with onnx.helper (outer-scope reads, nesting, every Scan axis and
    direction attribute), run by onnxruntime; and a scripted torch model with data-dependent control
    flow through torch.onnx.export(dynamo=False), against torch."""
    import onnxruntime as ort
    ort.set_default_logger_severity(3)
    F = TensorProto.FLOAT
    vi = helper.make_tensor_value_info

    def scalar(name, value, dtype=np.int64):
        return numpy_helper.from_array(np.array(value, dtype=dtype), name)

    def model(nodes, inputs, outputs, initializers=(), opset=17):
        g = helper.make_graph(nodes, "control", inputs, outputs, list(initializers))
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)

    def run(name, m, feeds):
        onnx.checker.check_model(m, full_check=True)
        got = ort_run(m, feeds)
        save_case(name, m, list(feeds.items()), list(zip([o.name for o in m.graph.output], got)), "onnxruntime")

    x = RNG.standard_normal((3, 4)).astype(np.float32)
    w = numpy_helper.from_array(RNG.standard_normal((4,)).astype(np.float32), "w")
    # If: the branches read the outer input x and the outer initializer w; outputs of different shapes.
    then_g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["t"])], "then", [], [vi("t", F, [3, 4])])
    else_g = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["e"])], "else", [], [vi("e", F, [3, 4])])
    for flag in (True, False):
        m = model([helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
                  [vi("c", TensorProto.BOOL, []), vi("x", F, [3, 4])], [vi("y", F, [3, 4])], [w])
        run("if_outer_%s" % ("then" if flag else "else"), m, {"c": np.array(flag), "x": x})

    # Loop with a trip count and a condition: carried sum, a scan output, and a nested If on the
    # iteration's parity that reads the outermost input x.
    parity = helper.make_graph([
        helper.make_node("Mod", ["i", "two"], ["r"]),
        helper.make_node("Equal", ["r", "zero"], ["even"]),
        helper.make_node("If", ["even"], ["step"],
                         then_branch=helper.make_graph([helper.make_node("Identity", ["x"], ["a"])], "even", [], [vi("a", F, [3, 4])]),
                         else_branch=helper.make_graph([helper.make_node("Neg", ["x"], ["b"])], "odd", [], [vi("b", F, [3, 4])])),
        helper.make_node("Add", ["acc_in", "step"], ["acc_out"]),
        helper.make_node("ReduceSum", ["acc_out"], ["total"], keepdims=0),
        helper.make_node("Less", ["total", "limit"], ["cond_out"]),
        helper.make_node("Identity", ["total"], ["scan_out"]),
    ], "body", [vi("i", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("acc_in", F, [3, 4])],
        [vi("cond_out", TensorProto.BOOL, []), vi("acc_out", F, [3, 4]), vi("scan_out", F, [])],
        [scalar("two", 2), scalar("zero", 0)])
    loop_inputs = [vi("M", TensorProto.INT64, []), vi("cond", TensorProto.BOOL, []), vi("x", F, [3, 4]), vi("acc0", F, [3, 4]), vi("limit", F, [])]
    m = model([helper.make_node("Loop", ["M", "cond", "acc0"], ["acc", "totals"], body=parity)], loop_inputs,
              [vi("acc", F, [3, 4]), vi("totals", F, ["n"])])
    xs = np.abs(x) + 0.1
    run("loop_trip_count", m, {"M": np.array(5, np.int64), "cond": np.array(True), "x": xs, "acc0": np.zeros((3, 4), np.float32), "limit": np.array(1e9, np.float32)})
    run("loop_condition_stops", m, {"M": np.array(50, np.int64), "cond": np.array(True), "x": xs, "acc0": np.ones((3, 4), np.float32), "limit": np.array(15.0, np.float32)})
    run("loop_zero_iterations", m, {"M": np.array(0, np.int64), "cond": np.array(True), "x": xs, "acc0": np.ones((3, 4), np.float32), "limit": np.array(15.0, np.float32)})
    # A while loop: no trip count, the body's condition alone decides (x > 0, so the sum grows past the limit).
    grow = helper.make_graph([
        helper.make_node("Add", ["acc_in", "x"], ["acc_out"]),
        helper.make_node("ReduceSum", ["acc_out"], ["total"], keepdims=0),
        helper.make_node("Less", ["total", "limit"], ["cond_out"]),
        helper.make_node("Identity", ["total"], ["scan_out"]),
    ], "grow", [vi("i", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("acc_in", F, [3, 4])],
        [vi("cond_out", TensorProto.BOOL, []), vi("acc_out", F, [3, 4]), vi("scan_out", F, [])])
    m = model([helper.make_node("Loop", ["", "cond", "acc0"], ["acc", "totals"], body=grow)],
              [vi("cond", TensorProto.BOOL, []), vi("x", F, [3, 4]), vi("acc0", F, [3, 4]), vi("limit", F, [])],
              [vi("acc", F, [3, 4]), vi("totals", F, ["n"])])
    run("loop_while", m, {"cond": np.array(True), "x": xs, "acc0": np.ones((3, 4), np.float32), "limit": np.array(40.0, np.float32)})

    # Scan: two scan inputs cut along different axes and directions, a state, two scan outputs
    # stacked along different axes and directions, and a read of the outer input bias.
    body = helper.make_graph([
        helper.make_node("Add", ["s_in", "a"], ["s1"]),
        helper.make_node("Mul", ["s1", "b"], ["s2"]),
        helper.make_node("Add", ["s2", "bias"], ["s_out"]),
        helper.make_node("Identity", ["s_out"], ["o1"]),
        helper.make_node("Sub", ["a", "b"], ["o2"]),
    ], "scan_body", [vi("s_in", F, [4]), vi("a", F, [4]), vi("b", F, [4])], [vi("s_out", F, [4]), vi("o1", F, [4]), vi("o2", F, [4])])
    m = model([helper.make_node("Scan", ["s0", "A", "B"], ["s", "O1", "O2"], body=body, num_scan_inputs=2,
                                scan_input_axes=[1, 0], scan_input_directions=[1, 0], scan_output_axes=[1, -2], scan_output_directions=[1, 0])],
              [vi("s0", F, [4]), vi("A", F, [4, 5]), vi("B", F, [5, 4]), vi("bias", F, [4])],
              [vi("s", F, [4]), vi("O1", F, [4, 5]), vi("O2", F, [5, 4])])
    run("scan_axes_directions", m, {"s0": RNG.standard_normal(4).astype(np.float32), "A": RNG.standard_normal((4, 5)).astype(np.float32),
                                    "B": (RNG.standard_normal((5, 4)) * 0.5).astype(np.float32), "bias": RNG.standard_normal(4).astype(np.float32)})

    # torch: data-dependent control flow survives only through TorchScript.
    import torch

    class Flow(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x, steps: int):
            h = x
            for i in range(steps):
                if bool(h.sum() > 0):
                    h = torch.tanh(self.fc(h))
                else:
                    h = torch.sigmoid(self.fc(h)) - 0.25 * i
            return h

    torch.manual_seed(9)
    flow = torch.jit.script(Flow().eval())
    path = os.path.join(OUT, "torch_flow.tmp.onnx")
    x = torch.randn(2, 4)
    steps = torch.tensor(6)
    try:
        torch.onnx.export(flow, (x, steps), path, opset_version=17, dynamo=False, input_names=["x", "steps"], output_names=["h"])
        m = onnx.load(path)
    except Exception as e:
        SKIPPED.append({"name": "torch_flow", "reason": str(e).splitlines()[0][:300] if str(e) else type(e).__name__})
        return
    ops = sorted({n.op_type for n in m.graph.node})
    with torch.no_grad():
        want = flow(x, 6).numpy()
    names = [i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
    feeds = {"x": x.numpy(), "steps": np.array(6, np.int64)}
    feeds = {n: feeds[n] for n in names}
    got = ort_run(m, feeds)
    np.testing.assert_allclose(got[0], want, rtol=1e-4, atol=1e-5)
    save_case("torch_flow", m, list(feeds.items()), [(m.graph.output[0].name, want)], "torch (onnxruntime agrees) ops " + " ".join(ops))
    os.remove(path)


if __name__ == "__main__":
    # The exporters print progress on stdout, which carries only the JSON.
    result_stream, sys.stdout = sys.stdout, sys.stderr
    os.makedirs(OUT, exist_ok=True)
    which = sys.argv[2].split(",") if len(sys.argv) > 2 else ["onnx", "torch", "keras", "control", "keras_savedmodel"]
    if "onnx" in which:
        node_cases()
    if "torch" in which:
        torch_cases()
    if "keras" in which:
        keras_cases()
    if "control" in which:
        control_cases()
    if "keras_savedmodel" in which:
        keras_savedmodel_cases()
    json.dump({"cases": CASES, "skipped": SKIPPED}, result_stream)
