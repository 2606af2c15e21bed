"""`tinyseg bench`: latency, memory and flash figures per model, with ratios.

For the rp2040 board, first the figures measured on the chip: the virtual
Pico (bench_pico), seconds per inference, cycles per MAC per op, free heap.

Figures are measured on this machine, never asserted by tests:
- latency of one inference on each backend (CPython+numpy, CPython+ulab
  stand-in, MicroPython unix port+viper) next to tflite-micro's invoke time;
- TFLite Micro's arena (as tflite-micro reports it), our planned peak without
  and with the memory optimisations, the unix port's measured heap peak;
- with a budget (the board's): spilled bytes written per inference before and
  after compression, and the latency of the spilling bundle against the same
  backend without spills;
- band streaming: for a row of budgets (none, the board's, 64 KB, a fifth of
  TFLite Micro's arena) the plan's peak, its latency in the unix port (viper,
  runtime from .mpy, spill files on littlefs) against the unconstrained plan,
  the flash bytes written per inference, and the runtime's own overhead: the
  smallest heap the run completes in minus the planned arena and the output
  buffer a streamed plan keeps outside it.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import tflite_import
from .boards import load_board
from .compile import BudgetError, compile_model, load_buffers
from .memplan import plan_memory
from .runner import REPO_ROOT, find_min_heap, run_bundle

ULAB_STANDIN = REPO_ROOT / "tests" / "ulab_standin"
_HEAD_RE = re.compile(r"Arena allocation head (\d+) bytes")


def tflm_figures(model: Path, x: np.ndarray, repeats: int) -> tuple[int, float]:
    """(arena head, best invoke ms) from tflite-micro, in a child process (it prints from C++)."""
    code = (
        "import sys, time, numpy as np\n"
        "from tflite_micro.python.tflite_micro import runtime\n"
        "it = runtime.Interpreter.from_file(sys.argv[1], arena_size=8_000_000)\n"
        "x = np.load(sys.argv[2]); best = 1e9\n"
        "for _ in range(int(sys.argv[3])):\n"
        "    it.set_input(x, 0); t = time.perf_counter(); it.invoke(); best = min(best, time.perf_counter() - t)\n"
        "print('INVOKE_MS', best * 1000); it.print_allocations()\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", x)
        res = subprocess.run([sys.executable, "-c", code, str(model), str(Path(tmp) / "x.npy"), str(repeats)],
                             capture_output=True, text=True, check=True)
        out = res.stdout + res.stderr
    invoke = float(re.search(r"INVOKE_MS ([\d.]+)", out).group(1))
    return int(_HEAD_RE.search(out).group(1)), invoke


def _best(fn, repeats: int) -> tuple[float, dict]:
    best, stats = None, {}
    for _ in range(repeats):
        _, s = fn()
        if best is None or s["latency_ms"] < best:
            best, stats = s["latency_ms"], s
    return best, stats


def bench_model(model: Path, board: str, repeats: int, progress=print) -> dict:
    x = np.load(model.with_suffix(".input.npy")) if model.with_suffix(".input.npy").exists() else None
    graph = tflite_import.load(model)
    if x is None:
        t = graph.tensors[graph.inputs[0]]
        x = np.zeros(t.shape, dtype=t.dtype)
    head, invoke_ms = tflm_figures(model, x, repeats)
    row = {"model": model.stem, "tflm_arena_bytes": head, "tflm_invoke_ms": invoke_ms,
           "unoptimized_peak_bytes": plan_memory(graph).peak}
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "plain.tsb"
        row["optimized_peak_bytes"] = compile_model(model, plain).plan.peak
        sys.path.insert(0, str(ULAB_STANDIN))
        try:
            for runtime, backend in (("cpython", "numpy"), ("cpython", "ulab"), ("micropython", "viper")):
                progress(f"  {model.stem}: {runtime}/{backend}")
                ms, stats = _best(lambda: run_bundle(plain, x, runtime, backend, heap=4 * 1024 * 1024), repeats)
                row[f"{backend}_ms"] = ms
                row[f"{backend}_vs_tflm"] = ms / invoke_ms
                if runtime == "micropython":
                    row["unix_port_mem_info_peak_bytes"] = stats["heap_peak_bytes"]
                    row["unix_port_min_heap_bytes"] = find_min_heap(plain, x, "viper")
        finally:
            sys.path.remove(str(ULAB_STANDIN))
        budget = load_board(board).budget
        spilled = Path(tmp) / "spilled.tsb"
        try:
            compiled = compile_model(model, spilled, budget)
        except BudgetError as exc:
            row["budget"] = {"bytes": budget, "met": False, "reason": str(exc)}
            return row
        row["budget"] = {"board": board, "bytes": budget, "peak_bytes": compiled.plan.peak,
                         "spilled_tensors": len(compiled.optimized.spills),
                         "spill_bytes_uncompressed": sum(s.nbytes for s in compiled.optimized.spills)}
        if compiled.optimized.spills:
            progress(f"  {model.stem}: micropython/viper with spills")
            ms, stats = _best(lambda: run_bundle(spilled, x, "micropython", "viper", heap=4 * 1024 * 1024,
                                                 lfs_blocks=256), repeats)
            row["budget"].update(viper_ms=ms, spill_overhead_vs_viper=ms / row["viper_ms"],
                                 spill_bytes_written=stats["flash_write_bytes"],
                                 compression_ratio=row["budget"]["spill_bytes_uncompressed"] / max(stats["flash_write_bytes"], 1),
                                 lfs_erases=stats["lfs_erases"], mem_info_peak_bytes=stats["heap_peak_bytes"],
                                 min_heap_bytes=find_min_heap(spilled, x, "viper", lfs_blocks=256))
    return row


def bench_streaming(model: Path, x: np.ndarray, tflm_arena: int, board: str, repeats: int,
                    progress=print) -> list[dict]:
    """One row per budget: peak, latency against the unconstrained plan, flash, runtime overhead."""
    budgets: list[int | None] = [None, load_board(board).budget, 65536, tflm_arena // 5]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for budget in dict.fromkeys(budgets):
            path = Path(tmp) / f"b{budget}.tsb"
            row: dict = {"model": model.stem, "budget": budget}
            try:
                compiled = compile_model(model, path, budget)
            except BudgetError as exc:
                smallest = re.search(r"smallest peak reached is ([\d,]+)", str(exc))
                row.update(refused=f"smallest peak reached {smallest.group(1) if smallest else '?'} bytes")
                rows.append(row)
                continue
            chosen = compiled.chosen
            progress(f"  {model.stem}: budget {budget}: peak {chosen.peak:,d}, unix port")
            ms, stats = _best(lambda: run_bundle(path, x, "micropython", "viper", heap=4 * 1024 * 1024,
                                                 lfs_blocks=512, mpy=True), repeats)
            outside = 0
            if chosen.streamed:
                g = chosen.graph
                outside = g.tensors[g.outputs[0]].nbytes  # the input is fed from its file
            min_heap = find_min_heap(path, x, "viper", lfs_blocks=512, mpy=True)
            row.update(peak_bytes=chosen.peak, streamed=chosen.streamed is not None, viper_ms=ms,
                       flash_write_bytes=stats["flash_write_bytes"], weight_bytes_read=stats["flash_read_bytes"],
                       steps=len(compiled.steps), min_heap_bytes=min_heap,
                       runtime_overhead_bytes=min_heap - chosen.peak - outside)
            rows.append(row)
    base = rows[0].get("viper_ms")
    for row in rows:
        if base and "viper_ms" in row:
            row["vs_unconstrained"] = row["viper_ms"] / base
    return rows


def print_streaming(rows: list[dict]) -> None:
    print("\nband streaming (viper, unix port, runtime from .mpy, spill files on littlefs)")
    print(f"{'model':12s} {'budget':>8s} {'peak':>8s} {'mode':>8s} {'ms':>8s} {'ratio':>6s} {'flash B':>8s} "
          f"{'steps':>6s} {'min heap':>9s} {'overhead':>9s}")
    for r in rows:
        budget = "none" if r["budget"] is None else f"{r['budget']:,d}"
        if "refused" in r:
            print(f"{r['model']:12s} {budget:>8s} refused: {r['refused']}")
            continue
        print(f"{r['model']:12s} {budget:>8s} {r['peak_bytes']:8,d} {'stream' if r['streamed'] else 'whole':>8s} "
              f"{r['viper_ms']:8.1f} {r.get('vs_unconstrained', 1.0):6.2f} {r['flash_write_bytes']:8,d} "
              f"{r['steps']:6d} {r['min_heap_bytes']:9,d} {r['runtime_overhead_bytes']:9,d}")
    print("  ratio: latency / the same model's unconstrained plan; flash B: spilled bytes written per inference\n"
          "  (compressed); overhead: min heap - planned arena - output buffer outside the arena (the\n"
          "  runtime's own modules, weight buffer, littlefs, harness)")


# Device op of each MAC-holding TFLite op (host_tools/lower), for cycles per MAC.
MAC_OPS = {"CONV_2D": "conv2d", "FULLY_CONNECTED": "conv2d", "DEPTHWISE_CONV_2D": "depthwise_conv2d",
           "TRANSPOSE_CONV": "transpose_conv", "CONCAT_CONV_2D": "concat_conv2d"}


def bench_pico(models: list[Path], board: str, progress=print, firmware: str = "stock") -> list[dict]:
    """On the virtual Pico (real RP2040 firmware, host_tools/pico.py), per
    model: the board plan (compiled as `--board` does), a 64 KB plan and the
    unconstrained plan, each on the default backend (thumb) and on viper; a
    boot per run. Seconds per inference at 125 MHz between marks around
    run() of the runtime as deployed, free heap after load, flash erases,
    exactness against tflite-micro, and, from a second boot that runs the
    bundle with ticks_us around each step, per MAC-holding op the emulated
    cycles per MAC (Python dispatch and requantisation included: all-in per op)."""
    from . import pico
    from .macs import op_macs

    prof = load_board(board)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            x = np.load(model.with_suffix(".input.npy")) if model.with_suffix(".input.npy").exists() else None
            if x is None:
                continue
            ref = np.load(model.with_suffix(".tflm_output.npy")) if model.with_suffix(".tflm_output.npy").exists() \
                else None
            for plan, budget, room in (("board", prof.budget, prof.budget), ("64 KB", 65536, prof.budget),
                                       ("whole", None, None)):
                path = Path(tmp) / f"{model.stem}_{len(rows)}.tsb"
                try:
                    c = compile_model(model, path, budget, thumb=prof.thumb, room=room,
                                      spill_stage=prof.flash_block_bytes, costs=prof.costs)
                except BudgetError as exc:
                    rows.append({"model": model.stem, "plan": plan, "refused": str(exc).split(": ", 1)[-1][:90]})
                    continue
                held = load_buffers(c, prof.flash_block_bytes)
                if held > prof.budget:  # it would stop with a MemoryError, and the whole boot with it
                    rows.append({"model": model.stem, "plan": plan, "refused": f"its buffers take {held:,d} B, over "
                                 f"the board's budget of {prof.budget:,d} B"})
                    continue
                graph = c.chosen.graph if c.chosen.streamed else c.optimized.graph
                # The MACs the kernels run: an op computed again for a skip's late reader counts twice.
                again = [n.op for n in c.chosen.streamed.nodes if n.recomputed] if c.chosen.streamed else []
                macs: dict[str, int] = {}
                for op in graph.ops + again:
                    if op.kind in MAC_OPS:
                        macs[MAC_OPS[op.kind]] = macs.get(MAC_OPS[op.kind], 0) + op_macs(graph, op)
                model_macs = sum(op_macs(graph, op) for op in graph.ops if op.kind in MAC_OPS)
                rows.append({"model": model.stem, "plan": plan, "peak_bytes": c.chosen.peak, "model_macs": model_macs,
                             "weight_buffer_bytes": max(len(s.blob) for s in c.steps), "steps": len(c.steps),
                             "macs": macs, "path": path, "x": x, "ref": ref})
        for backend in (None, "viper"):
            todo = [r for r in rows if "path" in r]
            # Plans that compile to the same bundle (a small model fits every budget) run once.
            same = [Path(r["path"]).read_bytes() for r in todo]
            progress(f"  virtual Pico ({firmware} firmware), backend {backend or 'default'}: "
                     f"{len(set(same))} distinct bundles, two boots each ...")
            # A boot per run, as a board runs one model (after a big one the heap
            # may not have the next arena in one piece, nor the same one again):
            # a warm-up run of the smallest bundle, its figures dropped (a boot's
            # first inference pays one-time costs), then the bundle as deployed
            # (s/inf); a second boot runs it with ticks_us around each step (the
            # time by op; the wrapper costs the chip time, so not in s/inf).
            warm = min(todo, key=lambda r: r["steps"])
            runs: dict[bytes, list[dict]] = {}
            for r, bundle in zip(todo, same):
                if bundle not in runs:
                    runs[bundle] = [pico.run_jobs([pico.Job(warm["path"], warm["x"], backend),
                                                   pico.Job(r["path"], r["x"], backend, timed=timed)], firmware)[1]
                                    for timed in (False, True)]
            for r, bundle in zip(todo, same):
                s, t = runs[bundle]
                key = s["backend"]
                cyc = {op: t["op_us"].get(op, 0) * prof.clock_hz / 1e6 / n for op, n in r["macs"].items() if n}
                r.setdefault("runs", {})[key] = {
                    "seconds": s["seconds"], "timed_seconds": t["seconds"], "free_after_load": s["free_after_load"],
                    "flash_erases": s["flash_erases"], "flash_busy_s": s["flash_busy_s"],
                    "flash_write_bytes": s["flash_write_bytes"],
                    "dispatch_s": t["seconds"] - sum(t["op_us"].values()) / 1e6,
                    "exact": None if r["ref"] is None else all(np.array_equal(u["y"], r["ref"].reshape(u["y"].shape))
                                                               for u in (s, t)),
                    "cycles_per_mac": cyc, "op_s": {k: v / 1e6 for k, v in t["op_us"].items()},
                    "total_macs": r["model_macs"]}
    for r in rows:
        for k in ("path", "x", "ref"):
            r.pop(k, None)
    return rows


def print_pico(rows: list[dict]) -> None:
    print("\non the virtual Pico (RP2040 MicroPython firmware, 125 MHz; runtime as deployed, .mpy armv6m)")
    print(f"{'model':12s} {'plan':6s} {'arena':>8s} {'backend':>7s} {'s/inf':>7s} {'cyc/MAC':>8s} {'free heap':>9s} "
          f"{'flash B':>7s} {'erases':>6s} {'flash s':>7s} {'exact':>5s}  cycles per MAC by op (all-in)")
    for r in rows:
        if "refused" in r:
            print(f"{r['model']:12s} {r['plan']:6s} refused: {r['refused']}")
            continue
        for backend, u in r.get("runs", {}).items():
            per = "  ".join(f"{op} {c:.1f}" for op, c in sorted(u["cycles_per_mac"].items()))
            all_in = u["seconds"] * 125e6 / u["total_macs"] if u["total_macs"] else 0
            print(f"{r['model']:12s} {r['plan']:6s} {r['peak_bytes']:8,d} {backend:>7s} {u['seconds']:7.2f} "
                  f"{all_in:8.1f} {u['free_after_load']:9,d} {u['flash_write_bytes']:7,d} {u['flash_erases']:6d} "
                  f"{u['flash_busy_s']:7.2f} {str(u['exact']):>5s}  {per}")
            ops = sorted(u["op_s"].items(), key=lambda kv: -kv[1])
            print(f"{'':12s} {'':6s} {'':8s} {'':>7s} time by op: " + ", ".join(f"{k} {v:.2f}" for k, v in ops if v >= 0.005)
                  + f"; steps' dispatch and blob loads {u['dispatch_s']:.2f} s ({r['steps']} steps); "
                  f"timed run {u['timed_seconds']:.2f} s")
    print("  s/inf: emulated seconds between marks around run(), the runtime as deployed, the flash chip's\n"
          "  modeled busy time (flash s) included; cyc/MAC: the whole inference's cycles over the model's MACs;\n"
          "  free heap: after load; flash B: spilled bytes written per inference; exact: both runs equal to\n"
          "  tflite-micro's output; time by op: from a second run with ticks_us around each step (timed run: its\n"
          "  s/inf, the wrapper included), seconds per op type, the rest of run() is the steps' dispatch;\n"
          "  cycles per MAC by op: its time over the MACs its kernels run (an op computed again counts twice)")


def run_bench(models: list[Path], board: str, repeats: int, out: Path | None, progress=print,
              chip_only: bool = False) -> list[dict]:
    from . import pico

    rows: list[dict] = []
    streaming_rows: list[dict] = []
    pico_rows: list[dict] = []
    if load_board(board).mpy_arch == pico.MPY_ARCH:  # the RP2040: measured on the chip
        why = pico.missing()
        if why:
            progress(f"no figures from the virtual Pico: {why}")
        else:
            progress("the virtual Pico ...")
            pico_rows = bench_pico(models, board, progress)
            print_pico(pico_rows)
    if chip_only:
        if out:
            out.write_text(json.dumps([{"pico": pico_rows}], indent=1))
        return pico_rows
    for model in models:
        progress(f"{model.name} ...")
        t0 = time.perf_counter()
        row = bench_model(model, board, repeats, progress)
        rows.append(row)
        x = np.load(model.with_suffix(".input.npy")) if model.with_suffix(".input.npy").exists() else None
        if x is not None:
            streaming_rows += bench_streaming(model, x, row["tflm_arena_bytes"], board, repeats, progress)
        progress(f"  done in {time.perf_counter() - t0:.1f} s")
    print_table(rows)
    print_streaming(streaming_rows)
    if pico_rows:
        print_pico(pico_rows)  # again, under the host tables
    rows.append({"streaming": streaming_rows, "pico": pico_rows})
    if out:
        out.write_text(json.dumps(rows, indent=1))
        progress(f"figures written to {out}")
    return rows


def print_table(rows: list[dict]) -> None:
    print("\nlatency, one inference (best of runs), ms; ratio = ours / tflite-micro invoke")
    print(f"{'model':12s} {'tflm':>8s} {'numpy':>9s} {'ratio':>7s} {'ulab*':>9s} {'ratio':>7s} {'viper':>9s} {'ratio':>7s}")
    for r in rows:
        print(f"{r['model']:12s} {r['tflm_invoke_ms']:8.2f} {r['numpy_ms']:9.2f} {r['numpy_vs_tflm']:7.1f} "
              f"{r['ulab_ms']:9.2f} {r['ulab_vs_tflm']:7.1f} {r['viper_ms']:9.2f} {r['viper_vs_tflm']:7.1f}")
    print("  * ulab: the strict stand-in over numpy on CPython (its speed says nothing about a board)")
    print("\nmemory, bytes")
    print(f"{'model':12s} {'tflm arena':>11s} {'ours plain':>11s} {'ours opt':>10s} {'min heap':>9s} "
          f"{'budget':>8s} {'peak':>8s} {'min heap':>9s}")
    for r in rows:
        b = r["budget"]
        print(f"{r['model']:12s} {r['tflm_arena_bytes']:11,d} {r['unoptimized_peak_bytes']:11,d} "
              f"{r['optimized_peak_bytes']:10,d} {r['unix_port_min_heap_bytes']:9,d} {b['bytes']:8,d} "
              f"{b.get('peak_bytes', -1):8,d} {b.get('min_heap_bytes', r['unix_port_min_heap_bytes']):9,d}")
    print("  min heap: smallest -X heapsize the unix port (64-bit) completes one inference in, by bisection;\n"
          "  the first for the plan without a budget, the second for the budget's plan (spill file on littlefs)")
    print("\nspilling (viper, unix port, spill file on littlefs)")
    for r in rows:
        b = r["budget"]
        if "viper_ms" in b:
            print(f"{r['model']:12s} latency {b['viper_ms']:.1f} ms = {b['spill_overhead_vs_viper']:.2f}x no-spill; "
                  f"flash written {b['spill_bytes_uncompressed']:,d} B raw -> {b['spill_bytes_written']:,d} B "
                  f"compressed ({b['compression_ratio']:.1f}x), {b['lfs_erases']} erases")
        elif not b.get("met", True):
            print(f"{r['model']:12s} {b['reason']}")
        else:
            print(f"{r['model']:12s} fits the budget without spilling")
