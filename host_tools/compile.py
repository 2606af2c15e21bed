"""`tinyseg compile`: model -> optimised memory plan -> device steps -> .tsb bundle."""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from tinyseg_mp import bundle

from . import streaming, tflite_import
from .bundle_writer import Step, write_bundle
from .graph import Graph
from .lower import for_kernels, hwc, lower_graph
from .lower.op_conv2d import paired_room
from .optimize import Optimized, elide_flattens, elide_identity_pads, explain_peak, fold_pads, optimize


@dataclass
class Plan:
    """The plan for one model and budget: whole tensors with spills
    (`optimized`), or band-streamed (`streamed`) when that cannot fit."""
    graph: Graph
    optimized: Optimized
    streamed: streaming.StreamPlan | None = None
    rewrites: list[str] = field(default_factory=list)  # what the streamed graph changed, for reports

    @property
    def peak(self) -> int:
        return self.streamed.peak if self.streamed else self.optimized.plan.peak

    @property
    def met(self) -> bool:
        budget = self.optimized.budget
        return budget is None or self.peak <= budget

    def why_not(self) -> str:
        """Why the budget cannot be met: the op at the peak and what it holds."""
        if not self.streamed:
            return explain_peak(self.optimized)
        plan = self.streamed.plan
        live = plan.live_bytes(len(self.streamed.calls))
        at = max(range(len(live)), key=live.__getitem__)
        held = sorted((b for b in plan.buffers if b.first <= at <= b.last), key=lambda b: -b.size)
        return (f"band-streamed, the peak is at {self.streamed.calls[at].node.name}, which holds "
                + ", ".join(f"{b.name[:48]} ({b.size:,d} B)" for b in held[:4]))


@dataclass
class Compiled:
    chosen: Plan
    steps: list[Step]
    bundle_bytes: int
    weight_buffer: int = 0  # the weight buffer, when larger than the largest blob (pairing_room)

    @property
    def optimized(self) -> Optimized:
        return self.chosen.optimized

    @property
    def spill_count(self) -> int:
        return len(self.chosen.streamed.spills) if self.chosen.streamed else len(self.chosen.optimized.spills)

    @property
    def plan(self):
        return self.chosen.streamed.plan if self.chosen.streamed else self.chosen.optimized.plan


class BudgetError(ValueError):
    pass


# What a damaged or inconsistent model makes the passes raise (an index past
# a shape, a quantisation that overflows): turned into one ModelError line.
_FOREIGN = (IndexError, KeyError, OverflowError, ZeroDivisionError, TypeError, AttributeError, FloatingPointError,
            struct.error, RecursionError)


def _guard(model, stage: str, fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except _FOREIGN as exc:
        import traceback

        tb = traceback.extract_tb(exc.__traceback__)[-1]
        raise tflite_import.ModelError(
            f"{model}: {stage} failed on inconsistent tensors or options ({type(exc).__name__}: {exc}, at "
            f"{Path(tb.filename).name}:{tb.lineno}); the file is damaged, or this compiler does not handle it: "
            "re-export the model, or report it with the model") from None


def plan_model(model: str | Path, budget: int | None = None, progress=None,
               costs: streaming.Costs | None = None) -> Plan:
    """Whole tensors and spills when they fit `budget`; else band streaming,
    choosing among band plans by `costs` (a board's plan_costs)."""
    return _guard(model, "planning", _plan_model, model, budget, progress, costs or streaming.UNIX_PORT)


def _plan_model(model, budget, progress, costs) -> Plan:
    graph = tflite_import.load(model)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise tflite_import.ModelError(f"{model}: {len(graph.inputs)} inputs, {len(graph.outputs)} outputs; one of each is supported")
    opt = optimize(graph, budget)
    if opt.met:
        return Plan(graph, opt)
    stream_graph = tflite_import.load(model)
    # A padded copy or a flattened copy would have to be made whole: the conv
    # pads as it reads, and FULLY_CONNECTED reads any shape flattened.
    rewrites = elide_identity_pads(stream_graph) + fold_pads(stream_graph) + elide_flattens(stream_graph)
    streamed = streaming.search(stream_graph, budget, progress, costs)
    if streamed is None or streamed.peak >= opt.plan.peak:
        return Plan(graph, opt)
    return Plan(stream_graph, opt, streamed, rewrites)


def runtime_buffers(chosen: Plan, steps: list[Step] | None = None, weight_buffer: int = 0) -> dict[str, int]:
    """Every buffer tinyseg_mp.Model allocates for this plan, in bytes: the
    arena, the weight buffer (the largest step blob, or weight_buffer if
    larger) and, for a band-streamed plan, its output buffer and
    input_view() buffer. `steps`: the lowered steps when known (else the
    plan is lowered here)."""
    graph = chosen.graph
    if steps is None:
        steps = chosen.streamed.steps if chosen.streamed else lower_graph(graph, chosen.optimized.plan)
    buffers = {"arena": chosen.peak, "weight buffer": max([len(s.blob) for s in steps] + [weight_buffer])}
    if chosen.streamed:
        buffers["output buffer"] = graph.tensors[graph.outputs[0]].nbytes
        buffers["input_view buffer"] = graph.tensors[graph.inputs[0]].nbytes
    return buffers


def check_max_alloc(model: str | Path, buffers: dict[str, int], max_alloc: int) -> None:
    """BudgetError when a buffer is larger than the board's largest allocation."""
    for name, size in buffers.items():
        if size > max_alloc:
            fix = ("compile with a --budget under that" if name == "arena" else
                   "the input and output are whole buffers; use a board with a larger max_alloc_bytes"
                   if "put" in name else "the largest op's weights are one block; use a board with more RAM "
                                         "or a model with fewer channels per op")
            raise BudgetError(f"{model}: the {name} is {size:,d} bytes, more than the board's largest allocation "
                              f"(max_alloc_bytes {max_alloc:,d}): {fix}")


def compile_model(model: str | Path, out: str | Path, budget: int | None = None, progress=None,
                  max_alloc: int | None = None, thumb: bool = False, room: int | None = None,
                  spill_stage: int = 0, costs: streaming.Costs | None = None) -> Compiled:
    """Compile `model`; with a budget, spill, then stream, until the planned
    arena fits it. With max_alloc (a board's max_alloc_bytes), every buffer
    the runtime allocates must fit in one block of that size. thumb: for
    firmware with asm_thumb (an ARM board), the blobs carry the Thumb
    kernels' extra layouts (lower.for_kernels). room (a board's budget): the
    arena, the weight buffer and a streamed plan's output buffer together
    must fit it; the arena budget is lowered until they do. spill_stage (a
    board's flash block): the RAM per spill slot that keeps littlefs from
    copying blocks (tinyseg_mp/spill.py), counted in room. costs: the
    latency model band plans are chosen by (a board's plan_costs; None: the
    unix port's). The bundle
    is checked with the device's own loader before it is renamed into place."""
    args = (progress, max_alloc, thumb, spill_stage, costs, room)
    if room is None:
        return _guard(model, "compiling", _compile_model, model, out, budget, *args)
    budget = room if budget is None else min(budget, room)
    for _ in range(4):  # each retry lowers the arena by what the other buffers took
        compiled = _guard(model, "compiling", _compile_model, model, out, budget, *args)
        held = load_buffers(compiled, spill_stage)
        if held <= room:
            return compiled
        if progress:
            progress(f"arena {compiled.chosen.peak:,d} + weight, output and spill stage buffers = {held:,d} bytes, over the "
                     f"board's {room:,d}: planning again")
        budget = compiled.chosen.peak - (held - room)
    Path(out).unlink(missing_ok=True)
    raise BudgetError(f"{model}: the arena and the weight, output and spill stage buffers take {held:,d} bytes, more "
                      f"than the board's {room:,d}; the smallest arena tried was {compiled.chosen.peak:,d} bytes")


def compile_for_board(model: str | Path, out: str | Path, board, progress=None, budget: int | None = None
                      ) -> Compiled:
    """Compile `model` as `tinyseg compile --board` does for `board`
    (boards.Board): its budget holds the arena and the other buffers, its
    kernels' layouts, spill stages of its flash block, its measured costs.
    budget (`--budget` with `--board`): a lower arena budget; the buffers
    still fit the board's, and the weight buffer takes its spare room."""
    return compile_model(model, out, budget, progress, max_alloc=board.max_alloc_bytes, thumb=board.thumb,
                         room=board.budget, spill_stage=board.flash_block_bytes, costs=board.costs)


def load_buffers(compiled: Compiled, spill_stage: int = 0) -> int:
    """Bytes of the buffers Model() allocates (a streamed plan's input_view()
    buffer included: the board demo converts each camera frame into it), with
    a stage of spill_stage bytes per spill slot."""
    return sum(runtime_buffers(compiled.chosen, compiled.steps, compiled.weight_buffer).values()) + \
        spill_stage * compiled.spill_count


def pairing_room(steps: list[Step]) -> int:
    """The weight buffer in which every conv step of a Thumb bundle can run
    on paired lanes (op_conv2d.paired_room): on the virtual Pico a group on
    bytes costs about 4.3 cycles per MAC, paired about 3.2."""
    return max((paired_room(s.params, len(s.blob)) for s in steps if s.op in ("conv2d", "concat_conv2d")), default=0)


def _compile_model(model, out, budget, progress, max_alloc, thumb, spill_stage, costs, room) -> Compiled:
    chosen = plan_model(model, budget, progress, costs)
    if not chosen.met:
        raise BudgetError(f"{model}: cannot fit a budget of {budget:,d} bytes; the smallest peak reached is "
                          f"{chosen.peak:,d} bytes: {chosen.why_not()}. Use a budget of at least that.")
    graph = chosen.graph
    if chosen.streamed:
        sp = chosen.streamed
        steps = sp.steps
        # Input and output stay in the caller's buffers: fed and drained band by band.
        in_off = out_off = -1
        slots = [(r.rows, r.row_bytes) for r in sp.spills]
        spill_names = [r.name for r in sp.spills]
    else:
        opt = chosen.optimized
        steps = lower_graph(graph, opt.plan)
        in_off, out_off = (opt.plan.tensor_offsets[t] for t in (graph.inputs[0], graph.outputs[0]))
        slots = [(s.rows, s.row_bytes) for s in opt.spills]
        spill_names = [graph.tensors[s.tensor].name for s in opt.spills]
    steps = for_kernels(steps, thumb)
    weight_buffer = 0
    if thumb and room is not None:  # the board's spare room, if it has it, for paired conv lanes
        held = sum(runtime_buffers(chosen, steps).values()) + spill_stage * len(slots)
        largest = max((len(s.blob) for s in steps), default=0)
        want = pairing_room(steps)
        if want > largest and held + want - largest <= room:
            weight_buffer = want
    if max_alloc is not None:
        check_max_alloc(model, runtime_buffers(chosen, steps, weight_buffer), max_alloc)
    size = write_graph_bundle(out, Path(model).name, graph, steps, chosen.peak, (in_off, out_off),
                              list(zip(spill_names, slots)), chosen.streamed is not None, spill_stage, weight_buffer)
    return Compiled(chosen, steps, size, weight_buffer)


def write_graph_bundle(out: str | Path, model_name: str, graph: Graph, steps: list[Step], arena_bytes: int,
                       io_offsets: tuple[int, int], spills: list[tuple[str, tuple[int, int]]] = (),
                       streamed: bool = False, spill_stage: int = 0, weight_buffer: int = 0) -> int:
    """Write the steps of `graph` as a bundle: META from its input and output
    (at arena offsets io_offsets, -1: the caller's buffer), INFO for reports,
    SPIL from `spills` (name, (rows, row bytes)). Returns the bundle's size."""
    x, y = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    meta = {
        "arena_bytes": arena_bytes,
        "blob_bytes": max([len(s.blob) for s in steps] + [weight_buffer]),
        "in_off": io_offsets[0], "in_bytes": x.nbytes, "in_dtype": bundle.DTYPES.index(x.dtype),
        "out_off": io_offsets[1], "out_bytes": y.nbytes, "out_dtype": bundle.DTYPES.index(y.dtype),
        "spill_stage": spill_stage if spills else 0,
    }
    meta.update(zip(("in_h", "in_w", "in_c"), hwc(x)))
    meta.update(zip(("out_h", "out_w", "out_c"), hwc(y)))
    info = {
        "model": model_name,
        "input": {"shape": list(x.shape), "dtype": x.dtype, "scale": _q(x)[0], "zero_point": _q(x)[1]},
        "output": {"shape": list(y.shape), "dtype": y.dtype, "scale": _q(y)[0], "zero_point": _q(y)[1]},
        "steps": [s.source for s in steps],
        "spills": [name for name, _ in spills],
        "streamed": streamed,
    }
    extra = {}
    if spills:
        extra[b"SPIL"] = struct.pack(f"<{2 * len(spills)}i", *(v for _, slot in spills for v in slot))
    return write_bundle(out, meta, steps, info, extra)


def _q(t) -> tuple[float | None, int | None]:
    return (float(t.scale[0]), int(t.zero_point[0])) if t.scale is not None else (None, None)
