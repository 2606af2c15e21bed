"""The bundles the property tests and benchmarks/fuzz_bundles.py mutate:
small fixtures compiled whole, spilling and band-streamed, so that every
device op and every section kind is in at least one of them."""
from __future__ import annotations

import random
from pathlib import Path

from host_tools.compile import compile_model

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# (fixture, budget): None is the unconstrained plan.
BASES = (
    ("ops_zoo_b", None),  # conv, pad, avg pool, mean, add, softmax, dequantize, copy
    ("ops_zoo_b", 984),  # band-streamed: feed, drain, banded conv/mean/pool
    ("ops_zoo_a", 27360),  # spills its input; CONCATENATION fetches it row by row
    ("ops_zoo_a", 12000),  # streamed with a spill slot: spill, fetch, resize, dwconv, mul
    ("ops/mini_unet_skip", 10752),  # a spilled skip read back by concat_conv2d
    ("ops/mini_unet_skip", 3000),  # streamed U-Net
    ("ops/softmax", None),  # a compressed blob
    ("ops/tconv_3x3_s2_same", None),
    ("ops/transpose_wild_hw", None),
    ("ops/resize_bilinear_wild_2x", None),
    ("ops/sub_wild_pool", None),
    ("ops/dequantize_i8", None),
    ("ops/arg_max_wild_classes", None),
    ("ops/hard_swish_wild_narrow", None),
    ("ops/concatenation_ew_3in", None),
)


def build(out_dir: Path, bases=BASES) -> list[dict]:
    """Compile each base into out_dir; returns dicts with path, data (the
    bundle's bytes), inp (seeded random input bytes) and ref (the numpy
    backend's output on it)."""
    import tinyseg_mp

    out = []
    for i, (name, budget) in enumerate(bases):
        path = out_dir / f"base{i}.tsb"
        compile_model(FIXTURES / f"{name}.tflite", path, budget)
        m = tinyseg_mp.load(str(path), "numpy", str(path) + ".spill")
        rng = random.Random(i)
        inp = bytes(rng.randrange(256) for _ in range(m.meta["in_bytes"]))
        ref = bytes(m.run(inp))
        m.close()
        (out_dir / f"base{i}.in").write_bytes(inp)
        (out_dir / f"base{i}.ref").write_bytes(ref)
        out.append({"name": f"{name}@{budget}", "path": path, "data": path.read_bytes(), "inp": inp, "ref": ref,
                    "in_path": out_dir / f"base{i}.in", "ref_path": out_dir / f"base{i}.ref"})
    return out
