"""int8 TFLite conversion, op inspection and TFLite Micro measurements."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]


def convert_int8(
    model: Any,
    representative: Callable[[], Iterable[list[np.ndarray]]],
    input_type: Any,
    output_type: Any,
) -> bytes:
    """Full-integer int8 conversion (per-channel weights, converter defaults).

    ``input_type``/``output_type`` are tf dtypes (tf.uint8, tf.int8 or tf.float32).
    """
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = input_type
    conv.inference_output_type = output_type
    return bytes(conv.convert())


def _builtin_names() -> dict[int, str]:
    import tflite

    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def op_list(model_bytes: bytes) -> list[str]:
    """Builtin op names of subgraph 0, in execution order."""
    import tflite

    names = _builtin_names()
    m = tflite.Model.GetRootAsModel(model_bytes, 0)
    sg = m.Subgraphs(0)
    out = []
    for i in range(sg.OperatorsLength()):
        oc = m.OperatorCodes(sg.Operators(i).OpcodeIndex())
        out.append(names[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())])
    return out


def op_histogram(model_bytes: bytes) -> Counter[str]:
    """Count of each builtin op in subgraph 0."""
    return Counter(op_list(model_bytes))


def fused_activations(model_bytes: bytes) -> Counter[str]:
    """Count of ``OP+ACT`` pairs for ops carrying a fused activation other than NONE."""
    import tflite

    names = _builtin_names()
    act_names = {v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")}
    option_classes = {
        "CONV_2D": tflite.Conv2DOptions,
        "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
        "TRANSPOSE_CONV": tflite.TransposeConvOptions,
        "FULLY_CONNECTED": tflite.FullyConnectedOptions,
        "ADD": tflite.AddOptions,
        "MUL": tflite.MulOptions,
        "CONCATENATION": tflite.ConcatenationOptions,
        "MAX_POOL_2D": tflite.Pool2DOptions,
        "AVERAGE_POOL_2D": tflite.Pool2DOptions,
    }
    m = tflite.Model.GetRootAsModel(model_bytes, 0)
    sg = m.Subgraphs(0)
    out: Counter[str] = Counter()
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        oc = m.OperatorCodes(op.OpcodeIndex())
        name = names[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())]
        cls = option_classes.get(name)
        table = op.BuiltinOptions()
        if cls is None or table is None:
            continue
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        act = act_names.get(opts.FusedActivationFunction(), "?")
        if act != "NONE":
            out[f"{name}+{act}"] += 1
    return out


def io_details(model_bytes: bytes) -> dict[str, Any]:
    """Shape, shape signature and dtype of input 0 and output 0."""
    import tflite

    types = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
    m = tflite.Model.GetRootAsModel(model_bytes, 0)
    sg = m.Subgraphs(0)

    def desc(idx: int) -> dict[str, Any]:
        t = sg.Tensors(idx)
        sig = t.ShapeSignatureAsNumpy().tolist() if t.ShapeSignatureLength() else t.ShapeAsNumpy().tolist()
        return {"shape": t.ShapeAsNumpy().tolist(), "signature": sig, "dtype": types[t.Type()].lower()}

    return {"input": desc(sg.Inputs(0)), "output": desc(sg.Outputs(0))}


def tflm_measure(model_path: Path, x: np.ndarray, arena_size: int = 2_000_000) -> dict[str, Any]:
    """Run one inference in TFLite Micro in a child process.

    Returns the output array and the arena total/head/tail that
    ``print_allocations`` printed (it writes from C++ to stdout, hence the
    child process). Raises RuntimeError if the child fails.
    """
    with tempfile.TemporaryDirectory() as td:
        xin, yout = Path(td) / "x.npy", Path(td) / "y.npy"
        np.save(xin, x)
        code = (
            "import sys, numpy as np\n"
            "from tflite_micro.python.tflite_micro import runtime\n"
            f"it = runtime.Interpreter.from_file({str(model_path)!r}, arena_size={arena_size})\n"
            f"it.set_input(np.load({str(xin)!r}), 0)\n"
            "it.invoke()\n"
            f"np.save({str(yout)!r}, it.get_output(0))\n"
            "sys.stdout.flush()\n"
            "it.print_allocations()\n"
        )
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"TFLM failed on {model_path}:\n{proc.stdout}\n{proc.stderr}")
        text = proc.stdout + proc.stderr
        arena = {k: int(v) for k, v in re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", text)}
        if set(arena) != {"total", "head", "tail"}:
            raise RuntimeError(f"could not parse print_allocations output:\n{text}")
        return {"output": np.load(yout), "arena": arena, "log": text}


def tflm_predictor(model_bytes_or_path: bytes | Path, arena_size: int = 2_000_000) -> Callable[[np.ndarray], np.ndarray]:
    """In-process TFLite Micro ``predict(x) -> y`` for a single-input model (x without batch dim)."""
    from tflite_micro.python.tflite_micro import runtime

    if isinstance(model_bytes_or_path, (str, Path)):
        interp = runtime.Interpreter.from_file(str(model_bytes_or_path), arena_size=arena_size)
    else:
        interp = runtime.Interpreter.from_bytes(model_bytes_or_path, arena_size=arena_size)

    def predict(x: np.ndarray) -> np.ndarray:
        interp.set_input(x[None], 0)
        interp.invoke()
        return interp.get_output(0)[0]

    return predict


def as_json(obj: Any) -> str:
    """Compact JSON for the histogram/measurement dicts."""
    return json.dumps(obj, sort_keys=True)


def batches(arr: np.ndarray) -> Iterator[list[np.ndarray]]:
    """Representative-dataset generator yielding one float32 sample at a time."""
    for i in range(arr.shape[0]):
        yield [arr[i : i + 1].astype(np.float32)]
