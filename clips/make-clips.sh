#!/usr/bin/env bash
# Makes the camera's clips (built into the binary; the tests use them too). Run from
# anywhere; writes next to this script.
#
# Each video clip is a fragmented MP4 (the project's own reader parses it; the camera serves its
# samples with their exact decode order and presentation times): 320x240-ish, 25 fps, one
# keyframe per second, AAC-LC mono 16 kHz. Video timescale 90 kHz, as RTP's.
#
#   h264_aac.mp4      H.264 Main, no B-frames            (4 s)
#   h264_bframes.mp4  H.264 Main, 2 B-frames (pyramid)    (4 s)
#   h264_alt.mp4      as h264_aac but 352x288, High: a different SPS, for parameter changes
#   h265_aac.mp4      H.265 Main, no B-frames            (4 s)
#   h265_bframes.mp4  H.265 Main, 3 B-frames, open GOP: CRA keyframes (every 24 frames)
#                     with RASL pictures           (4 s)
#   h265_alt.mp4      as h265_aac but 352x288: different VPS/SPS/PPS, for parameter changes
#
# The G.711 audio is raw (G.711 has no MP4 form; the camera packetizes it 20 ms per packet),
# the same 440 Hz tone, 4 s, mono:
#
#   tone_8k.pcmu      µ-law, 8 kHz (RTP payload type 0, what most cameras send)
#   tone_16k.pcma     A-law, 16 kHz (a dynamic payload type: a rate other than G.711's 8 kHz)
set -euo pipefail
cd "$(dirname "$0")"

# make_non_negative: ffmpeg's default would stretch the first video frame to absorb AAC priming.
frag=(-avoid_negative_ts make_non_negative -movflags +frag_keyframe+empty_moov+default_base_moof -video_track_timescale 90000)
audio=(-f lavfi -i "sine=frequency=440:sample_rate=16000:duration=4" -c:a aac -b:a 32k -ac 1)
x264=(-c:v libx264 -preset veryfast -g 25 -keyint_min 25 -sc_threshold 0 -pix_fmt yuv420p)
x265=(-c:v libx265 -preset veryfast -pix_fmt yuv420p -tag:v hvc1)

make() {
  local out=$1 size=$2; shift 2
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=$size:rate=25:duration=4" "${audio[@]}" \
    "$@" "${frag[@]}" -shortest "$out"
}

make h264_aac.mp4 320x240 "${x264[@]}" -profile:v main -bf 0 -b:v 300k
make h264_bframes.mp4 320x240 "${x264[@]}" -profile:v main -bf 2 -b_strategy 0 -x264-params b-pyramid=normal -b:v 300k
make h264_alt.mp4 352x288 "${x264[@]}" -profile:v high -bf 0 -b:v 300k
make h265_aac.mp4 320x240 "${x265[@]}" -b:v 300k \
  -x265-params log-level=error:keyint=25:min-keyint=25:scenecut=0:bframes=0:info=0
make h265_bframes.mp4 320x240 "${x265[@]}" -b:v 300k \
  -x265-params log-level=error:keyint=24:min-keyint=24:scenecut=0:bframes=3:b-adapt=0:info=0
make h265_alt.mp4 352x288 "${x265[@]}" -b:v 300k \
  -x265-params log-level=error:keyint=25:min-keyint=25:scenecut=0:bframes=0:info=0

tone() {
  local out=$1 rate=$2 format=$3
  ffmpeg -v error -y -f lavfi -i "sine=frequency=440:sample_rate=$rate:duration=4" -ac 1 -f "$format" "$out"
}
tone tone_8k.pcmu 8000 mulaw
tone tone_16k.pcma 16000 alaw
ls -l ./*.mp4 ./tone_*
