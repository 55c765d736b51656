#!/opt/live555/bin/python
"""live555's RTSP proxy server in front of one back-end stream, for retina-record's interop tests.

Usage: live555_proxy.py BACKEND_URL

Runs live555's ProxyServerMediaSession (what live555ProxyServer runs; here through the
`liblivemedia` package from PyPI, which builds live555 2024.06.26 as a Python module) on
127.0.0.1, on a free port. It reads BACKEND_URL and re-serves it with live555's own RTSP server,
RTP packetizers (H264VideoRTPSink, H265VideoRTPSink, MPEG4GenericRTPSink, SimpleRTPSink) and
RTCP, over TCP or UDP as the client asks.

Prints the proxy's rtsp:// URL on stdout once it listens (it answers DESCRIBE with 200 once it
has the back end's SDP). Runs until killed.
"""
import signal
import sys

import liblivemedia


def main():
    backend = sys.argv[1]
    # Port 0: the kernel picks a free one, and the URLs below name it.
    proxy = liblivemedia.ProxyServer("127.0.0.1", 0)
    proxy.addURI(backend, "cam", "", "")
    url = proxy.getProxyURI(backend)
    if not url.startswith("rtsp://127.0.0.1:"):
        sys.exit(f"unexpected proxy URL {url!r}")
    proxy.start()
    print(url, flush=True)
    # The event loop runs in live555's own thread; this one only waits to be killed.
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
