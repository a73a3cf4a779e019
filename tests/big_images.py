"""Small files of huge pixel sizes, for the size-limit tests (issue 16): a flat-colour PNG written row by
row (1-bit palette, so a 20000×20000 image is a few hundred KB and never exists decoded in the test)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def flat_png(path: str | Path, width: int, height: int, colour: tuple[int, int, int] = (40, 160, 60)) -> Path:
    """Write a ``width``×``height`` PNG of one colour (1-bit palette) to ``path``; returns the path."""
    path = Path(path)
    row = b"\x00" + bytes((width + 7) // 8)  # filter 0, every pixel palette index 0
    compressor = zlib.compressobj(9)
    parts = []
    block = row * 256
    for start in range(0, height, 256):
        parts.append(compressor.compress(block if start + 256 <= height else row * (height - start)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 3, 0, 0, 0)  # bit depth 1, colour type 3 (palette)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"PLTE", bytes(colour)) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")
    )
    return path
