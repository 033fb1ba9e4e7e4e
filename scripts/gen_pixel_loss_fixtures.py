#!/usr/bin/python3
"""PyTorch references of the dense (per-pixel) losses of src/autodiff/losses.ts, float64:
`pixel_cross_entropy` = F.cross_entropy on [N, C, H, W] logits against [N, H, W] class indices
(mean over pixels), `pixel_bce` = F.binary_cross_entropy_with_logits (mean), with the gradient
with respect to the logits. Large logits are included (the stable BCE form must not overflow).

Run: /usr/bin/python3 scripts/gen_pixel_loss_fixtures.py   (Debian python3-torch)
"""
import json
import os

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "torch", "pixel_losses.json")


def t(x):
    return {"dims": list(x.shape), "data": [float(v) for v in x.reshape(-1)]}


def main():
    torch.manual_seed(0)
    cases = []
    z = (torch.randn(2, 3, 4, 5, dtype=torch.float64) * 2).requires_grad_()
    y = torch.randint(0, 3, (2, 4, 5))
    loss = F.cross_entropy(z, y)
    loss.backward()
    cases.append({"name": "pixel_cross_entropy_3class", "kind": "pixel_cross_entropy",
                  "logits": t(z.detach()), "target": t(y.unsqueeze(1).double()),
                  "loss": float(loss), "grad": t(z.grad)})
    z = torch.randn(2, 1, 4, 5, dtype=torch.float64) * 3
    z[0, 0, 0, 0] = 60.0
    z[1, 0, 0, 1] = -60.0
    z.requires_grad_()
    m = (torch.rand(2, 1, 4, 5) > 0.5).double()
    loss = F.binary_cross_entropy_with_logits(z, m)
    loss.backward()
    cases.append({"name": "pixel_bce_binary_mask", "kind": "pixel_bce",
                  "logits": t(z.detach()), "target": t(m), "loss": float(loss), "grad": t(z.grad)})
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
