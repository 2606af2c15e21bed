"""tinyseg_mp.fixedpoint (device code) against the exact host mirrors in
host_tools.quant: scalar requantisation, its 32-bit bounds, the float32-exact
array requantisation (numpy float32 and the strict ulab stand-in), the device
half of SOFTMAX, and the same scalar code under the real MicroPython unix port
(plain and as a @micropython.viper function)."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host_tools import quant as Q  # noqa: E402
from tinyseg_mp import fixedpoint as F  # noqa: E402

LIM = 1 << 31
STANDIN = ROOT / "tests" / "ulab_standin"


def split(m: int) -> tuple[int, int]:
    return m >> 15, m & 0x7FFF


# ---------------------------------------------------------------------------
# scalar mbqm
# ---------------------------------------------------------------------------

EDGE_M = [0, 1, 2, 0x7FFF, 0x8000, 0xFFFF, 1 << 16, (1 << 30) - 1, 1 << 30,
          (1 << 30) + 1, 3 << 29, (1 << 31) - 2, (1 << 31) - 1, 1518500250,
          1431655765]
EDGE_X = [0, 1, -1, 2, -2, 3, -3, 0x7FFF, -0x7FFF, 0x8000, -0x8000,
          (1 << 24) - 1, -(1 << 24) + 1, 1 << 24, -(1 << 24),
          (1 << 30) - 1, 1 << 30, -(1 << 30), -(1 << 30) - 1,
          (1 << 31) - 1, -(1 << 31) + 1, (1 << 31) - 2, -(1 << 31) + 2]


def _edge_cases():
    for x in EDGE_X:
        for m in EDGE_M:
            for shift in range(-31, 8):
                if abs(x) * (1 << max(shift, 0)) < LIM:
                    yield x, m, shift
    # exact halves at every rounding stage
    for shift in range(-31, 1):
        r = -shift
        for k in (-3, -1, 0, 1, 2, 5):
            for m in ((1 << 30), (1 << 31) - 1, 3 << 29):
                # x*m/2^31 close to (k + 1/2) * 2^r
                target = (2 * k + 1) << r
                x = (target << 30) // m
                for dx in (-1, 0, 1):
                    if abs(x + dx) < LIM:
                        yield x + dx, m, shift


def _random_cases(n: int, seed: int):
    rnd = np.random.default_rng(seed)
    x = rnd.integers(-(LIM - 1), LIM, n)
    # multiplier: half normalised [2^30, 2^31), half anywhere in [0, 2^31)
    m = np.where(rnd.random(n) < 0.5, rnd.integers(1 << 30, LIM, n),
                 rnd.integers(0, LIM, n))
    shift = rnd.integers(-31, 1, n)
    # some positive shifts, with x scaled down so x << shift stays int32
    pos = rnd.random(n) < 0.1
    ls = rnd.integers(1, 8, n)
    shift = np.where(pos, ls, shift)
    x = np.where(pos, x >> (ls + 1), x)
    # some small accumulators (the common case) and small multipliers
    small = rnd.random(n) < 0.3
    x = np.where(small, rnd.integers(-(1 << 20), 1 << 20, n), x)
    return x, m, shift


def test_mbqm_two_million_random_and_edges():
    total = 0
    for seed in (1, 2):
        x, m, s = _random_cases(1_000_000, seed)
        want = Q.multiply_by_quantized_multiplier(x, m, s).tolist()
        mb = F.mbqm
        got = [mb(a, b >> 15, b & 0x7FFF, c)
               for a, b, c in zip(x.tolist(), m.tolist(), s.tolist())]
        assert got == want
        total += len(got)
    edges = list(_edge_cases())
    for x, m, s in edges:
        assert F.mbqm(x, m >> 15, m & 0x7FFF, s) == \
            Q.multiply_by_quantized_multiplier(x, m, s), (x, m, s)
    total += len(edges)
    assert total > 2_000_000 + 10_000


def test_srdhm_and_rdbpot_device_match_host():
    rnd = random.Random(17)
    vals = EDGE_X + [rnd.randint(-(LIM - 1), LIM - 1) for _ in range(400)]
    for a in vals:
        for b in vals[:120]:
            assert F.srdhm(a, b) == Q.srdhm(a, b), (a, b)
    for x in vals + list(range(-70, 70)):
        for e in range(0, 32):
            assert F.rdbpot(x, e) == Q.rounding_divide_by_pot(x, e)


class Bounded(int):
    """An int whose every arithmetic result must satisfy |v| < 2**31 (the
    32-bit machine word of @micropython.viper on the boards)."""
    peak = 0

    @staticmethod
    def _chk(v: int) -> "Bounded":
        a = abs(v)
        if a >= LIM:
            raise OverflowError("intermediate %d outside int32" % v)
        if a > Bounded.peak:
            Bounded.peak = a
        return Bounded(v)

    def _b(op):  # noqa: N805
        def f(self, other):
            return Bounded._chk(op(int(self), int(other)))
        return f

    def _r(op):  # noqa: N805
        def f(self, other):
            return Bounded._chk(op(int(other), int(self)))
        return f

    __add__ = _b(int.__add__)
    __radd__ = _r(int.__add__)
    __sub__ = _b(int.__sub__)
    __rsub__ = _r(int.__sub__)
    __mul__ = _b(int.__mul__)
    __rmul__ = _r(int.__mul__)
    __lshift__ = _b(int.__lshift__)
    __rlshift__ = _r(int.__lshift__)
    __rshift__ = _b(int.__rshift__)
    __rrshift__ = _r(int.__rshift__)
    __and__ = _b(int.__and__)
    __rand__ = _r(int.__and__)

    def __neg__(self):
        return Bounded._chk(-int(self))


def test_bounded_int_catches_overflow():
    with pytest.raises(OverflowError):
        Bounded(1 << 16) * Bounded(1 << 15)
    with pytest.raises(OverflowError):
        1 << Bounded(31)
    assert isinstance(0 - Bounded(5), Bounded)


def test_mbqm_intermediates_stay_int32():
    """Run the unchanged device function on instrumented ints that raise on
    any intermediate of magnitude >= 2**31."""
    Bounded.peak = 0
    cases = list(_edge_cases())
    x, m, s = _random_cases(100_000, 3)
    cases += list(zip(x.tolist(), m.tolist(), s.tolist()))
    B = Bounded
    for a, b, c in cases:
        got = F.mbqm(B(a), B(b >> 15), B(b & 0x7FFF), B(c))
        assert int(got) == Q.multiply_by_quantized_multiplier(a, b, c)
    assert Bounded.peak < LIM
    # the bound is nearly reached, so the check is not vacuous
    assert Bounded.peak > (1 << 30)


def test_softmax_device_intermediates_stay_int32():
    Bounded.peak = 0
    for s in [1 << 19, (1 << 19) + 1, 3 << 20, (1 << 27) - 1, 123456789,
              (1 << 28) - 1] + list(range(524288, 524288 + 4000, 7)):
        scale, e = F.softmax_recip(Bounded(s))
        want_scale, nbou = Q.get_reciprocal(s, 12)
        assert (int(scale), int(e)) == (want_scale, nbou + 23)
    assert Bounded.peak < LIM


# ---------------------------------------------------------------------------
# requant_rows: float32-exact array requantisation
# ---------------------------------------------------------------------------

def _rq_case(rng, rows, shifts, mults):
    acc = rng.integers(-(1 << 24) + 1, 1 << 24, (rows, len(shifts)))
    lim = np.array([(1 << 24) >> max(s, 0) for s in shifts])
    acc = np.where(np.abs(acc) < lim, acc, acc % lim)
    acc[:8] = np.array([0, 1, -1, 4095, -4096, 4096, -4097, 2047])[:, None]
    acc[8] = lim - 1
    acc[9] = -(lim - 1)
    # exact rounding ties of the final shift
    for j, (m, s) in enumerate(zip(mults, shifts)):
        r = max(-s, 0)
        if 1 <= r <= 23 and m:
            for i, k in enumerate(range(-3, 3)):
                t = ((2 * k + 1) << (r + 30)) // m
                if abs(t) < lim[j]:
                    acc[10 + i, j] = t
    return acc


def _rq_check(np_mod, to_arr, to_np, rng, rows, shifts, mults, zp=0,
              clamp=None):
    acc = _rq_case(rng, rows, shifts, mults)
    p = F.requant_arrays(np_mod, [m >> 15 for m in mults],
                         [m & 0x7FFF for m in mults], shifts,
                         **({"dtype": np.float32} if np_mod is np else {}))
    lo, hi = clamp if clamp else (None, None)
    y = F.requant_rows(np_mod, to_arr(acc), p, zp, lo, hi)
    want = Q.multiply_by_quantized_multiplier(
        acc, np.array(mults, np.int64), np.array(shifts, np.int64)) + zp
    if clamp:
        want = np.clip(want, lo, hi)
    got = to_np(y)
    assert got.dtype == np.float32
    assert (got.astype(np.int64) == want).all()
    return acc.size


def test_requant_rows_numpy_float32_exact():
    rng = np.random.default_rng(123)
    n = 0
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    ident = lambda a: a  # noqa: E731
    # every right shift 1..20 with normalised multipliers (many channels)
    for r in range(1, 21):
        shifts = [-r] * 24
        mults = rng.integers(1 << 30, 1 << 31, 24).tolist()
        mults[0], mults[1] = 1 << 30, (1 << 31) - 1
        n += _rq_check(np, f32, ident, rng, 4000, shifts, mults)
    # mixed per-channel shifts, including 0, positive (<= 3) and very large
    # right shifts, and unnormalised / zero multipliers
    for trial in range(20):
        shifts = rng.integers(-31, 4, 32).tolist()
        mults = rng.integers(1 << 30, 1 << 31, 32).tolist()
        mults[:4] = [0, 1, 12345, rng.integers(0, 1 << 31)]
        n += _rq_check(np, f32, ident, rng, 2000, shifts, mults,
                       zp=int(rng.integers(-128, 128)),
                       clamp=(-128, 127) if trial % 2 else None)
    assert n == 20 * 4000 * 24 + 20 * 2000 * 32


class Exact:
    """A numpy-like array pair: every operation is done in float32 and in
    float64 and must agree exactly, i.e. no float32 operation rounded."""

    def __init__(self, f32, f64):
        self.a = np.asarray(f32, np.float32)
        self.b = np.asarray(f64, np.float64)
        assert (self.a.astype(np.float64) == self.b).all(), "float32 rounded"

    @staticmethod
    def _parts(o):
        if isinstance(o, Exact):
            return o.a, o.b
        return np.float32(o), np.float64(o)

    def _op(f):  # noqa: N805
        def g(self, o):
            oa, ob = Exact._parts(o)
            return Exact(f(self.a, oa), f(self.b, ob))
        return g

    def _rop(f):  # noqa: N805
        def g(self, o):
            oa, ob = Exact._parts(o)
            return Exact(f(oa, self.a), f(ob, self.b))
        return g

    __add__ = _op(np.add)
    __radd__ = _rop(np.add)
    __sub__ = _op(np.subtract)
    __rsub__ = _rop(np.subtract)
    __mul__ = _op(np.multiply)
    __rmul__ = _rop(np.multiply)


class ExactNP:
    float = np.float32

    @staticmethod
    def floor(x):
        return Exact(np.floor(x.a), np.floor(x.b))

    @staticmethod
    def clip(x, lo, hi):
        return Exact(np.clip(x.a, lo, hi), np.clip(x.b, lo, hi))

    @staticmethod
    def array(v, dtype=None):
        return Exact(np.array(v, np.float32), np.array(v, np.float64))


def test_requant_rows_no_float32_rounding_anywhere():
    """Instrumented run: each of the ~35 array operations gives the same
    value in float32 as in float64 (where all these values are exact)."""
    rng = np.random.default_rng(7)
    n = 0
    for trial in range(12):
        shifts = rng.integers(-26, 4, 16).tolist()
        shifts[:3] = [-1, -24, -25]
        mults = rng.integers(1 << 30, 1 << 31, 16).tolist()
        n += _rq_check(
            ExactNP, lambda a: Exact(a.astype(np.float32), a.astype(np.float64)),
            lambda e: e.a, rng, 3000, shifts, mults,
            zp=int(rng.integers(-128, 128)), clamp=(-128, 127))
    assert n == 12 * 3000 * 16


def _standin_numpy():
    if not (STANDIN / "ulab" / "numpy.py").exists():
        return None
    old = sys.path[:]
    sys.path.insert(0, str(STANDIN))
    try:
        return importlib.import_module("ulab.numpy")
    except Exception:  # pragma: no cover - stand-in unusable
        return None
    finally:
        sys.path[:] = old


def test_requant_rows_ulab_standin():
    unp = _standin_numpy()
    if unp is None:
        pytest.skip("ulab stand-in not available")
    if hasattr(unp, "_to_numpy"):
        to_np = unp._to_numpy
    else:  # pragma: no cover
        to_np = lambda a: np.array(a.tolist(), np.float32)  # noqa: E731
    rng = np.random.default_rng(31)
    n = 0
    for trial in range(8):
        shifts = rng.integers(-24, 1, 12).tolist()
        mults = rng.integers(1 << 30, 1 << 31, 12).tolist()

        def to_arr(a):
            return unp.array(a.astype(np.float64).tolist(), dtype=unp.float)

        n += _rq_check(unp, to_arr, to_np, rng, 256, shifts, mults,
                       zp=int(rng.integers(-128, 128)), clamp=(-128, 127))
    assert n == 8 * 256 * 12


# ---------------------------------------------------------------------------
# softmax device half
# ---------------------------------------------------------------------------

def test_softmax_device_rows_match_reference():
    rnd = random.Random(8)
    rows = 0
    for trial in range(30):
        scale = Q.f32(rnd.uniform(0.005, 0.3))
        beta = rnd.choice([1.0, 0.5, 2.0, 0.25])
        p = Q.softmax_params(scale, beta)
        e_hi, e_lo = Q.softmax_device_tables(p)
        assert all(0 <= v < (1 << 16) for v in e_hi)
        assert all(0 <= v < (1 << 15) for v in e_lo)
        acc = F.softmax_acc_table(e_hi, e_lo)
        table = Q.softmax_exp_table(p)
        assert acc == [Q.rounding_divide_by_pot(e, 12) for e in table]
        for _ in range(40):
            depth = rnd.choice([1, 2, 3, 4, 10, 21, 64, 200])
            lo = rnd.randint(-128, 127)
            row = [rnd.randint(lo, 127) for _ in range(depth)]
            out = [None] * depth
            assert F.softmax_row(row, out, e_hi, e_lo, acc) == \
                Q.softmax_int8_reference(row, p)
            rows += 1
    assert rows == 1200


# ---------------------------------------------------------------------------
# the real MicroPython unix port
# ---------------------------------------------------------------------------

def micropython_exe():
    exe = os.environ.get("TINYSEG_MICROPYTHON") or shutil.which("micropython")
    if exe is None:
        cand = Path(sys.executable).parent / "micropython"
        exe = str(cand) if cand.exists() else None
    return exe


needs_mp = pytest.mark.skipif(micropython_exe() is None,
                              reason="MicroPython unix port not found")


def _run_mp(tmp_path, script: str, data) -> object:
    (tmp_path / "data.json").write_text(json.dumps(data))
    (tmp_path / "main.py").write_text(script)
    env = dict(os.environ, MICROPYPATH=str(ROOT) + os.pathsep + ".frozen")
    out = subprocess.run([micropython_exe(), "-X", "heapsize=4M",
                          str(tmp_path / "main.py")],
                         cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


_MP_SCRIPT = """
import json
from tinyseg_mp.fixedpoint import mbqm, srdhm, rdbpot, softmax_recip
from tinyseg_mp.fixedpoint import softmax_acc_table, softmax_row
from tinyseg_mp.fixedpoint import requant_channel
with open('data.json') as f:
    d = json.load(f)
res = {}
res['mbqm'] = [mbqm(x, mh, ml, s) for x, mh, ml, s in d['mbqm']]
res['srdhm'] = [srdhm(a, b) for a, b in d['srdhm']]
res['rdbpot'] = [rdbpot(x, e) for x, e in d['rdbpot']]
res['recip'] = [list(softmax_recip(s)) for s in d['recip']]
acc = softmax_acc_table(d['e_hi'], d['e_lo'])
res['softmax'] = [softmax_row(r, [0] * len(r), d['e_hi'], d['e_lo'], acc)
                  for r in d['rows']]
res['chan'] = [list(requant_channel(mh, ml, s)) for mh, ml, s in d['chan']]
print(json.dumps(res))
"""


@needs_mp
def test_micropython_matches_cpython(tmp_path):
    rnd = random.Random(2)
    x, m, s = _random_cases(3000, 11)
    mb = [[a, b >> 15, b & 0x7FFF, c] for a, b, c in
          zip(x.tolist(), m.tolist(), s.tolist())]
    mb += [[a, b >> 15, b & 0x7FFF, c] for a, b, c in
           list(_edge_cases())[::7]]
    sr = [[rnd.randint(-(LIM - 1), LIM - 1), rnd.randint(-(LIM - 1), LIM - 1)]
          for _ in range(2000)]
    rd = [[rnd.randint(-(LIM - 1), LIM - 1), rnd.randint(0, 31)]
          for _ in range(2000)]
    recip = [rnd.randint(1 << 19, (1 << 28) - 1) for _ in range(1000)]
    p = Q.softmax_params(0.0625, 1.0)
    e_hi, e_lo = Q.softmax_device_tables(p)
    rows = [[rnd.randint(-128, 127) for _ in range(rnd.choice([1, 5, 16, 40]))]
            for _ in range(300)]
    chan = [[rnd.randint(1 << 15, (1 << 16) - 1), rnd.randint(0, 0x7FFF),
             rnd.randint(-30, 3)] for _ in range(500)]
    data = dict(mbqm=mb, srdhm=sr, rdbpot=rd, recip=recip, e_hi=e_hi,
                e_lo=e_lo, rows=rows, chan=chan)
    res = _run_mp(tmp_path, _MP_SCRIPT, data)
    assert res["mbqm"] == [Q.multiply_by_quantized_multiplier(
        a, (mh << 15) | ml, c) for a, mh, ml, c in mb]
    assert res["srdhm"] == [Q.srdhm(a, b) for a, b in sr]
    assert res["rdbpot"] == [Q.rounding_divide_by_pot(a, e) for a, e in rd]
    want_recip = []
    for v in recip:
        sc, nbou = Q.get_reciprocal(v, 12)
        want_recip.append([sc, nbou + 23])
    assert res["recip"] == want_recip
    assert res["softmax"] == [Q.softmax_int8_reference(r, p) for r in rows]
    assert res["chan"] == [list(F.requant_channel(*c)) for c in chan]
    assert len(res["mbqm"]) > 3000


def _viper_source() -> str:
    """The body of fixedpoint.mbqm, unchanged, as a viper function."""
    src = textwrap.dedent(inspect.getsource(F.mbqm))
    head, body = src.split("\n", 1)
    assert head.startswith("def mbqm(x, m_hi, m_lo, shift):")
    return ("import micropython\n@micropython.viper\n"
            "def mbqm_v(x: int, m_hi: int, m_lo: int, shift: int) -> int:\n"
            + body)


@needs_mp
def test_mbqm_body_compiles_and_runs_under_viper(tmp_path):
    x, m, s = _random_cases(3000, 12)
    # viper ints are the machine word; keep arguments inside small-int range
    # of every port's boxing so only the arithmetic is exercised
    cases = [[a, b >> 15, b & 0x7FFF, c] for a, b, c in
             zip(x.tolist(), m.tolist(), s.tolist())]
    script = _viper_source() + textwrap.dedent("""
        import json
        with open('data.json') as f:
            d = json.load(f)
        print(json.dumps([mbqm_v(a, b, c, e) for a, b, c, e in d]))
        """)
    res = _run_mp(tmp_path, script, cases)
    assert res == [Q.multiply_by_quantized_multiplier(a, (mh << 15) | ml, c)
                   for a, mh, ml, c in cases]
