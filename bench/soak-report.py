#!/usr/bin/env python3
"""The soak's verdict (bench/soak.sh DIR runs it): RSS flat (mean of the last 10 minutes within
10 % of the first 10 minutes'), no descriptor growth, zero frames lost outside outages, a clean
exit. Prints one line per check and exits 1 if any fails."""

import csv
import glob
import json
import os
import subprocess
import sys

d = sys.argv[1]
binary = os.path.join(d, "retina-record")
t0 = int(open(os.path.join(d, "t0")).read())
samples = list(csv.DictReader(open(os.path.join(d, "samples.csv"))))
end = max(int(s["unix"]) for s in samples)
first = [s for s in samples if int(s["unix"]) <= t0 + 600]
last = [s for s in samples if int(s["unix"]) >= end - 600]
mean = lambda rows, k: sum(int(r[k]) for r in rows) / len(rows)
ok = True


def check(passed, text):
    global ok
    ok &= passed
    print(("PASS " if passed else "FAIL ") + text)


rss_first, rss_last = mean(first, "rss_kb"), mean(last, "rss_kb")
check(
    abs(rss_last - rss_first) <= 0.10 * rss_first,
    f"RSS: first 10 min mean {rss_first / 1024:.2f} MiB, last 10 min mean {rss_last / 1024:.2f} "
    f"MiB ({(rss_last / rss_first - 1) * 100:+.1f} %); max {max(int(s['rss_kb']) for s in samples) / 1024:.2f} MiB; "
    f"{len(samples)} samples over {(end - t0) / 3600:.2f} h",
)
by_kind = os.path.join(d, "rss-by-kind.csv")
if os.path.exists(by_kind):
    rows = list(csv.DictReader(open(by_kind)))
    kinds = [k for k in rows[0] if k not in ("unix", "total")] if rows else []
    early = [r for r in rows if int(r["unix"]) <= t0 + 600]
    late = [r for r in rows if int(r["unix"]) >= end - 600]
    if early and late:
        print(
            "     RSS by kind, first -> last 10 min (MiB): "
            + ", ".join(f"{k} {mean(early, k) / 1024:.2f} -> {mean(late, k) / 1024:.2f}" for k in kinds)
        )
fds = [int(s["fds"]) for s in samples]
threads = [int(s["threads"]) for s in samples]
check(
    max(int(s["fds"]) for s in last) <= max(int(s["fds"]) for s in first),
    f"descriptors: first 10 min max {max(int(s['fds']) for s in first)}, last 10 min max "
    f"{max(int(s['fds']) for s in last)}, overall {min(fds)}..{max(fds)}; threads {min(threads)}..{max(threads)}",
)

outages = {}
for row in csv.DictReader(open(os.path.join(d, "outages.csv"))):
    outages.setdefault(row["camera"], []).append((float(row["down_unix"]), float(row["up_unix"])))

# A gap belongs to an outage if its last frame before came at most 1 s before the camera went
# down and the gap ends after the camera came back (reconnecting takes up to the back-off).
lost_outside = 0
total_frames = 0
gaps_total = 0
gaps_outside = 0
for cam_dir in sorted(glob.glob(os.path.join(d, "rec", "*"))):
    cam = os.path.basename(cam_dir)
    files = sorted(glob.glob(os.path.join(cam_dir, "*.mp4")))
    out = subprocess.run(
        [binary, "timing", "--summary", "--json", *files], capture_output=True, text=True, check=True
    )
    whole = json.loads(out.stdout)["whole"]
    total_frames += whole["frames"]
    downs = outages.get(cam, [])
    unexplained = []
    for g in whole["gaps"]:
        start, stop = g["at_unix"], g["at_unix"] + g["length_s"]
        if not any(down - 1.0 <= start <= up and stop >= up for down, up in downs):
            unexplained.append(g)
    gaps_total += len(whole["gaps"])
    gaps_outside += len(unexplained)
    lost = sum(g["missing_frames"] for g in unexplained)
    lost_outside += lost
    print(
        f"     {cam}: {len(files)} files, {whole['frames']} frames, {whole['sessions']} sessions, "
        f"{len(downs)} outages, {len(whole['gaps'])} gaps, {lost} frames lost outside outages"
        + (f" {unexplained}" if unexplained else "")
    )
check(
    lost_outside == 0,
    f"frames lost outside outages: {lost_outside} (of {total_frames} recorded; {gaps_total} gaps, "
    f"{gaps_outside} of them outside outages)",
)

# The last scrape that answered (the one at the SIGTERM may be empty): it must show every
# camera's counters, or this check would pass on nothing.
scrapes = [open(p).read() for p in sorted(glob.glob(os.path.join(d, "metrics", "*.txt")))]
scrapes = [t for t in scrapes if "retina_record_reconnects_total" in t]


def total(text, name):
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


if scrapes:
    text = scrapes[-1]
    lost_packets = total(text, "retina_record_lost_packets_total")
    reconnects = total(text, "retina_record_reconnects_total")
    outage_count = sum(len(v) for v in outages.values())
    check(
        lost_packets == 0 and reconnects > 0,
        f"metrics (last answered scrape of {len(scrapes)}): {lost_packets:.0f} RTP packets lost, "
        f"{reconnects:.0f} reconnects ({outage_count} outages)",
    )
else:
    check(False, "metrics: no scrape answered")
status = open(os.path.join(d, "exit-status")).read().strip()
check(status == "0", f"recorder exit status on SIGTERM: {status}")
sys.exit(0 if ok else 1)
