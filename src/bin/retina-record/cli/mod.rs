//! The command line: the flags of retina-record 0.2, plus a few new ones, as clap definitions.
//! Only this module, [`crate::cmd`] and `main.rs` know clap: the commands turn these into the
//! library's plain configs.

pub(crate) mod export;
pub(crate) mod parse;
pub(crate) mod site;
pub(crate) mod wording;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use retina_record::camera::BuiltinAudio;
use retina_record::codec::VideoCodec;
use retina_record::config::Transport;
use retina_record::timing::align::AlignBy;

const EXAMPLES: &str = "\
Examples:
  retina-record --url rtsp://cam.lan/stream front.mp4
  retina-record --url rtsp://cam.lan/stream --password-file /etc/cam.pass \\
      --segment-duration 10m --keep-for 14d 'rec/front/%Y-%m-%d/%H%M%S.mp4'
  retina-record --config site.toml --metrics 127.0.0.1:9898
  retina-record probe rtsp://cam.lan/stream
  retina-record timing --summary rec/front/2026-11-28/*.mp4

Exit status: 0 clean stop (Ctrl-C, SIGTERM, SIGHUP, --duration); 1 recording failed (with \
several cameras: any camera failed for good); 2 bad usage or a bad site file; 130 second Ctrl-C \
(fragments written so far are kept).";

#[derive(Clone, Debug, Parser)]
#[command(
    name = "retina-record",
    version,
    about = "Record an RTSP camera to a crash-safe fragmented MP4, without transcoding, \
             with per-frame timing data.",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// `rtsp://` (or `rtsps://`, over TLS) URL to record. May include credentials
    /// (`rtsp://user:pass@host/path`). Give it several times to record several cameras in one
    /// process, each named for its host (the other flags apply to each; OUT then needs
    /// `{camera}`).
    #[arg(
        help_heading = "Camera",
        long,
        value_name = "URL",
        required_unless_present = "config",
        conflicts_with = "config"
    )]
    pub url: Vec<String>,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Don't record video.
    #[arg(help_heading = "Camera", long)]
    pub no_video: bool,

    /// Don't record audio.
    #[arg(help_heading = "Camera", long)]
    pub no_audio: bool,

    /// Record this video stream, by its index in the camera's SDP (0 = the first `m=` line).
    /// Default: the first video stream that can be stored.
    #[arg(
        help_heading = "Camera",
        long,
        value_name = "N",
        conflicts_with = "no_video"
    )]
    pub video_stream: Option<usize>,

    /// Record this audio stream, by its index in the camera's SDP (0 = the first `m=` line).
    /// Default: the first audio stream that can be stored.
    #[arg(
        help_heading = "Camera",
        long,
        value_name = "N",
        conflicts_with = "no_audio"
    )]
    pub audio_stream: Option<usize>,

    /// Stop the recording (exit 1, file kept) at the first lost RTP packet, naming the gap.
    /// Without it, loss is counted and logged and the recording goes on, as ffmpeg's does.
    #[arg(help_heading = "Camera", long)]
    pub stop_on_loss: bool,

    /// Record through lost RTP packets: the default; accepted for retina-record 0.2's command
    /// lines.
    #[arg(help_heading = "Camera", long, conflicts_with = "stop_on_loss")]
    pub allow_loss: bool,

    /// Treat the camera as gone when it sends no frame for this long: reconnect (with
    /// --no-reconnect, stop with an error, keeping the recording).
    #[arg(
        help_heading = "Connection",
        long,
        value_name = "DURATION",
        default_value = "30s",
        value_parser = parse::duration,
    )]
    pub stall_timeout: Duration,

    /// Don't reconnect: a dropped connection, an ended stream or a silent camera ends the
    /// recording (exit 1, file kept), as retina-record 0.2 did.
    #[arg(help_heading = "Connection", long)]
    pub no_reconnect: bool,

    /// Longest wait between reconnection attempts (the first comes after 1 s, then doubling).
    #[arg(
        help_heading = "Connection",
        long,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = parse::duration,
    )]
    pub reconnect_max_delay: Duration,

    /// Exit with an error after this long without a working connection (default: never).
    #[arg(
        help_heading = "Connection",
        long,
        value_name = "DURATION",
        value_parser = parse::duration,
    )]
    pub give_up_after: Option<Duration>,

    /// Start recording at this local time today, `HH:MM` or `HH:MM:SS`.
    #[arg(help_heading = "Output", long, value_name = "HH:MM[:SS]", value_parser = parse::start)]
    pub start: Option<jiff::civil::Time>,

    /// Stop after this long: seconds (`90`) or with units (`90s`, `10m`, `1h30m`).
    #[arg(help_heading = "Output", long, value_name = "DURATION", value_parser = parse::duration)]
    pub duration: Option<Duration>,

    /// Close a fragment once it holds this much media: the most a crash can lose.
    #[arg(
        help_heading = "Output",
        long,
        value_name = "DURATION",
        default_value = "1s",
        value_parser = parse::fragment_duration
    )]
    pub fragment_duration: Duration,

    /// Start a new file at the first keyframe at or after each multiple of this from local
    /// midnight (`10m`: at :00, :10, :20, …). Needs OUT to be a template.
    #[arg(
        help_heading = "Segments and retention",
        long,
        value_name = "DURATION",
        value_parser = parse::segment_duration,
    )]
    pub segment_duration: Option<Duration>,

    /// Run this shell command (`sh -c`) after each file is finished, with RETINA_RECORD_FILE,
    /// RETINA_RECORD_START, RETINA_RECORD_END (RFC 3339, UTC) and RETINA_RECORD_CAMERA set. At
    /// most 4 run at once; the recording never waits for them (but waits up to 30 s at exit).
    #[arg(help_heading = "Segments and retention", long, value_name = "COMMAND")]
    pub on_segment_complete: Option<String>,

    /// Delete this recording's finished files (those OUT's template matches) older than this
    /// (`7d`, `36h`). Needs OUT to be a template.
    #[arg(
        help_heading = "Segments and retention",
        long,
        value_name = "DURATION",
        value_parser = parse::keep_for,
    )]
    pub keep_for: Option<Duration>,

    /// Delete this recording's oldest finished files while they take more than this (`500G`,
    /// `1.5T`; binary units). Needs OUT to be a template.
    #[arg(
        help_heading = "Segments and retention",
        long,
        value_name = "SIZE",
        value_parser = parse::size,
    )]
    pub keep_size: Option<u64>,

    /// Don't write the timing SEI (receive time, RTP time, sender reports).
    #[arg(help_heading = "Timing", long)]
    pub no_timing_info: bool,

    /// No status line on a terminal, and only warnings and errors in the log (RUST_LOG still
    /// rules when set).
    #[arg(long, short, help_heading = "Logging")]
    pub quiet: bool,

    /// Record the cameras of this site file (TOML): a `[defaults]` table and a `[camera.NAME]`
    /// table per camera, whose keys are these flags' long names (`url`, `password-file`,
    /// `segment-duration`, …; `output` for OUT, where `{camera}` is the camera's name). See
    /// docs/many-cameras.md.
    #[arg(help_heading = "Several cameras", long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Record only these cameras (names, comma-separated).
    #[arg(
        help_heading = "Several cameras",
        long,
        value_name = "NAME,…",
        value_delimiter = ','
    )]
    pub only: Vec<String>,

    /// Record only shard K of N: the cameras whose name hashes (FNV-1a) to K modulo N, so that
    /// N machines or replicas, each with its own K, share a site file without coordinating.
    #[arg(help_heading = "Several cameras", long, value_name = "K/N", value_parser = parse::shard)]
    pub shard: Option<(u64, u64)>,

    /// Serve Prometheus metrics (OpenMetrics text) at http://ADDR/metrics: per camera frames,
    /// bytes, lost packets, dropped frames, reconnects, connected, seconds since the last
    /// frame and the last durable fragment, files written and deleted; disk free per output
    /// filesystem.
    #[arg(help_heading = "Several cameras", long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Output file, or a strftime template for each file's name, expanded for the local time
    /// of its first frame (`cams/door/%Y-%m-%d/%H%M%S.mp4`; directories are created). Default:
    /// `movie%Y%m%d_%H%M%S_<camera>.mp4` in the current directory, named for the camera's host.
    pub out: Option<PathBuf>,

    /// The ids of the flags given on the command line (not defaults or the environment).
    #[arg(skip)]
    pub given: Vec<String>,
}

/// The command line, knowing which flags were given on it.
pub(crate) fn parse() -> Args {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let matches = Args::command()
        .try_get_matches()
        .and_then(|m| Ok((Args::from_arg_matches(&m)?, m)));
    match matches {
        Ok((mut args, matches)) => {
            args.given = given(&matches);
            args
        }
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            use std::io::Write as _;
            // Not eprintln!, which panics when stderr's reader has gone.
            let _ = writeln!(
                std::io::stderr(),
                "error: {}",
                one_line_usage(&e.to_string())
            );
            std::process::exit(2)
        }
    }
}

/// clap's usage error as one line: its message (with the values it lists on the lines below
/// it) and its tip, then where to look; without the usage block.
fn one_line_usage(rendered: &str) -> String {
    let mut paragraphs = rendered.split("\n\n");
    let message = paragraphs.next().unwrap_or_default();
    let mut line: Vec<&str> = message.lines().map(str::trim).collect();
    if let Some(first) = line.first_mut() {
        *first = first.strip_prefix("error: ").unwrap_or(first);
    }
    let mut out = line.join(" ");
    for p in paragraphs {
        if let Some(tip) = p.trim().strip_prefix("tip: ") {
            out = format!("{out}; {tip}");
        }
    }
    format!("{out} (see --help)")
}

fn given(matches: &clap::ArgMatches) -> Vec<String> {
    use clap::CommandFactory as _;
    let command = Args::command();
    matches
        .ids()
        .filter(|id| {
            // Arguments only: the struct's group has an id too.
            command.get_arguments().any(|a| a.get_id() == *id)
                && matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(|id| id.as_str().to_owned())
        .collect()
}

#[derive(Clone, Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Serve a camera over RTSP (TCP and UDP) until Ctrl-C: the built-in clip, looping, with
    /// sender reports. For trying retina-record, or testing anything that reads RTSP.
    Camera(CameraArgs),
    /// Record 10 s from the built-in camera through the normal recording path, then show what
    /// was written and how to look at it.
    Demo(DemoArgs),
    /// Read recordings' timing data: each frame's capture time by the camera's clock (CSV),
    /// the clocks' health (--summary), several cameras lined up (--align), a plot (--plot).
    Timing(TimingArgs),
    /// Cut recordings to a time interval, losslessly and frame-accurately, into one MP4 per
    /// camera: by capture time (the camera's clock) or receive time, across files and gaps.
    Export(export::ExportArgs),
    /// What was recorded: per camera, the continuous spans and the gaps between them, with
    /// their files, read from the files' indexes.
    List(export::ListArgs),
    /// What a camera sends, and whether it can be recorded: each stream's codec, resolution,
    /// profile and level, frame rate, GOP length, B-frames, audio format, sender reports and
    /// bitrate, from a few seconds of listening.
    Probe(ProbeArgs),
    /// Finish the `.partial` files a killed recorder left, as a clean stop would have: cut a
    /// torn last fragment, write the durations and the index, sync, name it as the recording.
    Repair(RepairArgs),
    /// Print a shell completion script to stdout (e.g. `retina-record completions bash >
    /// ~/.local/share/bash-completion/completions/retina-record`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout (e.g. `retina-record man | man -l -`).
    Man,
}

#[derive(Clone, Debug, clap::Args)]
pub(crate) struct CameraArgs {
    /// Address to listen on; loopback unless told otherwise (`0.0.0.0:8554` serves the network).
    #[arg(long, default_value = "127.0.0.1:8554")]
    pub listen: std::net::SocketAddr,

    /// Video codec of the built-in clip.
    #[arg(long, default_value = "h264", value_parser = parse::video_codec())]
    pub video: VideoCodec,

    /// Audio of the built-in clip: AAC 16 kHz, G.711 µ-law 8 kHz, G.711 A-law 16 kHz, L16 16 kHz,
    /// or none.
    #[arg(long, default_value = "aac", value_parser = parse::builtin_audio())]
    pub audio: BuiltinAudio,

    /// Pace the media this many times faster than real time (RTP and sender-report times
    /// stay those of real-time media).
    #[arg(long, default_value_t = 1.0, value_parser = parse::speed)]
    pub speed: f64,

    /// Serve this clip instead: a fragmented MP4 with H.264 or H.265 video at a 90 kHz timescale
    /// and optional AAC, as `clips/make-clips.sh` makes them.
    #[arg(long, value_name = "FILE")]
    pub clip: Option<PathBuf>,

    /// Run the camera's NTP clock (its sender reports) this far ahead of this machine's clock;
    /// negative: behind (`250ms`, `-1.5s`).
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse::signed_secs,
        allow_hyphen_values = true,
    )]
    pub clock_offset: Option<f64>,

    /// Run the camera's RTP clocks this many parts per million fast against its NTP clock
    /// (negative: slow).
    #[arg(long, value_name = "PPM", allow_hyphen_values = true, value_parser = parse::ppm)]
    pub rtp_drift_ppm: Option<f64>,

    /// Send each frame up to this much later than due, at random (the same each run).
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub send_jitter: Option<Duration>,

    /// Stamp each sender report's NTP time up to D off, either way, at random (and one in 50
    /// 20 to 50 times as far), as a camera stamping reports when it builds them does.
    #[arg(long, value_name = "D", value_parser = parse::duration)]
    pub sr_jitter: Option<Duration>,

    /// Step the camera's NTP clock by D at T seconds into each session (`200ms@30s`, `-1s@10`),
    /// as a camera's NTP client correcting its clock does.
    #[arg(long, value_name = "D@T", value_parser = parse::ntp_step, allow_hyphen_values = true)]
    pub ntp_step: Option<(f64, f64)>,

    /// Write a CSV row for every video frame sent: `session,rtp,capture_unix,sent_unix` (its
    /// capture time by the camera's own clock, and when this machine sent it).
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,

    /// Serve RTSPS (RTSP over TLS) with a throwaway self-signed certificate, made now; its
    /// fingerprint is printed for --tls-fingerprint.
    #[arg(long)]
    pub tls: bool,

    /// Serve RTSPS with this certificate (PEM; the chain, the camera's first).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// How to connect to a camera: the recorder's flags and `probe`'s, defined once so that the
/// two connect alike.
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "Connection")]
pub(crate) struct ConnectionArgs {
    /// Username, if the camera requires authentication.
    #[arg(long, env = "RTSP_USERNAME", hide_env_values = true)]
    pub username: Option<String>,

    /// Password. Prefer --password-file or RTSP_PASSWORD: command lines are visible to
    /// other users of the machine.
    #[arg(long, env = "RTSP_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// Read the password from the first line of FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "password")]
    pub password_file: Option<PathBuf>,

    /// RTP transport: `auto` (TCP, or UDP when the camera refuses TCP), `tcp` (interleaved in
    /// the RTSP connection) or `udp` (or TCP when nothing arrives over UDP within 5 s).
    #[arg(long, default_value = "auto")]
    pub transport: Transport,

    /// Policy for the `rtptime` parameter of the `RTP-Info` header: `default` (use it; when
    /// the camera gives none, line the streams up by their first packets, said once in the
    /// log), `require`, `ignore` or `permissive`.
    #[arg(long, default_value_t)]
    pub initial_timestamp: retina::client::InitialTimestampPolicy,

    /// Policy for RTCP packets with an unknown SSRC: `default`, `abort-session`,
    /// `drop-packets` or `process-packets`.
    #[arg(long, default_value_t)]
    pub unknown_rtcp_ssrc: retina::client::UnknownRtcpSsrcPolicy,

    /// When to send `TEARDOWN`: `auto`, `always` or `never`.
    #[arg(long, default_value_t)]
    pub teardown: retina::client::TeardownPolicy,

    /// For an `rtsps://` camera: trust the CA in this PEM file (or this self-signed
    /// certificate) instead of the system's CAs.
    #[arg(long, value_name = "FILE", group = "tls")]
    pub tls_ca: Option<PathBuf>,

    /// For an `rtsps://` camera: accept exactly the certificate with this SHA-256
    /// (`sha256:HEX`, as `probe` prints it): a self-signed camera, pinned.
    #[arg(long, value_name = "sha256:HEX", group = "tls", value_parser = parse::fingerprint)]
    pub tls_fingerprint: Option<[u8; 32]>,

    /// For an `rtsps://` camera: do not check its certificate at all (warned at start). Anyone
    /// between can then read and change the stream and the credentials.
    #[arg(long, group = "tls")]
    pub tls_insecure: bool,

    /// Take each packet's receive time from the kernel (when its last TCP segment arrived)
    /// instead of when the recorder read it: no delay from a busy machine. RTP over TCP only;
    /// `rtsps://` cameras always are.
    #[arg(long)]
    pub kernel_timestamps: bool,

    /// Longest wait for each step of connecting: TCP connect, the TLS handshake, OPTIONS and
    /// DESCRIBE (each redirect), each SETUP, PLAY.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse::duration)]
    pub connect_timeout: Duration,
}

#[derive(Clone, Debug, clap::Args)]
pub(crate) struct ProbeArgs {
    /// `rtsp://` URL of the camera. May include credentials (`rtsp://user:pass@host/path`).
    #[arg(value_name = "URL")]
    pub url: String,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// How long to listen.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse::duration)]
    pub duration: Duration,

    /// JSON instead of text (the schema: docs/recording.md, "Probing a camera").
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Debug, clap::Args)]
pub(crate) struct TimingArgs {
    /// A camera's recordings (retina-record 0.2 or later): files, a directory (every .mp4
    /// below it), a recording template (`front/%Y-%m-%d/%H%M%S.mp4`) or NAME=GLOB. Without
    /// --align all of them are one camera, its files in any order; with --align, each is one
    /// camera.
    #[arg(required_unless_present = "config", value_name = "INPUT")]
    pub inputs: Vec<String>,

    #[command(flatten)]
    pub site: export::SiteCameras,

    /// Print the clock health instead of the frames: frames, gaps, sender reports, RTP clock
    /// error, NTP steps, the camera's clock offset, latency and jitter (per file and whole).
    #[arg(long)]
    pub summary: bool,

    /// JSON instead of CSV or text: one object per line for frames and pairs, one object for a
    /// summary.
    #[arg(long)]
    pub json: bool,

    /// Line up the cameras: for each frame of the first camera, the nearest frame of each
    /// other (with --summary: each camera's clock offsets, drift and unpaired frames).
    #[arg(long)]
    pub align: bool,

    /// What --align compares: `camera` (capture times by each camera's clock: NTP-synced
    /// cameras), `corrected` (capture times moved to this machine's clock by each camera's
    /// measured offset) or `recv` (receive times).
    #[arg(long, default_value = "camera", value_parser = parse::align_by(), requires = "align")]
    pub align_by: AlignBy,

    /// Draw latency and the clock fit's residuals over time, per file, as an SVG image.
    #[arg(long, value_name = "FILE.svg", conflicts_with = "align")]
    pub plot: Option<PathBuf>,
}

#[derive(Clone, Debug, clap::Args)]
pub(crate) struct RepairArgs {
    /// The `.partial` files to finish (retina-record 0.3 or later).
    #[arg(required = true, value_name = "FILE.partial")]
    pub files: Vec<PathBuf>,

    /// Say what would be kept and dropped; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Clone, Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Output file. Default: `demo-%Y%m%d_%H%M%S.mp4`.
    pub out: Option<PathBuf>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn args(extra: &[&str]) -> Result<Args, clap::Error> {
        let mut argv = vec!["retina-record"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv)
    }

    #[test]
    fn definitions_are_consistent() {
        use clap::CommandFactory as _;
        Args::command().debug_assert();
    }

    #[test]
    fn usage_errors_are_one_line() {
        let Err(e) = args(&["--bogus"]) else {
            panic!("--bogus accepted");
        };
        let line = one_line_usage(&e.to_string());
        assert_eq!(
            line,
            "unexpected argument '--bogus' found; to pass '--bogus' as a value, use '-- --bogus' \
             (see --help)"
        );
        let Err(e) = args(&[]) else {
            panic!("no --url accepted");
        };
        let line = one_line_usage(&e.to_string());
        assert!(line.starts_with("the following required arguments were not provided: --url"));
    }

    #[test]
    fn camera_codecs_are_checked_by_clap() {
        let Err(e) = args(&["camera", "--video", "vp8"]) else {
            panic!("vp8 accepted");
        };
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(e.to_string().contains("possible values"), "{e}");
    }
}
