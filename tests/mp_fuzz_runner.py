# Runs a batch of (mutated) bundles in ONE MicroPython process, for the
# property tests (tests/test_untrusted.py) and benchmarks/fuzz_bundles.py:
#   micropython mp_fuzz_runner.py LIST BACKEND
# LIST has one line per case: "BUNDLE INPUT REFERENCE_OUTPUT". Prints
# "C i" before case i and "R i OUTCOME detail" after it: OUTCOME is same,
# diff, rejected (the project's own error) or foreign. A crash or a hang
# shows as a "C i" without its "R i".
import sys

import tinyseg_mp
from fuzz_outcome import own_error  # beside this script, on MicroPython's path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main(list_path, backend):
    with open(list_path) as f:
        cases = [line.split() for line in f if line.strip()]
    inputs = {}
    for i, (path, inp, ref) in enumerate(cases):
        if inp not in inputs:
            inputs[inp] = (read(inp), read(ref))
        x, want = inputs[inp]
        print("C", i)
        m = None
        outcome = "same"
        detail = ""
        try:
            m = tinyseg_mp.load(path, backend, path + ".spill")
            out = m.run(x)
            if bytes(out) != want:
                outcome = "diff"
        except Exception as exc:
            outcome = "rejected" if own_error(exc, path) else "foreign"
            detail = "%s: %s" % (type(exc).__name__, exc)
        if m is not None:
            m.close()
        print("R", i, outcome, detail.replace("\n", " "))


main(sys.argv[1], sys.argv[2])
