//! G.711 (ITU-T G.711, RTP payload types PCMU/PCMA per RFC 3551 §4.5.14) to 16-bit linear PCM.
//!
//! Recordings store G.711 audio as 16-bit big-endian linear PCM (`twos`), the form L16 already
//! has: see docs/codecs.md ("How each codec is stored") for why not the QuickTime `ulaw`/`alaw` entries.
//! Expansion is exact: every G.711 code maps to one 16-bit value and back, except that µ-law
//! has two codes for zero (0x7F, 0xFF) which both expand to 0, as in every G.711 decoder.
//!
//! These are the reference expansions (the Sun/CCITT `g711.c` that ffmpeg's and GStreamer's
//! tables come from); the tests compare against values those decoders produce.

/// µ-law code → 16-bit linear sample.
pub(crate) fn ulaw_to_linear(code: u8) -> i16 {
    const BIAS: i32 = 0x84;
    let u = !code;
    let magnitude = ((i32::from(u & 0x0F) << 3) + BIAS) << ((u & 0x70) >> 4);
    let value = if u & 0x80 != 0 {
        BIAS - magnitude
    } else {
        magnitude - BIAS
    };
    value as i16 // within ±32124
}

/// A-law code → 16-bit linear sample.
pub(crate) fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut magnitude = i32::from(a & 0x0F) << 4;
    match (a & 0x70) >> 4 {
        0 => magnitude += 8,
        1 => magnitude += 0x108,
        segment => magnitude = (magnitude + 0x108) << (segment - 1),
    }
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16 // within ±32256
}

/// Which G.711 law a stream uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Law {
    Mu,
    A,
}

/// Expands G.711 codes to big-endian 16-bit samples, appended to `out`.
pub(crate) fn expand_be(law: Law, codes: &[u8], out: &mut Vec<u8>) {
    out.reserve(codes.len() * 2);
    let f = match law {
        Law::Mu => ulaw_to_linear,
        Law::A => alaw_to_linear,
    };
    for &c in codes {
        out.extend_from_slice(&f(c).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Extremes and zeros as ffmpeg's pcm_mulaw / pcm_alaw decode them.
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }

    #[test]
    fn expansion_loses_nothing_but_the_sign_of_mu_law_zero() {
        for (f, collisions) in [
            (ulaw_to_linear as fn(u8) -> i16, 1),
            (alaw_to_linear as fn(u8) -> i16, 0),
        ] {
            let mut values: Vec<i16> = (0..=255u8).map(f).collect();
            values.sort_unstable();
            values.dedup();
            assert_eq!(values.len(), 256 - collisions);
        }
    }

    #[test]
    fn expands_big_endian() {
        let mut out = vec![];
        expand_be(Law::Mu, &[0x80, 0xFF], &mut out);
        assert_eq!(out, [0x7D, 0x7C, 0, 0]);
    }
}
