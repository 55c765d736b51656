#!/usr/bin/env bash
# `retina-record timing` at lab scale: HOURS of 25 fps media (the built-in camera's H.264 + AAC
# clip) recorded fast (the camera at --speed SPEED) in 10-minute segments, then read by
# `timing` (the CSV rows, and --summary) and by `ffprobe -show_packets` (what a user would run
# instead), alternating, RUNS times each: wall time, CPU (user + sys), frames per second and
# peak RSS, medians; and `timing --align` of four cameras (the same files four times).
# Needs ffmpeg and GNU time (`apt-get install -y ffmpeg time`). HOURS=24 SPEED=600 takes about
# 2.5 min to record and 3.6 GB of disk (WORK, default a temporary directory, kept with KEEP=1).
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${HOURS:-24}
speed=${SPEED:-600}
runs=${RUNS:-3}
cargo build --release --locked --bin retina-record
bin=$PWD/target/release/retina-record
work=${WORK:-$(mktemp -d)}
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

if [ ! -d "$work/rec" ]; then
  "$bin" camera --listen 127.0.0.1:0 --speed "$speed" > "$work/url" 2>/dev/null &
  for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
  # Ten minutes of media a segment: segments are cut by this machine's clock.
  segment=$((600 / speed))
  [ "$segment" -ge 1 ] || { echo "SPEED above 600 makes segments under 1 s" >&2; exit 1; }
  "$bin" --quiet --url "$(head -1 "$work/url")" --duration $((hours * 3600 / speed)) \
    --segment-duration "${segment}s" "$work/rec/%Y%m%d/%H%M%S.mp4"
  kill $(jobs -p)
fi
files=$(find "$work/rec" -name '*.mp4' | wc -l)
frames=$("$bin" timing --summary --json "$work/rec" | python3 -c \
  'import json, sys; s = json.load(sys.stdin)["whole"]; print(s["frames"])')
echo "recording: $files files, $frames frames, $(du -sh "$work/rec" | cut -f1)"
# All segments' video packets, one ffprobe per file (it takes one input).
cat > "$work/ffprobe.sh" <<'SH'
find "$1" -name '*.mp4' | sort | while read -r f; do
  ffprobe -v error -select_streams v -show_packets "$f"
done
SH

run() { # name, then the command; its stdout is discarded
  local name=$1; shift
  /usr/bin/time -v "$@" 2> "$work/time" > /dev/null || { cat "$work/time"; exit 1; }
  awk -v name="$name" -v frames="$frames" -F': ' '
    /Elapsed/ {n = split($2, t, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + t[i]}
    /User time/ {u = $2} /System time/ {s = $2} /Maximum resident/ {r = $2}
    END {printf "%s wall %.2f rss %.1f fps %.0f cpu %.2f\n", name, w, r / 1024, frames / w, u + s}' \
    "$work/time"
}
for i in $(seq "$runs"); do
  run csv "$bin" timing "$work/rec"
  run summary "$bin" timing --summary "$work/rec"
  run ffprobe bash "$work/ffprobe.sh" "$work/rec"
  run align4 "$bin" timing --align "$work/rec" "$work/rec" "$work/rec" "$work/rec"
done | tee "$work/runs"
for name in csv summary ffprobe align4; do
  awk -v n="$name" '$1 == n {print $3, $5, $7, $9}' "$work/runs" | sort -n |
    awk -v n="$name" '{w[NR] = $1; r[NR] = $2; f[NR] = $3; c[NR] = $4} END {
      m = int((NR + 1) / 2)
      printf "%-8s median wall %.2f s, CPU %.2f s, %s frames/s, peak RSS %s MiB\n", n, w[m], c[m], f[m], r[m]}'
done
