"""Synthetic binary segmentation data (numpy only; no TensorFlow needed).

Each sample is an 80x120x3 uint8 image and an 80x120 uint8 mask (1 = target).
Targets are shapes (ellipses, polygons, blobs, stars) whose colour lies in one
consistent family (saturated red-orange hues) with a texture (flat, stripes,
checker, noise) on top. Backgrounds are textured in other colour families and
carry distractor shapes of every kind, but never in the target colour family.
Lighting (gain, gradient, spotlight) and sensor noise vary per image. Objects
may overlap; the mask is the visible part of the targets.

Sample ``i`` of seed ``s`` depends only on ``(s, i)``, not on how many samples
are generated at once.
"""

from __future__ import annotations

import numpy as np

HEIGHT, WIDTH = 80, 120
SHAPES: tuple[str, ...] = ("ellipse", "polygon", "blob", "star")
TEXTURES: tuple[str, ...] = ("flat", "stripes", "checker", "noise")
# Target colour family: hue within +-TARGET_HUE_HALF_WIDTH of red-orange, saturated.
TARGET_HUE_CENTRE = 10.0 / 360.0
TARGET_HUE_HALF_WIDTH = 20.0 / 360.0


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (all in [0, 1]) to RGB in [0, 1]; returns shape (..., 3)."""
    h = np.asarray(h, np.float64) % 1.0
    s, v = np.asarray(s, np.float64), np.asarray(v, np.float64)
    i = np.floor(h * 6.0).astype(int) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros(np.broadcast(h, s, v).shape + (3,))
    for k, (r, g, b) in enumerate(choices):
        sel = i == k
        out[..., 0] = np.where(sel, r, out[..., 0])
        out[..., 1] = np.where(sel, g, out[..., 1])
        out[..., 2] = np.where(sel, b, out[..., 2])
    return out


def _target_hsv(rng: np.random.Generator) -> tuple[float, float, float]:
    h = TARGET_HUE_CENTRE + rng.uniform(-TARGET_HUE_HALF_WIDTH, TARGET_HUE_HALF_WIDTH)
    return h, rng.uniform(0.65, 1.0), rng.uniform(0.55, 1.0)


def _other_hsv(rng: np.random.Generator) -> tuple[float, float, float]:
    """A colour outside the target family: another hue band, or a grey/brownish low-saturation tone."""
    if rng.random() < 0.25:
        return rng.uniform(0, 1), rng.uniform(0.0, 0.2), rng.uniform(0.15, 0.95)
    h = rng.uniform(70.0, 300.0) / 360.0  # yellow-green .. magenta, well away from red-orange
    return h, rng.uniform(0.3, 1.0), rng.uniform(0.2, 0.95)


def texture(rng: np.random.Generator, kind: str, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """A pattern in [0, 1] on the pixel grid (``flat`` is all ones)."""
    if kind == "flat":
        return np.ones_like(yy)
    if kind == "stripes":
        a = rng.uniform(0, np.pi)
        period = rng.uniform(4, 14)
        u = xx * np.cos(a) + yy * np.sin(a)
        return 0.5 + 0.5 * np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi))
    if kind == "checker":
        a = rng.uniform(0, np.pi / 2)
        cell = rng.uniform(3, 10)
        u = xx * np.cos(a) + yy * np.sin(a)
        v = -xx * np.sin(a) + yy * np.cos(a)
        return ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float64)
    if kind == "noise":
        cell = int(rng.integers(3, 9))
        coarse = rng.random((HEIGHT // cell + 2, WIDTH // cell + 2))
        ys, xs = yy / cell, xx / cell
        y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
        fy, fx = ys - y0, xs - x0
        smooth = (
            coarse[y0, x0] * (1 - fy) * (1 - fx)
            + coarse[y0 + 1, x0] * fy * (1 - fx)
            + coarse[y0, x0 + 1] * (1 - fy) * fx
            + coarse[y0 + 1, x0 + 1] * fy * fx
        )
        return np.clip(0.8 * smooth + 0.2 * rng.random(yy.shape), 0, 1)
    raise ValueError(kind)


def _polygon_mask(px: np.ndarray, py: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Even-odd rule point-in-polygon for pixel centres."""
    inside = np.zeros(yy.shape, bool)
    n = len(px)
    for k in range(n):
        x1, y1, x2, y2 = px[k], py[k], px[(k + 1) % n], py[(k + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > yy) != (y2 > yy)
        xint = x1 + (yy - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (xx < xint)
    return inside


def shape_mask(rng: np.random.Generator, kind: str, yy: np.ndarray, xx: np.ndarray, scale: float) -> np.ndarray:
    """Boolean mask of one random shape of ``kind`` with a typical radius ``scale`` pixels."""
    cy, cx = rng.uniform(-0.1, 1.1) * HEIGHT, rng.uniform(-0.1, 1.1) * WIDTH
    rot = rng.uniform(0, 2 * np.pi)
    dy, dx = yy - cy, xx - cx
    if kind == "ellipse":
        a, b = scale * rng.uniform(0.6, 1.4), scale * rng.uniform(0.35, 1.0)
        u = dx * np.cos(rot) + dy * np.sin(rot)
        v = -dx * np.sin(rot) + dy * np.cos(rot)
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    if kind in ("polygon", "star"):
        if kind == "polygon":
            n = int(rng.integers(3, 8))
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            rad = scale * rng.uniform(0.6, 1.3, n)
        else:
            n = int(rng.integers(4, 8)) * 2
            ang = np.arange(n) * 2 * np.pi / n
            rad = np.where(np.arange(n) % 2 == 0, scale * 1.2, scale * rng.uniform(0.35, 0.6))
        ang = ang + rot
        return _polygon_mask(cx + rad * np.cos(ang), cy + rad * np.sin(ang), yy, xx)
    if kind == "blob":
        theta = np.arctan2(dy, dx)
        r = np.ones_like(theta)
        for k in range(2, 6):
            r += rng.uniform(0, 0.25) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        return np.hypot(dy, dx) <= scale * r
    raise ValueError(kind)


def _paint(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, hsv: tuple[float, float, float],
           yy: np.ndarray, xx: np.ndarray) -> None:
    """Fill ``mask`` with a textured colour: the texture varies brightness (and a little saturation)."""
    h, s, v = hsv
    tex = texture(rng, TEXTURES[rng.integers(len(TEXTURES))], yy, xx)[mask]
    depth = rng.uniform(0.25, 0.6)
    vv = v * (1 - depth + depth * tex)
    ss = np.clip(s * (1 - 0.2 * depth * (1 - tex)), 0, 1)
    img[mask] = hsv_to_rgb(np.full_like(vv, h), ss, vv)


def make_sample(seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One (image uint8 HxWx3, mask uint8 HxW) pair, determined by (seed, index)."""
    rng = np.random.default_rng([seed, index])
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64) + 0.5
    img = np.zeros((HEIGHT, WIDTH, 3))
    # background: one or two textured layers in non-target colours
    _paint(img, np.ones((HEIGHT, WIDTH), bool), rng, _other_hsv(rng), yy, xx)
    if rng.random() < 0.5:
        half = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1) + rng.uniform(-60, 60)) > 0
        _paint(img, half, rng, _other_hsv(rng), yy, xx)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    n_targets = int(rng.integers(0, 4)) if rng.random() < 0.1 else int(rng.integers(1, 4))
    n_distract = int(rng.integers(2, 8))
    order = rng.permutation([True] * n_targets + [False] * n_distract)
    for is_target in order:
        kind = SHAPES[rng.integers(len(SHAPES))]
        m = shape_mask(rng, kind, yy, xx, scale=rng.uniform(6, 22))
        _paint(img, m, rng, _target_hsv(rng) if is_target else _other_hsv(rng), yy, xx)
        mask = (mask | m) if is_target else (mask & ~m)
    # lighting: global gain, linear gradient, optional spotlight
    gain = rng.uniform(0.6, 1.25)
    grad = 1 + rng.uniform(-0.3, 0.3) * (xx / WIDTH - 0.5) + rng.uniform(-0.3, 0.3) * (yy / HEIGHT - 0.5)
    light = gain * grad
    if rng.random() < 0.4:
        sy, sx, sr = rng.uniform(0, HEIGHT), rng.uniform(0, WIDTH), rng.uniform(15, 50)
        light = light * (1 + rng.uniform(0.1, 0.4) * np.exp(-((yy - sy) ** 2 + (xx - sx) ** 2) / (2 * sr * sr)))
    img = img * light[..., None]
    img = img + rng.normal(0, rng.uniform(0.0, 0.05), img.shape)
    image = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    return image, mask.astype(np.uint8)


def generate(n: int, seed: int = 0, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Samples ``start .. start+n-1`` of ``seed``: images (Nx80x120x3 uint8), masks (Nx80x120 uint8)."""
    images = np.empty((n, HEIGHT, WIDTH, 3), np.uint8)
    masks = np.empty((n, HEIGHT, WIDTH), np.uint8)
    for i in range(n):
        images[i], masks[i] = make_sample(seed, start + i)
    return images, masks


if __name__ == "__main__":
    import argparse
    import time

    ap = argparse.ArgumentParser(description="Generate synthetic segmentation samples into an .npz file.")
    ap.add_argument("out", help="output .npz (arrays 'images' and 'masks')")
    ap.add_argument("-n", type=int, default=16, help="number of samples (default 16)")
    ap.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    args = ap.parse_args()
    t0 = time.time()
    ims, mks = generate(args.n, args.seed)
    np.savez_compressed(args.out, images=ims, masks=mks)
    print(f"wrote {args.n} samples to {args.out} in {time.time() - t0:.1f}s; target fraction {mks.mean():.3f}")
