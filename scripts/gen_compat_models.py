#!/usr/bin/python3
"""Compatibility-matrix fixtures (issue #12, docs/compatibility.md): small PyTorch models of the
common families (CNN, ResNet, MobileNet with HardSwish/SE, EfficientNet with SiLU/SE, a small
ViT) exported the way users export them, at several opsets, in eval and training mode, plus two
opset-7/8 files built with onnx.helper (ops whose form changed before opset 11). For each model:
one input batch, PyTorch's eval() output (float64), and for the gradient rows the labels, the
cross-entropy loss and PyTorch's gradient of every parameter in train() mode (float64).

Run: /usr/bin/python3 scripts/gen_compat_models.py   (Debian python3-torch 1.13, python3-onnx)
Writes fixtures/compat/*.onnx and fixtures/compat/<model>.json. Deterministic (seeded).
"""
import copy
import json
import os

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "compat")
BATCH = 4
CLASSES = 10


def tensor_json(t):
    a = np.asarray(t, dtype=np.float64).reshape(-1)
    # %.9g round-trips float32 exactly; float64 references keep 10 digits.
    return {"dims": list(np.shape(t)), "data": [float("%.10g" % v) for v in a]}


# ------------------------------------------------------------------------------------------------
# Models (tiny: a few thousand parameters each).


class Cnn(nn.Module):
    """The classic zoo shape: Conv-BN-ReLU6, MaxPool, Dropout, Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, x):
        x = F.max_pool2d(F.relu6(self.bn1(self.conv1(x))), 2)
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(self.drop(x.mean((2, 3))))


class Legacy(nn.Module):
    """Ops whose ONNX form changed before opset 11: Pad, Slice, Clip, Upsample/Resize."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, CLASSES)

    def forward(self, x):
        x = F.pad(self.conv1(x), (1, 2, 1, 0), value=0.25)
        x = torch.clamp(x[:, :, 1:, :-1], -1.0, 1.0)
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = torch.relu(self.conv2(x))
        return self.fc(x.mean((2, 3)))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = BasicBlock(8, 8, 1)
        self.layer2 = BasicBlock(8, 16, 2)
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, x):
        x = self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class SqueezeExcite(nn.Module):
    def __init__(self, c, r, act, gate):
        super().__init__()
        self.fc1 = nn.Conv2d(c, r, 1)
        self.fc2 = nn.Conv2d(r, c, 1)
        self.act = act
        self.gate = gate

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


class InvertedResidual(nn.Module):
    """MobileNetV3 / EfficientNet MBConv: expand 1x1, depthwise 3x3, SE, project 1x1, residual."""

    def __init__(self, c, e, act, se_act, gate):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(c, e, 1, bias=False), nn.BatchNorm2d(e), act)
        self.dw = nn.Sequential(nn.Conv2d(e, e, 3, 1, 1, groups=e, bias=False), nn.BatchNorm2d(e), act)
        self.se = SqueezeExcite(e, 4, se_act, gate)
        self.project = nn.Sequential(nn.Conv2d(e, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.project(self.se(self.dw(self.expand(x))))


class MobileNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.Hardswish())
        self.block = InvertedResidual(8, 16, nn.Hardswish(), nn.ReLU(), nn.Hardsigmoid())
        self.head = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, x):
        x = self.head(self.block(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class EfficientNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.SiLU())
        self.block = InvertedResidual(8, 16, nn.SiLU(), nn.SiLU(), nn.Sigmoid())
        self.head = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.SiLU())
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, x):
        x = self.head(self.block(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        d = c // self.heads

        def split(t):
            return t.reshape(b, n, self.heads, d).permute(0, 2, 1, 3)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        a = torch.softmax(q @ k.transpose(-2, -1) * (d ** -0.5), dim=-1)
        return self.proj((a @ v).permute(0, 2, 1, 3).reshape(b, n, c))


class Vit(nn.Module):
    """Patch embedding, learned positions, one pre-norm block (attention + GELU MLP), mean pool."""

    def __init__(self, dim=16):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 4, 4)
        self.pos = nn.Parameter(torch.randn(1, 16, dim) * 0.1)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, 2)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp1 = nn.Linear(dim, 2 * dim)
        self.mlp2 = nn.Linear(2 * dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, CLASSES)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2) + self.pos
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp2(F.gelu(self.mlp1(self.norm2(x))))
        return self.head(self.norm(x).mean(1))


# (model name, constructor, eval-export opsets, training-export opsets, gradient fixture?)
MODELS = [
    ("cnn", Cnn, [7, 8, 9, 11, 13, 17], [9, 13, 17], False),
    ("legacy", Legacy, [9, 10, 11, 13, 17], [], False),
    ("resnet", ResNet, [9, 13, 17], [13], True),
    ("mobilenet", MobileNet, [11, 13, 17], [13, 17], True),
    ("efficientnet", EfficientNet, [13, 17], [13, 17], True),
    ("vit", Vit, [11, 13, 17], [13, 17], True),
]


def randomize_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


def export(model, x, path, opset, training):
    """Exports a copy of `model`; returns the model whose eval() the file computes."""
    m = copy.deepcopy(model)
    mode = torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.EVAL
    # The CNN rows also cover a dynamic batch (what the CLI asks for); the others are static.
    dynamic = {"input": {0: "batch"}, "logits": {0: "batch"}} if isinstance(model, Cnn) else None
    torch.onnx.export(m, x, path, opset_version=opset, training=mode, do_constant_folding=False,
                      input_names=["input"], output_names=["logits"], dynamic_axes=dynamic)
    if not training:
        return model
    # The trace of a training export runs forward in train mode, so the file holds running
    # statistics updated by one batch (what users get): the reference reads them from the file.
    # Every other parameter must be the model's own.
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for init in onnx.load(path).graph.initializer:
        if init.name not in state or state[init.name].dtype != torch.float32:
            continue
        a = torch.from_numpy(onnx.numpy_helper.to_array(init).copy())
        if not init.name.endswith(("running_mean", "running_var")):
            assert torch.equal(a, state[init.name]), init.name
        state[init.name] = a
    ref = copy.deepcopy(model)
    ref.load_state_dict(state)
    return ref


def logits_of(model, x):
    ref = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        return tensor_json(ref(x.double()))


def build(name, ctor, evals, trains, grads):
    torch.manual_seed(sum(map(ord, name)))
    model = ctor()
    randomize_bn(model)
    model.eval()
    x = torch.rand(BATCH, 3, 16, 16)
    exports = []
    for opset in evals:
        f = f"{name}_opset{opset}_eval.onnx"
        export(model, x, os.path.join(OUT, f), opset, False)
        exports.append({"file": f, "opset": opset, "mode": "eval"})
    for opset in trains:
        f = f"{name}_opset{opset}_train.onnx"
        ref = export(model, x, os.path.join(OUT, f), opset, True)
        exports.append({"file": f, "opset": opset, "mode": "train", "logits": logits_of(ref, x)})
    out = {"generator": "scripts/gen_compat_models.py", "torch": torch.__version__, "model": name,
           "exports": exports, "input": tensor_json(x), "logits": logits_of(model, x)}
    ref = copy.deepcopy(model).double()
    if grads:
        labels = torch.arange(BATCH) % CLASSES
        ref.train()
        loss = F.cross_entropy(ref(x.double()), labels)
        loss.backward()
        out["labels"] = labels.tolist()
        out["loss"] = float(loss)
        out["grads"] = {k: tensor_json(p.grad) for k, p in ref.named_parameters()}
    with open(os.path.join(OUT, f"{name}.json"), "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
        fh.write("\n")


# ------------------------------------------------------------------------------------------------
# Opset 7/8 files built by hand: torch's exporter cannot write Upsample at 7/8, and never writes
# Softmax over a 4-D input's non-last axis (the coerce-to-2-D semantics before opset 13) or TopK-1.


def upsample_asymmetric(x, scale, mode):
    """ONNX Upsample (7–9): output index i reads source coordinate i / scale."""
    for axis in (2, 3):
        n = x.shape[axis]
        src = np.arange(n * scale) / scale
        if mode == "nearest":
            x = np.take(x, np.floor(src).astype(int), axis=axis)
        else:
            i0 = np.floor(src).astype(int)
            i1 = np.minimum(i0 + 1, n - 1)
            w = (src - i0).reshape([-1 if a == axis else 1 for a in range(4)])
            x = np.take(x, i0, axis=axis) * (1 - w) + np.take(x, i1, axis=axis) * w
    return x


def legacy_hand_built(opset, mode):
    rng = np.random.default_rng(opset)
    f32 = lambda *s: rng.uniform(-0.5, 0.5, s).astype(np.float32)  # noqa: E731
    w, b = f32(4, 3, 3, 3), f32(4)
    scale, bias = (f32(4) + 1).astype(np.float32), f32(4)
    mean, var = f32(4), (f32(4) + 1).astype(np.float32)
    x = rng.uniform(0, 1, (2, 3, 8, 8)).astype(np.float32)
    inits = [onnx.numpy_helper.from_array(a, n) for a, n in
             [(w, "conv.weight"), (b, "conv.bias"), (scale, "bn.weight"), (bias, "bn.bias"),
              (mean, "bn.running_mean"), (var, "bn.running_var")]]
    nodes = [
        helper.make_node("Conv", ["input", "conv.weight", "conv.bias"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("BatchNormalization", ["c", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
                         ["bn"], epsilon=1e-5, momentum=0.9, spatial=1, name="bn"),
        helper.make_node("Clip", ["bn"], ["clip"], min=0.0, max=1.5, name="clip"),
        helper.make_node("Pad", ["clip"], ["pad"], pads=[0, 0, 1, 0, 0, 0, 0, 2], value=0.25, name="pad"),
        helper.make_node("Slice", ["pad"], ["slice"], starts=[1, 0], ends=[9, -1], axes=[2, 3], name="slice"),
        helper.make_node("Upsample", ["slice"], ["up"], scales=[1.0, 1.0, 2.0, 2.0], mode=mode, name="up"),
        helper.make_node("Dropout", ["up"], ["drop"], ratio=0.3, name="drop"),
        helper.make_node("Softmax", ["drop"], ["soft"], axis=1, name="softmax"),
        helper.make_node("ReduceSum", ["soft"], ["probs"], axes=[2, 3], keepdims=0, name="sum"),
        helper.make_node("Unsqueeze", ["probs"], ["probs3"], axes=[0], name="unsqueeze"),
        helper.make_node("Squeeze", ["probs3"], ["probs2"], axes=[0], name="squeeze"),
        helper.make_node("TopK", ["probs2"], ["top", "top_i"], k=2, name="topk"),
    ]
    graph = helper.make_graph(
        nodes, f"legacy_opset{opset}",
        # IR version 3 (the classic zoo's): every initializer is also listed as a graph input.
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])]
        + [helper.make_tensor_value_info(i.name, TensorProto.FLOAT, list(i.dims)) for i in inits],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("top", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("top_i", TensorProto.INT64, ["N", 2])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="gen_compat_models.py")
    model.ir_version = 3
    onnx.checker.check_model(model)
    f = f"legacy_opset{opset}_{mode}.onnx"
    onnx.save(model, os.path.join(OUT, f))

    # Reference in float64 from the same float32 values, written from the ONNX-7 definitions.
    d = lambda a: torch.from_numpy(a.astype(np.float64))  # noqa: E731
    c = F.conv2d(d(x), d(w), d(b), padding=1)
    c = F.batch_norm(c, d(mean), d(var), d(scale), d(bias), False, 0.0, 1e-5)
    c = torch.clamp(c, 0.0, 1.5)
    c = F.pad(c, (0, 2, 1, 0), value=0.25)  # ONNX pads [x1_begin.., x1_end..]: H +1 begin, W +2 end
    c = c[:, :, 1:9, 0:-1].numpy()
    c = upsample_asymmetric(c, 2, mode)
    t = torch.from_numpy(c)
    soft = torch.softmax(t.reshape(t.shape[0], -1), 1).reshape(t.shape)  # coerced to 2-D at axis 1
    probs = soft.sum((2, 3))
    top = torch.topk(probs, 2, dim=1)
    out = {"generator": "scripts/gen_compat_models.py", "model": f"legacy_opset{opset}_{mode}",
           "exports": [{"file": f, "opset": opset, "mode": "eval"}], "input": tensor_json(x),
           "probs": tensor_json(probs.numpy()), "top": tensor_json(top.values.numpy()),
           "top_i": {"dims": [2, 2], "data": top.indices.reshape(-1).tolist()}}
    with open(os.path.join(OUT, f"legacy_opset{opset}_{mode}.json"), "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
        fh.write("\n")


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for spec in MODELS:
        build(*spec)
    legacy_hand_built(7, "nearest")
    legacy_hand_built(8, "linear")


if __name__ == "__main__":
    main()
