//! What the camera serves: clips read from fragmented MP4 (the built-in ones, or a file), their
//! video as NAL units and their audio as frames, ready to packetize.

use std::path::Path;

use anyhow::{Context as _, bail, ensure};

use crate::codec::g711;
use crate::codec::h26x::{self, VideoCodec};
use crate::mp4::read::{Recording, Track};

/// The clips built into the binary (see `clips/make-clips.sh`): 320x240 25 fps + AAC-LC 16 kHz
/// mono, 4 s; and the same tone as raw G.711.
const BUILTIN_H264_AAC: &[u8] = include_bytes!("../../clips/h264_aac.mp4");
const BUILTIN_H265_AAC: &[u8] = include_bytes!("../../clips/h265_aac.mp4");
const TONE_PCMU_8K: &[u8] = include_bytes!("../../clips/tone_8k.pcmu");
const TONE_PCMA_16K: &[u8] = include_bytes!("../../clips/tone_16k.pcma");

/// The largest AAC access unit RFC 3640's `AAC-hbr` mode can announce (a 13-bit size).
const MAX_AAC_AU_BYTES: usize = (1 << 13) - 1;

/// The audio a built-in clip comes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinAudio {
    /// AAC-LC, 16 kHz mono.
    Aac,
    /// G.711 µ-law, 8 kHz (RTP payload type 0).
    Pcmu,
    /// G.711 A-law at 16 kHz, a rate other than G.711's usual one, on purpose (dynamic type).
    Pcma,
    /// 16-bit linear PCM, 16 kHz.
    L16,
    /// No audio stream.
    None,
}

impl BuiltinAudio {
    /// Every choice, in the order help texts list them.
    pub const ALL: [BuiltinAudio; 5] = [
        BuiltinAudio::Aac,
        BuiltinAudio::Pcmu,
        BuiltinAudio::Pcma,
        BuiltinAudio::L16,
        BuiltinAudio::None,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinAudio::Aac => "aac",
            BuiltinAudio::Pcmu => "pcmu",
            BuiltinAudio::Pcma => "pcma",
            BuiltinAudio::L16 => "l16",
            BuiltinAudio::None => "none",
        }
    }
}

impl std::str::FromStr for BuiltinAudio {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "aac" => BuiltinAudio::Aac,
            "pcmu" => BuiltinAudio::Pcmu,
            "pcma" => BuiltinAudio::Pcma,
            "l16" => BuiltinAudio::L16,
            "none" => BuiltinAudio::None,
            _ => return Err(format!("the built-in camera has no {s} audio")),
        })
    }
}

/// The audio codecs the camera serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AudioCodec {
    /// AAC with its AudioSpecificConfig.
    Aac(Vec<u8>),
    Pcmu,
    Pcma,
    /// 16-bit big-endian linear PCM.
    L16,
}

/// A clip's audio: frames of `(time at rate, payload)`.
pub(crate) struct ClipAudio {
    pub codec: AudioCodec,
    pub rate: u32,
    pub frames: Vec<(i64, Vec<u8>)>,
}

impl ClipAudio {
    /// Raw samples cut into 20 ms frames, as cameras packetize G.711 (RFC 3551 §4.2).
    fn raw(codec: AudioCodec, rate: u32, bytes_per_sample: usize, samples: &[u8]) -> ClipAudio {
        let per_frame = rate as usize / 50;
        let frames = samples
            .chunks(per_frame * bytes_per_sample)
            .enumerate()
            .map(|(i, chunk)| ((i * per_frame) as i64, chunk.to_vec()))
            .collect();
        ClipAudio {
            codec,
            rate,
            frames,
        }
    }
}

/// A video frame of a clip, at 90 kHz.
pub(crate) struct ClipFrame {
    pub dts: i64,
    pub pts: i64,
    pub keyframe: bool,
    pub nals: Vec<Vec<u8>>,
}

/// One clip's samples, ready to send.
pub struct Clip {
    pub(crate) codec: VideoCodec,
    /// Sent before every keyframe, and in the SDP: H.264 SPS, PPS; H.265 VPS, SPS, PPS.
    pub(crate) parameter_sets: Vec<Vec<u8>>,
    pub(crate) video: Vec<ClipFrame>,
    pub(crate) audio: Option<ClipAudio>,
    /// Video length at 90 kHz: the timestamp offset of the next loop.
    pub(crate) duration: i64,
}

impl Clip {
    /// The clip built into the binary for `video` with `audio`.
    pub fn builtin(video: VideoCodec, audio: BuiltinAudio) -> anyhow::Result<Clip> {
        let mp4 = match video {
            VideoCodec::H264 => BUILTIN_H264_AAC,
            VideoCodec::H265 => BUILTIN_H265_AAC,
        };
        let mut clip = Clip::from_recording(&Recording::from_bytes(mp4)?)?;
        clip.audio = match audio {
            BuiltinAudio::Aac => clip.audio,
            BuiltinAudio::None => None,
            BuiltinAudio::Pcmu => Some(ClipAudio::raw(AudioCodec::Pcmu, 8000, 1, TONE_PCMU_8K)),
            BuiltinAudio::Pcma => Some(ClipAudio::raw(AudioCodec::Pcma, 16_000, 1, TONE_PCMA_16K)),
            BuiltinAudio::L16 => {
                let mut linear = Vec::new();
                g711::expand_be(g711::Law::A, TONE_PCMA_16K, &mut linear);
                Some(ClipAudio::raw(AudioCodec::L16, 16_000, 2, &linear))
            }
        };
        Ok(clip)
    }

    /// A clip from a fragmented MP4 file (H.264 or H.265 at 90 kHz, optional AAC).
    pub fn from_file(path: &Path) -> anyhow::Result<Clip> {
        Clip::from_recording(&Recording::open(path)?)
            .with_context(|| format!("clip {}", path.display()))
    }

    fn from_recording(rec: &Recording) -> anyhow::Result<Clip> {
        let v = rec.video_track().context("no video track")?;
        ensure!(v.timescale == 90_000, "video timescale must be 90 kHz");
        let (codec, parameter_sets) = parameter_sets(v)?;
        let mut video = Vec::new();
        let mut duration = 0;
        for s in rec.track_samples(v.track_id) {
            let data = rec.read_sample(s)?;
            let nals = h26x::nal_units(&data)
                .map(|n| n.map(<[u8]>::to_vec))
                .collect::<Result<_, _>>()?;
            video.push(ClipFrame {
                dts: s.dts as i64,
                pts: s.pts(),
                keyframe: s.is_sync,
                nals,
            });
            duration = duration.max((s.dts + u64::from(s.duration)) as i64);
        }
        ensure!(!video.is_empty(), "no video samples");
        // Presentation starts at 0 whatever edit the encoder applied.
        let min_pts = video.iter().map(|f| f.pts).min().unwrap_or(0);
        for f in &mut video {
            f.pts -= min_pts;
        }
        Ok(Clip {
            codec,
            parameter_sets,
            audio: aac(rec, duration)?,
            video,
            duration,
        })
    }

    pub(crate) fn has_audio(&self) -> bool {
        self.audio.is_some()
    }
}

/// The codec of a clip's video and the parameter sets its sample entry carries.
fn parameter_sets(v: &Track) -> anyhow::Result<(VideoCodec, Vec<Vec<u8>>)> {
    match v.sample_entries.first() {
        Some(mp4_atom::Codec::Avc1(avc1)) => {
            let sps = avc1.avcc.sequence_parameter_sets.first();
            let pps = avc1.avcc.picture_parameter_sets.first();
            let (Some(sps), Some(pps)) = (sps, pps) else {
                bail!("no SPS/PPS");
            };
            ensure!(sps.len() >= 4, "SPS too short");
            Ok((VideoCodec::H264, vec![sps.clone(), pps.clone()]))
        }
        Some(mp4_atom::Codec::Hvc1(hvc1)) => {
            let mut sets = Vec::new();
            for t in h26x::H265_PARAMETER_SET_TYPES {
                let set = hvc1.hvcc.arrays.iter().find(|a| a.nal_unit_type == t);
                let Some(nal) = set.and_then(|a| a.nalus.first()) else {
                    bail!("no NAL unit of type {t} in hvcC");
                };
                sets.push(nal.clone());
            }
            Ok((VideoCodec::H265, sets))
        }
        _ => bail!("video is neither avc1 nor hvc1"),
    }
}

/// The clip's AAC audio, if it has any: the frames that end within the video's `duration` (a
/// looping clip's audio must not overlap itself at the join; no camera's does).
fn aac(rec: &Recording, duration: i64) -> anyhow::Result<Option<ClipAudio>> {
    let Some(a) = rec.audio_track() else {
        return Ok(None);
    };
    let Some(mp4_atom::Codec::Mp4a(mp4a)) = a.sample_entries.first() else {
        return Ok(None);
    };
    let Some(ds) = &mp4a.esds.es_desc.dec_config.dec_specific else {
        return Ok(None);
    };
    let mut config = ds.raw.clone();
    if config.is_empty() {
        config = vec![
            (ds.profile << 3) | (ds.freq_index >> 1),
            (ds.freq_index << 7) | (ds.chan_conf << 3),
        ];
    }
    let end = duration * i64::from(a.timescale) / 90_000;
    let mut frames = Vec::new();
    for s in rec.track_samples(a.track_id) {
        if s.dts as i64 + i64::from(s.duration) <= end {
            let au = rec.read_sample(s)?;
            ensure!(
                au.len() <= MAX_AAC_AU_BYTES,
                "an AAC frame of {} bytes is larger than RTP can carry in AAC-hbr mode \
                 ({MAX_AAC_AU_BYTES} bytes)",
                au.len()
            );
            frames.push((s.dts as i64, au));
        }
    }
    Ok((!frames.is_empty()).then_some(ClipAudio {
        codec: AudioCodec::Aac(config),
        rate: a.timescale,
        frames,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for audio in BuiltinAudio::ALL {
            assert_eq!(audio.name().parse(), Ok(audio));
        }
        for video in VideoCodec::ALL {
            assert_eq!(video.name().parse(), Ok(video));
        }
        assert!("opus".parse::<BuiltinAudio>().is_err());
    }

    #[test]
    fn every_builtin_combination_loads() -> anyhow::Result<()> {
        for video in VideoCodec::ALL {
            for audio in BuiltinAudio::ALL {
                let clip = Clip::builtin(video, audio)?;
                assert_eq!(clip.codec, video);
                assert_eq!(clip.has_audio(), audio != BuiltinAudio::None);
            }
        }
        Ok(())
    }
}
