//! Value parsers for flags: durations, times of day, speeds, codecs.

use std::time::Duration;

/// `sha256:HEX`: a certificate's fingerprint, for `--tls-fingerprint`.
pub(crate) fn fingerprint(s: &str) -> Result<[u8; 32], String> {
    retina_record::rtsp::tls::parse_fingerprint(s)
}

use clap::builder::TypedValueParser as _;
use retina_record::camera::BuiltinAudio;
use retina_record::codec::VideoCodec;
use retina_record::timing::align::AlignBy;

/// `--video h264|h265`: clap lists the possible values in help and errors.
pub(crate) fn video_codec() -> impl clap::builder::TypedValueParser<Value = VideoCodec> {
    let names = VideoCodec::ALL.map(VideoCodec::name);
    clap::builder::PossibleValuesParser::new(names).try_map(|s| s.parse::<VideoCodec>())
}

/// `--audio aac|pcmu|pcma|l16|none`, likewise.
pub(crate) fn builtin_audio() -> impl clap::builder::TypedValueParser<Value = BuiltinAudio> {
    let names = BuiltinAudio::ALL.map(BuiltinAudio::name);
    clap::builder::PossibleValuesParser::new(names).try_map(|s| s.parse::<BuiltinAudio>())
}

pub(crate) fn align_by() -> impl clap::builder::TypedValueParser<Value = AlignBy> {
    clap::builder::PossibleValuesParser::new(["camera", "corrected", "recv"]).map(|s| {
        match s.as_str() {
            "corrected" => AlignBy::Corrected,
            "recv" => AlignBy::Receive,
            _ => AlignBy::Camera,
        }
    })
}

/// Parses `90`, `90s`, `10m`, `1h30m`, `1h2m3s`, `1.5s`, `7d`.
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "`{s}` is not a duration: use seconds (`90`) or units (`90s`, `10m`, `1h30m`, `7d`)"
        )
    };
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0f64;
    let mut rest = s;
    let mut last_unit = u8::MAX;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().map_err(|_| bad())?;
        let (unit_secs, rank, tail) = if let Some(t) = tail.strip_prefix("ms") {
            (0.001, 0, t)
        } else if let Some(t) = tail.strip_prefix('d') {
            (86_400.0, 4, t)
        } else if let Some(t) = tail.strip_prefix('h') {
            (3600.0, 3, t)
        } else if let Some(t) = tail.strip_prefix('m') {
            (60.0, 2, t)
        } else if let Some(t) = tail.strip_prefix('s') {
            (1.0, 1, t)
        } else {
            return Err(bad());
        };
        if rank >= last_unit {
            return Err(bad()); // units must be in decreasing order, each once
        }
        last_unit = rank;
        total += value * unit_secs;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// `--segment-duration`: from 1 s (a file per keyframe interval, at most) to a day.
pub(crate) fn segment_duration(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(86_400) {
        return Err("must be between 1s and 24h".into());
    }
    Ok(d)
}

/// `--keep-for`: a duration, at least a minute (anything shorter is surely a typo, and would
/// delete files as they finish).
pub(crate) fn keep_for(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < Duration::from_secs(60) {
        return Err("must be at least 1m".into());
    }
    Ok(d)
}

/// Parses a size: bytes (`1000000`) or binary units (`500M`, `200G`, `1.5T`; `K`, `M`, `G`, `T`,
/// optionally followed by `iB` or `B`: all mean powers of 1024, as `du -h` shows them).
pub(crate) fn size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("`{s}` is not a size: use bytes or units (`500M`, `200G`, `1.5T`)");
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_len);
    let value: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim_start();
    let unit = unit
        .strip_suffix("iB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(unit);
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// A duration that may be negative, in seconds: `250ms`, `-1.5s`, `+2s`, `-3`.
pub(crate) fn signed_secs(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (sign, rest) = match t.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, t.strip_prefix('+').unwrap_or(t)),
    };
    Ok(sign * duration(rest)?.as_secs_f64())
}

/// Parts per million, within ±10,000 (1 %: no clock is worse and still a clock).
pub(crate) fn ppm(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= 10_000.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number of ppm from -10000 to 10000")),
    }
}

/// `D@T`: a step of the signed duration D at T into the session.
pub(crate) fn ntp_step(s: &str) -> Result<(f64, f64), String> {
    let (by, at) = s
        .split_once('@')
        .ok_or_else(|| format!("`{s}` is not a step: use D@T, e.g. 200ms@30s"))?;
    Ok((signed_secs(by)?, duration(at)?.as_secs_f64()))
}

pub(crate) fn speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.01..=1000.0).contains(&v) => Ok(v),
        _ => Err("expected a number from 0.01 to 1000".into()),
    }
}

pub(crate) fn fragment_duration(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(60) {
        return Err("must be between 100ms and 60s".into());
    }
    Ok(d)
}

pub(crate) fn start(s: &str) -> Result<jiff::civil::Time, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let num = |p: &str, max: i8| -> Result<i8, String> {
        p.parse::<i8>()
            .ok()
            .filter(|v| (0..=max).contains(v) && p.len() == 2)
            .ok_or_else(|| format!("`{s}` is not a time of day: use HH:MM or HH:MM:SS"))
    };
    let (h, m, sec) = match parts.as_slice() {
        [h, m] => (num(h, 23)?, num(m, 59)?, 0),
        [h, m, sec] => (num(h, 23)?, num(m, 59)?, num(sec, 59)?),
        _ => return Err(format!("`{s}` is not a time of day: use HH:MM or HH:MM:SS")),
    };
    jiff::civil::Time::new(h, m, sec, 0).map_err(|e| e.to_string())
}

/// `--shard K/N`: K in 0..N.
pub(crate) fn shard(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("`{s}` is not a shard: use K/N with K from 0 to N-1 (`0/3`)");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n) = (
        k.trim().parse::<u64>().map_err(|_| bad())?,
        n.trim().parse::<u64>().map_err(|_| bad())?,
    );
    if k >= n {
        return Err(bad());
    }
    Ok((k, n))
}

/// `--by capture|recv`.
pub(crate) fn by() -> impl clap::builder::TypedValueParser<Value = retina_record::export::By> {
    use retina_record::export::By;
    clap::builder::PossibleValuesParser::new(["capture", "recv"]).map(|s| match s.as_str() {
        "recv" => By::Recv,
        _ => By::Capture,
    })
}

/// An instant for `export`: RFC 3339, a local `HH:MM[:SS[.fff]]`, or `+DURATION`.
pub(crate) fn time_spec(s: &str) -> Result<retina_record::export::TimeSpec, String> {
    use retina_record::export::TimeSpec;
    let s = s.trim();
    if let Some(after) = s.strip_prefix('+') {
        return duration(after).map(TimeSpec::After);
    }
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(TimeSpec::At(t.as_nanosecond()));
    }
    if s.len() <= 15
        && s.matches(':').count() >= 1
        && let Ok(t) = s.parse::<jiff::civil::Time>()
    {
        return Ok(TimeSpec::Local(t));
    }
    Err(format!(
        "`{s}` is not a time: give an RFC 3339 time (`2026-12-07T14:03:12Z`), a time of day \
         (`14:03:12`) or a time after the first frame (`+90s`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let s = Duration::from_secs;
        assert_eq!(duration("90"), Ok(s(90)));
        assert_eq!(duration("90s"), Ok(s(90)));
        assert_eq!(duration("10m"), Ok(s(600)));
        assert_eq!(duration("1h30m"), Ok(s(5400)));
        assert_eq!(duration("1h2m3s"), Ok(s(3723)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("7d"), Ok(s(7 * 86_400)));
        assert_eq!(duration("1d12h"), Ok(s(36 * 3600)));
        for bad in ["", "s", "10x", "1m1h", "1s1s", "-5", "1h 30m", "1h1d"] {
            assert!(duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clock_errors() {
        assert_eq!(signed_secs("250ms"), Ok(0.25));
        assert_eq!(signed_secs("-1.5s"), Ok(-1.5));
        assert_eq!(signed_secs("+2"), Ok(2.0));
        assert_eq!(ntp_step("200ms@30s"), Ok((0.2, 30.0)));
        assert_eq!(ntp_step("-1s@10"), Ok((-1.0, 10.0)));
        assert_eq!(ppm("-80"), Ok(-80.0));
        for bad in ["", "--1s", "1s@", "@3", "1s@-2"] {
            assert!(ntp_step(bad).is_err(), "{bad:?}");
        }
        assert!(ppm("1e9").is_err() && ppm("x").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size("1000000"), Ok(1_000_000));
        assert_eq!(size("500M"), Ok(500 << 20));
        assert_eq!(size("200G"), Ok(200 << 30));
        assert_eq!(size("200GiB"), Ok(200 << 30));
        assert_eq!(size("200 GB"), Ok(200 << 30));
        assert_eq!(size("1.5T"), Ok(3 << 39));
        assert_eq!(size("64k"), Ok(64 << 10));
        for bad in ["", "G", "0", "-1G", "10X", "1e3", "1.2.3M", "99999999999T"] {
            assert!(size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn start_times() {
        assert_eq!(start("07:05"), Ok(jiff::civil::time(7, 5, 0, 0)));
        assert_eq!(start("23:59:58"), Ok(jiff::civil::time(23, 59, 58, 0)));
        for bad in ["7:05", "24:00", "12:60", "12", "12:00:00:00", "ab:cd"] {
            assert!(start(bad).is_err(), "{bad:?}");
        }
    }
}
