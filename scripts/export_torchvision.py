#!/usr/bin/python3
"""Exports torchvision models the way users do, for scripts/check-exports.ts (a manual sweep,
not a test: it needs torch and torchvision, `apt-get install -y python3-torch python3-torchvision`).

Each model (10 classes, seeded weights; BatchNorm statistics and affine parameters randomised so
they look trained, and a zero-initialised Linear given small random weights) is written with torch.onnx.export in eval and
training mode at opsets 13 and 17, with a dynamic batch, to OUT_DIR/NAME_{eval,train}_op{13,17}.onnx.
BatchNorm momentum is 0 during export, so a training-mode export holds the same statistics as the
eval-mode one and check-exports.ts can use the eval file as the reference for both.

Run: /usr/bin/python3 scripts/export_torchvision.py OUT_DIR resnet18 shufflenet_v2_x0_5 ...
"""
import sys

import torch
import torchvision.models as M


def main():
    out, names = sys.argv[1], sys.argv[2:]
    for n in names:
        torch.manual_seed(0)
        kw = dict(aux_logits=False, init_weights=True) if n in ("googlenet", "inception_v3") else {}
        m = getattr(M, n)(num_classes=10, **kw).eval()
        g = torch.Generator().manual_seed(1)
        for mod in m.modules():
            # A zero-initialised layer (ViT's head) would make every output 0: nothing to compare.
            if isinstance(mod, torch.nn.Linear) and not mod.weight.detach().any():
                mod.weight.data.copy_(torch.randn(mod.weight.shape, generator=g) * 0.02)
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.momentum = 0.0
                mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
                if mod.affine:
                    mod.weight.data.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
                    mod.bias.data.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)
        # Transformers with fixed position tables or windows need their training size.
        size = 299 if n == "inception_v3" else 224 if n.startswith(("vit", "swin", "maxvit")) else 96
        x = torch.randn(1, 3, size, size)
        for mode, tm in (("eval", torch.onnx.TrainingMode.EVAL), ("train", torch.onnx.TrainingMode.TRAINING)):
            for opset in (13, 17):
                f = f"{out}/{n}_{mode}_op{opset}.onnx"
                try:
                    torch.onnx.export(m, x, f, opset_version=opset, training=tm, do_constant_folding=mode == "eval",
                                      input_names=["input"], output_names=["logits"],
                                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
                    print("wrote", f, flush=True)
                except Exception as e:  # e.g. stochastic depth (Bernoulli) cannot export in training mode
                    print("torch could not export", f, "-", str(e).split("\n")[0][:120], flush=True)


if __name__ == "__main__":
    main()
