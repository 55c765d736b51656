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
/// not decoded.
pub(crate) fn build_mfra(file: &Data) -> anyhow::Result<Vec<u8>> {
    let tracks = vec![
        Track::known(VIDEO_TRACK_ID, b"vide"),
        Track::known(AUDIO_TRACK_ID, b"soun"),
    ];
    let mut frags = Fragments::with_tracks(file, tracks)?;
    let mut tfras: Vec<mp4_atom::Tfra> = frags
        .tracks
        .iter()
        .map(|t| mp4_atom::Tfra {
            track_id: t.track_id,
            entries: Vec::new(),
        })
        .collect();
    let video_ids: Vec<u32> = frags
        .tracks
        .iter()
        .filter(|t| t.is_video())
        .map(|t| t.track_id)
        .collect();
    while let Some(f) = frags.next_fragment()? {
        let mut seen_audio = Vec::new();
        for (s, (traf, trun, sample)) in &f.samples {
            let is_video = video_ids.contains(&s.track_id);
            if !s.is_sync || (!is_video && seen_audio.contains(&s.track_id)) {
                continue;
            }
            if !is_video {
                seen_audio.push(s.track_id);
            }
            if let Some(t) = tfras.iter_mut().find(|t| t.track_id == s.track_id) {
                t.entries.push(mp4_atom::FragmentInfo {
                    time: u64::try_from(s.pts()).unwrap_or(0),
                    moof_offset: f.moof_offset,
                    traf_number: *traf,
                    trun_number: *trun,
                    sample_delta: *sample,
                });
            }
        }
    }
    tfras.retain(|t| !t.entries.is_empty());
    let mut mfra = mp4_atom::Mfra {
        tfra: tfras,
        mfro: mp4_atom::Mfro { parent_size: 0 },
    };
    let mut buf = Vec::new();
    mfra.encode(&mut buf)?;
    mfra.mfro.parent_size = u32::try_from(buf.len()).context("mfra larger than 4 GiB")?;
    buf.clear();
    mfra.encode(&mut buf)?;
    Ok(buf)
}
