"""Headless Chromium for the dashboard test: the DOM after scripts ran, a screenshot, and a PNG reader.

``make test`` installs Chromium first (``infra/chromium.sh``). Every run is bounded
(``timeout`` seconds, default 60) and uses a fresh profile folder, no network, an
sRGB colour profile and a device scale factor of 1, so a CSS pixel is one pixel of
the screenshot and a fill of ``#4e79a7`` reads back as (78, 121, 167).

``read_png`` decodes the 8-bit, non-interlaced RGB / RGBA images Chromium writes
with zlib and numpy only (Pillow is not a dependency of the project).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["chromium", "dump_dom", "read_png", "screenshot"]

_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--hide-scrollbars", "--force-device-scale-factor=1", "--force-color-profile=srgb",
)  # fmt: skip


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(page: Path, profile: Path, size: tuple[int, int], *action: str, timeout: float) -> str:
    browser = chromium()
    assert browser is not None, "Chromium is not installed (infra/chromium.sh installs it)"
    command = [browser, *_FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", *action]
    proc = subprocess.run([*command, page.as_uri()], capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(command)} exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout


def dump_dom(page: Path, profile: Path, size: tuple[int, int], *, timeout: float = 60) -> str:
    """The serialised DOM of ``page`` (a file) once its scripts ran, in a window of ``size`` CSS pixels."""
    return _run(page, profile, size, "--dump-dom", timeout=timeout)


def screenshot(
    page: Path, profile: Path, size: tuple[int, int], out: Path, *, timeout: float = 60
) -> npt.NDArray[np.uint8]:
    """A screenshot of ``page`` in a window of ``size`` (width, height) CSS pixels, as (height, width, 3) RGB pixels."""
    _run(page, profile, size, f"--screenshot={out}", timeout=timeout)
    assert out.is_file(), f"Chromium exited 0 but wrote no screenshot to {out}"
    return read_png(out.read_bytes())[:, :, :3]


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def read_png(data: bytes) -> npt.NDArray[np.uint8]:
    """Pixels of an 8-bit, non-interlaced RGB or RGBA PNG, as an (height, width, channels) array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    header: tuple[int, ...] = ()
    compressed = bytearray()
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunk, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        at += 12 + length
        if chunk == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif chunk == b"IDAT":
            compressed += body
        elif chunk == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    channels = {2: 3, 6: 4}.get(colour)
    assert depth == 8 and channels is not None and interlace == 0, (
        f"unsupported PNG (bit depth {depth}, colour type {colour}, interlace {interlace})"
    )
    stride = width * channels
    raw = np.frombuffer(zlib.decompress(bytes(compressed)), dtype=np.uint8)
    assert raw.size == height * (stride + 1), f"PNG data of {raw.size} bytes for {width}x{height}x{channels}"
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = int(rows[y, 0]), rows[y, 1:]
        if kind == 0:  # None
            row = line.copy()
        elif kind == 1:  # Sub: a running sum per channel, modulo 256
            row = np.cumsum(line.reshape(width, channels), axis=0, dtype=np.uint8).reshape(stride)
        elif kind == 2:  # Up
            row = line + previous
        elif kind in (3, 4):  # Average, Paeth: each byte depends on the one decoded before it
            recon = bytearray(stride)
            filt, up = line.tobytes(), previous.tobytes()
            for x in range(stride):
                left = recon[x - channels] if x >= channels else 0
                upper_left = up[x - channels] if x >= channels else 0
                guess = (left + up[x]) >> 1 if kind == 3 else _paeth(left, up[x], upper_left)
                recon[x] = (filt[x] + guess) & 0xFF
            row = np.frombuffer(bytes(recon), dtype=np.uint8)
        else:
            raise AssertionError(f"PNG row {y}: unknown filter type {kind}")
        out[y] = row
        previous = row
    return out.reshape(height, width, channels)
