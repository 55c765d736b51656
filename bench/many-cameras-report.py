#!/usr/bin/env python3
"""One N's two lines of bench/many-cameras.sh: RUN_DIR N SECONDS BINARY."""

import glob
import json
import re
import subprocess
import sys

run, n, seconds, binary = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]


def busy(before, after):
    """The machine's busy share (of all CPUs) and the cameras' CPU seconds between two marks."""
    c0, b0, t0 = map(float, open(before).read().split())
    c1, b1, t1 = map(float, open(after).read().split())
    return (b1 - b0) / (t1 - t0), c1 - c0


def recordings(files):
    """Frames missing inside the recordings, and the worst p99 lateness."""
    missing, late = 0, 0.0
    for f in files:
        out = subprocess.run([binary, "timing", "--summary", "--json", f], capture_output=True, text=True)
        if out.returncode != 0:
            continue
        whole = json.loads(out.stdout)["whole"]
        missing += sum(g["missing_frames"] for g in whole["gaps"])
        if whole.get("latency_s"):
            late = max(late, whole["latency_s"]["p99"])
    return missing, late


for way, times, logs, files, marks in [
    ("one", [f"{run}/one.time"], [f"{run}/one.log"], sorted(glob.glob(f"{run}/one/*.mp4")),
     (f"{run}/before-one", f"{run}/after-one")),
    ("separate", sorted(glob.glob(f"{run}/sep/*.time")), sorted(glob.glob(f"{run}/sep/*.log")),
     sorted(glob.glob(f"{run}/sep/*.mp4")), (f"{run}/after-one", f"{run}/after-separate")),
]:
    cpu = rss = 0.0
    for t in times:
        u, s, m = open(t).read().split()[-3:]
        cpu += float(u) + float(s)
        rss += int(m) / 1024
    text = "".join(open(log).read() for log in logs)
    fragments = sum(int(x) for x in re.findall(r"(\d+) fragments", text))
    lost = sum(int(x) for x in re.findall(r"(\d+) packets lost", text))
    missing, late = recordings(files)
    share, camera_cpu = busy(*marks)
    note = "" if len(files) == n else f"  ONLY {len(files)} OF {n} CAMERAS RECORDED"
    print(
        f"{n:5d} {way:<9s} {cpu / n / (seconds / 60):14.3f} {rss:13.1f} {rss / n:11.2f} "
        f"{fragments / seconds:8.1f} {lost:6d} {missing:7d} {late:8.3f}s {share * 100:5.0f}% "
        f"{camera_cpu:7.1f}s{note}"
    )
