//! Finishing a `.partial` that a killed recorder left, as a clean stop would have: a torn last
//! fragment cut off (back to the last whole `moof` + `mdat`), the durations written into the
//! header (`mvhd`, `tkhd`, `mdhd`, `mehd`, the edit; ISO/IEC 14496-12 §8.2.2, §8.3.2, §8.4.2,
//! §8.8.2, §8.6.6), the `mfra` index appended (§8.8.9), synced, and named as the recording
//! would have been named, never over another file.
//!
//! Only retina-record's own files (0.3 and later: a header region of exactly
//! [`mp4::HEADER_SIZE`] bytes, `ftyp` + `moov` + `free`, then fragments) are repaired; anything
//! else is refused and left as it was.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use mp4_atom::{Decode as _, Encode as _};

use crate::mp4::{self, read::Data, read::Fragments};

/// Movie timescale of the recorder's headers (`mp4::header`): milliseconds.
const MOVIE_TIMESCALE: u64 = 1000;

/// What a repair kept and dropped.
#[derive(Clone, Debug)]
pub struct Repaired {
    /// The finished file (what it would be, with `dry_run`).
    pub out: PathBuf,
    /// Seconds of video kept, video frames kept, fragments kept.
    pub secs: f64,
    /// Video frames kept.
    pub frames: u64,
    /// Whole fragments kept.
    pub fragments: u64,
    /// Bytes after the last whole fragment, cut off: a torn fragment.
    pub dropped_bytes: u64,
    /// Nothing was changed (`--dry-run`).
    pub dry_run: bool,
    /// When its first and last video frames were received (NTP format; 0 when unknown).
    pub first_recv: u64,
    /// See `first_recv`.
    pub last_recv: u64,
}

/// Repairs `partial` (see the module docs); with `dry_run`, only says what it would do.
pub fn repair(partial: &Path, dry_run: bool) -> anyhow::Result<Repaired> {
    let name = partial.to_string_lossy();
    let Some(stem) = name.strip_suffix(".partial") else {
        bail!("{name} is not a .partial: only a recording being written is repaired");
    };
    let out = PathBuf::from(stem);
    let file = File::options()
        .read(true)
        .write(!dry_run)
        .open(partial)
        .with_context(|| format!("cannot open {name}"))?;
    if !super::file::try_lock(&file).unwrap_or(true) {
        bail!("{name} is being written by a running recorder: left alone");
    }
    ours(&file)
        .with_context(|| format!("{name} is not a retina-record 0.3+ recording; left as it was"))?;
    let data = Data::File(file.try_clone()?);
    let scan = whole_fragments(&data).with_context(|| format!("cannot read {name}"))?;
    if scan.fragments == 0 {
        bail!("{name} holds no whole fragment (killed before its first second?): left as it was");
    }
    let len = data.len()?;
    let codec = scan.codec;
    let target = if out.exists() {
        super::template::untaken(&out)
    } else {
        out
    };
    let repaired = Repaired {
        out: target.clone(),
        secs: scan.video_secs(),
        frames: scan.video_frames,
        fragments: scan.fragments,
        dropped_bytes: len.saturating_sub(scan.end),
        dry_run,
        first_recv: scan.first.as_ref().map_or(0, |s| recv_of(&data, s, codec)),
        last_recv: scan.last.as_ref().map_or(0, |s| recv_of(&data, s, codec)),
    };
    if dry_run {
        return Ok(repaired);
    }
    file.set_len(scan.end)?;
    let header =
        finished_header(&file, &scan).with_context(|| format!("cannot rewrite {name}'s header"))?;
    file.write_all_at(&header, 0)?;
    if !scan.indexed {
        let index = mp4::build_mfra(&data).with_context(|| format!("cannot index {name}"))?;
        file.write_all_at(&index, scan.end)?;
    }
    file.sync_all()?;
    super::file::link_into_place(partial, &target)?;
    Ok(repaired)
}

/// Fails unless the file starts with the recorder's header region: `ftyp` (`iso5`), `moov`
/// and `free`, ending at [`mp4::HEADER_SIZE`].
fn ours(file: &File) -> anyhow::Result<()> {
    let mut head = vec![0; mp4::HEADER_SIZE];
    file.read_exact_at(&mut head, 0)
        .context("it is shorter than a recording's header")?;
    let mut pos = 0;
    let mut kinds = Vec::new();
    while pos + 8 <= head.len() {
        let size = u32::from_be_bytes([head[pos], head[pos + 1], head[pos + 2], head[pos + 3]]);
        kinds.push(head[pos + 4..pos + 8].to_vec());
        if size < 8 {
            bail!("its header has a box of {size} bytes");
        }
        pos += size as usize;
    }
    let brand = head.get(8..12);
    if kinds != [b"ftyp".to_vec(), b"moov".to_vec(), b"free".to_vec()]
        || pos != head.len()
        || brand != Some(b"iso5")
    {
        bail!("its header is not the recorder's");
    }
    Ok(())
}

/// What the whole fragments hold.
struct Scan {
    /// Where the last whole fragment ends.
    end: u64,
    fragments: u64,
    video_frames: u64,
    /// Per track id: (timescale, first decode time, end of its last sample).
    tracks: Vec<(u32, u32, u64, u64)>,
    /// The file already ends in an `mfra` (a clean stop's, renamed back?).
    indexed: bool,
    /// The first and last video samples in decode order, and the video's codec.
    first: Option<mp4::read::Sample>,
    last: Option<mp4::read::Sample>,
    codec: crate::codec::VideoCodec,
}

impl Scan {
    fn video_secs(&self) -> f64 {
        self.tracks.iter().find(|t| t.0 == 1).map_or(0.0, |t| {
            t.3.saturating_sub(t.2) as f64 / f64::from(t.1.max(1))
        })
    }
}

fn whole_fragments(data: &Data) -> anyhow::Result<Scan> {
    let mut frags = Fragments::new(data)?;
    let mut scan = Scan {
        end: mp4::HEADER_SIZE as u64,
        fragments: 0,
        video_frames: 0,
        tracks: frags
            .tracks
            .iter()
            .map(|t| (t.track_id, t.timescale, u64::MAX, 0))
            .collect(),
        indexed: false,
        first: None,
        last: None,
        codec: crate::codec::VideoCodec::H264,
    };
    let video = frags.tracks.iter().find(|t| t.is_video());
    scan.codec = video.and_then(|t| t.video_codec()).unwrap_or(scan.codec);
    let video = video.map(|t| t.track_id);
    while let Some(f) = frags.next_fragment()? {
        scan.fragments += 1;
        for (s, _) in &f.samples {
            scan.end = scan.end.max(s.offset.saturating_add(u64::from(s.size)));
            if Some(s.track_id) == video {
                scan.video_frames += 1;
                scan.first.get_or_insert_with(|| s.clone());
                scan.last = Some(s.clone());
            }
            if let Some(t) = scan.tracks.iter_mut().find(|t| t.0 == s.track_id) {
                t.2 = t.2.min(s.dts);
                t.3 = t.3.max(s.dts.saturating_add(u64::from(s.duration)));
            }
        }
    }
    if frags.mfra.is_some() && !frags.truncated {
        scan.indexed = true;
        scan.end = data.len()?;
    }
    Ok(scan)
}

/// When `sample` was received, from its `89H` (NTP format; 0 without one).
fn recv_of(data: &Data, sample: &mp4::read::Sample, codec: crate::codec::VideoCodec) -> u64 {
    let messages = mp4::read::leading_messages(data, sample, codec).unwrap_or_default();
    messages
        .into_iter()
        .find_map(|m| match m {
            crate::sei::TimingMessage::Frame(t) => Some(t.recv),
            crate::sei::TimingMessage::SenderReport(_) => None,
        })
        .unwrap_or(0)
}

/// The header region with the durations a clean stop writes.
fn finished_header(file: &File, scan: &Scan) -> anyhow::Result<Vec<u8>> {
    let mut head = vec![0; mp4::HEADER_SIZE];
    file.read_exact_at(&mut head, 0)?;
    let mut buf = &head[..];
    let ftyp = mp4_atom::Ftyp::decode(&mut buf)?;
    let mut moov = mp4_atom::Moov::decode(&mut buf)?;
    let mut movie = 0;
    for trak in &mut moov.trak {
        let Some(&(_, rate, first, end)) = scan.tracks.iter().find(|t| t.0 == trak.tkhd.track_id)
        else {
            continue;
        };
        if first == u64::MAX {
            continue;
        }
        let start = trak
            .edts
            .as_ref()
            .and_then(|e| e.elst.as_ref())
            .and_then(|e| e.entries.first())
            .and_then(|e| e.media_time)
            .unwrap_or(first);
        let presented = u128::from(end.saturating_sub(start)) * u128::from(MOVIE_TIMESCALE)
            / u128::from(rate.max(1));
        let presented = u64::try_from(presented).unwrap_or(u64::MAX);
        trak.mdia.mdhd.duration = end.saturating_sub(first);
        trak.tkhd.duration = presented;
        if let Some(e) = trak.edts.as_mut().and_then(|e| e.elst.as_mut()) {
            for entry in &mut e.entries {
                entry.segment_duration = presented;
            }
        }
        movie = movie.max(presented);
    }
    moov.mvhd.duration = movie;
    if let Some(mvex) = moov.mvex.as_mut() {
        mvex.mehd = Some(mp4_atom::Mehd {
            fragment_duration: movie,
        });
    }
    let mut out = Vec::with_capacity(mp4::HEADER_SIZE);
    ftyp.encode(&mut out)?;
    moov.encode(&mut out)?;
    let free = mp4::HEADER_SIZE
        .checked_sub(out.len() + 8)
        .context("the finished header does not fit its region")?;
    mp4_atom::Free {
        zeroed: mp4_atom::Zeroed::new(free),
    }
    .encode(&mut out)?;
    Ok(out)
}
