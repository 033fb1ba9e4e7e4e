#!/usr/bin/env python3
"""Generate PyTorch reference fixtures for quadranet's TypeScript tests.

Writes:
  fixtures/torch/ops.json        forward outputs + input gradients of single ops
                                 (ONNX semantics), used to check the gradient rules
  fixtures/torch/quadratic.json  an independent implementation of the quadratic neuron
                                 (DESIGN.md section 3): y = L(x) + U(phi(A(x), B(x)))
  fixtures/torch/classifier_losses.json  losses of classifiers that end in LogSoftmax (NLL) or
                                 Sigmoid (BCE with logits), value and gradient

Run:  /usr/bin/python3 scripts/gen_fixtures.py   (from the repository root, or anywhere)

Everything is float64, seeded and deterministic. Every random input is rounded to
10 significant digits *before* use, so the stored inputs are exactly the values the
outputs and gradients were computed from; outputs/gradients are then rounded to
10 significant digits when written.
"""

import json
import math
import os

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "fixtures", "torch")
SIG = 10


# --------------------------------------------------------------------------- helpers


def rnd(v):
    """Round a python float to SIG significant digits."""
    return float(f"{v:.{SIG}g}")


def q(t):
    """Round a tensor to SIG significant digits (so the stored value is the used value)."""
    flat = [rnd(v) for v in t.detach().reshape(-1).tolist()]
    return torch.tensor(flat, dtype=torch.float64).reshape(t.shape)


def randn(*shape, scale=1.0):
    return q(torch.randn(*shape) * scale)


def uniform(lo, hi, *shape):
    return q(torch.rand(*shape) * (hi - lo) + lo)


def T(t):
    """Tensor -> JSON tensor object."""
    if t is None:
        return None
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32):
        data = [int(v) for v in t.reshape(-1).tolist()]
    else:
        data = [rnd(v) for v in t.reshape(-1).tolist()]
    return {"dims": list(t.shape), "data": data}


def grads_of(out, dy, inputs):
    """d(sum(out*dy))/d(inp) for each input that requires grad, else None."""
    diff = [i for i, t in enumerate(inputs) if t is not None and t.requires_grad]
    gs = torch.autograd.grad((out * dy).sum(), [inputs[i] for i in diff], allow_unused=False)
    res = [None] * len(inputs)
    for i, g in zip(diff, gs):
        res[i] = g
    return res


def leaf(t, grad=True):
    return t.clone().requires_grad_(grad)


def onnx_pad_to_torch(pads):
    """ONNX 2-D pads [top, left, bottom, right] -> F.pad order (left, right, top, bottom)."""
    top, left, bottom, right = pads
    return (left, right, top, bottom)


def conv2d_onnx(x, w, b, strides, pads, dilations, group):
    """ONNX Conv (2-D, explicit pads, possibly asymmetric) in torch."""
    x = F.pad(x, onnx_pad_to_torch(pads))
    return F.conv2d(x, w, b, stride=tuple(strides), padding=0, dilation=tuple(dilations), groups=group)


# --------------------------------------------------------------------------- ops.json


def op_case(name, op, attrs, inputs, fwd, dy_scalar=False, extra_outputs=None):
    """inputs: list of tensors (requires_grad set on differentiable ones) or None.
    fwd(*inputs) -> outputs[0] tensor. extra_outputs: further (non-differentiated) outputs."""
    y = fwd(*inputs)
    if dy_scalar:
        dy = torch.tensor(1.0)
    else:
        dy = randn(*y.shape)
    g = grads_of(y, dy, inputs)
    outputs = [y] + (extra_outputs or [])
    return {
        "name": name,
        "op": op,
        "attrs": attrs,
        "inputs": [T(t) for t in inputs],
        "outputs": [T(t) for t in outputs],
        "dy": T(dy),
        "grads": [T(t) for t in g],
    }


def conv_case(name, n, cin, h, w, cout, kernel, strides, pads, dilations, group, bias=True):
    x = leaf(randn(n, cin, h, w))
    fan_in = (cin // group) * kernel[0] * kernel[1]
    W = leaf(randn(cout, cin // group, kernel[0], kernel[1], scale=1.0 / math.sqrt(fan_in)))
    B = leaf(randn(cout)) if bias else None
    attrs = {
        "kernel_shape": list(kernel),
        "strides": list(strides),
        "pads": list(pads),
        "dilations": list(dilations),
        "group": group,
    }
    return op_case(
        name,
        "Conv",
        attrs,
        [x, W, B],
        lambda x, W, B: conv2d_onnx(x, W, B, strides, pads, dilations, group),
    )


def gen_ops():
    torch.manual_seed(1234)
    cases = []

    # ---- Conv
    cases.append(conv_case("conv_plain", 2, 3, 5, 5, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1))
    cases.append(conv_case("conv_strided", 2, 3, 6, 6, 4, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1))
    cases.append(conv_case("conv_dilated", 2, 3, 5, 5, 4, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1))
    cases.append(
        conv_case("conv_strided_dilated_asym", 2, 3, 7, 7, 4, (3, 3), (2, 2), (1, 2, 2, 1), (2, 2), 1)
    )
    cases.append(conv_case("conv_grouped", 2, 4, 5, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2))
    cases.append(conv_case("conv_depthwise", 2, 4, 5, 5, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4))
    cases.append(
        conv_case("conv_depthwise_mult", 2, 3, 6, 6, 6, (3, 3), (1, 1), (3, 3, 3, 3), (3, 3), 3)
    )
    cases.append(conv_case("conv_7x7_depthwise", 2, 4, 6, 6, 4, (7, 7), (1, 1), (3, 3, 3, 3), (1, 1), 4))
    cases.append(
        conv_case("conv_1x1_nobias", 2, 3, 5, 5, 4, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, bias=False)
    )
    cases.append(conv_case("conv_rect", 2, 3, 5, 5, 4, (3, 1), (1, 1), (1, 0, 1, 0), (1, 1), 1))

    # ---- ConvTranspose (ONNX weight layout Cin x Cout/g x kH x kW, same as torch)
    x = leaf(randn(2, 3, 4, 4))
    W = leaf(randn(3, 2, 3, 3, scale=1.0 / 3.0))
    B = leaf(randn(2))
    cases.append(
        op_case(
            "convtranspose_stride2",
            "ConvTranspose",
            {
                "kernel_shape": [3, 3],
                "strides": [2, 2],
                "pads": [1, 1, 1, 1],
                "dilations": [1, 1],
                "group": 1,
                "output_padding": [1, 1],
            },
            [x, W, B],
            lambda x, W, B: F.conv_transpose2d(
                x, W, B, stride=2, padding=1, output_padding=1, groups=1, dilation=1
            ),
        )
    )

    # ---- BatchNormalization (inference)
    C = 3
    x = leaf(randn(2, C, 4, 4))
    scale = leaf(randn(C))
    bias = leaf(randn(C))
    mean = leaf(randn(C), grad=False)
    var = leaf(uniform(0.5, 2.0, C), grad=False)
    eps = 1e-5
    cases.append(
        op_case(
            "batchnorm_eval",
            "BatchNormalization",
            {"epsilon": eps},
            [x, scale, bias, mean, var],
            lambda x, s, b, m, v: F.batch_norm(x, m, v, s, b, training=False, eps=eps),
        )
    )

    # ---- BatchNormalization (training): running stats by hand, ONNX convention
    momentum = 0.9
    x = leaf(randn(2, C, 4, 4))
    scale = leaf(randn(C))
    bias = leaf(randn(C))
    mean = leaf(randn(C), grad=False)
    var = leaf(uniform(0.5, 2.0, C), grad=False)
    with torch.no_grad():
        batch_mean = x.mean(dim=(0, 2, 3))
        batch_var = x.var(dim=(0, 2, 3), unbiased=False)  # population (biased) variance
        running_mean = mean * momentum + batch_mean * (1 - momentum)
        running_var = var * momentum + batch_var * (1 - momentum)
    cases.append(
        op_case(
            "batchnorm_train",
            "BatchNormalization",
            {"epsilon": eps, "momentum": momentum, "training_mode": 1},
            [x, scale, bias, mean, var],
            # training=True normalises with batch mean and biased batch variance;
            # running stats are passed as None so torch does not touch them.
            lambda x, s, b, m, v: F.batch_norm(x, None, None, s, b, training=True, eps=eps),
            extra_outputs=[running_mean, running_var],
        )
    )

    # ---- LayerNormalization
    x = leaf(randn(2, 3, 5))
    s = leaf(randn(5))
    b = leaf(randn(5))
    cases.append(
        op_case(
            "layernorm_last",
            "LayerNormalization",
            {"axis": -1, "epsilon": 1e-5},
            [x, s, b],
            lambda x, s, b: F.layer_norm(x, (5,), s, b, eps=1e-5),
        )
    )
    x = leaf(randn(2, 3, 4))
    s = leaf(randn(3, 4))
    b = leaf(randn(3, 4))
    cases.append(
        op_case(
            "layernorm_axis1",
            "LayerNormalization",
            {"axis": 1, "epsilon": 1e-5},
            [x, s, b],
            lambda x, s, b: F.layer_norm(x, (3, 4), s, b, eps=1e-5),
        )
    )

    # ---- Losses (our own op names)
    logits = leaf(randn(4, 5))
    labels = torch.tensor([1, 4, 0, 2], dtype=torch.int64)
    cases.append(
        op_case(
            "softmax_cross_entropy",
            "softmax_cross_entropy",
            {"reduction": "mean"},
            [logits, labels],
            lambda z, l: F.cross_entropy(z, l, reduction="mean"),
            dy_scalar=True,
        )
    )
    logits = leaf(randn(4, 5))
    labels = torch.tensor([3, 0, 0, 4], dtype=torch.int64)
    cases.append(
        op_case(
            "softmax_cross_entropy_smooth",
            "softmax_cross_entropy",
            {"reduction": "mean", "label_smoothing": 0.1},
            [logits, labels],
            lambda z, l: F.cross_entropy(z, l, reduction="mean", label_smoothing=0.1),
            dy_scalar=True,
        )
    )
    pred = leaf(randn(3, 4))
    target = leaf(randn(3, 4))
    cases.append(
        op_case(
            "mse",
            "mse",
            {"reduction": "mean"},
            [pred, target],
            lambda p, t: F.mse_loss(p, t, reduction="mean"),
            dy_scalar=True,
        )
    )
    pred = randn(3, 4)
    target = randn(3, 4)
    # keep every |pred - target| well away from 0 (l1 is not differentiable there)
    close = (pred - target).abs() < 0.05
    target = torch.where(close, pred + 0.5, target)
    assert ((pred - target).abs() > 0.05).all()
    pred, target = leaf(pred), leaf(target)
    cases.append(
        op_case(
            "l1",
            "l1",
            {"reduction": "mean"},
            [pred, target],
            lambda p, t: F.l1_loss(p, t, reduction="mean"),
            dy_scalar=True,
        )
    )

    # ---- Gelu
    x = leaf(randn(2, 3, 4, scale=2.0))
    cases.append(op_case("gelu", "Gelu", {"approximate": "none"}, [x], lambda x: F.gelu(x)))
    x = leaf(randn(2, 3, 4, scale=2.0))
    cases.append(
        op_case("gelu_tanh", "Gelu", {"approximate": "tanh"}, [x], lambda x: F.gelu(x, approximate="tanh"))
    )

    # ---- Softmax / LogSoftmax
    for axis, tag in ((-1, "axis_last"), (1, "axis1")):
        x = leaf(randn(2, 3, 4))
        cases.append(
            op_case(f"softmax_{tag}", "Softmax", {"axis": axis}, [x], lambda x, a=axis: F.softmax(x, dim=a))
        )
        x = leaf(randn(2, 3, 4))
        cases.append(
            op_case(
                f"logsoftmax_{tag}",
                "LogSoftmax",
                {"axis": axis},
                [x],
                lambda x, a=axis: F.log_softmax(x, dim=a),
            )
        )

    # ---- Pools
    x = leaf(randn(2, 3, 6, 6))
    cases.append(
        op_case(
            "maxpool_k2s2",
            "MaxPool",
            {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 0, 0]},
            [x],
            lambda x: F.max_pool2d(x, 2, 2),
        )
    )
    x = leaf(randn(2, 3, 6, 6))
    cases.append(
        op_case(
            "maxpool_k3s2p1",
            "MaxPool",
            {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
            [x],
            lambda x: F.max_pool2d(x, 3, 2, padding=1),
        )
    )
    for cip in (0, 1):
        x = leaf(randn(2, 3, 5, 5))
        cases.append(
            op_case(
                f"averagepool_k3s1p1_cip{cip}",
                "AveragePool",
                {
                    "kernel_shape": [3, 3],
                    "strides": [1, 1],
                    "pads": [1, 1, 1, 1],
                    "count_include_pad": cip,
                },
                [x],
                lambda x, c=cip: F.avg_pool2d(x, 3, 1, padding=1, count_include_pad=bool(c)),
            )
        )
    x = leaf(randn(2, 3, 4, 5))
    cases.append(
        op_case(
            "globalaveragepool",
            "GlobalAveragePool",
            {},
            [x],
            lambda x: x.mean(dim=(2, 3), keepdim=True),
        )
    )

    # ---- Resize nearest x2
    x = leaf(randn(2, 3, 3, 4))
    scales = torch.tensor([1.0, 1.0, 2.0, 2.0])
    cases.append(
        op_case(
            "resize_nearest_x2",
            "Resize",
            {
                "mode": "nearest",
                "coordinate_transformation_mode": "asymmetric",
                "nearest_mode": "floor",
            },
            [x, None, scales],
            lambda x, roi, s: F.interpolate(x, scale_factor=2, mode="nearest"),
        )
    )
    return cases


# --------------------------------------------------------------------------- quadratic.json
# Independent implementation of DESIGN.md section 3.


def atrous_default(k, d):
    """kq, dq for base kernel k (one spatial axis) and dilation d."""
    if k > 3 and k % 2 == 1:
        return 3, d * (k - 1) // 2
    return k, d


def quad_pads(base_pads, kernel, dil, kq, dq):
    """pad_q per side = pad_base - ((k-1)*d - (kq-1)*dq)/2, per spatial axis: the branch's
    window is centred on the base window and its output has the base output's size.
    (DESIGN.md section 3 printed this with a + sign, which gives the wrong shape; 0 for the
    default atrous rule, so the committed cases are the same either way.)
    ONNX 2-D pads order [top, left, bottom, right] = [h_begin, w_begin, h_end, w_end]."""
    out = []
    for i, p in enumerate(base_pads):
        ax = i % 2
        num = (kernel[ax] - 1) * dil[ax] - (kq[ax] - 1) * dq[ax]
        if num % 2 != 0:
            raise ValueError("quadratic branch padding is not a whole number")
        out.append(p - num // 2)
        if out[-1] < 0:
            raise ValueError("negative quadratic branch padding")
    return out


def phi_fn(kind, a, b, gamma, axis_shape):
    if kind == "product":
        return a * b
    if kind == "rbf":
        g = gamma.reshape(axis_shape)
        return torch.exp(-g * (a - b) ** 2)
    raise ValueError(kind)


def quad_conv_forward(x, W, bias, A, B, U, gamma, base, quad, mode, phi):
    y0 = conv2d_onnx(x, W, bias, base["strides"], base["pads"], base["dilations"], base["group"])
    a = conv2d_onnx(x, A, None, quad["strides"], quad["pads"], quad["dilations"], quad["group"])
    b = conv2d_onnx(x, B, None, quad["strides"], quad["pads"], quad["dilations"], quad["group"])
    assert a.shape[2:] == y0.shape[2:], (a.shape, y0.shape)
    assert b.shape == a.shape
    p = phi_fn(phi, a, b, gamma, (1, -1, 1, 1))
    if mode == "lowrank":
        # U: 1x1 conv (grouped with the branch's group count for depthwise), no bias
        Q = F.conv2d(p, U, None, groups=quad["group"])
    else:
        Q = p
    assert Q.shape == y0.shape, (Q.shape, y0.shape)
    return y0 + Q


def quad_gemm_forward(x, W, bias, A, B, U, gamma, mode, phi):
    # Gemm, transB=1: W is m x n, y0 = x W^T + b; A,B are r x n (neuron: m x n); U is m x r.
    y0 = x @ W.t()
    if bias is not None:
        y0 = y0 + bias
    a = x @ A.t()
    b = x @ B.t()
    p = phi_fn(phi, a, b, gamma, (-1,))
    Q = p @ U.t() if mode == "lowrank" else p
    assert Q.shape == y0.shape
    return y0 + Q


def quad_matmul_forward(x, W, A, B, U, gamma, mode, phi):
    # MatMul: W is n x m, y0 = x @ W; A,B are n x r (neuron: n x m); U is r x m.
    y0 = x @ W
    a = x @ A
    b = x @ B
    p = phi_fn(phi, a, b, gamma, (-1,))
    Q = p @ U if mode == "lowrank" else p
    assert Q.shape == y0.shape
    return y0 + Q


def quad_case_conv(name, mode, phi, n, cin, h, w, cout, k, stride, pad, dil, r, depthwise=False, kq=None, dq=None):
    group = cin if depthwise else 1
    if depthwise:
        assert cout == cin
    kernel = [k, k]
    base = {
        "kernel_shape": kernel,
        "strides": [stride, stride],
        "pads": [pad, pad, pad, pad],
        "dilations": [dil, dil],
        "group": group,
    }
    if kq is None:
        kq_, dq_ = atrous_default(k, dil)
    else:
        kq_, dq_ = kq, dq
    qp = quad_pads(base["pads"], kernel, base["dilations"], [kq_, kq_], [dq_, dq_])
    quad = {
        "kernel_shape": [kq_, kq_],
        "dilations": [dq_, dq_],
        "pads": qp,
        "strides": [stride, stride],
        "group": group,
    }
    x = leaf(randn(n, cin, h, w))
    W = leaf(randn(cout, cin // group, k, k, scale=1.0 / math.sqrt((cin // group) * k * k)))
    bias = leaf(randn(cout))
    qfan = (cin // group) * kq_ * kq_
    if mode == "lowrank":
        bc = cin * r if depthwise else r  # branch channels
        A = leaf(randn(bc, cin // group, kq_, kq_, scale=1.0 / math.sqrt(qfan)))
        B = leaf(randn(bc, cin // group, kq_, kq_, scale=1.0 / math.sqrt(qfan)))
        # U: Cout x r x 1 x 1 (depthwise: C x r x 1 x 1, groups C)
        U = leaf(randn(cout, r, 1, 1, scale=1.0 / math.sqrt(r)))
    else:
        bc = cout
        A = leaf(randn(cout, cin // group, kq_, kq_, scale=1.0 / math.sqrt(qfan)))
        B = leaf(randn(cout, cin // group, kq_, kq_, scale=1.0 / math.sqrt(qfan)))
        U = None
    gamma = leaf(uniform(0.5, 1.5, bc)) if phi == "rbf" else None

    def fwd(x, W, bias, A, B, U, gamma):
        return quad_conv_forward(x, W, bias, A, B, U, gamma, base, quad, mode, phi)

    layer = "depthwise" if depthwise else "conv"
    return finish_quad_case(name, layer, mode, phi, r, base, quad, fwd, x, W, bias, A, B, U, gamma)


def quad_case_dense(name, layer, mode, phi, xshape, n, m, r, with_bias):
    x = leaf(randn(*xshape, n))
    s = 1.0 / math.sqrt(n)
    if layer == "gemm":
        W = leaf(randn(m, n, scale=s))
        bias = leaf(randn(m)) if with_bias else None
        ab_shape = (r, n) if mode == "lowrank" else (m, n)
        u_shape = (m, r)
        base = {"transB": 1}
    else:
        W = leaf(randn(n, m, scale=s))
        bias = None
        ab_shape = (n, r) if mode == "lowrank" else (n, m)
        u_shape = (r, m)
        base = {}
    A = leaf(randn(*ab_shape, scale=s))
    B = leaf(randn(*ab_shape, scale=s))
    U = leaf(randn(*u_shape, scale=1.0 / math.sqrt(r))) if mode == "lowrank" else None
    bc = r if mode == "lowrank" else m
    gamma = leaf(uniform(0.5, 1.5, bc)) if phi == "rbf" else None

    if layer == "gemm":

        def fwd(x, W, bias, A, B, U, gamma):
            return quad_gemm_forward(x, W, bias, A, B, U, gamma, mode, phi)

    else:

        def fwd(x, W, bias, A, B, U, gamma):
            return quad_matmul_forward(x, W, A, B, U, gamma, mode, phi)

    return finish_quad_case(name, layer, mode, phi, r, base, {}, fwd, x, W, bias, A, B, U, gamma)


def finish_quad_case(name, layer, mode, phi, r, base, quad, fwd, x, W, bias, A, B, U, gamma):
    ins = [x, W, bias, A, B, U, gamma]
    y = fwd(*ins)
    dy = randn(*y.shape)
    g = grads_of(y, dy, ins)
    keys = ["x", "W", "bias", "quad_a", "quad_b", "quad_u", "quad_gamma"]
    case = {
        "name": name,
        "layer": layer,
        "mode": mode,
        "phi": phi,
        "rank": r if mode == "lowrank" else None,
        "base_attrs": base,
        "quad_attrs": quad,
    }
    for k, t in zip(keys, ins):
        case[k] = T(t)
    case["y"] = T(y)
    case["dy"] = T(dy)
    case["grads"] = {k: T(t) for k, t in zip(keys, g)}
    return case


def gen_quadratic():
    torch.manual_seed(4321)
    c = []
    c.append(quad_case_conv("conv_lowrank_product", "lowrank", "product", 2, 3, 6, 6, 4, 3, 1, 1, 1, 3))
    c.append(quad_case_conv("conv_lowrank_rbf", "lowrank", "rbf", 2, 3, 6, 6, 4, 3, 1, 1, 1, 3))
    c.append(quad_case_conv("conv_lowrank_strided", "lowrank", "product", 2, 3, 7, 7, 4, 3, 2, 1, 1, 3))
    c.append(quad_case_conv("conv_7x7_atrous", "lowrank", "product", 2, 3, 6, 6, 3, 7, 1, 3, 1, 2))
    c.append(quad_case_conv("conv_5x5_dil2_atrous", "lowrank", "product", 2, 3, 6, 6, 3, 5, 1, 4, 2, 2))
    c.append(
        quad_case_conv(
            "conv_5x5_user_kq3_dq2", "lowrank", "rbf", 2, 3, 6, 6, 3, 5, 1, 2, 1, 2, kq=3, dq=2
        )
    )
    c.append(
        quad_case_conv("depthwise_7x7_product", "lowrank", "product", 2, 4, 6, 6, 4, 7, 1, 3, 1, 2, depthwise=True)
    )
    c.append(
        quad_case_conv("depthwise_7x7_rbf", "lowrank", "rbf", 2, 4, 6, 6, 4, 7, 1, 3, 1, 2, depthwise=True)
    )
    c.append(quad_case_conv("conv_neuron_product", "neuron", "product", 2, 3, 6, 6, 4, 3, 1, 1, 1, 0))
    c.append(quad_case_dense("gemm_lowrank_product", "gemm", "lowrank", "product", (3,), 6, 5, 3, True))
    c.append(quad_case_dense("gemm_lowrank_rbf", "gemm", "lowrank", "rbf", (3,), 6, 5, 3, True))
    c.append(quad_case_dense("gemm_neuron_product", "gemm", "neuron", "product", (3,), 6, 5, 0, True))
    c.append(quad_case_dense("matmul_lowrank_product", "matmul", "lowrank", "product", (2, 3), 6, 5, 3, False))
    c.append(quad_case_dense("matmul_lowrank_rbf", "matmul", "lowrank", "rbf", (2, 3), 6, 5, 3, False))
    return c


# --------------------------------------------------------------------------- optimizers


def optim_case(name, make_opt, steps=3, lr_seq=None):
    """A parameter, a fixed gradient per step and the parameter after each torch optimizer step."""
    p0 = randn(3, 4)
    grads = [randn(3, 4) for _ in range(steps)]
    lrs = lr_seq or [0.1] * steps
    p = p0.clone().requires_grad_(True)
    opt, hyper = make_opt([p])
    after = []
    for g, lr in zip(grads, lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = g.clone()
        opt.step()
        after.append(T(p))
    return {"name": name, "hyper": hyper, "p0": T(p0), "grads": [T(g) for g in grads], "lrs": lrs, "after": after}


def gen_optim():
    torch.manual_seed(3)
    return [
        optim_case("sgd_plain", lambda ps: (torch.optim.SGD(ps, lr=0.1), {"kind": "sgd"})),
        optim_case(
            "sgd_momentum_wd",
            lambda ps: (
                torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
                {"kind": "sgd", "momentum": 0.9, "weightDecay": 0.01},
            ),
        ),
        optim_case(
            "sgd_nesterov",
            lambda ps: (
                torch.optim.SGD(ps, lr=0.1, momentum=0.8, nesterov=True),
                {"kind": "sgd", "momentum": 0.8, "nesterov": True},
            ),
        ),
        optim_case(
            "adamw",
            lambda ps: (
                torch.optim.AdamW(ps, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05),
                {"kind": "adamw", "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weightDecay": 0.05},
            ),
            steps=4,
            lr_seq=[0.01, 0.02, 0.015, 0.005],
        ),
    ]


# --------------------------------------------------------------------------- classifier_losses.json


def gen_classifier_losses():
    """NLL of log-probabilities and BCE-with-logits (one unit: 0/1 labels; K units: one-vs-rest),
    in the op_case layout: inputs [scores, int64 labels], outputs [loss], grads [d/dscores, None]."""
    torch.manual_seed(77)
    cases = []
    logp = leaf(q(torch.log_softmax(torch.randn(4, 5) * 2, dim=-1)))
    labels = torch.tensor([1, 4, 0, 2], dtype=torch.int64)
    cases.append(
        op_case("nll", "nll", {"reduction": "mean"}, [logp, labels],
                lambda p, l: F.nll_loss(p, l, reduction="mean"), dy_scalar=True)
    )
    cases.append(
        op_case("nll_smooth", "nll", {"reduction": "mean", "label_smoothing": 0.1}, [logp, labels],
                # smoothed targets (1-e)*onehot + e/C against the log-probabilities as given
                lambda p, l: 0.9 * F.nll_loss(p, l, reduction="mean") - 0.1 * p.mean(dim=1).mean(),
                dy_scalar=True)
    )
    z = leaf(randn(4, 3, scale=3.0))
    labels = torch.tensor([0, 2, 1, 2], dtype=torch.int64)
    cases.append(
        op_case("bce_logits_multi", "bce_logits", {"reduction": "mean"}, [z, labels],
                lambda x, l: F.binary_cross_entropy_with_logits(x, F.one_hot(l, 3).double()),
                dy_scalar=True)
    )
    # large |z| on both sides of each label: a naive log(sigmoid(z)) would give inf
    z = leaf(torch.tensor([[40.0], [-40.0], [0.0], [2.5], [-1.25], [-60.0]]))
    labels = torch.tensor([0, 1, 1, 0, 0, 1], dtype=torch.int64)
    cases.append(
        op_case("bce_logits_one_unit", "bce_logits", {"reduction": "mean"}, [z, labels],
                lambda x, l: F.binary_cross_entropy_with_logits(x, l.double().unsqueeze(1)),
                dy_scalar=True)
    )
    z = leaf(randn(3, 1, scale=2.0))
    labels = torch.tensor([1, 0, 1], dtype=torch.int64)
    cases.append(
        op_case("bce_logits_smooth", "bce_logits", {"reduction": "mean", "label_smoothing": 0.2},
                [z, labels],
                lambda x, l: F.binary_cross_entropy_with_logits(x, l.double().unsqueeze(1) * 0.8 + 0.1),
                dy_scalar=True)
    )
    return cases


# --------------------------------------------------------------------------- main


def write(fname, cases):
    doc = {"generator": "scripts/gen_fixtures.py", "torch": torch.__version__, "cases": cases}
    path = os.path.join(OUT_DIR, fname)
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    size = os.path.getsize(path)
    print(f"{os.path.relpath(path, ROOT)}: {len(cases)} cases, {size} bytes")
    assert size < 300 * 1024, f"{fname} too large"


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    write("ops.json", gen_ops())
    write("quadratic.json", gen_quadratic())
    write("optim.json", gen_optim())
    write("classifier_losses.json", gen_classifier_losses())


if __name__ == "__main__":
    main()
