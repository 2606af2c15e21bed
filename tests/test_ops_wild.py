"""Ops and files from models nobody here made (issue 15), bit for bit against
TFLite Micro: nameless tensors and subgraphs; TRANSPOSE, RESIZE_BILINEAR,
ARG_MAX, HARD_SWISH and SUB on numpy, the ulab stand-in, the plain-Python
viper shim and the MicroPython unix port's viper; float I/O around an int8
body; MAC counts.

Fixtures: tests/fixtures/ops/*_wild_*.tflite (make_wild_ops.py; TensorFlow's
converter where it emits the op, the flatbuffer builder of make_ops.py
otherwise), plus models written on the fly with make_ops.single_op_model.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import FIXTURES, REPO
from host_tools import tflite_import
from host_tools.compile import compile_model
from host_tools.runner import run_bundle

OPS_DIR = FIXTURES / "ops"
runtime_mod = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")


def make_ops_module():
    if str(OPS_DIR) not in sys.path:
        sys.path.insert(0, str(OPS_DIR))
    import make_ops

    return make_ops


def tflm(path, x: np.ndarray) -> np.ndarray:
    it = runtime_mod.Interpreter.from_file(str(path), arena_size=4_000_000)
    it.set_input(x, 0)
    it.invoke()
    return it.get_output(0)


def test_nameless_tensors_and_subgraph_import_and_run(tmp_path):
    mk = make_ops_module()
    spec = mk.OpSpec("RELU", [mk.TensorSpec((1, 4, 4, 3), "int8", 0.1, 2)],
                     [mk.TensorSpec((1, 4, 4, 3), "int8", 0.05, -100)])
    path = tmp_path / "nameless.tflite"
    path.write_bytes(mk.single_op_model(spec, named=False))
    import tflite

    raw = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    assert raw.Subgraphs(0).Name() is None and raw.Subgraphs(0).Tensors(0).Name() is None
    graph = tflite_import.load(path)
    assert [t.name for t in graph.tensors] == ["tensor0", "tensor1"]
    compile_model(path, tmp_path / "nameless.tsb")
    x = np.arange(-128, 128, 256 // 48, dtype=np.int64)[:48].astype(np.int8).reshape(1, 4, 4, 3)
    ours, _ = run_bundle(str(tmp_path / "nameless.tsb"), x, "cpython", "numpy")
    assert np.array_equal(ours, tflm(path, x))
