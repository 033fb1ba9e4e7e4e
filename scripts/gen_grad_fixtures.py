#!/usr/bin/env python3
"""PyTorch references for the gradient rules of issue #18 (ops that real exports contain).

Writes fixtures/torch/grads.json in the format of fixtures/torch/ops.json (see fixtures/README.md),
plus `int_inputs`: the indices of inputs that are int64 (Gather indices). Cases: Max / Min with
ties and broadcasting (torch.maximum / torch.minimum give each of two tied inputs half the
gradient), ReduceMax with ties (torch.amax splits evenly), GroupNormalization (per-group scale
and bias, as ONNX opset 18 defines them, built from F.group_norm with the scale repeated per
channel), InstanceNormalization, DepthToSpace CRD (F.pixel_shuffle) and DCR, and Gather as an
embedding lookup with repeated tokens and along axis 1.

Run:  /usr/bin/python3 scripts/gen_grad_fixtures.py   (float64, seeded, deterministic)
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_fixtures as gf  # noqa: E402  (shared rounding and case helpers)

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


def case(name, op, attrs, inputs, fwd, int_inputs=()):
    c = gf.op_case(name, op, attrs, inputs, fwd)
    c["int_inputs"] = list(int_inputs)
    return c


def tied(shape, pool=(-1.5, -0.5, 0.5, 1.5)):
    """Values drawn from a few exact numbers, so that ties are frequent and exact."""
    idx = torch.randint(0, len(pool), shape)
    return torch.tensor(pool)[idx]


def gen():
    torch.manual_seed(1818)
    L = gf.leaf
    cases = []
    a, b = tied((3, 4)), tied((3, 4))
    cases.append(case("max_ties", "Max", {}, [L(a), L(b)], lambda x, y: torch.maximum(x, y)))
    a, b = tied((2, 3, 4)), tied((4,))
    cases.append(case("min_ties_broadcast", "Min", {}, [L(a), L(b)], lambda x, y: torch.minimum(x, y)))
    x = tied((2, 5, 3))
    cases.append(case("reducemax_ties", "ReduceMax", {"keepdims": 1, "axes": [1]}, [L(x)],
                      lambda t: torch.amax(t, dim=1, keepdim=True)))

    n, c, h, w, g = 2, 6, 3, 4, 3
    x, sc, bi = gf.randn(n, c, h, w), gf.randn(g), gf.randn(g)
    cases.append(case(
        "groupnorm_per_group", "GroupNormalization", {"num_groups": g, "epsilon": 1e-5},
        [L(x), L(sc), L(bi)],
        lambda t, s, bb: F.group_norm(t, g, s.repeat_interleave(c // g), bb.repeat_interleave(c // g), 1e-5)))
    x, sc, bi = gf.randn(2, 3, 4, 5), gf.randn(3), gf.randn(3)
    cases.append(case("instancenorm", "InstanceNormalization", {"epsilon": 1e-5}, [L(x), L(sc), L(bi)],
                      lambda t, s, bb: F.instance_norm(t, weight=s, bias=bb, eps=1e-5)))

    x = gf.randn(2, 8, 3, 2)
    cases.append(case("depthtospace_crd", "DepthToSpace", {"blocksize": 2, "mode": "CRD"}, [L(x)],
                      lambda t: F.pixel_shuffle(t, 2)))

    def dcr(t, bs=2):
        nn_, cc, hh, ww = t.shape
        r = t.reshape(nn_, bs, bs, cc // (bs * bs), hh, ww).permute(0, 3, 4, 1, 5, 2)
        return r.reshape(nn_, cc // (bs * bs), hh * bs, ww * bs)
    cases.append(case("depthtospace_dcr", "DepthToSpace", {"blocksize": 2, "mode": "DCR"}, [L(x)], dcr))

    table = gf.randn(7, 4)
    ids = torch.tensor([[0, 3, 3, 6], [2, 3, 0, 0]])
    cases.append(case("gather_embedding", "Gather", {}, [L(table), ids],
                      lambda t, i: F.embedding(i, t), int_inputs=[1]))
    x = gf.randn(2, 5, 3)
    ids = torch.tensor([4, 1, 4])
    cases.append(case("gather_axis1", "Gather", {"axis": 1}, [L(x), ids],
                      lambda t, i: torch.index_select(t, 1, i), int_inputs=[1]))
    return cases


def main():
    doc_cases = gen()
    path = os.path.join(gf.OUT_DIR, "grads.json")
    import json
    doc = {"generator": "scripts/gen_grad_fixtures.py", "torch": torch.__version__, "cases": doc_cases}
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print(f"{os.path.relpath(path, gf.ROOT)}: {len(doc_cases)} cases, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
