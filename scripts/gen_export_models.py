#!/usr/bin/python3
"""Builds the small exported models that tests/e2e-export-ops.test.ts trains end to end
(issue #18: train through what real exports contain). Writes into fixtures/models/:

- tf2onnx_style_clip.onnx      a Keras-like CNN written the way tf2onnx writes a clipped ReLU
                               (`tf.clip_by_value` / ReLU6 as `Max(Min(x, 6), 0)`): NHWC input,
                               Transpose to NCHW, Conv, Min/Max clipping, Transpose back, Reshape,
                               MatMul + Add. Built with onnx.helper (tf2onnx cannot be installed
                               here), opset 13, producer "tf2onnx".
- torch_groupnorm.onnx         torch.onnx.export of Conv → GroupNorm → ReLU → Conv → GroupNorm →
                               ReLU → mean pool → Linear at opset 17, where PyTorch writes
                               GroupNorm as Reshape → InstanceNormalization → Reshape → Mul → Add.
- torch_pixelshuffle_sr.onnx   a 2× super-resolution net (ESPCN-like): Conv → Tanh → Conv →
                               PixelShuffle, exported at opset 17 (PixelShuffle → DepthToSpace CRD).
- torch_if_static.onnx         a scripted net with `if x.size(1) == 8: relu else tanh`: an If whose
                               condition folds on import (Shape → Gather → Equal of static dims).
- torch_if_dynamic.onnx        the same with `if x.mean() > 0`: an If that cannot be folded.
- torch_token_transformer.onnx a one-block transformer over token ids: the float input is cast to
                               int64 (`x.long()`), token + position embeddings (Gather), attention
                               written with torch.einsum (Einsum), LayerNorm, GELU MLP, mean over
                               tokens, Linear classifier; opset 17.

Run: /usr/bin/python3 scripts/gen_export_models.py   (Debian python3-torch, python3-onnx)
Weights are seeded; the files are small (< 40 kB each).
"""
import io
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "models")


def save(model_bytes, name):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(model_bytes)
    onnx.checker.check_model(onnx.load_from_string(model_bytes))
    print(f"wrote {path} ({len(model_bytes)} bytes)")


def export(module, example, name, input_name="input", output_name="output"):
    module.eval()
    buf = io.BytesIO()
    torch.onnx.export(
        module,
        example,
        buf,
        opset_version=17,
        input_names=[input_name],
        output_names=[output_name],
        dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
        do_constant_folding=True,
    )
    save(buf.getvalue(), name)


def tf2onnx_clip():
    rng = np.random.default_rng(18)

    def weight(*shape, fan_in):
        bound = 1 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=shape).astype(np.float32)

    h = w = 8
    c = 3
    flat = 4 * 4 * 8
    inits = [
        numpy_helper.from_array(weight(8, c, 3, 3, fan_in=c * 9), "model/conv2d/Conv2D/ReadVariableOp:0"),
        numpy_helper.from_array(weight(8, fan_in=c * 9), "model/conv2d/BiasAdd/ReadVariableOp:0"),
        numpy_helper.from_array(weight(8, 8, 3, 3, fan_in=8 * 9), "model/conv2d_1/Conv2D/ReadVariableOp:0"),
        numpy_helper.from_array(weight(8, fan_in=8 * 9), "model/conv2d_1/BiasAdd/ReadVariableOp:0"),
        numpy_helper.from_array(weight(flat, 4, fan_in=flat), "model/dense/MatMul/ReadVariableOp:0"),
        numpy_helper.from_array(weight(4, fan_in=flat), "model/dense/BiasAdd/ReadVariableOp:0"),
        numpy_helper.from_array(np.array(6, dtype=np.float32), "model/re_lu/Relu6/max:0"),
        numpy_helper.from_array(np.array(0, dtype=np.float32), "model/re_lu/Relu6/min:0"),
        numpy_helper.from_array(np.array(1.5, dtype=np.float32), "model/clip/clip_by_value/y:0"),
        numpy_helper.from_array(np.array(-1.5, dtype=np.float32), "model/clip/clip_by_value/Minimum/y:0"),
        numpy_helper.from_array(np.array([-1, flat], dtype=np.int64), "const_fold_opt__20"),
    ]
    n = helper.make_node
    nodes = [
        n("Transpose", ["input_1"], ["model/conv2d/BiasAdd__6:0"], name="model/conv2d/BiasAdd__6", perm=[0, 3, 1, 2]),
        n("Conv", ["model/conv2d/BiasAdd__6:0", "model/conv2d/Conv2D/ReadVariableOp:0",
                   "model/conv2d/BiasAdd/ReadVariableOp:0"], ["model/conv2d/BiasAdd:0"],
          name="model/conv2d/BiasAdd", auto_pad="SAME_UPPER", kernel_shape=[3, 3], strides=[1, 1]),
        # ReLU6 as tf2onnx writes it for some TF versions: Max(Min(x, 6), 0).
        n("Min", ["model/conv2d/BiasAdd:0", "model/re_lu/Relu6/max:0"], ["model/re_lu/Relu6/Minimum:0"],
          name="model/re_lu/Relu6/Minimum"),
        n("Max", ["model/re_lu/Relu6/Minimum:0", "model/re_lu/Relu6/min:0"], ["model/re_lu/Relu6:0"],
          name="model/re_lu/Relu6"),
        n("Conv", ["model/re_lu/Relu6:0", "model/conv2d_1/Conv2D/ReadVariableOp:0",
                   "model/conv2d_1/BiasAdd/ReadVariableOp:0"], ["model/conv2d_1/BiasAdd:0"],
          name="model/conv2d_1/BiasAdd", pads=[1, 1, 1, 1], kernel_shape=[3, 3], strides=[2, 2]),
        # tf.clip_by_value(x, -1.5, 1.5): Minimum then Maximum.
        n("Min", ["model/conv2d_1/BiasAdd:0", "model/clip/clip_by_value/y:0"],
          ["model/clip/clip_by_value/Minimum:0"], name="model/clip/clip_by_value/Minimum"),
        n("Max", ["model/clip/clip_by_value/Minimum:0", "model/clip/clip_by_value/Minimum/y:0"],
          ["model/clip/clip_by_value:0"], name="model/clip/clip_by_value"),
        n("Transpose", ["model/clip/clip_by_value:0"], ["model/clip/clip_by_value__12:0"],
          name="model/clip/clip_by_value__12", perm=[0, 2, 3, 1]),
        n("Reshape", ["model/clip/clip_by_value__12:0", "const_fold_opt__20"], ["model/flatten/Reshape:0"],
          name="model/flatten/Reshape"),
        n("MatMul", ["model/flatten/Reshape:0", "model/dense/MatMul/ReadVariableOp:0"], ["model/dense/MatMul:0"],
          name="model/dense/MatMul"),
        n("Add", ["model/dense/MatMul:0", "model/dense/BiasAdd/ReadVariableOp:0"], ["dense"],
          name="model/dense/BiasAdd"),
    ]
    graph = helper.make_graph(
        nodes,
        "tf2onnx",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["unk__31", h, w, c])],
        [helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["unk__32", 4])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="tf2onnx", producer_version="1.9.3")
    model.ir_version = 7
    save(model.SerializeToString(), "tf2onnx_style_clip.onnx")


class GroupNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.gn1 = nn.GroupNorm(2, 8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, stride=2)
        self.gn2 = nn.GroupNorm(4, 8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.gn1(self.conv1(x)))
        x = torch.relu(self.gn2(self.conv2(x)))
        return self.fc(x.mean(dim=(2, 3)))


class PixelShuffleSR(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.conv2(torch.tanh(self.conv1(x))))


class TokenTransformer(nn.Module):
    def __init__(self, vocab=12, tokens=6, dim=16, heads=2, classes=4):
        super().__init__()
        self.heads = heads
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(tokens, dim) * 0.1)
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp1 = nn.Linear(dim, 2 * dim)
        self.mlp2 = nn.Linear(2 * dim, dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        ids = x.long()
        h = self.tok(ids) + self.pos
        b, t, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).chunk(3, dim=-1)
        split = lambda z: z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(q), split(k), split(v)
        att = torch.softmax(torch.einsum("bhqd,bhkd->bhqk", q, k) / (d // self.heads) ** 0.5, dim=-1)
        o = torch.einsum("bhqk,bhkd->bhqd", att, v).transpose(1, 2).reshape(b, t, d)
        h = h + self.proj(o)
        h = h + self.mlp2(torch.nn.functional.gelu(self.mlp1(self.ln2(h))))
        return self.head(h.mean(dim=1))


class ShapeIf(nn.Module):
    """A scripted optional branch whose condition depends only on a static channel count."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.conv1(x)
        if x.size(1) == 8:
            x = torch.relu(x)
        else:
            x = torch.tanh(x)
        x = torch.relu(self.conv2(x))
        return self.fc(x.mean(dim=(2, 3)))


class DataIf(ShapeIf):
    """The same with a data-dependent condition: the If cannot be folded."""

    def forward(self, x):
        x = self.conv1(x)
        if bool(x.mean() > 0):
            x = torch.relu(x)
        else:
            x = torch.tanh(x)
        x = torch.relu(self.conv2(x))
        return self.fc(x.mean(dim=(2, 3)))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(18)
    tf2onnx_clip()
    export(GroupNormNet(), torch.randn(2, 3, 8, 8), "torch_groupnorm.onnx")
    export(PixelShuffleSR(), torch.randn(2, 1, 6, 6), "torch_pixelshuffle_sr.onnx")
    export(TokenTransformer(), torch.randint(0, 12, (2, 6)).float(), "torch_token_transformer.onnx",
           input_name="tokens", output_name="logits")
    # torch.jit.script keeps Python control flow as ONNX If nodes.
    export(torch.jit.script(ShapeIf().eval()), (torch.randn(2, 3, 8, 8),), "torch_if_static.onnx")
    export(torch.jit.script(DataIf().eval()), (torch.randn(2, 3, 8, 8),), "torch_if_dynamic.onnx")

if __name__ == "__main__":
    main()
