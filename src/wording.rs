//! How errors and warnings name the settings of a [`crate::config::RecorderConfig`]: each is a
//! [`Field`], and a front-end says how its users know it (a flag, a site file's key) with a
//! [`Wording`]. Below the config and the source, which both name theirs.

/// A setting of [`crate::config::RecorderConfig`] (and of [`crate::source::Login`]), as errors
/// and warnings name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Each is the field of the same name.
pub enum Field {
    Url,
    Username,
    Password,
    PasswordFile,
    Out,
    SegmentDuration,
    OnSegmentComplete,
    KeepFor,
    KeepSize,
    Duration,
    StallTimeout,
    GiveUpAfter,
    ConnectTimeout,
    Transport,
    Video,
    Audio,
    StopOnLoss,
    TlsCa,
    TlsFingerprint,
    TlsInsecure,
    KernelTimestamps,
}

impl Field {
    /// The field's own name, as a library user knows it.
    pub fn name(self) -> &'static str {
        match self {
            Field::Url => "source.url",
            Field::Username => "login.username",
            Field::Password => "login.password",
            Field::PasswordFile => "login.password_file",
            Field::Out => "out",
            Field::SegmentDuration => "segment_duration",
            Field::OnSegmentComplete => "on_segment_complete",
            Field::KeepFor => "keep_for",
            Field::KeepSize => "keep_size",
            Field::Duration => "duration",
            Field::StallTimeout => "stall_timeout",
            Field::GiveUpAfter => "give_up_after",
            Field::ConnectTimeout => "connect_timeout",
            Field::Transport => "transport",
            Field::Video => "video",
            Field::Audio => "audio",
            Field::StopOnLoss => "stop_on_loss",
            Field::TlsCa => "tls (Trust::Ca)",
            Field::TlsFingerprint => "tls (Trust::Fingerprint)",
            Field::TlsInsecure => "tls (Trust::Insecure)",
            Field::KernelTimestamps => "kernel_timestamps",
        }
    }
}

/// How a front-end names [`Field`]s: the command line as its flags, a site file as its keys.
#[derive(Clone, Copy)]
pub struct Wording(pub fn(Field) -> &'static str);

impl Wording {
    /// What `field` is called.
    pub fn of(self, field: Field) -> &'static str {
        (self.0)(field)
    }
}

impl Default for Wording {
    fn default() -> Wording {
        Wording(Field::name)
    }
}

/// The same for every wording, so that configs compare by what they record.
impl std::fmt::Debug for Wording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wording")
    }
}
