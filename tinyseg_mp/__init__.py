# tinyseg_mp: run int8 segmentation bundles (.tsb) on MicroPython and CPython.
#   m = tinyseg_mp.load("model.tsb")   # backend chosen automatically
#   out = m.run(inp)                   # inp: bytes in the model's input layout
from tinyseg_mp.model import Model


def load(path, backend=None, spill_path=None, input_view=False):
    """Load a bundle; backend 'numpy', 'ulab', 'viper' or 'thumb' forces a
    kernel family. A bundle that spills keeps a scratch file at spill_path
    (default: the bundle's path + '.spill') on the board's filesystem.
    input_view: the caller will fill m.input_view(); a band-streamed plan
    then allocates that buffer at load, with the others, in one piece."""
    return Model(path, backend, spill_path, input_view=input_view)
