# The spill store: a scratch file on the board's filesystem (littlefs) that
# holds spilled tensors between the step that spills them and the step that
# fetches them. Each tensor has a region sized for its worst case; its rows
# are written compressed, one after another, and an index of row offsets is
# kept in RAM, so a single row can be read back alone; a row that does not
# shrink is stored raw. The file is created
# once at load (a full filesystem fails there, naming the bytes needed),
# rewritten in place by every inference and removed by close().
from array import array

from tinyseg_mp import compress

_file = None
_path = None
_fs = None  # an object with open() and remove() (littlefs-python in tests); None: the board's VFS
_bases = []  # file offset of each slot's region
_index = []  # per slot: array of row offsets inside the region (rows + 1)
_len = bytearray(2)


def open_store(path, slots, fs=None):
    """slots: list of (rows, row_bytes). Creates the file at its full size."""
    global _file, _path, _fs
    close()
    _fs = fs
    opener = fs.open if fs else open
    size = 0
    for rows, row_bytes in slots:
        _bases.append(size)
        _index.append(array("i", [0] * (rows + 1)))
        size += rows * compress.bound(row_bytes)
    _path = path
    f = None
    try:
        f = opener(path, "wb")
        zeros = bytes(512)
        left = size
        while left > 0:
            n = f.write(zeros[: min(left, 512)])
            if not n:
                raise OSError(28)
            left -= n
        f.close()
        _file = opener(path, "r+b")
    except Exception as exc:  # OSError(ENOSPC) on the board; littlefs-python has its own error type
        if f is not None and _file is None:
            try:
                f.close()
            except Exception:
                pass
        _remove()
        raise OSError("filesystem full: the spill file %s needs %d bytes (%s); free space or compile "
                      "with a larger --budget" % (path, size, exc))
    return size


def write_rows(slot, src, row_bytes, rows, tmp):
    """Compress and write rows 0..rows-1 of src (a memoryview); returns bytes written."""
    idx = _index[slot]
    f = _file
    f.seek(_bases[slot])
    pos = 0
    for r in range(rows):
        row = src[r * row_bytes : (r + 1) * row_bytes]
        n = compress.encode(row, row_bytes, tmp)
        if n < row_bytes:
            f.write(tmp[:n])
        else:  # incompressible: stored as is (a block as long as the row is raw)
            f.write(row)
            n = row_bytes
        pos += n
        idx[r + 1] = pos
    return pos


def read_row(slot, r, row_bytes, tmp, dst):
    """Read and decompress row r of a slot into dst; returns bytes read."""
    idx = _index[slot]
    start = idx[r]
    n = idx[r + 1] - start
    f = _file
    f.seek(_bases[slot] + start)
    if n == row_bytes:
        f.readinto(dst)
    else:
        f.readinto(memoryview(tmp)[:n])  # a view: slicing a bytearray would read into a copy
        compress.decode(tmp, row_bytes, dst)
    return n


def _remove():
    global _path
    if _path:
        try:
            if _fs:
                _fs.remove(_path)
            else:
                import os

                os.remove(_path)
        except OSError:
            pass
    _path = None


def close():
    global _file
    if _file:
        _file.close()
        _file = None
    _remove()
    del _bases[:]
    del _index[:]
