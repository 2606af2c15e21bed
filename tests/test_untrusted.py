"""Untrusted bundles (issue 14): property tests that mutate bundles, with the
CRCs recomputed (so the change reaches the validators) and without, on
CPython (numpy kernels and the viper kernels as plain Python, whose pointer
stand-ins raise on any index outside a buffer) and in the MicroPython unix
port (real viper: an unchecked index there is an out-of-bounds access), and
one test per fault of the issue. Every outcome must be the project's own
error or a completed run; without recomputed CRCs, the unmutated output.
The long run is benchmarks/fuzz_bundles.py."""
from __future__ import annotations

import os
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bundle_mutations as bm
import tinyseg_mp
from conftest import micropython_exe
from fuzz_bases import build
from tinyseg_mp import bundle, ops

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    return build(tmp_path_factory.mktemp("bases"))


def mutations():
    value = st.one_of(st.sampled_from(bm.INTERESTING), st.integers(-(2**31), 2**31 - 1))
    return st.one_of(
        st.tuples(st.just("field"), st.integers(0, 10**6), st.just("set"), value),
        st.tuples(st.just("field"), st.integers(0, 10**6), st.just("add"), st.integers(-4, 4)),
        st.tuples(st.just("field"), st.integers(0, 10**6), st.just("xor"), st.sampled_from([1 << k for k in range(32)])),
        st.tuples(st.just("byte"), st.integers(0, 10**6), st.integers(1, 255)),
        st.tuples(st.just("cut"), st.integers(0, 10**6)),
        st.tuples(st.just("dup"), st.integers(0, 7)),
    )


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def check_case(base, mutation, fix_crc, backend, tmp_path, budget_s=10):
    data = bm.apply(base["data"], mutation, fix_crc)
    path = tmp_path / "case.tsb"
    path.write_bytes(data)
    spill_path = str(tmp_path / "case.spill")
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(budget_s)
    try:
        outcome, detail = bm.classify(str(path), base["inp"], base["ref"], backend, spill_path)
    except Hang:
        outcome, detail = "hang", ""
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    what = f"{base['name']} {mutation} fix_crc={fix_crc} {backend}: {outcome} {detail}"
    assert outcome in ("same", "diff", "rejected"), what
    if not fix_crc:
        assert outcome in ("same", "rejected"), what
    assert path.read_bytes() == data, "the bundle file was modified"
    assert not list(tmp_path.glob("case.spill*")), "spill files left behind: " + what
    return outcome


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_bundles_numpy(bases, tmp_path, data):
    base = bases[data.draw(st.integers(0, len(bases) - 1), label="base")]
    check_case(base, data.draw(mutations(), label="mutation"), data.draw(st.booleans(), label="fix_crc"), "numpy",
               tmp_path)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_bundles_viper_standin(bases, tmp_path, data):
    base = bases[data.draw(st.integers(0, len(bases) - 1), label="base")]
    # The plain-Python viper kernels index memoryviews: out of bounds is an IndexError, a foreign outcome.
    check_case(base, data.draw(mutations(), label="mutation"), True, "viper", tmp_path)


def run_mp_batch(cases, work: Path, backend="viper", heap="32M", timeout=120):
    """Run (bundle bytes, base) cases in one unix-port process; returns the outcome per case."""
    exe = micropython_exe()
    lines = []
    for i, (data, base) in enumerate(cases):
        p = work / f"mp{i}.tsb"
        p.write_bytes(data)
        lines.append(f"{p} {base['in_path']} {base['ref_path']}")
    listing = work / "cases.txt"
    listing.write_text("\n".join(lines) + "\n")
    env = dict(os.environ, MICROPYPATH=f"{REPO}:.frozen")
    res = subprocess.run([exe, "-X", f"heapsize={heap}", str(REPO / "tests" / "mp_fuzz_runner.py"), str(listing),
                          backend], capture_output=True, text=True, timeout=timeout, env=env, cwd=work)
    done = {}
    started = None
    for line in res.stdout.splitlines():
        if line.startswith("C "):
            started = int(line.split()[1])
        elif line.startswith("R "):
            _, i, outcome, *detail = line.split(" ", 3) + [""]
            done[int(i)] = (outcome, detail[0] if detail else "")
    if len(done) < len(cases):
        crashed = started if started is not None and started not in done else len(done)
        raise AssertionError(f"unix port stopped at case {crashed} (exit {res.returncode}): {cases[crashed][1]['name']}"
                             f"\n{res.stderr[-2000:]}")
    return done


@pytest.mark.skipif(micropython_exe() is None, reason="MicroPython unix port not installed")
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_bundles_unix_port_viper(bases, tmp_path, data):
    """A batch of mutated bundles, CRCs recomputed or not, in one unix-port process (real viper)."""
    specs = data.draw(st.lists(st.tuples(st.integers(0, len(bases) - 1), mutations(), st.booleans()),
                               min_size=300, max_size=300), label="cases")
    cases = [(bm.apply(bases[b]["data"], mu, fix), bases[b]) for b, mu, fix in specs]
    done = run_mp_batch(cases, tmp_path)
    for i, (b, mu, fix) in enumerate(specs):
        outcome, detail = done[i]
        what = f"{bases[b]['name']} {mu} fix_crc={fix}: {outcome} {detail}"
        assert outcome in ("same", "diff", "rejected"), what
        if not fix:
            assert outcome in ("same", "rejected"), what
    assert not list(tmp_path.glob("*.spill.*")), "spill files left behind"


# ---- one test per fault of the issue -------------------------------------------------------------------------


def _steps(data):
    """(record offset, opcode, count) of every step."""
    kind_off = {k: (o, n) for k, o, n, _ in bm.sections(data)}
    off, length = kind_off[b"STEP"]
    out = []
    pos = 0
    while pos < length:
        opcode, count = struct.unpack_from("<HH", data, off + pos)
        out.append((off + pos, opcode, count))
        pos += bm.STEP + 4 * count
    return out


def _load(tmp_path, data, name="x.tsb"):
    p = tmp_path / name
    p.write_bytes(data)
    return tinyseg_mp.load(str(p), "numpy", str(p) + ".spill")


def test_unknown_op_code_is_named(bases, tmp_path):
    data = bytearray(bases[0]["data"])
    rec = _steps(data)[1][0]
    struct.pack_into("<H", data, rec, len(ops.NAMES))
    with pytest.raises(bundle.BundleError, match=rf"byte {rec}: step 1: unknown op code {len(ops.NAMES)}: bundle is "
                                                 "newer than this runtime"):
        _load(tmp_path, bm.fix_crcs(bytes(data)))


def test_param_count_and_field_are_named(bases, tmp_path):
    data = bytearray(bases[0]["data"])
    rec, opcode, count = _steps(data)[0]
    assert ops.NAMES[opcode] == "conv2d"
    struct.pack_into("<i", data, rec + bm.STEP + 4 * 0, 10**6)  # in_off far outside the arena
    with pytest.raises(bundle.BundleError, match=rf"byte {rec}: step 0 \(conv2d\): in_off=1000000 with \d+ bytes is "
                                                 r"outside the arena"):
        _load(tmp_path, bm.fix_crcs(bytes(data)))
    data = bytearray(bases[0]["data"])
    struct.pack_into("<H", data, rec + 2, count - 1)
    with pytest.raises(bundle.BundleError, match=rf"step 0 \(conv2d\): {count - 1} params; the op takes {count}"):
        _load(tmp_path, bm.fix_crcs(bytes(data)))


def test_add_element_count_raised_is_refused(bases, tmp_path):
    # The unix-port segfault of the issue: an ADD step whose element count was raised to 65,536.
    data = bytearray(bases[0]["data"])
    rec = next(r for r, op, _ in _steps(data) if ops.NAMES[op] == "add")
    n2 = rec + bm.STEP + 4 * 8
    struct.pack_into("<i", data, n2, 65536)
    with pytest.raises(bundle.BundleError, match=r"step \d+ \(add\): a_off=\d+ with \d+ bytes is outside the arena"):
        _load(tmp_path, bm.fix_crcs(bytes(data)))


def test_crc_message_for_a_non_utf8_section_kind(bases, tmp_path):
    data = bytearray(bases[0]["data"])
    _, off, _, pos = bm.sections(data)[0]
    data[pos : pos + 4] = b"\xff\xfeME"
    with pytest.raises(bundle.BundleError, match=r"unknown section kind '\?\?ME'"):
        _load(tmp_path, bm.fix_crcs(bytes(data)))
    data = bytearray(bases[0]["data"])
    data[off] ^= 1  # a damaged META, CRC not recomputed
    with pytest.raises(bundle.BundleError, match="section META CRC mismatch"):
        _load(tmp_path, bytes(data))


def test_duplicate_sections_are_refused(bases, tmp_path):
    with pytest.raises(bundle.BundleError, match="section META appears twice"):
        _load(tmp_path, bm.apply(bases[0]["data"], ("dup", 0), True))


def test_short_meta_and_huge_values(bases, tmp_path):
    data = bases[0]["data"]
    i = next(i for i, f in enumerate(bm.fields(data)) if f[2] == "META length")
    with pytest.raises(bundle.BundleError, match=r"META has 56 bytes, not 60"):
        _load(tmp_path, bm.apply(data, ("field", i, "add", -4), True))
    meta_off = bm.sections(data)[0][1]
    fl = [i for i, f in enumerate(bm.fields(data)) if f[0] == meta_off]
    with pytest.raises(bundle.BundleError, match=r"META arena_bytes=2147483647 is outside 1\.\.16777216"):
        _load(tmp_path, bm.apply(data, ("field", fl[0], "set", 2**31 - 1), True))


def test_short_spil_section(bases, tmp_path):
    data = bases[2]["data"]  # spills
    k = [s[0] for s in bm.sections(data)].index(b"SPIL")
    i = next(i for i, f in enumerate(bm.fields(data)) if f[2] == "SPIL length")
    with pytest.raises(bundle.BundleError, match=r"SPIL has 4 bytes"):
        _load(tmp_path, bm.apply(data, ("field", i, "set", 4), True))
    assert k >= 0


def _compressed_step(data):
    secs = {k: (o, n) for k, o, n, _ in bm.sections(data)}
    for rec, opcode, count in _steps(data):
        off, stored, raw = struct.unpack_from("<III", data, rec + 4)
        if raw and stored < raw:
            return secs[b"BLOB"][0] + off, stored, raw
    raise AssertionError("no compressed blob")


def test_damaged_compressed_blob_is_caught(bases, tmp_path):
    base = bases[6]  # softmax: one compressed blob
    at, stored, raw = _compressed_step(base["data"])
    data = bytearray(base["data"])
    data[at + stored - 1] ^= 0x5A  # the Adler-32 (the deflate data still inflates)
    m = _load(tmp_path, bm.fix_crcs(bytes(data)))
    with pytest.raises(bundle.BundleError, match="compressed weights"):
        m.run(base["inp"])
    m.close()


@pytest.mark.skipif(micropython_exe() is None, reason="MicroPython unix port not installed")
def test_damaged_compressed_blob_is_caught_on_micropython(bases, tmp_path):
    # MicroPython's DeflateIO never checks the checksum: the runtime does.
    base = bases[6]
    at, stored, raw = _compressed_step(base["data"])
    cases = []
    for k in (1, 2, 3, 4):  # each byte of the Adler-32
        data = bytearray(base["data"])
        data[at + stored - k] ^= 0x01
        cases.append((bm.fix_crcs(bytes(data)), base))
    cases.append((base["data"], base))
    done = run_mp_batch(cases, tmp_path)
    assert [done[i][0] for i in range(5)] == ["rejected"] * 4 + ["same"]
    assert all("Adler-32" in done[i][1] for i in range(4)), done


def test_zero_length_inflate_and_truncated_stream(bases, tmp_path):
    base = bases[6]
    at, stored, raw = _compressed_step(base["data"])
    data = bytearray(base["data"])
    data[at + 2 : at + stored] = bytes(stored - 2)  # the deflate stream zeroed: not a valid stream
    m = _load(tmp_path, bm.fix_crcs(bytes(data)))
    with pytest.raises(bundle.BundleError, match="compressed weights"):
        m.run(base["inp"])
    m.close()


def test_run_checks_its_input(bases, tmp_path):
    base = bases[0]
    m = _load(tmp_path, base["data"])
    n = m.meta["in_bytes"]
    with pytest.raises(TypeError, match="input must be bytes-like .* not str"):
        m.run("x" * n)
    with pytest.raises(ValueError, match=f"input has {n - 1} bytes; the model takes {n} bytes"):
        m.run(bytes(n - 1))
    with pytest.raises(TypeError, match="keeps its input in the arena: pass bytes, not a file"):
        m.run(open(base["in_path"], "rb"))
    assert bytes(m.run(bytearray(base["inp"]))) == base["ref"]
    assert bytes(m.run(memoryview(base["inp"]))) == base["ref"]
    m.close()
    streamed = _load(tmp_path, bases[1]["data"], "s.tsb")
    assert streamed.meta["in_off"] < 0
    short = tmp_path / "short.bin"
    short.write_bytes(bases[1]["inp"][:-1])
    with open(short, "rb") as f, pytest.raises(ValueError, match="the input file has %d bytes" % (n - 1)):
        streamed.run(f)
    with pytest.raises(TypeError, match="not str"):
        streamed.run("x" * n)
    with open(bases[1]["in_path"], "rb") as f:
        assert bytes(streamed.run(f)) == bases[1]["ref"]
    streamed.close()


def test_reentry_is_refused(bases, tmp_path):
    m = _load(tmp_path, bases[0]["data"])
    inner = []
    first = next(i for i, r in enumerate(m._runs) if r is not None)
    real = m._runs[first]

    def reenter(model, p, blob):
        try:
            model.run(bases[0]["inp"])
        except RuntimeError as exc:
            inner.append(str(exc))
        real(model, p, blob)

    m._runs[first] = reenter
    assert bytes(m.run(bases[0]["inp"])) == bases[0]["ref"]  # the outer run goes on
    assert len(inner) >= 1 and "run() is already running on this model" in inner[0]
    m._runs[first] = real
    assert bytes(m.run(bases[0]["inp"])) == bases[0]["ref"]  # and the model is usable after
    m.close()
    with pytest.raises(ValueError, match="the model is closed"):
        m.run(bases[0]["inp"])
    m.close()  # twice is fine


def test_two_spilling_models_keep_their_own_files(bases, tmp_path):
    base = bases[4]  # mini U-Net, one spilled skip
    a = _load(tmp_path, base["data"], "a.tsb")
    b = _load(tmp_path, base["data"], "b.tsb")
    assert a.slots and sorted(p.name for p in tmp_path.glob("*.spill.*")) == ["a.tsb.spill.0", "b.tsb.spill.0"]
    assert bytes(a.run(base["inp"])) == base["ref"]
    assert bytes(b.run(base["inp"])) == base["ref"]
    assert bytes(a.run(base["inp"])) == base["ref"]
    with pytest.raises(OSError, match=r"spill files .*a\.tsb\.spill\.\* are in use by another loaded model"):
        tinyseg_mp.load(str(tmp_path / "a.tsb"), "numpy", str(tmp_path / "a.tsb.spill"))
    a.close()
    assert [p.name for p in tmp_path.glob("*.spill.*")] == ["b.tsb.spill.0"]
    assert bytes(b.run(base["inp"])) == base["ref"]
    b.close()
    assert not list(tmp_path.glob("*.spill.*"))


def test_fields_cover_every_step_param(bases):
    # The mutation generator reaches every integer of every step record.
    for base in bases:
        names = [f[2] for f in bm.fields(base["data"])]
        steps = _steps(base["data"])
        assert sum(n.endswith(" opcode") for n in names) == len(steps)
        assert sum(" p" in n for n in names) == sum(c for _, _, c in steps)


def test_every_op_module_has_a_check():
    import importlib

    for name in ops.NAMES:
        mod = importlib.import_module(f"tinyseg_mp.ops.op_{name}")
        assert callable(getattr(mod, "check", None)), name


def test_adler32_matches_zlib():
    from tinyseg_mp import adler

    for n in (0, 1, 3799, 3800, 3801, 20000):
        data = bytes((i * 7919 + 13) & 0xFF for i in range(n)) if n != 20000 else b"\xff" * n
        assert adler.adler32(data, n) == zlib.adler32(data)


def _param_step(bases, opname):
    """(bundle bytes, record offset) of the first step of op `opname` in any base."""
    code = ops.NAMES.index(opname)
    for base in bases:
        for rec, opcode, _ in _steps(base["data"]):
            if opcode == code:
                return bytearray(base["data"]), rec
    pytest.skip(f"no base bundle has a {opname} step")


def test_found_by_the_long_fuzz_run_add_broadcast_in_both_operands(bases, tmp_path):
    """benchmarks/fuzz_bundles.py (10,000 cases) found ADD steps whose array
    path then failed with numpy's ValueError: an output dimension that both
    operands broadcast (strides 0) when the array path is allowed."""
    data, rec = _param_step(bases, "add")
    at = rec + bm.STEP
    struct.pack_into("<i", data, at + 4 * 22, 1)  # arr_ok
    struct.pack_into("<i", data, at + 4 * 7, 3)  # n1 = 3 ...
    struct.pack_into("<i", data, at + 4 * 10, 0)  # ... broadcast in a
    struct.pack_into("<i", data, at + 4 * 13, 0)  # ... and in b
    with pytest.raises(bundle.BundleError, match=r"is broadcast in both operands"):
        _load(tmp_path, bm.fix_crcs(bytes(data)))


def test_found_by_the_long_fuzz_run_softmax_of_no_values(bases, tmp_path):
    data, rec = _param_step(bases, "softmax")
    struct.pack_into("<i", data, rec + bm.STEP + 4 * 3, 0)  # depth 0
    with pytest.raises(bundle.BundleError, match=r"depth=0 is below 1"):
        _load(tmp_path, bm.fix_crcs(bytes(data)))
