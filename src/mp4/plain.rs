//! An unfragmented MP4 whose `moov` comes before its `mdat` ("faststart"): sample tables
//! (ISO/IEC 14496-12 §8.7: `stts`, `ctts`, `stss`, `stsc`, `stsz`, `co64`) and one edit per
//! track (§8.6.6), what `retina-record export` writes. Every sample's size is known before the
//! first byte is written, so the header is encoded once with its final chunk offsets and the
//! media follows it, copied.
//!
//! Plain rather than fragmented: players apply an edit list to sample tables (ffmpeg marks the
//! samples before it to be decoded, not shown; GStreamer and browsers alike), which is what
//! makes an export frame-accurate. ffmpeg 5.1 applies an edit to a fragmented file's samples
//! only in part.

use mp4_atom::Encode as _;

use super::{Error, entry};

/// One track of the file.
pub(crate) struct PlainTrack {
    /// Video (`vide`) or audio (`soun`).
    pub video: bool,
    /// Ticks per second of its times.
    pub timescale: u32,
    pub sample_entries: Vec<mp4_atom::Codec>,
    /// In decode order.
    pub samples: Vec<PlainSample>,
    /// The media time presented first and how long the track is presented (its ticks); a
    /// media time before 0 (a track beginning after the movie) presents nothing until then.
    pub edit: (i64, u64),
}

/// A sample of a [`PlainTrack`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlainSample {
    pub duration: u32,
    pub cts_offset: i64,
    pub size: u32,
    pub is_sync: bool,
    /// 1-based, into the track's sample entries.
    pub sample_description_index: u32,
}

/// A run of one track's next samples, stored together in the `mdat`, in file order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chunk {
    pub track: usize,
    pub samples: usize,
}

/// `ftyp`, `moov` and the `mdat` header: what precedes the samples, whose bytes follow in
/// `chunks` order.
pub(crate) fn head(
    tracks: &[PlainTrack],
    chunks: &[Chunk],
    creation_time: u64,
) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    mp4_atom::Ftyp {
        major_brand: b"isom".into(),
        minor_version: 512,
        compatible_brands: vec![b"isom".into(), b"iso2".into(), b"mp41".into()],
    }
    .encode(&mut buf)?;
    let ftyp_len = buf.len();
    let data_len: u64 = tracks
        .iter()
        .flat_map(|t| &t.samples)
        .map(|s| u64::from(s.size))
        .sum();
    let mdat_header_len = if data_len + 8 > u64::from(u32::MAX) {
        16
    } else {
        8
    };
    // Encoded once with zero offsets to learn its size (co64's entries are fixed-size), then
    // with the real ones.
    let mut moov = moov(tracks, chunks, creation_time, 0);
    let mut sized = Vec::new();
    moov.encode(&mut sized)?;
    let data_start = (ftyp_len + sized.len() + mdat_header_len) as u64;
    moov = self::moov(tracks, chunks, creation_time, data_start);
    moov.encode(&mut buf)?;
    mp4_atom::Header {
        kind: mp4_atom::FourCC::new(b"mdat"),
        size: Some(data_len as usize),
    }
    .encode(&mut buf)?;
    debug_assert_eq!(buf.len() as u64, data_start);
    Ok(buf)
}

fn moov(
    tracks: &[PlainTrack],
    chunks: &[Chunk],
    creation_time: u64,
    data_start: u64,
) -> mp4_atom::Moov {
    // The movie's timescale is the first track's, so that its edit is exact.
    let movie_timescale = tracks.first().map_or(1000, |t| t.timescale.max(1));
    let mut offsets: Vec<Vec<u64>> = vec![Vec::new(); tracks.len()];
    let mut per_chunk: Vec<Vec<usize>> = vec![Vec::new(); tracks.len()];
    let mut next = vec![0usize; tracks.len()];
    let mut pos = data_start;
    for c in chunks {
        let Some(track) = tracks.get(c.track) else {
            continue;
        };
        offsets[c.track].push(pos);
        per_chunk[c.track].push(c.samples);
        let samples = track.samples.iter().skip(next[c.track]).take(c.samples);
        pos += samples.map(|s| u64::from(s.size)).sum::<u64>();
        next[c.track] += c.samples;
    }
    let traks: Vec<mp4_atom::Trak> = tracks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let layout = (std::mem::take(&mut offsets[i]), &per_chunk[i]);
            trak(t, i as u32 + 1, layout, creation_time, movie_timescale)
        })
        .collect();
    let duration = traks.iter().map(|t| t.tkhd.duration).max().unwrap_or(0);
    mp4_atom::Moov {
        mvhd: mp4_atom::Mvhd {
            creation_time,
            modification_time: creation_time,
            timescale: movie_timescale,
            duration,
            rate: mp4_atom::FixedPoint::new(1, 0),
            volume: mp4_atom::FixedPoint::new(1, 0),
            matrix: Default::default(),
            next_track_id: tracks.len() as u32 + 1,
        },
        trak: traks,
        ..Default::default()
    }
}

fn trak(
    t: &PlainTrack,
    track_id: u32,
    (offsets, per_chunk): (Vec<u64>, &Vec<usize>),
    creation_time: u64,
    movie_timescale: u32,
) -> mp4_atom::Trak {
    let rescale = |ticks: u64| {
        (u128::from(ticks) * u128::from(movie_timescale) / u128::from(t.timescale.max(1))) as u64
    };
    let presented = rescale(t.edit.1);
    let media_duration: u64 = t.samples.iter().map(|s| u64::from(s.duration)).sum();
    let (width, height) = t
        .sample_entries
        .first()
        .and_then(entry::visual_size)
        .unwrap_or((0, 0));
    mp4_atom::Trak {
        tkhd: mp4_atom::Tkhd {
            creation_time,
            modification_time: creation_time,
            track_id,
            duration: presented,
            enabled: true,
            in_movie: true,
            volume: mp4_atom::FixedPoint::new(u8::from(!t.video), 0),
            width: mp4_atom::FixedPoint::new(width, 0),
            height: mp4_atom::FixedPoint::new(height, 0),
            ..Default::default()
        },
        edts: Some(mp4_atom::Edts {
            elst: Some(mp4_atom::Elst {
                entries: edits(t.edit, rescale),
            }),
        }),
        mdia: mp4_atom::Mdia {
            mdhd: mp4_atom::Mdhd {
                creation_time,
                modification_time: creation_time,
                timescale: t.timescale,
                duration: media_duration,
                language: "und".into(),
            },
            hdlr: mp4_atom::Hdlr {
                handler: mp4_atom::FourCC::new(if t.video { b"vide" } else { b"soun" }),
                name: if t.video {
                    "VideoHandler"
                } else {
                    "SoundHandler"
                }
                .into(),
            },
            minf: mp4_atom::Minf {
                vmhd: t.video.then(mp4_atom::Vmhd::default),
                smhd: (!t.video).then(mp4_atom::Smhd::default),
                dinf: mp4_atom::Dinf {
                    dref: mp4_atom::Dref {
                        entries: vec![mp4_atom::DrefEntry::Url(mp4_atom::Url {
                            location: String::new(),
                        })],
                    },
                },
                stbl: stbl(t, offsets, per_chunk),
                ..Default::default()
            },
        },
        ..Default::default()
    }
}

/// The track's edits (§8.6.6): an empty one while it has not begun, then its media from
/// the edit's media time.
fn edits(
    (media_time, shown): (i64, u64),
    rescale: impl Fn(u64) -> u64,
) -> Vec<mp4_atom::ElstEntry> {
    let rate = mp4_atom::FixedPoint::new(1, 0);
    let delay = media_time.min(0).unsigned_abs();
    let mut entries = Vec::new();
    if delay > 0 {
        entries.push(mp4_atom::ElstEntry {
            segment_duration: rescale(delay),
            media_time: None,
            media_rate: rate,
        });
    }
    entries.push(mp4_atom::ElstEntry {
        segment_duration: rescale(shown.saturating_sub(delay)),
        media_time: Some(media_time.max(0) as u64),
        media_rate: rate,
    });
    entries
}

/// The sample tables, run-length coded where the format allows.
fn stbl(t: &PlainTrack, offsets: Vec<u64>, per_chunk: &[usize]) -> mp4_atom::Stbl {
    let mut stts: Vec<mp4_atom::SttsEntry> = Vec::new();
    let mut ctts: Vec<mp4_atom::CttsEntry> = Vec::new();
    for s in &t.samples {
        match stts.last_mut() {
            Some(e) if e.sample_delta == s.duration => e.sample_count += 1,
            _ => stts.push(mp4_atom::SttsEntry {
                sample_count: 1,
                sample_delta: s.duration,
            }),
        }
        match ctts.last_mut() {
            Some(e) if e.sample_offset == s.cts_offset => e.sample_count += 1,
            _ => ctts.push(mp4_atom::CttsEntry {
                sample_count: 1,
                sample_offset: s.cts_offset,
            }),
        }
    }
    let has_ctts = t.samples.iter().any(|s| s.cts_offset != 0);
    let all_sync = t.samples.iter().all(|s| s.is_sync);
    let sync: Vec<u32> = (1..)
        .zip(&t.samples)
        .filter(|(_, s)| s.is_sync)
        .map(|(n, _)| n)
        .collect();
    let mut stsc: Vec<mp4_atom::StscEntry> = Vec::new();
    let mut first = 0;
    for (chunk, &count) in (1..).zip(per_chunk) {
        let sdi = t
            .samples
            .get(first)
            .map_or(1, |s| s.sample_description_index);
        first += count;
        if stsc.last().is_none_or(|e| {
            e.samples_per_chunk != count as u32 || e.sample_description_index != sdi
        }) {
            stsc.push(mp4_atom::StscEntry {
                first_chunk: chunk,
                samples_per_chunk: count as u32,
                sample_description_index: sdi,
            });
        }
    }
    mp4_atom::Stbl {
        stsd: mp4_atom::Stsd {
            codecs: t.sample_entries.clone(),
        },
        stts: mp4_atom::Stts { entries: stts },
        ctts: has_ctts.then_some(mp4_atom::Ctts { entries: ctts }),
        stss: (!all_sync).then_some(mp4_atom::Stss { entries: sync }),
        stsc: mp4_atom::Stsc { entries: stsc },
        stsz: mp4_atom::Stsz {
            samples: mp4_atom::StszSamples::Different {
                sizes: t.samples.iter().map(|s| s.size).collect(),
            },
        },
        co64: Some(mp4_atom::Co64 { entries: offsets }),
        ..Default::default()
    }
}
