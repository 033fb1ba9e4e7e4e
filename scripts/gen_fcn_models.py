#!/usr/bin/python3
"""Exports a small fully convolutional segmentation net with open height and width (dynamic_axes
on N, H and W, as detection/segmentation/super-resolution models are exported) to ONNX, with a
reference input and output at two sizes, for the open-size tests (issue #12, item 3).

Two heads of the same trunk: `torch_fcn_seg3.onnx` (3 class logits per pixel, for class masks
and per-pixel cross-entropy) and `torch_fcn_bin.onnx` (1 logit per pixel, for 0/1 masks and
binary cross-entropy).

Run: /usr/bin/python3 scripts/gen_fcn_models.py   (Debian python3-torch)
"""
import json
import os

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "models")


class Fcn(nn.Module):
    """Stem, a stride-2 depthwise-separable block, nearest 2x upsampling and a 1x1 head."""

    def __init__(self, classes):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 16, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = nn.Conv2d(16, 8, 3, padding=1)
        self.head = nn.Conv2d(8, classes, 1)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        y = torch.relu(self.pw(torch.relu(self.dw(x))))
        y = self.up(y)
        return self.head(torch.relu(self.fuse(y)) + x)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, classes in (("seg3", 3), ("bin", 1)):
        torch.manual_seed(0)
        net = Fcn(classes).eval()
        with torch.no_grad():
            net.bn.running_mean.uniform_(-0.5, 0.5)
            net.bn.running_var.uniform_(0.5, 1.5)
        x = torch.rand(1, 3, 16, 16)
        path = os.path.join(OUT, f"torch_fcn_{name}.onnx")
        axes = {0: "batch", 2: "height", 3: "width"}
        torch.onnx.export(net, x, path, opset_version=17, input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": axes, "logits": axes}, do_constant_folding=False)
        io = {}
        for h, w in ((8, 8), (12, 10)):
            xi = torch.rand(1, 3, h, w)
            with torch.no_grad():
                yi = net(xi)
            io[f"{h}x{w}"] = {"image": {"dims": list(xi.shape), "data": [float(v) for v in xi.reshape(-1)]},
                              "logits": {"dims": list(yi.shape), "data": [float(v) for v in yi.reshape(-1)]}}
        with open(os.path.join(OUT, f"torch_fcn_{name}.io.json"), "w") as f:
            json.dump(io, f)
            f.write("\n")


if __name__ == "__main__":
    main()
