"""The virtual Pico (real RP2040 MicroPython firmware in ../shared/pico_emu):
every single-op fixture, ops_zoo_b, a spilling and a band-streamed plan run
from the deployed runtime (.mpy, armv6m), exact against TFLite Micro, on the
stock firmware; a few of them on the ulab firmware. Batched: all bundles of a
firmware in one boot. Speed figures are benchmarks (`tinyseg bench --board
rp2040`), not asserted here."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, REPO
from host_tools import pico, tflite_import
from host_tools.compile import compile_for_board, compile_model
from host_tools.runner import bundle_info, run_bundle

if shutil.which("node") is None:
    pytest.skip("the virtual Pico needs node (>= 18) on PATH", allow_module_level=True)

tflm = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

OPS_DIR = FIXTURES / "ops"


def reference(path: Path, x: np.ndarray) -> np.ndarray:
    it = tflm.Interpreter.from_file(str(path), arena_size=4_000_000)
    it.set_input(x, 0)
    it.invoke()
    return it.get_output(0)


def random_input(path: Path, seed: int) -> np.ndarray:
    d = tflm.Interpreter.from_file(str(path), arena_size=4_000_000).get_input_details(0)
    rng, shape, dtype = np.random.default_rng(seed), tuple(d["shape"]), np.dtype(d["dtype"])
    if dtype.kind == "f":  # a float input quantised on the device: values around the input's range
        return (rng.standard_normal(shape) * 4).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32) if a.dtype == np.float32 else a  # float outputs: compare bit patterns


def with_weights_at_min(src: Path, out: Path) -> Path:
    """A copy of src whose CONV_2D weights of output channel 1 are all -128,
    with an input of -128 everywhere: every pair of products in the Thumb
    kernel's paired lanes is then 2 * 16,384, one more than a signed 16-bit
    lane holds (its _expand must see the -128 and run such groups on bytes)."""
    raw = bytearray(src.read_bytes())
    graph = tflite_import.load(src)
    for op in graph.ops:
        if op.kind == "CONV_2D":
            w = graph.tensors[op.inputs[1]].data.astype(np.int8)
            at = bytes(raw).index(w.tobytes())
            w = w.copy()
            w[min(1, len(w) - 1)] = -128
            raw[at : at + w.nbytes] = w.tobytes()
    out.write_bytes(bytes(raw))
    x = random_input(out, 0)
    np.save(out.with_suffix(".input.npy"), np.full_like(x, np.iinfo(x.dtype).min))
    return out


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[dict]:
    """Every fixture the host compiles (bundles take one input; an op the
    host does not lower is rejected at compile time, tested elsewhere),
    plus a spilling and a streamed plan, and ops_zoo_a with -128 weights."""
    out = tmp_path_factory.mktemp("pico_bundles")
    found = []
    models = [(p, None) for p in sorted(OPS_DIR.glob("*.tflite"))] + [(FIXTURES / "ops_zoo_b.tflite", None)]
    models += [(OPS_DIR / "mini_unet_skip.tflite", 12_000), (FIXTURES / "ops_zoo_b.tflite", 988)]
    models += [(with_weights_at_min(FIXTURES / "ops_zoo_a.tflite", out / "zoo_a_min_weights.tflite"), None)]
    for i, (model, budget) in enumerate(models):
        bundle = out / f"{model.stem}_{budget}.tsb"
        try:
            compiled = compile_model(model, bundle, budget, thumb=True)  # as for --board rp2040
        except (tflite_import.ModelError, ValueError):
            continue
        given = model.with_suffix(".input.npy")
        x = np.load(given) if given.exists() else random_input(model, i)
        found.append({"model": model, "budget": budget, "bundle": bundle, "x": x, "ref": reference(model, x),
                      "spills": bool(compiled.optimized.spills), "streamed": compiled.chosen.streamed is not None})
    return found


def _run(cases, firmware, backend=None):
    jobs = [pico.Job(c["bundle"], c["x"], backend) for c in cases]
    return pico.run_jobs(jobs, firmware, timeout_s=900)


# The ulab firmware runs the same Thumb kernels by default: a few bundles show
# its runtime works and picks them (the stock boot runs every fixture).
ULAB_FIRMWARE_CASES = ("ops_zoo_b", "mini_unet_skip", "dwconv_3x3_s1_same_relu6", "tconv_3x3_s2_same", "mean_keep")


@pytest.fixture(scope="module", params=["stock", "ulab"])
def board_run(request, cases):
    """(firmware, the cases it ran, their results)."""
    why = pico.missing(request.param)
    assert why is None, why  # node is there, so the emulator must be too (CI has ../shared beside the clone)
    ran = cases if request.param == "stock" else [c for c in cases if c["model"].stem in ULAB_FIRMWARE_CASES]
    return request.param, ran, _run(ran, request.param)


def test_enough_fixtures_reach_the_board(cases):
    assert len(cases) >= 60
    assert any(c["spills"] for c in cases) and any(c["streamed"] for c in cases)


def test_every_fixture_is_exact_on_the_virtual_pico(board_run):
    firmware, cases, results = board_run
    wrong = []
    for c, s in zip(cases, results):
        y = s["y"]
        if y.shape != c["ref"].shape or y.dtype != c["ref"].dtype or not np.array_equal(bits(y), bits(c["ref"])):
            wrong.append(f"{c['model'].stem} (budget {c['budget']})")
    assert not wrong, f"{firmware} firmware: {len(wrong)} of {len(cases)} differ from TFLite Micro: {wrong}"


def test_the_default_backend_on_the_rp2040_is_not_ulab(board_run):
    """Float is emulated in software on the RP2040: the array (ulab) path is
    never the default there, even on firmware that has ulab."""
    firmware, _, results = board_run
    assert {s["backend"] for s in results} <= {"thumb", "viper"}


def test_board_figures_are_consistent(board_run):
    _, cases, results = board_run
    for c, s in zip(cases, results):
        assert 0 < s["free_after_load"] <= s["free_before_load"] <= s["free_at_boot"] < 264 * 1024
        assert s["cycles"] > 0 and s["seconds"] == s["cycles"] / 125e6
        if not (c["spills"] or c["streamed"]):
            assert s["flash_erases"] == s["flash_programs"] == s["flash_write_bytes"] == 0


def test_spilled_bytes_on_the_chip_equal_the_host_runtimes(board_run):
    """The spilling plan writes flash during run(), the same bytes as on CPython."""
    _, cases, results = board_run
    for c, s in zip(cases, results):
        if c["spills"] or c["streamed"]:
            _, host = run_bundle(c["bundle"], c["x"], "cpython", "numpy")
            assert s["flash_write_bytes"] == host["flash_write_bytes"]
            if host["flash_write_bytes"]:
                assert s["flash_programs"] > 0


def test_explicit_ulab_on_the_ulab_firmware(cases):
    """`backend='ulab'` chosen explicitly on the RP2040: runs to the end,
    exact, or is refused at load time with one line."""
    some = [c for c in cases if c["budget"] is None and c["model"].stem in ULAB_FIRMWARE_CASES]
    assert some
    try:
        results = _run(some, "ulab", "ulab")
    except pico.RunError as exc:
        msg = str(exc)
        assert "MemoryError" not in msg
        assert "backend 'ulab'" in msg and "refused" in msg, msg
        return
    for c, s in zip(some, results):
        assert s["backend"] == "ulab"
        assert np.array_equal(bits(s["y"]), bits(c["ref"])), c["model"].stem


def test_min_heap_bisects_a_ballast_across_boots(cases):
    c = next(c for c in cases if c["model"].stem == "ops_zoo_b" and c["budget"] is None)
    r = pico.min_heap(c["bundle"], c["x"], resolution=4096)
    assert r["rechecked"] and r["failed_at_ballast"] - r["ballast_bytes"] <= 4096
    assert r["min_heap_bytes"] == r["free_at_boot"] - r["ballast_bytes"]
    assert 0 < r["min_heap_bytes"] < r["free_at_boot"]


def test_cli_run_on_the_pico(cases, tmp_path):
    c = next(c for c in cases if c["model"].stem == "ops_zoo_b" and c["budget"] is None)
    np.save(tmp_path / "in.npy", c["x"])
    res = subprocess.run([sys.executable, "-m", "host_tools.cli", "run", str(c["bundle"]), "--input",
                          str(tmp_path / "in.npy"), "--output", str(tmp_path / "out.npy"), "--runtime", "pico",
                          "--stats", str(tmp_path / "s.json")], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert np.array_equal(np.load(tmp_path / "out.npy"), c["ref"])
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["runtime"] == "pico" and stats["firmware"] == "stock"
    assert "s per inference at 125 MHz" in res.stdout and "after load" in res.stdout


def test_missing_emulator_is_one_clear_line(tmp_path, monkeypatch, cases):
    monkeypatch.setenv(pico.EMU_ENV, str(tmp_path / "nowhere"))
    why = pico.missing()
    assert why and "\n" not in why and pico.EMU_ENV in why
    c = cases[0]
    np.save(tmp_path / "in.npy", c["x"])
    res = subprocess.run([sys.executable, "-m", "host_tools.cli", "run", str(c["bundle"]), "--input",
                          str(tmp_path / "in.npy"), "--output", str(tmp_path / "out.npy"), "--runtime", "pico"],
                         capture_output=True, text=True, cwd=REPO, env={**__import__("os").environ,
                                                                       pico.EMU_ENV: str(tmp_path / "nowhere")})
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "pico_emu" in res.stderr
    assert not (tmp_path / "out.npy").exists()


def test_bench_on_the_chip_reports_exact_runs_and_cycles_per_mac(capsys):
    """`tinyseg bench --board rp2040` measures on the virtual Pico. Emulated
    cycles are deterministic, so a loose bound catches a Thumb conv kernel
    that silently fell back to viper (measured: 16.4 against 74.7 cycles per
    MAC all-in on ops_zoo_b, whose 3x3 convs have 3-8 input channels)."""
    from host_tools.bench import bench_pico, print_pico

    rows = bench_pico([FIXTURES / "ops_zoo_b.tflite"], "rp2040", progress=lambda m: None)
    assert [r["plan"] for r in rows] == ["board", "64 KB", "whole"]
    for r in rows:
        runs = r["runs"]
        assert set(runs) == {"thumb", "viper"} and all(u["exact"] for u in runs.values())
        assert runs["thumb"]["cycles_per_mac"]["conv2d"] < 30 < runs["viper"]["cycles_per_mac"]["conv2d"]
        assert runs["thumb"]["seconds"] < runs["viper"]["seconds"]
        # s/inf is the run without the per-step ticks_us wrapper, which costs the chip time.
        assert all(u["seconds"] < u["timed_seconds"] for u in runs.values())
    print_pico(rows)
    assert "cycles per MAC by op" in capsys.readouterr().out


def test_board_demo_runs_as_deployed_on_the_virtual_pico(tmp_path):
    """boards/rp2040/main.py with what `tinyseg deploy --board rp2040` puts on
    the board (runtime and demo as .mpy for armv6m, the model compiled with
    --board rp2040, a sample frame): one frame on the real firmware, its mask
    the one the host computes from the same frame. The board's budget must
    leave the demo its heap (it failed at load, then in input_view(), before
    the profile counted the demo's own modules)."""
    from host_tools.boards import load_board
    from host_tools.demo import MODEL, frame_bytes, sample_images
    from host_tools.deploy import find_mpy_cross
    from tinyseg_mp import image

    board = load_board("rp2040")
    fs = tmp_path / "fs"
    shutil.copytree(pico.board_tree(), fs)
    compile_for_board(MODEL, fs / "model.tsb", board)
    (fs / "tinyseg_demo").mkdir()
    for name in ("demo", "camera_files"):
        subprocess.run(find_mpy_cross() + ["-march=armv6m", "-o", str(fs / "tinyseg_demo" / f"{name}.mpy"),
                                           str(REPO / "boards" / "common" / f"{name}.py")], check=True)
    (fs / "frames").mkdir()
    frame = frame_bytes(sample_images(1)[0][0], "RGB565", "FRAME_QQVGA")
    (fs / "frames" / "000.rgb565").write_bytes(frame)
    main = (REPO / "boards" / "rp2040" / "main.py").read_text()
    (fs / "demo_main.py").write_text(main.replace('"model": "model.tsb",', '"model": "model.tsb", "frame_count": 1,'))
    rc, out, err, _ = pico._emulate(fs, "exec(open('demo_main.py').read())\n", "stock", 900)
    assert rc == 0, out[-2000:] + err[-1000:]
    info = bundle_info(fs / "model.tsb")
    _, h, w, _ = info["input"]["shape"]
    rgb = bytearray(w * h * 3)
    image.convert(frame, image.RGB565, 160, 120, rgb, w, h)
    x = np.frombuffer(bytes(rgb), np.uint8).reshape(info["input"]["shape"])
    if info["input"]["dtype"] == "int8":
        x = (x.astype(np.int16) - 128).astype(np.int8)
    y, _ = run_bundle(fs / "model.tsb", x, "cpython", None)
    oflip = 0x80 if info["output"]["dtype"] == "int8" else 0
    hits = int(((y.reshape(y.shape[-3:])[..., -1].view(np.uint8) ^ oflip) > 127).sum())
    assert f"frame 1: {hits} of {w * h} pixels in the mask" in out and "backend thumb" in out
    assert "demo: done, 1 frames" in out
