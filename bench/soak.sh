#!/usr/bin/env bash
# The soak: one retina-record process records CAMERAS (10) built-in cameras from a site file for
# SOAK_SECONDS (7200), while each camera is killed and restarted (an OUTAGE-second outage, 5)
# every DROP_EVERY seconds (600), the cameras' drops spread evenly over that interval. Every
# 10 s it samples the recorder's RSS, file descriptors and threads; every minute it scrapes
# /metrics. At the end it stops the recorder with SIGTERM and bench/soak-report.py says whether
# RSS stayed flat (first vs last 10 minutes), descriptors did not grow, and no frame was lost
# outside the outages (each gap in each camera's recording must fall in one of its outages).
#
#   bench/soak.sh                     # two hours; SOAK_DIR keeps everything (default: mktemp)
#   SOAK_SECONDS=900 DROP_EVERY=120 SEGMENT=1m bench/soak.sh   # a quick look
# Ports: cameras at PORT_BASE (21000) + i, so that two soaks can run side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
cameras=${CAMERAS:-10}
seconds=${SOAK_SECONDS:-7200}
drop_every=${DROP_EVERY:-600}
outage=${OUTAGE:-5}
segment=${SEGMENT:-10m}
dir=${SOAK_DIR:-$(mktemp -d)}
mkdir -p "$dir"
# A copy: rebuilding during the soak must not change what runs. RECORDER=path soaks that build.
if [ -z "${RECORDER:-}" ]; then
  cargo build --release --locked --bin retina-record
  RECORDER=target/release/retina-record
fi
cp "$RECORDER" "$dir/retina-record"
bin=$dir/retina-record
git rev-parse HEAD > "$dir/commit" 2>/dev/null || true
echo "soak in $dir: $cameras cameras, ${seconds} s, each dropped for ${outage} s every ${drop_every} s"

port() { echo $((${PORT_BASE:-21000} + $1)); }
start_camera() {
  "$bin" camera --listen "127.0.0.1:$(port "$1")" >> "$dir/camera$1.log" 2>&1 &
  echo $! > "$dir/camera$1.pid"
}
pids=()
cleanup() {
  for i in $(seq 0 $((cameras - 1))); do
    [ -f "$dir/camera$i.pid" ] && kill "$(cat "$dir/camera$i.pid")" 2>/dev/null || true
  done
  kill "${pids[@]}" 2>/dev/null || true
}
trap cleanup EXIT

{
  echo '[defaults]'
  echo "output = \"$dir/rec/{camera}/%Y%m%d-%H%M%S.mp4\""
  echo "segment-duration = \"$segment\""
  echo 'reconnect-max-delay = "2s"'
  for i in $(seq 0 $((cameras - 1))); do
    printf '\n[camera.c%02d]\nurl = "rtsp://127.0.0.1:%s/"\n' "$i" "$(port "$i")"
  done
} > "$dir/site.toml"

for i in $(seq 0 $((cameras - 1))); do start_camera "$i"; done
sleep 1
metrics=127.0.0.1:$((22000 + RANDOM % 1000))
"$bin" --config "$dir/site.toml" --metrics "$metrics" > "$dir/recorder.log" 2>&1 &
recorder=$!
pids+=("$recorder")
t0=$(date +%s)
echo "$t0" > "$dir/t0"

# Samples: unix time, RSS kB, open descriptors, threads.
echo "unix,rss_kb,fds,threads" > "$dir/samples.csv"
(
  while kill -0 "$recorder" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$recorder/status" 2>/dev/null || echo)
    threads=$(awk '/^Threads/ {print $2}' "/proc/$recorder/status" 2>/dev/null || echo)
    fds=$(ls "/proc/$recorder/fd" 2>/dev/null | wc -l)
    [ -n "$rss" ] && echo "$(date +%s),$rss,$fds,$threads" >> "$dir/samples.csv"
    sleep 10
  done
) &
pids+=($!)
# Where that RSS is (binary, heap, arenas, stacks), every minute: it tells a leak from a
# high-water mark.
python3 bench/rss-by-kind.py "$recorder" "$dir/rss-by-kind.csv" &
pids+=($!)
mkdir -p "$dir/metrics"
(
  n=0
  while kill -0 "$recorder" 2>/dev/null; do
    sleep 60
    n=$((n + 1))
    curl -s --max-time 5 "http://$metrics/metrics" > "$dir/metrics/$(printf %04d $n).txt" || true
  done
) &
pids+=($!)

# Outages: camera i goes down at i * drop_every / cameras + k * drop_every (k ≥ 0), for
# `outage` seconds. Logged as `camera,down_unix,up_unix`.
echo "camera,down_unix,up_unix" > "$dir/outages.csv"
spacing=$((drop_every / cameras))
next=()
for i in $(seq 0 $((cameras - 1))); do next[i]=$((t0 + spacing * i + spacing / 2)); done
while [ $(($(date +%s) - t0)) -lt "$seconds" ]; do
  now=$(date +%s)
  for i in $(seq 0 $((cameras - 1))); do
    if [ "$now" -ge "${next[i]}" ] && [ $((next[i] + outage + 5)) -lt $((t0 + seconds)) ]; then
      down=$(date +%s.%N)
      kill "$(cat "$dir/camera$i.pid")"
      wait "$(cat "$dir/camera$i.pid")" 2>/dev/null || true
      sleep "$outage"
      start_camera "$i"
      printf 'c%02d,%s,%s\n' "$i" "$down" "$(date +%s.%N)" >> "$dir/outages.csv"
      next[i]=$((next[i] + drop_every))
    fi
  done
  sleep 1
done

kill -TERM "$recorder"
status=0
wait "$recorder" || status=$?
echo "$status" > "$dir/exit-status"
echo "recorder exited with $status"
python3 bench/soak-report.py "$dir"
