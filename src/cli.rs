//! Command line: the flags of retina-record 0.2, plus a few new ones.
//!
//! Credentials can come from the URL, `--username`/`--password`, `--password-file`, or the
//! `RTSP_USERNAME`/`RTSP_PASSWORD` environment variables; none of them is ever printed. URLs
//! are shown through [`redacted`], which drops the user-info part.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "retina-record",
    version,
    about = "Record an RTSP camera to a crash-safe fragmented MP4, without transcoding, \
             with per-frame timing data.",
    after_help = "Exit status: 0 clean stop (Ctrl-C, SIGTERM, SIGHUP, --duration); 1 recording \
                  failed; 2 bad usage; 130 second Ctrl-C (fragments written so far are kept).",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// `rtsp://` URL to record. May include credentials (`rtsp://user:pass@host/path`).
    #[arg(long, value_name = "URL", required = true)]
    pub url: Option<String>,

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

    /// Policy for the `rtptime` parameter of the `RTP-Info` header: `default`, `require`,
    /// `ignore` or `permissive`.
    #[arg(long, default_value_t)]
    pub initial_timestamp: retina::client::InitialTimestampPolicy,

    /// Policy for RTCP packets with an unknown SSRC: `default`, `abort-session`,
    /// `drop-packets` or `process-packets`.
    #[arg(long, default_value_t)]
    pub unknown_rtcp_ssrc: retina::client::UnknownRtcpSsrcPolicy,

    /// Don't record video.
    #[arg(long)]
    pub no_video: bool,

    /// Don't record audio.
    #[arg(long)]
    pub no_audio: bool,

    /// Record this video stream, by its index in the camera's SDP (0 = the first `m=` line).
    /// Default: the first video stream that can be stored.
    #[arg(long, value_name = "N", conflicts_with = "no_video")]
    pub video_stream: Option<usize>,

    /// Record this audio stream, by its index in the camera's SDP (0 = the first `m=` line).
    /// Default: the first audio stream that can be stored.
    #[arg(long, value_name = "N", conflicts_with = "no_audio")]
    pub audio_stream: Option<usize>,

    /// Don't write the timing SEI (receive time, RTP time, sender reports).
    #[arg(long)]
    pub no_timing_info: bool,

    /// Keep recording when RTP packets are lost (the loss is logged); without it, loss stops
    /// the recording. Recommended with --transport udp.
    #[arg(long)]
    pub allow_loss: bool,

    /// When to send `TEARDOWN`: `auto`, `always` or `never`.
    #[arg(long, default_value_t)]
    pub teardown: retina::client::TeardownPolicy,

    /// Start recording at this local time today, `HH:MM` or `HH:MM:SS`.
    #[arg(long, value_name = "HH:MM[:SS]", value_parser = parse_start)]
    pub start: Option<jiff::civil::Time>,

    /// Stop after this long: seconds (`90`) or with units (`90s`, `10m`, `1h30m`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// RTP transport: `auto` (TCP, or UDP when the camera refuses TCP), `tcp` (interleaved in
    /// the RTSP connection) or `udp`.
    #[arg(long, default_value = "auto", value_parser = parse_transport)]
    pub transport: Transport,

    /// Stop with an error (keeping the recording) when the camera sends nothing for this
    /// long, so that a service manager can restart the recorder.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub stall_timeout: Duration,

    /// Close a fragment once it holds this much media: the most a crash can lose.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_fragment_duration)]
    pub fragment_duration: Duration,

    /// Output file. Default: `movie%Y%m%d_%H%M%S_<camera>.mp4` in the current directory, named
    /// for the start time and the camera's host name.
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve a camera over RTSP (TCP and UDP) until Ctrl-C: the built-in clip, looping, with
    /// sender reports. For trying retina-record, or testing anything that reads RTSP.
    Camera(CameraArgs),
    /// Record 10 s from the built-in camera through the normal recording path, then show what
    /// was written and how to look at it.
    Demo(DemoArgs),
}

#[derive(Debug, clap::Args)]
pub struct CameraArgs {
    /// Address to listen on; loopback unless told otherwise (`0.0.0.0:8554` serves the network).
    #[arg(long, default_value = "127.0.0.1:8554")]
    pub listen: std::net::SocketAddr,

    /// Video codec of the built-in clip.
    #[arg(long, default_value = "h264", value_parser = ["h264", "h265"])]
    pub video: String,

    /// Audio of the built-in clip: AAC 16 kHz, G.711 µ-law 8 kHz, G.711 A-law 16 kHz, L16 16 kHz,
    /// or none.
    #[arg(long, default_value = "aac", value_parser = ["aac", "pcmu", "pcma", "l16", "none"])]
    pub audio: String,

    /// Pace the media this many times faster than real time (RTP and sender-report times
    /// stay those of real-time media).
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,

    /// Serve this clip instead: a fragmented MP4 with H.264 or H.265 video at a 90 kHz timescale
    /// and optional AAC, as `clips/make-clips.sh` makes them.
    #[arg(long, value_name = "FILE")]
    pub clip: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Output file. Default: `demo-%Y%m%d_%H%M%S.mp4`.
    pub out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP first; UDP if the camera answers `461 Unsupported Transport`.
    Auto,
    Tcp,
    Udp,
}

fn parse_transport(s: &str) -> Result<Transport, String> {
    match s {
        "auto" => Ok(Transport::Auto),
        "tcp" => Ok(Transport::Tcp),
        "udp" => Ok(Transport::Udp),
        _ => Err("expected `auto`, `tcp` or `udp`".into()),
    }
}

/// Parses `90`, `90s`, `10m`, `1h30m`, `1h2m3s`, `1.5s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad =
        || format!("`{s}` is not a duration: use seconds (`90`) or units (`90s`, `10m`, `1h30m`)");
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

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.01..=100.0).contains(&v) => Ok(v),
        _ => Err("expected a number from 0.01 to 100".into()),
    }
}

fn parse_fragment_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(60) {
        return Err("must be between 100ms and 60s".into());
    }
    Ok(d)
}

fn parse_start(s: &str) -> Result<jiff::civil::Time, String> {
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

/// Where to connect and as whom.
pub struct Source {
    /// The URL without user-info (retina refuses credentials inside URLs).
    pub url: url::Url,
    pub credentials: Option<retina::client::Credentials>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("url", &redacted(&self.url))
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Args {
    /// Resolves the URL and credentials, in precedence order: `--password-file`, then
    /// `--password`/`RTSP_PASSWORD`, then the URL; likewise `--username`/`RTSP_USERNAME`
    /// before the URL's user name.
    pub fn source(&self) -> anyhow::Result<Source> {
        let url = self.url.as_deref().context("--url is required")?;
        // Never echo the argument: it may hold a password.
        let mut url = url::Url::parse(url).map_err(|e| {
            anyhow::anyhow!("--url is not a valid URL ({e}); expected rtsp://host[:port]/path")
        })?;
        if url.scheme() != "rtsp" {
            bail!(
                "--url must be an rtsp:// URL, not {}://",
                url.scheme()
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
            );
        }
        if url.host_str().is_none_or(str::is_empty) {
            bail!("--url has no host name");
        }
        let url_user = percent_decode(url.username());
        let url_pass = url.password().map(percent_decode);
        let _ = url.set_username("");
        let _ = url.set_password(None);

        let password = match &self.password_file {
            Some(path) => Some(read_password_file(path)?),
            None => self.password.clone().or(url_pass),
        };
        let username = self
            .username
            .clone()
            .or((!url_user.is_empty()).then_some(url_user));
        let credentials = match (username, password) {
            (Some(username), password) => Some(retina::client::Credentials {
                username,
                password: password.unwrap_or_default(),
            }),
            (None, None) => None,
            (None, Some(_)) => bail!(
                "a password was given without a username: pass --username, set RTSP_USERNAME, \
                 or put it in the URL"
            ),
        };
        Ok(Source { url, credentials })
    }
}

fn read_password_file(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --password-file {}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL as it may be shown: without user name or password.
pub fn redacted(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// `host:port` of the camera, for messages.
pub fn host_port(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    let port = url.port().unwrap_or(554);
    format!("{host}:{port}")
}

/// The camera's name for the default file name: the host name's first label; for an IP
/// address, the first label of its reverse-DNS name, else the address with dashes (as 0.2:
/// `ipv4-10-0-0-5`).
pub async fn camera_name(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("camera");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => match reverse_lookup(ip).await {
            Some(name) => first_label(&name),
            None => match ip {
                std::net::IpAddr::V4(_) => format!("ipv4-{ip}").replace('.', "-"),
                std::net::IpAddr::V6(_) => format!("ipv6-{ip}").replace(':', "-"),
            },
        },
        Err(_) => first_label(host),
    };
    // Keep file names portable whatever DNS says.
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn first_label(name: &str) -> String {
    name.split('.').next().unwrap_or(name).to_owned()
}

/// Reverse DNS through the system resolver (so `/etc/hosts` counts), bounded to 2 s.
async fn reverse_lookup(ip: std::net::IpAddr) -> Option<String> {
    let lookup = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip).ok());
    let name = tokio::time::timeout(Duration::from_secs(2), lookup)
        .await
        .ok()?
        .ok()??;
    // getnameinfo gives the address back as text when there is no name.
    let is_name = name.parse::<std::net::IpAddr>().is_err() && !name.ends_with(".arpa");
    is_name.then_some(name)
}

/// The default output name: `movie%Y%m%d_%H%M%S_<camera>.mp4`.
pub fn default_out_name(start: &jiff::Zoned, camera: &str) -> PathBuf {
    PathBuf::from(format!(
        "movie{}_{camera}.mp4",
        start.strftime("%Y%m%d_%H%M%S")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let s = Duration::from_secs;
        assert_eq!(parse_duration("90"), Ok(s(90)));
        assert_eq!(parse_duration("90s"), Ok(s(90)));
        assert_eq!(parse_duration("10m"), Ok(s(600)));
        assert_eq!(parse_duration("1h30m"), Ok(s(5400)));
        assert_eq!(parse_duration("1h2m3s"), Ok(s(3723)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "10x", "1m1h", "1s1s", "-5", "1h 30m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn start_times() {
        assert_eq!(parse_start("07:05"), Ok(jiff::civil::time(7, 5, 0, 0)));
        assert_eq!(
            parse_start("23:59:58"),
            Ok(jiff::civil::time(23, 59, 58, 0))
        );
        for bad in ["7:05", "24:00", "12:60", "12", "12:00:00:00", "ab:cd"] {
            assert!(parse_start(bad).is_err(), "{bad:?}");
        }
    }

    fn args(extra: &[&str]) -> Result<Args, clap::Error> {
        let mut argv = vec!["retina-record"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv)
    }

    fn credentials(extra: &[&str]) -> anyhow::Result<(String, String, String)> {
        let src = args(extra)?.source()?;
        let c = src.credentials.context("no credentials")?;
        Ok((src.url.to_string(), c.username, c.password))
    }

    #[test]
    fn credentials_from_url_are_removed_from_it() -> anyhow::Result<()> {
        let (url, user, pass) =
            credentials(&["--url", "rtsp://ad%40min:s3cr%3At@cam.example:8554/s"])?;
        assert_eq!(url, "rtsp://cam.example:8554/s");
        assert_eq!((user.as_str(), pass.as_str()), ("ad@min", "s3cr:t"));
        Ok(())
    }

    #[test]
    fn flags_override_url_credentials() -> anyhow::Result<()> {
        let (_, user, pass) = credentials(&[
            "--url",
            "rtsp://u:p@cam/s",
            "--username",
            "v",
            "--password",
            "q",
        ])?;
        assert_eq!((user.as_str(), pass.as_str()), ("v", "q"));
        Ok(())
    }

    #[test]
    fn bad_url_error_does_not_echo_it() -> anyhow::Result<()> {
        for url in ["rtsp://user:hunter2@[bad/s", "http://user:hunter2@cam/s"] {
            let err = match args(&["--url", url])?.source() {
                Ok(_) => anyhow::bail!("{url} was accepted"),
                Err(e) => e.to_string(),
            };
            assert!(!err.contains("hunter2"), "{err}");
        }
        Ok(())
    }

    #[test]
    fn redaction() -> anyhow::Result<()> {
        let u = url::Url::parse("rtsp://user:pw@cam:554/x?y=1")?;
        assert_eq!(redacted(&u), "rtsp://cam:554/x?y=1");
        Ok(())
    }

    #[tokio::test]
    async fn camera_names() -> anyhow::Result<()> {
        let frontdoor = url::Url::parse("rtsp://frontdoor.lan:554/s")?;
        assert_eq!(camera_name(&frontdoor).await, "frontdoor");
        // 192.0.2.0/24 is TEST-NET-1: no reverse name exists.
        let test_net = url::Url::parse("rtsp://192.0.2.7/s")?;
        assert_eq!(camera_name(&test_net).await, "ipv4-192-0-2-7");
        Ok(())
    }

    #[test]
    fn default_name() -> anyhow::Result<()> {
        let t: jiff::Zoned = "2026-11-24T08:09:10[UTC]".parse()?;
        assert_eq!(
            default_out_name(&t, "frontdoor"),
            PathBuf::from("movie20261124_080910_frontdoor.mp4")
        );
        Ok(())
    }
}
