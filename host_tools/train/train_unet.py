"""Train the bundled model: the paper's Tiny U-Net on the generated dataset.

    python -m host_tools.train.train_unet --out host_tools/models/tiny_unet_seg.tflite

Needs the `train` extra (TensorFlow). Trains on samples of host_tools.train.dataset
(seed 0), quantises full-integer with uint8 input and output, then measures
pixel accuracy and IoU on a held-out set (seed 1) with this project's own
runtime, and checks that its masks equal TFLite Micro's. Writes the model, a
few sample images with their masks, and a JSON report next to the model.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .dataset import generate

MASK_THRESHOLD = 128  # uint8 sigmoid output: 128 is probability 0.5


def evaluate(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Pixel accuracy and IoU of `predict` (uint8 image HxWx3 -> uint8 HxW output) over a set."""
    inter = union = correct = 0
    for img, truth in zip(images, masks):
        pred = predict(img) >= MASK_THRESHOLD
        t = truth.astype(bool)
        inter += int((pred & t).sum())
        union += int((pred | t).sum())
        correct += int((pred == t).sum())
    return {"pixel_accuracy": correct / masks.size, "iou": inter / max(union, 1),
            "all_background_accuracy": float(1 - masks.mean())}


def ours_predictor(model_path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """Our host runtime (CPython + numpy) on a bundle compiled from the model."""
    from host_tools.compile import compile_model

    import tinyseg_mp

    bundle = Path(tempfile.mkdtemp()) / "model.tsb"
    compile_model(model_path, bundle)
    m = tinyseg_mp.load(str(bundle), "numpy")
    return lambda img: np.frombuffer(m.run(img.tobytes()), np.uint8).reshape(img.shape[:2]).copy()


def tflm_predictor(model_path: Path) -> Callable[[np.ndarray], np.ndarray]:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(model_path), arena_size=2_000_000)

    def predict(img: np.ndarray) -> np.ndarray:
        interp.set_input(img[None], 0)
        interp.invoke()
        return interp.get_output(0).reshape(img.shape[:2])

    return predict


def train(n_train: int, epochs: int, batch: int, progress: Callable[[str], None]):
    import tensorflow as tf

    from .models import build_tiny_unet

    tf.keras.utils.set_random_seed(0)
    progress(f"generating {n_train} training samples ...")
    images, masks = generate(n_train, seed=0)
    x = images.astype(np.float32) / 255.0
    y = masks[..., None].astype(np.float32)
    model = build_tiny_unet(batch_size=None)
    model.compile(optimizer=tf.keras.optimizers.Adam(2e-3), loss="binary_crossentropy",
                  metrics=[tf.keras.metrics.BinaryIoU(target_class_ids=[1], name="iou")])
    progress(f"training {model.count_params():,d} parameters for {epochs} epochs ...")
    model.fit(x, y, batch_size=batch, epochs=epochs, validation_split=0.05, verbose=2)
    return model, images


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="host_tools/models/tiny_unet_seg.tflite", help="the .tflite to write")
    ap.add_argument("--train", type=int, default=4000, help="training samples (default 4000)")
    ap.add_argument("--epochs", type=int, default=8, help="epochs (default 8)")
    ap.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    ap.add_argument("--test", type=int, default=200, help="held-out samples for the report (default 200)")
    args = ap.parse_args(argv)
    progress = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731

    import tensorflow as tf

    from .tflite_tools import convert_int8

    t0 = time.time()
    model, images = train(args.train, args.epochs, args.batch, progress)
    train_s = time.time() - t0
    progress("quantising (uint8 in/out, int8 inside) ...")
    calib = images[:200].astype(np.float32) / 255.0
    tflite = convert_int8(model, lambda: ([c[None]] for c in calib), tf.uint8, tf.uint8)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(tflite)

    progress(f"evaluating on {args.test} held-out samples (seed 1) ...")
    test_images, test_masks = generate(args.test, seed=1)
    ours = evaluate(ours_predictor(out), test_images, test_masks)
    ref_predict, our_predict = tflm_predictor(out), ours_predictor(out)
    same = all(np.array_equal(ref_predict(i), our_predict(i)) for i in test_images[:20])
    samples, sample_masks = generate(4, seed=2)
    np.save(out.with_name("samples.npy"), samples)
    np.save(out.with_name("sample_masks.npy"), sample_masks)
    report = {"model": out.name, "bytes": len(tflite), "train_samples": args.train, "epochs": args.epochs,
              "train_seconds": round(train_s, 1), "held_out": args.test, "held_out_seed": 1,
              "ours": {k: round(v, 4) for k, v in ours.items()},
              "ours_equal_tflm_on_20_samples": same}
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
