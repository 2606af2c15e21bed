"""Build the int8 .tflite test fixtures: the TinySeg Tiny U-Net and two ops-zoo models.

Usage: ``python -m host_tools.train.fixtures tests/fixtures``

For each model this writes ``<name>.tflite`` (full-integer int8, converted by
TensorFlow's converter with per-channel weights), ``<name>.input.npy`` (one
deterministic input of the model's input dtype and shape) and
``<name>.tflm_output.npy`` (TFLite Micro's output for that input), then
``fixtures.json`` and ``README.md`` with the op histograms and the arena sizes
that TFLite Micro's ``print_allocations`` reported.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REQUIRED_OPS: frozenset[str] = frozenset(
    """CONV_2D DEPTHWISE_CONV_2D TRANSPOSE_CONV MAX_POOL_2D AVERAGE_POOL_2D CONCATENATION
    ADD MUL PAD RESHAPE QUANTIZE DEQUANTIZE LOGISTIC SOFTMAX RELU RELU6 LEAKY_RELU
    RESIZE_NEAREST_NEIGHBOR FULLY_CONNECTED MEAN""".split()
)
REQUIRED_FUSED: frozenset[str] = frozenset({"CONV_2D+RELU", "CONV_2D+RELU6", "ADD+RELU"})
SHAPE_CHAIN_OPS: frozenset[str] = frozenset({"SHAPE", "STRIDED_SLICE", "PACK"})
SEED = 1234


def log(msg: str) -> None:
    """Progress message to stdout."""
    print(f"[fixtures] {msg}", flush=True)


def synthetic_images(rng: np.random.Generator, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Simple synthetic scenes in [0, 1] (NxHxWx3 float32) and a binary mask of the discs.

    Smooth colour gradient background, a few coloured rectangles (clutter) and
    discs (the "objects"), plus pixel noise. Every image holds exact 0 and 1
    values so that calibrated input ranges are the full [0, 1].
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    imgs = np.empty((n, h, w, 3), np.float32)
    masks = np.zeros((n, h, w, 1), np.float32)
    for i in range(n):
        c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        t = (xx / w * rng.uniform(-1, 1) + yy / h * rng.uniform(-1, 1)) % 1.0
        img = c0 + (c1 - c0) * t[..., None]
        for _ in range(rng.integers(1, 4)):
            y0, x0 = rng.integers(0, h - 2), rng.integers(0, w - 2)
            img[y0 : y0 + rng.integers(2, h // 2), x0 : x0 + rng.integers(2, w // 2)] = rng.uniform(0, 1, 3)
        for _ in range(rng.integers(1, 3)):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(h / 10, h / 4)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            img[disc] = rng.uniform(0.6, 1.0, 3) * np.array([1.0, 0.3, 0.3])
            masks[i, disc, 0] = 1.0
        img = img + rng.normal(0, 0.04, img.shape)
        img[0, 0], img[0, 1] = 0.0, 1.0
        imgs[i] = np.clip(img, 0.0, 1.0)
    return imgs, masks


def representative(images: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Representative dataset callable for the converter (one image per sample)."""

    def gen() -> Iterator[list[np.ndarray]]:
        for i in range(images.shape[0]):
            yield [images[i : i + 1].astype(np.float32)]

    return gen


def quantize_input(x: np.ndarray, model_bytes: bytes) -> np.ndarray:
    """Quantise a float input (with batch dim) with the model's input scale/zero point."""
    import tflite

    types = {tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT8: np.int8}
    m = tflite.Model.GetRootAsModel(model_bytes, 0)
    sg = m.Subgraphs(0)
    t = sg.Tensors(sg.Inputs(0))
    q = t.Quantization()
    scale, zp = float(q.ScaleAsNumpy()[0]), int(q.ZeroPointAsNumpy()[0])
    dtype = types[t.Type()]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zp, info.min, info.max).astype(dtype)


def calibrate_batchnorm(model: Any, images: np.ndarray) -> None:
    """Set every BatchNorm's moving mean/variance to the statistics of ``images``."""
    from keras import layers

    bns = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0
    model(images, training=True)
    for bn, mom in zip(bns, saved):
        bn.momentum = mom


def make_tiny_unet(rng: np.random.Generator, steps: int) -> tuple[Any, np.ndarray]:
    """Tiny U-Net (dynamic batch) trained for a few steps on synthetic discs; BN calibrated."""
    import keras

    from host_tools.train.models import UNET_INPUT_SHAPE, build_tiny_unet

    h, w, _ = UNET_INPUT_SHAPE
    model = build_tiny_unet(batch_size=None)
    imgs, masks = synthetic_images(rng, 64, h, w)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    log(f"tiny_unet: {model.count_params()} params, {steps} training steps on synthetic discs")
    for step in range(steps):
        idx = rng.choice(len(imgs), 8, replace=False)
        loss = model.train_on_batch(imgs[idx], masks[idx])
        if step % 10 == 0 or step == steps - 1:
            log(f"  step {step:3d} loss {float(np.asarray(loss)):.4f}")
    calibrate_batchnorm(model, imgs[:32])
    return model, imgs


def make_zoo(name: str, rng: np.random.Generator) -> tuple[Any, np.ndarray]:
    """One ops-zoo model (random weights) and its representative images in [-1, 1]."""
    from host_tools.train.models import build_ops_zoo_a, build_ops_zoo_b

    model = build_ops_zoo_a() if name == "ops_zoo_a" else build_ops_zoo_b()
    _, h, w, _ = model.input_shape
    imgs, _ = synthetic_images(rng, 32, h, w)
    return model, imgs * 2.0 - 1.0


def tflite_reference(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Output of TensorFlow's own TFLite interpreter (reference kernels) for ``x``."""
    import tensorflow as tf

    interp = tf.lite.Interpreter(
        model_content=model_bytes,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
    )
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def format_readme(records: list[dict[str, Any]], union: Counter[str]) -> str:
    """Markdown summary of the fixtures."""
    lines = [
        "# Test fixtures",
        "",
        "Generated by `python -m host_tools.train.fixtures tests/fixtures` (TensorFlow "
        "converter, full-integer int8, per-channel weights; fixed seeds). Do not edit by hand.",
        "",
        "Per model: `<name>.tflite`, `<name>.input.npy` (one input, model input dtype and shape), "
        "`<name>.tflm_output.npy` (TFLite Micro output for that input). `fixtures.json` holds the "
        "same data as this file in machine-readable form.",
        "",
        "Arena numbers: TFLite Micro Python interpreter (`tflite-micro` wheel), "
        "`Interpreter.from_file(path, arena_size=2_000_000)`, one `invoke()`, then "
        "`print_allocations()` (RecordingMicroAllocator, 'Arena allocation head/tail/total').",
        "",
    ]
    for r in records:
        q = r["io"]
        lines += [
            f"## {r['name']}.tflite",
            "",
            r["description"],
            "",
            "| property | value |",
            "| --- | --- |",
            f"| file size | {r['file_size']} bytes ({r['file_size'] / 1024:.1f} KiB) |",
            f"| parameters (Keras) | {r['params']} |",
            f"| input | {q['input']['shape']} (signature {q['input']['signature']}) {q['input']['dtype']}, "
            f"scale {r['input_quant'][0]:.8g}, zero point {r['input_quant'][1]} |",
            f"| output | {q['output']['shape']} (signature {q['output']['signature']}) {q['output']['dtype']} |",
            f"| TFLM arena head | {r['arena']['head']} bytes |",
            f"| TFLM arena tail | {r['arena']['tail']} bytes |",
            f"| TFLM arena total | {r['arena']['total']} bytes |",
            f"| operators | {sum(r['ops'].values())} |",
            f"| max abs diff TFLM vs TF's TFLite interpreter (reference kernels) | {r.get('max_abs_diff_vs_tflite')} |",
            "",
            "Op histogram: " + ", ".join(f"{k} x{v}" for k, v in sorted(r["ops"].items())),
            "",
            "Fused activations: " + (", ".join(f"{k} x{v}" for k, v in sorted(r["fused"].items())) or "none"),
            "",
            "Op order: " + " ".join(r["op_order"]),
            "",
        ]
    lines += [
        "## Notes",
        "",
        "- Only the files listed above come from this script; other files in this directory "
        "(e.g. `unsupported_ops.tflite`) are made elsewhere.",
        "- tiny_unet: each TRANSPOSE_CONV takes its output shape from a SHAPE -> STRIDED_SLICE (batch "
        "dim) -> PACK chain and has an int32 bias (4th input); each PAD has constant all-zero paddings "
        "(the diffY/diffX computation folds since H and W are static), so the PADs are identity copies. "
        "The arena head is set by the last TRANSPOSE_CONV: input 40x60x16 + skip 80x120x8 + output "
        "80x120x4 + TFLM's int32 scratch for the whole output (153,600 B) = 307,200 B.",
        "- ops_zoo_a: the QUANTIZE is an int8 -> int8 requantise of the `gate` LOGISTIC output (fixed "
        "scale 1/256) to the CONCATENATION's common scale. The RELU6 is followed by a conv, not the "
        "concat: TFLite Micro's int8 RELU6 only clamps (assumes equal input/output scales) whereas TFLite's "
        "reference kernel rescales, and a concat-imposed output scale made them disagree.",
        "- ops_zoo_b: the second FULLY_CONNECTED output is RESHAPEd to [5] and ADDed to a [1, 5] tensor "
        "(broadcast add).",
        "",
        "## Coverage",
        "",
        "Union of all fixtures: " + ", ".join(f"{k} x{v}" for k, v in sorted(union.items())),
        "",
        "Required ops all present: " + ", ".join(sorted(REQUIRED_OPS)) + ".",
        "Required fused activations present: " + ", ".join(sorted(REQUIRED_FUSED)) + ".",
        "",
    ]
    return "\n".join(lines)


def input_quant(model_bytes: bytes) -> tuple[float, int]:
    """Scale and zero point of input 0."""
    import tflite

    m = tflite.Model.GetRootAsModel(model_bytes, 0)
    sg = m.Subgraphs(0)
    q = sg.Tensors(sg.Inputs(0)).Quantization()
    return float(q.ScaleAsNumpy()[0]), int(q.ZeroPointAsNumpy()[0])


DESCRIPTIONS: dict[str, str] = {
    "tiny_unet": (
        "TinySeg paper's Tiny U-Net (80x120x3 uint8 in, 80x120x1 uint8 out, int8 inside). Dynamic batch "
        "in the Keras model, so each decoder stage keeps a SHAPE -> STRIDED_SLICE -> PACK chain (the "
        "transpose conv's run-time output shape) and a PAD (to the skip size; constant zero paddings "
        "after shape folding). BatchNorm folded into the convs after a short training run on "
        "synthetic discs plus a BN statistics calibration; weights are not meaningful for segmentation."
    ),
    "ops_zoo_a": (
        "Image-to-image ops zoo, 24x24x3 int8 in/out, random weights: depthwise conv, add with fused "
        "ReLU, squeeze-excite (MEAN -> 1x1 convs -> LOGISTIC -> broadcast MUL), max/avg pool, leaky ReLU, "
        "same-shape MUL, nearest upsampling, standalone RELU6 and RELU, concat of differently quantised "
        "inputs (QUANTIZE requantise ops on its inputs)."
    ),
    "ops_zoo_b": (
        "Classifier ops zoo, 16x16x3 int8 in, float32 out (final DEQUANTIZE), random weights: conv with "
        "fused RELU6, PAD, strided conv, MEAN over H,W, avg pool -> RESHAPE -> FULLY_CONNECTED, ADD of "
        "logits, SOFTMAX."
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(
        prog="python -m host_tools.train.fixtures",
        description="Build int8 .tflite fixture models (Tiny U-Net, ops zoo), check them in TFLite Micro, "
        "and write them with sample inputs and a README into OUTDIR.",
    )
    ap.add_argument("outdir", type=Path, help="output directory, e.g. tests/fixtures")
    ap.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    ap.add_argument("--unet-steps", type=int, default=40, help="training steps for the U-Net fixture (default 40)")
    ap.add_argument("--skip-tflm", action="store_true", help="do not run TFLite Micro (no arena numbers)")
    args = ap.parse_args(argv)

    import keras
    import tensorflow as tf

    from host_tools.train import tflite_tools as tt

    args.outdir.mkdir(parents=True, exist_ok=True)
    tf.config.experimental.enable_op_determinism()
    records: list[dict[str, Any]] = []
    union: Counter[str] = Counter()
    fused_union: Counter[str] = Counter()
    specs = [
        ("tiny_unet", tf.uint8, tf.uint8),
        ("ops_zoo_a", tf.int8, tf.int8),
        ("ops_zoo_b", tf.int8, tf.float32),
    ]
    for k, (name, in_type, out_type) in enumerate(specs):
        t0 = time.time()
        keras.utils.set_random_seed(args.seed + k)
        rng = np.random.default_rng(args.seed + k)
        if name == "tiny_unet":
            model, imgs = make_tiny_unet(rng, args.unet_steps)
        else:
            model, imgs = make_zoo(name, rng)
            log(f"{name}: {model.count_params()} params")
        log(f"{name}: converting (input {in_type.name}, output {out_type.name})")
        data = tt.convert_int8(model, representative(imgs[:24]), in_type, out_type)
        path = args.outdir / f"{name}.tflite"
        path.write_bytes(data)
        ops, fused = tt.op_histogram(data), tt.fused_activations(data)
        union.update(ops)
        fused_union.update(fused)
        order = tt.op_list(data)
        log(f"{name}: {len(data)} bytes, ops {dict(sorted(ops.items()))}")
        log(f"{name}: fused activations {dict(sorted(fused.items()))}")
        extra = set(ops) - REQUIRED_OPS - (SHAPE_CHAIN_OPS if name == "tiny_unet" else set())
        if extra:
            raise SystemExit(f"{name}: unexpected ops {sorted(extra)}")
        x = quantize_input(imgs[-1:], data)
        np.save(args.outdir / f"{name}.input.npy", x)
        rec: dict[str, Any] = {
            "name": name,
            "description": DESCRIPTIONS[name],
            "file_size": len(data),
            "params": int(model.count_params()),
            "io": tt.io_details(data),
            "input_quant": input_quant(data),
            "ops": dict(ops),
            "fused": dict(fused),
            "op_order": order,
            "arena": {"head": None, "tail": None, "total": None},
        }
        if not args.skip_tflm:
            res = tt.tflm_measure(path, x)
            y = res["output"]
            np.save(args.outdir / f"{name}.tflm_output.npy", y)
            rec["arena"] = res["arena"]
            ref = tflite_reference(data, x)
            diff = np.abs(y.astype(np.float64) - ref.astype(np.float64)).max()
            rec["max_abs_diff_vs_tflite"] = float(diff)
            log(f"{name}: max |TFLM - TFLite interpreter| = {diff}")
            if diff > (1.0 if np.issubdtype(y.dtype, np.integer) else 0.01):
                raise SystemExit(f"{name}: TFLite Micro and TFLite disagree (max abs diff {diff})")
            log(f"{name}: TFLM ok, output {y.shape} {y.dtype} range [{y.min()}, {y.max()}], arena {res['arena']}")
        records.append(rec)
        log(f"{name}: done in {time.time() - t0:.1f}s")

    if name_missing := sorted(REQUIRED_OPS - set(union)):
        raise SystemExit(f"required ops not covered: {name_missing}")
    if fused_missing := sorted(REQUIRED_FUSED - set(fused_union)):
        raise SystemExit(f"required fused activations not covered: {fused_missing}")
    log(f"coverage ok: {len(REQUIRED_OPS)} required ops, fused {sorted(fused_union)}")
    import json

    (args.outdir / "fixtures.json").write_text(json.dumps(records, indent=1) + "\n")
    (args.outdir / "README.md").write_text(format_readme(records, union))
    log(f"wrote {args.outdir}/README.md and fixtures.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
