# Device ops, one module each (ops/op_<name>.py), numbered by their position
# here: the bundle's step records carry that number. Every module has
#   PARAMS: the names of its int32 step parameters, in order (the host
#           writer reads them from here), and
#   run(m, p, blob): executes one step on model `m` with params `p` and the
#           step's constant blob (a memoryview of the weight buffer),
#   kernel(): (optional) the run() the selected backend's kernels give,
#           where a target family has its own (ops/thumb/); see kernel() below, and
#   check(p, raw, m): the op's parameter contract, the LAST function of the
#           module. The loader (tinyseg_mp.check.steps) calls it once per step at
#           load, before anything runs: p = the step's params, raw = its
#           blob's length once inflated (0: none), m = the model (m.meta: the
#           arena, weight buffer, input and output sizes; m.slots and
#           m.written: the spill slots and the rows spilled so far). It
#           returns None when every index its kernels compute from p stays
#           inside the buffers they touch (arena, blob, input, output, spill
#           slot), or fails through tinyseg_mp.check's helpers bad(m, p,
#           field, what), span(m, p, i, n[, size, where]), least(m, p, lo,
#           fields), within(m, p, i, lo, hi), need_blob(m, p, raw, n), which
#           raise BundleError naming the file, the byte offset of the step
#           record, the step index, the op, the field and its value. It imports
#           tinyseg_mp.check inside the function (the loader drops that
#           module after the load) and allocates nothing big:
#           it runs on the board, per step, for every load. An op whose
#           kernels read a blob layout states that layout's length in a
#           helper beside check (op_conv2d.blob_bytes). The loader imports
#           only the modules of the ops a bundle uses (a run needs them anyway).
import sys

NAMES = (
    "conv2d",
    "depthwise_conv2d",
    "transpose_conv",
    "max_pool2d",
    "average_pool2d",
    "concatenation",
    "add",
    "mul",
    "pad",
    "copy",
    "lookup",
    "dequantize",
    "softmax",
    "resize_nearest",
    "mean",
    "spill",
    "concat_conv2d",
    "fetch",
    "feed",
    "drain",
    "sub",
    "transpose",
    "resize_bilinear",
    "arg_max",
    "quantize_float",
)

if sys.implementation.name != "micropython":
    from tinyseg_mp._compat import install_cpython_shims

    install_cpython_shims()


def load(opcode):
    """The module of op `opcode`, imported on first use to save RAM."""
    if not 0 <= opcode < len(NAMES):
        raise ValueError("unknown op code %d: bundle is newer than this runtime" % opcode)
    from tinyseg_mp._compat import import_module

    return import_module("tinyseg_mp.ops.op_" + NAMES[opcode])


def kernel(mod):
    """The function a step of op module `mod` runs: its run(), or the
    target kernels' one that its kernel() names for the selected backend.
    Bound once at load, so that a step does not pass through the reference
    module on its way to them (a Python call costs the RP2040 about 1,200
    cycles)."""
    pick = getattr(mod, "kernel", None)
    return pick() if pick else mod.run
