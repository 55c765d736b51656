#!/usr/bin/env bash
# `retina-record export` and `list` at lab scale: HOURS of 25 fps media (the built-in camera's
# H.264 + AAC clip) recorded fast (the camera at --speed SPEED) in 10-minute segments, then:
# `list` of the whole set; `export` of 30 s of media from the middle of the set (by receive
# time, which runs at wall-clock pace: 30 s of media at 600x is 0.05 s of it; capture times,
# at media pace, start again with each camera restart below); and 30 s of one 10-minute
# segment cut by `export` (by capture time) and by `ffmpeg -ss -to -c copy` (what a user would
# run instead), alternating, RUNS times each: wall time, CPU (user + sys) and peak RSS, medians. Needs ffmpeg and GNU time (`apt-get install -y ffmpeg time`).
# HOURS=168 SPEED=600 takes about 17 min to record and 25 GB of disk (WORK, default a
# temporary directory, kept with KEEP=1).
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${HOURS:-168}
speed=${SPEED:-600}
runs=${RUNS:-5}
cargo build --release --locked --bin retina-record
bin=$PWD/target/release/retina-record
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

# One file a second of wall time; the recorder is started again whenever it stops before the
# set is whole (at 600x, a sync stalled for 0.14 s leaves it 2,048 frames behind, and it stops:
# each restart is a gap, as under systemd), so the set holds HOURS * 6 files.
want=$((hours * 6))
segment=$((600 / speed))
[ "$segment" -ge 1 ] || { echo "SPEED above 600 makes segments under 1 s" >&2; exit 1; }
while [ "$(find "$work/rec" -name '*.mp4' 2>/dev/null | wc -l)" -lt "$want" ]; do
  have=$(find "$work/rec" -name '*.mp4' 2>/dev/null | wc -l)
  rm -f "$work/url"
  "$bin" camera --listen 127.0.0.1:0 --speed "$speed" > "$work/url" 2>/dev/null &
  for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
  "$bin" --quiet --url "$(head -1 "$work/url")" --duration $(((want - have) * segment)) \
    --segment-duration "${segment}s" "$work/rec/%Y%m%d/%H%M%S.mp4" || echo "restarting at $have files"
  kill $(jobs -p)
  wait 2>/dev/null || true
done
files=$(find "$work/rec" -name '*.mp4' | wc -l)
echo "recording: $files files, $(du -sh "$work/rec" | cut -f1)"
# A segment from the middle of the set (30 s from its third minute), and the set's middle by
# receive time.
segment=$(find "$work/rec" -name '*.mp4' | sort | sed -n "$(((files + 1) / 2))p")
middle=$(find "$work/rec" -name '*.mp4' | sort | sed -n '1p;$p' | xargs stat -c %Y |
  awk 'NR == 1 {a = $1} NR == 2 {print int(($1 - a) / 2)}')
media=$(awk -v s="$speed" 'BEGIN {print 30 / s}')

run() { # name, then the command; its stdout is discarded (an export's files are removed first)
  local name=$1; shift
  rm -f "$work"/out-*.mp4
  /usr/bin/time -v "$@" 2> "$work/time" > /dev/null || { cat "$work/time"; exit 1; }
  awk -v name="$name" -F': ' '
    /Elapsed/ {n = split($2, t, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + t[i]}
    /User time/ {u = $2} /System time/ {s = $2} /Maximum resident/ {r = $2}
    END {printf "%s wall %.3f rss %.1f cpu %.3f\n", name, w, r / 1024, u + s}' "$work/time"
}
for i in $(seq "$runs"); do
  run list "$bin" list "$work/rec"
  run export-week "$bin" export --by recv --from "+${middle}s" --duration "${media}s" \
    -o "$work/out-week.mp4" "$work/rec"
  run export-file "$bin" export --from +120s --duration 30s -o "$work/out-file.mp4" "$segment"
  run ffmpeg-file ffmpeg -v error -y -ss 120 -to 150 -i "$segment" -c copy "$work/out-ffmpeg.mp4"
done | tee "$work/runs"
for name in list export-week export-file ffmpeg-file; do
  awk -v n="$name" '$1 == n {print $3, $5, $7}' "$work/runs" | sort -n |
    awk -v n="$name" '{w[NR] = $1; r[NR] = $2; c[NR] = $3} END {
      m = int((NR + 1) / 2)
      printf "%-12s median wall %.3f s, CPU %.3f s, peak RSS %s MiB\n", n, w[m], c[m], r[m]}'
done
