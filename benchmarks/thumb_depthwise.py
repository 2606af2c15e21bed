"""DEPTHWISE_CONV_2D on the virtual Pico: every tests/fixtures/ops/dwconv_*
fixture compiled for an ARM board (thumb=True), run in one boot per
backend, each output compared with TFLite Micro's; prints microseconds and
cycles per MAC (MACs = out_h * out_w * out_c * k_h * k_w) from op_us.

    python benchmarks/thumb_depthwise.py [--backends viper,thumb] [--firmware stock]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from host_tools import pico, tflite_import  # noqa: E402
from host_tools.compile import compile_model  # noqa: E402


def reference(path: Path, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro.runtime import Interpreter

    it = Interpreter.from_file(str(path), arena_size=4_000_000)
    it.set_input(x, 0)
    it.invoke()
    return it.get_output(0)


def dw_macs(path: Path) -> int:
    g = tflite_import.load(path)
    n = 0
    for op in g.ops:
        if op.kind == "DEPTHWISE_CONV_2D":
            w, out = g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
            _, k_h, k_w, _ = w.data.shape
            n += int(np.prod(out.shape)) * k_h * k_w
    return n


def model_input(model: Path, seed: int) -> np.ndarray:
    saved = model.with_suffix(".input.npy")
    if saved.exists() and seed == 0:
        return np.load(saved)
    from tflite_micro.python.tflite_micro.runtime import Interpreter

    det = Interpreter.from_file(str(model), arena_size=4_000_000).get_input_details(0)
    return np.random.default_rng(seed).integers(-128, 128, tuple(det["shape"])).astype(np.int8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path,
                    help="tflite files (default: tests/fixtures/ops/dwconv_*.tflite)")
    ap.add_argument("--backends", default="viper,thumb")
    ap.add_argument("--firmware", default="stock")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--budget", type=int, default=None, help="arena budget passed to compile_model")
    a = ap.parse_args()
    models = a.models or sorted((REPO / "tests" / "fixtures" / "ops").glob("dwconv_*.tflite"))
    tmp = Path(tempfile.mkdtemp(prefix="dwbench-"))
    jobs, meta = [], []
    for backend in a.backends.split(","):
        for i, model in enumerate(models):
            out = tmp / f"{model.stem}.tsb"
            if not out.exists():
                compile_model(model, out, a.budget, thumb=True)
            if i == 0:  # warm-up: the first run of a backend also imports its kernel modules
                jobs.append(pico.Job(out, model_input(model, 0), backend, timed=True))
                meta.append(None)
            for seed in range(a.seeds):
                x = model_input(model, seed)
                jobs.append(pico.Job(out, x, backend, timed=True))
                meta.append((backend, model, seed, x))
    results = pico.run_jobs(jobs, a.firmware)
    bad = 0
    print(f"{'model':26s} {'backend':7s} {'seed':>4s} {'dw MACs':>9s} {'dw us':>9s} {'cyc/MAC':>8s} "
          f"{'total ms':>9s}  exact")
    for m, r in zip(meta, results):
        if m is None:
            continue
        backend, model, seed, x = m
        want = reference(model, x)
        ok = np.array_equal(r["y"], want)
        bad += not ok
        macs = dw_macs(model)
        us = r["op_us"].get("depthwise_conv2d", 0)
        cpm = us * 1e-6 * pico.CLOCK_HZ / macs
        print(f"{model.stem:26s} {r['backend']:7s} {seed:4d} {macs:9d} {us:9d} {cpm:8.1f} {r['latency_ms']:9.1f}  "
              f"{'yes' if ok else 'NO (%d differ)' % int((r['y'] != want).sum())}")
    print("all exact" if not bad else f"{bad} runs differ")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
