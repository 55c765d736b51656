//! How a camera's audio frames become MP4 samples, per RTP payload format.

use super::g711;

/// How a stream's audio frames become samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AudioFormat {
    /// Access units as received (AAC).
    Coded,
    /// 16-bit big-endian samples as received (L16, RFC 3551 §4.5.11).
    L16 { channels: u32 },
    /// G.711 codes expanded to 16-bit linear PCM.
    G711 { law: g711::Law, channels: u32 },
}

impl AudioFormat {
    /// The format for an RTP `encoding_name` with `channels` channels.
    pub(crate) fn for_encoding(encoding_name: &str, channels: u32) -> AudioFormat {
        match encoding_name {
            "pcmu" => AudioFormat::G711 {
                law: g711::Law::Mu,
                channels,
            },
            "pcma" => AudioFormat::G711 {
                law: g711::Law::A,
                channels,
            },
            "l16" => AudioFormat::L16 { channels },
            _ => AudioFormat::Coded,
        }
    }

    /// Whether samples are stored as 16-bit linear PCM (`twos`) rather than as coded.
    pub(crate) fn is_pcm(self) -> bool {
        !matches!(self, AudioFormat::Coded)
    }

    /// The sample bytes and duration (in the clock rate) of a frame of `frame_length`.
    ///
    /// Retina counts a PCM frame's length in samples of all channels together; a sample's
    /// duration counts each instant once.
    pub(crate) fn to_sample(self, data: &[u8], frame_length: u32) -> (Vec<u8>, u32) {
        match self {
            AudioFormat::Coded => (data.to_vec(), frame_length),
            AudioFormat::L16 { channels } => (data.to_vec(), frame_length / channels.max(1)),
            AudioFormat::G711 { law, channels } => {
                let mut pcm = Vec::new();
                g711::expand_be(law, data, &mut pcm);
                (pcm, frame_length / channels.max(1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_durations_count_each_instant_once() {
        let stereo_l16 = AudioFormat::for_encoding("l16", 2);
        assert_eq!(stereo_l16.to_sample(&[0; 8], 4), (vec![0; 8], 2));
        let mono_pcmu = AudioFormat::for_encoding("pcmu", 1);
        assert_eq!(mono_pcmu.to_sample(&[0xFF, 0x80], 2).0, [0, 0, 0x7D, 0x7C]);
        assert!(!AudioFormat::for_encoding("mpeg4-generic", 1).is_pcm());
    }
}
