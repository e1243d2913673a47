"""A tiny PNG line-chart writer (zlib + struct only) for training curves."""

import struct
import zlib

# 3x5 digit glyphs for axis labels
_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", ".": "000000000000010", "-": "000000111000000",
}


class Canvas:
    def __init__(self, w, h, bg=(255, 255, 255)):
        self.w, self.h = w, h
        self.px = bytearray(bytes(bg) * (w * h))

    def set(self, x, y, c):
        if 0 <= x < self.w and 0 <= y < self.h:
            i = 3 * (y * self.w + x)
            self.px[i:i + 3] = bytes(c)

    def line(self, x0, y0, x1, y1, c, width=1):
        x0, y0, x1, y1 = int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            for o in range(width):
                self.set(x0, y0 + o, c)
            if x0 == x1 and y0 == y1:
                break
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def text(self, x, y, s, c=(0, 0, 0), scale=2):
        for ch in s:
            g = _GLYPHS.get(ch)
            if g:
                for i, bit in enumerate(g):
                    if bit == "1":
                        for a in range(scale):
                            for b in range(scale):
                                self.set(x + (i % 3) * scale + a, y + (i // 3) * scale + b, c)
            x += 4 * scale

    def png(self):
        raw = b"".join(b"\x00" + bytes(self.px[3 * y * self.w:3 * (y + 1) * self.w]) for y in range(self.h))

        def chunk(t, d):
            return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def chart(series, path, w=640, h=360, ymax=None):
    """series: list of (points [(x, y)], colour). Writes a PNG with axes and y ticks 0..ymax."""
    pts = [p for s, _ in series for p in s]
    if not pts:
        pts = [(0, 0), (1, 1)]
    xmax = max(1, max(p[0] for p in pts))
    ymax = ymax or max(1e-9, max(p[1] for p in pts)) * 1.05
    c = Canvas(w, h)
    L, R, T, B = 50, 10, 10, 30
    c.line(L, T, L, h - B, (0, 0, 0))
    c.line(L, h - B, w - R, h - B, (0, 0, 0))
    for i in range(5):
        yv = ymax * i / 4
        y = h - B - (h - B - T) * i / 4
        c.line(L - 4, y, L, y, (0, 0, 0))
        c.line(L + 1, y, w - R, y, (225, 225, 225))
        c.text(4, int(y) - 5, ("%.2f" % yv)[:4])
    c.text(w - R - 60, h - B + 8, str(int(xmax)))
    for s, col in series:
        prev = None
        for x, y in s:
            px = L + (w - R - L) * x / xmax
            py = h - B - (h - B - T) * min(y, ymax) / ymax
            if prev:
                c.line(prev[0], prev[1], px, py, col, 2)
            prev = (px, py)
    with open(path, "wb") as f:
        f.write(c.png())
