# The tinyseg camera demo, run by boards/<board>/main.py with its settings:
# grab a frame, convert and resize it to the model input on the device, run
# the model, print the mask as ASCII art on the REPL, and serve a web page with
# the latest frame and the mask overlay (BMP images), refreshing itself.
# Boards with Wi-Fi serve the page once wifi.json ({"ssid": .., "password":
# ..}) is on the filesystem. The MicroPython unix port runs this unchanged with
# frames from files and the page on 127.0.0.1; there the environment variables
# TINYSEG_DEMO_PORT, TINYSEG_DEMO_HOST, TINYSEG_DEMO_FRAMES (stop after N
# frames), TINYSEG_DEMO_REQUESTS (stop after N requests) and
# TINYSEG_DEMO_THRESHOLD override settings.
import gc
import select
import sys
import time

import tinyseg_mp
from tinyseg_mp import image

SIZES = {
    "FRAME_96X96": (96, 96), "FRAME_QQVGA": (160, 120), "FRAME_QCIF": (176, 144),
    "FRAME_HQVGA": (240, 176), "FRAME_240X240": (240, 240), "FRAME_QVGA": (320, 240),
}
FORMATS = {"RGB565": image.RGB565, "GRAYSCALE": image.GRAY, "RGB888": image.RGB888}
UNIX = sys.platform in ("linux", "darwin")
PAGE = ('<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="%d">'
        "<title>tinyseg demo</title><style>body{margin:0;background:#202020;color:#eee;font:14px sans-serif}"
        "p{margin:0;height:32px;line-height:32px;padding:0 12px;overflow:hidden;white-space:nowrap}"
        "div{display:flex;gap:12px;padding:12px}img{width:%dpx;height:%dpx;image-rendering:pixelated}"
        '</style></head><body><p>frame %d: %d of %d pixels in the mask, inference %d ms</p><div>'
        '<img src="/frame.bmp?n=%d" alt="frame"><img src="/overlay.bmp?n=%d" alt="mask overlay"></div></body></html>')

# Demo state, set up once by main().
_m = _cam = _frame = _out = _strip = _head = _rowbuf = None
_n = _ms = _hits = 0
_clients = []  # open connections: (socket, ticks_ms when accepted)
IDLE_MS = 10000
_fw = _fh = _fmt = _flip = _oflip = 0
_thr = 127  # mask: output value (as uint8; int8 outputs shifted by 128) over this


def _setting(cfg, key, env, default):
    v = None
    if UNIX:
        from os import getenv

        v = getenv(env)
    if v is None:
        v = cfg.get(key, default)
    return int(v) if isinstance(default, int) else v


def _camera(cfg):
    global _fw, _fh, _fmt
    name = cfg.get("camera", "camera_files")
    try:
        cam = __import__(name)
    except ImportError:
        print("demo: no '%s' module in this firmware; using frames from files" % name)
        name = "camera_files"
        cam = __import__(name)
    if name == "camera_files":
        cam.FRAMES_DIR = cfg.get("frames", "frames")
    fmt = cfg.get("format", "RGB565")
    size = cfg.get("framesize", "FRAME_QQVGA")
    _fw, _fh = SIZES[size]
    _fmt = FORMATS[fmt]
    try:
        cam.deinit()
    except Exception:
        pass
    if name == "camera_files":
        buffered = cfg.get("frame_buffer", True)
        ok = cam.init(0, format=getattr(cam, fmt), framesize=getattr(cam, size), buffered=buffered)
    else:
        buffered = True
        ok = cam.init(0, format=getattr(cam, fmt), framesize=getattr(cam, size))
    if ok is False:
        raise OSError("camera init failed; check the camera's cable and power, then reset")
    print("demo: camera '%s', %s %dx%d%s" % (name, fmt, _fw, _fh, "" if buffered else ", read row by row from flash"))
    return cam


def _rows(dst, w, h, y0, y1, stride, flip):
    """Rows y0..y1-1 of the current frame, resized to w x h RGB888, into dst."""
    if _frame is not None:
        image.convert(_frame, _fmt, _fw, _fh, dst, w, h, y0, y1, stride, flip)
        return
    stride = stride or w * 3
    mv = memoryview(dst)
    for y in range(y0, y1):  # frame kept on flash: read the source row of each output row
        _cam.read_row(((2 * y + 1) * _fh) // (2 * h), _rowbuf)
        image.convert(_rowbuf, _fmt, _fw, 1, mv[(y - y0) * stride :], w, 1, 0, 1, stride, flip)


def _step():
    """One frame: capture, convert into the model input, run, print the mask."""
    global _frame, _out, _n, _ms, _hits
    meta = _m.meta
    _frame = None
    gc.collect()
    _frame = _cam.capture()
    if not _frame and not hasattr(_cam, "read_row"):
        _frame = _out = None
        print("demo: capture failed")
        return
    t0 = time.ticks_ms()
    _rows(_m.input_view(), meta["in_w"], meta["in_h"], 0, meta["in_h"], 0, _flip)
    _out = _m.run()
    _ms = time.ticks_diff(time.ticks_ms(), t0)
    _n += 1
    ow, oh, oc = meta["out_w"], meta["out_h"], meta["out_c"]
    _hits = image.count_over(_out, ow * oh, oc, _oflip, _thr)
    print(image.ascii_mask(_out, ow, oh, oc, _oflip, _thr))
    print("frame %d: %d of %d pixels in the mask, inference %d ms" % (_n, _hits, ow * oh, _ms))
    gc.collect()


def _wifi():
    try:
        import network
    except ImportError:
        print("demo: no network module; the web page is off")
        return None
    import json

    try:
        with open("wifi.json") as f:
            creds = json.load(f)
    except (OSError, ValueError):
        print('demo: no wifi.json ({"ssid": "...", "password": "..."}); the web page is off')
        return None
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(creds["ssid"], creds.get("password", ""))
        t0 = time.ticks_ms()
        while not wlan.isconnected():
            if time.ticks_diff(time.ticks_ms(), t0) > 20000:
                print("demo: Wi-Fi '%s' did not connect; the web page is off" % creds["ssid"])
                return None
            time.sleep_ms(200)
    return wlan.ifconfig()[0]


def _server(cfg):
    try:
        import socket
    except ImportError:  # a plain Pico: no network stack, no page
        return None
    if UNIX:
        host = ip = _setting(cfg, "host", "TINYSEG_DEMO_HOST", "127.0.0.1")
        port = _setting(cfg, "unix_port", "TINYSEG_DEMO_PORT", 8080)
    else:
        ip = _wifi()
        if ip is None:
            return None
        host = "0.0.0.0"
        port = cfg.get("port", 80)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(socket.getaddrinfo(host, port)[0][-1])
    srv.listen(2)
    srv.setblocking(False)
    print("demo: page at http://%s:%d/" % (ip, port))
    return srv


def _send_head(cl, status, ctype, length):
    cl.write(b"HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-store\r\n"
             b"Connection: close\r\n\r\n" % (status, ctype, length))


def _send_bmp(cl, tinted):
    meta = _m.meta
    w, h = meta["in_w"], meta["in_h"]
    row = (w * 3 + 3) & ~3
    rows = len(_strip) // row
    _send_head(cl, b"200 OK", b"image/bmp", image.bmp_header(_head, w, h))
    cl.write(_head)
    y1 = h
    while y1 > 0:  # bottom strip first: BMP rows are bottom-up
        y0 = y1 - rows if y1 > rows else 0
        _rows(_strip, w, h, y0, y1, row, 0)
        if tinted:
            image.overlay(_strip, w, h, y0, y1, row, _out, meta["out_w"], meta["out_h"], meta["out_c"], _oflip, _thr)
        image.bmp_rows(_strip, w, y1 - y0, row)
        cl.write(memoryview(_strip)[: (y1 - y0) * row])
        y1 = y0


def _request_path(cl):
    """The path of a GET request; reads the whole request head."""
    first = None
    tail = b""
    while True:
        chunk = cl.recv(512)
        if not chunk:
            break
        if first is None:
            first = chunk.split(b"\r\n", 1)[0]
        if b"\r\n\r\n" in tail + chunk:
            break
        tail = chunk[-3:]
    parts = (first or b"").split()
    return parts[1].split(b"?")[0] if len(parts) > 1 else b""


def _handle(cl, refresh_s):
    """Answer one GET request; False when the connection closed without one."""
    meta = _m.meta
    cl.settimeout(5)
    path = _request_path(cl)
    if not path:
        return False
    if _out is None and path != b"/status.json":
        _send_head(cl, b"503 Service Unavailable", b"text/plain", 12)
        cl.write(b"no frame yet")
    elif path == b"/":
        w, h = meta["in_w"], meta["in_h"]
        s = max(1, 360 // w)
        body = PAGE % (refresh_s, w * s, h * s, _n, _hits, meta["out_w"] * meta["out_h"], _ms, _n, _n)
        _send_head(cl, b"200 OK", b"text/html", len(body))
        cl.write(body)
    elif path == b"/frame.bmp" or path == b"/overlay.bmp":
        _send_bmp(cl, path == b"/overlay.bmp")
    elif path == b"/mask.txt":
        body = image.ascii_mask(_out, meta["out_w"], meta["out_h"], meta["out_c"], _oflip, _thr)
        _send_head(cl, b"200 OK", b"text/plain", len(body))
        cl.write(body)
    elif path == b"/status.json":
        body = '{"frame": %d, "inference_ms": %d, "mask_pixels": %d}' % (_n, _ms, _hits)
        _send_head(cl, b"200 OK", b"application/json", len(body))
        cl.write(body)
    else:
        _send_head(cl, b"404 Not Found", b"text/plain", 9)
        cl.write(b"not found")
    return True


def _serve(srv, poller, ms, refresh_s, budget):
    """Answer requests for `ms` milliseconds or until `budget` (> 0) answers;
    returns how many were answered. Browsers open idle connections ahead of
    their requests, so every open connection is polled; idle ones are closed
    after IDLE_MS."""
    served = 0
    t0 = time.ticks_ms()
    while True:
        now = time.ticks_ms()
        for i in range(len(_clients) - 1, -1, -1):
            if time.ticks_diff(now, _clients[i][1]) > IDLE_MS:
                _drop(poller, _clients[i][0])
        left = ms - time.ticks_diff(now, t0)
        if left <= 0 or (budget and served >= budget):
            return served
        for e in poller.poll(min(left, 500)):
            obj, ev = e[0], e[1]  # the tuples may have more items on some ports
            if obj is srv:
                try:
                    cl, _ = srv.accept()
                except OSError:
                    continue
                cl.setblocking(False)
                poller.register(cl, select.POLLIN)
                _clients.append((cl, now))
                continue
            if ev & select.POLLIN:
                try:
                    if _handle(obj, refresh_s):
                        served += 1
                except OSError as err:
                    print("demo: request failed:", err)
            _drop(poller, obj)
            gc.collect()


def _drop(poller, cl):
    for i in range(len(_clients)):
        if _clients[i][0] is cl:
            _clients.pop(i)
            break
    poller.unregister(cl)
    cl.close()


def main(cfg):
    global _m, _cam, _strip, _head, _rowbuf, _flip, _oflip, _thr
    frames = _setting(cfg, "frame_count", "TINYSEG_DEMO_FRAMES", 0)  # 0: forever ("frames" is their folder)
    _thr = _setting(cfg, "threshold", "TINYSEG_DEMO_THRESHOLD", 127)
    requests = _setting(cfg, "requests", "TINYSEG_DEMO_REQUESTS", 0)
    interval = cfg.get("interval_ms", 2000)
    gc.collect()
    _m = tinyseg_mp.load(cfg.get("model", "model.tsb"), input_view=True)  # each frame is converted into it
    meta = _m.meta
    if meta["in_c"] != 3 or meta["in_dtype"] > 1:
        raise ValueError("the demo needs a model with an 8-bit HxWx3 image input")
    _flip = 0x80 if meta["in_dtype"] == 0 else 0  # int8 input: pixel - 128
    _oflip = 0x80 if meta["out_dtype"] == 0 else 0
    print("demo: model %dx%dx%d -> %dx%dx%d, arena %d bytes, backend %s" % (
        meta["in_h"], meta["in_w"], meta["in_c"], meta["out_h"], meta["out_w"], meta["out_c"],
        meta["arena_bytes"], _m.backend))
    _cam = _camera(cfg)
    _rowbuf = bytearray(_fw * image.BPP[_fmt])
    row = (meta["in_w"] * 3 + 3) & ~3
    _strip = bytearray(row * min(cfg.get("strip_rows", 8), meta["in_h"]))
    _head = bytearray(image.BMP_HEADER)
    srv = _server(cfg)
    poller = None
    if srv is not None:
        poller = select.poll()
        poller.register(srv, select.POLLIN)
    gc.collect()
    print("demo: %d bytes free" % gc.mem_free())
    served = 0
    try:
        while True:
            if not frames or _n < frames:
                _step()
            elif srv is None or not requests:
                break
            if srv is None:
                time.sleep_ms(interval)
                continue
            served += _serve(srv, poller, interval, interval // 1000 + 2, requests - served if requests else 0)
            if requests and served >= requests:
                break
    finally:
        if srv is not None:
            while _clients:
                _drop(poller, _clients[0][0])
            srv.close()
        _cam.deinit()
        _m.close()
    print("demo: done, %d frames, %d requests" % (_n, served))
