#!/usr/bin/python3
"""GStreamer's gst-rtsp-server serving one clip, for retina-record's interop tests.

Usage: gst_rtsp_server.py CLIP.mkv VIDEO[-AUDIO[+AUDIO...]] [--auth basic|digest USER PASSWORD]
       [--tls CERT.pem KEY.pem]

With --tls it serves RTSPS (RTSP over TLS, RTP interleaved in it) with that certificate.

VIDEO is h264 or h265, each AUDIO aac, pcmu or pcma (h264-aac, h264-aac+pcmu, ...): one RTSP
stream per codec, in that order, from the clip's audio tracks in order.

Serves rtsp://127.0.0.1:PORT/stream on a free port and prints "PORT" on stdout once ready.
Runs until killed. The clip is a Matroska file made by the test with ffmpeg.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

VIDEO = {
    "h264": "h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1",
    "h265": "h265parse ! rtph265pay name=pay0 pt=96 config-interval=-1",
}
AUDIO = {
    "aac": "aacparse ! rtpmp4gpay name=pay{n} pt=97",
    "pcmu": "rtppcmupay name=pay{n} pt=0",
    "pcma": "rtppcmapay name=pay{n} pt=8",
}


def main():
    clip, codecs = sys.argv[1], sys.argv[2]
    video, _, audio = codecs.partition("-")
    Gst.init(None)
    launch = f"( filesrc location={clip} ! matroskademux name=d d.video_0 ! queue ! {VIDEO[video]}"
    for i, a in enumerate(audio.split("+") if audio else []):
        launch += f" d.audio_{i} ! queue ! " + AUDIO[a].format(n=i + 1)
    launch += " )"

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service("0")
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(False)

    args = sys.argv[3:]
    tls = None
    if "--tls" in args:
        i = args.index("--tls")
        tls = Gio.TlsCertificate.new_from_files(args[i + 1], args[i + 2])
        del args[i : i + 3]
    auth = None
    if len(args) == 4 and args[0] == "--auth":
        method, user, password = args[1], args[2], args[3]
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        # (writable_structure() gives Python a copy; set_string edits the token itself.)
        token.set_string("media.factory.role", "user")
        if method == "basic":
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        else:
            auth.add_digest(user, password, token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    if tls is not None:
        if auth is None:
            # Anyone may watch: TLS only.
            auth = GstRtspServer.RTSPAuth()
            token = GstRtspServer.RTSPToken()
            token.set_string("media.factory.role", "user")
            auth.set_default_token(token)
        auth.set_tls_certificate(tls)
    if auth is not None:
        server.set_auth(auth)
        role = Gst.Structure.from_string(
            "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )[0]
        factory.add_role_from_structure(role)

    server.get_mount_points().add_factory("/stream", factory)
    if server.attach(None) == 0:
        sys.exit("cannot attach the RTSP server")
    print(server.get_bound_port(), flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
