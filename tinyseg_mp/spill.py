# The spill store: scratch files on the board's filesystem (littlefs), one
# per spilled tensor, that hold it between the steps that spill it and the
# steps that fetch it. Rows are written compressed, one after another, and
# an index of row offsets is kept in RAM, so a single row can be read back
# alone; a row that does not shrink is stored raw. Each file is created at
# its worst-case size at load (a full filesystem fails there, naming the
# bytes needed); every inference removes and rewrites it front to back, so
# littlefs only appends (one erase per block written), however the spilling
# and fetching of different tensors interleave, and the rewrite needs no
# more space than load reserved. A write that fails anyway says so in one
# line. close() removes the files. Each spilling model has its own store.
from array import array

from tinyseg_mp import compress

# One store per model that spills: [path, fs, files, index]. The functions
# below work on the active store (activate(); Model.run() activates its own),
# so op modules call them without a store argument.
_files = []  # per slot: its open file
_path = None
_fs = None  # an object with open() and remove() (littlefs-python in tests); None: the board's VFS
_index = []  # per slot: array of row offsets inside its file (rows + 1)
_used = []  # paths of the stores now open in this process


def _name(slot):
    return "%s.%d" % (_path, slot)


def _open(slot, mode):
    return _fs.open(_name(slot), mode) if _fs else open(_name(slot), mode)


def activate(store):
    """Make `store` (from open_store) the one the functions below use."""
    global _path, _fs, _files, _index
    _path, _fs, _files, _index = store


def open_store(path, slots, fs=None):
    """slots: list of (rows, row_bytes). Creates the files at their full size;
    returns (store, bytes reserved). The store is active on return."""
    if path in _used:
        raise OSError("spill files %s.* are in use by another loaded model: close it, or load this one "
                      "with another spill_path" % path)
    store = [path, fs, [], []]
    activate(store)
    _used.append(path)
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
            close(store)
            raise OSError("filesystem full: the spill files %s.* need %d bytes (%s); free space or compile "
                          "with a larger --budget" % (path, need, exc))
    return store, total


def _failed(slot, exc):
    raise OSError("spill: writing %s failed (%s): the filesystem is full or failing; keep the space the "
                  "model reserved at load free" % (_name(slot), exc))


def _remove(slot):
    try:
        if _fs:
            _fs.remove(_name(slot))
        else:
            import os

            os.remove(_name(slot))
    except OSError:
        pass


def write_rows(slot, src, row_bytes, r0, rows, tmp):
    """Compress and write rows r0..r0+rows-1 (src, a memoryview, holds them in
    order) after the slot's rows before r0; returns bytes written. Row 0
    starts the slot's file afresh."""
    idx = _index[slot]
    try:
        if r0 == 0:
            # Removed, not truncated: littlefs frees a truncated file's blocks
            # only when it is closed, so the rewrite would need its space twice.
            if _files[slot]:
                _files[slot].close()
                _files[slot] = None
            _remove(slot)
            _files[slot] = _open(slot, "w+b")
        f = _files[slot]
        pos = idx[r0]
        f.seek(pos)  # a fetch of earlier rows may have moved the file position
        for r in range(rows):
            row = src[r * row_bytes : (r + 1) * row_bytes]
            n = compress.encode(row, row_bytes, tmp)
            if n < row_bytes:
                k = f.write(tmp[:n])
            else:  # incompressible: stored as is (a block as long as the row is raw)
                k = f.write(row)
                n = row_bytes
            if k is not None and k != n:
                raise OSError(28)
            pos += n
            idx[r0 + r + 1] = pos
    except Exception as exc:  # OSError(ENOSPC) on the board; littlefs-python has its own error type
        _failed(slot, exc)
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


def close(store=None):
    """Close a store's files and remove them (the active store by default)."""
    global _path, _fs, _files, _index
    if store is None:
        store = [_path, _fs, _files, _index]
    path, fs, files, index = store
    for f in files:
        if f:
            f.close()
    if path:
        activate(store)
        for slot in range(len(index)):
            _remove(slot)
        if path in _used:
            _used.remove(path)
    store[0] = None
    del files[:]
    del index[:]
    _path, _fs, _files, _index = None, None, [], []
