#!/usr/bin/python3
"""Builds fixtures/models/tf2onnx_style_cnn.onnx: a small Keras-like CNN written the way tf2onnx
exports one, plus fixtures/models/tf2onnx_style_cnn.io.json (a fixed input and the expected
output computed independently with PyTorch in float64).

This is NOT an actual tf2onnx export. tf2onnx (and TensorFlow) cannot be installed here: they are
not on npm, not in Debian, and there is no PyPI access. The graph is assembled with onnx.helper
(Debian python3-onnx) to reproduce what tf2onnx emits for
`Input((12, 12, 3)) → Conv2D(8, 3, 'same', relu) → Conv2D(16, 3, strides=2, relu) → Flatten →
Dense(32, relu) → Dense(10, softmax)`:

- an NHWC input named `input_1` with a dynamic batch `unk__N` dim param, output `dense_1`;
- `Transpose` NHWC → NCHW before the convolutions and back to NHWC before Flatten;
- weights as initializers with TensorFlow names (`model/conv2d/Conv2D/ReadVariableOp:0`), one
  Conv weight as a `Constant` node read through an `Identity` (TensorFlow's ReadVariableOp);
- `Identity` nodes (a weight read, a bias read, and the one producing the graph output);
- Keras Flatten as TensorFlow shape arithmetic on int32: `Shape → Cast(int32)`, the batch taken by
  `Slice → Squeeze → Unsqueeze` (StridedSlice + Pack), the static size as
  `Gather(1..3) → Mul → Unsqueeze`, `Concat → Cast(int64) → Reshape`;
- Dense as `MatMul` + `Add`, `Relu`, `Softmax`; opset 13, producer_name "tf2onnx".

Run: /usr/bin/python3 scripts/gen_tf2onnx_style.py   (Debian python3-onnx, python3-torch)
"""
import json
import os

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "models")
H, W, C = 12, 12, 3
BATCH = "unk__47"


def main():
    rng = np.random.default_rng(7)

    def weight(*shape, fan_in):
        bound = 1 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=shape).astype(np.float32)

    w1 = weight(8, C, 3, 3, fan_in=C * 9)  # OIHW, as tf2onnx stores Conv weights after folding
    b1 = weight(8, fan_in=C * 9)
    w2 = weight(16, 8, 3, 3, fan_in=8 * 9)
    b2 = weight(16, fan_in=8 * 9)
    flat = 5 * 5 * 16
    w3 = weight(flat, 32, fan_in=flat)  # Dense kernels are [in, out] for MatMul
    b3 = weight(32, fan_in=flat)
    w4 = weight(32, 10, fan_in=32)
    b4 = weight(10, fan_in=32)

    def init(name, a):
        return numpy_helper.from_array(a, name)

    def i64(name, values):
        return numpy_helper.from_array(np.array(values, dtype=np.int64), name)

    initializers = [
        init("model/conv2d/Conv2D/ReadVariableOp:0", w1),
        init("model/conv2d/BiasAdd/ReadVariableOp:0", b1),
        init("model/conv2d_1/BiasAdd/ReadVariableOp:0", b2),
        init("model/dense/MatMul/ReadVariableOp:0", w3),
        init("model/dense/BiasAdd/ReadVariableOp/resource:0", b3),
        init("model/dense_1/MatMul/ReadVariableOp:0", w4),
        init("model/dense_1/BiasAdd/ReadVariableOp:0", b4),
        i64("const_starts__31", [0]),
        i64("const_ends__32", [1]),
        i64("const_axes__33", [0]),
        i64("const_fold_opt__41", 1),
        i64("const_fold_opt__42", 2),
        i64("const_fold_opt__43", 3),
    ]
    n = helper.make_node
    nodes = [
        # The second convolution's kernel as a Constant node, read through an Identity.
        n("Constant", [], ["model/conv2d_1/Conv2D/ReadVariableOp/resource:0"],
          name="model/conv2d_1/Conv2D/ReadVariableOp/resource",
          value=numpy_helper.from_array(w2, "model/conv2d_1/Conv2D/ReadVariableOp/resource")),
        n("Identity", ["model/conv2d_1/Conv2D/ReadVariableOp/resource:0"],
          ["model/conv2d_1/Conv2D/ReadVariableOp:0"], name="model/conv2d_1/Conv2D/ReadVariableOp"),
        n("Transpose", ["input_1"], ["model/conv2d/BiasAdd__6:0"], name="model/conv2d/BiasAdd__6",
          perm=[0, 3, 1, 2]),
        n("Conv", ["model/conv2d/BiasAdd__6:0", "model/conv2d/Conv2D/ReadVariableOp:0",
                   "model/conv2d/BiasAdd/ReadVariableOp:0"], ["model/conv2d/BiasAdd:0"],
          name="model/conv2d/BiasAdd", auto_pad="SAME_UPPER", dilations=[1, 1], kernel_shape=[3, 3],
          strides=[1, 1]),
        n("Relu", ["model/conv2d/BiasAdd:0"], ["model/conv2d/Relu:0"], name="model/conv2d/Relu"),
        n("Conv", ["model/conv2d/Relu:0", "model/conv2d_1/Conv2D/ReadVariableOp:0",
                   "model/conv2d_1/BiasAdd/ReadVariableOp:0"], ["model/conv2d_1/BiasAdd:0"],
          name="model/conv2d_1/BiasAdd", dilations=[1, 1], kernel_shape=[3, 3], pads=[0, 0, 0, 0],
          strides=[2, 2]),
        n("Relu", ["model/conv2d_1/BiasAdd:0"], ["model/conv2d_1/Relu:0"], name="model/conv2d_1/Relu"),
        n("Transpose", ["model/conv2d_1/Relu:0"], ["model/conv2d_1/Relu__28:0"],
          name="model/conv2d_1/Relu__28", perm=[0, 2, 3, 1]),
        # Keras Flatten: reshape(x, [shape(x)[0], prod(shape(x)[1:])]) in TensorFlow's int32.
        n("Shape", ["model/conv2d_1/Relu__28:0"], ["model/flatten/Shape:0"], name="model/flatten/Shape"),
        n("Cast", ["model/flatten/Shape:0"], ["model/flatten/Shape__30:0"], name="model/flatten/Shape__30",
          to=TensorProto.INT32),
        n("Slice", ["model/flatten/Shape__30:0", "const_starts__31", "const_ends__32", "const_axes__33"],
          ["model/flatten/strided_slice:0"], name="model/flatten/strided_slice"),
        n("Squeeze", ["model/flatten/strided_slice:0", "const_axes__33"],
          ["model/flatten/strided_slice__34:0"], name="model/flatten/strided_slice__34"),
        n("Gather", ["model/flatten/Shape__30:0", "const_fold_opt__41"], ["model/flatten/Prod/d1:0"],
          name="model/flatten/Prod/d1", axis=0),
        n("Gather", ["model/flatten/Shape__30:0", "const_fold_opt__42"], ["model/flatten/Prod/d2:0"],
          name="model/flatten/Prod/d2", axis=0),
        n("Gather", ["model/flatten/Shape__30:0", "const_fold_opt__43"], ["model/flatten/Prod/d3:0"],
          name="model/flatten/Prod/d3", axis=0),
        n("Mul", ["model/flatten/Prod/d1:0", "model/flatten/Prod/d2:0"], ["model/flatten/Prod/mul:0"],
          name="model/flatten/Prod/mul"),
        n("Mul", ["model/flatten/Prod/mul:0", "model/flatten/Prod/d3:0"], ["model/flatten/Prod:0"],
          name="model/flatten/Prod"),
        n("Unsqueeze", ["model/flatten/strided_slice__34:0", "const_axes__33"],
          ["model/flatten/Reshape/shape_Unsqueeze__35:0"], name="model/flatten/Reshape/shape_Unsqueeze__35"),
        n("Unsqueeze", ["model/flatten/Prod:0", "const_axes__33"],
          ["model/flatten/Reshape/shape_Unsqueeze__36:0"], name="model/flatten/Reshape/shape_Unsqueeze__36"),
        n("Concat", ["model/flatten/Reshape/shape_Unsqueeze__35:0", "model/flatten/Reshape/shape_Unsqueeze__36:0"],
          ["model/flatten/Reshape/shape_Concat__37:0"], name="model/flatten/Reshape/shape_Concat__37", axis=0),
        n("Cast", ["model/flatten/Reshape/shape_Concat__37:0"], ["model/flatten/Reshape__38:0"],
          name="model/flatten/Reshape__38", to=TensorProto.INT64),
        n("Reshape", ["model/conv2d_1/Relu__28:0", "model/flatten/Reshape__38:0"], ["model/flatten/Reshape:0"],
          name="model/flatten/Reshape"),
        n("MatMul", ["model/flatten/Reshape:0", "model/dense/MatMul/ReadVariableOp:0"],
          ["model/dense/MatMul:0"], name="model/dense/MatMul"),
        n("Identity", ["model/dense/BiasAdd/ReadVariableOp/resource:0"],
          ["model/dense/BiasAdd/ReadVariableOp:0"], name="model/dense/BiasAdd/ReadVariableOp"),
        n("Add", ["model/dense/MatMul:0", "model/dense/BiasAdd/ReadVariableOp:0"], ["model/dense/BiasAdd:0"],
          name="model/dense/BiasAdd"),
        n("Relu", ["model/dense/BiasAdd:0"], ["model/dense/Relu:0"], name="model/dense/Relu"),
        n("MatMul", ["model/dense/Relu:0", "model/dense_1/MatMul/ReadVariableOp:0"],
          ["model/dense_1/MatMul:0"], name="model/dense_1/MatMul"),
        n("Add", ["model/dense_1/MatMul:0", "model/dense_1/BiasAdd/ReadVariableOp:0"],
          ["model/dense_1/BiasAdd:0"], name="model/dense_1/BiasAdd"),
        n("Softmax", ["model/dense_1/BiasAdd:0"], ["model/dense_1/Softmax:0"], name="model/dense_1/Softmax",
          axis=-1),
        n("Identity", ["model/dense_1/Softmax:0"], ["dense_1"], name="Identity"),
    ]
    graph = helper.make_graph(
        nodes,
        "tf2onnx",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [BATCH, H, W, C])],
        [helper.make_tensor_value_info("dense_1", TensorProto.FLOAT, ["unk__48", 10])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 13)],
        producer_name="tf2onnx",
        producer_version="pattern-fixture",
        doc_string="tf2onnx-pattern graph built with onnx.helper by scripts/gen_tf2onnx_style.py; "
        "not an actual tf2onnx export",
    )
    model.ir_version = 7  # what tf2onnx writes for opset 13
    onnx.checker.check_model(model, full_check=True)
    os.makedirs(OUT, exist_ok=True)
    onnx.save(model, os.path.join(OUT, "tf2onnx_style_cnn.onnx"))

    # The expected output, computed independently in PyTorch (float64, NCHW).
    x = np.random.default_rng(11).uniform(0, 1, size=(2, H, W, C)).astype(np.float32)
    t = lambda a: torch.from_numpy(a.astype(np.float64))  # noqa: E731
    with torch.no_grad():
        y = t(x).permute(0, 3, 1, 2)
        y = torch.relu(torch.nn.functional.conv2d(y, t(w1), t(b1), padding=1))
        y = torch.relu(torch.nn.functional.conv2d(y, t(w2), t(b2), stride=2))
        y = y.permute(0, 2, 3, 1).reshape(y.shape[0], -1)  # Flatten in NHWC order
        y = torch.relu(y @ t(w3) + t(b3))
        logits = y @ t(w4) + t(b4)
        probs = torch.softmax(logits, dim=-1)
    with open(os.path.join(OUT, "tf2onnx_style_cnn.io.json"), "w") as f:
        json.dump({
            "generator": "scripts/gen_tf2onnx_style.py (torch %s, float64)" % torch.__version__,
            "input_1": {"dims": list(x.shape), "data": [float(v) for v in x.reshape(-1)]},
            "logits": {"dims": list(logits.shape), "data": [round(float(v), 10) for v in logits.reshape(-1)]},
            "dense_1": {"dims": list(probs.shape), "data": [round(float(v), 10) for v in probs.reshape(-1)]},
        }, f)
        f.write("\n")


if __name__ == "__main__":
    main()
