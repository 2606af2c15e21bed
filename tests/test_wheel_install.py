"""`pip install .` (a wheel, not editable) carries what the commands need:
the board profiles and demos, the bundled model, the device runtime and
its runner (issue 13, item 4). Built from a copy of the sources, so the
checkout gets no build/ or egg-info; installed with --target, away from the
editable install (whose finder comes after PYTHONPATH on the path)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, micropython_exe

SOURCES = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "host_tools", "tinyseg_mp", "boards"]


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(pip[:3] + ["wheel"] + pip[3:] + ["--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
                                                   str(src)], check=True, capture_output=True)
    (wheel,) = (tmp / "dist").glob("tinyseg_mp-*.whl")
    target = tmp / "site"
    subprocess.run(pip[:3] + ["install"] + pip[3:] + ["--no-deps", "--no-index", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    return wheel, target


def tinyseg(target: Path, cwd: Path, *argv) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(target))
    return subprocess.run([sys.executable, "-m", "host_tools.cli", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_wheel_carries_the_boards_and_the_runtime(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    boards = {f"host_tools/boards_data/{f}" for f in _files(REPO / "boards")}
    assert "host_tools/boards_data/rp2040/profile.json" in boards and "host_tools/boards_data/common/demo.py" in boards
    assert boards <= names, sorted(boards - names)
    runtime = {f"tinyseg_mp/{f}" for f in _files(REPO / "tinyseg_mp")}
    assert runtime <= names, sorted(runtime - names)
    assert {"host_tools/device_runner.py", "host_tools/models/tiny_unet_seg.tflite",
            "host_tools/models/samples.npy"} <= names


def test_installed_wheel_plans_for_a_board(installed, tmp_path):
    _, target = installed
    res = subprocess.run([sys.executable, "-c", "import host_tools, host_tools.boards as b; "
                          "print(host_tools.__file__); print(b.BOARDS_DIR); print(','.join(b.known_boards()))"],
                         cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(target)), capture_output=True, text=True,
                         check=True)
    module, boards_dir, known = res.stdout.split()
    assert Path(module).is_relative_to(target) and Path(boards_dir) == target / "host_tools" / "boards_data"
    assert known.split(",") == sorted(p.name for p in (REPO / "boards").glob("*") if (p / "profile.json").exists())
    res = tinyseg(target, tmp_path, "plan", target / "host_tools" / "models" / "tiny_unet_seg.tflite",
                  "--board", "rp2040")
    assert res.returncode == 0, res.stderr
    from host_tools.boards import load_board

    assert f"board rp2040: arena budget {load_board('rp2040').budget:,d} bytes" in res.stdout


@pytest.mark.skipif(micropython_exe() is None, reason="MicroPython unix port not installed")
def test_installed_wheel_runs_a_bundle_in_the_unix_port(installed, tmp_path):
    import numpy as np

    _, target = installed
    res = tinyseg(target, tmp_path, "compile", REPO / "tests" / "fixtures" / "ops" / "avg_pool_same.tflite",
                  "-o", "m.tsb", "--board", "esp32")
    assert res.returncode == 0, res.stderr
    np.save(tmp_path / "in.npy", np.zeros((1, 7, 7, 4), np.int8))
    res = tinyseg(target, tmp_path, "run", "m.tsb", "--input", "in.npy", "--output", "o.npy",
                  "--runtime", "micropython")
    assert res.returncode == 0, res.stderr
    assert np.load(tmp_path / "o.npy").shape == (1, 4, 4, 4)


def test_installed_wheel_runs_the_demo(installed, tmp_path):
    # The README's main job, from the wheel: its model, its board profile, its runtime.
    _, target = installed
    res = tinyseg(target, tmp_path, "demo", "--out", "demo")
    assert res.returncode == 0, res.stderr
    pictures = sorted(p.name for p in (tmp_path / "demo").glob("*.png"))
    assert pictures == ["memory_timeline.png"] + [f"sample{i}_{k}.png" for i in range(4) for k in ("input", "overlay")]
    if micropython_exe() is not None:
        assert res.stdout.count("output equal to the host's") == 4, res.stdout
