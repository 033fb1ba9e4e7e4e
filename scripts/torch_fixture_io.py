"""Writes a dynamic-batch torch.onnx.export fixture and its io.json (a seeded input and PyTorch's
logits for it) into fixtures/models/; shared by scripts/gen_shuffle_model.py and
scripts/gen_window_model.py."""
import json
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "models")


def export_with_io(model, x, name, opset=17):
    path = os.path.join(OUT, f"{name}.onnx")
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    with torch.no_grad():
        y = model(x)
    io = {"input": {"dims": list(x.shape), "data": x.flatten().tolist()},
          "logits": {"dims": list(y.shape), "data": y.flatten().tolist()}}
    with open(os.path.join(OUT, f"{name}.io.json"), "w") as f:
        json.dump(io, f)
    print("wrote", path)
