"""Blurhash (https://blurha.sh) placeholders, 4x3 components."""

from __future__ import annotations

import math

from PIL import Image

from . import pixels

EDGE = 32  # the long edge of the copy the hash is computed from

_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - i - 1)) % 83] for i in range(length))


def _srgb_to_linear(value: int) -> float:
    v = value / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _linear_to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    return int(v * 12.92 * 255 + 0.5) if v <= 0.0031308 else int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def encode(image: Image.Image, x_components: int = 4, y_components: int = 3) -> str:
    """Encode a blurhash from a small copy of ``image`` (transparency shown on white)."""
    small = pixels.flatten(pixels.resize(image, pixels.fit_long_edge(image.size, EDGE)))
    width, height = small.size
    samples = small.tobytes()
    linear = [_srgb_to_linear(v) for v in range(256)]
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_components)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_components)]
    factors = []
    for j in range(y_components):
        for i in range(x_components):
            r = g = b = 0.0
            for y in range(height):
                row = y * width * 3
                cy = cos_y[j][y]
                for x in range(width):
                    basis = cos_x[i][x] * cy
                    offset = row + 3 * x
                    r += basis * linear[samples[offset]]
                    g += basis * linear[samples[offset + 1]]
                    b += basis * linear[samples[offset + 2]]
            scale = (1 if i == j == 0 else 2) / (width * height)
            factors.append((r * scale, g * scale, b * scale))

    dc, ac = factors[0], factors[1:]
    result = _base83((x_components - 1) + (y_components - 1) * 9, 1)
    max_ac = max((abs(c) for factor in ac for c in factor), default=0.0)
    quantised_max = max(0, min(82, math.floor(max_ac * 166 - 0.5)))
    ac_scale = (quantised_max + 1) / 166
    result += _base83(quantised_max, 1)
    red, green, blue = (_linear_to_srgb(c) for c in dc)
    result += _base83((red << 16) + (green << 8) + blue, 4)
    for factor in ac:
        quantised = [
            max(0, min(18, math.floor(math.copysign(abs(c / ac_scale) ** 0.5, c) * 9 + 9.5))) for c in factor
        ]
        result += _base83(quantised[0] * 19 * 19 + quantised[1] * 19 + quantised[2], 2)
    return result
