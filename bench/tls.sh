#!/usr/bin/env bash
# RTSP against RTSPS on the same stream: one build of retina-record (BIN) records the stream of
# record-60s.sh (720p25 H.264 at 4 Mbit/s + AAC) from two `retina-record camera`s serving the
# same clip, one plain, one over TLS (`--tls`, a self-signed certificate, pinned), for
# SECONDS_TO_RECORD (default 60) seconds each, alternating for PAIRS (default 3) pairs. One line
# per run: CPU (user + sys) and peak RSS, from GNU time; then each side's median and the ratio.
# Usage: bench/tls.sh BIN   (needs ffmpeg and GNU time: `apt-get install -y ffmpeg time`)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1
seconds=${SECONDS_TO_RECORD:-60}
pairs=${PAIRS:-3}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

source bench/lib.sh
make_clip "$work"
serve "$bin" "$work/clip.mp4" "$work/url"
"$bin" camera --listen 127.0.0.1:0 --clip "$work/clip.mp4" --tls > "$work/tls-url" 2> "$work/tls-log" &
for _ in $(seq 100); do [ -s "$work/tls-url" ] && break; sleep 0.1; done
pin=$(grep -o 'sha256:[0-9a-f]*' "$work/tls-log" | head -1)

run() { # side, url, pair, flags…
  local side=$1 url=$2 pair=$3
  shift 3
  rm -f "$work/rec.mp4"
  /usr/bin/time -v "$bin" --quiet --url "$url" "$@" --duration "$seconds" "$work/rec.mp4" \
    2> "$work/time" > /dev/null || { cat "$work/time"; exit 1; }
  awk -v side="$side" -v pair="$pair" -F': ' '
    /User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2}
    END {printf "%s %s cpu %.2f rss %.1f\n", side, pair, u+s, r/1024}' "$work/time"
}
for i in $(seq "$pairs"); do
  run RTSP "$(cat "$work/url")" "$i" | tee -a "$work/runs"
  run RTSPS "$(cat "$work/tls-url")" "$i" --tls-fingerprint "$pin" | tee -a "$work/runs"
done
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
for side in RTSP RTSPS; do
  cpu=$(awk -v s="$side" '$1 == s {print $4}' "$work/runs" | median)
  rss=$(awk -v s="$side" '$1 == s {print $6}' "$work/runs" | median)
  echo "$side median of $pairs: CPU $cpu s, peak RSS $rss MiB"
  eval "cpu_$side=$cpu"
done
awk -v a="$cpu_RTSP" -v b="$cpu_RTSPS" 'BEGIN {printf "RTSPS / RTSP CPU: %.2f\n", b / a}'
