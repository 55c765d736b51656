//! Which of the camera's streams (its SDP's `m=` lines, RFC 8866 §5.14) to record.
//!
//! [`choose`] decides from plain descriptions and is unit-tested; [`select`] describes a
//! retina session's streams to it, logging each decision.

use retina::client::{Described, Session};
use retina::codec::ParametersRef;

use crate::codec::VideoCodec;
use crate::codec::audio::AudioFormat;
use crate::config::{Field, StreamChoice, Wording};
use crate::error::{Error, Result};
use crate::mp4::{self, entry};

/// The streams to set up, and how each is stored.
pub(crate) struct Selection {
    pub video: Option<(usize, VideoCodec)>,
    pub audio: Option<(usize, mp4::AudioConfig, AudioFormat)>,
    /// Every stream the camera offers, and what was decided about it.
    pub offered: Vec<Offered>,
    /// The streams came over UDP (asked for, or the camera refused TCP).
    pub udp: bool,
    /// Through the bridge (`rtsp/bridge/`): when each packet arrived from the camera, the
    /// streams on interleaved channels 0 and 2 in the order set up.
    pub arrivals: Option<super::bridge::Arrivals>,
    /// Over TLS: the fingerprint of the certificate the camera presented (`sha256:HEX`).
    pub certificate: Option<String>,
}

/// A stream the camera offers, as its SDP describes it, and the decision about it.
#[derive(Clone, Debug)]
pub(crate) struct Offered {
    pub media: String,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
    /// `recording stream 0 (video h264/90000)`, or `ignoring stream 2 (…): why`.
    pub decision: String,
}

impl Selection {
    /// SDP indices of the chosen streams, video first.
    pub(crate) fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        let video = self.video.iter().map(|v| v.0);
        video.chain(self.audio.iter().map(|a| a.0))
    }
}

/// A stream the camera offers, as selection sees it.
pub(crate) struct Offer {
    /// "stream 1 (audio pcmu/8000)", for messages.
    pub what: String,
    pub kind: Kind,
}

pub(crate) enum Kind {
    Video(Result<VideoCodec, String>),
    /// Boxed: a sample entry is large, and most offers are not chosen.
    Audio(Result<Box<(mp4::AudioConfig, AudioFormat)>, String>),
    /// Neither audio nor video.
    Other,
}

/// Picks the video and audio streams to record: the ones `video`/`audio` name, else the first
/// of each kind that can be stored without transcoding. Says what it took, what it ignored
/// and why, through `log` (with the index of the stream each line is about).
pub(crate) fn choose(
    offers: Vec<Offer>,
    video: StreamChoice,
    audio: StreamChoice,
    wording: Wording,
    log: &mut dyn FnMut(usize, String),
) -> Result<Selection> {
    check_indices(&offers, video, audio, wording)?;
    let mut chosen = Selection {
        video: None,
        audio: None,
        offered: Vec::new(),
        udp: false,
        arrivals: None,
        certificate: None,
    };
    for (i, offer) in offers.into_iter().enumerate() {
        let what = offer.what;
        let (kind, choice, taken) = match &offer.kind {
            Kind::Video(_) => ("video", video, chosen.video.map(|v| v.0)),
            Kind::Audio(_) => ("audio", audio, chosen.audio.as_ref().map(|a| a.0)),
            Kind::Other => {
                log(i, format!("ignoring {what}: not audio or video"));
                continue;
            }
        };
        let skip = match (choice, taken) {
            (StreamChoice::Skip, _) => Some(format!("{kind} is left out")),
            (StreamChoice::Index(n), _) if n != i => Some(format!("stream {n} was chosen")),
            (StreamChoice::FirstStorable, Some(t)) => Some(format!("already recording stream {t}")),
            _ => None,
        };
        if let Some(why) = skip {
            log(i, format!("ignoring {what}: {why}"));
            continue;
        }
        let storable = match offer.kind {
            Kind::Video(codec) => codec.map(|c| chosen.video = Some((i, c))),
            Kind::Audio(stored) => stored.map(|b| {
                let (config, format) = *b;
                chosen.audio = Some((i, config, format));
            }),
            Kind::Other => Ok(()),
        };
        match storable {
            Ok(()) => log(i, format!("recording {what}")),
            Err(why) if matches!(choice, StreamChoice::Index(_)) => {
                return Err(Error::usage(format!("{what} cannot be recorded: {why}")));
            }
            Err(why) => log(i, format!("ignoring {what}: {why}")),
        }
    }
    if chosen.video.is_none() && chosen.audio.is_none() {
        return Err(Error::failure(anyhow::anyhow!(
            "the camera offers no stream that can be recorded (see the log above)"
        )));
    }
    Ok(chosen)
}

/// A stream named by index must exist and be of its kind.
fn check_indices(
    offers: &[Offer],
    video: StreamChoice,
    audio: StreamChoice,
    wording: Wording,
) -> Result<()> {
    for (field, choice, a_kind) in [
        (Field::Video, video, "a video"),
        (Field::Audio, audio, "an audio"),
    ] {
        let flag = wording.of(field);
        let StreamChoice::Index(n) = choice else {
            continue;
        };
        let Some(offer) = offers.get(n) else {
            return Err(Error::usage(format!(
                "{flag} {n}: the camera offers {} stream(s), numbered from 0",
                offers.len()
            )));
        };
        let right_kind = match offer.kind {
            Kind::Video(_) => field == Field::Video,
            Kind::Audio(_) => field == Field::Audio,
            Kind::Other => false,
        };
        if !right_kind {
            return Err(Error::usage(format!(
                "{flag} {n}: {} is not {a_kind} stream",
                offer.what
            )));
        }
    }
    Ok(())
}

/// Chooses among a described session's streams, logging each decision (at debug level when
/// `quiet`: a reconnection makes the same choice again).
pub(crate) fn select(
    session: &Session<Described>,
    video: StreamChoice,
    audio: StreamChoice,
    wording: Wording,
    quiet: bool,
) -> Result<Selection> {
    let mut offered: Vec<Offered> = session
        .streams()
        .iter()
        .map(|s| Offered {
            media: s.media().to_owned(),
            encoding: s.encoding_name().to_owned(),
            clock_rate: s.clock_rate_hz(),
            channels: match s.parameters() {
                Some(ParametersRef::Audio(p)) => Some(p.channels().get()),
                _ => None,
            },
            decision: String::new(),
        })
        .collect();
    let offers = session
        .streams()
        .iter()
        .enumerate()
        .map(|(i, s)| Offer {
            what: format!(
                "stream {i} ({} {}/{})",
                s.media(),
                s.encoding_name(),
                s.clock_rate_hz()
            ),
            kind: match s.media() {
                "video" => Kind::Video(s.encoding_name().parse()),
                "audio" => Kind::Audio(audio_storage(s).map(Box::new)),
                _ => Kind::Other,
            },
        })
        .collect();
    let mut chosen = choose(offers, video, audio, wording, &mut |i, line| {
        if let Some(o) = offered.get_mut(i) {
            o.decision.clone_from(&line);
        }
        if quiet {
            tracing::debug!("{line}");
        } else {
            tracing::info!("{line}");
        }
    })?;
    chosen.offered = offered;
    Ok(chosen)
}

/// How an audio stream is stored, or why it cannot be.
fn audio_storage(
    s: &retina::client::Stream,
) -> std::result::Result<(mp4::AudioConfig, AudioFormat), String> {
    let Some(ParametersRef::Audio(params)) = s.parameters() else {
        return Err("its parameters are unknown".into());
    };
    let format = AudioFormat::for_encoding(s.encoding_name(), u32::from(params.channels().get()));
    let sample_entry = if format.is_pcm() {
        entry::pcm(params.clock_rate(), params.channels().get())?
    } else {
        let bytes = params.mp4_sample_entry().build().map_err(|_| {
            let name = s.encoding_name();
            format!("{name} audio cannot be stored in MP4 without transcoding")
        })?;
        entry::from_bytes(&bytes).map_err(|e| format!("its sample entry is unusable: {e}"))?
    };
    let config = mp4::AudioConfig {
        clock_rate: params.clock_rate(),
        sample_entry,
    };
    Ok((config, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers() -> Vec<Offer> {
        let pcm = |rate| {
            let config = mp4::AudioConfig {
                clock_rate: rate,
                sample_entry: entry::pcm(rate, 1).expect("entry"),
            };
            Kind::Audio(Ok(Box::new((config, AudioFormat::for_encoding("pcmu", 1)))))
        };
        let offer = |what: &str, kind| Offer {
            what: what.into(),
            kind,
        };
        vec![
            offer(
                "stream 0 (video h264/90000)",
                Kind::Video(Ok(VideoCodec::H264)),
            ),
            offer("stream 1 (audio opus/48000)", Kind::Audio(Err("no".into()))),
            offer("stream 2 (audio pcmu/8000)", pcm(8000)),
            offer("stream 3 (audio pcma/8000)", pcm(8000)),
            offer("stream 4 (application x/1)", Kind::Other),
        ]
    }

    fn run(video: StreamChoice, audio: StreamChoice) -> (Result<Selection>, Vec<String>) {
        let mut lines = Vec::new();
        // As the command line words them.
        let flags = Wording(|f| match f {
            Field::Video => "--video-stream",
            Field::Audio => "--audio-stream",
            _ => "?",
        });
        let result = choose(offers(), video, audio, flags, &mut |_, l| lines.push(l));
        (result, lines)
    }

    #[test]
    fn defaults_take_the_first_storable_of_each_kind() {
        let (chosen, lines) = run(StreamChoice::FirstStorable, StreamChoice::FirstStorable);
        let chosen = chosen.expect("chosen");
        assert_eq!(chosen.indices().collect::<Vec<_>>(), [0, 2]);
        assert_eq!(
            lines,
            [
                "recording stream 0 (video h264/90000)",
                "ignoring stream 1 (audio opus/48000): no",
                "recording stream 2 (audio pcmu/8000)",
                "ignoring stream 3 (audio pcma/8000): already recording stream 2",
                "ignoring stream 4 (application x/1): not audio or video",
            ]
        );
    }

    #[test]
    fn indices_and_skips() {
        let (chosen, lines) = run(StreamChoice::Skip, StreamChoice::Index(3));
        assert_eq!(chosen.expect("chosen").indices().collect::<Vec<_>>(), [3]);
        assert_eq!(
            lines[0],
            "ignoring stream 0 (video h264/90000): video is left out"
        );
        assert_eq!(
            lines[2],
            "ignoring stream 2 (audio pcmu/8000): stream 3 was chosen"
        );
    }

    #[test]
    fn bad_choices_are_usage_errors() {
        for (video, audio, says) in [
            (
                StreamChoice::Index(9),
                StreamChoice::FirstStorable,
                "--video-stream 9: the camera offers 5 stream(s), numbered from 0",
            ),
            (
                StreamChoice::FirstStorable,
                StreamChoice::Index(0),
                "--audio-stream 0: stream 0 (video h264/90000) is not an audio stream",
            ),
            (
                StreamChoice::FirstStorable,
                StreamChoice::Index(1),
                "stream 1 (audio opus/48000) cannot be recorded: no",
            ),
        ] {
            let e = run(video, audio).0.err().expect("refused");
            assert_eq!((e.to_string().as_str(), e.exit_code()), (says, 2));
        }
        let e = run(StreamChoice::Skip, StreamChoice::Skip)
            .0
            .err()
            .expect("refused");
        assert_eq!(e.exit_code(), 1);
    }
}
