"""The board camera demo (boards/<board>/main.py) in the MicroPython unix port
with frames from files: its ASCII mask on the REPL, and its web page opened in
headless Chromium over loopback, whose screenshot must show the frame and the
mask overlay exactly as the runtime computed them."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import tinyseg_mp.ops  # noqa: F401  (viper shims on CPython)
from host_tools.boards import load_board
from host_tools.compile import compile_for_board
from host_tools.demo import MODEL, frame_bytes, sample_images, tint
from host_tools.runner import RunError, bundle_info, find_micropython, run_bundle
from tinyseg_mp import image

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEAP = "384K"  # the unix port is 64-bit and compiles the .py sources at import: more than a board needs
BG = (32, 32, 32)  # page background (#202020)
W, H = 160, 120  # FRAME_QQVGA frames, as the camera gives them


def _unix_port() -> str:
    try:
        return find_micropython()
    except RunError as exc:
        pytest.skip(str(exc))


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A board folder: the model compiled for the rp2040, two frames; and
    what the runtime computes for the first frame, on the host."""
    root = tmp_path_factory.mktemp("board")
    model = MODEL
    board = load_board("rp2040")  # compiled as `tinyseg compile --board rp2040` does
    compile_for_board(model, root / "model.tsb", board)
    images, _, _ = sample_images(2)
    (root / "frames").mkdir()
    frames = [frame_bytes(img, "RGB565", "FRAME_QQVGA") for img in images]
    for i, f in enumerate(frames):
        (root / "frames" / f"{i:03d}.rgb565").write_bytes(f)
    info = bundle_info(root / "model.tsb")
    _, h, w, c = info["input"]["shape"]
    flip = 0x80 if info["input"]["dtype"] == "int8" else 0
    oflip = 0x80 if info["output"]["dtype"] == "int8" else 0
    expected = []
    for f in frames:
        rgb = bytearray(w * h * 3)
        image.convert(f, image.RGB565, W, H, rgb, w, h)
        x = np.frombuffer(bytes(rgb), np.uint8).reshape(info["input"]["shape"])
        if flip:
            x = (x.astype(np.int16) - 128).astype(np.int8)
        y, _ = run_bundle(root / "model.tsb", x, "cpython", None)
        expected.append((np.frombuffer(bytes(rgb), np.uint8).reshape(h, w, 3), y))
    # The demo's default mask threshold; the trained model's first frame has a real mask.
    thr = 127
    v = expected[0][1].reshape(-1, info["output"]["shape"][-1])[:, -1].view(np.uint8) ^ oflip
    assert 0.01 < (v > thr).mean() < 0.99
    return {"root": root, "info": info, "expected": expected, "thr": thr, "oflip": oflip}


def _mask(y: np.ndarray, oflip: int, thr: int) -> np.ndarray:
    return (y.reshape(y.shape[-3:])[..., -1].view(np.uint8) ^ oflip) > thr


def _start(exe, board, root, port, env_extra):
    env = {"MICROPYPATH": f"{REPO}:{REPO / 'boards' / 'common'}:.frozen", "TINYSEG_DEMO_PORT": str(port), **env_extra}
    return subprocess.Popen([exe, "-X", f"heapsize={HEAP}", str(REPO / "boards" / board / "main.py")], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _get(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True."""
    runs, start = [], None
    for i, v in enumerate(list(values) + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append((start, i))
            start = None
    return runs


def test_ascii_demo_with_camera_fallback(setup):
    """esp32cam's main.py without a camera module: frames from files, the
    ASCII mask of each frame on the REPL, stop after 2 frames."""
    exe = _unix_port()
    p = _start(exe, "esp32cam", setup["root"], _free_port(),
               {"TINYSEG_DEMO_FRAMES": "2", "TINYSEG_DEMO_REQUESTS": "0", "TINYSEG_DEMO_THRESHOLD": str(setup["thr"])})
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    assert "no 'camera' module" in out and "camera 'camera_files', RGB565 160x120" in out
    info = setup["info"]
    _, oh, ow, oc = info["output"]["shape"]
    for rgb, y in setup["expected"]:
        want = image.ascii_mask(y.tobytes(), ow, oh, oc, setup["oflip"], setup["thr"])
        assert want in out
    hits = int(_mask(setup["expected"][1][1], setup["oflip"], setup["thr"]).sum())
    assert f"frame 2: {hits} of {ow * oh} pixels in the mask" in out
    assert "demo: done, 2 frames, 0 requests" in out


def test_page_in_headless_chromium(setup, tmp_path):
    if not CHROMIUM:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    exe = _unix_port()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    p = _start(exe, "rp2040", setup["root"], port,
               {"TINYSEG_DEMO_FRAMES": "1", "TINYSEG_DEMO_REQUESTS": "40", "TINYSEG_DEMO_THRESHOLD": str(setup["thr"])})
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline:
            assert p.poll() is None, p.stdout.read()
            try:
                status = json.loads(_get(base + "/status.json", 2))
                if status["frame"] >= 1:
                    break
            except OSError:
                time.sleep(0.3)
        assert status and status["frame"] == 1, "the demo did not serve its page"

        shot = tmp_path / "page.png"
        res = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--force-device-scale-factor=1",
             f"--screenshot={shot}", "--window-size=800,320", base + "/"],
            capture_output=True, text=True, timeout=120)
        assert shot.exists(), res.stderr[-2000:]
        mask_txt = _get(base + "/mask.txt").decode()
        # spend the rest of the request budget: the demo then stops by itself
        for _ in range(60):
            if p.poll() is not None:
                break
            try:
                _get(base + "/status.json", 2)
            except OSError:
                time.sleep(0.1)
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0 and "demo: done, 1 frames, 40 requests" in out, out

    from PIL import Image

    page = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    rgb, y = setup["expected"][0]
    h, w = rgb.shape[:2]
    mask = _mask(y, setup["oflip"], setup["thr"])
    assert mask.shape == (h, w)
    assert mask_txt == image.ascii_mask(y.tobytes(), w, h, y.shape[-1], setup["oflip"], setup["thr"])
    assert mask_txt in out  # the REPL shows the same mask

    # find the two images: the columns and rows below the caption that are not page background
    body = page[40:]
    content = (np.abs(body - BG).sum(-1) > 0)
    cols = _runs(content.any(0))
    assert len(cols) == 2, f"expected two images side by side, found column runs {cols}"
    scale = (cols[0][1] - cols[0][0]) // w
    assert scale >= 1 and all(b - a == w * scale for a, b in cols), cols
    rows = _runs(content[:, cols[1][0] : cols[1][1]].any(1))
    assert len(rows) == 1 and rows[0][1] - rows[0][0] == h * scale, rows
    top = 40 + rows[0][0]
    c = scale // 2  # sample the centre of each scaled pixel

    def region(x0):
        return page[top + c : top + h * scale : scale, x0 + c : x0 + w * scale : scale].astype(np.uint8)

    frame_seen, overlay_seen = region(cols[0][0]), region(cols[1][0])
    assert (frame_seen == rgb).all(), f"frame differs in {(frame_seen != rgb).any(-1).sum()} pixels"
    want = tint(rgb, mask)
    assert (overlay_seen == want).all(), f"overlay differs in {(overlay_seen != want).any(-1).sum()} pixels"
    # the overlay is there: where the tint changes a colour, the screenshot shows it exactly on the mask
    visible = (tint(rgb, np.ones_like(mask)) != rgb).any(-1)
    tinted = (overlay_seen != frame_seen).any(-1)
    assert (tinted == (mask & visible)).all()
    assert tinted.sum() > 0.005 * mask.size, "no visible overlay: the mask is (nearly) empty"
    if 0.01 < mask.mean() < 0.99:
        assert (~tinted & visible).sum() > 0.005 * mask.size
