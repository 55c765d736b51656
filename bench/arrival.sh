#!/usr/bin/env bash
# recv against the kernel's arrival, RTSP and RTSPS side by side: one build of retina-record
# (BIN) records the stream of record-60s.sh (720p25 H.264 at 4 Mbit/s + AAC) for SECONDS_TO_RECORD (default 20) seconds over each way in
# SIDES (default "RTSP RTSPS"; a side ending in +kt adds --kernel-timestamps) while tcpdump
# captures the camera's port on loopback with nanosecond times; bench/arrival.py joins each
# video frame's recv time (from `timing`) with the kernel's arrival of the segment that
# completed it (for RTSPS decrypted by tshark with the camera's $SSLKEYLOGFILE). LOAD=fsync runs
# a disk-sync loop beside the recorder (the wake-up delays a loaded machine adds).
# Usage: bench/arrival.sh BIN   (as root; needs `apt-get install -y ffmpeg tcpdump tshark`)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1
seconds=${SECONDS_TO_RECORD:-20}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

source bench/lib.sh
make_clip "$work"
start_camera() { # name, flags…
  local name=$1
  shift
  SSLKEYLOGFILE="$work/$name.keys" "$bin" camera --listen 127.0.0.1:0 --clip "$work/clip.mp4" "$@" \
    > "$work/$name.url" 2> "$work/$name.log" &
  for _ in $(seq 100); do [ -s "$work/$name.url" ] && break; sleep 0.1; done
}
start_camera plain
start_camera tls --tls
pin=$(grep -o 'sha256:[0-9a-f]*' "$work/tls.log" | head -1)
if [ "${LOAD:-}" = fsync ]; then
  while :; do dd if=/dev/zero of="$work/load" bs=1M count=64 conv=fsync status=none; done &
fi

for side in ${SIDES:-RTSP RTSPS}; do
  flags=()
  case $side in RTSPS*) camera=tls; flags=(--tls-fingerprint "$pin") ;; *) camera=plain ;; esac
  case $side in *+kt) flags+=(--kernel-timestamps) ;; esac
  url=$(cat "$work/$camera.url")
  port=${url##*:}
  port=${port%%/*}
  rm -f "$work/cap.pcap" "$work/rec.mp4" "$work/tcpdump.log"
  tcpdump -i lo -n -U --time-stamp-precision=nano -w "$work/cap.pcap" "tcp port $port" \
    2> "$work/tcpdump.log" &
  capture=$!
  for _ in $(seq 100); do grep -q listening "$work/tcpdump.log" && break; sleep 0.1; done
  "$bin" --quiet --url "$url" "${flags[@]}" --duration "$seconds" "$work/rec.mp4"
  kill -INT "$capture"
  wait "$capture" || true
  "$bin" timing "$work/rec.mp4" > "$work/timing.csv"
  tshark -r "$work/cap.pcap" -o "tls.keylog_file:$work/$camera.keys" -Y "tcp.srcport==$port" \
    -T fields -e tcp.stream -e frame.time_epoch -e "$([ $camera = tls ] && echo data.data ||
      echo tcp.payload)" 2> /dev/null | bench/arrival.py "$work/timing.csv" "$side"
done
