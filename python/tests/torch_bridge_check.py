#!/usr/bin/python3
"""The PyTorch side of test/torch-bridge.test.ts (run by that test; not a test on its own).

For every case the test prepared under WORK/<case>/ (the base model as ONNX and as safetensors
of its initializers, a quadranet adapter, an input batch and labels), this builds the same
network in PyTorch (quadranet's built-in architectures, PyTorch-style names), loads the base
weights, attaches the adapter with quadranet_torch, and writes WORK/<case>/torch/:

  outputs.safetensors   y_base (torch replica of the base), y_quad (adapter attached),
                        y_off (adapter bypassed), y_after (after one training step)
  resaved/              the adapter saved back untouched (must be byte-identical)
  trained/              the adapter after one SGD step on the quadratic parameters
  info.json             loss, DDP use, parameter names

and, when WORK/other.onnx exists, WORK/refusal.txt: what loading the first case's adapter with
that (wrong) base model said.

Usage: /usr/bin/python3 python/tests/torch_bridge_check.py WORK
"""

import json
import os
import sys
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import quadranet_torch as qt  # noqa: E402

torch.set_num_threads(1)


class Ns(nn.Module):
    """A plain container, so modules can live at dotted paths (``block1.conv1``)."""


def put(root: nn.Module, path: str, module: nn.Module) -> nn.Module:
    *parents, leaf = path.split(".")
    node = root
    for p in parents:
        if not hasattr(node, p):
            node.add_module(p, Ns())
        node = getattr(node, p)
    node.add_module(leaf, module)
    return module


class Cnn(nn.Module):
    """src/models/zoo.ts cnn()."""

    def __init__(self, c, h, w, classes=10, width=1.0):
        super().__init__()
        c1, c2 = round(16 * width), round(32 * width)
        self.conv1 = nn.Conv2d(c, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.head = nn.Linear(c2 * (h // 4) * (w // 4), classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.head(torch.flatten(x, 1))


class ResNet(nn.Module):
    """src/models/zoo.ts resnet()."""

    def __init__(self, c, h, w, classes=10, width=1.0):
        super().__init__()
        c1, c2 = round(16 * width), round(32 * width)
        put(self, "stem", nn.Conv2d(c, c1, 3, padding=1, bias=False))
        put(self, "stem_bn", nn.BatchNorm2d(c1))
        put(self, "block1.conv1", nn.Conv2d(c1, c1, 3, padding=1, bias=False))
        put(self, "block1.bn1", nn.BatchNorm2d(c1))
        put(self, "block1.conv2", nn.Conv2d(c1, c1, 3, padding=1, bias=False))
        put(self, "block1.bn2", nn.BatchNorm2d(c1))
        put(self, "block2.conv1", nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False))
        put(self, "block2.bn1", nn.BatchNorm2d(c2))
        put(self, "block2.conv2", nn.Conv2d(c2, c2, 3, padding=2, dilation=2, bias=False))
        put(self, "block2.bn2", nn.BatchNorm2d(c2))
        put(self, "block2.down", nn.Conv2d(c1, c2, 1, stride=2, bias=False))
        put(self, "block2.down_bn", nn.BatchNorm2d(c2))
        put(self, "head", nn.Linear(c2, classes))

    def forward(self, x):
        b1, b2 = self.block1, self.block2
        x = F.relu(self.stem_bn(self.stem(x)))
        x = F.relu(x + b1.bn2(b1.conv2(F.relu(b1.bn1(b1.conv1(x))))))
        y = b2.bn2(b2.conv2(F.relu(b2.bn1(b2.conv1(x)))))
        x = F.relu(y + b2.down_bn(b2.down(x)))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ConvNeXt(nn.Module):
    """src/models/zoo.ts convnext(): its MatMul weights are [in, out] (transposed on load)."""

    def __init__(self, c_in, h, w, classes=10, width=1.0, depth=2):
        super().__init__()
        c = round(32 * width)
        self.depth = depth
        put(self, "stem", nn.Conv2d(c_in, c, 2, stride=2))
        for i in range(depth):
            put(self, f"block{i}.dwconv", nn.Conv2d(c, c, 7, padding=3, groups=c))
            put(self, f"block{i}.norm", nn.LayerNorm(c, eps=1e-6))
            put(self, f"block{i}.pwconv1", nn.Linear(c, 4 * c))
            put(self, f"block{i}.pwconv2", nn.Linear(4 * c, c))
        put(self, "head", nn.Linear(c, classes))

    def forward(self, x):
        x = self.stem(x)
        for i in range(self.depth):
            b = getattr(self, f"block{i}")
            y = b.dwconv(x).permute(0, 2, 3, 1)
            y = b.pwconv2(F.gelu(b.pwconv1(b.norm(y))))
            x = x + y.permute(0, 3, 1, 2)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


ARCHS = {"cnn": Cnn, "resnet": ResNet, "convnext": ConvNeXt}


def build(case):
    c, h, w = case["inputShape"]
    opts = dict(case.get("archOptions", {}))
    opts.pop("inputShape", None)
    model = ARCHS[case["arch"]](c, h, w, **opts)
    base, _ = qt.read_safetensors(os.path.join(case["dir"], "base.safetensors"))
    state = {}
    for name, t in base.items():
        # quadranet's channels-last dense layers (MatMul) store [in, out]; nn.Linear keeps [out, in].
        state[name] = t.t().contiguous() if ("pwconv" in name and name.endswith(".weight")) else t
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    assert not missing, f"{case['name']}: no base weights for {missing}"
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return model.eval()


def run_case(case, ddp_dir):
    d = case["dir"]
    out = os.path.join(d, "torch")
    os.makedirs(out, exist_ok=True)
    io, _ = qt.read_safetensors(os.path.join(d, "io.safetensors"))
    x, labels = io["x"], io["labels"].long()
    model = build(case)
    with torch.no_grad():
        y_base = model(x)
    base_keys = sorted(model.state_dict())
    terms = qt.load_adapter(model, os.path.join(d, "adapter"), base_model=os.path.join(d, "base.onnx"))
    with torch.no_grad():
        y_quad = model(x)
        qt.set_adapter_enabled(model, False)
        y_off = model(x)
        qt.set_adapter_enabled(model, True)
    # Saving untouched weights must reproduce quadranet's files byte for byte.
    qt.save_adapter(model, os.path.join(out, "resaved"))

    for p in model.parameters():
        p.requires_grad_(False)
    for p in qt.quad_parameters(model):
        p.requires_grad_(True)
    trainable = model
    if case.get("ddp"):
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method="file://" + os.path.join(ddp_dir, "ddp-init"), rank=0, world_size=1)
        trainable = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(qt.quad_parameters(trainable), lr=case.get("lr", 0.05))
    loss = F.cross_entropy(trainable(x), labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        y_after = trainable(x)
    qt.save_adapter(trainable, os.path.join(out, "trained"))
    if case.get("ddp"):
        import torch.distributed as dist

        dist.destroy_process_group()

    qt.unload(model)
    assert sorted(model.state_dict()) == base_keys, "unload restores the base model's parameters"
    with torch.no_grad():
        assert torch.equal(model(x), y_base), "unloaded, the model is the base model"
    qt.write_safetensors(
        os.path.join(out, "outputs.safetensors"),
        {"y_base": y_base, "y_quad": y_quad, "y_off": y_off, "y_after": y_after},
    )
    with open(os.path.join(out, "info.json"), "w") as f:
        json.dump({"loss": float(loss), "ddp": bool(case.get("ddp")), "terms": sorted(terms)}, f)


def main():
    work = sys.argv[1]
    with open(os.path.join(work, "cases.json")) as f:
        cases = json.load(f)
    with tempfile.TemporaryDirectory() as ddp_dir:
        for case in cases:
            run_case(case, ddp_dir)
    # An adapter offered with another base model's file is refused.
    other = os.path.join(work, "other.onnx")
    if os.path.exists(other):
        case = cases[0]
        try:
            qt.load_adapter(build(case), os.path.join(case["dir"], "adapter"), base_model=other)
            refusal = "not refused"
        except qt.AdapterError as e:
            refusal = f"refused: {e}"
        with open(os.path.join(work, "refusal.txt"), "w") as f:
            f.write(refusal + "\n")
    check_kill_after_commit(cases[0])
    print(f"torch {torch.__version__}: {len(cases)} cases done")


def check_kill_after_commit(case):
    """A save killed right after its commit point (before any file is renamed into place) must
    load as the new adapter, through the journal, and the next recovery must finish the job."""
    d = os.path.join(case["dir"], "torch", "killed")
    src = os.path.join(case["dir"], "adapter")
    model = build(case)
    qt.load_adapter(model, src)
    qt.save_adapter(model, d)
    old = qt.read_adapter_config(d)
    with torch.no_grad():
        for p in qt.quad_parameters(model):
            p.add_(0.5)
    real = qt._roll_forward
    qt._roll_forward = lambda *_: (_ for _ in ()).throw(KeyboardInterrupt("killed after commit"))
    try:
        qt.save_adapter(model, d)
        raise AssertionError("the simulated kill did not happen")
    except KeyboardInterrupt:
        pass
    finally:
        qt._roll_forward = real
    new = qt.read_adapter_config(d)
    assert new["weightsSha256"] != old["weightsSha256"], "readers see the committed (new) adapter"
    with open(os.path.join(d, qt.ADAPTER_CONFIG_FILE)) as f:
        assert json.load(f)["weightsSha256"] == old["weightsSha256"], "real names still hold the old one"
    qt.load_adapter(build(case), d)  # weights and config agree (SHA-256 checked)
    qt._recover_dir(d)
    assert sorted(os.listdir(d)) == sorted([qt.ADAPTER_CONFIG_FILE, qt.ADAPTER_WEIGHTS_FILE]), os.listdir(d)
    with open(os.path.join(d, qt.ADAPTER_CONFIG_FILE)) as f:
        assert json.load(f)["weightsSha256"] == new["weightsSha256"], "recovery renamed the new files in"


if __name__ == "__main__":
    main()
