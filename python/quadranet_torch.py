"""quadranet_torch: quadranet adapters in PyTorch.

A reference implementation, in plain PyTorch, of the quadratic term quadranet adds to a pretrained
network (QuadraNet V2, DESIGN.md section 3), reading and writing quadranet's adapter files
(``adapter_config.json`` + ``adapter.safetensors``), so that an adaptation planned with quadranet
can be trained where PyTorch runs (several GPUs, DistributedDataParallel) and brought back::

    import quadranet_torch as qt

    model = MyNet()                                   # the PyTorch model the ONNX file came from
    model.load_state_dict(pretrained)
    qt.load_adapter(model, "runs/quad", base_model="model.onnx")
    opt = torch.optim.AdamW(qt.quad_parameters(model), lr=3e-3)
    ...                                               # train; DDP(model) works as usual
    qt.save_adapter(model, "runs/quad-torch")         # then: quadranet eval / loadAdapter

For every target layer ``L`` (``nn.Conv1d/2d/3d`` for ONNX ``Conv``, ``nn.Linear`` for ``Gemm`` and
``MatMul``) the output becomes ``L(x) + Q(x)``::

    lowrank:  Q(x) = U(phi(A(x), B(x)))          neuron:  Q(x) = phi(A(x), B(x))
    phi:      product a * b,   rbf exp(-gamma (a - b)^2),   linear: Q(x) = U(A(x)) (no B)

with ``A``, ``B``, ``U`` in ONNX layout, exactly as quadranet builds them: for a Conv, ``A`` and
``B`` are convolutions with kernel ``kq``, dilation ``dq``, the base layer's stride and groups, and
the explicit pads of the adapter config (quadranet chooses them so the branch window is centred on
the base window: per side ``pad_q = pad - ((k - 1) d - (kq - 1) dq) / 2``); ``U`` is a 1x1
convolution with the same groups and no bias. For a Gemm, ``A(x) = x @ op(A)`` with the base
layer's ``transB`` convention (``transB = 1``, as ``torch.onnx.export`` writes ``nn.Linear``:
``A`` is ``[r, n]``, ``U`` is ``[m, r]``); for a MatMul ``A(x) = x @ A`` with ``A`` ``[n, r]`` and
``U`` ``[r, m]``. ``gamma`` (rbf) has one value per branch channel: axis 1 for convolutions, the
last axis for Gemm/MatMul.

The term is attached with a forward hook, its parameters registered under the base module as
``<module>.quadranet.quad_a`` etc., so the base model's own parameter names (and
``load_state_dict`` of a base checkpoint) are unchanged. Layers are found by name: the target's
ONNX weight ``conv1.weight`` (what ``torch.onnx.export`` writes for a model whose ``conv1`` is an
``nn.Conv2d``) maps to the module ``conv1``; pass ``names={weight: module_path}`` for others
(``torch.onnx.export`` names the transposed weight of a MatMul ``onnx::MatMul_123``, say).

No ``safetensors`` package is needed: the format (an 8-byte little-endian header length, a JSON
header, one raw byte buffer) is read and written here, byte-compatible with quadranet's writer.
Needs only PyTorch (tested with 1.13).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import sys
import tempfile
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "ADAPTER_CONFIG_FILE",
    "ADAPTER_WEIGHTS_FILE",
    "AdapterError",
    "QuadraticTerm",
    "load_adapter",
    "save_adapter",
    "quad_parameters",
    "quadratic_terms",
    "set_adapter_enabled",
    "unload",
    "read_adapter_config",
    "read_safetensors",
    "write_safetensors",
    "decode_safetensors",
    "encode_safetensors",
]

__version__ = "0.1.0"

ADAPTER_WEIGHTS_FILE = "adapter.safetensors"
ADAPTER_CONFIG_FILE = "adapter_config.json"
#: The adapter format this module reads and writes (``formatVersion`` in the config).
FORMAT = "quadranet-adapter"
FORMAT_VERSION = 1
#: Name of the submodule holding the quadratic term under each adapted module.
SUBMODULE = "quadranet"
ROLES = ("quad_a", "quad_b", "quad_u", "quad_gamma")

_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}
_MAX_HEADER = 100_000_000


class AdapterError(ValueError):
    """An adapter that cannot be read, does not fit the model, or cannot be written."""


# ── safetensors, in plain Python ───────────────────────────────────────────────────────────


def _check_host() -> None:
    if sys.byteorder != "little":
        raise AdapterError("safetensors needs a little-endian machine")


def decode_safetensors(data: bytes, file: str = "<bytes>") -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Parses safetensors bytes into ``({name: tensor}, metadata)``; every range is checked."""
    _check_host()

    def fail(what: str) -> AdapterError:
        return AdapterError(f"cannot read {file}: {what}; the file is corrupt or not safetensors")

    if len(data) < 8:
        raise fail("too short for the 8-byte header length")
    n = int.from_bytes(data[:8], "little")
    if n > _MAX_HEADER or 8 + n > len(data):
        raise fail(f"header length {n} is impossible for a {len(data)}-byte file")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise fail(f"header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise fail("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    buf = memoryview(data)[8 + n :]
    tensors: Dict[str, torch.Tensor] = {}
    spans = []
    for name, entry in header.items():
        try:
            dtype = _DTYPES[entry["dtype"]]
            shape = [int(d) for d in entry["shape"]]
            begin, end = (int(o) for o in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise fail(f"tensor {name!r}: bad dtype, shape or data_offsets") from None
        numel = 1
        for d in shape:
            if d < 0:
                raise fail(f"tensor {name!r}: negative dimension")
            numel *= d
        size = torch.empty((), dtype=dtype).element_size()
        if not (0 <= begin <= end <= len(buf)) or end - begin != numel * size:
            raise fail(f"tensor {name!r}: data_offsets [{begin}, {end}] do not fit shape {shape}")
        spans.append((begin, end, name))
        raw = bytearray(buf[begin:end])  # a copy: writable, and aligned for frombuffer
        t = torch.frombuffer(raw, dtype=dtype) if numel else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(shape).clone()
    cursor = 0
    for begin, end, name in sorted(spans):
        if begin != cursor:
            raise fail(f"tensor {name!r}: the data buffer has a hole or an overlap before it")
        cursor = end
    if cursor != len(buf):
        raise fail("bytes at the end of the data buffer belong to no tensor")
    return tensors, {str(k): str(v) for k, v in metadata.items()}


def read_safetensors(path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Reads a safetensors file: ``({name: CPU tensor}, metadata)``."""
    with open(path, "rb") as f:
        return decode_safetensors(f.read(), path)


def _js_order(name: str) -> bytes:
    # quadranet sorts names with JavaScript's default sort (UTF-16 code units).
    return name.encode("utf-16-be")


def _json_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def encode_safetensors(tensors: Mapping[str, torch.Tensor], metadata: Optional[Mapping[str, str]] = None) -> bytes:
    """Serialises tensors exactly as quadranet does: names sorted, data contiguous in that order,
    the header padded with spaces to a multiple of 8 bytes."""
    _check_host()
    parts: List[str] = []
    if metadata:
        keys = sorted(metadata, key=_js_order)
        inner = ",".join(f"{_json_str(k)}:{_json_str(str(metadata[k]))}" for k in keys)
        parts.append(f'"__metadata__":{{{inner}}}')
    blobs: List[bytes] = []
    offset = 0
    for name in sorted(tensors, key=_js_order):
        if name == "__metadata__":
            raise AdapterError("the tensor name __metadata__ is reserved")
        t = tensors[name].detach().to("cpu").contiguous()
        if t.dtype not in _NAMES:
            raise AdapterError(f"tensor {name!r}: dtype {t.dtype} has no safetensors name")
        nbytes = t.numel() * t.element_size()
        blob = ctypes.string_at(t.data_ptr(), nbytes) if nbytes else b""
        shape = ",".join(str(d) for d in t.shape)
        parts.append(
            f'{_json_str(name)}:{{"dtype":"{_NAMES[t.dtype]}","shape":[{shape}],"data_offsets":[{offset},{offset + nbytes}]}}'
        )
        blobs.append(blob)
        offset += nbytes
    header = ("{" + ",".join(parts) + "}").encode("utf-8")
    padded = (len(header) + 7) // 8 * 8
    return padded.to_bytes(8, "little") + header + b" " * (padded - len(header)) + b"".join(blobs)


def _write_atomic(path: str, data: bytes) -> None:
    """Writes through a temporary file in the same directory, fsync, then rename."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_safetensors(path: str, tensors: Mapping[str, torch.Tensor], metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes a safetensors file atomically."""
    _write_atomic(path, encode_safetensors(tensors, metadata))


# ── the quadratic term ─────────────────────────────────────────────────────────────────────


class QuadraticTerm(nn.Module):
    """Q(x) of one target layer (DESIGN.md section 3), from its entry in ``adapter_config.json``.

    Parameters are kept in ONNX layout under their roles (``quad_a``, ``quad_b``, ``quad_u``,
    ``quad_gamma``), so they save back under the adapter keys ``<weight>.<role>`` unchanged.
    """

    def __init__(self, spec: Mapping, tensors: Mapping[str, torch.Tensor]):
        super().__init__()
        self.spec = dict(spec)
        self.op: str = spec["op"]
        self.mode: str = spec["mode"]
        self.phi: str = spec["phi"]
        #: Whether the term is added (``set_adapter_enabled`` flips it).
        self.enabled = True
        for p in spec["params"]:
            t = tensors[p["name"]]
            self.register_parameter(p["role"], nn.Parameter(t.clone()))
        if self.op == "Conv":
            self.nd = len(spec["kq"])
            self.conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}.get(self.nd)
            if self.conv is None:
                raise AdapterError(f"target {spec['node']!r}: {self.nd}-d convolutions are not supported here")
            pads = list(spec["pads"])
            self.begins, self.ends = pads[: self.nd], pads[self.nd :]
        elif self.op == "Gemm" and spec.get("transA", 0):
            raise AdapterError(f"target {spec['node']!r}: Gemm with transA = 1 is not supported here")

    def param(self, role: str) -> torch.Tensor:
        return getattr(self, role)

    def _branch(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.op == "Conv":
            if self.begins == self.ends:
                return self.conv(
                    x, w, None, tuple(self.spec["strides"]), tuple(self.begins), tuple(self.spec["dq"]), self.spec["group"]
                )
            # Asymmetric pads: F.pad takes (last-axis begin, last-axis end, ...), axes reversed.
            pad: List[int] = []
            for i in reversed(range(self.nd)):
                pad += [self.begins[i], self.ends[i]]
            return self.conv(F.pad(x, pad), w, None, tuple(self.spec["strides"]), 0, tuple(self.spec["dq"]), self.spec["group"])
        if self.op == "Gemm":
            return x @ (w.t() if self.spec.get("transB", 0) else w)
        return x @ w  # MatMul

    def _phi(self, a: torch.Tensor, b: Optional[torch.Tensor]) -> torch.Tensor:
        if self.phi == "linear":
            return a
        if self.phi == "product":
            return a * b
        gamma = self.quad_gamma
        if self.op == "Conv":
            gamma = gamma.reshape([1, -1] + [1] * self.nd)
        return torch.exp(-((a - b) ** 2) * gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self._branch(x, self.quad_a)
        b = None if self.phi == "linear" else self._branch(x, self.quad_b)
        p = self._phi(a, b)
        if self.mode == "neuron":
            return p
        u = self.quad_u
        if self.op == "Conv":
            return self.conv(p, u, None, 1, 0, 1, self.spec["group"])
        if self.op == "Gemm":
            return p @ (u.t() if self.spec.get("transB", 0) else u)
        return p @ u

    def extra_repr(self) -> str:
        s = self.spec
        geo = f", kq={s['kq']}, dq={s['dq']}, pads={s['pads']}" if self.op == "Conv" else ""
        return f"{s['node']} ({self.op}, {self.mode}, rank={s['rank']}, phi={self.phi}{geo})"


def _quad_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    # A module-level function (no closure), so copies of the model (deepcopy, DDP replicas) use
    # their own term.
    term = getattr(module, SUBMODULE, None)
    if term is None or not term.enabled:
        return output
    return output + term(inputs[0])


# ── reading and checking adapter files ─────────────────────────────────────────────────────


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_adapter_config(adapter_dir: str) -> dict:
    """Reads and checks ``adapter_config.json`` (format ``quadranet-adapter``, version 1)."""
    path = os.path.join(adapter_dir, ADAPTER_CONFIG_FILE)
    with open(path, "r", encoding="utf-8") as f:
        config = json.load(f)
    fmt = config.get("format") if isinstance(config, dict) else None
    if fmt != FORMAT:
        raise AdapterError(f"{path}: not a quadranet adapter config (format {fmt!r})")
    if config.get("formatVersion") != FORMAT_VERSION:
        raise AdapterError(f"{path}: formatVersion {config.get('formatVersion')!r} is not supported (this reads 1)")
    if config.get("weightsFile") != ADAPTER_WEIGHTS_FILE:
        raise AdapterError(f"{path}: weightsFile must be {ADAPTER_WEIGHTS_FILE!r}")
    targets = config.get("targets")
    if not isinstance(targets, list) or not targets:
        raise AdapterError(f"{path}: targets is not a non-empty list")
    for t in targets:
        for p in t["params"]:
            if p["role"] not in ROLES or p["name"] != f"{t['weight']}.{p['role']}":
                raise AdapterError(f"{path}: target {t['node']!r} has a parameter {p.get('name')!r} with a bad role or name")
    return config


def _module_path(weight: str, names) -> str:
    if names is not None:
        if callable(names):
            return names(weight)
        if weight in names:
            return names[weight]
    if weight.endswith(".weight"):
        return weight[: -len(".weight")]
    raise AdapterError(
        f"cannot tell which module holds weight {weight!r}; pass names={{{weight!r}: 'module.path'}}"
    )


def _as_tuple(v, n: int) -> Tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _check_module(module: nn.Module, spec: Mapping, path: str) -> None:
    """Refuses a module that cannot be the target layer (wrong type or geometry)."""
    where = f"target {spec['node']!r} ({spec['op']}, weight {spec['weight']!r}) → module {path!r}"
    op = spec["op"]
    if op == "Conv":
        nd = len(spec["kq"])
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[nd]
        if not isinstance(module, conv):
            raise AdapterError(f"{where}: expected an nn.Conv{nd}d, found {type(module).__name__}")
        if module.padding_mode != "zeros":
            raise AdapterError(
                f"{where}: padding_mode {module.padding_mode!r} (the ONNX Conv reads a Pad's output, not the module's input)"
            )
        if tuple(module.stride) != tuple(spec["strides"]) or module.groups != spec["group"]:
            raise AdapterError(
                f"{where}: stride {tuple(module.stride)} / groups {module.groups} differ from the adapter's "
                f"{tuple(spec['strides'])} / {spec['group']}"
            )
        k, d = _as_tuple(module.kernel_size, nd), _as_tuple(module.dilation, nd)
        # The branch window must be centred on the base window: pad_q = pad − ((k−1)d − (kq−1)dq)/2.
        if isinstance(module.padding, (tuple, list)):
            pad = _as_tuple(module.padding, nd)
            want = [pad[i] - ((k[i] - 1) * d[i] - (spec["kq"][i] - 1) * spec["dq"][i]) // 2 for i in range(nd)]
            if list(spec["pads"]) != want + want:
                raise AdapterError(f"{where}: the adapter's pads {spec['pads']} do not centre on this layer (expected {want + want})")
        branch_in = spec["params"][0]["shape"][1] * spec["group"]
        if module.in_channels != branch_in:
            raise AdapterError(f"{where}: in_channels {module.in_channels} differ from the adapter's {branch_in}")
    else:
        if not isinstance(module, nn.Linear):
            raise AdapterError(f"{where}: expected an nn.Linear, found {type(module).__name__}")
        a = spec["params"][0]["shape"]
        n = a[1] if (op == "Gemm" and spec.get("transB", 0)) else a[0]
        if module.in_features != n:
            raise AdapterError(f"{where}: in_features {module.in_features} differ from the adapter's {n}")


def _unwrap(model: nn.Module) -> nn.Module:
    # DistributedDataParallel / DataParallel keep the model in .module.
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def load_adapter(
    model: nn.Module,
    adapter_dir: str,
    *,
    names: Optional[Union[Mapping[str, str], Callable[[str], str]]] = None,
    base_model: Optional[Union[str, bytes]] = None,
    device: Optional[Union[str, torch.device]] = None,
) -> Dict[str, QuadraticTerm]:
    """Attaches the adapter saved in ``adapter_dir`` to ``model`` (in place) and returns the terms by
    target weight name.

    ``names`` maps ONNX weight names to module paths (default: ``conv1.weight`` → ``conv1``).
    ``base_model`` (the base ONNX file's path or bytes) is checked against the config's
    ``baseModelSha256``, as quadranet does; without it the base model cannot be verified here, only
    each layer's type and geometry. The weights file must match the config's ``weightsSha256``.
    Parameters are created on ``device`` (default: the device of each target module's weight).
    """
    model = _unwrap(model)
    config = read_adapter_config(adapter_dir)
    wpath = os.path.join(adapter_dir, ADAPTER_WEIGHTS_FILE)
    with open(wpath, "rb") as f:
        raw = f.read()
    if _sha256(raw) != config["weightsSha256"]:
        raise AdapterError(f"{wpath} does not match {ADAPTER_CONFIG_FILE} (SHA-256 differs): they come from different saves")
    if base_model is not None:
        data = base_model
        if isinstance(base_model, str):
            with open(base_model, "rb") as f:
                data = f.read()
        sha = _sha256(data)
        if sha != config["baseModelSha256"]:
            raise AdapterError(
                f"{adapter_dir} belongs to a base model with SHA-256 {config['baseModelSha256'][:16]}…, "
                f"but the given base model has {sha[:16]}…; load the adapter onto the model it was made for"
            )
    tensors, _ = decode_safetensors(raw, wpath)
    listed = {p["name"]: (t, p) for t in config["targets"] for p in t["params"]}
    missing = sorted(set(listed) - set(tensors))
    extra = sorted(set(tensors) - set(listed))
    if missing or extra:
        raise AdapterError(f"{wpath}: keys differ from the config (missing {missing[:3]}, extra {extra[:3]})")
    for name, (_, p) in listed.items():
        if list(tensors[name].shape) != list(p["shape"]):
            raise AdapterError(f"{wpath}: {name!r} has shape {list(tensors[name].shape)}, the config says {p['shape']}")

    plan = []
    for spec in config["targets"]:
        path = _module_path(spec["weight"], names)
        try:
            module = model.get_submodule(path)
        except AttributeError:
            raise AdapterError(f"target {spec['node']!r}: the model has no module {path!r} (weight {spec['weight']!r})") from None
        if hasattr(module, SUBMODULE):
            raise AdapterError(f"module {path!r} already has a quadratic term; unload it first")
        _check_module(module, spec, path)
        plan.append((spec, path, module))

    terms: Dict[str, QuadraticTerm] = {}
    for spec, path, module in plan:  # everything was checked before anything is attached
        term = QuadraticTerm(spec, tensors)
        term.to(device if device is not None else module.weight.device)
        term.adapter_config = config  # what save_adapter writes back
        term.module_path = path
        module.add_module(SUBMODULE, term)
        module.register_forward_hook(_quad_hook)
        terms[spec["weight"]] = term
    return terms


# ── using and saving ───────────────────────────────────────────────────────────────────────


def quadratic_terms(model: nn.Module) -> List[QuadraticTerm]:
    """The attached terms, in module order."""
    return [m for m in _unwrap(model).modules() if isinstance(m, QuadraticTerm)]


def quad_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """The quadratic parameters (for the optimizer of adapter-only training)."""
    for term in quadratic_terms(model):
        yield from term.parameters()


def set_adapter_enabled(model: nn.Module, enabled: bool) -> None:
    """Adds (True) or bypasses (False) every quadratic term; bypassed, the model is the base model."""
    for term in quadratic_terms(model):
        term.enabled = bool(enabled)


def unload(model: nn.Module) -> None:
    """Removes every quadratic term and its hook: the model is the base model again."""
    for module in _unwrap(model).modules():
        if isinstance(getattr(module, SUBMODULE, None), QuadraticTerm):
            delattr(module, SUBMODULE)
            for k, hook in list(module._forward_hooks.items()):
                if hook is _quad_hook:
                    del module._forward_hooks[k]


def save_adapter(model: nn.Module, adapter_dir: str, *, base_sha256: Optional[str] = None) -> dict:
    """Writes ``adapter.safetensors`` and ``adapter_config.json`` into ``adapter_dir`` in quadranet's
    format (each atomically, the config last), from the terms attached by ``load_adapter``; returns
    the config written. The config is the loaded one with the new ``weightsSha256`` (and
    ``baseModelSha256`` when given). Unchanged weights give byte-identical files.
    Call it on one process (rank 0) under DDP; a DDP-wrapped model is accepted.
    """
    terms = quadratic_terms(model)
    if not terms:
        raise AdapterError("the model has no quadratic terms to save; attach them with load_adapter")
    config = json.loads(json.dumps(terms[0].adapter_config))
    tensors: Dict[str, torch.Tensor] = {}
    by_node = {t.spec["node"]: t for t in terms}
    for spec in config["targets"]:
        term = by_node.get(spec["node"])
        if term is None:
            raise AdapterError(f"target {spec['node']!r} of the adapter is not attached to the model")
        for p in spec["params"]:
            v = term.param(p["role"]).detach()
            if list(v.shape) != list(p["shape"]):
                raise AdapterError(f"{p['name']!r} has shape {list(v.shape)}, the config says {p['shape']}")
            tensors[p["name"]] = v
    if len(by_node) != len(config["targets"]):
        raise AdapterError("the model holds quadratic terms of more than one adapter")
    data = encode_safetensors(tensors, {"format": FORMAT})
    config["weightsSha256"] = _sha256(data)
    if base_sha256 is not None:
        config["baseModelSha256"] = base_sha256.lower()
    _write_atomic(os.path.join(adapter_dir, ADAPTER_WEIGHTS_FILE), data)
    text = json.dumps(config, indent=2, ensure_ascii=False) + "\n"
    _write_atomic(os.path.join(adapter_dir, ADAPTER_CONFIG_FILE), text.encode("utf-8"))
    for term in terms:
        term.adapter_config = config
    return config
