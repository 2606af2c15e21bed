"""The long fuzz run of issue 14: N mutated bundles (default 10,000), each
with its CRCs recomputed (so the change reaches the validators) or not, run
on CPython (numpy kernels, and the viper kernels as plain Python, whose
pointer stand-ins raise on any out-of-bounds index) and in the MicroPython
unix port (real viper, batches of cases in one process each). Prints the
outcome counts; exit status 1 if any outcome is foreign, a crash or a hang.

    python benchmarks/fuzz_bundles.py [--cases 10000] [--seed 1] [--standin-every 10] [--batch 500]

Outcomes: same (the unmutated output), diff (ran, other bytes: only with
recomputed CRCs, e.g. a changed zero point), rejected (the project's own
error: BundleError, or the runtime's one-line MemoryError/OSError), foreign
(any other exception), crash, hang. The tests (tests/test_untrusted.py) run
a short version of the same generator."""
from __future__ import annotations

import argparse
import collections
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

import bundle_mutations as bm  # noqa: E402
from fuzz_bases import build  # noqa: E402


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--standin-every", type=int, default=10,
                    help="run every Nth case on the (slow) plain-Python viper stand-in too")
    ap.add_argument("--batch", type=int, default=500, help="cases per unix-port process")
    ap.add_argument("--no-unix-port", action="store_true")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="tinyseg-fuzz-"))
    bases = build(work)
    specs = [(rng.randrange(len(bases)), bm.random_mutation(rng), rng.random() < 0.7) for _ in range(args.cases)]
    counts = collections.Counter()
    bad = []
    signal.signal(signal.SIGALRM, _alarm)
    t0 = time.time()
    case = work / "case.tsb"
    for i, (b, mu, fix) in enumerate(specs):
        data = bm.apply(bases[b]["data"], mu, fix)
        case.write_bytes(data)
        for backend in ("numpy", "viper") if i % args.standin_every == 0 else ("numpy",):
            signal.alarm(20)
            try:
                outcome, detail = bm.classify(str(case), bases[b]["inp"], bases[b]["ref"], backend,
                                              str(work / "case.spill"))
            except Hang:
                outcome, detail = "hang", ""
            finally:
                signal.alarm(0)
            if outcome == "diff" and not fix:
                outcome = "diff-without-crc-fix"
            if list(work.glob("case.spill*")):
                outcome = "left-files"
            counts["cpython-" + backend, "crc fixed" if fix else "crc kept", outcome] += 1
            if outcome not in ("same", "diff", "rejected"):
                bad.append((i, bases[b]["name"], mu, fix, backend, outcome, detail))
    t_cpy = time.time() - t0
    t1 = time.time()
    if not args.no_unix_port:
        from conftest import micropython_exe
        from test_untrusted import run_mp_batch

        if micropython_exe() is None:
            print("no MicroPython unix port: skipped")
        else:
            for start in range(0, len(specs), args.batch):
                chunk = specs[start : start + args.batch]
                d = work / f"mp{start}"
                d.mkdir()
                cases = [(bm.apply(bases[b]["data"], mu, fix), bases[b]) for b, mu, fix in chunk]
                try:
                    done = run_mp_batch(cases, d, timeout=600)
                except AssertionError as exc:  # a crash or a hang: find it case by case
                    done = {}
                    for k, c in enumerate(cases):
                        try:
                            done[k] = run_mp_batch([c], d / f"one{k}" if (d / f"one{k}").mkdir() is None else d,
                                                   timeout=60)[0]
                        except (AssertionError, Exception) as one:  # noqa: BLE001
                            done[k] = ("crash", str(one).splitlines()[0])
                for k, (b, mu, fix) in enumerate(chunk):
                    outcome, detail = done[k]
                    if outcome == "diff" and not fix:
                        outcome = "diff-without-crc-fix"
                    counts["unix-port-viper", "crc fixed" if fix else "crc kept", outcome] += 1
                    if outcome not in ("same", "diff", "rejected"):
                        bad.append((start + k, bases[b]["name"], mu, fix, "unix-port", outcome, detail))
                if list(d.glob("*.spill.*")):
                    counts["unix-port-viper", "-", "left-files"] += 1
    t_mp = time.time() - t1
    print(f"{args.cases} cases (seed {args.seed}) over {len(bases)} bundles; "
          f"CPython {t_cpy:.0f} s, unix port {t_mp:.0f} s")
    for key in sorted(counts):
        print("  %-16s %-10s %-22s %6d" % (*key, counts[key]))
    for row in bad[:20]:
        print("BAD", *row[:6], str(row[6])[-300:].replace("\n", " | "))
    print("defects:", len(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
