//! Sample entries (ISO/IEC 14496-12 §8.5.2): the codec descriptions in `stsd`, built from what
//! retina knows of a stream, and what the muxer reads back out of them.

/// The sample entry for 16-bit big-endian linear PCM (`twos`, QuickTime's and ISO/IEC 14496-12's
/// `AudioSampleEntry` layout), how G.711 and L16 audio are stored: see docs/codecs.md.
pub(crate) fn pcm(clock_rate: u32, channels: u16) -> Result<mp4_atom::Codec, String> {
    // The entry's rate field is 16.16 fixed point.
    let rate = u16::try_from(clock_rate)
        .map_err(|_| format!("its {clock_rate} Hz rate does not fit an MP4 audio sample entry"))?;
    Ok(mp4_atom::Codec::Twos(mp4_atom::Twos {
        audio: mp4_atom::Audio {
            data_reference_index: 1,
            channel_count: channels,
            sample_size: 16,
            sample_rate: mp4_atom::FixedPoint::new(rate, 0),
        },
        pcmc: None,
        chnl: None,
        btrt: None,
    }))
}

/// Decodes an MP4 sample entry box, as retina's `mp4_sample_entry()` builds it, into the
/// typed form the muxer writes.
pub(crate) fn from_bytes(bytes: &[u8]) -> Result<mp4_atom::Codec, mp4_atom::Error> {
    use mp4_atom::Decode as _;
    let codec = mp4_atom::Codec::decode(&mut &bytes[..])?;
    if let mp4_atom::Codec::Unknown(kind, _) = codec {
        return Err(mp4_atom::Error::UnexpectedBox(kind));
    }
    Ok(codec)
}

/// A video sample entry's width and height.
pub(crate) fn visual_size(codec: &mp4_atom::Codec) -> Option<(u16, u16)> {
    match codec {
        mp4_atom::Codec::Avc1(c) => Some((c.visual.width, c.visual.height)),
        mp4_atom::Codec::Hvc1(c) => Some((c.visual.width, c.visual.height)),
        _ => None,
    }
}

/// The parameter-set NAL units (VPS, SPS, PPS) a video sample entry carries.
pub(crate) fn parameter_sets(entry: &mp4_atom::Codec) -> Vec<&[u8]> {
    match entry {
        mp4_atom::Codec::Avc1(c) => c
            .avcc
            .sequence_parameter_sets
            .iter()
            .chain(&c.avcc.picture_parameter_sets)
            .map(Vec::as_slice)
            .collect(),
        mp4_atom::Codec::Hvc1(c) => c
            .hvcc
            .arrays
            .iter()
            .flat_map(|a| &a.nalus)
            .map(Vec::as_slice)
            .collect(),
        _ => Vec::new(),
    }
}
