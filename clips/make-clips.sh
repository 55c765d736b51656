#!/usr/bin/env bash
# Makes the camera's clips (built into the binary; the tests use them too). Run from
# anywhere; writes next to this script.
#
# Each clip is a fragmented MP4 (the project's own reader parses it; the camera serves its
# samples with their exact decode order and presentation times): 320x240-ish, 25 fps, one
# keyframe per second, AAC-LC mono 16 kHz. Video timescale 90 kHz, as RTP's.
#
#   h264_aac.mp4      H.264 Main, no B-frames            (4 s)
#   h264_bframes.mp4  H.264 Main, 2 B-frames (pyramid)    (4 s)
#   h264_alt.mp4      as h264_aac but 352x288, High: a different SPS, for parameter changes
set -euo pipefail
cd "$(dirname "$0")"

# make_non_negative: ffmpeg's default would stretch the first video frame to absorb AAC priming.
frag=(-avoid_negative_ts make_non_negative -movflags +frag_keyframe+empty_moov+default_base_moof -video_track_timescale 90000)
audio=(-f lavfi -i "sine=frequency=440:sample_rate=16000:duration=4" -c:a aac -b:a 32k -ac 1)
x264=(-c:v libx264 -preset veryfast -g 25 -keyint_min 25 -sc_threshold 0 -pix_fmt yuv420p)

make() {
  local out=$1 size=$2; shift 2
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=$size:rate=25:duration=4" "${audio[@]}" \
    "${x264[@]}" "$@" "${frag[@]}" -shortest "$out"
}

make h264_aac.mp4 320x240 -profile:v main -bf 0 -b:v 300k
make h264_bframes.mp4 320x240 -profile:v main -bf 2 -b_strategy 0 -x264-params b-pyramid=normal -b:v 300k
make h264_alt.mp4 352x288 -profile:v high -bf 0 -b:v 300k
ls -l ./*.mp4
