//! What one camera's recording is to be: plain data that the command line (or any other
//! front-end, or code such as the demo) builds and the recorder reads. Nothing here knows how
//! it was asked for.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::source::Source;
pub use crate::wording::{Field, Wording};

/// Default of [`RecorderConfig::stall_timeout`].
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`RecorderConfig::reconnect_max_delay`].
pub const DEFAULT_RECONNECT_MAX_DELAY: Duration = Duration::from_secs(10);
/// Default of [`RecorderConfig::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`RecorderConfig::fragment_duration`].
pub const DEFAULT_FRAGMENT_DURATION: Duration = Duration::from_secs(1);

/// Everything the recorder needs to record one camera.
#[derive(Clone, Debug)]
pub struct RecorderConfig {
    /// The camera.
    pub source: Source,
    /// The camera's name, for default file names and hooks (`RETINA_RECORD_CAMERA`). `None`:
    /// the first label of its host's name (looked up for an IP address).
    pub name: Option<String>,
    /// The output file, or a strftime template for its name (it has a `%`), expanded for the
    /// local time of each file's first frame. `None`: the template
    /// `movie%Y%m%d_%H%M%S_<camera>.mp4` in the current directory, named for the camera's host.
    pub out: Option<PathBuf>,
    /// Start a new file at the first keyframe at or after each multiple of this from local
    /// midnight (needs a template).
    pub segment_duration: Option<Duration>,
    /// Run this with `sh -c` after each file is finished.
    pub on_segment_complete: Option<String>,
    /// Delete this camera's finished recordings older than this (needs a template).
    pub keep_for: Option<Duration>,
    /// Delete this camera's oldest finished recordings while they take more than this many
    /// bytes (needs a template).
    pub keep_size: Option<u64>,
    /// Wait until this moment before connecting.
    pub start: Option<jiff::Zoned>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// The camera is gone when it sends no frame for this long.
    pub stall_timeout: Duration,
    /// Reconnect when the connection drops, the stream ends or the camera goes silent; without
    /// it, each of these ends the recording with an error.
    pub reconnect: bool,
    /// Longest wait between reconnection attempts.
    pub reconnect_max_delay: Duration,
    /// Give up (an error) after this long without a working connection.
    pub give_up_after: Option<Duration>,
    /// Longest wait for each step of connecting.
    pub connect_timeout: Duration,
    /// Close a fragment once it holds this much media: the most a crash can lose.
    pub fragment_duration: Duration,
    /// How RTP travels.
    pub transport: Transport,
    /// Which video stream to record.
    pub video: StreamChoice,
    /// Which audio stream to record.
    pub audio: StreamChoice,
    /// Stop at the first lost RTP packet (an error naming the gap) instead of recording through
    /// loss, counted, as ffmpeg does.
    pub stop_on_loss: bool,
    /// Write the timing SEI on every frame.
    pub timing: bool,
    /// When to send `TEARDOWN`.
    pub teardown: retina::client::TeardownPolicy,
    /// Policy for the `rtptime` parameter of the `RTP-Info` header.
    pub initial_timestamp: retina::client::InitialTimestampPolicy,
    /// Which certificates an `rtsps://` camera may present.
    pub tls: crate::rtsp::tls::Trust,
    /// Take receive times from the kernel (`SO_TIMESTAMPNS`) through the bridge (RTP over TCP
    /// only): `rtsp/bridge/kernel_time.rs`. `rtsps://` cameras always are.
    pub kernel_timestamps: bool,
    /// Policy for RTCP packets with an unknown SSRC.
    pub unknown_rtcp_ssrc: retina::client::UnknownRtcpSsrcPolicy,
    /// How errors and warnings name these fields: as the front-end that filled them in asks
    /// (a flag, a site file's key). Default: the fields' own names.
    pub wording: Wording,
}

impl RecorderConfig {
    /// Records `source` with every default: until stopped, to the default file name, over
    /// TCP (UDP if the camera refuses TCP), the first storable stream of each kind.
    pub fn new(source: Source) -> RecorderConfig {
        RecorderConfig {
            source,
            name: None,
            out: None,
            segment_duration: None,
            on_segment_complete: None,
            keep_for: None,
            keep_size: None,
            start: None,
            duration: None,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            reconnect: true,
            reconnect_max_delay: DEFAULT_RECONNECT_MAX_DELAY,
            give_up_after: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            fragment_duration: DEFAULT_FRAGMENT_DURATION,
            transport: Transport::Auto,
            video: StreamChoice::FirstStorable,
            audio: StreamChoice::FirstStorable,
            stop_on_loss: false,
            timing: true,
            teardown: Default::default(),
            initial_timestamp: Default::default(),
            unknown_rtcp_ssrc: Default::default(),
            tls: Default::default(),
            kernel_timestamps: false,
            wording: Wording::default(),
        }
    }

    /// The settings that only make sense together, checked: a front-end calls this where it
    /// builds the config (and words the error as it was asked), the recorder again before it
    /// plans the output.
    pub fn check(&self) -> Result<()> {
        let name = |f: Field| self.wording.of(f);
        // Segments and retention work on a series of named files, so they need a template;
        // the hook needs files at all.
        let many_files = [
            (self.segment_duration.is_some(), Field::SegmentDuration),
            (self.keep_for.is_some(), Field::KeepFor),
            (self.keep_size.is_some(), Field::KeepSize),
        ];
        if self.source.url.scheme() == "rtsps" && self.transport == Transport::Udp {
            return Err(Error::usage(format!(
                "{} udp cannot carry an rtsps:// camera: RTP over UDP with TLS would be SRTP, \
                 which is not supported; use {} auto or tcp",
                name(Field::Transport),
                name(Field::Transport)
            )));
        }
        if self.kernel_timestamps && self.transport == Transport::Udp {
            return Err(Error::usage(format!(
                "{} reads the camera's TCP connection: it cannot go with {} udp",
                name(Field::KernelTimestamps),
                name(Field::Transport)
            )));
        }
        let hook = (self.on_segment_complete.is_some(), Field::OnSegmentComplete);
        let first_set = |fields: &[(bool, Field)]| fields.iter().find(|(s, _)| *s).map(|(_, f)| *f);
        match &self.out {
            Some(out) if out.as_os_str() == "-" => {
                match first_set(&many_files).or(first_set(&[hook])) {
                    Some(f) => Err(Error::usage(format!(
                        "{} is for files: {} `-` writes one stream to stdout",
                        name(f),
                        name(Field::Out)
                    ))),
                    None => Ok(()),
                }
            }
            Some(out) if !is_template(out) => match first_set(&many_files) {
                Some(f) => Err(Error::usage(format!(
                    "{} needs {} to be a strftime template, so that each file gets its own \
                     name: {} has no `%` (e.g. '{}-%Y%m%d_%H%M%S.mp4')",
                    name(f),
                    name(Field::Out),
                    out.display(),
                    out.file_stem().unwrap_or_default().to_string_lossy()
                ))),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// Whether `out` ([`RecorderConfig::out`]) is a strftime template: it has a `%`.
pub(crate) fn is_template(out: &std::path::Path) -> bool {
    out.to_string_lossy().contains('%')
}

/// Which stream of a kind (video, audio) to record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamChoice {
    /// None of this kind (`--no-video`, `--no-audio`).
    Skip,
    /// The first one that can be stored without transcoding.
    FirstStorable,
    /// This one, by its index in the camera's SDP (0 = the first `m=` line).
    Index(usize),
}

/// How RTP travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP first; UDP if the camera answers `461 Unsupported Transport`.
    Auto,
    /// Interleaved in the RTSP connection (RFC 2326 §10.12).
    Tcp,
    /// RTP and RTCP over UDP port pairs.
    Udp,
}

impl std::str::FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Transport::Auto),
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            _ => Err("expected `auto`, `tcp` or `udp`".into()),
        }
    }
}
