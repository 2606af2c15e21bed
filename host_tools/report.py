"""Plan reports: the JSON object of `tinyseg plan --json` and the timeline PNG."""
from __future__ import annotations

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


def plot_timeline(graph: Graph, plan: MemoryPlan, path: str | Path, title: str = "",
                  baseline_bytes: int | None = None, spills: list | None = None) -> None:
    """Live bytes per op step, each large buffer a stacked band, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = len(graph.ops)
    fig, ax = plt.subplots(figsize=(max(8, steps * 0.25), 5))
    big = sorted(plan.buffers, key=lambda b: -b.size)[:12]
    rest = [b for b in plan.buffers if b not in big]
    layers = [[b.size / 1024 if b.first <= s <= b.last else 0 for s in range(steps)] for b in big]
    labels = [f"{_short(b.name)} ({b.size / 1024:.1f} KiB)" for b in big]
    layers.append([sum(b.size for b in rest if b.first <= s <= b.last) / 1024 for s in range(steps)])
    labels.append("other buffers")
    colors = [plt.get_cmap("tab20")(i % 20) for i in range(len(layers) - 1)] + ["lightgrey"]
    ax.stackplot(range(steps), layers, labels=labels, step="mid", colors=colors)
    if baseline_bytes:
        ax.axhline(baseline_bytes / 1024, color="red", linestyle="--", label=f"TFLite Micro arena {baseline_bytes / 1024:.1f} KiB")
    ax.axhline(plan.peak / 1024, color="black", linestyle=":", label=f"planned peak {plan.peak / 1024:.1f} KiB")
    for s in spills or []:
        spill_step, fetch_step = s.steps(graph)
        ax.axvspan(spill_step + 0.5, fetch_step - 0.5, color="grey", alpha=0.12)
        ax.text(spill_step + 0.6, plan.peak / 1024 * 0.95, f"in flash: {_short(graph.tensors[s.tensor].name)}",
                fontsize=6, rotation=90, va="top")
    ax.set_xlabel("op step")
    ax.set_ylabel("live KiB")
    ax.set_xticks(range(steps))
    ax.set_xticklabels([op.kind.replace("_", " ").lower()[:14] for op in graph.ops], rotation=90, fontsize=6)
    ax.set_title(title or f"{graph.name}: memory timeline")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
