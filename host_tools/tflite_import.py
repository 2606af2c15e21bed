"""Import an int8 `.tflite` file into the graph IR.

The flatbuffer is read with the maintained schema binding of the `tflite`
package. Shape-arithmetic chains that converted Keras models compute at run
time (SHAPE -> STRIDED_SLICE -> PACK -> PAD) are folded into constants, since
every shape is static here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tflite

from .graph import Graph, Op, Tensor

SUPPORTED_OPS = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "TRANSPOSE_CONV",
        "MAX_POOL_2D",
        "AVERAGE_POOL_2D",
        "CONCATENATION",
        "ADD",
        "MUL",
        "SUB",
        "TRANSPOSE",
        "RESIZE_BILINEAR",
        "ARG_MAX",
        "PAD",
        "PADV2",
        "RESHAPE",
        "QUANTIZE",
        "DEQUANTIZE",
        "LOGISTIC",
        "SOFTMAX",
        "RELU",
        "RELU6",
        "LEAKY_RELU",
        "HARD_SWISH",
        "RESIZE_NEAREST_NEIGHBOR",
        "FULLY_CONNECTED",
        "MEAN",
    }
)

_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_TENSOR_TYPES = {
    tflite.TensorType.FLOAT32: "float32",
    tflite.TensorType.INT8: "int8",
    tflite.TensorType.UINT8: "uint8",
    tflite.TensorType.INT16: "int16",
    tflite.TensorType.INT32: "int32",
    tflite.TensorType.INT64: "int64",
    tflite.TensorType.BOOL: "bool",
}
_ACTIVATIONS = {
    tflite.ActivationFunctionType.NONE: "NONE",
    tflite.ActivationFunctionType.RELU: "RELU",
    tflite.ActivationFunctionType.RELU_N1_TO_1: "RELU_N1_TO_1",
    tflite.ActivationFunctionType.RELU6: "RELU6",
    tflite.ActivationFunctionType.TANH: "TANH",
}
_PADDINGS = {tflite.Padding.SAME: "SAME", tflite.Padding.VALID: "VALID"}


class ModelError(Exception):
    """A model file that cannot be imported; the message says why and what to do."""


def _options(op: tflite.Operator, cls: type) -> object:
    table = op.BuiltinOptions()
    opts = cls()
    if table is not None:
        opts.Init(table.Bytes, table.Pos)
    return opts


def _read_options(kind: str, op: tflite.Operator) -> dict:
    """Normalise the builtin options an op kind needs into a plain dict."""
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        cls = tflite.Conv2DOptions if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions
        o = _options(op, cls)
        out = {
            "padding": _PADDINGS[o.Padding()],
            "stride_h": o.StrideH(),
            "stride_w": o.StrideW(),
            "dilation_h": o.DilationHFactor(),
            "dilation_w": o.DilationWFactor(),
            "activation": _ACTIVATIONS[o.FusedActivationFunction()],
        }
        if kind == "DEPTHWISE_CONV_2D":
            out["depth_multiplier"] = o.DepthMultiplier()
        return out
    if kind == "TRANSPOSE_CONV":
        o = _options(op, tflite.TransposeConvOptions)
        return {
            "padding": _PADDINGS[o.Padding()],
            "stride_h": o.StrideH(),
            "stride_w": o.StrideW(),
            "activation": _ACTIVATIONS[o.FusedActivationFunction()],
        }
    if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        o = _options(op, tflite.Pool2DOptions)
        return {
            "padding": _PADDINGS[o.Padding()],
            "stride_h": o.StrideH(),
            "stride_w": o.StrideW(),
            "filter_h": o.FilterHeight(),
            "filter_w": o.FilterWidth(),
            "activation": _ACTIVATIONS[o.FusedActivationFunction()],
        }
    if kind == "CONCATENATION":
        o = _options(op, tflite.ConcatenationOptions)
        return {"axis": o.Axis(), "activation": _ACTIVATIONS[o.FusedActivationFunction()]}
    if kind in ("ADD", "MUL", "SUB", "DIV"):
        cls = {"ADD": tflite.AddOptions, "MUL": tflite.MulOptions,
               "SUB": tflite.SubOptions, "DIV": tflite.DivOptions}[kind]
        return {"activation": _ACTIVATIONS[_options(op, cls).FusedActivationFunction()]}
    if kind == "FULLY_CONNECTED":
        o = _options(op, tflite.FullyConnectedOptions)
        return {
            "activation": _ACTIVATIONS[o.FusedActivationFunction()],
            "keep_num_dims": bool(o.KeepNumDims()),
        }
    if kind == "SOFTMAX":
        return {"beta": float(_options(op, tflite.SoftmaxOptions).Beta())}
    if kind == "LEAKY_RELU":
        return {"alpha": float(_options(op, tflite.LeakyReluOptions).Alpha())}
    if kind == "RESIZE_NEAREST_NEIGHBOR":
        o = _options(op, tflite.ResizeNearestNeighborOptions)
        return {"align_corners": bool(o.AlignCorners()), "half_pixel_centers": bool(o.HalfPixelCenters())}
    if kind == "RESIZE_BILINEAR":
        o = _options(op, tflite.ResizeBilinearOptions)
        return {"align_corners": bool(o.AlignCorners()), "half_pixel_centers": bool(o.HalfPixelCenters())}
    if kind == "MEAN":
        return {"keep_dims": bool(_options(op, tflite.ReducerOptions).KeepDims())}
    if kind == "STRIDED_SLICE":
        o = _options(op, tflite.StridedSliceOptions)
        return {
            "begin_mask": o.BeginMask(),
            "end_mask": o.EndMask(),
            "ellipsis_mask": o.EllipsisMask(),
            "new_axis_mask": o.NewAxisMask(),
            "shrink_axis_mask": o.ShrinkAxisMask(),
        }
    if kind == "PACK":
        o = _options(op, tflite.PackOptions)
        return {"axis": o.Axis(), "values_count": o.ValuesCount()}
    return {}


def tensor_name(t: tflite.Tensor, i: int) -> str:
    """The tensor's name, or `tensor<i>` when the file has none (names are
    optional in the schema: TFLite Micro's own test models omit them)."""
    raw = t.Name()
    return raw.decode(errors="replace") if raw else f"tensor{i}"


def _read_tensor(model: tflite.Model, sg: tflite.SubGraph, i: int) -> Tensor:
    t = sg.Tensors(i)
    ttype = t.Type()
    name = tensor_name(t, i)
    if ttype not in _TENSOR_TYPES:
        raise ModelError(f"tensor {i} '{name}' has unsupported type {ttype}")
    dtype = _TENSOR_TYPES[ttype]
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    data = None
    buf = model.Buffers(t.Buffer())
    if buf is not None and buf.DataLength() > 0:
        raw = buf.DataAsNumpy().tobytes()
        data = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()
    scale = zero_point = None
    axis = 0
    q = t.Quantization()
    if q is not None and q.ScaleLength() > 0:
        scale = q.ScaleAsNumpy().astype(np.float32)
        zero_point = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(len(scale), np.int64)
        axis = q.QuantizedDimension()
    return Tensor(
        index=i,
        name=name,
        shape=shape,
        dtype=dtype,
        scale=scale,
        zero_point=zero_point,
        quant_axis=axis,
        data=data,
    )


def parse_model(data: bytes, path: str = "<bytes>") -> Graph:
    """Parse .tflite bytes into a Graph with every op of the file, unfolded."""
    if len(data) < 8:
        raise ModelError(f"{path}: only {len(data)} bytes; a .tflite file starts with an 8-byte header")
    if data[4:8] != b"TFL3":
        raise ModelError(
            f"{path}: bytes 4..7 are {data[4:8]!r}, not the TFLite identifier b'TFL3'; "
            "is this a .tflite flatbuffer? (export with tf.lite.TFLiteConverter)"
        )
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() != 1:
            raise ModelError(f"{path}: {model.SubgraphsLength()} subgraphs; only single-subgraph models are supported")
        sg = model.Subgraphs(0)
        tensors = [_read_tensor(model, sg, i) for i in range(sg.TensorsLength())]
        ops = []
        for k in range(sg.OperatorsLength()):
            op = sg.Operators(k)
            code = model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            kind = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
            if kind == "CUSTOM":
                kind = "CUSTOM:" + (code.CustomCode() or b"?").decode(errors="replace")
            ops.append(
                Op(
                    index=k,
                    kind=kind,
                    inputs=[int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else [],
                    outputs=[int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else [],
                    options=_read_options(kind, op),
                    source_index=k,
                )
            )
        graph = Graph(
            tensors=tensors,
            ops=ops,
            inputs=[int(x) for x in sg.InputsAsNumpy()],
            outputs=[int(x) for x in sg.OutputsAsNumpy()],
            name=Path(path).stem,
        )
    except ModelError:
        raise
    except Exception as exc:  # the flatbuffer reader fails with many kinds of error on damaged input
        raise ModelError(
            f"{path}: the flatbuffer is damaged or truncated ({type(exc).__name__}: {exc}); "
            f"file has {len(data)} bytes. Re-export the model."
        ) from None
    check_graph(graph, path)
    graph.relink()
    return graph


# Bounds for a microcontroller model, checked before anything is planned: a
# damaged dimension (a height of 262,164) is an error, not a long plan.
MAX_DIM = 65536  # any dimension
MAX_IMAGE_DIM = 4096  # height and width of a 4-D (NHWC) tensor
MAX_TENSOR_BYTES = 1 << 24  # the device's own limit on one buffer (tinyseg_mp.bundle.MAX_BYTES)


def check_graph(graph: Graph, path: str) -> None:
    """Every tensor index an op, the inputs or the outputs use exists, every
    tensor produced once, shapes and sizes within a microcontroller's reach;
    ModelError naming the op or tensor otherwise."""
    n = len(graph.tensors)
    fix = "the file is damaged or not a microcontroller model; re-export it"
    for name, idx in (("input", graph.inputs), ("output", graph.outputs)):
        if not idx:
            raise ModelError(f"{path}: the subgraph lists no {name} tensors; {fix}")
        for i in idx:
            if not 0 <= i < n:
                raise ModelError(f"{path}: model {name} tensor {i} does not exist ({n} tensors); {fix}")
    produced = {}
    for op in graph.ops:
        where = f"{path}: op {op.source_index} ({op.kind})"
        for i in op.inputs:
            if not -1 <= i < n:  # -1: an optional input left out
                raise ModelError(f"{where}: input tensor {i} does not exist ({n} tensors); {fix}")
        if not op.outputs:
            raise ModelError(f"{where}: has no output tensor; {fix}")
        for i in op.outputs:
            if not 0 <= i < n:
                raise ModelError(f"{where}: output tensor {i} does not exist ({n} tensors); {fix}")
            if i in produced:
                raise ModelError(f"{where}: output tensor {i} is also written by op {produced[i]}; {fix}")
            if graph.tensors[i].is_const:
                raise ModelError(f"{where}: output tensor {i} is a constant; {fix}")
            produced[i] = op.source_index
    for t in graph.tensors:
        what = f"{path}: tensor {t.index} '{t.name}' of shape {list(t.shape)}"
        if any(d < 0 or d > MAX_DIM for d in t.shape):
            raise ModelError(f"{what}: dimensions must be 0..{MAX_DIM:,d}; {fix}")
        if len(t.shape) == 4 and max(t.shape[1], t.shape[2]) > MAX_IMAGE_DIM:
            raise ModelError(f"{what}: an image over {MAX_IMAGE_DIM:,d} pixels high or wide is beyond a "
                             f"microcontroller; {fix}")
        if t.nbytes > MAX_TENSOR_BYTES:
            raise ModelError(f"{what}: {t.nbytes:,d} bytes, more than a microcontroller buffer "
                             f"({MAX_TENSOR_BYTES:,d}); {fix}")
        if t.scale is not None and (len(t.scale) == 0 or not np.all(np.isfinite(t.scale)) or not np.all(t.scale > 0)
                                    or len(t.zero_point) != len(t.scale)
                                    or not np.all(np.abs(t.zero_point) <= 2**31)):
            raise ModelError(f"{what}: its quantisation (scale {t.scale.tolist()[:4]}, zero point "
                             f"{t.zero_point.tolist()[:4]}) is damaged; {fix}")


# --- folding of static shape arithmetic -------------------------------------

def _strided_slice(x: np.ndarray, begin: np.ndarray, end: np.ndarray, strides: np.ndarray, o: dict) -> np.ndarray:
    if o["ellipsis_mask"] or o["new_axis_mask"]:
        raise ModelError("STRIDED_SLICE with ellipsis or new-axis masks cannot be folded")
    index = []
    for d in range(len(begin)):
        b = None if o["begin_mask"] >> d & 1 else int(begin[d])
        e = None if o["end_mask"] >> d & 1 else int(end[d])
        if o["shrink_axis_mask"] >> d & 1:
            index.append(int(begin[d]))
        else:
            index.append(slice(b, e, int(strides[d])))
    return np.asarray(x[tuple(index)])


def _fold_value(graph: Graph, op: Op) -> np.ndarray | None:
    """The constant value of an op's output if it can be computed now."""
    ins = [graph.tensors[i] for i in op.inputs if i >= 0]
    if op.kind == "SHAPE":
        return np.array(ins[0].shape, dtype=np.int32)
    if not all(t.is_const for t in ins):
        return None
    # Only fold integer shape arithmetic: quantised activations stay ops.
    if any(t.dtype not in ("int32", "int64") for t in ins) and op.kind != "CAST":
        return None
    v = [t.data for t in ins]
    if op.kind == "STRIDED_SLICE":
        return _strided_slice(v[0], v[1], v[2], v[3], op.options)
    if op.kind == "PACK":
        return np.stack(v, axis=op.options["axis"])
    if op.kind == "CONCATENATION":
        return np.concatenate(v, axis=op.options["axis"])
    if op.kind == "ADD":
        return v[0] + v[1]
    if op.kind == "SUB":
        return v[0] - v[1]
    if op.kind == "MUL":
        return v[0] * v[1]
    if op.kind == "FLOOR_DIV":
        return v[0] // v[1]
    if op.kind in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        return v[0].reshape(graph.tensors[op.outputs[0]].shape)
    if op.kind == "CAST":
        return v[0].astype(graph.tensors[op.outputs[0]].dtype)
    return None


def fold_constants(graph: Graph) -> Graph:
    """Replace ops whose outputs are static (shape arithmetic) by constants."""
    kept = []
    for op in graph.ops:
        value = _fold_value(graph, op) if len(op.outputs) == 1 else None
        if value is None:
            kept.append(op)
            continue
        out = graph.tensors[op.outputs[0]]
        out.data = np.asarray(value, dtype=out.dtype).reshape(out.shape)
    graph.ops = kept
    graph.relink()
    # Constants nobody reads any more (the folded chain's inputs) are left in
    # the tensor table but have no consumers, so no pass sees them.
    fold_dilated_convs(graph)
    return graph


def _dilated_conv(graph: Graph, b2s: Op) -> tuple[Op, Op, Op] | None:
    """(SPACE_TO_BATCH_ND, conv, BATCH_TO_SPACE_ND) if b2s ends that chain."""
    t = graph.tensors
    mid = t[b2s.inputs[0]]
    if mid.producer is None or len(mid.consumers) != 1:
        return None
    conv = graph.ops[mid.producer]
    if conv.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D") or len(t[conv.inputs[0]].consumers) != 1:
        return None
    src = t[conv.inputs[0]]
    if src.producer is None or graph.ops[src.producer].kind != "SPACE_TO_BATCH_ND":
        return None
    return graph.ops[src.producer], conv, b2s


def fold_dilated_convs(graph: Graph) -> list[str]:
    """SPACE_TO_BATCH_ND -> CONV_2D / DEPTHWISE_CONV_2D -> BATCH_TO_SPACE_ND,
    the converter's form of a dilated convolution (DeepLab's atrous
    convolutions), becomes one convolution with dilation d when it computes
    exactly that: equal d x d block shapes, a stride-1 VALID inner conv, and
    either no padding or crop (VALID) or the SAME padding of the dilated
    filter (its top/left half; the rest and the crops only round the size up
    to a multiple of d). TFLite Micro pads with the raw value 0: with a zero
    point of 0 that is SAME padding, otherwise a PADV2 of raw 0 before a
    VALID dilated convolution. Returns what was folded."""
    t = graph.tensors
    done = []
    for b2s in [op for op in graph.ops if op.kind == "BATCH_TO_SPACE_ND"]:
        chain = _dilated_conv(graph, b2s)
        if chain is None:
            continue
        s2b, conv, _ = chain
        consts = [t[s2b.inputs[1]], t[s2b.inputs[2]], t[b2s.inputs[1]], t[b2s.inputs[2]]]
        if not all(c.is_const for c in consts):
            continue
        block, pads, block2, crops = (np.asarray(c.data).reshape(-1) for c in consts)
        o = conv.options
        if (len(block) != 2 or block[0] != block[1] or list(block) != list(block2) or o.get("stride_h") != 1
                or o.get("stride_w") != 1 or o.get("dilation_h") != 1 or o.get("dilation_w") != 1
                or o.get("padding") != "VALID"):
            continue
        d = int(block[0])
        x, y = t[s2b.inputs[0]], t[b2s.outputs[0]]
        if t[conv.inputs[0]].shape[:1] != (d * d * x.shape[0],):
            # A dynamic-batch export: the file says batch 1 where d*d blocks
            # run; TFLite Micro then computes only the first block (TF's own
            # interpreter resizes). Refuse rather than differ from either.
            s2b.refused = (f"a dilated convolution exported with a dynamic batch: the file gives "
                                      f"'{t[conv.inputs[0]].name}' batch {t[conv.inputs[0]].shape[0]}, not "
                                      f"{d * d}, and TFLite Micro computes only its first block; re-export "
                                      f"with a fixed batch (keras.Input(..., batch_size=1))")
            continue
        _, k_h, k_w, _ = t[conv.inputs[1]].shape
        if (x.scale is None or t[conv.inputs[0]].scale is None or x.qparams() != t[conv.inputs[0]].qparams()
                or y.scale is None or y.qparams() != t[conv.outputs[0]].qparams()):
            continue
        if not pads.any() and not crops.any():
            padding = "VALID"
        elif (y.shape[1:3] == x.shape[1:3] and pads[0] == (k_h - 1) * d // 2 and pads[2] == (k_w - 1) * d // 2
              and pads[1] >= (k_h - 1) * d - pads[0] and pads[3] >= (k_w - 1) * d - pads[2]):
            padding = "SAME"
        else:
            continue
        src = x
        pad_op = None
        if padding == "SAME" and x.qparams()[1] != 0:
            # TFLite Micro's SPACE_TO_BATCH_ND pads with the raw value 0, not
            # the zero point: the same as a PADV2 of raw 0, then VALID.
            top, left = int(pads[0]), int(pads[2])
            bottom, right = (k_h - 1) * d - top, (k_w - 1) * d - left
            n, h, w, c = x.shape
            src = graph.add_tensor(x, f"{x.name} (SPACE_TO_BATCH_ND padding)", shape=(n, h + top + bottom,
                                                                                   w + left + right, c))
            pad_c = graph.add_tensor(x, f"{x.name} (paddings)", shape=(4, 2), dtype="int32", scale=None,
                                     zero_point=None, data=np.array([[0, 0], [top, bottom], [left, right], [0, 0]],
                                                                    np.int32))
            val = graph.add_tensor(x, f"{x.name} (pad value)", shape=(), data=np.zeros((), np.int8))
            pad_op = Op(index=s2b.index, kind="PADV2", inputs=[x.index, pad_c.index, val.index],
                        outputs=[src.index], source_index=s2b.source_index)
            padding = "VALID"
        fused = Op(index=conv.index, kind=conv.kind, inputs=[src.index] + conv.inputs[1:], outputs=[y.index],
                   options=dict(o, padding=padding, dilation_h=d, dilation_w=d), source_index=conv.source_index)
        graph.ops[graph.ops.index(conv)] = fused
        if pad_op is not None:
            graph.ops[graph.ops.index(s2b)] = pad_op
        else:
            graph.ops.remove(s2b)
        graph.ops.remove(b2s)
        graph.relink()
        done.append(f"dilated {conv.kind} (op {conv.source_index}, dilation {d}, {padding}) from "
                    f"SPACE_TO_BATCH_ND (op {s2b.source_index}) and BATCH_TO_SPACE_ND (op {b2s.source_index})")
    return done


# Ops whose float32 side is the model's edge (float in, float out).
_FLOAT_EDGE_OPS = ("QUANTIZE", "DEQUANTIZE")
QUANTISE_HINT = ("quantise it to int8 with the TFLite converter (full-integer post-training quantisation: "
                 "optimizations=[tf.lite.Optimize.DEFAULT], a representative_dataset, "
                 "target_spec.supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8])")


def unsupported_ops(graph: Graph) -> dict[int, str]:
    """Why each op this project cannot run is refused, by its position in
    graph.ops: an op kind it has no kernel for, or float32 tensors (a float,
    not quantised, model; QUANTIZE and DEQUANTIZE at its edges excepted)."""
    why = {}
    for step, op in enumerate(graph.ops):
        if op.kind not in SUPPORTED_OPS:
            why[step] = getattr(op, "refused", "no kernel for this op")
        elif op.kind not in _FLOAT_EDGE_OPS and any(
                i >= 0 and graph.tensors[i].dtype == "float32" for i in op.inputs + op.outputs):
            why[step] = "float32 tensors: the model is not quantised"
    return why


def check_supported(graph: Graph, path: str) -> None:
    why = unsupported_ops(graph)
    floats = [graph.ops[s] for s, w in why.items() if w.startswith("float32")]
    bad = [graph.ops[s] for s, w in why.items() if not w.startswith("float32")]
    if floats and not bad:
        raise ModelError(f"{path}: a float model: {len(floats)} op(s) compute on float32 tensors "
                         f"({', '.join(op.label for op in floats[:3])}{', ...' if len(floats) > 3 else ''}); "
                         f"{QUANTISE_HINT}")
    if bad:
        lines = "\n".join(f"  op #{op.source_index}: {op.kind}"
                          + (f" ({op.refused})" if hasattr(op, "refused") else "") for op in bad)
        raise ModelError(
            f"{path}: {len(bad)} unsupported op(s):\n{lines}\n"
            f"Supported: {', '.join(sorted(SUPPORTED_OPS))}. "
            "Rebuild the model from supported layers."
        )
    for i in graph.inputs + graph.outputs:
        t = graph.tensors[i]
        allowed = ("int8", "uint8", "float32") + (("int32",) if i in graph.outputs else ())
        if t.dtype not in allowed:
            raise ModelError(f"{path}: model {'output' if i in graph.outputs else 'input'} tensor {i} '{t.name}' "
                             f"has dtype {t.dtype}; expected {', '.join(allowed)}")


def read_model_bytes(path: str | Path) -> bytes:
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ModelError(f"{p}: is a directory, expected a .tflite file") from None


def load_raw(path: str | Path) -> Graph:
    """The graph exactly as the file has it (what TFLite Micro plans)."""
    return parse_model(read_model_bytes(path), str(path))


def load(path: str | Path) -> Graph:
    """The graph ready for our passes: shape chains folded, ops checked."""
    graph = fold_constants(load_raw(path))
    check_supported(graph, str(path))
    return graph
