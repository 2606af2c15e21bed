# tinyseg camera demo for the Raspberry Pi Pico / Pico W (RP2040). No camera: frames come from
# frames/ on flash. The web page needs a Pico W; a Pico prints the ASCII
# mask only.
# Wi-Fi boards serve the page once wifi.json ({"ssid": "...", "password": "..."})
# is on the filesystem; its address is printed on the REPL.
# `tinyseg deploy MODEL.tsb --board rp2040` copies the runtime, the model (as
# model.tsb), demo.py and camera_files.py (boards/common), sample frames and this file.
CONFIG = {
    "board": "rp2040",
    "camera": "camera_files",  # module with the camera driver's init()/capture() API
    "format": "RGB565",  # RGB565 (high byte first) | GRAYSCALE | RGB888 (files only)
    "framesize": "FRAME_QQVGA",  # 160x120, resized on the device to the model input
    "frames": "frames",  # folder of raw frames for camera_files
    "frame_buffer": False,  # camera_files: read frames row by row from flash (saves a 38 KB frame buffer)
    "model": "model.tsb",
    "port": 80,  # web page port
    "interval_ms": 2000,  # the page is served between frames for this long
    "strip_rows": 8,  # BMP rows encoded at a time: RAM is rows * width * 3 bytes
}

import sys

sys.path.append("tinyseg_demo")  # demo.py and camera_files.py, put there by `tinyseg deploy`
import demo  # noqa: E402

demo.main(CONFIG)
