#!/usr/bin/env bash
# Before and after: BIN_A and BIN_B (two builds of retina-record) each record the stream of
# record-60s.sh (720p25 H.264 at 4 Mbit/s + AAC, from `retina-record camera` over loopback, TCP)
# for SECONDS_TO_RECORD (default 60) seconds, alternating A, B, A, B, … for PAIRS (default 3)
# pairs, so that whatever else the machine does falls on both alike. One line per run: CPU
# (user + sys) and peak RSS, from GNU time; then each side's median.
# Usage: bench/ab.sh BIN_A BIN_B   (needs ffmpeg and GNU time: `apt-get install -y ffmpeg time`)
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2
seconds=${SECONDS_TO_RECORD:-60}
pairs=${PAIRS:-3}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

source bench/lib.sh
make_clip "$work"
serve "$b" "$work/clip.mp4" "$work/url"
url=$(cat "$work/url")

for i in $(seq "$pairs"); do
  measure A "$i" "$a" "$url" "$work" | tee -a "$work/runs"
  measure B "$i" "$b" "$url" "$work" | tee -a "$work/runs"
done
medians "$work/runs" A B
