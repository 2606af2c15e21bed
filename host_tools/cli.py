"""`tinyseg`: the command-line entry point."""
from __future__ import annotations

import argparse
import json
import sys

from typing import TYPE_CHECKING

from . import tflite_import
from .lifetimes import tensor_lifetimes
from .macs import graph_macs
from .report import flash_report, plan_report, plot_plan
from .tflm_baseline import tflm_plan

if TYPE_CHECKING:
    from .boards import Board


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def cmd_inspect(args: argparse.Namespace) -> int:
    raw = tflite_import.load_raw(args.model)
    # Folded but not refused: a model with unsupported ops is listed, those marked.
    graph = tflite_import.fold_constants(tflite_import.load_raw(args.model))
    why = tflite_import.unsupported_ops(graph)
    lifetimes = tensor_lifetimes(graph)
    macs = graph_macs(graph)
    print(f"{args.model}: {len(graph.ops)} ops ({len(raw.ops) - len(graph.ops)} shape ops folded), "
          f"{len(graph.tensors)} tensors, {sum(macs):,d} MACs")
    print("\nops (numbered as in the .tflite file, as plan and compile name them):")
    for step, op in enumerate(graph.ops):
        ins = ", ".join(str(i) for i in op.inputs)
        outs = ", ".join(str(o) for o in op.outputs)
        opts = " ".join(f"{k}={v}" for k, v in op.options.items())
        mark = f"  <-- UNSUPPORTED: {why[step]}" if step in why else ""
        print(f"  op {op.source_index:3d} {op.kind:24s} {macs[step]:>13,d} MACs  in[{ins}] -> out[{outs}] {opts}{mark}")
    print(f"  total {sum(macs):,d} MACs (multiply-accumulates of the conv, depthwise, transpose-conv and "
          "fully-connected layers; host_tools.macs)")
    print("\nactivation tensors (made by op .. last read by op):")
    for idx, lt in sorted(lifetimes.items()):
        t = graph.tensors[idx]
        q = ""
        if t.scale is not None:
            q = f" scale={float(t.scale[0]):.6g} zp={int(t.zero_point[0])}"
        first = "input" if idx in graph.inputs else f"op {graph.ops[lt.first].source_index}"
        last = f"op {graph.ops[lt.last].source_index}" if graph.ops else "-"
        print(f"  {idx:3d} {t.name[:48]:48s} {_fmt_shape(t.shape):>12s} {t.dtype:7s} "
              f"{t.nbytes:8d} B  {first}..{last}{q}")
    consts = [t for t in graph.tensors if t.is_const and t.consumers]
    print(f"\nconstant tensors: {len(consts)}, {sum(t.nbytes for t in consts)} bytes")
    if why:
        floats = [s for s, w in why.items() if w.startswith("float32")]
        labels = ", ".join(graph.ops[s].label for s in why)
        if len(floats) == len(why):
            msg = (f"a float model: {labels} compute on float32 tensors (marked above); plan and compile refuse it; "
                   f"{tflite_import.QUANTISE_HINT}")
        else:
            kinds = sorted({graph.ops[s].kind for s in why if s not in floats})
            msg = (f"{len(why)} unsupported op(s): {labels} (marked above); plan and compile refuse this model; "
                   f"rebuild it without {', '.join(kinds)}")
        print(f"tinyseg: error: {args.model}: {msg}", file=sys.stderr)
        return 2
    return 0


def _budget(args: argparse.Namespace) -> tuple[int | None, Board | None]:
    from .boards import load_board
    from .runner import parse_size

    board = load_board(args.board) if getattr(args, "board", None) else None
    if getattr(args, "budget", None):
        budget = parse_size(args.budget)
        if board and budget > board.max_alloc_bytes:
            print(f"tinyseg: --budget {budget:,d} capped at {board.max_alloc_bytes:,d} bytes, the largest block "
                  f"{board.name} can allocate (max_alloc_bytes)", file=sys.stderr)
            budget = board.max_alloc_bytes
        return budget, board
    return (board.budget if board else None), board


def cmd_plan(args: argparse.Namespace) -> int:
    from .compile import BudgetError, check_max_alloc, plan_model, runtime_buffers
    from .memplan import plan_memory
    from tinyseg_mp import compress

    from .report import stream_report

    _check_out_file(args.plot, "--plot")
    budget, board = _budget(args)
    raw = tflite_import.load_raw(args.model)
    baseline = tflm_plan(raw)
    unoptimized = plan_memory(tflite_import.load(args.model))
    chosen = plan_model(args.model, budget, None if args.json else _progress, board.costs if board else None)
    graph, opt, sp = chosen.graph, chosen.optimized, chosen.streamed
    report = plan_report(opt.graph, baseline, unoptimized, opt, board)
    report.update(peak_bytes=chosen.peak, budget_met=chosen.met, mode="streamed" if sp else "whole tensors")
    buffers = runtime_buffers(chosen)
    report["runtime_buffers"] = buffers
    too_big = None
    if board:
        report["max_alloc_bytes"] = board.max_alloc_bytes
        try:
            check_max_alloc(args.model, buffers, board.max_alloc_bytes)
        except BudgetError as exc:
            too_big = str(exc)
    if sp:
        x, y = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
        report["streaming"] = stream_report(sp, x.nbytes + y.nbytes)
        report["streaming"]["rewrites"] = chosen.rewrites
        report["spills"] = report["streaming"]["spills"]
        report["flash"] = flash_report([r.rows * r.row_bytes for r in sp.spills],
                                       sum(r.rows * compress.bound(r.row_bytes) for r in sp.spills), board)
    if args.plot:
        from pathlib import Path

        plot_plan(chosen, args.plot, f"{Path(args.model).name}" + (f" on {board.name}" if board else "")
                  + (" (band-streamed)" if sp else ""), baseline_bytes=baseline.arena_head)
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
    else:
        print(f"{args.model}")
        if board:
            print(f"  board {board.budget_note()}")
        print(f"  TFLite Micro arena (head):  {baseline.arena_head:9,d} bytes")
        print(f"  our plan, no optimisations: {unoptimized.peak:9,d} bytes")
        print(f"  our plan, optimised:        {chosen.peak:9,d} bytes "
              f"({100.0 * (chosen.peak - baseline.arena_head) / baseline.arena_head:+.1f}% vs TFLite Micro)")
        if sp:
            st = report["streaming"]
            print(f"  - band-streamed: {st['band_rows']} row(s) per band for tensors of "
                  f"{st['streamed_tensors_from_bytes']:,d} bytes and more, {st['device_steps']:,d} device steps, "
                  f"{st['weight_bytes_loaded_per_inference']:,d} weight bytes loaded per inference")
            print(f"  - input and output ({st['io_bytes_outside_arena']:,d} bytes) stay in the caller's buffers")
            for note in chosen.rewrites:
                print(f"  - {note}")
            for s in st["spills"]:
                print(f"  - spill '{s['tensor']}' ({s['bytes']:,d} bytes) band by band as computed, "
                      f"fetched back for {', '.join(s['fetched_for'])}")
        else:
            for note in opt.fusions:
                print(f"  - {note}")
            for s in opt.spills:
                _, fetch_step = s.steps(graph)
                made_by = graph.ops[graph.tensors[s.tensor].producer] if graph.tensors[s.tensor].producer is not None \
                    and graph.tensors[s.tensor].producer >= 0 else None
                print(f"  - spill '{graph.tensors[s.tensor].name}' ({s.nbytes:,d} bytes) "
                      + (f"after {made_by.label}, " if made_by else "")
                      + f"fetched back by {graph.ops[fetch_step].label}")
        print("  buffers the runtime allocates: " + ", ".join(f"{k} {v:,d}" for k, v in buffers.items())
              + (f" bytes; each fits one block of {board.max_alloc_bytes:,d} (max_alloc_bytes)"
                 if board and not too_big else " bytes"))
        if args.plot:
            print(f"  timeline written to {args.plot}")
    if too_big:
        print(f"tinyseg: error: {too_big}", file=sys.stderr)
        return 3
    if not chosen.met:
        print(f"tinyseg: budget of {budget:,d} bytes cannot be met: the smallest peak reached is "
              f"{chosen.peak:,d} bytes; {chosen.why_not()}", file=sys.stderr)
        return 3
    return 0


def _progress(msg: str) -> None:
    print(f"  planning: {msg}", file=sys.stderr)


def cmd_compile(args: argparse.Namespace) -> int:
    from .compile import BudgetError, compile_for_board, compile_model

    _check_out_file(args.output, "-o")
    budget, board = _budget(args)
    if board and budget > board.budget:
        print(f"tinyseg: --budget {budget:,d} capped at {board.budget:,d} bytes, what {board.name} has for the arena and "
              f"the other buffers: {board.budget_note()}", file=sys.stderr)
    try:
        if board:  # the board's budget holds the arena and the weight and output buffers
            result = compile_for_board(args.model, args.output, board, _progress, budget)
        else:
            result = compile_model(args.model, args.output, budget, _progress)
    except BudgetError as exc:
        print(f"tinyseg: error: {exc}", file=sys.stderr)
        return 3
    print(f"{args.output}: {result.bundle_bytes:,d} bytes, {len(result.steps)} steps, "
          f"arena {result.chosen.peak:,d} bytes, {result.spill_count} spilled tensors"
          + (", band-streamed" if result.chosen.streamed else ""))
    return 0


def _check_out_file(path: str | None, option: str) -> None:
    """Refuse, before any work, an output path that cannot be written as a file."""
    import os
    from pathlib import Path

    if not path:
        return
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{option} {path}: that is a folder; give a file name in it")
    parent = p.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {path}: folder '{parent}' does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{option} {path}: folder '{parent}' is not writable")


def _write_file(path: str, write) -> None:
    """write(f) into path + '.part', then rename: no partial file if it fails."""
    import os

    tmp = path + ".part"
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _load_input(path: str):
    """The --input array, or a one-line error that says what the file is."""
    import numpy as np

    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ValueError(f"--input {path}: {exc.strerror}") from None
    kinds = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"BM": "a BMP image"}
    if not head.startswith(b"\x93NUMPY"):
        what = next((v for k, v in kinds.items() if head.startswith(k)), "empty" if not head else "not a .npy file")
        raise ValueError(f"--input {path}: {what}; give a .npy array in the model's layout and dtype "
                         "(numpy.save('in.npy', x))")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise ValueError(f"--input {path}: not a readable .npy array ({exc})") from None


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from tinyseg_mp.bundle import BundleError

    from .runner import HeapTooSmall, RunError, find_min_heap, parse_size, run_bundle

    if args.runtime == "pico":
        return _run_pico(args)
    try:
        _check_out_file(args.output, "--output")
        _check_out_file(args.stats, "--stats")
        if args.min_heap and args.runtime != "micropython":
            raise ValueError("--min-heap measures the MicroPython unix port: add --runtime micropython")
        x = _load_input(args.input)
        heap = parse_size(args.heap)
        try:
            y, stats = run_bundle(args.bundle, x, args.runtime, args.backend, args.micropython, heap,
                                  args.lfs_blocks, args.mpy, progress=_progress_run)
        except HeapTooSmall as exc:
            _progress_run(f"{exc}; measuring the heap this run needs ...")
            need = find_min_heap(args.bundle, x, args.backend or "viper", args.lfs_blocks, resolution=4096,
                                 micropython=args.micropython, mpy=args.mpy, lo=heap)
            raise RunError(f"{exc}: it needs {need:,d} bytes (the smallest heap that ran, to 4 KiB): "
                           f"use --heap {need // 1024}K or more") from None
        if args.min_heap:
            stats["min_heap_bytes"] = find_min_heap(args.bundle, x, args.backend or "viper", args.lfs_blocks,
                                                    micropython=args.micropython, mpy=args.mpy)
        _write_file(args.output, lambda f: np.save(f, y))
        if args.stats:
            _write_file(args.stats, lambda f: f.write(json.dumps(stats, indent=1).encode()))
    except (RunError, BundleError, ValueError, OSError) as exc:
        print(f"tinyseg: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.output}: {y.dtype} {list(y.shape)}; {stats['runtime']}/{stats['backend']}: "
          f"{stats['latency_ms']:.1f} ms, heap peak {stats['heap_peak_bytes']:,d} bytes")
    if args.min_heap:
        print(f"smallest MicroPython heap that ran: {stats['min_heap_bytes']:,d} bytes "
              f"(to 1 KiB, passed twice): --heap {stats['min_heap_bytes'] // 1024}K")
    return 0


def _run_pico(args: argparse.Namespace) -> int:
    """`tinyseg run --runtime pico`: one inference on the virtual Pico (host_tools/pico.py)."""
    import numpy as np

    from tinyseg_mp.bundle import BundleError

    from . import pico
    from .runner import RunError

    try:
        _check_out_file(args.output, "--output")
        _check_out_file(args.stats, "--stats")
        pico.require(args.firmware)
        x = _load_input(args.input)
        y, stats = pico.run_pico(args.bundle, x, args.backend, args.firmware, probe=args.probe)
        if args.min_heap:
            _progress_run("bisecting a ballast before import, one boot per try ...")
            stats.update(pico.min_heap(args.bundle, x, args.backend, args.firmware, hint=stats["lowest_free_bytes"],
                                       progress=_progress_run))
        _write_file(args.output, lambda f: np.save(f, y))
        if args.stats:
            _write_file(args.stats, lambda f: f.write(json.dumps(stats, indent=1).encode()))
    except (RunError, BundleError, ValueError, OSError) as exc:
        print(f"tinyseg: error: {str(exc).strip()}", file=sys.stderr)
        return 2
    print(f"{args.output}: {y.dtype} {list(y.shape)}; virtual Pico ({stats['firmware']} firmware), "
          f"backend {stats['backend']}")
    print(f"  {stats['seconds']:.4f} s per inference at 125 MHz ({stats['cycles']:,d} cycles between the marks "
          f"around run())")
    print(f"  free heap: {stats['free_at_boot']:,d} bytes at boot, {stats['free_after_load']:,d} after load")
    if stats["lowest_free_bytes"] is not None:
        print(f"  lowest free heap during the run: {stats['lowest_free_bytes']:,d} bytes (largest ballast with which "
              f"load + run still complete, to {stats['probe_resolution']:,d} bytes)")
    print(f"  flash per inference: {stats['flash_erases']} erases, {stats['flash_programs']} programs, "
          f"{stats['flash_write_bytes']:,d} spill bytes written")
    if args.min_heap:
        print(f"  smallest heap the run completes in: {stats['min_heap_bytes']:,d} bytes free at boot (ballast "
              f"{stats['ballast_bytes']:,d} of {stats['free_at_boot']:,d}, to {stats['resolution']:,d} bytes, "
              f"{stats['tries']} boots, re-checked)")
    return 0


def _progress_run(msg: str) -> None:
    print(f"tinyseg: {msg}", file=sys.stderr)


def cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .bench import run_bench
    from .boards import load_board

    load_board(args.board)  # an unknown board is refused before minutes of measuring
    _check_out_file(args.json, "--json")
    fixtures = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
    models = [Path(m) for m in args.models] if args.models else sorted(
        p for p in fixtures.glob("*.tflite") if p.stem != "unsupported_ops")
    if not models:
        raise ValueError(f"no models to measure: the fixture models live in a source checkout ({fixtures} is "
                         "missing); pass --models MODEL.tflite ...")
    missing = [str(m) for m in models if not m.is_file()]
    if missing:
        raise ValueError(f"--models: no such file: {', '.join(missing)}")
    run_bench(models, args.board, args.repeats, Path(args.json) if args.json else None,
              progress=lambda msg: print(msg, file=sys.stderr), chip_only=args.chip_only)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .boards import load_board
    from .demo import run_demo

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: a file of that name exists; the demo writes a folder: give another name")
    if not out.exists() and not out.parent.is_dir():
        raise ValueError(f"--out {out}: folder '{out.parent}' does not exist; create it first")
    load_board(args.board)  # an unknown board is refused before the work
    run_demo(out, args.board)
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .segment import read_picture, segment_picture

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: a file of that name exists; give a folder")
    read_picture(args.picture)  # a bad picture is refused before compiling
    bundle = args.bundle
    if bundle is None:
        from .compile import compile_model
        from .demo import MODEL

        out.mkdir(parents=True, exist_ok=True)
        bundle = out / "model.tsb"
        compile_model(MODEL, bundle)
        print(f"compiled the bundled model ({MODEL.name}) into {bundle}")
    r = segment_picture(args.picture, bundle, out)
    print(f"{args.picture}: {r['picture_size'][0]}x{r['picture_size'][1]} resized to {r['model_size'][0]}x"
          f"{r['model_size'][1]}; {100 * r['mask_fraction']:.1f}% of the pixels in the mask "
          f"({r['latency_ms']:.0f} ms, {r['backend']})")
    print(f"  wrote {r['mask']} and {r['overlay']}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .deploy import deploy

    return deploy(Path(args.bundle), args.board, args.port, args.dry_run)


def _block_count(text: str) -> int:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n}: a number of 4 KB blocks, 0 or more")
    return n


def _budget_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", metavar="BYTES", help="activation RAM budget, e.g. 160000 or 150K; spills tensors to flash to meet it")
    p.add_argument("--board", metavar="NAME", help="use the board's usable heap minus the runtime's own needs as the budget (and, for an ARM board, the Thumb kernels' weight layouts)")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("tinyseg-mp")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyseg",
        description="Plan, compile and run int8 segmentation models on MicroPython boards.",
    )
    parser.add_argument("--version", action="version", version=f"tinyseg {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("inspect", help="list a model's ops, tensors, shapes and lifetimes",
                       description="List the ops, tensors, shapes, quantisation and lifetimes of an int8 .tflite model.")
    p.add_argument("model", help="path to an int8 .tflite file")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("plan", help="plan activation memory; compare with TFLite Micro",
                       description="Compute the TFLite-Micro-equivalent arena and this project's memory plan.")
    p.add_argument("model", help="path to an int8 .tflite file")
    p.add_argument("--json", action="store_true", help="print one JSON object (tflm_arena_bytes, peak_bytes, per-op live bytes)")
    p.add_argument("--plot", metavar="FILE.png", help="draw the memory timeline as a PNG")
    _budget_args(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("compile", help="compile a model into a .tsb bundle for the board",
                       description="Plan memory and lower every op into a .tsb bundle (see docs/bundle_format.md).")
    p.add_argument("model", help="path to an int8 .tflite file")
    p.add_argument("-o", "--output", required=True, metavar="OUT.tsb", help="bundle file to write")
    _budget_args(p)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("run", help="run a bundle once on CPython or the MicroPython unix port",
                       description="Run one inference of a bundle and save the raw output.")
    p.add_argument("bundle", help="a .tsb bundle")
    p.add_argument("--input", required=True, metavar="IN.npy", help="input array in the model's layout and dtype")
    p.add_argument("--output", required=True, metavar="OUT.npy", help="where to save the raw output array")
    p.add_argument("--runtime", choices=("cpython", "micropython", "pico"), default="cpython",
                   help="run in this process (cpython), in the MicroPython unix port, or on the virtual Pico: real "
                        "RP2040 firmware in ../shared/pico_emu, runtime as deployed (default: cpython)")
    p.add_argument("--firmware", default="stock", metavar="stock|ulab|FILE",
                   help="pico: the firmware image (stock, stock + ulab, or a .bin/.uf2/.elf file; default stock)")
    p.add_argument("--probe", type=int, default=0, metavar="BYTES",
                   help="pico: also measure the lowest free heap during the run to BYTES, by bisecting a ballast "
                        "(one extra run per try, same boot; e.g. 1024)")
    p.add_argument("--backend", choices=("numpy", "ulab", "viper", "thumb"),
                   help="force a kernel family (default: the fastest the runtime has)")
    p.add_argument("--micropython", metavar="EXE", help="MicroPython executable (default: the one of the test extra)")
    p.add_argument("--heap", default="512K", metavar="BYTES", help="MicroPython heap size, e.g. 256K (default 512K)")
    p.add_argument("--mpy", action="store_true",
                   help="unix port: load the runtime precompiled to .mpy, as deployed to a board (less heap)")
    p.add_argument("--lfs-blocks", type=_block_count, default=0, metavar="N",
                   help="unix port: put spill files on a littlefs image of N 4 KB blocks (default: host files)")
    p.add_argument("--stats", metavar="STATS.json", help="write latency, heap peak and flash traffic as JSON")
    p.add_argument("--min-heap", action="store_true",
                   help="also find the smallest MicroPython heap the run fits in (bisection; several runs; "
                        "pico: a ballast allocated before import, one boot per try)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("bench", help="measure latency, memory and flash traffic per model",
                       description="Benchmark the fixture models (or --models) on every backend against tflite-micro.")
    p.add_argument("--models", nargs="+", metavar="MODEL.tflite", help="models to measure (default: the test fixtures)")
    p.add_argument("--board", default="rp2040", help="board whose budget the spilling figures use (default rp2040)")
    p.add_argument("--repeats", type=int, default=3, help="runs per figure; the best is kept (default 3)")
    p.add_argument("--chip-only", action="store_true",
                   help="rp2040: only the figures measured on the virtual Pico (no host or unix-port runs)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="the main job: compile the bundled model, show memory, segment samples",
                       description="Compile the bundled Tiny U-Net for a board, print the memory table, run the sample "
                                   "images on the host and on the virtual board, and write PNGs.")
    p.add_argument("--board", default="rp2040", help="board to compile for (default rp2040)")
    p.add_argument("--out", default="tinyseg-demo", metavar="DIR", help="output folder (default ./tinyseg-demo)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("segment", help="segment a picture of your own (PNG, JPEG) and write its mask and overlay",
                       description="Run one picture through a bundle on the host runtime, as the board demo does "
                                   "(resized to the model's input, mask = last output channel over the midpoint of "
                                   "its 8-bit range), and write NAME_mask.png and NAME_overlay.png.")
    p.add_argument("picture", help="an image file: PNG, JPEG, BMP, ...")
    p.add_argument("--bundle", metavar="MODEL.tsb", help="bundle to run (default: the bundled model, compiled "
                                                         "into OUT/model.tsb)")
    p.add_argument("--out", default="tinyseg-segment", metavar="DIR", help="output folder (default ./tinyseg-segment)")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("deploy", help="copy the runtime, a bundle and the board's demo to a board with mpremote",
                       description="Copy tinyseg_mp (precompiled with mpy-cross when available), the bundle and "
                                   "boards/<board>/main.py to a board with mpremote, printing each command.")
    p.add_argument("bundle", help="the .tsb bundle to copy")
    p.add_argument("--board", required=True, help="board profile (boards/<name>)")
    p.add_argument("--port", help="serial port for mpremote (default: mpremote's auto-detection)")
    p.add_argument("--dry-run", action="store_true", help="only print the mpremote commands")
    p.set_defaults(func=cmd_deploy)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (tflite_import.ModelError, ValueError) as exc:
        print(f"tinyseg: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `tinyseg inspect M | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
