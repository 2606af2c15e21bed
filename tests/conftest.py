"""Shared fixtures: the model files and the TFLite Micro reference."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
# Every fixture model built by host_tools/train/fixtures.py (the test set of the issue).
MODEL_NAMES = sorted(p.stem for p in FIXTURES.glob("*.tflite") if p.stem != "unsupported_ops")


def model_path(name: str) -> Path:
    return FIXTURES / f"{name}.tflite"


_ARENA_RE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


def tflm_allocations(path: Path) -> dict[str, int]:
    """TFLite Micro's own arena report for a model (it prints from C++, so run it apart)."""
    code = (
        "import sys\n"
        "from tflite_micro.python.tflite_micro import runtime\n"
        "runtime.Interpreter.from_file(sys.argv[1], arena_size=8_000_000).print_allocations()\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    found = {k: int(v) for k, v in _ARENA_RE.findall(out.stdout + out.stderr)}
    assert {"total", "head", "tail"} <= found.keys(), out.stdout + out.stderr
    return found


def micropython_exe() -> str | None:
    exe = os.environ.get("TINYSEG_MICROPYTHON") or shutil.which("micropython")
    if exe is None:
        cand = Path(sys.executable).parent / "micropython"
        exe = str(cand) if cand.exists() else None
    return exe


@pytest.fixture(params=MODEL_NAMES)
def model_name(request: pytest.FixtureRequest) -> str:
    return request.param


# The files that boot the virtual Pico take minutes each: started first, they
# run beside the many short files rather than after them.
SLOW_FIRST = ("test_pico.py", "test_run_demo.py", "test_streaming.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name not in SLOW_FIRST)  # stable: the order within each part stays
