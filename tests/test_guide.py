"""docs/guide.md and the README's device-API snippet, as written.

(a) The README's device snippet and every ```python block of the guide run in
    the MicroPython unix port (MICROPYPATH = the repository root), in a
    folder laid out as `tinyseg deploy` lays out the board (model.tsb,
    frames/, tinyseg_demo/), and print what the runtime computes on the host.
(b) The guide's cheap host commands (compile, segment, deploy --dry-run, the
    unix-port lines) run as written, in a folder that looks like the checkout.
(c) The guide's Pico snippet runs on the virtual Pico (real RP2040 firmware,
    the runtime precompiled as deploy puts it): one boot, a small U-Net.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tinyseg_mp.ops  # noqa: F401  (viper shims on CPython)
from host_tools import pico
from host_tools.compile import compile_model
from host_tools.demo import frame_bytes, sample_images
from host_tools.runner import RunError, bundle_info, find_micropython, run_bundle
from tinyseg_mp import image

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "guide.md"
FIXTURES = REPO / "tests" / "fixtures"
# A small U-Net (uint8 in and out, as the demo model) and an int8 model with 4 output channels.
MODELS = {"mini_unet": FIXTURES / "ops" / "mini_unet_skip.tflite", "zoo_a": FIXTURES / "ops_zoo_a.tflite"}
HEAP = "384K"  # the unix port is 64-bit and compiles the .py sources at import


def _fenced(text: str, lang: str) -> list[str]:
    return re.findall(r"^```" + lang + r"\n(.*?)^```", text, re.M | re.S)


def guide_python() -> list[str]:
    return _fenced(GUIDE.read_text(), "python")


def pico_snippet() -> str:
    (block,) = [b for b in guide_python() if "frames/sample0.rgb565" in b and "import camera" not in b]
    return block


def readme_snippet() -> str:
    """The README's indented device-API block (the one that loads a bundle)."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"(?:^    .*\n)+", text, re.M)
    (block,) = [b for b in blocks if "tinyseg_mp.load(" in b]
    return "".join(line[4:] + "\n" for line in block.splitlines())


def _unix_port() -> str:
    try:
        return find_micropython()
    except RunError as exc:
        pytest.skip(str(exc))


def _frame() -> bytes:
    """frames/sample0.rgb565 as `tinyseg deploy` writes it."""
    return frame_bytes(sample_images(1)[0][0], "RGB565", "FRAME_QQVGA")


def expected_print(bundle: Path) -> tuple[str, str]:
    """What the snippets print for the sample frame, computed on CPython:
    the ASCII mask, and the start of the pixel-count line."""
    info = bundle_info(bundle)
    _, h, w, _ = info["input"]["shape"]
    rgb = bytearray(w * h * 3)
    flip = 0x80 if info["input"]["dtype"] == "int8" else 0
    image.convert(_frame(), image.RGB565, 160, 120, rgb, w, h, flip=flip)
    x = np.frombuffer(bytes(rgb), info["input"]["dtype"]).reshape(info["input"]["shape"])
    y, _ = run_bundle(bundle, x, "cpython", None)
    oh, ow, oc = info["output"]["shape"][1:]
    oflip = 0x80 if info["output"]["dtype"] == "int8" else 0
    raw = y.tobytes()
    mask = image.ascii_mask(raw, ow, oh, oc, oflip, 127)
    return mask, "%d of %d pixels in the mask" % (image.count_over(raw, ow * oh, oc, oflip, 127), ow * oh)


@pytest.fixture(scope="module")
def boards(tmp_path_factory) -> dict[str, Path]:
    """A board folder per model, laid out as deploy leaves the board."""
    out = {}
    for name, model in MODELS.items():
        root = tmp_path_factory.mktemp(name)
        compile_model(model, root / "model.tsb")
        (root / "frames").mkdir()
        (root / "frames" / "sample0.rgb565").write_bytes(_frame())
        (root / "tinyseg_demo").mkdir()
        shutil.copy(REPO / "boards" / "common" / "camera_files.py", root / "tinyseg_demo")
        out[name] = root
    return out


def _run_unix(exe: str, root: Path, code: str) -> str:
    (root / "snippet.py").write_text(code)
    res = subprocess.run([exe, "-X", f"heapsize={HEAP}", "snippet.py"], cwd=root, capture_output=True, text=True,
                         env={"MICROPYPATH": f"{REPO}:.frozen"}, timeout=120)
    assert res.returncode == 0, f"the snippet failed in the unix port:\n{code}\n{res.stdout[-2000:]}{res.stderr[-2000:]}"
    return res.stdout


def test_guide_has_its_device_blocks():
    blocks = guide_python()
    assert len(blocks) == 2, "the guide's device code: the Pico snippet and the ESP32-CAM snippet"
    assert pico_snippet()
    assert any("import camera" in b for b in blocks)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_guide_device_blocks_in_unix_port(boards, name):
    """Each ```python block of the guide prints the mask the runtime computes."""
    exe = _unix_port()
    root = boards[name]
    mask, count = expected_print(root / "model.tsb")
    assert "#" in mask or name != "mini_unet", "the sample frame should give a visible mask"
    for code in guide_python():
        out = _run_unix(exe, root, code)
        assert mask in out, f"the block printed another mask:\n{code}\n{out}"
        assert count in out, out


def test_readme_snippet_in_unix_port(boards):
    """The README's device-API snippet, as written, with the input file it reads;
    its `out` must be the runtime's output for that input."""
    exe = _unix_port()
    code = readme_snippet()
    files = re.findall(r'open\("([^"]+)"', code)
    assert len(files) == 1, f"the README snippet should read its input from one file:\n{code}"
    for name, root in boards.items():
        x = np.load(FIXTURES / ("ops_zoo_a.input.npy" if name == "zoo_a" else "tiny_unet.input.npy"))
        info = bundle_info(root / "model.tsb")
        if list(x.shape) != info["input"]["shape"]:  # mini_unet: a seeded input of its own shape
            x = np.random.default_rng(3).integers(0, 256, info["input"]["shape"], dtype=np.uint8)
        (root / files[0]).write_bytes(x.tobytes())
        want, _ = run_bundle(root / "model.tsb", x, "cpython", None)
        out = _run_unix(exe, root, code + "import binascii\nprint('OUT', binascii.hexlify(out).decode())\n")
        got = re.search(r"^OUT ([0-9a-f]*)$", out, re.M)
        assert got and bytes.fromhex(got.group(1)) == want.tobytes(), out[-2000:]


def _host_commands() -> list[str]:
    """The guide's cheap host commands: compile, segment, deploy --dry-run,
    and the lines that try the Pico snippet in the unix port."""
    cmds = []
    for block in _fenced(GUIDE.read_text(), "sh"):
        for line in block.splitlines():
            line = line.strip()
            cheap = (line.startswith(("tinyseg compile", "tinyseg segment", "mkdir", "python -c \"from host_tools"))
                     or (line.startswith("tinyseg deploy") and "--dry-run" in line)
                     or line.startswith("MICROPYPATH="))
            if cheap and line not in cmds:
                cmds.append(line)
    return cmds


def test_guide_host_commands(tmp_path):
    """The guide's commands, run from a folder that looks like the checkout
    (tinyseg_mp, host_tools and boards linked), each exiting 0."""
    cmds = _host_commands()
    kinds = {c.split()[1] if c.startswith("tinyseg") else c.split()[0].split("=")[0] for c in cmds}
    assert {"compile", "segment", "deploy", "MICROPYPATH"} <= kinds, cmds
    for d in ("tinyseg_mp", "host_tools", "boards"):
        (tmp_path / d).symlink_to(REPO / d)
    from PIL import Image

    Image.fromarray(sample_images(2)[0][1]).resize((320, 240)).save(tmp_path / "my_photo.jpg")
    (tmp_path / "frame.py").write_text(pico_snippet())
    tinyseg = shutil.which("tinyseg")
    if tinyseg is None:
        pytest.skip("the tinyseg command is not on PATH")
    for cmd in cmds:
        if cmd.startswith("MICROPYPATH="):
            _unix_port()
        res = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, f"{cmd}\n{res.stdout[-2000:]}{res.stderr[-2000:]}"
        if cmd.startswith("tinyseg deploy"):
            assert "mpremote connect" in res.stdout and "dry run: nothing was run" in res.stdout
        if cmd.startswith("MICROPYPATH="):
            assert "pixels in the mask" in res.stdout and "bytes free" in res.stdout, res.stdout
        if cmd.startswith("tinyseg segment"):
            out = shlex.split(cmd)
            folder = out[out.index("--out") + 1] if "--out" in out else "tinyseg-segment"
            assert (tmp_path / folder / "my_photo_mask.png").exists()
            assert (tmp_path / folder / "my_photo_overlay.png").exists()


def test_guide_pico_snippet_on_virtual_pico(boards):
    """The guide's Pico snippet as the board runs it: the raw REPL of real
    RP2040 firmware, the runtime as .mpy (armv6m), model.tsb and
    frames/sample0.rgb565 on its littlefs. One boot, the small U-Net."""
    why = pico.missing()
    if why:
        pytest.skip(why)
    root = boards["mini_unet"]
    mask, count = expected_print(root / "model.tsb")
    code = pico_snippet()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fs = Path(tmp) / "fs"
        shutil.copytree(pico.board_tree(), fs)
        shutil.copy(root / "model.tsb", fs / "model.tsb")
        shutil.copytree(root / "frames", fs / "frames")
        rc, out, err, _ = pico._emulate(fs, code, "stock", 300)
    assert rc == 0, f"{out[-2000:]}{err[-2000:]}"
    assert mask in out.replace("\r\n", "\n"), out
    assert count in out, out
    free = re.search(r"^(\d+) bytes free", out, re.M)
    assert free and int(free.group(1)) > 0, out
