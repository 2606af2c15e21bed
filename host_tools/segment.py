"""`tinyseg segment`: one picture of your own (PNG, JPEG, BMP...) through a
bundle on the host runtime, as the board demo does it: resized to the model's
input (nearest pixel centres), run, thresholded, written as a mask PNG and an
overlay PNG.

The mask is the model output's last channel over the midpoint of its 8-bit
range (uint8 > 127; int8 > -1), what boards/common/demo.py decides on the
board (host_tools.demo.mask_of)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .demo import SCALE, _model_input as model_input, mask_of, nearest, tint


def read_picture(path: str | Path) -> np.ndarray:
    """An image file as H x W x 3 uint8 RGB, or a one-line ValueError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder; give a picture file (PNG, JPEG, ...)") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: not a picture this can read (PNG, JPEG, BMP, ...): {exc}") from None


def segment_picture(picture: str | Path, bundle: str | Path, out_dir: str | Path) -> dict:
    """Segment `picture` with `bundle`; writes OUT/<name>_mask.png and
    OUT/<name>_overlay.png (at SCALE times the model's resolution) and
    returns what it wrote and measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .runner import bundle_info, run_bundle

    info = bundle_info(bundle)
    img = read_picture(picture)
    y, stats = run_bundle(bundle, model_input(img, info))
    mask = mask_of(y, info["output"]["dtype"])
    h, w = mask.shape
    rgb = nearest(img, w, h)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(picture).stem
    big = lambda a: np.repeat(np.repeat(a, SCALE, 0), SCALE, 1)  # noqa: E731
    mask_png, overlay_png = out / f"{stem}_mask.png", out / f"{stem}_overlay.png"
    plt.imsave(mask_png, big(mask.astype(np.uint8) * 255), cmap="gray", vmin=0, vmax=255)
    plt.imsave(overlay_png, big(tint(rgb, mask)))
    return {"picture": str(picture), "picture_size": [img.shape[1], img.shape[0]], "model_size": [w, h],
            "mask_fraction": float(mask.mean()), "latency_ms": stats["latency_ms"], "backend": stats["backend"],
            "mask": str(mask_png), "overlay": str(overlay_png)}
