"""Plan reports: the JSON object of `tinyseg plan --json` and the timeline PNG."""
from __future__ import annotations

from pathlib import Path

from .graph import Graph
from .memplan import MemoryPlan
from .tflm_baseline import BaselinePlan


def plan_report(graph: Graph, raw: Graph, baseline: BaselinePlan, plan: MemoryPlan) -> dict:
    live = plan.live_bytes(len(graph.ops))
    return {
        "model": graph.name,
        "tflm_arena_bytes": baseline.arena_head,
        "peak_bytes": plan.peak,
        "ops": [
            {
                "step": step,
                "kind": op.kind,
                "source_index": op.source_index,
                "outputs": [graph.tensors[o].name for o in op.outputs],
                "live_bytes": live[step],
            }
            for step, op in enumerate(graph.ops)
        ],
        "buffers": [
            {
                "name": b.name,
                "tensor": b.tensor,
                "bytes": b.size,
                "first_step": b.first,
                "last_step": b.last,
                "offset": b.offset,
            }
            for b in plan.buffers
        ],
        "tflm_ops": len(raw.ops),
    }


def plot_timeline(graph: Graph, plan: MemoryPlan, path: str | Path, title: str = "",
                  baseline_bytes: int | None = None) -> None:
    """Live bytes per op step, each buffer a stacked band, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = len(graph.ops)
    fig, ax = plt.subplots(figsize=(max(8, steps * 0.25), 5))
    big = sorted(plan.buffers, key=lambda b: -b.size)[:20]  # name the largest, group the rest
    rest = [b for b in plan.buffers if b not in big]
    layers, labels = [], []
    for b in big:
        layers.append([b.size / 1024 if b.first <= s <= b.last else 0 for s in range(steps)])
        labels.append(b.name[:40])
    layers.append([sum(b.size for b in rest if b.first <= s <= b.last) / 1024 for s in range(steps)])
    labels.append("other buffers")
    ax.stackplot(range(steps), layers, labels=labels, step="mid")
    if baseline_bytes:
        ax.axhline(baseline_bytes / 1024, color="red", linestyle="--", label="TFLite Micro arena")
    ax.axhline(plan.peak / 1024, color="black", linestyle=":", label=f"planned peak {plan.peak / 1024:.1f} KB")
    ax.set_xlabel("op step")
    ax.set_ylabel("live KB")
    ax.set_xticks(range(steps))
    ax.set_xticklabels([op.kind.replace("_", " ").lower()[:10] for op in graph.ops], rotation=90, fontsize=6)
    ax.set_title(title or f"{graph.name}: memory timeline")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
