#!/usr/bin/env bash
# CPU time and peak memory to record 60 s of a 4 Mbit/s H.264 + AAC stream, retina-record
# beside `ffmpeg -c copy` on the same stream served by `retina-record camera` (over loopback, TCP).
# Needs ffmpeg and GNU time (`apt-get install -y ffmpeg time`). Prints one line per recorder.
# SPEED=10 serves the media 10 times faster than real time (60 s of wall time records 10 min
# of media), to see whether memory grows with the recording's length. ffmpeg is only run at 1.
# SEGMENT=10s also records in segments of that length (a strftime template), beside the single
# file, to see what segmenting costs.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_TO_RECORD:-60}
speed=${SPEED:-1}
segment=${SEGMENT:-}
cargo build --release --locked --bin retina-record
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

source bench/lib.sh
make_clip "$work"
serve target/release/retina-record "$work/clip.mp4" "$work/url" --speed "$speed"
url=$(cat "$work/url")

measure() { # name, then the command
  local name=$1; shift
  /usr/bin/time -v "$@" 2> "$work/$name.time" > /dev/null || { cat "$work/$name.time"; exit 1; }
  awk -v name="$name" -F': ' '
    /User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2}
    END {printf "%-14s CPU %.2f s (user %.2f + sys %.2f), peak RSS %.1f MiB\n", name, u+s, u, s, r/1024}' \
    "$work/$name.time"
}
measure retina-record target/release/retina-record --url "$url" --duration "$seconds" "$work/rr.mp4"
if [ -n "$segment" ]; then
  measure "segments-$segment" target/release/retina-record --url "$url" --duration "$seconds" \
    --segment-duration "$segment" "$work/seg/%H%M%S.mp4"
  echo "$(ls "$work/seg" | wc -l) segment files"
fi
if [ "$speed" = 1 ]; then
  measure ffmpeg-copy ffmpeg -nostdin -v error -rtsp_transport tcp -i "$url" -t "$seconds" \
    -c copy -f mp4 "$work/ff.mp4"
fi
for f in "$work"/rr.mp4 "$work"/ff.mp4; do
  [ -f "$f" ] && ls -l "$f" | awk '{printf "%s %.1f MiB\n", $NF, $5/1048576}'
done
true
