"""The device runtime against TFLite Micro, on every backend and both runtimes."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURES, MODEL_NAMES, REPO, model_path
from host_tools.compile import compile_model
from host_tools.runner import RunError, run_bundle

ULAB_STANDIN = REPO / "tests" / "ulab_standin"
# (runtime, backend): CPython+numpy, the ulab code path through the strict
# stand-in, and the viper kernels in the MicroPython unix port.
TARGETS = [("cpython", "numpy"), ("cpython", "ulab"), ("micropython", "viper")]


@pytest.fixture(scope="session")
def bundles(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("bundles")
    paths = {}
    for name in MODEL_NAMES:
        paths[name] = str(out / f"{name}.tsb")
        compile_model(model_path(name), paths[name])
    return paths


@pytest.fixture
def ulab_path(monkeypatch):
    monkeypatch.syspath_prepend(str(ULAB_STANDIN))


def tflm_reference(name: str, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(model_path(name)), arena_size=4_000_000)
    interp.set_input(x, 0)
    interp.invoke()
    return interp.get_output(0)


def sample_inputs(name: str) -> list[np.ndarray]:
    """The fixture's own input and a seeded random one."""
    first = np.load(FIXTURES / f"{name}.input.npy")
    info = np.iinfo(first.dtype)
    rng = np.random.default_rng(7)
    return [first, rng.integers(info.min, info.max + 1, first.shape, dtype=first.dtype)]


def assert_matches(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    if ref.dtype == np.float32:  # a DEQUANTIZE output: table lookups of the same int8 values
        np.testing.assert_array_equal(ours, ref)
        return
    diff = np.abs(ours.astype(np.int32) - ref.astype(np.int32))
    equal = float((diff == 0).mean())
    assert equal >= 0.999 and diff.max() <= 1, f"equal {equal:.5f}, max diff {diff.max()}"


@pytest.mark.parametrize("runtime,backend", TARGETS)
def test_outputs_match_tflite_micro(bundles, model_name, runtime, backend, request):
    if backend == "ulab":
        request.getfixturevalue("ulab_path")
    for x in sample_inputs(model_name):
        ours, stats = run_bundle(bundles[model_name], x, runtime, backend, heap=512 * 1024)
        assert stats["backend"] == backend
        assert_matches(ours, tflm_reference(model_name, x))


def test_tiny_unet_fits_512k_heap_on_the_unix_port(bundles):
    x = sample_inputs("tiny_unet")[0]
    ours, stats = run_bundle(bundles["tiny_unet"], x, "micropython", "viper", heap=512 * 1024)
    assert stats["heap_bytes"] == 512 * 1024 and stats["flash_read_bytes"] > 0
    assert_matches(ours, tflm_reference("tiny_unet", x))
    with pytest.raises(RunError, match="MemoryError"):  # the limit is real: half of it is not enough
        run_bundle(bundles["tiny_unet"], x, "micropython", "viper", heap=256 * 1024)


def damaged_copies(path: str, tmp_path) -> dict[str, str]:
    data = bytearray(open(path, "rb").read())
    cases = {}
    flipped = bytearray(data)
    flipped[len(data) - 10] ^= 0x55  # inside the weights (BLOB section)
    cases["crc"] = flipped
    cases["truncated"] = data[: len(data) // 2]
    version = bytearray(data)
    version[4] = 99
    cases["version"] = version
    cases["magic"] = b"NOPE" + data[4:]
    out = {}
    for kind, blob in cases.items():
        p = tmp_path / f"{kind}.tsb"
        p.write_bytes(bytes(blob))
        out[kind] = str(p)
    return out


EXPECTED = {"crc": "CRC mismatch", "truncated": "truncated", "version": "bundle version 99", "magic": "not a tinyseg bundle"}


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_damaged_bundles_are_rejected_before_running(bundles, tmp_path, runtime):
    x = sample_inputs("ops_zoo_b")[0]
    for kind, path in damaged_copies(bundles["ops_zoo_b"], tmp_path).items():
        with pytest.raises((RunError, ValueError)) as err:
            run_bundle(path, x, runtime, "numpy" if runtime == "cpython" else "viper")
        assert EXPECTED[kind] in str(err.value), (kind, str(err.value))
        assert path in str(err.value)


def test_cli_run_reports_damage_with_exit_code(bundles, tmp_path):
    bad = damaged_copies(bundles["ops_zoo_b"], tmp_path)["crc"]
    np.save(tmp_path / "in.npy", sample_inputs("ops_zoo_b")[0])
    res = subprocess.run([sys.executable, "-m", "host_tools.cli", "run", bad, "--input", str(tmp_path / "in.npy"),
                          "--output", str(tmp_path / "out.npy")], capture_output=True, text=True)
    assert res.returncode == 2 and "CRC mismatch" in res.stderr and "Traceback" not in res.stderr


def test_cli_run_writes_output_and_stats(bundles, tmp_path):
    import json

    x = sample_inputs("ops_zoo_a")[0]
    np.save(tmp_path / "in.npy", x)
    res = subprocess.run([sys.executable, "-m", "host_tools.cli", "run", bundles["ops_zoo_a"], "--input",
                          str(tmp_path / "in.npy"), "--output", str(tmp_path / "out.npy"), "--runtime", "micropython",
                          "--heap", "256K", "--stats", str(tmp_path / "stats.json")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert {"latency_ms", "heap_peak_bytes", "flash_read_bytes", "flash_write_bytes"} <= stats.keys()
    assert stats["heap_peak_bytes"] > 0 and stats["heap_bytes"] == 256 * 1024
    assert_matches(np.load(tmp_path / "out.npy"), tflm_reference("ops_zoo_a", x))


@pytest.mark.parametrize("runtime,backend", TARGETS)
def test_compressed_weight_blocks_inflate_on_every_runtime(tmp_path, runtime, backend, request):
    from tinyseg_mp import bundle

    if backend == "ulab":
        request.getfixturevalue("ulab_path")
    model = FIXTURES / "ops" / "softmax_ew_scaled.tflite"
    path = tmp_path / "m.tsb"
    compile_model(model, path)
    with open(path, "rb") as f:
        records = bundle.read_steps(f, bundle.read_sections(f, str(path)), str(path))
    assert sum(stored < raw for _, _, _, stored, raw in records) >= 2  # zlib blocks, 1 KB window
    from tflite_micro.python.tflite_micro import runtime as tflm

    interp = tflm.Interpreter.from_file(str(model), arena_size=100_000)
    x = np.random.default_rng(5).integers(-128, 128, interp.get_input_details(0)["shape"], dtype=np.int8)
    interp.set_input(x, 0)
    interp.invoke()
    ref = interp.get_output(0)
    ours, stats = run_bundle(path, x, runtime, backend)
    assert_matches(ours, ref)
    assert stats["flash_read_bytes"] < sum(raw for *_, raw in records)


@pytest.mark.parametrize("model,budget", [(FIXTURES / "ops_zoo_a.tflite", None),
                                          (FIXTURES / "ops" / "mini_unet_skip.tflite", 12_000)])
def test_firmware_without_viper_falls_back_to_plain_python(tmp_path, model, budget):
    from conftest import micropython_exe

    from tflite_micro.python.tflite_micro import runtime as tflm

    path = tmp_path / "m.tsb"
    compiled = compile_model(model, path, budget)
    interp = tflm.Interpreter.from_file(str(model), arena_size=1_000_000)
    d = interp.get_input_details(0)
    x = np.random.default_rng(2).integers(0, 256, d["shape"]).astype(d["dtype"])
    interp.set_input(x, 0)
    interp.invoke()
    ref = interp.get_output(0)
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    res = subprocess.run([micropython_exe(), "-X", "heapsize=2M", str(REPO / "tests" / "mp_run_without_viper.py"),
                          str(path), str(tmp_path / "in.bin"), str(tmp_path / "out.bin"), str(tmp_path / "s.spill")],
                         capture_output=True, text=True, env={"MICROPYPATH": str(REPO)})
    assert res.returncode == 0, res.stdout + res.stderr
    plain = res.stdout.split("PLAIN", 1)[1].split()
    assert "tinyseg_mp.ops.op_conv2d" in plain  # really compiled without viper
    if budget:
        assert compiled.optimized.spills and "tinyseg_mp.compress" in plain
    ours = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype=ref.dtype).reshape(ref.shape)
    assert_matches(ours, ref)


def test_lfs_block_offset_follows_the_ctz_layout():
    """Block i > 0 of a littlefs file starts with 4 * (ctz(i) + 1) bytes of
    pointers (littlefs DESIGN.md); lfs_block_offset must agree with that
    layout, laid out block by block here, for every byte of 100 blocks."""
    from host_tools.bundle_writer import LFS_BLOCK, lfs_block_offset

    pos = 0
    for i in range(100):
        pointers = 0 if i == 0 else 4 * (((i & -i).bit_length() - 1) + 1)
        for off in range(pointers, LFS_BLOCK):
            assert lfs_block_offset(pos) == (i, off), pos
            pos += 1


def test_blobs_are_placed_for_littlefs_reads(bundles):
    """Every stored blob starts at a multiple of 32 in its littlefs block and
    one that a block can hold ends in it (bundle_writer.lfs_aligned)."""
    import struct

    from host_tools.bundle_writer import LFS_BLOCK, lfs_block_offset
    from tinyseg_mp import bundle

    for name, path in bundles.items():
        with open(path, "rb") as f:
            sections = bundle.read_sections(f, path)
            f.seek(sections[b"STEP"][0])
            records = f.read(sections[b"STEP"][1])
        base, at, seen = sections[b"BLOB"][0], 0, 0
        while at < len(records):
            _, count, off, stored, _ = struct.unpack_from(bundle.STEP, records, at)
            at += struct.calcsize(bundle.STEP) + 4 * count
            if stored:
                block, start = lfs_block_offset(base + off)
                assert start % 32 == 0, (name, off)
                assert stored > LFS_BLOCK - 64 or lfs_block_offset(base + off + stored - 1)[0] == block, (name, off)
                seen += 1
        assert seen, name


def test_a_lower_budget_on_a_board_keeps_the_boards_room(tmp_path, capsys):
    """`tinyseg compile --board rp2040 --budget 64K`: the arena fits 64 KB, and
    the other buffers still have the board's budget, so the weight buffer
    takes the spare room for paired lanes as the board plan's does; a budget
    over the board's is capped at it, with a line saying so."""
    from host_tools.boards import load_board
    from host_tools.cli import main
    from host_tools.compile import compile_for_board, load_buffers, pairing_room

    board = load_board("rp2040")
    c = compile_for_board(model_path("tiny_unet"), tmp_path / "k64.tsb", board, budget=65536)
    assert c.chosen.peak <= 65536 < board.budget and load_buffers(c, board.flash_block_bytes) <= board.budget
    assert c.weight_buffer == pairing_room(c.steps) > max(len(s.blob) for s in c.steps)
    assert main(["compile", str(model_path("ops_zoo_b")), "--board", "rp2040", "--budget", "150000",
                 "-o", str(tmp_path / "b.tsb")]) == 0
    assert "--budget 150,000 capped at 137,328 bytes" in capsys.readouterr().err


def test_thumb_weight_buffer_takes_the_boards_spare_room_for_paired_lanes(tmp_path):
    """compile_model(thumb, room): the weight buffer grows to what every conv
    step needs for paired lanes (compile.pairing_room) when the board's room
    has it spare, and stays the largest blob when it does not."""
    import tinyseg_mp
    from host_tools.compile import load_buffers, pairing_room

    model = model_path("tiny_unet")  # its 64 -> 8 channel 3x3 conv needs more than its largest blob
    roomy = compile_model(model, tmp_path / "roomy.tsb", thumb=True, room=10**6)
    largest = max(len(s.blob) for s in roomy.steps)
    assert pairing_room(roomy.steps) > largest and roomy.weight_buffer == pairing_room(roomy.steps)
    tight_room = load_buffers(roomy) - roomy.weight_buffer + largest  # the buffers with the largest blob only
    tight = compile_model(model, tmp_path / "tight.tsb", thumb=True, room=tight_room)
    assert tight.weight_buffer == 0
    for path, want in ((tmp_path / "roomy.tsb", roomy.weight_buffer), (tmp_path / "tight.tsb", largest)):
        m = tinyseg_mp.load(str(path), "numpy")
        try:
            assert m.meta["blob_bytes"] == want
        finally:
            m.close()
