//! How the command line and the site file name the library's settings ([`Field`]) in its errors
//! and warnings: the one place that knows both names of each.

use retina_record::config::{Field, Wording};

/// As the command line's flags.
pub(crate) const FLAGS: Wording = Wording(flag);
/// As a site file's keys (`[camera.NAME]`, `[defaults]`).
pub(crate) const SITE_KEYS: Wording = Wording(site_key);

fn flag(field: Field) -> &'static str {
    match field {
        Field::Url => "--url",
        Field::Username => "--username (or RTSP_USERNAME)",
        Field::Password => "--password (or RTSP_PASSWORD)",
        Field::PasswordFile => "--password-file",
        Field::Out => "OUT",
        Field::SegmentDuration => "--segment-duration",
        Field::OnSegmentComplete => "--on-segment-complete",
        Field::KeepFor => "--keep-for",
        Field::KeepSize => "--keep-size",
        Field::Duration => "--duration",
        Field::StallTimeout => "--stall-timeout",
        Field::GiveUpAfter => "--give-up-after",
        Field::ConnectTimeout => "--connect-timeout",
        Field::Transport => "--transport",
        Field::Video => "--video-stream",
        Field::Audio => "--audio-stream",
        Field::StopOnLoss => "--stop-on-loss",
        Field::TlsCa => "--tls-ca",
        Field::TlsFingerprint => "--tls-fingerprint",
        Field::TlsInsecure => "--tls-insecure",
        Field::KernelTimestamps => "--kernel-timestamps",
    }
}

fn site_key(field: Field) -> &'static str {
    match field {
        Field::Url => "url",
        Field::Username => "username",
        Field::Password => "password",
        Field::PasswordFile => "password-file",
        Field::Out => "output",
        Field::SegmentDuration => "segment-duration",
        Field::OnSegmentComplete => "on-segment-complete",
        Field::KeepFor => "keep-for",
        Field::KeepSize => "keep-size",
        Field::Duration => "--duration",
        Field::StallTimeout => "stall-timeout",
        Field::GiveUpAfter => "give-up-after",
        Field::ConnectTimeout => "connect-timeout",
        Field::Transport => "transport",
        Field::Video => "video-stream",
        Field::Audio => "audio-stream",
        Field::StopOnLoss => "stop-on-loss",
        Field::TlsCa => "tls-ca",
        Field::TlsFingerprint => "tls-fingerprint",
        Field::TlsInsecure => "tls-insecure",
        Field::KernelTimestamps => "kernel-timestamps",
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;
    use crate::cli::Args;

    /// Every name is a flag (or key) the command line really has: a renamed flag cannot leave
    /// its old name in the messages.
    #[test]
    fn every_name_is_a_real_flag() {
        let command = Args::command();
        let fields = [
            Field::Url,
            Field::Username,
            Field::Password,
            Field::PasswordFile,
            Field::SegmentDuration,
            Field::OnSegmentComplete,
            Field::KeepFor,
            Field::KeepSize,
            Field::Duration,
            Field::StallTimeout,
            Field::GiveUpAfter,
            Field::ConnectTimeout,
            Field::Transport,
            Field::Video,
            Field::Audio,
            Field::StopOnLoss,
            Field::TlsCa,
            Field::TlsFingerprint,
            Field::TlsInsecure,
            Field::KernelTimestamps,
        ];
        for field in fields {
            for name in [FLAGS.of(field), SITE_KEYS.of(field)] {
                let long = name.trim_start_matches("--");
                let long = long.split(' ').next().unwrap_or_default();
                assert!(
                    command.get_arguments().any(|a| a.get_long() == Some(long)),
                    "{field:?}: {name}"
                );
            }
        }
        assert_eq!(
            (FLAGS.of(Field::Out), SITE_KEYS.of(Field::Out)),
            ("OUT", "output")
        );
    }
}
