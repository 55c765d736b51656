#!/usr/bin/env bash
# What the bridge costs (rtsp/bridge/): one build of retina-record (BIN) records the stream of
# record-60s.sh (720p25 H.264 at 4 Mbit/s + AAC) from two `retina-record camera`s serving the
# same clip, one plain, one over TLS (`--tls`, a self-signed certificate, pinned), each way in
# SIDES (default "RTSP RTSPS RTSP+kt RTSPS+kt"; +kt: --kernel-timestamps) in turn, for
# SECONDS_TO_RECORD (default 60) seconds each, PAIRS (default 3) rounds. One line per run: CPU
# (user + sys) and peak RSS, from GNU time; then each side's median and the ratios. SPEED=N
# has the cameras send N times faster than real time (N times the packets: a CPU time N times
# larger, which GNU time's 10 ms steps then measure closer).
# Usage: bench/bridge.sh BIN   (needs ffmpeg and GNU time: `apt-get install -y ffmpeg time`)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1
seconds=${SECONDS_TO_RECORD:-60}
pairs=${PAIRS:-3}
sides=${SIDES:-RTSP RTSPS RTSP+kt RTSPS+kt}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

source bench/lib.sh
make_clip "$work"
speed=(--speed "${SPEED:-1}")
serve "$bin" "$work/clip.mp4" "$work/url" "${speed[@]}"
"$bin" camera --listen 127.0.0.1:0 --clip "$work/clip.mp4" "${speed[@]}" --tls > "$work/tls-url" \
  2> "$work/tls-log" &
for _ in $(seq 100); do [ -s "$work/tls-url" ] && break; sleep 0.1; done
pin=$(grep -o 'sha256:[0-9a-f]*' "$work/tls-log" | head -1)

for i in $(seq "$pairs"); do
  for side in $sides; do
    flags=()
    case $side in
      RTSPS*) url=$(cat "$work/tls-url") flags=(--tls-fingerprint "$pin") ;;
      *) url=$(cat "$work/url") ;;
    esac
    case $side in *+kt) flags+=(--kernel-timestamps) ;; esac
    measure "$side" "$i" "$bin" "$url" "$work" "${flags[@]}" | tee -a "$work/runs"
  done
done
# shellcheck disable=SC2086
medians "$work/runs" $sides
ratio() { awk -v a="$2" -v b="$3" -v what="$1" 'BEGIN {printf "%s CPU: %.2f\n", what, b / a}'; }
ratio "RTSPS / RTSP" "$cpu_RTSP" "$cpu_RTSPS"
[ -n "${cpu_RTSP_kt:-}" ] && ratio "RTSP+kt / RTSP" "$cpu_RTSP" "$cpu_RTSP_kt"
[ -n "${cpu_RTSPS_kt:-}" ] && ratio "RTSPS+kt / RTSPS" "$cpu_RTSPS" "$cpu_RTSPS_kt"
