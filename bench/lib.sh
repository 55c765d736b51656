# Shared by the benchmarks (sourced): the stream they record and the camera that serves it.

# make_clip DIR: DIR/clip.mp4, 10 s of 720p25 H.264 at a constant-ish 4 Mbit/s (a keyframe
# every second, no B-frames) with AAC 48 kHz stereo, as `retina-record camera --clip` takes it.
make_clip() {
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=25:duration=10" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=10" -ac 2 -c:a aac -b:a 128k \
    -c:v libx264 -preset veryfast -bf 0 -g 25 -keyint_min 25 -sc_threshold 0 -pix_fmt yuv420p \
    -b:v 4M -minrate 4M -maxrate 4M -bufsize 1M -x264-params nal-hrd=cbr \
    -avoid_negative_ts make_non_negative -movflags +frag_keyframe+empty_moov+default_base_moof \
    -video_track_timescale 90000 -shortest "$1/clip.mp4"
}

# serve BIN CLIP URLFILE [ARGS…]: starts `BIN camera` on a free loopback port in the
# background; its URL ends up in URLFILE once it listens.
serve() {
  local bin=$1 clip=$2 urlfile=$3
  shift 3
  "$bin" camera --listen 127.0.0.1:0 --clip "$clip" "$@" > "$urlfile" 2>/dev/null &
  for _ in $(seq 100); do [ -s "$urlfile" ] && break; sleep 0.1; done
  [ -s "$urlfile" ] || { echo "the camera did not start" >&2; return 1; }
}

# measure SIDE PAIR BIN URL WORKDIR [FLAGS…]: BIN records URL for $seconds seconds into
# WORKDIR/rec.mp4 under GNU time; prints `SIDE PAIR cpu SECONDS rss MIB` (CPU: user + sys).
measure() {
  local side=$1 pair=$2 bin=$3 url=$4 work=$5
  shift 5
  rm -f "$work/rec.mp4"
  /usr/bin/time -v "$bin" --quiet --url "$url" "$@" --duration "$seconds" "$work/rec.mp4" \
    2> "$work/time" > /dev/null || { cat "$work/time"; exit 1; }
  awk -v side="$side" -v pair="$pair" -F': ' '
    /User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2}
    END {printf "%s %s cpu %.2f rss %.1f\n", side, pair, u+s, r/1024}' "$work/time"
}

# medians RUNS SIDE…: each side's median CPU and peak RSS over the lines of measure in RUNS;
# sets cpu_SIDE (a side's characters other than letters and digits become _).
medians() {
  local runs=$1 side cpu rss
  shift
  for side in "$@"; do
    cpu=$(awk -v s="$side" '$1 == s {print $4}' "$runs" | sort -n |
      awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
    rss=$(awk -v s="$side" '$1 == s {print $6}' "$runs" | sort -n |
      awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
    echo "$side median: CPU $cpu s, peak RSS $rss MiB"
    printf -v "cpu_${side//[^A-Za-z0-9]/_}" %s "$cpu"
  done
}
