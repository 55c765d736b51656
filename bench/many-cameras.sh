#!/usr/bin/env bash
# N cameras recorded for SECONDS_TO_RECORD (30) s, by one retina-record process (a site file)
# and by N separate processes, each camera 720p25 4 Mbit/s H.264 + AAC served over loopback TCP
# by `retina-record camera --clip` (one camera process per CLIENTS_PER_CAMERA (25) recorders).
# Prints, per N and way: CPU seconds per camera-minute (the recorders' user + system), peak RSS
# (one process: its peak; separate: the sum of each one's peak), fragment syncs per second (each
# fragment is fdatasync'ed once), what the recorders lost (RTP packets, and frames missing inside
# the recordings: gaps in `timing --summary`), how far behind the worst camera fell (p99 of
# receive time minus capture time: over TCP a recorder that falls behind holds the camera back
# rather than losing packets), and how busy the machine was (all CPUs, and the cameras' share).
#
#   bench/many-cameras.sh                 # N = 1 10 50 100 200
#   bench/many-cameras.sh 100             # one N
#   KEEP=/tmp/runs bench/many-cameras.sh 400   # keep each N's logs and recordings there
# Needs ffmpeg and GNU time (`apt-get install -y ffmpeg time`).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_TO_RECORD:-30}
per_camera=${CLIENTS_PER_CAMERA:-25}
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 10 50 100 200)
cargo build --release --locked --bin retina-record
bin=$PWD/target/release/retina-record
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source bench/lib.sh
make_clip "$work"

printf '%5s %-9s %14s %13s %11s %8s %6s %7s %9s %6s %8s\n' N way "CPU s/cam-min" "peak RSS MiB" \
  "RSS/cam MiB" "syncs/s" "lost" "missing" "p99 late" "busy" "cameras"
for n in "${counts[@]}"; do
  run=$work/$n
  mkdir -p "$run"
  cameras=$(((n + per_camera - 1) / per_camera))
  urls=()
  camera_pids=()
  for c in $(seq "$cameras"); do
    serve "$bin" "$work/clip.mp4" "$run/url$c"
    camera_pids+=($!)
    urls+=("$(cat "$run/url$c")")
  done
  url_of() { echo "${urls[$(($1 % cameras))]}"; }
  # CPU seconds the camera processes have used, and the machine's busy and total jiffies.
  camera_cpu() { for p in "${camera_pids[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done |
    awk '{s += $1} END {print s / 100}'; }
  machine() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }
  echo "$(camera_cpu) $(machine)" > "$run/before-one"

  # One process, from a site file.
  mkdir -p "$run/one"
  {
    printf '[defaults]\noutput = "%s/one/{camera}.mp4"\n' "$run"
    for i in $(seq 0 $((n - 1))); do printf '\n[camera.c%03d]\nurl = "%s"\n' "$i" "$(url_of "$i")"; done
  } > "$run/site.toml"
  /usr/bin/time -f "%U %S %M" -o "$run/one.time" \
    "$bin" --config "$run/site.toml" --duration "$seconds" 2> "$run/one.log" > /dev/null
  echo "$(camera_cpu) $(machine)" > "$run/after-one"

  # Separate processes, started together.
  mkdir -p "$run/sep"
  pids=()
  for i in $(seq 0 $((n - 1))); do
    /usr/bin/time -f "%U %S %M" -o "$run/sep/$i.time" \
      "$bin" --url "$(url_of "$i")" --duration "$seconds" "$run/sep/$i.mp4" \
      2> "$run/sep/$i.log" > /dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
  echo "$(camera_cpu) $(machine)" > "$run/after-separate"
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true

  python3 bench/many-cameras-report.py "$run" "$n" "$seconds" "$bin"
  [ -n "${KEEP:-}" ] && cp -r "$run" "$KEEP/" # the logs and recordings, to look into
  rm -rf "$run"
done
