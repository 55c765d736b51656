//! The export's sample tables and the order of its chunks (a source fragment's video, then
//! its audio), and the copy of the samples' bytes into the `mdat` in that order.

use std::fs::File;
use std::io::Write as _;

use anyhow::Context as _;

use super::write::Taken;
use crate::mp4::plain::{Chunk, PlainSample, PlainTrack};
use crate::mp4::read::{Data, Sample};

/// The output's tracks (video, then audio if any file has it) and chunks; the first video
/// sample is `opening_len` bytes (its SEI rewritten).
/// Audio that cannot be placed (before the output's start, or at another clock rate than the
/// first file's) is left out of `taken` first.
pub(super) fn tables(
    taken: &mut [Taken],
    opening_len: usize,
) -> anyhow::Result<(Vec<PlainTrack>, Vec<Chunk>)> {
    let rate_v = taken[0].video_track.timescale.max(1);
    let rate_a = taken
        .iter()
        .find_map(|t| t.audio_track.as_ref())
        .map(|a| a.timescale.max(1));
    for t in taken.iter_mut() {
        let placed: Vec<Option<i64>> = t
            .audio
            .iter()
            .map(|(s, _)| audio_at(t, s, rate_v, rate_a))
            .collect();
        let mut kept = placed.iter();
        t.audio
            .retain(|_| kept.next().is_some_and(|at| at.is_some_and(|at| at >= 0)));
    }
    let taken = &*taken;
    let mut video = Track::default();
    let mut audio = Track::default();
    let mut chunks = Vec::new();
    for t in taken {
        let vmap = video.entries_of(&t.video_track.sample_entries);
        let amap = t
            .audio_track
            .as_ref()
            .map(|a| audio.entries_of(&a.sample_entries))
            .unwrap_or_default();
        let audio_here = t.audio.as_slice();
        let (mut i, mut j) = (0, 0);
        while i < t.video.len() || j < audio_here.len() {
            let fragment = match (t.video.get(i), audio_here.get(j)) {
                (Some(v), Some(a)) => v.1.min(a.1),
                (Some(v), None) => v.1,
                (None, Some(a)) => a.1,
                (None, None) => break,
            };
            while let Some((s, _)) = t.video.get(i).filter(|v| v.1 == fragment) {
                let sdi = vmap[(s.sample_description_index as usize)
                    .saturating_sub(1)
                    .min(vmap.len() - 1)];
                video.push(&mut chunks, 0, s, s.dts as i64 + t.shift, sdi);
                i += 1;
            }
            while let Some((s, _)) = audio_here.get(j).filter(|a| a.1 == fragment) {
                let at = audio_at(t, s, rate_v, rate_a).unwrap_or(0);
                audio.push(&mut chunks, 1, s, at, amap.first().copied().unwrap_or(1));
                j += 1;
            }
        }
    }
    if let Some(first) = video.samples.first_mut() {
        first.size = u32::try_from(opening_len).context("frame larger than 4 GiB")?;
    }
    let first = &taken[0];
    let last = &taken[taken.len() - 1];
    let start = first.shown.0 + first.shift;
    let shown = (last.shown.2 + last.shift - start).max(0) as u64;
    let mut tracks = vec![video.finish(true, rate_v, start, shown)];
    if let Some(rate_a) = rate_a.filter(|_| !audio.samples.is_empty()) {
        let to_audio = |v: i64| (i128::from(v) * i128::from(rate_a) / i128::from(rate_v)) as i64;
        let start_a = to_audio(start);
        tracks.push(audio.finish(false, rate_a, start_a, to_audio(shown as i64) as u64));
    } else {
        chunks.retain(|c| c.track == 0);
    }
    Ok((tracks, chunks))
}

/// Where an audio sample of `t` goes on the output's audio timeline: its time for the
/// video's (both tracks' edits start them together), moved as the file's video is; `None` for
/// audio at another clock rate than the output's.
fn audio_at(t: &Taken, s: &Sample, rate_v: u32, rate_a: Option<u32>) -> Option<i64> {
    let a = t.audio_track.as_ref()?;
    let rate_a = rate_a.filter(|&r| r == a.timescale.max(1))?;
    let v = (i128::from(s.dts) - i128::from(a.media_start)) * i128::from(rate_v)
        / i128::from(rate_a)
        + i128::from(t.video_track.media_start)
        + i128::from(t.shift);
    Some((v * i128::from(rate_a) / i128::from(rate_v)) as i64)
}

/// A track being laid out: its samples with their times on the output's timeline.
#[derive(Default)]
struct Track {
    entries: Vec<mp4_atom::Codec>,
    samples: Vec<PlainSample>,
    times: Vec<i64>,
}

impl Track {
    /// The output's sample description index (1-based) for each of `entries`.
    fn entries_of(&mut self, entries: &[mp4_atom::Codec]) -> Vec<u32> {
        let mut map: Vec<u32> = entries
            .iter()
            .map(|e| match self.entries.iter().position(|x| x == e) {
                Some(p) => p as u32 + 1,
                None => {
                    self.entries.push(e.clone());
                    self.entries.len() as u32
                }
            })
            .collect();
        if map.is_empty() {
            map.push(1);
        }
        map
    }

    /// Adds a sample at `at`, in a chunk of its own when the one before is another
    /// track's, fragment's or sample description's.
    fn push(&mut self, chunks: &mut Vec<Chunk>, track: usize, s: &Sample, at: i64, sdi: u32) {
        // Times only go forward: a sample overlapping the one before starts at its start.
        let at = self.times.last().map_or(at, |&prev| at.max(prev + 1));
        let same_description = self
            .samples
            .last()
            .is_some_and(|p| p.sample_description_index == sdi);
        match chunks.last_mut() {
            Some(c) if c.track == track && same_description => c.samples += 1,
            _ => chunks.push(Chunk { track, samples: 1 }),
        }
        self.samples.push(PlainSample {
            duration: s.duration,
            cts_offset: s.cts_offset,
            size: s.size,
            is_sync: s.is_sync,
            sample_description_index: sdi,
        });
        self.times.push(at);
    }

    /// The track, each sample lasting until the next (a gap lengthens the sample before it),
    /// its times from its first sample; presented from `start` (the output's timeline) for
    /// `shown` ticks.
    fn finish(mut self, video: bool, timescale: u32, start: i64, shown: u64) -> PlainTrack {
        for i in 1..self.samples.len() {
            let d = self.times[i] - self.times[i - 1];
            self.samples[i - 1].duration = u32::try_from(d).unwrap_or(u32::MAX);
        }
        let origin = self.times.first().copied().unwrap_or(0);
        PlainTrack {
            video,
            timescale,
            sample_entries: self.entries,
            samples: self.samples,
            edit: (start - origin, shown),
        }
    }
}

/// Writes `head`, then every chunk's samples, reading each run of adjacent samples in one
/// call; the first video sample is `opening`. Returns the bytes written.
pub(super) fn copy(
    out: &mut File,
    head: &[u8],
    taken: &[Taken],
    chunks: &[Chunk],
    opening: Vec<u8>,
) -> anyhow::Result<u64> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    w.write_all(head)?;
    let mut written = head.len() as u64;
    let mut next: [Vec<(&Sample, &Data)>; 2] = [Vec::new(), Vec::new()];
    for t in taken {
        next[0].extend(t.video.iter().map(|(s, _)| (s, &t.file)));
        next[1].extend(t.audio.iter().map(|(s, _)| (s, &t.file)));
    }
    let mut at = [0usize; 2];
    let mut buf = Vec::new();
    let mut opening = Some(opening);
    for c in chunks {
        let samples = &next[c.track][at[c.track]..at[c.track] + c.samples];
        at[c.track] += c.samples;
        let mut k = 0;
        while k < samples.len() {
            if c.track == 0 && at[0] - c.samples + k == 0 {
                if let Some(o) = opening.take() {
                    w.write_all(&o)?;
                    written += o.len() as u64;
                }
                k += 1;
                continue;
            }
            // The run of samples adjacent in the same source file.
            let (first, file) = samples[k];
            let mut end = first.offset + u64::from(first.size);
            let mut n = 1;
            while let Some((s, f)) = samples.get(k + n) {
                if !std::ptr::eq(*f, file) || s.offset != end {
                    break;
                }
                end += u64::from(s.size);
                n += 1;
            }
            buf.resize((end - first.offset) as usize, 0);
            file.read_exact_at(&mut buf, first.offset)
                .context("a source file changed while it was read")?;
            w.write_all(&buf)?;
            written += buf.len() as u64;
            k += n;
        }
    }
    w.flush()?;
    Ok(written)
}
