# A camera stand-in with the API of the common MicroPython ESP32 camera driver
# (`import camera`: init, capture, deinit): frames come from raw files in
# FRAMES_DIR, sorted by name and played in a loop. Used on boards without a
# camera and in the MicroPython unix port.
#   NAME.rgb565  RGB565, high byte first (the driver's order), w*h*2 bytes
#   NAME.gray    8-bit grayscale, w*h bytes
#   NAME.rgb     RGB888, w*h*3 bytes
# `tinyseg deploy` writes a few frames in the board's format to frames/.
# init(..., buffered=False) keeps no frame in RAM (for small boards): capture()
# then returns None and read_row(y, buf) reads row y of the current frame.
import os

RGB565 = "rgb565"
GRAYSCALE = "gray"
RGB888 = "rgb"
# Frame sizes (width, height), named as in the camera driver.
FRAME_96X96 = (96, 96)
FRAME_QQVGA = (160, 120)
FRAME_QCIF = (176, 144)
FRAME_HQVGA = (240, 176)
FRAME_240X240 = (240, 240)
FRAME_QVGA = (320, 240)

FRAMES_DIR = "frames"
_BPP = {RGB565: 2, GRAYSCALE: 1, RGB888: 3}
_files = []
_buf = None
_next = 0
_file = None
_row = 0


def init(id=0, format=RGB565, framesize=FRAME_QQVGA, buffered=True, **kw):
    """Find the frames of this format and size; buffered: keep one frame buffer."""
    global _files, _buf, _next, _row
    deinit()
    _row = framesize[0] * _BPP[format]
    size = _row * framesize[1]
    names = sorted(n for n in os.listdir(FRAMES_DIR) if n.endswith("." + format))
    _files = []
    for n in names:
        path = FRAMES_DIR + "/" + n
        if os.stat(path)[6] == size:
            _files.append(path)
        else:
            print("camera_files: skipping %s: not %dx%d %s" % (path, framesize[0], framesize[1], format))
    if not _files:
        raise OSError("camera_files: no %dx%d .%s frames in %s/" % (framesize[0], framesize[1], format, FRAMES_DIR))
    _buf = bytearray(size) if buffered else None
    _next = 0
    return True


def capture():
    """The next frame (the same buffer each time, overwritten); None when unbuffered."""
    global _next, _file
    if _file:
        _file.close()
    _file = open(_files[_next], "rb")
    _next = (_next + 1) % len(_files)
    if _buf is None:
        return None
    _file.readinto(_buf)
    _file.close()
    _file = None
    return _buf


def read_row(y, buf):
    """Unbuffered: row y of the frame captured last, into buf."""
    _file.seek(y * _row)
    _file.readinto(buf)


def deinit():
    global _buf, _file
    if _file:
        _file.close()
    _buf = _file = None
    return True
