"""host_tools.demo.run_demo, the main job of `tinyseg demo`."""
from __future__ import annotations

import time

import numpy as np
import pytest

from host_tools import demo
from host_tools.runner import RunError, find_micropython


def test_run_demo_writes_pictures_and_measures(tmp_path):
    lines = []
    t0 = time.perf_counter()
    r = demo.run_demo(tmp_path / "out", "rp2350", progress=lines.append)
    assert time.perf_counter() - t0 < 60
    text = "\n".join(lines)
    for what in ("TFLite Micro arena", "no optimisations", "optimised", "[1/5]", "[5/5]", str(tmp_path / "out")):
        assert what in text
    assert r["board"] == "rp2350" and r["fits_budget"]
    assert r["peak_bytes"] <= r["budget_bytes"] and r["peak_bytes"] <= r["unoptimized_peak_bytes"]
    assert r["tflm_arena_bytes"] > 0
    assert len(r["samples"]) >= 1
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert "memory_timeline.png" in names and "model.tsb" in names
    for s in r["samples"]:
        assert f"sample{s['index']}_input.png" in names and f"sample{s['index']}_overlay.png" in names
    try:
        find_micropython()
    except RunError:
        assert r["virtual_board"] is None
    else:
        runs = r["virtual_board"]["runs"]
        assert runs and all(run.get("equal_to_host") for run in runs), runs
        assert r["virtual_board"]["heap_bytes"] == 440 * 1024  # 450,000 bytes rounded up to whole KB
    from PIL import Image

    pic = np.asarray(Image.open(tmp_path / "out" / "sample0_input.png").convert("RGB"))
    assert pic.shape[:2] == (80 * demo.SCALE, 120 * demo.SCALE)


def test_run_demo_unknown_board(tmp_path):
    with pytest.raises(ValueError, match="rp2040"):
        demo.run_demo(tmp_path, "arduino")


def test_frame_bytes_round_trip():
    from tinyseg_mp import image
    import tinyseg_mp.ops  # noqa: F401

    rng = np.random.default_rng(0)
    img = (rng.integers(0, 32, (80, 120, 3)) * 8).astype(np.uint8)  # exact in RGB565 (low bits zero, green too)
    for fmt, code in (("RGB565", image.RGB565), ("RGB888", image.RGB888)):
        raw = demo.frame_bytes(img, fmt, "FRAME_QQVGA")
        back = bytearray(120 * 80 * 3)
        image.convert(raw, code, 160, 120, back, 120, 80)
        got = np.frombuffer(bytes(back), np.uint8).reshape(80, 120, 3)
        want = img if fmt == "RGB888" else (img | (img >> 5))  # 5/6-bit expansion of RGB565
        if fmt == "RGB565":
            want = want.copy()
            want[..., 1] = img[..., 1] | (img[..., 1] >> 6)
        assert (got == want).all(), fmt


def test_run_demo_default_board_recomputes_and_states_the_heap_it_used(tmp_path):
    lines = []
    r = demo.run_demo(tmp_path / "out", progress=lines.append)
    # rp2040: the skip must leave RAM to fit; with the chip's measured costs (a flash erase dearer than
    # its MACs) it is computed again for its late reader rather than spilled.
    assert r["board"] == "rp2040" and r["fits_budget"] and r["recomputed"] and not r["spills"]
    assert any("computed again" in line for line in lines)
    assert r["peak_bytes"] <= r["budget_bytes"] < r["tflm_arena_bytes"]
    vb = r["virtual_board"]
    if vb is None:
        pytest.skip("no MicroPython unix port")
    # Where the 64-bit unix port needs more heap than the board, the demo measures it and says so.
    assert vb["heap_bytes"] >= vb["board_heap_bytes"]
    if vb["heap_bytes"] > vb["board_heap_bytes"]:
        assert "64-bit" in "\n".join(lines)
    assert all(run["equal_to_host"] and run["flash_write_bytes"] == 0 for run in vb["runs"])
    # With the emulator beside the checkout, sample 0 also runs on real RP2040 firmware.
    from host_tools import pico

    vp = r["virtual_pico"]
    if pico.missing() is None:
        assert vp["equal_to_host"] and vp["backend"] == "thumb" and vp["seconds"] > 0
        assert 0 < vp["free_after_load"] < vp["free_at_boot"]
        assert any("virtual Pico, per frame" in line for line in lines)
    else:
        assert vp is None
