//! A recording's fragments one at a time (ISO/IEC 14496-12 §8.8: `moof` + `mdat`), past its
//! `moov`, in constant memory: what [`super::Recording`] collects and what the `mfra` index of a
//! long recording is built from. Reading stops at the first incomplete box, so a killed
//! recording's `.partial` yields exactly what a player can use.

use std::fs::File;

use anyhow::{Context as _, bail};
use mp4_atom::{Atom as _, Decode as _};

use super::{Sample, Track, table};

/// Turns every `sgpd` (sample group description, §8.9.3) under `body` (a `moov`'s, or at
/// `depth` one of its containers') into a `free` box, which the decoder skips. Nothing here
/// reads sample groups, and mp4-atom 0.17 decodes a version-0 `sgpd` of an unknown grouping
/// type so that a corrupt entry count makes it allocate without bound (found by our fuzzer).
fn skip_sample_groups(body: &mut [u8], depth: usize) {
    const CONTAINERS: [&[u8; 4]; 4] = [b"trak", b"mdia", b"minf", b"stbl"];
    let mut pos = 0;
    while let Some(header) = body.get(pos..pos + 8) {
        let size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let (header_len, size) = match size {
            0 => (8, body.len() - pos),
            1 => match body.get(pos + 8..pos + 16) {
                Some(large) => {
                    let mut b = [0; 8];
                    b.copy_from_slice(large);
                    (
                        16,
                        usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX),
                    )
                }
                None => return,
            },
            n => (8, n),
        };
        let Some(end) = pos
            .checked_add(size)
            .filter(|&e| size >= header_len && e <= body.len())
        else {
            return;
        };
        let kind = &mut body[pos + 4..pos + 8];
        if kind == b"sgpd" {
            kind.copy_from_slice(b"free");
        } else if CONTAINERS.get(depth).is_some_and(|c| kind == &c[..]) {
            skip_sample_groups(&mut body[pos + header_len..end], depth + 1);
        }
        pos = end;
    }
}

/// One `moof` and what it describes.
#[derive(Debug)]
pub(crate) struct Fragment {
    pub moof_offset: u64,
    /// The `prft` just before the `moof`, if any.
    pub producer_time: Option<mp4_atom::Prft>,
    /// Samples in file order, each traf's in decode order; `(traf_number, trun_number,
    /// sample_number)` (1-based, as `tfra` counts) alongside.
    pub samples: Vec<(Sample, (u32, u32, u32))>,
}

/// Where a recording's bytes are: a file, or memory.
pub(crate) enum Data {
    File(File),
    Bytes(std::borrow::Cow<'static, [u8]>),
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Data::File(file) => write!(f, "File({file:?})"),
            Data::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        }
    }
}

impl Data {
    pub(crate) fn len(&self) -> std::io::Result<u64> {
        match self {
            Data::File(f) => Ok(f.metadata()?.len()),
            Data::Bytes(b) => Ok(b.len() as u64),
        }
    }

    pub(crate) fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
        match self {
            Data::File(f) => {
                use std::os::unix::fs::FileExt as _;
                f.read_exact_at(buf, pos)
            }
            Data::Bytes(b) => {
                let start = usize::try_from(pos).unwrap_or(usize::MAX);
                let src = start
                    .checked_add(buf.len())
                    .and_then(|end| b.get(start..end))
                    .ok_or(std::io::ErrorKind::UnexpectedEof)?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }
}

/// Streams the fragments of a recording after reading its `moov`; `D` holds the data (a
/// borrow, or the data itself for a reader that outlives its caller's frame).
pub(crate) struct Fragments<D: std::ops::Deref<Target = Data>> {
    file: D,
    pos: u64,
    len: u64,
    pub tracks: Vec<Track>,
    pub mvhd: mp4_atom::Mvhd,
    /// Set when a box at the end of the file is incomplete (a killed recording).
    pub truncated: bool,
    pub mfra: Option<mp4_atom::Mfra>,
    /// The samples an unfragmented file's sample tables list (none in ours).
    pub table_samples: Vec<Sample>,
}

impl<D: std::ops::Deref<Target = Data>> Fragments<D> {
    pub(crate) fn new(file: D) -> anyhow::Result<Self> {
        let (mut this, start, body_len) = Self::past_moov(file)?;
        let mut body = this.read_body(start, body_len)?;
        skip_sample_groups(&mut body, 0);
        let moov = mp4_atom::Moov::decode_body(&mut &body[..]).context("cannot decode moov")?;
        this.set_moov(moov)?;
        Ok(this)
    }

    /// Streams the fragments of a file whose tracks the caller knows (one this process wrote)
    /// without decoding its `moov`. That decoding is mp4-atom's deepest call: done by each
    /// writer thread to index its first finished file, it left 36 KiB more of the thread's
    /// stack resident for good.
    pub(crate) fn with_tracks(file: D, tracks: Vec<Track>) -> anyhow::Result<Self> {
        let (mut this, _, _) = Self::past_moov(file)?;
        this.tracks = tracks;
        Ok(this)
    }

    /// A reader positioned after the `moov`, and where the moov's body is.
    fn past_moov(file: D) -> anyhow::Result<(Self, u64, u64)> {
        let len = file.len()?;
        let mut this = Fragments {
            file,
            pos: 0,
            len,
            tracks: Vec::new(),
            mvhd: Default::default(),
            truncated: false,
            mfra: None,
            table_samples: Vec::new(),
        };
        while let Some((kind, _, start, body_len)) = this.next_box()? {
            if kind == mp4_atom::Moov::KIND {
                return Ok((this, start, body_len));
            }
            if kind == mp4_atom::Moof::KIND {
                bail!("moof before moov");
            }
        }
        bail!("no moov box: not an MP4 recording, or one killed before its first fragment")
    }

    fn set_moov(&mut self, moov: mp4_atom::Moov) -> anyhow::Result<()> {
        for t in &moov.trak {
            let samples = table::samples(t.tkhd.track_id, &t.mdia.minf.stbl, self.len)?;
            self.table_samples.extend(samples);
        }
        self.table_samples.sort_by_key(|s| s.offset);
        let trexs = moov.mvex.map(|m| m.trex).unwrap_or_default();
        self.mvhd = moov.mvhd;
        self.tracks = moov
            .trak
            .into_iter()
            .map(|t| Track {
                track_id: t.tkhd.track_id,
                handler: t.mdia.hdlr.handler,
                timescale: t.mdia.mdhd.timescale,
                sample_entries: t.mdia.minf.stbl.stsd.codecs,
                creation_time: t.mdia.mdhd.creation_time,
                duration: t.mdia.mdhd.duration,
                media_start: t
                    .edts
                    .and_then(|e| e.elst)
                    .and_then(|e| e.entries.into_iter().find_map(|e| e.media_time))
                    .unwrap_or(0),
                trex: trexs
                    .iter()
                    .find(|x| x.track_id == t.tkhd.track_id)
                    .cloned(),
                next_dts: 0,
            })
            .collect();
        Ok(())
    }

    /// Reads the next box header: `(kind, box start, body start, body length)`; `None` at the
    /// end or at an incomplete box.
    fn next_box(&mut self) -> anyhow::Result<Option<(mp4_atom::FourCC, u64, u64, u64)>> {
        if self.pos + 8 > self.len {
            self.truncated |= self.pos != self.len;
            return Ok(None);
        }
        let mut head = [0u8; 16];
        let n = if self.pos + 16 <= self.len { 16 } else { 8 };
        self.file.read_exact_at(&mut head[..n], self.pos)?;
        let header = match mp4_atom::Header::decode(&mut &head[..n]) {
            Ok(h) => h,
            Err(_) => {
                self.truncated = true;
                return Ok(None);
            }
        };
        let mut header_len = 8;
        if u32::from_be_bytes([head[0], head[1], head[2], head[3]]) == 1 {
            header_len = 16;
        }
        let body_len = match header.size {
            Some(s) => s as u64,
            None => (self.len - self.pos).saturating_sub(header_len), // extends to end of file
        };
        let start = self.pos;
        let end = start.saturating_add(header_len).saturating_add(body_len);
        if end > self.len {
            self.truncated = true;
            return Ok(None);
        }
        self.pos = end;
        Ok(Some((header.kind, start, start + header_len, body_len)))
    }

    /// Where reading goes on: past the `moov`, at first.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    /// Goes on reading at `pos`: a `moof`'s offset from the file's `mfra` index, say.
    pub(crate) fn seek(&mut self, pos: u64) {
        self.pos = pos.min(self.len);
    }

    /// The file's `mfra` index (§8.8.9), found from the `mfro` that ends a finished file,
    /// without reading the fragments; `None` when it has none (a `.partial`) or it is not
    /// whole.
    pub(crate) fn index(&self) -> Option<mp4_atom::Mfra> {
        let mut tail = [0u8; 16];
        self.file
            .read_exact_at(&mut tail, self.len.checked_sub(16)?)
            .ok()?;
        if &tail[4..8] != b"mfro" {
            return None;
        }
        let size = u64::from(u32::from_be_bytes([tail[12], tail[13], tail[14], tail[15]]));
        let start = self.len.checked_sub(size)?;
        let body = self.read_body(start, size).ok()?;
        mp4_atom::Mfra::decode(&mut &body[..]).ok()
    }

    /// Reads `buf.len()` bytes at `pos` (a sample's, say).
    pub(crate) fn read_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buf, pos)
    }

    fn read_body(&self, start: u64, len: u64) -> anyhow::Result<Vec<u8>> {
        let len = usize::try_from(len).context("box too large")?;
        if len > 64 << 20 {
            bail!("{len}-byte box is implausibly large for metadata");
        }
        let mut body = vec![0; len];
        self.file.read_exact_at(&mut body, start)?;
        Ok(body)
    }

    /// The next complete fragment.
    pub(crate) fn next_fragment(&mut self) -> anyhow::Result<Option<Fragment>> {
        let mut producer_time = None;
        while let Some((kind, moof_offset, body_start, body_len)) = self.next_box()? {
            if kind == mp4_atom::Prft::KIND {
                // A bad one is not worth the recording: it is left out.
                let body = self.read_body(body_start, body_len)?;
                producer_time = mp4_atom::Prft::decode_body(&mut &body[..]).ok();
                continue;
            }
            if kind == mp4_atom::Mfra::KIND {
                let body = self.read_body(body_start, body_len)?;
                self.mfra = mp4_atom::Mfra::decode_body(&mut &body[..]).ok();
                continue;
            }
            if kind != mp4_atom::Moof::KIND {
                continue;
            }
            let body = self.read_body(body_start, body_len)?;
            let moof = mp4_atom::Moof::decode_body(&mut &body[..])
                .with_context(|| format!("cannot decode moof at byte {moof_offset}"))?;
            let mut fragment = self.fragment(moof, moof_offset)?;
            fragment.producer_time = producer_time.take();
            // A fragment whose data runs past the end of the file is not complete.
            if fragment
                .samples
                .iter()
                .any(|(s, _)| s.offset.saturating_add(u64::from(s.size)) > self.len)
            {
                self.truncated = true;
                return Ok(None);
            }
            return Ok(Some(fragment));
        }
        Ok(None)
    }

    fn fragment(&mut self, moof: mp4_atom::Moof, moof_offset: u64) -> anyhow::Result<Fragment> {
        let mut samples = Vec::new();
        let mut data_end = moof_offset;
        for (traf_i, traf) in moof.traf.iter().enumerate() {
            let tfhd = &traf.tfhd;
            let Some(track) = self.tracks.iter_mut().find(|t| t.track_id == tfhd.track_id) else {
                bail!(
                    "moof at byte {moof_offset} names unknown track {}",
                    tfhd.track_id
                );
            };
            let trex = track.trex.clone().unwrap_or_default();
            // §8.8.7.1: without base-data-offset, the base is the moof for the first traf (or
            // always, with default-base-is-moof), else where the previous traf's data ended.
            let base = match tfhd.base_data_offset {
                Some(b) => b,
                None if tfhd.default_base_is_moof || traf_i == 0 => moof_offset,
                None => data_end,
            };
            let sdi = tfhd
                .sample_description_index
                .unwrap_or(trex.default_sample_description_index);
            let mut dts = traf
                .tfdt
                .as_ref()
                .map_or(track.next_dts, |t| t.base_media_decode_time);
            let mut offset = base;
            for (trun_i, trun) in traf.trun.iter().enumerate() {
                if let Some(o) = trun.data_offset {
                    offset = base
                        .checked_add_signed(i64::from(o))
                        .context("negative data offset")?;
                }
                for (sample_i, e) in trun.samples.iter().enumerate() {
                    let duration = e
                        .duration
                        .or(tfhd.default_sample_duration)
                        .unwrap_or(trex.default_sample_duration);
                    let size = e
                        .size
                        .or(tfhd.default_sample_size)
                        .unwrap_or(trex.default_sample_size);
                    let flags = e
                        .flags
                        .or(tfhd.default_sample_flags)
                        .unwrap_or(trex.default_sample_flags);
                    samples.push((
                        Sample {
                            track_id: tfhd.track_id,
                            dts,
                            cts_offset: e.cts.unwrap_or(0),
                            duration,
                            size,
                            is_sync: flags & 0x0001_0000 == 0,
                            offset,
                            sample_description_index: sdi,
                        },
                        (traf_i as u32 + 1, trun_i as u32 + 1, sample_i as u32 + 1),
                    ));
                    dts = dts.saturating_add(u64::from(duration));
                    offset = offset.saturating_add(u64::from(size));
                }
            }
            track.next_dts = dts;
            data_end = data_end.max(offset);
        }
        Ok(Fragment {
            moof_offset,
            producer_time: None,
            samples,
        })
    }
}
