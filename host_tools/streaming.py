"""Band-streamed execution: run chains of row-local ops band by band through
ring buffers, so the big activations of a U-Net never exist in full.

Every op becomes a node that produces its output rows in bands of `band`
rows (a node that is not streamed has one band: the whole tensor). The
schedule is made by pulling rows from the model output: before a node
computes rows y0..y1-1 it asks each input for the rows its window needs
(`rows_needed`), recursively. Every tensor then lives in a ring of rows just
deep enough for its readers (found by replaying the schedule); a tensor
whose late readers would keep the ring deep can be spilled: each band goes
to flash as it is computed and a fetch node reads rows back for each late
reader. A MEAN sums its input band by band as the rows are made (int32 sums
in the arena), so a global pooling does not hold its input whole either; a
global AVERAGE_POOL_2D runs as the same mean step (_pool_as_mean). A stage
cut is a spill for every reader, read back only once the tensor is whole:
the rings before the cut are dead before those after it are first used, so
the arena holds one stage's rings at a time (searched only when no plan
without cuts fits the budget: every row of the cut goes to flash and back).
The model input is fed band by band from the caller's buffer (one feed per
reader, so a late reader does not keep it alive) and the output is drained
band by band into the output buffer, so neither sits whole in the arena.

The result is a flat list of ordinary device steps on arena offsets: the
device never plans; it runs windowed kernels over ring inputs (`in_ring`,
`oy0`) and row-wise kernels over contiguous sub-bands.
"""
from __future__ import annotations

import importlib
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from tinyseg_mp import compress

from .bundle_writer import Step
from .graph import DTYPE_SIZES, Graph, Op, Tensor
from .lower import LOWERINGS, LowerContext, hwc
from .macs import op_macs
from .memplan import MemoryPlan, PlannedBuffer, _align
from .planner import BestOrderPlanner
from .quant import resize_bilinear_axis, resize_nearest_indices

# Ops whose output row y needs an input window of rows (device kernels with
# the band contract: input ring `in_ring`, first output row `oy0`).
WINDOWED = ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "TRANSPOSE_CONV")
# Ops whose output row y needs row y of each input (or a broadcast row).
ROWWISE = ("QUANTIZE", "LOGISTIC", "RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH", "DEQUANTIZE", "ADD", "SUB", "MUL",
           "CONCATENATION")
# Resizes: output row y reads the input rows the host's row table names
# (read modulo the input ring's depth).
RESIZES = ("RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR")
BAND_CHOICES = (1, 2, 4, 8)
# Weight blocks of streamed plans: the device's weight buffer is this big
# (small boards: the buffer counts against the same heap as the arena).
STREAM_MAX_BLOB = 4096


@dataclass(frozen=True)
class Costs:
    """Latency weights of the planner's cost model, in microseconds: per
    device step, per weight byte loaded, per byte written to / read from the
    spill store, and per multiply-accumulate of a recomputed op (None: the
    planner does not recompute). The defaults were measured in the unix port
    (benchmarks/README.md); a board profile's plan_costs come from its chip."""
    step_us: float = 25.0
    weight_byte_us: float = 0.004
    flash_write_byte_us: float = 0.05
    flash_read_byte_us: float = 0.02
    mac_us: float | None = None


UNIX_PORT = Costs()


def _image(t: Tensor) -> bool:
    return len(t.shape) == 4 and t.shape[0] == 1


def data_inputs(graph: Graph, op: Op) -> list[int]:
    """The activation inputs an op reads rows of (TRANSPOSE_CONV: its input is
    third). Constant operands are not among them: their lowering embeds them."""
    if op.kind == "TRANSPOSE_CONV":
        found = [op.inputs[2]]
    elif op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "PAD", "PADV2", "MEAN",
                     "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "RESHAPE", "TRANSPOSE", "ARG_MAX"):
        found = [op.inputs[0]]
    else:
        found = [i for i in op.inputs if i >= 0]
    return [i for i in found if not graph.tensors[i].is_const]


def streamable(graph: Graph, op: Op) -> bool:
    """Can `op` compute its output band by band?"""
    out = graph.tensors[op.outputs[0]]
    ins = [graph.tensors[i] for i in data_inputs(graph, op)]
    if op.kind == "ARG_MAX":  # over the channels: row y of the index map needs row y of the image
        return bool(ins) and _image(ins[0]) and out.shape == ins[0].shape[:3]
    if not _image(out) or out.dtype not in ("int8", "uint8", "float32") or not ins:
        return False
    if out.dtype == "float32" and op.kind != "DEQUANTIZE":
        return False  # float32 rows: only the DEQUANTIZE of a float-output model
    if op.kind in WINDOWED or op.kind in RESIZES:
        return _image(ins[0])
    consts = [graph.tensors[i] for i in op.inputs if i >= 0 and graph.tensors[i].is_const]
    if op.kind == "CONCATENATION" and (consts or op.options.get("axis", -1) not in (-1, 2, 3, -2)):
        return False
    if any(len(t.shape) >= 3 and t.shape[-3] != 1 for t in consts):
        return False  # a constant operand of ADD or MUL must be the same for every row
    return op.kind in ROWWISE and all(_image(t) and t.shape[1] in (1, out.shape[1]) for t in ins)


@dataclass(eq=False)
class Ring:
    """A tensor's rows in the arena: row y at slot y % depth."""
    name: str
    tensor: int  # graph tensor it holds rows of
    rows: int
    row_bytes: int
    depth: int = 1


@dataclass(eq=False)
class Node:
    name: str
    kind: str  # "op", "feed" (caller's input -> ring) or "fetch" (spill store -> ring)
    out: Ring
    op: Op | None = None
    ins: list[Ring] = field(default_factory=list)  # parallel to data_inputs(graph, op)
    band: int = 1
    spill_slot: int = -1  # >= 0: every band is written to this spill slot as computed
    drain: bool = False  # every band is copied to the caller's output buffer
    source: Ring | None = None  # fetch: the spilled ring whose rows it reads back
    # fetch of a stage cut: the spilled tensor is made whole before the first
    # row is read back, so the rings before the cut are dead when those after it live.
    after_whole: bool = False
    # A reduction (MEAN): its calls are bands of *input* rows, summed as soon
    # as they are made; the output is written by the call that ends the input.
    reduce: bool = False
    acc_bytes: int = 0  # int32 sums kept in the arena between its calls
    # A copy of an op computed again for a late reader (from the fed input,
    # through copies of the ops before it), so no ring holds its rows until then.
    recomputed: bool = False


@dataclass
class Call:
    node: Node
    y0: int
    y1: int


@dataclass
class StreamPlan:
    """A complete band-streamed plan: schedule, ring depths, arena offsets."""
    nodes: list[Node]
    calls: list[Call]
    plan: MemoryPlan
    offsets: dict[int, int]  # id(ring or scratch key) -> arena offset
    spills: list[Ring]
    band: int
    threshold: int
    spilled: dict[int, set[int]]  # what make_plan was asked to spill: tensor -> its readers from flash
    steps: list[Step] = field(default_factory=list)
    cuts: frozenset[int] = frozenset()  # spilled tensors that are stage cuts (every reader fetches after it is whole)
    recomputed: dict[int, frozenset[int]] = field(default_factory=dict)  # tensor -> readers of a recomputed copy
    recomputed_macs: int = 0  # multiply-accumulates of the ops computed again for them

    @property
    def peak(self) -> int:
        return self.plan.peak

    def cost_us(self, costs: Costs = UNIX_PORT) -> float:
        """Estimated latency (before the steps are lowered: the spill store's and recomputing's part)."""
        return (len(self.steps) * costs.step_us + weight_bytes(self) * costs.weight_byte_us
                + self.flash_bytes() * costs.flash_write_byte_us + self.fetched_bytes() * costs.flash_read_byte_us
                + self.recomputed_macs * (costs.mac_us or 0.0))

    def flash_bytes(self) -> int:
        """Spilled bytes written per inference, before compression."""
        return sum(r.rows * r.row_bytes for r in self.spills)

    def fetched_bytes(self) -> int:
        """Spilled bytes read back per inference (each late reader fetches its own), before compression."""
        return sum(n.out.rows * n.out.row_bytes for n in self.nodes if n.kind == "fetch")


def _geometry(t: Tensor) -> tuple[int, int]:
    """(rows, bytes per row); a tensor that is not an image is one row."""
    if _image(t):
        h, w, c = hwc(t)
        return h, w * c * DTYPE_SIZES[t.dtype]
    return 1, t.nbytes


def rows_needed(graph: Graph, node: Node, k: int, y0: int, y1: int) -> tuple[int, int] | None:
    """Rows lo..hi of input k that rows y0..y1-1 of the node's output need (None: none)."""
    src = node.ins[k]
    if node.reduce:
        return (y0, y1 - 1)  # a reduction's calls are bands of its input
    if src.rows == 1 or node.band >= node.out.rows:
        return (0, src.rows - 1)  # a broadcast row, or an op computed whole
    op = node.op
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D"):
        pad, k_h, s, d = _window(graph, op)
        lo, hi = y0 * s - pad, (y1 - 1) * s - pad + (k_h - 1) * d
    elif op.kind == "TRANSPOSE_CONV":
        pad, k_h, s, _ = _window(graph, op)
        lo, hi = -((k_h - 1 - y0 - pad) // s), (y1 - 1 + pad) // s
    elif op.kind == "RESIZE_BILINEAR":
        rows = _resize_rows(graph, op, src.rows)[y0:y1]
        lo, hi = min(r[0] for r in rows), max(r[1] for r in rows)
    elif op.kind == "RESIZE_NEAREST_NEIGHBOR":
        ymap = _resize_rows(graph, op, src.rows)
        lo, hi = min(ymap[y0:y1]), max(ymap[y0:y1])
    else:
        lo, hi = y0, y1 - 1
    lo, hi = max(lo, 0), min(hi, src.rows - 1)
    return (lo, hi) if lo <= hi else None


def _resize_rows(graph: Graph, op: Op, in_rows: int) -> list:
    """A resize's source rows per output row (cached): (lo, hi, ...) for bilinear, the row for nearest."""
    cache = graph.__dict__.setdefault("_resize_rows", {})
    if op.index not in cache:
        o, out = op.options, graph.tensors[op.outputs[0]]
        fn = resize_bilinear_axis if op.kind == "RESIZE_BILINEAR" else resize_nearest_indices
        cache[op.index] = list(fn(in_rows, out.shape[1], o.get("align_corners", False),
                                  o.get("half_pixel_centers", False)))
    return cache[op.index]


def _window(graph: Graph, op: Op) -> tuple[int, int, int, int]:
    """(top padding, kernel height, stride, dilation) along the rows, as the lowerings compute them (cached)."""
    cache = graph.__dict__.setdefault("_windows", {})
    if op.index not in cache:
        p = _whole_steps(graph, op)[0].params
        k_h = p.get("k_h", p.get("f_h"))
        cache[op.index] = (p["pad_top"], k_h, p["stride_h"], p.get("dil_h", 1))
    return cache[op.index]


class _Offsets(LowerContext):
    """A lowering context over arbitrary tensor views and offsets."""

    def __init__(self, graph: Graph, offsets: dict[int, int], scratch: int = 0):
        self.graph = graph
        self.max_blob = STREAM_MAX_BLOB
        self._offsets = offsets
        self._scratch = scratch

    def offset(self, index: int) -> int:
        return self._offsets.get(index, 0)

    def scratch(self, op: Op) -> int:
        return self._scratch


def _module(op: Op):
    return importlib.import_module(f"host_tools.lower.op_{LOWERINGS[op.kind]}")


def _whole_steps(graph: Graph, op: Op) -> list[Step]:
    """The op lowered once with every offset 0 (cached): band steps patch it."""
    cache = graph.__dict__.setdefault("_whole_steps", {})
    if op.index not in cache:
        pool = _pool_as_mean(graph, op) if op.kind == "AVERAGE_POOL_2D" else None
        cache[op.index] = [pool] if pool else _module(op).lower(_Offsets(graph, {}), op)
    return cache[op.index]


def _reduces(graph: Graph, op: Op) -> bool:
    """A MEAN over the rows of an image, or a global AVERAGE_POOL_2D that the
    device's mean step computes exactly (_pool_as_mean): it can sum its input
    band by band."""
    x = graph.tensors[op.inputs[0]]
    if not (_image(x) and x.shape[1] > 1 and x.dtype == "int8"):
        return False
    return op.kind == "MEAN" or (op.kind == "AVERAGE_POOL_2D" and _pool_as_mean(graph, op) is not None)


def _round_div(s: np.ndarray, n: int) -> np.ndarray:
    """TFLite Micro's average: s / n rounded half away from zero."""
    return np.where(s > 0, (s + n // 2) // n, -((-s + n // 2) // n))


def _pool_as_mean(graph: Graph, op: Op) -> Step | None:
    """A global AVERAGE_POOL_2D (one window over the whole input, no padding,
    no clamp narrower than int8) as the device's mean step: bias 0, out_zp 0
    and a multiplier/shift whose MultiplyByQuantizedMultiplier of every
    possible sum (|sum| <= 128 * H * W) equals the sum / (H * W) rounded half
    away from zero, checked here for every sum; None when no such pair (or
    the pool is not global)."""
    cache = graph.__dict__.setdefault("_pool_as_mean", {})
    if op.index in cache:
        return cache[op.index]
    cache[op.index] = None
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype != "int8" or out.dtype != "int8" or len(out.shape) != 4 or out.shape[1:3] != (1, 1):
        return None
    p = _module(op).lower(_Offsets(graph, {}), op)[0].params
    in_h, in_w, c = hwc(x)
    if ((p["f_h"], p["f_w"], p["pad_top"], p["pad_left"]) != (in_h, in_w, 0, 0)
            or (p["act_min"], p["act_max"]) != (-128, 127)):
        return None
    from .quant import multiply_by_quantized_multiplier

    n = in_h * in_w
    sums = np.arange(-128 * n, 127 * n + 1, dtype=np.int64)
    want = _round_div(sums, n)
    for shift in range(1, 31):  # x << shift, then one rounding (SRDHM): no double rounding
        if (128 * n) << shift >= 1 << 31 or (1 << (31 - shift)) // n < 2:
            break
        base = (1 << (31 - shift)) // n
        for mult in range(max(base - 4, 1), base + 8):
            if np.array_equal(multiply_by_quantized_multiplier(sums, mult, shift), want):
                cache[op.index] = Step("mean", dict(in_off=0, in_h=in_h, in_w=in_w, c=c, out_off=0, bias=0, out_zp=0,
                                                    mult=mult, shift=shift, acc_off=0, begin=1, end=1))
                return cache[op.index]
    return None


def build_nodes(graph: Graph, band: int, threshold: int, spilled: dict[int, set[int]],
                cuts: frozenset[int] = frozenset(),
                recomputed: dict[int, frozenset[int]] | None = None) -> tuple[list[Node], Node]:
    """Nodes for every op needed by the output; ops whose output has at least
    `threshold` bytes and can stream get `band` rows per call; a tensor in
    `spilled` goes to flash, and the ops listed for it read it back from there
    (a tensor in `cuts`, spilled for all its readers: once it is whole). A
    tensor in `recomputed` is computed again for the readers listed for it:
    each reads its own copy of the ops from the model input to the tensor."""
    recomputed = recomputed or {}
    rings: dict[int, Ring] = {}
    nodes: list[Node] = []
    producer: dict[int, Node] = {}
    spill_slots: dict[int, int] = {}
    for op in graph.ops:
        out = graph.tensors[op.outputs[0]]
        rows, row_bytes = _geometry(out)
        if streamable(graph, op) and op.kind == "ARG_MAX":  # a (1, H, W) index map: H rows
            rows, row_bytes = out.shape[1], out.nbytes // out.shape[1]
        ring = rings[out.index] = Ring(out.name, out.index, rows, row_bytes)
        streams = streamable(graph, op) and out.nbytes >= threshold
        node = Node(f"op {op.source_index} {op.kind}", "op", ring, op, band=band if streams else rows,
                    reduce=_reduces(graph, op))
        if out.index in spilled:
            node.spill_slot = spill_slots.setdefault(out.index, len(spill_slots))
        node.drain = out.index in graph.outputs
        producer[out.index] = node
        nodes.append(node)

    def feed_for(node: Node, i: int) -> Ring:
        t = graph.tensors[i]
        rows, row_bytes = _geometry(t)
        streams = node.reduce or node.band < node.out.rows
        feed = Node(f"feed '{t.name}' for {node.name}", "feed", Ring(f"{t.name} (fed)", i, rows, row_bytes),
                    band=band if streams else rows)
        nodes.append(feed)
        return feed.out

    def copy_of(i: int, reader: Node, made: dict[int, Ring]) -> Ring:
        """A ring of tensor i computed again for `reader` (made: the copies so far)."""
        if i in graph.inputs:
            return feed_for(reader, i)
        if i not in made:
            first = producer[i]
            node = Node(f"{first.name} (recomputed for {reader.name})", "op",
                        replace(first.out, name=f"{first.out.name} (recomputed)", depth=1), first.op,
                        band=first.band, recomputed=True)
            nodes.append(node)
            node.ins = [copy_of(j, node, made) for j in data_inputs(graph, first.op)]
            made[i] = node.out
        return made[i]

    for node in list(nodes):
        op = node.op
        for i in data_inputs(graph, op):
            t = graph.tensors[i]
            if op.index in recomputed.get(i, ()):
                node.ins.append(copy_of(i, node, {}))
            elif i in graph.inputs:  # one feed per reader: re-reading the caller's buffer is free
                node.ins.append(feed_for(node, i))
            elif op.index in spilled.get(i, ()):
                src = rings[i]
                fetch = Node(f"fetch '{t.name}' for {node.name}", "fetch",
                             Ring(f"{t.name} (fetched)", i, src.rows, src.row_bytes),
                             band=band, source=src, spill_slot=spill_slots[i], after_whole=i in cuts)
                nodes.append(fetch)
                node.ins.append(fetch.out)
            else:
                node.ins.append(rings[i])
    return nodes, producer[graph.outputs[0]]


def pull_schedule(graph: Graph, nodes: list[Node], last: Node) -> list[Call]:
    """Calls in execution order, pulling every row of the output."""
    producer = {id(n.out): n for n in nodes}
    made = {id(n.out): 0 for n in nodes}
    calls: list[Call] = []
    reducers: dict[int, list[Node]] = {}
    for n in nodes:
        if n.reduce:
            reducers.setdefault(id(n.ins[0]), []).append(n)
    summed = {id(n): 0 for n in nodes if n.reduce}

    def made_rows(ring: Ring, y1: int) -> None:
        """Rows up to y1 of `ring` exist: reductions of it sum them at once,
        so their input need not stay for a later pull."""
        made[id(ring)] = y1
        for r in reducers.get(id(ring), []):
            if summed[id(r)] < y1:
                calls.append(Call(r, summed[id(r)], y1))
                summed[id(r)] = y1
                if y1 == ring.rows:
                    made_rows(r.out, 1)

    def demand(ring: Ring, row: int) -> None:
        node = producer[id(ring)]
        if node.reduce:
            demand(node.ins[0], node.ins[0].rows - 1)  # the sums follow the input's rows
            return
        while made[id(ring)] <= row:
            y0 = made[id(ring)]
            y1 = min(y0 + node.band, ring.rows)
            if node.kind == "fetch":
                demand(node.source, node.source.rows - 1 if node.after_whole else y1 - 1)
            for k, src in enumerate(node.ins):
                need = rows_needed(graph, node, k, y0, y1)
                if need:
                    demand(src, need[1])
            calls.append(Call(node, y0, y1))
            made_rows(ring, y1)

    demand(last.out, last.out.rows - 1)
    return calls


def ring_depths(graph: Graph, nodes: list[Node], calls: list[Call]) -> None:
    """Set each ring's depth: the most rows it must hold at once over the schedule."""
    pending: dict[tuple[int, int], deque] = {}
    readers: dict[int, list[tuple[int, int]]] = {}
    for node in nodes:
        for k, src in enumerate(node.ins):
            readers.setdefault(id(src), []).append((id(node), k))
            pending[(id(node), k)] = deque()
    needs = [[rows_needed(graph, c.node, k, c.y0, c.y1) for k in range(len(c.node.ins))] for c in calls]
    for c, call_needs in zip(calls, needs):
        for k, need in enumerate(call_needs):
            if need:
                pending[(id(c.node), k)].append(need[0])
    for node in nodes:
        node.out.depth = 1
    for c, call_needs in zip(calls, needs):
        for k, need in enumerate(call_needs):
            if need:
                pending[(id(c.node), k)].popleft()
        if c.node.reduce:
            continue  # writes its one output row once
        oldest = c.y0
        for key in readers.get(id(c.node.out), []):
            if pending[key]:
                oldest = min(oldest, pending[key][0])
        ring = c.node.out
        ring.depth = min(max(ring.depth, c.y1 - oldest), ring.rows)


def split_calls(graph: Graph, calls: list[Call]) -> list[Call]:
    """Split calls so no band wraps around a ring it writes, or a ring that a
    row-wise op reads (windowed kernels read rings modulo their depth)."""
    result = []
    for c in calls:
        cuts = {c.y0, c.y1}
        rings = [c.node.out]
        if c.node.kind == "op" and c.node.op.kind not in WINDOWED and c.node.op.kind not in RESIZES:
            rings += [r for r in c.node.ins if r.rows > 1]
        for r in rings:
            if r.depth < r.rows:
                cuts.update(range((c.y0 // r.depth + 1) * r.depth, c.y1, r.depth))
        edges = sorted(cuts)
        result += [Call(c.node, a, b) for a, b in zip(edges, edges[1:])]
    return result


def _scratch_parts(graph: Graph, node: Node) -> tuple[int, int]:
    """(the op kernel's scratch, the spill/fetch row buffers) of a node, in bytes."""
    op_part = node.acc_bytes
    if node.kind == "op":
        fn = getattr(_module(node.op), "scratch_bytes", None)
        op_part += _align(fn(graph, node.op)) if fn else 0
    rows = node.out.row_bytes + compress.bound(node.out.row_bytes) if node.kind == "fetch" or node.spill_slot >= 0 else 0
    return op_part, rows


def plan_rings(graph: Graph, nodes: list[Node], calls: list[Call]) -> tuple[MemoryPlan, dict[int, int]]:
    """Place every ring and scratch buffer, with lifetimes in calls."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    owners: dict[int, object] = {}

    def use(key: object, at: int) -> None:
        first.setdefault(id(key), at)
        last[id(key)] = at
        owners[id(key)] = key

    scratch: dict[int, bool] = {}
    for at, c in enumerate(calls):
        if not c.node.reduce or c.y1 == c.node.ins[0].rows:  # a reduction writes its output last
            use(c.node.out, at)
        for r in c.node.ins:
            use(r, at)
        if id(c.node) not in scratch:
            scratch[id(c.node)] = sum(_scratch_parts(graph, c.node)) > 0
        if scratch[id(c.node)]:
            use(c.node, at)
    planner = BestOrderPlanner()
    entries = []
    for key, obj in owners.items():
        if isinstance(obj, Ring):
            entries.append((f"{obj.name} ({obj.depth}/{obj.rows} rows)", obj.tensor, key,
                            _align(obj.depth * obj.row_bytes)))
        else:
            entries.append((f"{obj.name} scratch", -1, key, _align(sum(_scratch_parts(graph, obj)))))
    ids = [planner.add_buffer(size, first[key], last[key]) for _, _, key, size in entries]
    buffers = [PlannedBuffer(name, tensor, -1, size, first[key], last[key], planner.offset(bid))
               for (name, tensor, key, size), bid in zip(entries, ids)]
    offsets = {key: b.offset for (_, _, key, _), b in zip(entries, buffers)}
    return MemoryPlan(peak=planner.peak(), buffers=buffers), offsets


def _slot(offsets: dict[int, int], ring: Ring, y: int) -> int:
    return offsets[id(ring)] + (y % ring.depth) * ring.row_bytes


def _band_view(t: Tensor, rows: int) -> Tensor:
    return replace(t, shape=(1, rows) + tuple(t.shape[2:]))


def lower_calls(graph: Graph, calls: list[Call], offsets: dict[int, int]) -> list[Step]:
    """Device steps of the schedule, every offset resolved."""
    steps: list[Step] = []
    for c in calls:
        node, y0, y1 = c.node, c.y0, c.y1
        rows = y1 - y0
        ring = node.out
        out_at = _slot(offsets, ring, y0)
        scratch = offsets.get(id(node), 0)
        row_tmp = scratch + _scratch_parts(graph, node)[0]  # spill/fetch buffers follow the kernel's scratch
        if node.kind == "feed":
            steps.append(Step("feed", dict(src_off=y0 * ring.row_bytes, dst_off=out_at, n=rows * ring.row_bytes),
                              source=node.name))
        elif node.kind == "fetch":
            steps.append(Step("fetch", dict(dst_off=out_at, r0=y0, rows=rows, row_bytes=ring.row_bytes,
                                            slot=node.spill_slot, tmp_off=row_tmp), source=node.name))
        else:
            steps += _op_steps(graph, node, y0, y1, offsets, scratch)
            if node.reduce:
                y0, rows = 0, int(y1 == node.ins[0].rows)  # the output row, once the input is summed
            if node.spill_slot >= 0:
                steps.append(Step("spill", dict(src_off=out_at, rows=rows, row_bytes=ring.row_bytes,
                                                slot=node.spill_slot, tmp_off=row_tmp, r0=y0),
                                  source=f"spill '{ring.name}'"))
        if node.drain and rows:
            steps.append(Step("drain", dict(src_off=out_at, dst_off=y0 * ring.row_bytes, n=rows * ring.row_bytes),
                              source=f"drain '{ring.name}'"))
    return steps


def _op_steps(graph: Graph, node: Node, y0: int, y1: int, offsets: dict[int, int], scratch: int) -> list[Step]:
    op = node.op
    ins = data_inputs(graph, op)
    out_at = _slot(offsets, node.out, y0)
    if node.reduce:
        src = node.ins[0]
        return [replace(s, params=dict(s.params, in_off=_slot(offsets, src, y0), in_h=y1 - y0,
                                       out_off=offsets[id(node.out)], acc_off=scratch,
                                       begin=int(y0 == 0), end=int(y1 == src.rows)), source=node.name)
                for s in _whole_steps(graph, op)]
    if op.kind in WINDOWED:
        src = node.ins[0]
        return [replace(s, params=dict(s.params, in_off=offsets[id(src)], in_ring=src.depth, out_off=out_at,
                                       out_h=y1 - y0, oy0=y0), source=node.name)
                for s in _whole_steps(graph, op)]
    if op.kind == "RESIZE_BILINEAR":
        s = _whole_steps(graph, op)[0]
        src = node.ins[0]
        p = s.params
        rows = np.frombuffer(s.blob[: p["x_off"]], "<i2").reshape(-1, 4)[y0:y1].copy()
        rows[:, :2] %= src.depth  # source rows as ring slots
        ytab = rows.tobytes()
        return [Step("resize_bilinear", dict(p, in_off=offsets[id(src)], in_h=src.depth, out_off=out_at,
                                             out_h=y1 - y0, x_off=len(ytab)),
                     ytab + s.blob[p["x_off"] :], source=node.name)]
    if op.kind == "RESIZE_NEAREST_NEIGHBOR":
        s = _whole_steps(graph, op)[0]
        src = node.ins[0]
        p = s.params
        ymap = [int.from_bytes(s.blob[2 * y : 2 * y + 2], "little") % src.depth for y in range(y0, y1)]
        ybytes = b"".join(v.to_bytes(2, "little") for v in ymap)
        ybytes += b"\0" * (-len(ybytes) % 4)
        blob = ybytes + s.blob[p["x_off"] : p["x_off"] + 2 * p["out_w"]]
        return [Step("resize_nearest", dict(p, in_off=offsets[id(src)], out_off=out_at, out_h=y1 - y0,
                                            x_off=len(ybytes)), blob, source=node.name)]
    # Row-wise or whole: lower the op on views of this band.
    tensors = list(graph.tensors)
    where: dict[int, int] = {}
    banded = node.band < node.out.rows
    for i, src in zip(ins, node.ins):
        t = graph.tensors[i]
        if banded and src.rows > 1:
            tensors[i] = _band_view(t, y1 - y0)
            where[i] = _slot(offsets, src, y0)
        else:
            where[i] = offsets.get(id(src), 0)
    out = graph.tensors[op.outputs[0]]
    if banded:
        tensors[out.index] = _band_view(out, y1 - y0)
    where[out.index] = out_at
    view = Graph(tensors, graph.ops, graph.inputs, graph.outputs, graph.name)
    return [replace(s, source=node.name) for s in _module(op).lower(_Offsets(view, where, scratch), op)]


def make_plan(graph: Graph, band: int, threshold: int, spilled: dict[int, set[int]],
              cuts: frozenset[int] = frozenset(), recomputed: dict[int, frozenset[int]] | None = None) -> StreamPlan:
    """The plan of one choice: band height, streaming threshold, spills (and
    which of them are stage cuts), recomputed tensors: see build_nodes."""
    nodes, last = build_nodes(graph, band, threshold, spilled, cuts, recomputed)
    calls = pull_schedule(graph, nodes, last)
    used = {id(c.node) for c in calls}
    nodes = [n for n in nodes if id(n) in used]
    ring_depths(graph, nodes, calls)
    calls = split_calls(graph, calls)
    for n in nodes:
        if n.reduce and sum(c.node is n for c in calls) > 1:
            n.acc_bytes = 4 * graph.tensors[n.op.outputs[0]].elements
    plan, offsets = plan_rings(graph, nodes, calls)
    spills = [n.out for n in nodes if n.kind == "op" and n.spill_slot >= 0]
    return StreamPlan(nodes, calls, plan, offsets, spills, band, threshold, spilled, cuts=frozenset(cuts),
                      recomputed=dict(recomputed or {}),
                      recomputed_macs=sum(op_macs(graph, n.op) for n in nodes if n.recomputed))


def spill_candidates(graph: Graph, plan: StreamPlan) -> list[tuple[int, frozenset[int]]]:
    """Skip tensors worth spilling under `plan`'s schedule, each with its late
    readers: the ops that first read it after it is complete (so its ring
    must hold it whole for them), or else its last reader."""
    first_read: dict[tuple[int, int], int] = {}
    last_made: dict[int, int] = {}
    for at, c in enumerate(plan.calls):
        if c.node.kind == "op" and not c.node.recomputed:
            last_made[c.node.out.tensor] = at
            for r in c.node.ins:
                first_read.setdefault((r.tensor, c.node.op.index), at)
    spilled = {r.tensor for r in plan.spills}
    result = []
    for t in graph.tensors:
        if (t.producer is None or len(t.consumers) < 2 or not _image(t) or t.shape[1] < 2
                or t.dtype not in ("int8", "uint8") or t.index in graph.outputs or t.index in spilled):
            continue
        late = frozenset(op for op in t.consumers if first_read.get((t.index, op), -1) > last_made.get(t.index, 0))
        result.append((t.index, late or frozenset({max(t.consumers)})))
    return result


def cut_candidates(graph: Graph, plan: StreamPlan) -> list[int]:
    """Tensors that can be stage cuts under `plan`: spilled as they are made
    and fetched by every reader once whole, so the rings before the cut and
    the rings after it are never live at the same time. Only tensors whose
    rows the arena holds at the peak: a cut elsewhere leaves the peak where it is."""
    spilled = {r.tensor for r in plan.spills}
    live = plan.plan.live_bytes(len(plan.calls))
    at = live.index(max(live))
    held = {b.tensor for b in plan.plan.buffers if b.first <= at <= b.last}
    made = {n.out.tensor for n in plan.nodes if n.kind == "op"}
    return [t.index for t in graph.tensors
            if t.producer is not None and t.consumers and _image(t) and t.shape[1] >= 2
            and t.dtype in ("int8", "uint8") and t.index not in graph.outputs and t.index not in spilled
            and t.index in made and t.index in held]


def recompute_candidates(graph: Graph, plan: StreamPlan) -> list[tuple[int, frozenset[int]]]:
    """Skip tensors whose late readers (as spill_candidates) could each read
    a copy computed again from the model input: every op before the tensor
    streams (none sums rows, none is spilled or already recomputed)."""
    streamed = {n.op.index for n in plan.nodes if n.kind == "op" and not n.reduce and n.band < n.out.rows}
    held = {t for t, _ in plan.spilled.items()} | set(plan.recomputed)
    result = []
    for t, readers in spill_candidates(graph, plan):
        todo, seen = [t], set()
        while todo:
            i = todo.pop()
            if i in graph.inputs or i in seen:
                continue
            seen.add(i)
            op = graph.tensors[i].producer
            if op not in streamed or i in held or i in graph.outputs:
                break
            todo += data_inputs(graph, graph.ops[op])
        else:
            result.append((t, readers))
    return result


def _greedy_spills(graph: Graph, band: int, threshold: int, budget: int, cut: bool,
                   costs: Costs = UNIX_PORT) -> StreamPlan:
    """Greedy: from no spills, add the skip spill (for its late readers) or,
    with `cut`, the stage cut that lowers the peak most, while the peak is
    over `budget` and any does. When `costs` prices recomputing (a chip
    where flash writes cost more than computing again), recomputing a skip
    tensor is a choice too, and each step takes the change that adds the
    least estimated latency per byte of peak it saves."""
    best = make_plan(graph, band, threshold, {})
    while best.peak > budget:
        trials = [make_plan(graph, band, threshold, {**best.spilled, t: set(readers)}, best.cuts, best.recomputed)
                  for t, readers in spill_candidates(graph, best)]
        trials += [make_plan(graph, band, threshold, {**best.spilled, t: set(graph.tensors[t].consumers)},
                             best.cuts | {t}, best.recomputed)
                   for t in cut_candidates(graph, best)] if cut else []
        if costs.mac_us is not None:
            trials += [make_plan(graph, band, threshold, best.spilled, best.cuts, {**best.recomputed, t: readers})
                       for t, readers in recompute_candidates(graph, best)]
        trials = [p for p in trials if p.peak < best.peak]
        if not trials:
            break
        if costs.mac_us is None:
            best = min(trials, key=lambda p: (p.peak, p.cost_us()))
        else:
            base = best.cost_us(costs)
            best = min(trials, key=lambda p: ((p.cost_us(costs) - base) / (best.peak - p.peak), p.peak))
    return best


def search(graph: Graph, budget: int, progress=None, costs: Costs = UNIX_PORT) -> StreamPlan | None:
    """The plan of least estimated latency whose peak fits `budget`, or the
    plan of least peak (peak > budget) when none fits; None when no op streams.
    Stage cuts (every row of an activation to flash and back, each inference)
    are searched only when no plan without them fits."""
    sizes = sorted({graph.tensors[op.outputs[0]].nbytes for op in graph.ops
                    if streamable(graph, op) or _reduces(graph, op)}, reverse=True)
    if not sizes:
        return None
    fitting: list[StreamPlan] = []
    smallest: StreamPlan | None = None
    for cut in (False, True):
        for band in BAND_CHOICES:
            for threshold in sizes:
                best = _greedy_spills(graph, band, threshold, budget, cut, costs)
                if progress:
                    progress(f"band {band}, stream tensors >= {threshold:,d} B{', stage cuts' if cut else ''}: "
                             f"peak {best.peak:,d} B")
                if smallest is None or best.peak < smallest.peak:
                    smallest = best
                if best.peak <= budget:
                    best.steps = lower_calls(graph, best.calls, best.offsets)
                    fitting.append(best)
                    if not best.spills or costs.mac_us is None:
                        break  # a lower threshold streams more ops: no faster, unless it writes less to flash
        if fitting:
            break
    if not fitting:
        smallest.steps = lower_calls(graph, smallest.calls, smallest.offsets)
        return smallest
    return min(fitting, key=lambda p: p.cost_us(costs))


def weight_bytes(plan: StreamPlan) -> int:
    """Weight and table bytes the device loads per inference (every band reloads its blob)."""
    return sum(len(s.blob) for s in plan.steps)


