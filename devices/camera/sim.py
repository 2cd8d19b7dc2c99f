"""A real RTSP server on loopback standing in for an IP camera: Debian's GStreamer RTSP server
(gst-rtsp-server through python3-gi) serving a live test pattern with a clock overlay, H.264 video
and AAC audio, at a Hikvision-style main stream (/Streaming/Channels/101) and sub-stream
(/Streaming/Channels/102). Each mount is shared: one encoder, however many clients.

Run with Debian's python3 (python3-gi lives there, not in the project's venv):

    /usr/bin/python3 devices/camera/sim.py [--width 1280 --height 720 --fps 25 --bitrate 2000] [--no-audio]

Prints ``{"port": N}`` once listening; stops on SIGTERM or when stdin closes.
"""

import argparse
import json
import signal
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


PICTURES = {
    # what the lens sees: a moving ball with a clock (a working camera), or a fault to detect
    "normal": "videotestsrc is-live=true pattern=ball background-color=0xff707880 "
              "! video/x-raw,width={w},height={h},framerate={fps}/1 ! clockoverlay font-desc=\"Sans 24\"",
    "black": "videotestsrc is-live=true pattern=black ! video/x-raw,width={w},height={h},framerate={fps}/1",
    "covered": "videotestsrc is-live=true pattern=solid-color foreground-color=0xff5a4a3a "
               "! video/x-raw,width={w},height={h},framerate={fps}/1",
    "blurred": "videotestsrc is-live=true pattern=smpte ! video/x-raw,width={w},height={h},framerate={fps}/1 "
               "! videoconvert ! gaussianblur sigma=12",
    "frozen": "videotestsrc is-live=true pattern=smpte num-buffers=1 ! video/x-raw,width={w},height={h},framerate={fps}/1 "
              "! imagefreeze is-live=true",
}


def pipeline(width: int, height: int, fps: int, bitrate: int, audio: bool, picture: str = "normal") -> str:
    source = PICTURES[picture].format(w=width, h=height, fps=fps)
    video = (f"{source} ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
             f"bitrate={bitrate} ! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1")
    sound = (" audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! audio/x-raw,rate=16000,channels=1 "
             "! voaacenc bitrate=32000 ! rtpmp4gpay name=pay1 pt=97") if audio else ""
    return f"( {video}{sound} )"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--bitrate", type=int, default=800, help="kbit/s of the main stream")
    parser.add_argument("--no-audio", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--picture", choices=sorted(PICTURES), default="normal")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for path, scale in (("/Streaming/Channels/101", 1), ("/Streaming/Channels/102", 4)):
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(pipeline(args.width // scale // 2 * 2, args.height // scale // 2 * 2, args.fps,
                                    max(100, args.bitrate // scale), not args.no_audio, args.picture))
        factory.set_shared(True)
        mounts.add_factory(path, factory)
    server.attach(None)
    loop = GLib.MainLoop()
    print(json.dumps({"port": server.get_bound_port()}), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())

    def watch_stdin() -> None:
        sys.stdin.read()
        GLib.idle_add(loop.quit)

    threading.Thread(target=watch_stdin, daemon=True).start()
    loop.run()


if __name__ == "__main__":
    main()
