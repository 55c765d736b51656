#!/usr/bin/env python3
"""How many fragment syncs a disk takes per second, from K threads at once: each thread appends
a 512 KiB fragment (1 s of a 4 Mbit/s camera) to its own file and fdatasyncs it, as fast as it
can, for FSYNC_SECONDS (5). Each file is appended to and cut back to nothing every 16 fragments
(8 MiB), so that a long run cannot fill the disk (an early version wrote 60 GB and did). Why it matters: one writer thread per camera lets syncs overlap (ext4 and
the disk commit concurrent ones together); a small shared pool of writer threads would queue
them, and cap the cameras a process can record at its threads / sync latency.

    bench/fsync-parallel.py [DIR] [K…]     # DIR on the disk to measure (default: a temp dir here)
"""

import os
import sys
import tempfile
import threading
import time

directory = sys.argv[1] if len(sys.argv) > 1 else None
counts = [int(k) for k in sys.argv[2:]] or [1, 2, 8, 32, 100]
seconds = float(os.environ.get("FSYNC_SECONDS", "5"))
RING = 16
fragment = os.urandom(512 * 1024)


def writer(path, stop, out):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    n, waited = 0, 0.0
    while not stop.is_set():
        if n % RING == 0:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, fragment)
        t = time.perf_counter()
        os.fdatasync(fd)
        waited += time.perf_counter() - t
        n += 1
    os.close(fd)
    out.append((n, waited))


with tempfile.TemporaryDirectory(dir=directory or ".") as d:
    print(f"{'threads':>7} {'syncs/s':>9} {'mean sync ms':>13} {'MiB/s':>8}")
    for k in counts:
        stop, out = threading.Event(), []
        threads = [threading.Thread(target=writer, args=(os.path.join(d, f"f{i}"), stop, out)) for i in range(k)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        syncs = sum(n for n, _ in out)
        waited = sum(w for _, w in out)
        print(f"{k:7d} {syncs / seconds:9.0f} {waited / max(syncs, 1) * 1e3:13.2f} {syncs * 0.5 / seconds:8.0f}")
        for i in range(k):
            os.unlink(os.path.join(d, f"f{i}"))
