# The spill store: scratch files on the board's filesystem (littlefs), one
# per spilled tensor, that hold it between the steps that spill it and the
# steps that fetch it. Rows are written compressed, one after another, and
# an index of row offsets is kept in RAM, so a single row can be read back
# alone; a row that does not shrink is stored raw. Each file is created at
# its worst-case size at load (a full filesystem fails there, naming the
# bytes needed); every inference removes and rewrites it front to back, so
# the rewrite needs no more space than load reserved. A write that fails
# anyway says so in one line. close() removes the files. Each spilling model
# has its own store.
# littlefs never programs a block twice: a file written again after a seek
# (a fetch reads earlier rows between two spills) has its partly written
# last block copied to a new one, an erase each time (the Tiny U-Net's board
# plan: 53 erases for 54,866 bytes spilled). With a stage (the bundle's META
# spill_stage, given when compiling for a board: its RAM is planned), a
# slot's file only ever receives whole littlefs blocks; the bytes of its
# last, partial block stay in a RAM buffer of one block and rows there are
# read from it (the same plan: 13 erases).
from array import array

from tinyseg_mp import compress

# One store per model that spills: [path, fs, files, index]. The functions
# below work on the active store (activate(); Model.run() activates its own),
# so op modules call them without a store argument.
_files = []  # per slot: its open file
_path = None
_fs = None  # an object with open() and remove() (littlefs-python in tests); None: the board's VFS
_index = []  # per slot: array of row offsets inside its file (rows + 1)
_stage = []  # per slot: bytearray(block), the bytes after the file's last whole block (None: unstaged)
_held = []  # per slot: array [bytes in the stage, bytes in the file, index of the block being staged]
_block = 0  # littlefs block size of the active store (0: unstaged)
_used = []  # paths of the stores now open in this process


def _name(slot):
    return "%s.%d" % (_path, slot)


def _open(slot, mode):
    return _fs.open(_name(slot), mode) if _fs else open(_name(slot), mode)


def activate(store):
    """Make `store` (from open_store) the one the functions below use."""
    global _path, _fs, _files, _index, _stage, _held, _block
    _path, _fs, _files, _index, _stage, _held, _block = store


def _block_size(path, fs):
    if fs:  # littlefs-python
        return fs.cfg.block_size
    import os

    cut = path.rfind("/")
    return os.statvfs(path[:cut] if cut > 0 else ("/" if cut == 0 else "."))[0]


def open_store(path, slots, fs=None, stage=0):
    """slots: list of (rows, row_bytes). Creates the files at their full size;
    returns (store, bytes reserved). The store is active on return. stage:
    the RAM per slot the plan gives to staging (a filesystem block larger
    than it: unstaged)."""
    if path in _used:
        raise OSError("spill files %s.* are in use by another loaded model: close it, or load this one "
                      "with another spill_path" % path)
    block = _block_size(path, fs) if stage else 0
    if block > stage:
        block = 0
    store = [path, fs, [], [], [], [], block]
    activate(store)
    _used.append(path)
    total = 0
    zeros = bytes(512)
    for slot, (rows, row_bytes) in enumerate(slots):
        _index.append(array("i", [0] * (rows + 1)))
        _files.append(None)
        _stage.append(bytearray(block) if block else None)
        _held.append(array("i", [0, 0, 0]))
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
    h = _held[slot]
    try:
        if r0 == 0:
            # Removed, not truncated: littlefs frees a truncated file's blocks
            # only when it is closed, so the rewrite would need its space twice.
            if _files[slot]:
                _files[slot].close()
                _files[slot] = None
            _remove(slot)
            _files[slot] = _open(slot, "w+b")
            h[0] = h[1] = h[2] = 0
        pos = idx[r0]
        for r in range(rows):
            row = src[r * row_bytes : (r + 1) * row_bytes]
            n = compress.encode(row, row_bytes, tmp)
            if n < row_bytes:
                _append(slot, memoryview(tmp)[:n])
            else:  # incompressible: stored as is (a block as long as the row is raw)
                _append(slot, row)
                n = row_bytes
            pos += n
            idx[r0 + r + 1] = pos
    except Exception as exc:  # OSError(ENOSPC) on the board; littlefs-python has its own error type
        _failed(slot, exc)
    return pos - idx[r0]


def _capacity(i):
    # Data bytes of block i of a littlefs file: each block after the first
    # starts with ctz(i) + 1 pointers of its skip list.
    if i == 0:
        return _block
    n = 1
    while not i & 1:
        n += 1
        i >>= 1
    return _block - 4 * n


def _append(slot, data):
    # Stage data; every block the stage fills goes to the file whole.
    st = _stage[slot]
    h = _held[slot]
    if st is None:  # unstaged: straight to the end of the file
        f = _files[slot]
        f.seek(h[1])
        w = f.write(data)
        if w is not None and w != len(data):
            raise OSError(28)
        h[1] += len(data)
        return
    k = 0
    n = len(data)
    while k < n:
        cap = _capacity(h[2])
        take = min(n - k, cap - h[0])
        st[h[0] : h[0] + take] = data[k : k + take]
        h[0] += take
        k += take
        if h[0] == cap:
            f = _files[slot]
            f.seek(h[1])  # the end of the file: a fetch may have moved the position
            w = f.write(memoryview(st)[:cap])
            if w is not None and w != cap:
                raise OSError(28)
            h[1] += cap
            h[0] = 0
            h[2] += 1


def read_row(slot, r, row_bytes, tmp, dst):
    """Read and decompress row r of a slot into dst; returns bytes read."""
    idx = _index[slot]
    start = idx[r]
    n = idx[r + 1] - start
    # A view: slicing a bytearray would read into a copy.
    into = memoryview(dst) if n == row_bytes else memoryview(tmp)[:n]
    in_file = _held[slot][1]
    if start < in_file:
        f = _files[slot]
        f.seek(start)
        f.readinto(into[: min(n, in_file - start)])
    if start + n > in_file:  # (the rest of) the row is in the stage
        a = max(start, in_file)
        into[a - start : n] = memoryview(_stage[slot])[a - in_file : start + n - in_file]
    if n != row_bytes:
        compress.decode(tmp, row_bytes, dst)
    return n


def close(store=None):
    """Close a store's files and remove them (the active store by default)."""
    global _path, _fs, _files, _index, _stage, _held
    if store is None:
        store = [_path, _fs, _files, _index, _stage, _held, _block]
    path, fs, files, index = store[:4]
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
    del store[4][:]
    del store[5][:]
    _path, _fs, _files, _index, _stage, _held = None, None, [], [], [], []
