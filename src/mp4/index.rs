//! The `mfra` random-access index (ISO/IEC 14496-12 §8.8.9-8.8.11) of a finished recording.

use anyhow::Context as _;
use mp4_atom::Encode as _;

use super::read::{Data, Fragments, Track};
use super::{AUDIO_TRACK_ID, VIDEO_TRACK_ID};

/// Builds the `mfra` index of a recording this muxer finished, by reading its fragments back.
///
/// Reading back (rather than remembering every fragment while recording) keeps the recorder's
/// memory flat however long it runs. Video gets one entry per sync sample; audio, whose every
/// sample is a sync sample, one per fragment. The tracks are the muxer's, so the `moov` is
/// not decoded. The entries are counted in a first pass, so that each vector is allocated
/// once at its size rather than doubled as it fills: the index is the largest thing a
/// rollover allocates, and the holes that doubling left grew each writer's malloc arena.
pub(crate) fn build_mfra(file: &Data) -> anyhow::Result<Vec<u8>> {
    let mut counts = [0; 2];
    for_each_entry(file, |track, _| counts[track] += 1)?;
    let mut tfras = [VIDEO_TRACK_ID, AUDIO_TRACK_ID].map(|track_id| mp4_atom::Tfra {
        track_id,
        entries: Vec::new(),
    });
    for (tfra, count) in tfras.iter_mut().zip(counts) {
        tfra.entries.reserve_exact(count);
    }
    for_each_entry(file, |track, entry| tfras[track].entries.push(entry))?;
    let mut mfra = mp4_atom::Mfra {
        tfra: tfras
            .into_iter()
            .filter(|t| !t.entries.is_empty())
            .collect(),
        mfro: mp4_atom::Mfro { parent_size: 0 },
    };
    // At most: mfra and mfro boxes 24 bytes; each tfra 24, and 28 an entry (§8.8.10.2).
    let bound = 24
        + mfra
            .tfra
            .iter()
            .map(|t| 24 + 28 * t.entries.len())
            .sum::<usize>();
    let mut buf = Vec::with_capacity(bound);
    mfra.encode(&mut buf)?;
    mfra.mfro.parent_size = u32::try_from(buf.len()).context("mfra larger than 4 GiB")?;
    buf.clear();
    mfra.encode(&mut buf)?;
    Ok(buf)
}

/// Calls `each` with every index entry of the file in order, and its track: 0 for video, 1
/// for audio.
fn for_each_entry(
    file: &Data,
    mut each: impl FnMut(usize, mp4_atom::FragmentInfo),
) -> anyhow::Result<()> {
    let tracks = vec![
        Track::known(VIDEO_TRACK_ID, b"vide"),
        Track::known(AUDIO_TRACK_ID, b"soun"),
    ];
    let mut frags = Fragments::with_tracks(file, tracks)?;
    while let Some(f) = frags.next_fragment()? {
        let mut audio_listed = false;
        for (s, (traf, trun, sample)) in &f.samples {
            let track = match s.track_id {
                VIDEO_TRACK_ID => 0,
                AUDIO_TRACK_ID if !audio_listed => 1,
                _ => continue,
            };
            if !s.is_sync {
                continue;
            }
            audio_listed |= track == 1;
            each(
                track,
                mp4_atom::FragmentInfo {
                    time: u64::try_from(s.pts()).unwrap_or(0),
                    moof_offset: f.moof_offset,
                    traf_number: *traf,
                    trun_number: *trun,
                    sample_delta: *sample,
                },
            );
        }
    }
    Ok(())
}
