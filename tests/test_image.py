"""tinyseg_mp.image: frame conversion, mask overlay, BMP and ASCII, against
numpy references on CPython, and the same results from the viper code in the
MicroPython unix port."""
from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tinyseg_mp.ops  # noqa: F401  (installs the viper shims on CPython)
from host_tools.demo import tint
from tinyseg_mp import image

REPO = Path(__file__).resolve().parent.parent
SIZES = [(160, 120, 120, 80), (120, 80, 120, 80), (96, 96, 120, 80), (37, 23, 120, 80), (320, 240, 40, 30), (5, 7, 9, 3)]


def nearest(img: np.ndarray, dw: int, dh: int) -> np.ndarray:
    sh, sw = img.shape[:2]
    ys = ((2 * np.arange(dh) + 1) * sh) // (2 * dh)
    xs = ((2 * np.arange(dw) + 1) * sw) // (2 * dw)
    return img[ys][:, xs]


def frame_bytes(rgb: np.ndarray, fmt: int) -> tuple[bytes, np.ndarray]:
    """A frame in format fmt, and the RGB888 image the device should see in it."""
    if fmt == image.RGB888:
        return rgb.tobytes(), rgb
    if fmt == image.GRAY:
        return rgb[..., 1].tobytes(), np.repeat(rgb[..., 1:2], 3, -1)
    r5, g6, b5 = (rgb[..., 0] >> 3).astype(np.uint16), (rgb[..., 1] >> 2).astype(np.uint16), (rgb[..., 2] >> 3).astype(np.uint16)
    v = (r5 << 11) | (g6 << 5) | b5
    seen = np.stack([(r5 << 3) | (r5 >> 2), (g6 << 2) | (g6 >> 4), (b5 << 3) | (b5 >> 2)], -1).astype(np.uint8)
    return v.astype(">u2" if fmt == image.RGB565 else "<u2").tobytes(), seen


@pytest.mark.parametrize("fmt", [image.RGB565, image.RGB565_LE, image.GRAY, image.RGB888])
@pytest.mark.parametrize("sw,sh,dw,dh", SIZES)
def test_convert_is_nearest_resize(fmt, sw, sh, dw, dh):
    rng = np.random.default_rng(sw * 7 + fmt)
    src, seen = frame_bytes(rng.integers(0, 256, (sh, sw, 3), dtype=np.uint8), fmt)
    want = nearest(seen, dw, dh)
    dst = bytearray(dw * dh * 3)
    image.convert(src, fmt, sw, sh, dst, dw, dh)
    assert (np.frombuffer(dst, np.uint8).reshape(dh, dw, 3) == want).all()
    # int8 models: the same values minus 128
    image.convert(src, fmt, sw, sh, dst, dw, dh, flip=0x80)
    assert (np.frombuffer(dst, np.int8).reshape(dh, dw, 3) == want.astype(np.int16) - 128).all()
    # a strip of rows with a padded stride, into a memoryview
    buf = bytearray(4 + 3 * (dw * 3 + 5))
    image.convert(src, fmt, sw, sh, memoryview(buf)[4:], dw, dh, 1, min(4, dh), dw * 3 + 5)
    rows = min(4, dh) - 1
    got = np.frombuffer(buf, np.uint8)[4 : 4 + rows * (dw * 3 + 5)].reshape(rows, dw * 3 + 5)[:, : dw * 3]
    assert (got.reshape(rows, dw, 3) == want[1 : 1 + rows]).all()


def test_convert_checks_buffers():
    with pytest.raises(ValueError, match="frame has"):
        image.convert(bytes(100), image.RGB565, 160, 120, bytearray(120 * 80 * 3), 120, 80)
    with pytest.raises(ValueError, match="too small"):
        image.convert(bytes(160 * 120 * 2), image.RGB565, 160, 120, bytearray(100), 120, 80)


def _bmp(rgb: np.ndarray, mask: np.ndarray | None, mw: int, mh: int, mc: int, flip: int, strip: int) -> bytes:
    """A BMP written strip by strip, as the demo's web server does."""
    h, w = rgb.shape[:2]
    row = (w * 3 + 3) & ~3
    head = bytearray(image.BMP_HEADER)
    size = image.bmp_header(head, w, h)
    buf = bytearray(strip * row)
    parts = [bytes(head)]
    y1 = h
    while y1 > 0:
        y0 = max(0, y1 - strip)
        image.convert(rgb.tobytes(), image.RGB888, w, h, buf, w, h, y0, y1, row)
        if mask is not None:
            image.overlay(buf, w, h, y0, y1, row, mask.tobytes(), mw, mh, mc, flip)
        image.bmp_rows(buf, w, y1 - y0, row)
        parts.append(bytes(buf[: (y1 - y0) * row]))
        y1 = y0
    data = b"".join(parts)
    assert len(data) == size
    return data


@pytest.mark.parametrize("w,h,strip", [(120, 80, 8), (121, 7, 3), (10, 10, 10), (33, 5, 1)])
def test_bmp_decodes_to_the_image(w, h, strip):
    from PIL import Image

    rng = np.random.default_rng(w + h)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    got = np.asarray(Image.open(io.BytesIO(_bmp(rgb, None, 0, 0, 1, 0, strip))).convert("RGB"))
    assert (got == rgb).all()


@pytest.mark.parametrize("mw,mh,mc,flip", [(120, 80, 1, 0), (60, 40, 2, 0), (120, 80, 1, 0x80)])
def test_overlay_tints_mask_pixels(mw, mh, mc, flip):
    from PIL import Image

    w, h = 120, 80
    rng = np.random.default_rng(mw + mc)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.integers(0, 256, (mh, mw, mc), dtype=np.uint8)
    # the overlay's own nearest mapping is floor(y * mh / h)
    on = ((mask[..., -1] ^ flip) > 127)[(np.arange(h) * mh) // h][:, (np.arange(w) * mw) // w]
    got = np.asarray(Image.open(io.BytesIO(_bmp(rgb, mask, mw, mh, mc, flip, 8))).convert("RGB"))
    assert (got == tint(rgb, on)).all()
    assert 0 < on.sum() < on.size
    assert image.count_over(mask.tobytes(), mw * mh, mc, flip) == int(((mask[..., -1] ^ flip) > 127).sum())


def ascii_ref(mask: np.ndarray, cols: int, rows: int) -> str:
    mh, mw = mask.shape
    lines = []
    for r in range(rows):
        ya, yb = r * mh // rows, (r + 1) * mh // rows
        line = ""
        for c in range(cols):
            xa, xb = c * mw // cols, (c + 1) * mw // cols
            hit = int(mask[ya:yb, xa:xb].sum())
            line += "#" if 2 * hit > (yb - ya) * (xb - xa) else "+" if hit else "."
        lines.append(line + "\n")
    return "".join(lines)


def test_ascii_mask():
    yy, xx = np.mgrid[:80, :120]
    on = (yy - 40) ** 2 + (xx - 60) ** 2 < 30**2
    raw = np.where(on, 200, 10).astype(np.uint8)
    text = image.ascii_mask(raw.tobytes(), 120, 80)
    assert text == ascii_ref(on, 60, 20)
    assert text.count("#") > 100 and text.count(".") > 100 and len(text.splitlines()) == 20
    assert image.ascii_mask(bytes(16), 4, 4, cols=60, rows=20) == "....\n" * 4


DEVICE_SCRIPT = r"""
import sys
from tinyseg_mp import image
d = sys.argv[1]
def rd(n):
    with open(d + "/" + n, "rb") as f:
        return f.read()
frame = rd("frame.bin")
mask = rd("mask.bin")
out = bytearray(120 * 80 * 3)
for fmt in range(4):
    image.convert(frame, fmt, 160, 120, out, 120, 80)
    with open(d + "/conv%d.bin" % fmt, "wb") as f:
        f.write(out)
row = 360
buf = bytearray(8 * row)
with open(d + "/overlay.bmp", "wb") as f:
    head = bytearray(54)
    image.bmp_header(head, 120, 80)
    f.write(head)
    y1 = 80
    while y1 > 0:
        y0 = y1 - 8
        image.convert(frame, image.RGB565, 160, 120, buf, 120, 80, y0, y1, row)
        image.overlay(buf, 120, 80, y0, y1, row, mask, 120, 80)
        image.bmp_rows(buf, 120, 8, row)
        f.write(buf)
        y1 = y0
with open(d + "/ascii.txt", "w") as f:
    f.write(image.ascii_mask(mask, 120, 80))
print("count", image.count_over(mask, 9600, 1, 0, 127))
"""


def test_unix_port_gives_the_same_bytes(tmp_path):
    from host_tools.runner import RunError, find_micropython

    try:
        exe = find_micropython()
    except RunError as exc:
        pytest.skip(str(exc))
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, 160 * 120 * 3, dtype=np.uint8).tobytes()  # big enough for every format
    yy, xx = np.mgrid[:80, :120]
    mask = np.where((yy - 30) ** 2 + (xx - 70) ** 2 < 25**2, 255, 3).astype(np.uint8).tobytes()
    (tmp_path / "frame.bin").write_bytes(frame)
    (tmp_path / "mask.bin").write_bytes(mask)
    script = tmp_path / "dev.py"
    script.write_text(DEVICE_SCRIPT)
    res = subprocess.run([exe, str(script), str(tmp_path)], capture_output=True, text=True,
                         env={"MICROPYPATH": f"{REPO}:.frozen"}, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    for fmt in range(4):
        want = bytearray(120 * 80 * 3)
        image.convert(frame, fmt, 160, 120, want, 120, 80)
        assert (tmp_path / f"conv{fmt}.bin").read_bytes() == bytes(want), fmt
    rgb = np.frombuffer(bytes(_conv(frame)), np.uint8).reshape(80, 120, 3)
    m = np.frombuffer(mask, np.uint8).reshape(80, 120, 1)
    assert (tmp_path / "overlay.bmp").read_bytes() == _bmp(rgb, m, 120, 80, 1, 0, 8)
    assert (tmp_path / "ascii.txt").read_text() == image.ascii_mask(mask, 120, 80)
    assert f"count {image.count_over(mask, 9600)}" in res.stdout


def _conv(frame: bytes) -> bytearray:
    out = bytearray(120 * 80 * 3)
    image.convert(frame, image.RGB565, 160, 120, out, 120, 80)
    return out
