# Runs a bundle once on MicroPython (the unix port is the virtual board) or on
# CPython, for `tinyseg run`:
#   argv = BUNDLE INPUT.bin OUTPUT.bin BACKEND|auto [LFS_BLOCKS]
# With LFS_BLOCKS > 0 (MicroPython only) a littlefs v2 filesystem of that many
# 4096-byte blocks is made on a block device backed by the host file
# OUTPUT.bin.lfs (outside the MicroPython heap, so the board's heap figure
# stays honest; the image can be read back with littlefs-python), mounted at
# /lfs, and holds the spill file; the device's reads, writes and erases are
# reported.
# Prints one line "STATS {...}" with the measured figures.
import sys
import time

import tinyseg_mp

BLOCK = 4096


class FileBlockDev:
    # The block device protocol of vfs.VfsLfs2 (readblocks/writeblocks/ioctl).
    def __init__(self, path, blocks):
        self.f = open(path, "r+b")  # made (erased, all 0xff) by the host, so no garbage here
        self.blocks = blocks
        self.read_bytes = self.write_bytes = self.erases = 0

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * BLOCK + off)
        self.f.readinto(buf)
        self.read_bytes += len(buf)

    def writeblocks(self, n, buf, off=None):
        if off is None:  # a whole-block write erases first
            off = 0
            self.erases += 1
        self.f.seek(n * BLOCK + off)
        self.f.write(buf)
        self.write_bytes += len(buf)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.blocks
        if op == 5:  # block size
            return BLOCK
        if op == 6:  # erase
            self.erases += 1
            return 0
        return 0


def _now_us():
    return time.ticks_us() if hasattr(time, "ticks_us") else time.perf_counter_ns() // 1000


def main(bundle_path, in_path, out_path, backend, lfs_blocks="0"):
    spill_path = None
    bdev = None
    if int(lfs_blocks):
        import vfs

        bdev = FileBlockDev(out_path + ".lfs", int(lfs_blocks))
        vfs.VfsLfs2.mkfs(bdev)
        vfs.mount(vfs.VfsLfs2(bdev), "/lfs")
        spill_path = "/lfs/tinyseg.spill"
    model = tinyseg_mp.load(bundle_path, None if backend == "auto" else backend, spill_path)
    try:
        _run(model, in_path, out_path, bdev)
    finally:
        model.close()  # also when the run fails: removes the spill files
        if bdev:
            bdev.f.close()
    if sys.implementation.name == "micropython":
        import micropython

        micropython.mem_info()  # its "peak=" is the heap high-water mark of the whole run


def _run(model, in_path, out_path, bdev):
    streamed = model.meta["in_off"] < 0
    f = open(in_path, "rb")
    if not streamed:
        f.readinto(model.input_view())  # straight into the arena: no copy of the input on the heap
        f.close()
    if bdev:
        bdev.read_bytes = bdev.write_bytes = bdev.erases = 0  # count one inference, not the file's creation
    t0 = _now_us()
    # A band-streamed plan reads its input band by band, here from the file
    # (as from an image in flash): the whole input is never in the heap.
    out = model.run(f if streamed else None)
    latency_us = _now_us() - t0
    if streamed:
        f.close()
    with open(out_path, "wb") as f:
        f.write(out)
    extra = ""
    if bdev:
        extra = ", \"lfs_read_bytes\": %d, \"lfs_write_bytes\": %d, \"lfs_erases\": %d" % (
            bdev.read_bytes, bdev.write_bytes, bdev.erases)
    print("STATS {\"latency_ms\": %.3f, \"backend\": \"%s\", \"flash_read_bytes\": %d, \"flash_write_bytes\": %d, "
          "\"spill_file_bytes\": %d%s}" % (latency_us / 1000, model.backend, model.flash_read_bytes,
                                          model.flash_write_bytes, model.spill_file_bytes, extra))


if __name__ == "__main__":
    main(*sys.argv[1:6])
