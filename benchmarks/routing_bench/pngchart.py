"""A dependency-free PNG bar chart (used when matplotlib is not installed): panels of grouped bars, no text."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

_COLORS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]  # fmt: skip


def _png(width: int, height: int, pixels: list[bytearray]) -> bytes:
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def bar_chart_png(
    panels: Sequence[Sequence[Sequence[float]]], series: int, width: int = 900, panel_height: int = 260
) -> bytes:
    """panels[p][group][series] values; each panel scaled to its own maximum; series coloured in order."""
    height = panel_height * len(panels)
    pixels = [bytearray(b"\xff" * (width * 3)) for _ in range(height)]
    for p, groups in enumerate(panels):
        top = p * panel_height
        peak = max((v for group in groups for v in group), default=0.0) or 1.0
        group_width = (width - 40) / max(1, len(groups))
        bar = max(1, int(group_width * 0.8 / max(1, series)))
        for g, group in enumerate(groups):
            for s, value in enumerate(group):
                x0 = int(20 + g * group_width + s * bar)
                bar_height = int((panel_height - 30) * value / peak)
                color = bytes(_COLORS[s % len(_COLORS)])
                for y in range(top + panel_height - 10 - bar_height, top + panel_height - 10):
                    pixels[y][x0 * 3 : (x0 + bar - 1) * 3] = color * (bar - 1)
        for x in range(width):  # the axis line
            pixels[top + panel_height - 10][x * 3 : x * 3 + 3] = b"\x00\x00\x00"
    return _png(width, height, pixels)
