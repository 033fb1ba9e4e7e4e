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
    phi:      product a * b,   rbf exp(-gamma (a - b)^2),   square a * (a + b),
              linear: Q(x) = U(A(x)) (no B); the table PHIS below

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

It also holds PyTorch definitions of quadranet's built-in ResNet-style and ConvNeXt-style networks
(``ResNetStyle``, ``ConvNeXtStyle``: the same layers, names and numerics as ``src/models/zoo.ts``)
and ``save_checkpoint`` / ``load_checkpoint``, so weights trained here open in quadranet directly
(``quadranet inspect model.safetensors``; docs/safetensors-checkpoints.md)::

    model = qt.ResNetStyle(input_shape=(3, 32, 32), classes=10)
    ...                                               # train as usual
    qt.save_checkpoint(model, "resnet.safetensors")   # the state_dict + the architecture declared

No ``safetensors`` package is needed: the format (an 8-byte little-endian header length, a JSON
header, one raw byte buffer) is read and written here, byte-compatible with quadranet's writer.
Needs only PyTorch (tested with 1.13).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
import re
import shutil
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
    "CheckpointError",
    "ResNetStyle",
    "ConvNeXtStyle",
    "ARCHITECTURES",
    "save_checkpoint",
    "load_checkpoint",
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


# Several files as one unit, the same protocol as quadranet's writeFilesAtomic (src/io/atomic.ts):
# each file is staged as ``.staged-*`` and fsynced, then the journal ``.commit.json`` (a list of
# [staged, name] pairs) is renamed into place (the commit point), then the staged files are renamed
# over the real names and the journal removed. A kill leaves the old set or, through the journal,
# the new one; readers resolve names through the journal and the next writer finishes the job.
_STAGED_PREFIX = ".staged-"
_TRASH_PREFIX = ".trash-"
_COMMIT_FILE = ".commit.json"
_OUR_TEMP_NAME = re.compile(r"-\d+\.[0-9a-f]{8}$")


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


def _fsync_dir(d: str) -> None:
    """Makes renames in ``d`` durable; platforms that cannot fsync a directory are skipped."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_journal(d: str) -> Optional[List[Tuple[str, str]]]:
    """The journal's pairs, None without one; a malformed journal (never committed) gives []."""
    try:
        with open(os.path.join(d, _COMMIT_FILE), "r", encoding="utf-8") as f:
            text = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        files = json.loads(text).get("files")
    except (ValueError, AttributeError):
        return []
    ok = isinstance(files, list) and all(
        isinstance(p, list)
        and len(p) == 2
        and _plain_name(p[0])
        and p[0].startswith(_STAGED_PREFIX)
        and _plain_name(p[1])
        for p in files
    )
    return [(p[0], p[1]) for p in files] if ok else []


def _roll_forward(d: str, pairs: List[Tuple[str, str]]) -> None:
    for staged, name in pairs:
        try:
            os.replace(os.path.join(d, staged), os.path.join(d, name))
        except FileNotFoundError:
            pass  # renamed by an earlier, interrupted roll-forward
    _fsync_dir(d)
    try:
        os.unlink(os.path.join(d, _COMMIT_FILE))
    except FileNotFoundError:
        pass


def _recover_dir(d: str) -> None:
    """Finishes a committed multi-file write in ``d`` and removes uncommitted staged files."""
    pairs = _read_journal(d)
    if pairs is not None:
        _roll_forward(d, pairs)
    if not os.path.isdir(d):
        return
    for entry in os.listdir(d):
        # Only names as quadranet makes them: other programs' ``.trash-*`` files are not ours.
        if not _OUR_TEMP_NAME.search(entry):
            continue
        if entry.startswith(_STAGED_PREFIX) or entry.startswith(_TRASH_PREFIX):
            path = os.path.join(d, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)


def _write_files_atomic(d: str, files: Mapping[str, bytes]) -> None:
    """Replaces the files named in ``files`` (names in ``d``) as one unit; see above."""
    os.makedirs(d, exist_ok=True)
    _recover_dir(d)
    staged: List[str] = []
    pairs: List[Tuple[str, str]] = []
    try:
        for name, data in list(files.items()) + [(_COMMIT_FILE, None)]:
            if data is None:  # the journal, written last, naming the staged files
                data = (json.dumps({"files": [list(p) for p in pairs]}) + "\n").encode("utf-8")
            # Named as quadranet names them (``-<pid>.<8 hex>``), so either side's recovery knows them.
            tmp = os.path.join(d, f"{_STAGED_PREFIX}{name}-{os.getpid()}.{os.urandom(4).hex()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            staged.append(tmp)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if name != _COMMIT_FILE:
                pairs.append((os.path.basename(tmp), name))
        _fsync_dir(d)
        os.replace(staged[-1], os.path.join(d, _COMMIT_FILE))  # the commit point
    except BaseException:
        for tmp in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    _fsync_dir(d)
    _roll_forward(d, pairs)


def _read_committed(d: str, name: str) -> bytes:
    """The committed content of ``d/name``: its staged file while a killed write is unfinished."""
    for staged, n in _read_journal(d) or []:
        if n == name:
            try:
                with open(os.path.join(d, staged), "rb") as f:
                    return f.read()
            except FileNotFoundError:
                break  # renamed into place meanwhile
    with open(os.path.join(d, name), "rb") as f:
        return f.read()


def write_safetensors(path: str, tensors: Mapping[str, torch.Tensor], metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes a safetensors file atomically."""
    _write_atomic(path, encode_safetensors(tensors, metadata))


# ── the quadratic term ─────────────────────────────────────────────────────────────────────


#: The kernel functions φ(a, b, channel) by name: the twins of src/passes/variants/*.ts
#: (``channel(role)`` is a per-channel parameter, broadcast). A variant added there is added here.
PHIS: Dict[str, Callable[[torch.Tensor, Optional[torch.Tensor], Callable[[str], torch.Tensor]], torch.Tensor]] = {
    "product": lambda a, b, channel: a * b,
    "rbf": lambda a, b, channel: torch.exp(-((a - b) ** 2) * channel("quad_gamma")),
    "linear": lambda a, b, channel: a,
    "square": lambda a, b, channel: a * (a + b),
}


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
        if self.phi not in PHIS:
            raise AdapterError(f"target {spec['node']!r}: phi {self.phi!r} is unknown here (known: {', '.join(PHIS)})")
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

    def _channel(self, role: str) -> torch.Tensor:
        # A per-channel parameter broadcast over the branch's channel axis (axis 1 for Conv).
        p = self.param(role)
        return p.reshape([1, -1] + [1] * self.nd) if self.op == "Conv" else p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self._branch(x, self.quad_a)
        b = self._branch(x, self.quad_b) if hasattr(self, "quad_b") else None
        p = PHIS[self.phi](a, b, self._channel)
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
    config = json.loads(_read_committed(adapter_dir, ADAPTER_CONFIG_FILE).decode("utf-8"))
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
    raw = _read_committed(adapter_dir, ADAPTER_WEIGHTS_FILE)
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
    format (both in one atomic step, as quadranet writes them), from the terms attached by
    ``load_adapter``; returns the config written. The config is the loaded one with the new
    ``weightsSha256`` (and ``baseModelSha256`` when given). Unchanged weights give byte-identical files.
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
    text = json.dumps(config, indent=2, ensure_ascii=False) + "\n"
    # One step, so a kill never pairs new weights with an old config (see _write_files_atomic).
    _write_files_atomic(adapter_dir, {ADAPTER_WEIGHTS_FILE: data, ADAPTER_CONFIG_FILE: text.encode("utf-8")})
    for term in terms:
        term.adapter_config = config
    return config


# ── checkpoints of the built-in architectures ──────────────────────────────────────────────
#
# ResNetStyle and ConvNeXtStyle are src/models/zoo.ts resnet() and convnext() in PyTorch: their
# state_dict keys are exactly quadranet's initializer names, and every tensor has the same shape,
# except the ConvNeXt pointwise layers ``block{i}.pwconv1/2.weight``, which nn.Linear keeps
# [out, in] and quadranet's channels-last MatMul keeps [in, out] (quadranet transposes them on
# import). save_checkpoint writes the state_dict with the architecture declared in the header's
# ``__metadata__`` (``quadranet.arch``, ``quadranet.input_shape``, ...), which quadranet reads.


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or read as a declared quadranet architecture."""


def _channels(base: int, width: float) -> int:
    # JavaScript's Math.round (half up), which quadranet uses; Python's round() is half-even.
    return int(math.floor(base * width + 0.5))


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, dilation: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.down = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
            self.down_bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        skip = self.down_bn(self.down(x)) if hasattr(self, "down") else x
        return F.relu(y + skip)


class ResNetStyle(nn.Module):
    """quadranet's ``resnet`` (src/models/zoo.ts): a 3x3 stem conv + BatchNorm + ReLU; a residual
    block of two 3x3 convs at ``c1 = round(16 width)`` channels; a residual block to
    ``c2 = round(32 width)`` channels with a strided 3x3 conv, a dilated (2) 3x3 conv and a 1x1
    strided projection shortcut; global average pooling; a linear head. BatchNorm eps 1e-5.
    """

    arch = "resnet"

    def __init__(self, input_shape=(1, 28, 28), classes: int = 10, width: float = 1.0):
        super().__init__()
        c, c1, c2 = int(input_shape[0]), _channels(16, width), _channels(32, width)
        self.quadranet_config = {"input_shape": tuple(int(d) for d in input_shape), "classes": int(classes), "width": float(width)}
        self.stem = nn.Conv2d(c, c1, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(c1)
        self.block1 = _ResBlock(c1, c1, stride=1, dilation=1)
        self.block2 = _ResBlock(c1, c2, stride=2, dilation=2)
        self.head = nn.Linear(c2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem(x)))
        x = self.block2(self.block1(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class _ConvNeXtBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.pwconv1 = nn.Linear(c, 4 * c)
        self.pwconv2 = nn.Linear(4 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # channels last
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtStyle(nn.Module):
    """quadranet's ``convnext`` (src/models/zoo.ts): a 2x2 stride-2 patchify stem to
    ``c = round(32 width)`` channels, then ``depth`` blocks of 7x7 depthwise conv -> LayerNorm
    (channels last, eps 1e-6) -> Linear c->4c -> GELU (exact) -> Linear 4c->c, each added back to
    its input; global average pooling; a linear head.
    """

    arch = "convnext"

    def __init__(self, input_shape=(1, 28, 28), classes: int = 10, width: float = 1.0, depth: int = 2):
        super().__init__()
        c = _channels(32, width)
        self.depth = int(depth)
        self.quadranet_config = {
            "input_shape": tuple(int(d) for d in input_shape),
            "classes": int(classes),
            "width": float(width),
            "depth": self.depth,
        }
        self.stem = nn.Conv2d(int(input_shape[0]), c, 2, stride=2)
        for i in range(self.depth):
            self.add_module(f"block{i}", _ConvNeXtBlock(c))
        self.head = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(self.depth):
            x = getattr(self, f"block{i}")(x)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


#: The architectures a checkpoint can declare, by ``quadranet.arch`` name.
ARCHITECTURES = {"resnet": ResNetStyle, "convnext": ConvNeXtStyle}
_META = "quadranet."


def _number(v) -> str:
    return f"{float(v):g}" if isinstance(v, float) else str(int(v))


def save_checkpoint(
    model: nn.Module,
    path: str,
    *,
    arch: Optional[str] = None,
    input_shape=None,
    classes: Optional[int] = None,
    width: Optional[float] = None,
    depth: Optional[int] = None,
    metadata: Optional[Mapping[str, str]] = None,
) -> Dict[str, str]:
    """Writes ``model.state_dict()`` (``num_batches_tracked`` included; quadranet ignores it) as a
    safetensors file with the architecture declared in its header (``quadranet.arch``,
    ``quadranet.input_shape`` as ``CxHxW``, ``quadranet.classes``, ``quadranet.width``, and
    ``quadranet.depth`` for convnext), atomically. The declaration defaults to the model's own
    (``ResNetStyle`` / ``ConvNeXtStyle``); pass it for another module with the same state_dict
    layout. ``metadata`` adds other (non-``quadranet.``) strings. Returns the metadata written.
    """
    model = _unwrap(model)
    own = dict(getattr(model, "quadranet_config", {}))
    arch = arch if arch is not None else getattr(model, "arch", None)
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"arch {arch!r} is not one of {sorted(ARCHITECTURES)}; pass arch=")
    shape = input_shape if input_shape is not None else own.get("input_shape")
    if shape is None or len(shape) != 3:
        raise CheckpointError("input_shape (C, H, W) is needed: pass input_shape=")
    meta: Dict[str, str] = {str(k): str(v) for k, v in (metadata or {}).items()}
    bad = [k for k in meta if k.startswith(_META)]
    if bad:
        raise CheckpointError(f"metadata key {bad[0]!r} is reserved; pass the declaration as arguments")
    meta[_META + "arch"] = arch
    meta[_META + "input_shape"] = "x".join(str(int(d)) for d in shape)
    meta[_META + "classes"] = _number(classes if classes is not None else own.get("classes", 10))
    meta[_META + "width"] = _number(float(width if width is not None else own.get("width", 1.0)))
    if arch == "convnext":
        meta[_META + "depth"] = _number(depth if depth is not None else own.get("depth", 2))
    elif depth is not None:
        raise CheckpointError(f"{arch} has no depth; leave depth out")
    tensors = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    _write_atomic(path, encode_safetensors(tensors, meta))
    return meta


def load_checkpoint(path: str, map_location: Optional[Union[str, torch.device]] = None) -> nn.Module:
    """Builds the architecture a checkpoint declares (``save_checkpoint``'s metadata) and loads its
    weights (strict, except for absent ``num_batches_tracked``); returns the model in eval mode."""
    tensors, meta = read_safetensors(path)
    arch = meta.get(_META + "arch")
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"{path}: quadranet.arch {arch!r} is not one of {sorted(ARCHITECTURES)}")
    try:
        shape = tuple(int(d) for d in meta[_META + "input_shape"].split("x"))
        kwargs = {"input_shape": shape, "classes": int(meta.get(_META + "classes", "10")), "width": float(meta.get(_META + "width", "1"))}
        if arch == "convnext":
            kwargs["depth"] = int(meta.get(_META + "depth", "2"))
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: bad quadranet metadata ({e})") from None
    model = ARCHITECTURES[arch](**kwargs)
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise CheckpointError(f"{path}: keys differ from {arch} (missing {missing[:3]}, unexpected {unexpected[:3]})")
    if map_location is not None:
        model.to(map_location)
    return model.eval()
