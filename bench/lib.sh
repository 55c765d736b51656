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
