#!/usr/bin/python3
"""PyTorch peer for `npm run bench`: times the same networks as quadranet, on request.

Protocol: one JSON request per stdin line, e.g.
  {"case": "cnn_train", "batch": 64, "iters": 10, "warmup": 2}
one JSON reply per line: {"times_ms": [...]} or {"error": "..."}.
Run with Debian's torch: /usr/bin/python3 (apt-get install python3-torch libopenblas0-pthread).
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def bench_cnn(width=1):
    c1, c2 = 32 * width, 64 * width
    return nn.Sequential(
        nn.Conv2d(3, c1, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=2, dilation=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * 16 * 16, 10),
    )


class QConv2d(nn.Module):
    """DESIGN.md section 3, lowrank product: y = conv(x) + U(A(x) * B(x)), atrous A/B."""

    def __init__(self, cin, cout, k, padding=0, dilation=1, rank=4):
        super().__init__()
        self.base = nn.Conv2d(cin, cout, k, padding=padding, dilation=dilation)
        kq, dq = (3, dilation * (k - 1) // 2) if (k > 3 and k % 2 == 1) else (k, dilation)
        pq = padding - ((k - 1) * dilation - (kq - 1) * dq) // 2
        self.a = nn.Conv2d(cin, rank, kq, padding=pq, dilation=dq, bias=False)
        self.b = nn.Conv2d(cin, rank, kq, padding=pq, dilation=dq, bias=False)
        self.u = nn.Conv2d(rank, cout, 1, bias=False)
        nn.init.zeros_(self.u.weight)

    def forward(self, x):
        return self.base(x) + self.u(self.a(x) * self.b(x))


def bench_qcnn():
    return nn.Sequential(
        QConv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        QConv2d(32, 64, 3, padding=2, dilation=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 16 * 16, 10),
    )


class ConvNeXtBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.pw1 = nn.Linear(c, 4 * c)
        self.pw2 = nn.Linear(4 * c, c)

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(F.gelu(self.pw1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


def convnext(c=32, depth=2):
    """quadranet's `convnext` zoo model: 2x2 stride-2 stem, ConvNeXt blocks, GAP, linear head."""
    return nn.Sequential(nn.Conv2d(1, c, 2, stride=2), *[ConvNeXtBlock(c) for _ in range(depth)],
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))


def mnist_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))


MODELS = {
    "cnn": (bench_cnn, (3, 32, 32)),
    "qcnn": (bench_qcnn, (3, 32, 32)),
    "convnext": (convnext, (1, 28, 28)),
    "mnist_cnn": (mnist_cnn, (1, 28, 28)),
    "mlp": (mlp, (1, 28, 28)),
}


def run(req):
    name, mode = req["case"].rsplit("_", 1)
    make, shape = MODELS[name]
    torch.manual_seed(0)
    model = make()
    batch = req.get("batch", 64)
    x = torch.randn(batch, *shape)
    y = torch.randint(0, 10, (batch,))
    times = []
    if mode == "train":
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                return model(x).sum().item()

    for _ in range(req.get("warmup", 2)):
        step()
    for _ in range(req.get("iters", 10)):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    return {"times_ms": times}


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            print(json.dumps(run(json.loads(line))), flush=True)
        except Exception as e:  # report to the caller instead of dying mid-benchmark
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)


if __name__ == "__main__":
    main()
