#!/usr/bin/python3
"""Builds fixtures/models/torch_window.onnx and torch_window.io.json: the shape arithmetic of
torchvision's Swin and ViT in a small net, exported by torch.onnx.export with a dynamic batch
(opset 17, eval mode):

- Swin's window partition pads to a multiple of the window with pads computed from the shape,
  `F.pad(x, (0, 0, 0, (w - W % w) % w, 0, (w - H % w) % w))`: Mod, and a ConstantOfShape →
  Reshape → Slice → Transpose chain for the pads, in each of two blocks (the second block's pads
  are known only once the first block's are folded);
- `x.view(B * nh * nw, w * w, C)` (the symbolic batch times a number) and back;
- the shifted window, `torch.roll`;
- ViT's class token, `cls.expand(B, -1, -1)`: Expand of `Where(Equal(shape, -1), 1, shape)`.

io.json holds a seeded input (batch 2) and PyTorch's logits for it.

Run: /usr/bin/python3 scripts/gen_window_model.py   (Debian python3-torch; < 40 kB)
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch_fixture_io import export_with_io

WS = 3


class Block(nn.Module):
    def __init__(self, c, shift):
        super().__init__()
        self.shift = shift
        self.norm = nn.LayerNorm(c)
        self.mlp = nn.Sequential(nn.Linear(c, c), nn.GELU(), nn.Linear(c, c))

    def forward(self, x):  # B, H, W, C
        b, h, w, c = x.shape
        x = F.pad(x, (0, 0, 0, (WS - w % WS) % WS, 0, (WS - h % WS) % WS))
        if self.shift:
            x = torch.roll(x, shifts=(-1, -1), dims=(1, 2))
        hp, wp = x.shape[1], x.shape[2]
        t = x.view(b, hp // WS, WS, wp // WS, WS, c).permute(0, 1, 3, 2, 4, 5)
        t = t.reshape(b * (hp // WS) * (wp // WS), WS * WS, c)
        t = t + self.mlp(self.norm(t))
        x = t.view(b, hp // WS, wp // WS, WS, WS, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        return x[:, :h, :w, :].contiguous()


class WindowNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 2, stride=2)
        self.blocks = nn.Sequential(Block(8, False), Block(8, True))
        self.cls = nn.Parameter(torch.randn(1, 1, 8) * 0.1)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.blocks(self.patch(x).permute(0, 2, 3, 1))
        b, h, w, c = x.shape
        x = torch.cat([self.cls.expand(b, -1, -1), x.reshape(b, h * w, c)], dim=1)
        return self.head(x.mean(1))


def main():
    torch.manual_seed(0)
    export_with_io(WindowNet().eval(), torch.rand(2, 3, 16, 16), "torch_window")


if __name__ == "__main__":
    main()
