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

run() { # side, binary, pair
  rm -f "$work/rec.mp4"
  /usr/bin/time -v "$2" --quiet --url "$url" --duration "$seconds" "$work/rec.mp4" \
    2> "$work/time" > /dev/null || { cat "$work/time"; exit 1; }
  awk -v side="$1" -v pair="$3" -F': ' '
    /User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2}
    END {printf "%s %s cpu %.2f rss %.1f\n", side, pair, u+s, r/1024}' "$work/time"
}
for i in $(seq "$pairs"); do
  run A "$a" "$i" | tee -a "$work/runs"
  run B "$b" "$i" | tee -a "$work/runs"
done
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
for side in A B; do
  cpu=$(awk -v s="$side" '$1 == s {print $4}' "$work/runs" | median)
  rss=$(awk -v s="$side" '$1 == s {print $6}' "$work/runs" | median)
  echo "$side median of $pairs: CPU $cpu s, peak RSS $rss MiB"
done
