# Device ops, one module each (ops/op_<name>.py), numbered by their position
# here: the bundle's step records carry that number. Every module has
#   PARAMS: the names of its int32 step parameters, in order (the host
#           writer reads them from here), and
#   run(m, p, blob): executes one step on model `m` with params `p` and the
#           step's constant blob (a memoryview of the weight buffer).
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
