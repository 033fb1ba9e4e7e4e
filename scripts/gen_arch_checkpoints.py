#!/usr/bin/python3
"""Writes PyTorch checkpoints of quadranet's built-in ResNet-style and ConvNeXt-style networks
(python/quadranet_torch.py ResNetStyle / ConvNeXtStyle, saved with save_checkpoint: safetensors
with the architecture in ``__metadata__``) and their eval-mode outputs on a fixed batch, for
test/safetensors-arch.test.ts:

  fixtures/models/torch_resnet.safetensors     resnet, input 3x32x32, 10 classes, width 1
  fixtures/models/torch_resnet.io.json         {"input": {dims, data}, "logits": {dims, data}}
  fixtures/models/torch_convnext.safetensors   convnext, input 1x28x28, 7 classes, width 0.5, depth 2
  fixtures/models/torch_convnext.io.json

Every parameter is random (seeded) and the BatchNorm running statistics, BatchNorm and LayerNorm
affine parameters are perturbed away from their trivial initial values, so a wrong key mapping
or a wrong layout cannot go unnoticed. Deterministic: running it twice gives identical files.

Run: /usr/bin/python3 scripts/gen_arch_checkpoints.py   (Debian python3-torch)
"""
import json
import os
import sys

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "models")
sys.path.insert(0, os.path.join(ROOT, "python"))
import quadranet_torch as qt  # noqa: E402

torch.set_num_threads(1)


def perturb(model: nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(100)
            if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                m.weight.uniform_(0.7, 1.3)
                m.bias.uniform_(-0.2, 0.2)


def write(name: str, model: nn.Module, seed: int) -> None:
    perturb(model)
    model.eval()
    torch.manual_seed(seed)
    x = torch.rand(2, *model.quadranet_config["input_shape"])
    with torch.no_grad():
        y = model(x)
    path = os.path.join(OUT, f"torch_{name}.safetensors")
    qt.save_checkpoint(model, path, metadata={"generator": "scripts/gen_arch_checkpoints.py"})
    # The checkpoint reads back into the same function in PyTorch.
    with torch.no_grad():
        assert torch.equal(qt.load_checkpoint(path)(x), y), name
    with open(os.path.join(OUT, f"torch_{name}.io.json"), "w") as f:
        json.dump(
            {
                "torch": torch.__version__,
                "input": {"dims": list(x.shape), "data": [float(v) for v in x.reshape(-1)]},
                "logits": {"dims": list(y.shape), "data": [float(v) for v in y.reshape(-1)]},
            },
            f,
        )
        f.write("\n")
    print(f"{path}: {os.path.getsize(path)} bytes, logits {list(y.shape)}")


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    write("resnet", qt.ResNetStyle(input_shape=(3, 32, 32), classes=10, width=1.0), seed=1)
    torch.manual_seed(2)
    write("convnext", qt.ConvNeXtStyle(input_shape=(1, 28, 28), classes=7, width=0.5, depth=2), seed=3)


if __name__ == "__main__":
    main()
