"""Plan reports: the JSON object of `tinyseg plan --json` and the timeline PNG."""
from __future__ import annotations

import re
from pathlib import Path

from .boards import Board
from .graph import Graph
from .memplan import MemoryPlan
from .optimize import Optimized
from .streaming import StreamPlan, weight_bytes
from .tflm_baseline import BaselinePlan

ERASE_CYCLES = 100_000
SECONDS_PER_YEAR = 365.25 * 24 * 3600


def flash_report(spilled: list[int], file_bytes: int, board: Board | None) -> dict:
    """Flash traffic per inference of tensors of `spilled` bytes and, for a
    board, the wear estimate at one inference a second. littlefs is
    copy-on-write and spreads writes over the free blocks; each 4 KB block
    written costs one erase, plus one more block per spilled tensor for
    metadata."""
    written = sum(spilled)
    report = {
        "spill_write_bytes_per_inference": written,
        "spill_read_bytes_per_inference": written,
        "spill_file_bytes": file_bytes,
        "note": "uncompressed bytes; compression lowers them (tinyseg bench measures it)",
    }
    if board and written:
        block = board.flash_block_bytes
        per_inference = sum(-(-n // block) + 1 for n in spilled)
        free_blocks = max(board.fs_bytes // block - -(-file_bytes // block), 1)
        inferences = ERASE_CYCLES * free_blocks / per_inference
        report.update(erase_blocks_per_inference=per_inference, fs_blocks_sharing_wear=free_blocks,
                      lifetime_years_at_1_inference_per_s=round(inferences / SECONDS_PER_YEAR, 2))
    return report


def plan_report(graph: Graph, baseline: BaselinePlan, unoptimized: MemoryPlan, opt: Optimized,
                board: Board | None) -> dict:
    live = opt.plan.live_bytes(len(graph.ops))
    return {
        "model": graph.name,
        "board": board.name if board else None,
        "tflm_arena_bytes": baseline.arena_head,
        "unoptimized_peak_bytes": unoptimized.peak,
        "peak_bytes": opt.plan.peak,
        "budget_bytes": opt.budget,
        "budget_met": opt.met,
        "fusions": opt.fusions,
        "spills": [
            {"tensor": graph.tensors[s.tensor].name, "bytes": s.nbytes, "spill_step": s.steps(graph)[0],
             "fetched_by_step": s.steps(graph)[1], "cold_steps": s.steps(graph)[1] - s.steps(graph)[0] - 1}
            for s in opt.spills
        ],
        "flash": flash_report([s.nbytes for s in opt.spills], sum(s.worst_case_bytes for s in opt.spills), board),
        "ops": [
            {"step": step, "kind": op.kind, "source_index": op.source_index,
             "outputs": [graph.tensors[o].name for o in op.outputs], "live_bytes": live[step]}
            for step, op in enumerate(graph.ops)
        ],
        "buffers": [
            {"name": b.name, "tensor": b.tensor, "bytes": b.size, "first_step": b.first, "last_step": b.last,
             "offset": b.offset}
            for b in opt.plan.buffers
        ],
    }


def stream_report(sp: StreamPlan, io_bytes: int) -> dict:
    """What a band-streamed plan holds: its rings, spills, schedule size and weight traffic."""
    return {
        "band_rows": sp.band,
        "streamed_tensors_from_bytes": sp.threshold,
        "device_steps": len(sp.steps),
        "weight_bytes_loaded_per_inference": weight_bytes(sp),
        "io_bytes_outside_arena": io_bytes,
        "note": "the input is fed and the output drained band by band from/to the caller's buffers",
        "rings": [{"name": n.out.name, "rows": n.out.rows, "depth_rows": n.out.depth, "row_bytes": n.out.row_bytes,
                   "bytes": n.out.depth * n.out.row_bytes} for n in sp.nodes],
        "spills": [{"tensor": r.name, "bytes": r.rows * r.row_bytes,
                    "fetched_for": [m.name for n in sp.nodes if n.source is r for m in sp.nodes if n.out in m.ins]}
                   for r in sp.spills],
        "buffers": [{"name": b.name, "bytes": b.size, "first_call": b.first, "last_call": b.last, "offset": b.offset}
                    for b in sp.plan.buffers],
    }


def _short(name: str) -> str:
    """'model_1/inc_relu2_1/Relu;model_1/...' -> 'inc_relu2_1/Relu' for legends."""
    first = name.split(";")[0]
    parts = first.split("/")
    return "/".join(parts[1:] if len(parts) > 2 else parts)[:32]


def _bytes_axis(ax) -> None:
    """The y axis in bytes with thousands separators, as the terminal prints them."""
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylabel("live bytes")


STREAM_KINDS = ("whole tensors (every row held)", "ring buffers (the rows a band needs)",
                "rows fetched back from flash", "fetch buffers (spilled rows inflated)", "kernel scratch")
_ROWS_RE = re.compile(r"\((\d+)/(\d+) rows\)$")


def stream_timeline_layers(sp: StreamPlan) -> dict[str, list[int]]:
    """What the arena holds at each band call of a streamed plan, by kind of
    buffer (STREAM_KINDS, told apart by the planner's buffer names): live
    bytes per call. They add up to the plan's live_bytes at every call."""

    def kind(b) -> str:
        if b.name.startswith("fetch "):
            return STREAM_KINDS[3]
        if b.name.endswith("scratch"):
            return STREAM_KINDS[4]
        if "(fetched)" in b.name:
            return STREAM_KINDS[2]
        rows = _ROWS_RE.search(b.name)
        return STREAM_KINDS[1] if rows and int(rows.group(1)) < int(rows.group(2)) else STREAM_KINDS[0]

    layers = {k: [0] * len(sp.calls) for k in STREAM_KINDS}
    for b in sp.plan.buffers:
        row = layers[kind(b)]
        for c in range(b.first, b.last + 1):
            row[c] += b.size
    return layers


def plot_stream_timeline(sp: StreamPlan, path: str | Path, title: str = "", baseline_bytes: int | None = None,
                         budget: int | None = None) -> None:
    """A band-streamed plan's memory over its schedule, as a PNG: what the
    rings, spill slots, fetch buffers, scratch and whole tensors hold at each
    band call, the board's budget and the planned peak as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = {k: v for k, v in stream_timeline_layers(sp).items() if any(v)}
    colors = {k: plt.get_cmap("Set2")(i) for i, k in enumerate(STREAM_KINDS)}
    fig, ax = plt.subplots(figsize=(10, 5))
    x = range(len(sp.calls))
    ax.stackplot(x, list(layers.values()), labels=list(layers), colors=[colors[k] for k in layers], step="post")
    if budget:
        ax.axhline(budget, color="tab:red", linestyle="--", label=f"budget {budget:,d} bytes")
    ax.axhline(sp.peak, color="black", linestyle=":", label=f"planned peak {sp.peak:,d} bytes")
    if baseline_bytes and baseline_bytes <= 2 * max(sp.peak, budget or 0):
        ax.axhline(baseline_bytes, color="tab:purple", linestyle="-.", label=f"TFLite Micro arena {baseline_bytes:,d} bytes")
    elif baseline_bytes:
        ax.plot([], [], " ", label=f"TFLite Micro arena {baseline_bytes:,d} bytes (off the chart)")
    _bytes_axis(ax)
    ax.set_ylim(0, max(sp.peak, budget or 0) * 1.15)
    ax.set_xlim(0, len(sp.calls))
    ax.set_xlabel(f"band calls in schedule order ({len(sp.calls):,d}; each streamed op runs once per band of "
                  f"{sp.band} row(s))")
    ax.set_title(title or "band-streamed memory timeline")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_plan(chosen, path: str | Path, title: str = "", baseline_bytes: int | None = None) -> None:
    """The memory timeline of a compile.Plan, streamed or whole tensors."""
    budget = chosen.optimized.budget
    if chosen.streamed:
        plot_stream_timeline(chosen.streamed, path, title, baseline_bytes, budget)
    else:
        opt = chosen.optimized
        plot_timeline(opt.graph, opt.plan, path, title, baseline_bytes, opt.spills, budget)


def plot_timeline(graph: Graph, plan: MemoryPlan, path: str | Path, title: str = "",
                  baseline_bytes: int | None = None, spills: list | None = None, budget: int | None = None) -> None:
    """Live bytes per op step, each large buffer a stacked band, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = len(graph.ops)
    fig, ax = plt.subplots(figsize=(max(8, steps * 0.25), 5))
    big = sorted(plan.buffers, key=lambda b: -b.size)[:12]
    rest = [b for b in plan.buffers if b not in big]
    layers = [[b.size if b.first <= s <= b.last else 0 for s in range(steps)] for b in big]
    labels = [f"{_short(b.name)} ({b.size:,d} B)" for b in big]
    layers.append([sum(b.size for b in rest if b.first <= s <= b.last) for s in range(steps)])
    labels.append("other buffers")
    colors = [plt.get_cmap("tab20")(i % 20) for i in range(len(layers) - 1)] + ["lightgrey"]
    ax.stackplot(range(steps), layers, labels=labels, step="mid", colors=colors)
    if baseline_bytes:
        ax.axhline(baseline_bytes, color="tab:purple", linestyle="-.", label=f"TFLite Micro arena {baseline_bytes:,d} bytes")
    if budget:
        ax.axhline(budget, color="tab:red", linestyle="--", label=f"budget {budget:,d} bytes")
    ax.axhline(plan.peak, color="black", linestyle=":", label=f"planned peak {plan.peak:,d} bytes")
    for s in spills or []:
        spill_step, fetch_step = s.steps(graph)
        ax.axvspan(spill_step + 0.5, fetch_step - 0.5, color="grey", alpha=0.12)
        ax.text(spill_step + 0.6, plan.peak * 0.95, f"in flash: {_short(graph.tensors[s.tensor].name)}",
                fontsize=6, rotation=90, va="top")
    ax.set_xlabel("op (numbered as in the .tflite file)")
    _bytes_axis(ax)
    ax.set_xticks(range(steps))
    ax.set_xticklabels([op.label.lower() for op in graph.ops], rotation=90, fontsize=6)
    ax.set_title(title or f"{graph.name}: memory timeline")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
