//! The header region: `ftyp` + `moov` + `free`, always [`HEADER_SIZE`] bytes, rewritten in
//! place when a sample description is added and on a clean stop (ISO/IEC 14496-12 §4.3, §8.2,
//! §8.3, §8.8.1 for `mvex`).

use mp4_atom::Encode as _;

use super::tracks::Tracks;
use super::{AUDIO_TRACK_ID, Error, HEADER_SIZE, VIDEO_TRACK_ID, entry};

/// Movie timescale (mvhd, tkhd, mehd durations): milliseconds.
const MOVIE_TIMESCALE: u32 = 1000;

/// What a file's header says: when the file was made, which of the video track's sample
/// descriptions it uses, and where each track's media begins and ends in it.
pub(crate) struct Times<'a> {
    /// Seconds since 1904-01-01 (the MP4 epoch).
    pub creation_time: u64,
    /// Durations are written only when finished (while recording they are 0: "as long as the
    /// fragments say").
    pub finished: bool,
    /// Indices into the video track's sample descriptions; all of them if empty.
    pub entries: &'a [usize],
    pub video: Option<Span>,
    pub audio: Option<Span>,
}

/// A track's media in one file, in the track's timescale.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    /// Decode time of its first sample.
    pub first_dts: u64,
    /// The media time presented first (an edit list maps it to the file's time 0).
    pub media_start: u64,
    /// End of its last sample.
    pub end: u64,
}

/// Encodes ftyp + moov + free, exactly [`HEADER_SIZE`] bytes.
pub(crate) fn encode(tracks: &Tracks, times: &Times<'_>) -> Result<Vec<u8>, Error> {
    let moov = moov(tracks, times);
    let mut buf = Vec::with_capacity(HEADER_SIZE);
    mp4_atom::Ftyp {
        major_brand: b"iso5".into(),
        minor_version: 512,
        compatible_brands: vec![b"iso5".into(), b"iso6".into(), b"mp41".into()],
    }
    .encode(&mut buf)?;
    moov.encode(&mut buf)?;
    let free_header = 8;
    if buf.len() + free_header > HEADER_SIZE {
        return Err(Error::HeaderFull {
            needed: buf.len() + free_header,
        });
    }
    mp4_atom::Free {
        zeroed: mp4_atom::Zeroed::new(HEADER_SIZE - buf.len() - free_header),
    }
    .encode(&mut buf)?;
    debug_assert_eq!(buf.len(), HEADER_SIZE);
    Ok(buf)
}

fn moov(tracks: &Tracks, times: &Times<'_>) -> mp4_atom::Moov {
    let t = times.creation_time;
    let mut traks = Vec::new();
    let mut trexs = Vec::new();
    if let Some(v) = &tracks.video {
        let entries: Vec<mp4_atom::Codec> = if times.entries.is_empty() {
            v.sample_entries.clone()
        } else {
            let chosen = times
                .entries
                .iter()
                .filter_map(|&i| v.sample_entries.get(i));
            chosen.cloned().collect()
        };
        let (width, height) = entries
            .first()
            .and_then(entry::visual_size)
            .unwrap_or((0, 0));
        let span = times.video.unwrap_or(Span {
            first_dts: 0,
            media_start: v.presentation_delay.unwrap_or(0),
            end: 0,
        });
        traks.push(trak(TrakParams {
            track_id: VIDEO_TRACK_ID,
            span,
            finished: times.finished,
            creation_time: t,
            timescale: v.clock_rate,
            handler: b"vide",
            handler_name: "VideoHandler",
            width,
            height,
            sample_entries: entries,
        }));
        trexs.push(trex(VIDEO_TRACK_ID));
    }
    if let Some(a) = &tracks.audio {
        let span = times.audio.unwrap_or(Span {
            first_dts: 0,
            media_start: 0,
            end: 0,
        });
        traks.push(trak(TrakParams {
            track_id: AUDIO_TRACK_ID,
            span,
            finished: times.finished,
            creation_time: t,
            timescale: a.clock_rate,
            handler: b"soun",
            handler_name: "SoundHandler",
            width: 0,
            height: 0,
            sample_entries: vec![a.sample_entry.clone()],
        }));
        trexs.push(trex(AUDIO_TRACK_ID));
    }
    let movie_duration = traks.iter().map(|t| t.tkhd.duration).max().unwrap_or(0);
    mp4_atom::Moov {
        mvhd: mp4_atom::Mvhd {
            creation_time: t,
            modification_time: t,
            timescale: MOVIE_TIMESCALE,
            duration: movie_duration,
            rate: mp4_atom::FixedPoint::new(1, 0),
            volume: mp4_atom::FixedPoint::new(1, 0),
            matrix: Default::default(),
            next_track_id: AUDIO_TRACK_ID + 1,
        },
        mvex: Some(mp4_atom::Mvex {
            mehd: times.finished.then_some(mp4_atom::Mehd {
                fragment_duration: movie_duration,
            }),
            trex: trexs,
        }),
        trak: traks,
        ..Default::default()
    }
}

struct TrakParams {
    track_id: u32,
    /// The track's media in the file: an edit list is written when it is not presented from
    /// 0.
    span: Span,
    finished: bool,
    creation_time: u64,
    timescale: u32,
    handler: &'static [u8; 4],
    handler_name: &'static str,
    width: u16,
    height: u16,
    sample_entries: Vec<mp4_atom::Codec>,
}

fn trak(p: TrakParams) -> mp4_atom::Trak {
    let span = p.span;
    // In the media's timescale: what the file holds; in the movie's: what it presents.
    let duration = if p.finished {
        span.end.saturating_sub(span.first_dts)
    } else {
        0
    };
    let presented = if p.finished {
        span.end.saturating_sub(span.media_start)
    } else {
        0
    };
    let movie_duration = to_movie_time(presented, p.timescale);
    let is_video = p.handler == b"vide";
    // §8.6.6: one edit presenting the media from `media_start`. Duration 0 while recording
    // (a fragmented file's edit then extends over all fragments), the real one at the end.
    let edts = (span.media_start > 0).then(|| mp4_atom::Edts {
        elst: Some(mp4_atom::Elst {
            entries: vec![mp4_atom::ElstEntry {
                segment_duration: movie_duration,
                // Only a camera's absurd timestamp jumps get past i64 (the box's type); such a
                // file still plays, from a wrong start.
                media_time: Some(span.media_start.min(i64::MAX as u64)),
                media_rate: mp4_atom::FixedPoint::new(1, 0),
            }],
        }),
    });
    mp4_atom::Trak {
        edts,
        tkhd: mp4_atom::Tkhd {
            creation_time: p.creation_time,
            modification_time: p.creation_time,
            track_id: p.track_id,
            duration: movie_duration,
            enabled: true,
            in_movie: true,
            volume: if is_video {
                mp4_atom::FixedPoint::new(0, 0)
            } else {
                mp4_atom::FixedPoint::new(1, 0)
            },
            width: mp4_atom::FixedPoint::new(p.width, 0),
            height: mp4_atom::FixedPoint::new(p.height, 0),
            ..Default::default()
        },
        mdia: mp4_atom::Mdia {
            mdhd: mp4_atom::Mdhd {
                creation_time: p.creation_time,
                modification_time: p.creation_time,
                timescale: p.timescale,
                duration,
                language: "und".into(),
            },
            hdlr: mp4_atom::Hdlr {
                handler: mp4_atom::FourCC::new(p.handler),
                name: p.handler_name.into(),
            },
            minf: mp4_atom::Minf {
                vmhd: is_video.then(mp4_atom::Vmhd::default),
                smhd: (!is_video).then(mp4_atom::Smhd::default),
                dinf: mp4_atom::Dinf {
                    dref: mp4_atom::Dref {
                        entries: vec![mp4_atom::DrefEntry::Url(mp4_atom::Url {
                            location: String::new(),
                        })],
                    },
                },
                stbl: mp4_atom::Stbl {
                    stsd: mp4_atom::Stsd {
                        codecs: p.sample_entries,
                    },
                    stco: Some(mp4_atom::Stco::default()),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        ..Default::default()
    }
}

fn trex(track_id: u32) -> mp4_atom::Trex {
    mp4_atom::Trex {
        track_id,
        default_sample_description_index: 1,
        default_sample_duration: 0,
        default_sample_size: 0,
        default_sample_flags: 0,
    }
}

fn to_movie_time(ticks: u64, timescale: u32) -> u64 {
    (u128::from(ticks) * u128::from(MOVIE_TIMESCALE) / u128::from(timescale.max(1))) as u64
}
