#!/usr/bin/env python3
"""recv against the kernel: how long after the kernel's arrival of the packet that completed a
video frame the recorder stamped its receive time.

Reads, on stdin, tshark's fields `tcp.stream frame.time_epoch payload-hex` for the camera's
side of the RTSP connection (TCP payload for rtsp://, the decrypted TLS records for rtsps://),
parses the interleaved framing (RFC 2326 §10.12) of each stream, and notes when the last byte of
each video RTP packet with the marker bit (a frame's last, RFC 6184 §5.1) arrived. Then joins
that with `retina-record timing` CSV (argv[1]) by RTP time and prints the distribution of
recv_unix − arrival in µs, skipping the first second (frames the camera sends at once).
Usage: tshark … | bench/arrival.py TIMING.csv LABEL
"""
import csv
import sys

arrival = {}  # rtp -> kernel time (s) of the segment that completed the frame
streams = {}  # stream -> (buffer, offset)
for line in sys.stdin:
    fields = line.rstrip("\n").split("\t")
    if len(fields) < 3 or not fields[2]:
        continue
    stream, at = fields[0], float(fields[1])
    data = bytes.fromhex(fields[2].replace(",", "").replace(":", ""))
    buf = streams.get(stream, b"") + data
    i = 0
    while i < len(buf):
        if buf[i] == 0x24:  # '$': an interleaved frame
            if i + 4 > len(buf):
                break
            channel, length = buf[i + 1], int.from_bytes(buf[i + 2:i + 4], "big")
            if i + 4 + length > len(buf):
                break
            packet = buf[i + 4:i + 4 + length]
            if channel == 0 and len(packet) >= 8 and packet[1] & 0x80:
                arrival[int.from_bytes(packet[4:8], "big")] = at
            i += 4 + length
        else:  # an RTSP message: its head, then Content-Length bytes
            end = buf.find(b"\r\n\r\n", i)
            if end < 0:
                break
            head = buf[i:end].decode("latin-1")
            body = 0
            for h in head.split("\r\n"):
                k, _, v = h.partition(":")
                if k.strip().lower() == "content-length":
                    body = int(v)
            if end + 4 + body > len(buf):
                break
            i = end + 4 + body
    streams[stream] = buf[i:]

rows = list(csv.DictReader(open(sys.argv[1])))
first = float(rows[0]["recv_unix"]) if rows else 0
late = []
for r in rows:
    recv = float(r["recv_unix"])
    at = arrival.get(int(r["rtp"]) % 2**32)
    if at is not None and recv >= first + 1:
        late.append((recv - at) * 1e6)
late.sort()
if not late:
    sys.exit(f"{sys.argv[2]}: no frame matched a captured packet")
q = lambda p: late[min(len(late) - 1, int(p * len(late)))]
print(f"{sys.argv[2]}: {len(late)} frames, recv - kernel arrival p50 {q(0.5):.0f} us, "
      f"p90 {q(0.9):.0f} us, p99 {q(0.99):.0f} us, max {late[-1]:.0f} us, "
      f"min {late[0]:.0f} us")
