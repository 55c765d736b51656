//! 64-bit NTP timestamps (RFC 5905 §6: seconds since 1900-01-01 in the high 32 bits, a binary
//! fraction in the low 32) to and from Unix time: the timing data's clock (`recv`, `conn`, a
//! sender report's `ntp`), and the test camera's.

/// Converts a wall-clock time to the 64-bit NTP format.
pub fn from_system_time(t: std::time::SystemTime) -> u64 {
    // Seconds from 1900-01-01 to 1970-01-01 (RFC 5905 §6).
    const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;
    let (secs, nanos) = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() + NTP_UNIX_OFFSET_SECS, d.subsec_nanos()),
        // A clock set before 1970 is nonsense; clamp rather than fail the recording.
        Err(_) => (NTP_UNIX_OFFSET_SECS, 0),
    };
    let frac = (u64::from(nanos) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Converts nanoseconds since the Unix epoch to the 64-bit NTP format (clamped to it).
pub fn from_unix(nanos: i128) -> u64 {
    const NTP_UNIX_OFFSET_NANOS: i128 = 2_208_988_800 * 1_000_000_000;
    let since_1900 = (nanos + NTP_UNIX_OFFSET_NANOS).clamp(0, (1 << 32) * 1_000_000_000 - 1);
    let secs = since_1900 / 1_000_000_000;
    let frac = ((since_1900 % 1_000_000_000) << 32) / 1_000_000_000;
    ((secs << 32) | frac) as u64
}

/// Converts a 64-bit NTP-format time to nanoseconds since the Unix epoch.
pub fn to_unix(ntp: u64) -> i128 {
    const NTP_UNIX_OFFSET_SECS: i128 = 2_208_988_800;
    let secs = i128::from(ntp >> 32) - NTP_UNIX_OFFSET_SECS;
    let nanos = (i128::from(ntp & 0xFFFF_FFFF) * 1_000_000_000) >> 32;
    secs * 1_000_000_000 + nanos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_and_unix_times_round_trip() {
        for nanos in [0i128, 1_500_000_000, 1_795_000_000_123_456_789] {
            let back = to_unix(from_unix(nanos));
            assert!((back - nanos).abs() <= 1, "{nanos} -> {back}");
        }
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_795_000_000, 250_000_000);
        assert_eq!(from_system_time(t), from_unix(1_795_000_000_250_000_000));
    }

    #[test]
    fn ntp_conversion() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1, 500_000_000);
        assert_eq!(from_system_time(t), ((2_208_988_800 + 1) << 32) | (1 << 31));
    }
}
