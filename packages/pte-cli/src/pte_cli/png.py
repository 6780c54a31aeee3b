"""A tiny line-plot PNG writer (stdlib only): axes, ticks, lines, a legend, a 3x5 pixel font."""

from __future__ import annotations

import struct
import zlib

_FONT = {  # 3x5 glyphs, rows top to bottom, bits left to right
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", ".": "000000000000010", "-": "000000111000000",
    "%": "101001010100101", "_": "000000000000111", "/": "001001010100100", " ": "000000000000000",
    "(": "010100100100010", ")": "010001001001010", "@": "111101111100111", ":": "000010000010000",
    "A": "010101111101101", "B": "110101110101110", "C": "111100100100111", "D": "110101101101110",
    "E": "111100111100111", "F": "111100111100100", "G": "111100101101111", "H": "101101111101101",
    "I": "111010010010111", "J": "001001001101111", "K": "101101110101101", "L": "100100100100111",
    "M": "101111111101101", "N": "110101101101101", "O": "111101101101111", "P": "111101111100100",
    "Q": "111101101111001", "R": "110101110101101", "S": "111100111001111", "T": "111010010010010",
    "U": "101101101101111", "V": "101101101101010", "W": "101101111111101", "X": "101101010101101",
    "Y": "101101010010010", "Z": "111001010100111",
}
COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


class Canvas:
    def __init__(self, width: int, height: int):
        self.w, self.h = width, height
        self.px = bytearray([255] * (width * height * 3))

    def dot(self, x: int, y: int, color, size: int = 1):
        for dx in range(size):
            for dy in range(size):
                xx, yy = x + dx, y + dy
                if 0 <= xx < self.w and 0 <= yy < self.h:
                    i = (yy * self.w + xx) * 3
                    self.px[i : i + 3] = bytes(color)

    def line(self, x0, y0, x1, y1, color, width: int = 2):
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for s in range(steps + 1):
            self.dot(round(x0 + (x1 - x0) * s / steps), round(y0 + (y1 - y0) * s / steps), color, width)

    def text(self, x: int, y: int, s: str, color=(0, 0, 0), scale: int = 2):
        for ch in s.upper():
            glyph = _FONT.get(ch, _FONT[" "])
            for r in range(5):
                for c in range(3):
                    if glyph[r * 3 + c] == "1":
                        self.dot(x + c * scale, y + r * scale, color, scale)
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3 : (y + 1) * self.w * 3]) for y in range(self.h))

        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        header = struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def line_plot(series: dict[str, list[tuple[float, float]]], x_labels: dict[float, str], title: str,
              y_label: str = "PASS@1 (%)", width: int = 720, height: int = 440) -> bytes:
    """``series``: label -> [(x, y)]. X positions are drawn evenly in sorted order (budgets)."""
    c = Canvas(width, height)
    left, right, top, bottom = 70, width - 170, 40, height - 60
    xs = sorted({x for pts in series.values() for x, _ in pts})
    ys = [y for pts in series.values() for _, y in pts] or [0.0]
    y_lo, y_hi = 0.0, max(10.0, (int(max(ys) / 10) + 1) * 10)
    xpos = {x: left + (right - left) * (i / max(len(xs) - 1, 1)) for i, x in enumerate(xs)}

    def ypos(y):
        return bottom - (bottom - top) * (y - y_lo) / (y_hi - y_lo)

    c.line(left, bottom, right, bottom, (0, 0, 0), 1)
    c.line(left, top, left, bottom, (0, 0, 0), 1)
    for t in range(0, int(y_hi) + 1, max(10, int(y_hi) // 5 // 10 * 10)):
        y = round(ypos(t))
        c.line(left - 5, y, left, y, (0, 0, 0), 1)
        c.line(left + 1, y, right, y, (225, 225, 225), 1)
        c.text(left - 10 - 8 * len(str(t)), y - 5, str(t))
    for x in xs:
        px = round(xpos[x])
        c.line(px, bottom, px, bottom + 5, (0, 0, 0), 1)
        label = x_labels.get(x, str(x))
        c.text(px - 4 * len(label), bottom + 12, label)
    c.text(left + 110, 10, title)
    c.text(left, height - 22, "CACHE WINDOW (TOKENS)")
    c.text(6, top - 20, y_label)
    for i, (label, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        pts = sorted(pts)
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            c.line(round(xpos[x0]), round(ypos(y0)), round(xpos[x1]), round(ypos(y1)), color, 2)
        for x, y in pts:
            c.dot(round(xpos[x]) - 3, round(ypos(y)) - 3, color, 7)
        ly = top + 10 + 22 * i
        c.line(right + 15, ly + 4, right + 35, ly + 4, color, 3)
        c.text(right + 42, ly, label[:14])
    return c.png()
