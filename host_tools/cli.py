"""`tinyseg`: the command-line entry point."""
from __future__ import annotations

import argparse
import json
import sys

from . import tflite_import
from .lifetimes import tensor_lifetimes
from .memplan import plan_memory
from .report import plan_report, plot_timeline
from .tflm_baseline import tflm_plan


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def cmd_inspect(args: argparse.Namespace) -> int:
    graph = tflite_import.load(args.model)
    raw = tflite_import.load_raw(args.model)
    lifetimes = tensor_lifetimes(graph)
    print(f"{args.model}: {len(graph.ops)} ops ({len(raw.ops) - len(graph.ops)} shape ops folded), "
          f"{len(graph.tensors)} tensors")
    print("\nops:")
    for step, op in enumerate(graph.ops):
        ins = ", ".join(str(i) for i in op.inputs)
        outs = ", ".join(str(o) for o in op.outputs)
        opts = " ".join(f"{k}={v}" for k, v in op.options.items())
        print(f"  {step:3d} {op.kind:24s} in[{ins}] -> out[{outs}] {opts}")
    print("\nactivation tensors (first..last op step):")
    for idx, lt in sorted(lifetimes.items()):
        t = graph.tensors[idx]
        q = ""
        if t.scale is not None:
            q = f" scale={float(t.scale[0]):.6g} zp={int(t.zero_point[0])}"
        print(f"  {idx:3d} {t.name[:48]:48s} {_fmt_shape(t.shape):>12s} {t.dtype:7s} "
              f"{t.nbytes:8d} B  steps {lt.first}..{lt.last}{q}")
    consts = [t for t in graph.tensors if t.is_const and t.consumers]
    print(f"\nconstant tensors: {len(consts)}, {sum(t.nbytes for t in consts)} bytes")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    raw = tflite_import.load_raw(args.model)
    graph = tflite_import.load(args.model)
    baseline = tflm_plan(raw)
    plan = plan_memory(graph)
    report = plan_report(graph, raw, baseline, plan)
    if args.plot:
        plot_timeline(graph, plan, args.plot, baseline_bytes=baseline.arena_head)
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
    else:
        print(f"{args.model}")
        print(f"  TFLite Micro arena (head): {baseline.arena_head:9,d} bytes")
        print(f"  this plan, peak:           {plan.peak:9,d} bytes "
              f"({100.0 * (plan.peak - baseline.arena_head) / baseline.arena_head:+.1f}%)")
        if args.plot:
            print(f"  timeline written to {args.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyseg",
        description="Plan, compile and run int8 segmentation models on MicroPython boards.",
    )
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
    p.set_defaults(func=cmd_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except tflite_import.ModelError as exc:
        print(f"tinyseg: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
