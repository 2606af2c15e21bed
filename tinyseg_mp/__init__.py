# tinyseg_mp: run int8 segmentation bundles (.tsb) on MicroPython and CPython.
#   m = tinyseg_mp.load("model.tsb")   # backend chosen automatically
#   out = m.run(inp)                   # inp: bytes in the model's input layout
from tinyseg_mp.model import Model


def load(path, backend=None, spill_path=None):
    """Load a bundle; backend 'numpy', 'ulab' or 'viper' forces a kernel family.
    A bundle that spills keeps a scratch file at spill_path (default: the
    bundle's path + '.spill') on the board's filesystem."""
    return Model(path, backend, spill_path)
