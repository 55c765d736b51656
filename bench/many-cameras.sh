#!/usr/bin/env bash
# N cameras recorded for SECONDS_TO_RECORD (30) s, by one retina-record process (a site file)
# and by N separate processes, each camera 720p25 4 Mbit/s H.264 + AAC served over loopback TCP
# by `retina-record camera --clip` (one camera process per CLIENTS_PER_CAMERA (25) recorders).
# Prints, per N and way: CPU seconds per camera-minute (the recorders' user + system), peak RSS
# (one process: its peak; separate: the sum of each one's peak), fragment syncs per second (each
# fragment is fdatasync'ed once), and what the recorders lost: RTP packets, and frames short of
# the 25 per second the cameras send (a recorder that falls behind makes TCP hold the camera back).
#
#   bench/many-cameras.sh                 # N = 1 10 50 100 200
#   bench/many-cameras.sh 100             # one N
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

printf '%5s %-9s %14s %13s %11s %9s %12s %s\n' N way "CPU s/cam-min" "peak RSS MiB" "RSS/cam MiB" \
  "syncs/s" "lost packets" "frames short (worst camera)"
for n in "${counts[@]}"; do
  run=$work/$n
  mkdir -p "$run"
  cameras=$(((n + per_camera - 1) / per_camera))
  urls=()
  for c in $(seq "$cameras"); do
    serve "$bin" "$work/clip.mp4" "$run/url$c"
    urls+=("$(cat "$run/url$c")")
  done
  url_of() { echo "${urls[$(($1 % cameras))]}"; }

  # One process, from a site file.
  mkdir -p "$run/one"
  {
    printf '[defaults]\noutput = "%s/one/{camera}.mp4"\n' "$run"
    for i in $(seq 0 $((n - 1))); do printf '\n[camera.c%03d]\nurl = "%s"\n' "$i" "$(url_of "$i")"; done
  } > "$run/site.toml"
  /usr/bin/time -f "%U %S %M" -o "$run/one.time" \
    "$bin" --config "$run/site.toml" --duration "$seconds" 2> "$run/one.log" > /dev/null

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
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true

  python3 - "$run" "$n" "$seconds" <<'PY'
import glob, re, sys
run, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
expected = 25 * seconds
def parse(times, logs):
    cpu = rss = 0.0
    for t in times:
        u, s, m = open(t).read().split()[-3:]
        cpu += float(u) + float(s); rss += int(m) / 1024
    text = "".join(open(l).read() for l in logs)
    frames = [int(x) for x in re.findall(r"s, (\d+) video frames", text)]
    fragments = sum(int(x) for x in re.findall(r"(\d+) fragments", text))
    lost = sum(int(x) for x in re.findall(r"(\d+) packets lost", text))
    short = max(0, expected - min(frames)) if len(frames) == n else "a camera wrote nothing"
    return cpu, rss, fragments, lost, short, len(frames)
for way, times, logs in [
    ("one", [f"{run}/one.time"], [f"{run}/one.log"]),
    ("separate", sorted(glob.glob(f"{run}/sep/*.time")), sorted(glob.glob(f"{run}/sep/*.log"))),
]:
    cpu, rss, fragments, lost, short, files = parse(times, logs)
    print(f"{n:5d} {way:<9s} {cpu / n / (seconds / 60):14.3f} {rss:13.1f} {rss / n:11.2f} "
          f"{fragments / seconds:9.1f} {lost:12d} {short} ({files} of {n} cameras recorded)")
PY
  rm -rf "$run"
done
