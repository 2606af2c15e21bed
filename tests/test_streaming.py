"""Band-streamed plans (host_tools/streaming.py): the schedule, ring depths,
the plan under a 64 KB budget, outputs equal to TFLite Micro on every
target, and the 128K unix-port heap."""
from __future__ import annotations

import json
from collections import Counter
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURES, model_path
from host_tools import streaming, tflite_import
from host_tools.boards import load_board
from host_tools.compile import compile_for_board, compile_model, plan_model
from host_tools.optimize import elide_flattens, elide_identity_pads, fold_pads
from host_tools.runner import RunError, run_bundle
from test_runtime import assert_matches, sample_inputs, tflm_reference, ulab_path  # noqa: F401 (fixture)

TARGETS = [("cpython", "numpy"), ("cpython", "ulab"), ("micropython", "viper")]
U_NET_BUDGET = 65536
# A fifth of TFLite Micro's arena (31,680 and 4,944 bytes): whole tensors with
# spills reach 27,072 and 4,936, so both stream.
ZOO_BUDGETS = {"ops_zoo_a": 6_336, "ops_zoo_b": 988}


@pytest.fixture(scope="module")
def streamed(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("streamed")
    paths = {}
    for name, budget in (("tiny_unet", U_NET_BUDGET), *ZOO_BUDGETS.items()):
        paths[name] = str(out / f"{name}.tsb")
        compiled = compile_model(model_path(name), paths[name], budget)
        assert compiled.chosen.streamed is not None and compiled.chosen.peak <= budget
    return paths


def unet_plan(band: int = 1, threshold: int = 9600, spilled: dict[int, set[int]] | None = None) -> streaming.StreamPlan:
    graph = tflite_import.load(model_path("tiny_unet"))
    elide_identity_pads(graph)
    return streaming.make_plan(graph, band, threshold, spilled or {})


def test_plan_reports_a_peak_under_64k_for_the_tiny_unet():
    res = subprocess.run([sys.executable, "-m", "host_tools.cli", "plan", str(model_path("tiny_unet")),
                          "--budget", str(U_NET_BUDGET), "--json"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["mode"] == "streamed" and report["budget_met"]
    assert report["peak_bytes"] <= U_NET_BUDGET < report["tflm_arena_bytes"] // 4
    assert report["streaming"]["io_bytes_outside_arena"] == 80 * 120 * 3 + 80 * 120
    assert all(r["depth_rows"] <= r["rows"] for r in report["streaming"]["rings"])


def test_rings_are_as_deep_as_the_windows_that_read_them():
    plan = unet_plan()
    depth = {n.op.outputs[0]: n.out.depth for n in plan.nodes if n.kind == "op"}
    graph = tflite_import.load(model_path("tiny_unet"))
    elide_identity_pads(graph)
    for op in graph.ops:
        out = graph.tensors[op.outputs[0]]
        readers = [graph.ops[c] for c in out.consumers]
        if out.nbytes >= 9600 and len(readers) == 1 and readers[0].kind == "CONV_2D":
            k = graph.tensors[readers[0].inputs[1]].shape[1]
            assert depth[out.index] == k, op.kind  # a 3x3 conv reads 3 rows; a 1x1 conv one
        if len(readers) == 1 and readers[0].kind == "MAX_POOL_2D":
            assert depth[out.index] == 2  # 2x2 windows, stride 2
    # Skips stay whole unless spilled: the first one lives across the whole network.
    skip = next(op.outputs[0] for op in graph.ops if graph.tensors[op.outputs[0]].shape == (1, 80, 120, 8)
                and len(graph.tensors[op.outputs[0]].consumers) == 2)
    assert depth[skip] == 80
    spilled = unet_plan(spilled={skip: {max(graph.tensors[skip].consumers)}})
    assert {n.op.outputs[0]: n.out.depth for n in spilled.nodes if n.kind == "op"}[skip] == 2
    assert spilled.peak < plan.peak


def test_schedule_computes_every_row_once_and_in_order():
    plan = unet_plan(band=2)
    rows: dict[int, list[int]] = {}
    for c in plan.calls:
        rows.setdefault(id(c.node), []).extend(range(c.y0, c.y1))
    for n in plan.nodes:
        assert rows[id(n)] == list(range(n.out.rows)), n.name


@pytest.mark.parametrize("name", ["tiny_unet", "ops_zoo_a", "ops_zoo_b"])
def test_every_fixture_plans_to_a_fifth_of_the_tflm_arena(name):
    def plan(*budget: str) -> dict:
        res = subprocess.run([sys.executable, "-m", "host_tools.cli", "plan", str(model_path(name)), "--json",
                              *budget], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    fifth = plan()["tflm_arena_bytes"] // 5
    report = plan("--budget", str(fifth))
    assert report["budget_met"] and report["mode"] == "streamed" and report["peak_bytes"] <= fifth
    st = report["streaming"]
    if name == "ops_zoo_b":  # the padded copy and the flattened copy are gone
        assert st["rewrites"] == ["folded PAD (op 1) into CONV_2D (op 2)",
                                  "removed RESHAPE (op 4): FULLY_CONNECTED reads its input flattened"]
    if name == "ops_zoo_a":  # the stem output goes back to both of its late readers
        assert ["op 2 CONV_2D", "op 20 CONCATENATION"] in [s["fetched_for"] for s in st["spills"]]


def zoo_plan(name: str) -> tuple[streaming.StreamPlan, object]:
    """The plan the budget search picks for a fixture at its ZOO_BUDGETS budget, and its graph."""
    graph = tflite_import.load(model_path(name))
    elide_identity_pads(graph)
    fold_pads(graph)
    elide_flattens(graph)
    return streaming.search(graph, ZOO_BUDGETS[name]), graph


def test_mean_sums_its_input_as_the_rows_are_made():
    plan, graph = zoo_plan("ops_zoo_a")
    mean = next(n for n in plan.nodes if n.reduce)
    src = mean.ins[0]
    assert src.rows == 24 and src.depth == 1  # never held whole for the MEAN
    calls = [i for i, c in enumerate(plan.calls) if c.node is mean]
    assert len(calls) == 24 and mean.acc_bytes == 4 * 8
    producer = next(n for n in plan.nodes if n.out is src)
    for i in calls:  # each band of sums right after the band it sums
        assert plan.calls[i - 1].node is producer or plan.calls[i - 1].node.spill_slot >= 0


def test_a_spilled_tensor_is_fetched_for_each_late_reader():
    """The stem output of ops_zoo_a is read early by two convolutions and late
    by a 1x1 conv and the concatenation: both late readers fetch it, so its
    ring holds only the rows the early readers' windows need."""
    plan, graph = zoo_plan("ops_zoo_a")
    stem = graph.ops[0].outputs[0]
    readers = {c: graph.ops[c].kind for c in graph.tensors[stem].consumers}
    assert readers == {1: "DEPTHWISE_CONV_2D", 2: "CONV_2D", 5: "CONV_2D", 20: "CONCATENATION"}
    assert plan.spilled[stem] == {2, 20}
    fetched_for = sorted(n.name.split(" for ")[1] for n in plan.nodes
                         if n.kind == "fetch" and n.out.tensor == stem)
    assert fetched_for == ["op 2 CONV_2D", "op 20 CONCATENATION"]
    ring = next(n.out for n in plan.nodes if n.kind == "op" and n.out.tensor == stem)
    assert ring.depth == 3  # the 3x3 depthwise window; whole (24) if a late reader read the ring


def test_budget_search_needs_no_hints_and_refuses_the_impossible(tmp_path):
    res = subprocess.run([sys.executable, "-m", "host_tools.cli", "compile", str(model_path("tiny_unet")), "-o",
                          str(tmp_path / "m.tsb"), "--budget", "8K"], capture_output=True, text=True)
    assert res.returncode == 3 and "band-streamed" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "m.tsb").exists()


@pytest.mark.parametrize("name", ["tiny_unet", "ops_zoo_a", "ops_zoo_b"])
@pytest.mark.parametrize("runtime,backend", TARGETS)
def test_streamed_outputs_match_tflite_micro(streamed, name, runtime, backend, request):
    if backend == "ulab":
        request.getfixturevalue("ulab_path")
    for x in sample_inputs(name)[:1 if name == "tiny_unet" else 2]:
        ours, stats = run_bundle(streamed[name], x, runtime, backend, heap=512 * 1024,
                                 lfs_blocks=512 if runtime == "micropython" else 0)
        assert_matches(ours, tflm_reference(name, x))
        if name != "ops_zoo_b":  # its one skip is read by a MEAN as it is made: nothing to spill
            assert stats["flash_write_bytes"] > 0  # skips went to flash band by band


def test_streamed_unet_runs_in_a_160k_heap_and_not_in_96k(streamed):
    # The unix port (64-bit objects) needed 146,432 B for this 60,128 B arena (find_min_heap, .mpy).
    x = sample_inputs("tiny_unet")[0]
    ours, stats = run_bundle(streamed["tiny_unet"], x, "micropython", "viper", heap=160 * 1024, lfs_blocks=512,
                             mpy=True)
    assert_matches(ours, tflm_reference("tiny_unet", x))
    # littlefs only appends: about one erase per 4 KB block of spilled data, not one per row.
    assert stats["lfs_erases"] <= stats["flash_write_bytes"] // 4096 + 8
    with pytest.raises(RunError, match="MemoryError"):
        run_bundle(streamed["tiny_unet"], x, "micropython", "viper", heap=96 * 1024, lfs_blocks=512, mpy=True)


def test_streamed_model_reads_a_file_or_a_buffer_as_input(streamed):
    import tinyseg_mp

    x = sample_inputs("ops_zoo_a")[0]
    m = tinyseg_mp.load(streamed["ops_zoo_a"], "numpy")
    try:
        from_buffer = bytes(m.run(x.tobytes()))
        import io

        from_file = bytes(m.run(io.BytesIO(x.tobytes())))
        m.input_view()[:] = x.tobytes()
        in_place = bytes(m.run())
    finally:
        m.close()
    assert from_buffer == from_file == in_place
    assert np.array_equal(np.frombuffer(from_buffer, np.int8).reshape(1, 24, 24, 4), tflm_reference("ops_zoo_a", x))


def test_blobs_that_every_band_reloads_are_stored_raw(streamed):
    """Inflating costs a fixed time per load, and a streamed op reloads its
    blob every band: blobs loaded by more than one step are stored raw."""
    from tinyseg_mp import bundle

    path = streamed["ops_zoo_a"]
    with open(path, "rb") as f:
        records = bundle.read_steps(f, bundle.read_sections(f, path), path)
    loads = Counter(off for _, _, off, _, raw in records if raw)
    assert max(loads.values()) > 1
    for _, _, off, stored, raw in records:
        if raw and loads[off] > 1:
            assert stored == raw
    # A blob loaded once still goes through zlib when that pays.
    assert any(stored < raw for _, _, off, stored, raw in records if loads[off] == 1)


# Single-op fixtures whose op streams (the others hold 2-D tensors, a PAD that
# is the output, a SOFTMAX...: whole tensors, or fit by spilling).
STREAMING_OP_FIXTURES = [
    "add_ew_const_relu", "add_ew_pool_bcast", "add_ew_same", "avg_pool_same", "avg_pool_valid",
    "avgpool_2x2_s2_valid", "avgpool_3x2_s2_same", "avgpool_3x3_s1_same", "concatenation_ew_axis2",
    "dwconv_3x3_d2_same_dm3", "dwconv_3x3_s1_same_relu6", "dwconv_3x3_s2_valid_dm2", "dwconv_5x3_s2_same",
    "max_pool_same", "maxpool_2x2_s2_valid", "maxpool_3x3_s1_same_relu", "maxpool_3x3_s2_same",
    "mean_equal_quant", "mean_gap_after_conv", "mean_keep", "mean_keepdims", "mean_nokeep", "mean_nokeepdims",
    "mul_ew_const", "mul_ew_same", "mul_ew_se", "resize_nearest_ew_2x", "resize_nearest_ew_align",
    "resize_nearest_ew_down", "resize_nearest_ew_half", "resize_nn_down_align", "resize_nn_down_half",
    "resize_nn_up", "resize_nn_up_align", "resize_nn_up_half", "tconv_2x2_s2_valid", "tconv_3x3_s1_same",
    "tconv_3x3_s2_same", "tconv_3x3_s2_valid_nobias", "tconv_4x4_s2_same",
]


@pytest.mark.parametrize("runtime,backend", [("cpython", "numpy"), ("micropython", "viper")])
@pytest.mark.parametrize("name", STREAMING_OP_FIXTURES)
def test_every_streamable_op_streams_exactly(tmp_path, name, runtime, backend):
    """A budget just under the whole-tensor plan makes the op stream (a MEAN
    on the fed input, ADD and MUL with constant operands included); the
    output equals tflite-micro's."""
    from tflite_micro.python.tflite_micro import runtime as tflm

    model = FIXTURES / "ops" / f"{name}.tflite"
    budget = plan_model(model).peak - 4
    compiled = compile_model(model, tmp_path / "m.tsb", budget)
    assert compiled.chosen.streamed is not None and compiled.chosen.peak <= budget
    interp = tflm.Interpreter.from_file(str(model), arena_size=1_000_000)
    detail = interp.get_input_details(0)
    info = np.iinfo(detail["dtype"])
    x = np.random.default_rng(len(name)).integers(info.min, info.max + 1, detail["shape"], dtype=detail["dtype"])
    interp.set_input(x, 0)
    interp.invoke()
    ours, _ = run_bundle(tmp_path / "m.tsb", x, runtime, backend)
    np.testing.assert_array_equal(ours, interp.get_output(0))


# Issue 15: the paper Tiny U-Net plans to <= 48 KB (60,128 B before stage cuts).
U_NET_48K = 49_152
U_NET_48K_PEAK = 48_080


@pytest.fixture(scope="module")
def unet_48k(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("unet48k") / "tiny_unet_48k.tsb")
    compiled = compile_model(model_path("tiny_unet"), path, U_NET_48K)
    sp = compiled.chosen.streamed
    assert sp is not None and compiled.chosen.peak == U_NET_48K_PEAK <= U_NET_48K
    assert sp.cuts  # no plan without a stage cut fits 48 KB
    return path


@pytest.mark.parametrize("runtime,backend", [("cpython", "numpy"), ("micropython", "viper")])
def test_unet_at_48k_matches_tflite_micro(unet_48k, runtime, backend):
    x = sample_inputs("tiny_unet")[0]
    ours, stats = run_bundle(unet_48k, x, runtime, backend, heap=512 * 1024,
                             lfs_blocks=512 if runtime == "micropython" else 0)
    assert_matches(ours, tflm_reference("tiny_unet", x))
    assert stats["flash_write_bytes"] > 0


def wild_plan(name: str, budget: int) -> tuple[streaming.StreamPlan, object]:
    graph = tflite_import.load(FIXTURES / "wild_nets" / f"{name}.tflite")
    elide_identity_pads(graph)
    fold_pads(graph)
    elide_flattens(graph)
    return streaming.search(graph, budget), graph


@pytest.mark.parametrize("name,budget", [("resnet8", 12_288), ("ds_cnn", 4_000)])
def test_global_average_pool_sums_its_input_as_the_rows_arrive(name, budget):
    """A global AVERAGE_POOL_2D runs as the device's mean step (bias 0, out_zp
    0, a multiplier/shift equal to TFLM's rounded division for every sum), so
    its input is never whole: it is summed band by band."""
    from host_tools.quant import multiply_by_quantized_multiplier

    plan, graph = wild_plan(name, budget)
    pool = next(n for n in plan.nodes if n.kind == "op" and n.op.kind == "AVERAGE_POOL_2D")
    assert pool.reduce and pool.ins[0].depth < pool.ins[0].rows
    p = streaming._pool_as_mean(graph, pool.op).params
    n = p["in_h"] * p["in_w"]
    sums = np.arange(-128 * n, 127 * n + 1, dtype=np.int64)
    want = np.where(sums > 0, (sums + n // 2) // n, -((-sums + n // 2) // n))
    assert np.array_equal(multiply_by_quantized_multiplier(sums, p["mult"], p["shift"]), want)
    steps = [s for s in plan.steps if s.source == pool.name]
    assert {s.op for s in steps} == {"mean"} and len(steps) > 1 and steps[-1].params["end"] == 1


def test_a_stage_cut_separates_the_rings_before_it_from_those_after_it():
    """mbv1_96 at a quarter of TFLM's arena: every reader of a cut tensor
    fetches it only once it is whole, and no ring made before the cut lives
    on after its first fetch."""
    plan, graph = wild_plan("mbv1_96", 55_296 // 4)
    assert plan.cuts and plan.peak <= 55_296 // 4
    life = {b.name: (b.first, b.last) for b in plan.plan.buffers}
    for t in plan.cuts:
        made = [i for i, c in enumerate(plan.calls) if c.node.kind == "op" and c.node.out.tensor == t]
        fetched = [i for i, c in enumerate(plan.calls) if c.node.kind == "fetch" and c.node.out.tensor == t]
        assert fetched and min(fetched) > max(made)
        upstream = {op.outputs[0] for op in graph.ops if op.index <= graph.tensors[t].producer}
        for n in plan.nodes:
            if n.kind == "op" and n.out.tensor in upstream and n.out.tensor not in plan.cuts:
                assert life[f"{n.out.name} ({n.out.depth}/{n.out.rows} rows)"][1] < min(fetched), n.name


def test_rp2040_costs_recompute_a_skip_instead_of_spilling_it(tmp_path):
    """With the RP2040's measured costs (a 4 KB flash erase takes 45 ms) the
    Tiny U-Net board plan recomputes a skip tensor for its late readers and
    spills nothing; it stays exact and writes no flash."""
    board = load_board("rp2040")
    path = tmp_path / "tu.tsb"
    compiled = compile_for_board(model_path("tiny_unet"), path, board)
    sp = compiled.chosen.streamed
    assert sp is not None and sp.recomputed and not sp.spilled and sp.recomputed_macs > 0
    assert any(n.recomputed for n in sp.nodes)
    x = sample_inputs("tiny_unet")[0]
    ours, stats = run_bundle(str(path), x, "cpython", "numpy")
    assert_matches(ours, tflm_reference("tiny_unet", x))
    assert stats["flash_write_bytes"] == 0
