#!/usr/bin/python3
"""Exports small PyTorch models to ONNX (as `torch.onnx.export` writes them: Constant nodes,
Shape/Gather reshapes, opset 13) with a reference input and output, for the importer tests.

Run: /usr/bin/python3 scripts/gen_onnx_models.py   (Debian python3-torch)
"""
import json
import os

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "models")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 8, 3, stride=2, padding=2, dilation=2)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        x = nn.functional.adaptive_avg_pool2d(x, 4)
        x = x.reshape(x.shape[0], -1)  # exported as Shape/Gather/Concat/Reshape
        return self.fc(x)


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    net = Net().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 1.5)
    x = torch.rand(2, 1, 16, 16)
    for opset in (13, 17):
        path = os.path.join(OUT, f"torch_cnn_opset{opset}.onnx")
        torch.onnx.export(net, x, path, opset_version=opset, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=False)
    with torch.no_grad():
        y = net(x)
    with open(os.path.join(OUT, "torch_cnn.io.json"), "w") as f:
        json.dump({"input": {"dims": list(x.shape), "data": [float(v) for v in x.reshape(-1)]},
                   "logits": {"dims": list(y.shape), "data": [float(v) for v in y.reshape(-1)]}}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
