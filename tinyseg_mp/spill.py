# The spill store: scratch files on the board's filesystem (littlefs), one
# per spilled tensor, that hold it between the steps that spill it and the
# steps that fetch it. Rows are written compressed, one after another, and
# an index of row offsets is kept in RAM, so a single row can be read back
# alone; a row that does not shrink is stored raw. Each file is created at
# its worst-case size at load (a full filesystem fails there, naming the
# bytes needed); every inference truncates and rewrites it front to back, so
# littlefs only appends (one erase per block written), however the spilling
# and fetching of different tensors interleave. close() removes the files.
from array import array

from tinyseg_mp import compress

_files = []  # per slot: its open file
_path = None
_fs = None  # an object with open() and remove() (littlefs-python in tests); None: the board's VFS
_index = []  # per slot: array of row offsets inside its file (rows + 1)


def _name(slot):
    return "%s.%d" % (_path, slot)


def _open(slot, mode):
    return _fs.open(_name(slot), mode) if _fs else open(_name(slot), mode)


def open_store(path, slots, fs=None):
    """slots: list of (rows, row_bytes). Creates the files at their full size."""
    global _path, _fs
    close()
    _fs = fs
    _path = path
    total = 0
    zeros = bytes(512)
    for slot, (rows, row_bytes) in enumerate(slots):
        _index.append(array("i", [0] * (rows + 1)))
        _files.append(None)
        size = rows * compress.bound(row_bytes)
        total += size
        try:
            f = _open(slot, "wb")
            try:
                left = size
                while left > 0:
                    n = f.write(zeros[: min(left, 512)])
                    if not n:
                        raise OSError(28)
                    left -= n
            finally:
                f.close()
        except Exception as exc:  # OSError(ENOSPC) on the board; littlefs-python has its own error type
            need = sum(r * compress.bound(b) for r, b in slots)
            close()
            raise OSError("filesystem full: the spill files %s.* need %d bytes (%s); free space or compile "
                          "with a larger --budget" % (path, need, exc))
    return total


def write_rows(slot, src, row_bytes, r0, rows, tmp):
    """Compress and write rows r0..r0+rows-1 (src, a memoryview, holds them in
    order) after the slot's rows before r0; returns bytes written. Row 0
    starts the slot's file afresh."""
    idx = _index[slot]
    if r0 == 0:
        if _files[slot]:
            _files[slot].close()
        _files[slot] = _open(slot, "w+b")
    f = _files[slot]
    pos = idx[r0]
    f.seek(pos)  # a fetch of earlier rows may have moved the file position
    for r in range(rows):
        row = src[r * row_bytes : (r + 1) * row_bytes]
        n = compress.encode(row, row_bytes, tmp)
        if n < row_bytes:
            f.write(tmp[:n])
        else:  # incompressible: stored as is (a block as long as the row is raw)
            f.write(row)
            n = row_bytes
        pos += n
        idx[r0 + r + 1] = pos
    return pos - idx[r0]


def read_row(slot, r, row_bytes, tmp, dst):
    """Read and decompress row r of a slot into dst; returns bytes read."""
    idx = _index[slot]
    start = idx[r]
    n = idx[r + 1] - start
    f = _files[slot]
    f.seek(start)
    if n == row_bytes:
        f.readinto(dst)
    else:
        f.readinto(memoryview(tmp)[:n])  # a view: slicing a bytearray would read into a copy
        compress.decode(tmp, row_bytes, dst)
    return n


def close():
    global _path
    for f in _files:
        if f:
            f.close()
    if _path:
        for slot in range(len(_index)):
            try:
                if _fs:
                    _fs.remove(_name(slot))
                else:
                    import os

                    os.remove(_name(slot))
            except OSError:
                pass
    _path = None
    del _files[:]
    del _index[:]
