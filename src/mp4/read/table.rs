//! Samples of an unfragmented MP4, from its sample tables (ISO/IEC 14496-12 §8.6.1.2 `stts`,
//! §8.6.1.3 `ctts`, §8.6.2 `stss`, §8.7.3 `stsz`, §8.7.4 `stsc`, §8.7.5 `stco`/`co64`): how
//! retina-record 0.1/0.2 wrote its files, so that their timing data can still be read.
//!
//! The tables come from the file, so every count is checked against what the file can hold
//! before anything is allocated for it.

use anyhow::bail;

use super::sample::Sample;

/// Samples the reader takes from one table before calling the file implausible.
const MAX_SAMPLES: usize = 50_000_000;

/// The samples `stbl` describes for track `track_id`, in decode order; each must lie within
/// `file_len` bytes.
pub(crate) fn samples(
    track_id: u32,
    stbl: &mp4_atom::Stbl,
    file_len: u64,
) -> anyhow::Result<Vec<Sample>> {
    let sizes: Vec<u32> = match &stbl.stsz.samples {
        mp4_atom::StszSamples::Identical { count, size } => {
            let count = *count as usize;
            // Every sample takes at least one byte of the file (a size of 0 here would mean the
            // sizes are listed one by one: §8.7.3.2).
            if count > MAX_SAMPLES
                || (count > 0 && *size == 0)
                || (*size > 0 && count as u64 > file_len / u64::from(*size))
            {
                bail!("track {track_id}: stsz lists {count} samples, more than the file holds");
            }
            vec![*size; count]
        }
        mp4_atom::StszSamples::Different { sizes } => sizes.clone(),
    };
    if sizes.is_empty() {
        return Ok(Vec::new());
    }
    if sizes.len() > MAX_SAMPLES {
        bail!(
            "track {track_id}: {} samples is implausibly many",
            sizes.len()
        );
    }
    let chunks: Vec<u64> = match (&stbl.co64, &stbl.stco) {
        (Some(co64), _) => co64.entries.clone(),
        (None, Some(stco)) => stco.entries.iter().map(|&o| u64::from(o)).collect(),
        (None, None) => bail!("track {track_id}: no chunk offsets (stco/co64)"),
    };
    let mut out = Vec::with_capacity(sizes.len());
    let mut deltas = expand(
        stbl.stts
            .entries
            .iter()
            .map(|e| (e.sample_count, e.sample_delta)),
    );
    let mut offsets = expand(
        stbl.ctts
            .iter()
            .flat_map(|c| &c.entries)
            .map(|e| (e.sample_count, e.sample_offset)),
    );
    let sync: Option<&[u32]> = stbl.stss.as_ref().map(|s| s.entries.as_slice());
    let mut dts = 0u64;
    let mut n = 0usize; // samples placed
    let stsc = &stbl.stsc.entries;
    for (k, entry) in stsc.iter().enumerate() {
        let first = entry.first_chunk.max(1) as usize - 1;
        let end = stsc.get(k + 1).map_or(chunks.len(), |e| {
            (e.first_chunk.max(1) as usize - 1).min(chunks.len())
        });
        for &chunk_offset in chunks.get(first..end).unwrap_or_default() {
            let mut offset = chunk_offset;
            for _ in 0..entry.samples_per_chunk {
                let Some(&size) = sizes.get(n) else {
                    break;
                };
                let end_of_data = offset.checked_add(u64::from(size));
                if end_of_data.is_none_or(|e| e > file_len) {
                    bail!(
                        "track {track_id}: sample {} lies past the end of the file",
                        n + 1
                    );
                }
                let duration = deltas.next().unwrap_or(0);
                out.push(Sample {
                    track_id,
                    dts,
                    cts_offset: offsets.next().unwrap_or(0),
                    duration,
                    size,
                    is_sync: sync.is_none_or(|s| s.binary_search(&(n as u32 + 1)).is_ok()),
                    offset,
                    sample_description_index: entry.sample_description_index,
                });
                dts = dts.saturating_add(u64::from(duration));
                offset = offset.saturating_add(u64::from(size));
                n += 1;
            }
        }
    }
    if n < sizes.len() {
        bail!(
            "track {track_id}: the chunk tables place {n} of {} samples",
            sizes.len()
        );
    }
    Ok(out)
}

/// Run-length `(count, value)` entries as one value per sample.
fn expand<T: Copy>(runs: impl Iterator<Item = (u32, T)>) -> impl Iterator<Item = T> {
    runs.flat_map(|(count, value)| std::iter::repeat_n(value, count as usize))
}
