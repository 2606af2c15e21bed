"""`tinyseg demo`: compile the bundled model for a board, compare its memory
with TFLite Micro, run the sample images on the host runtime and on the
virtual board (the MicroPython unix port with the board's heap), and write
the inputs, mask overlays and the memory timeline as PNGs.

Also the sample images and camera-style frame files that `tinyseg deploy`
copies to boards and the demo page test feeds to the board demo."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from .boards import Board, load_board

MODELS_DIR = Path(__file__).resolve().parent / "models"
MODEL = MODELS_DIR / "tiny_unet_seg.tflite"
SAMPLES = MODELS_DIR / "samples.npy"
SAMPLE_MASKS = MODELS_DIR / "sample_masks.npy"
# Frame files of the board demo's camera stand-in (boards/common/camera_files.py).
FRAME_EXT = {"RGB565": "rgb565", "GRAYSCALE": "gray", "RGB888": "rgb"}
FRAME_SIZES = {"FRAME_96X96": (96, 96), "FRAME_QQVGA": (160, 120), "FRAME_QCIF": (176, 144),
               "FRAME_HQVGA": (240, 176), "FRAME_240X240": (240, 240), "FRAME_QVGA": (320, 240)}
SCALE = 3  # PNGs are drawn at 3x the model resolution


def sample_images(n: int = 4) -> tuple[np.ndarray, np.ndarray, str]:
    """Up to n of the bundled sample images (N x H x W x 3 uint8), their true masks, and their source."""
    return np.load(SAMPLES)[:n], np.load(SAMPLE_MASKS)[:n], SAMPLES.name


def nearest(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Nearest-neighbour resize (sampling pixel centres, as tinyseg_mp.image.convert)."""
    sh, sw = img.shape[:2]
    ys = ((2 * np.arange(h) + 1) * sh) // (2 * h)
    xs = ((2 * np.arange(w) + 1) * sw) // (2 * w)
    return img[ys][:, xs]


def frame_bytes(rgb: np.ndarray, fmt: str = "RGB565", framesize: str = "FRAME_QQVGA") -> bytes:
    """An H x W x 3 uint8 image as a raw camera frame: resized to the frame
    size, RGB565 high byte first (the ESP32 camera driver's order), 8-bit
    grayscale or RGB888."""
    w, h = FRAME_SIZES[framesize]
    img = nearest(np.asarray(rgb, np.uint8), w, h)
    if fmt == "RGB888":
        return img.tobytes()
    if fmt == "GRAYSCALE":
        gray = (img[..., 0] * 77 + img[..., 1] * 150 + img[..., 2] * 29 + 128) >> 8
        return gray.astype(np.uint8).tobytes()
    if fmt != "RGB565":
        raise ValueError(f"unknown frame format {fmt!r}; use one of {', '.join(FRAME_EXT)}")
    r, g, b = (img[..., k].astype(np.uint16) for k in range(3))
    return (((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3)).astype(">u2").tobytes()


def mask_of(y: np.ndarray, dtype: str) -> np.ndarray:
    """The demo's mask of a model output (H x W x C, last channel): over the
    midpoint of the 8-bit range, as boards/common/demo.py decides it."""
    v = y.reshape(y.shape[-3:])[..., -1].view(np.uint8)
    if dtype == "int8":
        v = v ^ 0x80
    return v > 127


def tint(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The overlay of tinyseg_mp.image.overlay: a cyan tint where the mask is set
    (targets are red-orange, so a red tint would hide them)."""
    out = rgb.astype(np.int32)
    out[mask, 0] >>= 1
    out[mask, 1:] = (out[mask, 1:] + 255) >> 1
    return out.astype(np.uint8)


def _model_input(img: np.ndarray, info: dict) -> np.ndarray:
    shape, dtype = info["input"]["shape"], info["input"]["dtype"]
    x = nearest(img, shape[-2], shape[-3])
    if dtype == "int8":
        x = (x.astype(np.int16) - 128).astype(np.int8)  # what the board demo does for int8 inputs
    return x.reshape(shape)


def _heap(board: Board) -> int:
    return -(-board.heap_bytes // 1024) * 1024


def run_demo(out_dir: Path, board: str = "rp2040", progress: Callable[[str], None] = print,
             model: Path | None = None) -> dict:
    """The main job of `tinyseg demo`; returns what it measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import tflite_import
    from .compile import BudgetError, compile_for_board, compile_model
    from .memplan import plan_memory
    from .optimize import optimize
    from .report import plot_plan
    from .runner import RunError, bundle_info, find_micropython, find_min_heap, run_bundle
    from .tflm_baseline import tflm_plan

    t_start = time.perf_counter()
    prof = load_board(board)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = Path(model or MODEL)
    result: dict = {"model": str(model), "board": prof.name, "budget_bytes": prof.budget, "out_dir": str(out_dir)}

    # 1. compile for the board
    bundle = out_dir / "model.tsb"
    progress(f"[1/5] compiling {model.name} for {prof.name} (arena budget {prof.budget:,d} bytes) ...")
    try:
        compiled = compile_for_board(model, bundle, prof)
        fits = True
    except BudgetError:
        best = optimize(tflite_import.load(model), prof.budget).plan.peak  # the smallest peak spilling reaches
        progress(f"  {model.name} does not fit {prof.name}: the smallest arena reachable is {best:,d} bytes, "
                 f"over the budget of {prof.budget:,d}; compiling for that arena instead")
        compiled = compile_model(model, bundle, best)
        fits = False
    info = bundle_info(bundle)
    spilled = ([r.name for r in compiled.chosen.streamed.spills] if compiled.chosen.streamed else
               [compiled.optimized.graph.tensors[s.tensor].name for s in compiled.optimized.spills])
    recomputed = ([compiled.chosen.graph.tensors[t].name for t in compiled.chosen.streamed.recomputed]
                  if compiled.chosen.streamed else [])
    result.update(bundle=str(bundle), bundle_bytes=compiled.bundle_bytes, fits_budget=fits, spills=spilled,
                  recomputed=recomputed)

    # 2. memory table
    progress("[2/5] planning memory: TFLite Micro vs tinyseg ...")
    tflm = tflm_plan(tflite_import.load_raw(model)).arena_head
    unopt = plan_memory(tflite_import.load(model)).peak
    peak = compiled.plan.peak
    result.update(tflm_arena_bytes=tflm, unoptimized_peak_bytes=unopt, peak_bytes=peak)
    progress(f"  activation memory of {model.name} on {prof.name}:")
    progress(f"    TFLite Micro arena (head)      {tflm:9,d} bytes")
    progress(f"    tinyseg plan, no optimisations {unopt:9,d} bytes  ({100.0 * (unopt - tflm) / tflm:+.1f}%)")
    progress(f"    tinyseg plan, optimised        {peak:9,d} bytes  ({100.0 * (peak - tflm) / tflm:+.1f}%)"
             + (f", {len(spilled)} tensor(s) spilled to flash" if spilled else "")
             + (f", {len(recomputed)} skip tensor(s) computed again for their late readers rather than"
                " spilled (the board's flash writes cost more)" if recomputed else ""))
    progress(f"    {prof.name + ' budget':30s} {prof.budget:9,d} bytes  "
             f"({'fits' if fits else 'does NOT fit'}; bundle {compiled.bundle_bytes:,d} bytes)")
    progress("    (head: the tensor arena TFLite Micro's RecordingMicroAllocator reports for the same model;"
             " its tail, persistent structures, comes on top)")

    # 3. host runtime
    images, truth, source = sample_images()
    progress(f"[3/5] running {len(images)} sample images ({source}) on the host runtime ...")
    progress("  the model segments the red-orange target shapes from a cluttered background; pixel accuracy "
             "compares its mask with the sample's true mask (sample_masks.npy)")
    samples = []
    outputs = []
    for i, img in enumerate(images):
        x = _model_input(img, info)
        y, stats = run_bundle(bundle, x, "cpython", None)
        outputs.append(y)
        mask = mask_of(y, info["output"]["dtype"])
        s = {"index": i, "host_ms": round(stats["latency_ms"], 1), "host_backend": stats["backend"],
             "mask_fraction": round(float(mask.mean()), 4)}
        if truth is not None:
            t = nearest(truth[i], mask.shape[1], mask.shape[0]).astype(bool)
            s["pixel_accuracy"] = round(float((mask == t).mean()), 4)
        samples.append(s)
        progress(f"  sample {i}: {s['host_ms']:.0f} ms ({stats['backend']}), {100 * s['mask_fraction']:.1f}% of pixels "
                 "in the mask" + (f", pixel accuracy {100 * s['pixel_accuracy']:.1f}%" if "pixel_accuracy" in s else ""))
    result["samples"] = samples
    result["sample_source"] = source

    # 4. virtual board
    heap = _heap(prof)
    try:
        find_micropython()
        have_unix = True
    except RunError as exc:
        have_unix = False
        progress(f"[4/5] skipping the virtual board: {exc}")
    result["virtual_board"] = None
    if have_unix:
        lfs_blocks = prof.fs_bytes // prof.flash_block_bytes if compiled.spill_count else 0
        progress(f"[4/5] running on the virtual board: MicroPython unix port, viper kernels, "
                 f"{heap // 1024} KB heap{', spill file on a littlefs RAM disk' if lfs_blocks else ''} ...")
        x0 = _model_input(images[0], info)
        try:
            run_bundle(bundle, x0, "micropython", "viper", heap=heap, lfs_blocks=lfs_blocks)
        except RunError as exc:
            if "MemoryError" not in str(exc):
                raise
            needed = find_min_heap(bundle, x0, "viper", lfs_blocks=lfs_blocks)
            progress(f"  {heap // 1024} KB is not enough here: the unix port is 64-bit (every object costs more "
                     f"than on the board); it needs {needed // 1024} KB (measured), so the runs below use that")
            heap = needed
        vb = {"board_heap_bytes": _heap(prof), "heap_bytes": heap, "runs": []}
        for i, img in enumerate(images):
            y, stats = run_bundle(bundle, _model_input(img, info), "micropython", "viper", heap=heap,
                                  lfs_blocks=lfs_blocks)
            same = bool(np.array_equal(y, outputs[i]))
            vb["runs"].append({"index": i, "ms": round(stats["latency_ms"], 1), "equal_to_host": same,
                               "flash_write_bytes": stats["flash_write_bytes"]})
            progress(f"  sample {i}: {stats['latency_ms']:.0f} ms, {stats['flash_write_bytes']:,d} bytes spilled "
                     f"to flash, output {'equal to' if same else 'DIFFERENT from'} the host's")
        result["virtual_board"] = vb
        if lfs_blocks:
            progress("  (bytes spilled differ per sample: spilled rows are compressed, and how far depends on the image)")
    result["virtual_pico"] = _on_the_pico(prof, bundle, _model_input(images[0], info), outputs[0], progress)

    # 5. pictures
    progress("[5/5] writing pictures ...")
    files = []
    for i, img in enumerate(images):
        shape = info["input"]["shape"]
        rgb = nearest(img, shape[-2], shape[-3])
        mask = mask_of(outputs[i], info["output"]["dtype"])
        mask = mask[(np.arange(rgb.shape[0]) * mask.shape[0]) // rgb.shape[0]][:, (np.arange(rgb.shape[1]) * mask.shape[1]) // rgb.shape[1]]
        big = lambda a: np.repeat(np.repeat(a, SCALE, 0), SCALE, 1)  # noqa: E731
        plt.imsave(out_dir / f"sample{i}_input.png", big(rgb))
        files.append(out_dir / f"sample{i}_input.png")
        # The overlay says what it shows.
        h, w = rgb.shape[:2]
        fig = plt.figure(figsize=(w * SCALE / 100, h * SCALE / 100 + 0.4), dpi=100)
        ax = fig.add_axes((0, 0, 1, h * SCALE / (h * SCALE + 40)))
        ax.imshow(big(tint(rgb, mask)), interpolation="nearest")
        ax.axis("off")
        fig.suptitle(f"sample {i}: cyan = the model's mask of the\nred-orange targets, "
                     f"{100 * samples[i]['mask_fraction']:.1f}% of the pixels", fontsize=7, y=0.995)
        fig.savefig(out_dir / f"sample{i}_overlay.png")
        plt.close(fig)
        files.append(out_dir / f"sample{i}_overlay.png")
    timeline = out_dir / "memory_timeline.png"
    # A band-streamed plan gets its own chart (its buffers live over band calls, not op steps).
    plot_plan(compiled.chosen, timeline, title=f"{model.name} on {prof.name}", baseline_bytes=tflm)
    files.append(timeline)
    result["files"] = [str(f) for f in files]
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    progress(f"wrote {len(files)} pictures to {out_dir}/:")
    for f in files:
        progress(f"  {f}")
    _summary(progress, result, prof, compiled, bundle)
    progress(f"done in {result['seconds']:.1f} s")
    return result


def _on_the_pico(prof: Board, bundle: Path, x: np.ndarray, host_y: np.ndarray, progress) -> dict | None:
    """For an RP2040 board: sample 0 on the virtual Pico (real firmware,
    host_tools/pico.py), as deployed; None where the emulator is missing."""
    from . import pico

    if prof.mpy_arch != pico.MPY_ARCH:
        return None
    why = pico.missing()
    if why:
        progress(f"  (no run on the virtual Pico: {why})")
        return None
    progress("  sample 0 on the virtual Pico: real RP2040 MicroPython firmware, runtime as deployed ...")
    y, s = pico.run_pico(bundle, x)
    vp = {"seconds": s["seconds"], "backend": s["backend"], "free_at_boot": s["free_at_boot"],
          "free_after_load": s["free_after_load"], "flash_erases": s["flash_erases"],
          "equal_to_host": bool(np.array_equal(y, host_y))}
    progress(f"  {vp['seconds']:.2f} s per frame at 125 MHz ({vp['backend']} kernels), {vp['free_after_load']:,d} "
             f"bytes of heap free after load, output {'equal to' if vp['equal_to_host'] else 'DIFFERENT from'} "
             "the host's")
    return vp


def _summary(progress, result: dict, prof: Board, compiled, bundle: Path) -> None:
    """One table: will this run on the board, and how fast, from the figures measured above."""
    from .compile import runtime_buffers

    def span(values, fmt):
        lo, hi = min(values), max(values)
        return fmt(lo) if lo == hi else f"{fmt(lo)}..{fmt(hi)}"

    largest = max(runtime_buffers(compiled.chosen, compiled.steps).values())
    rows = [("arena planned / budget", f"{result['peak_bytes']:,d} / {prof.budget:,d} bytes: "
                                         + ("fits" if result["fits_budget"] else "does NOT fit")),
            ("largest buffer / max alloc", f"{largest:,d} / {prof.max_alloc_bytes:,d} bytes: "
                                             + ("fits" if largest <= prof.max_alloc_bytes else "does NOT fit")),
            ("bundle on the board's flash", f"{result['bundle_bytes']:,d} bytes"),
            ("host runtime, per frame", span([s["host_ms"] for s in result["samples"]], lambda v: f"{v:,.0f}")
             + f" ms ({result['samples'][0]['host_backend']}, this machine)")]
    vb = result.get("virtual_board")
    if vb:
        rows.append(("unix port (viper), per frame", span([r["ms"] for r in vb["runs"]], lambda v: f"{v:,.0f}")
                     + " ms (this machine; a board is slower)"))
        rows.append(("unix-port heap it ran in", f"{vb['heap_bytes']:,d} bytes (64-bit: a board needs less)"))
        if result["spills"]:
            rows.append(("flash written per frame", span([r["flash_write_bytes"] for r in vb["runs"]],
                                                          lambda v: f"{v:,d}") + " bytes (compressed rows)"))
    vp = result.get("virtual_pico")
    if vp:
        rows.append(("virtual Pico, per frame", f"{vp['seconds']:.2f} s at 125 MHz ({vp['backend']} kernels, real "
                                                "RP2040 firmware)"))
        rows.append(("free heap on the chip", f"{vp['free_after_load']:,d} of {vp['free_at_boot']:,d} bytes after load"))
    progress(f"will it run on {prof.name}? (measured above)")
    for k, v in rows:
        progress(f"  {k:30s} {v}")
    progress(f"the bundle is {bundle}; to put it on a board: tinyseg deploy {bundle} --board {prof.name} "
             "(--dry-run prints the mpremote commands)")
