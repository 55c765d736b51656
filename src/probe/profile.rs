//! Profile and level names from an RFC 6381 codec string: `avc1.PPCCLL` (ISO/IEC 14496-15
//! §3.2.1: profile_idc, constraint flags, level_idc; H.264 Annex A) and
//! `hvc1.P.C.TL.…` (§E.3: general_profile_idc, tier, general_level_idc; H.265 Annex A).

/// `(profile, level)` for `rfc6381`, where known.
pub(super) fn describe(rfc6381: &str) -> (Option<String>, Option<String>) {
    let mut parts = rfc6381.split('.');
    match parts.next() {
        Some("avc1" | "avc3") => {
            let Some(hex) = parts.next().filter(|h| h.len() == 6) else {
                return (None, None);
            };
            let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
            let profile = byte(0).map(|p| match p {
                66 => "Baseline".to_owned(),
                77 => "Main".to_owned(),
                88 => "Extended".to_owned(),
                100 => "High".to_owned(),
                110 => "High 10".to_owned(),
                122 => "High 4:2:2".to_owned(),
                244 => "High 4:4:4 Predictive".to_owned(),
                other => format!("profile_idc {other}"),
            });
            let level = byte(4).map(|l| format!("{}.{}", l / 10, l % 10));
            (profile, level)
        }
        Some("hvc1" | "hev1") => {
            let profile = parts.next().map(|p| {
                match p.trim_start_matches(|c: char| c.is_ascii_alphabetic()) {
                    "1" => "Main".to_owned(),
                    "2" => "Main 10".to_owned(),
                    "3" => "Main Still Picture".to_owned(),
                    "4" => "Range Extensions".to_owned(),
                    other => format!("general_profile_idc {other}"),
                }
            });
            let level = parts.nth(1).and_then(|tl| {
                let n: u32 = tl.get(1..)?.parse().ok()?;
                let tier = if tl.starts_with('H') {
                    " (High tier)"
                } else {
                    ""
                };
                Some(format!("{}.{}{tier}", n / 30, n % 30 / 3))
            });
            (profile, level)
        }
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn h264_and_h265_codec_strings() {
        let s = |(p, l): (Option<String>, Option<String>)| {
            (p.unwrap_or_default(), l.unwrap_or_default())
        };
        assert_eq!(s(describe("avc1.64001F")), ("High".into(), "3.1".into()));
        assert_eq!(
            s(describe("avc1.42C01E")),
            ("Baseline".into(), "3.0".into())
        );
        assert_eq!(
            s(describe("hvc1.1.6.L93.B0")),
            ("Main".into(), "3.1".into())
        );
        assert_eq!(
            s(describe("hvc1.2.4.H120.B0")),
            ("Main 10".into(), "4.0 (High tier)".into())
        );
        assert_eq!(describe("mp4a.40.2"), (None, None));
        assert_eq!(describe("avc1.6400"), (None, None));
    }
}
