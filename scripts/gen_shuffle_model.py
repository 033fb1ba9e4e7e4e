#!/usr/bin/python3
"""Builds fixtures/models/torch_shuffle.onnx and torch_shuffle.io.json: a ShuffleNet-V2-style
unit exported by torch.onnx.export with a dynamic batch (opset 17, eval mode), the way
torchvision's shufflenet_v2 exports. Its channel shuffle is `x.view(b, 2, c // 2, h, w)
.transpose(1, 2).reshape(b, -1, h, w)` and its split `x.chunk(2, dim=1)`: torch writes the
chunk as Slice nodes whose starts and ends come from `Shape → Gather(1) → Add → Div → Mul` on
the shuffled tensor, so they fold only if the Reshape's -1 is known with the batch symbolic.
io.json holds a seeded input (batch 2) and PyTorch's logits for it.

Run: /usr/bin/python3 scripts/gen_shuffle_model.py   (Debian python3-torch; < 20 kB)
"""
import torch
import torch.nn as nn
from torch_fixture_io import export_with_io



def shuffle(x, groups=2):
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(b, -1, h, w)


class Unit(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.branch = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.Conv2d(4, 4, 1), nn.ReLU())
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        a, b = shuffle(x).chunk(2, dim=1)
        x = shuffle(torch.cat((a, self.branch(b)), dim=1))
        return self.head(x.mean([2, 3]))


def main():
    torch.manual_seed(0)
    export_with_io(Unit().eval(), torch.rand(2, 3, 8, 8), "torch_shuffle")


if __name__ == "__main__":
    main()
