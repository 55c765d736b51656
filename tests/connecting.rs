//! How real servers answer a connection (`rtsp/workarounds.rs`), each a fault mode of the test
//! camera: recorded with default flags, and the log says once what was worked around.

use retina_record::camera::{Quirks, RtpInfo};
use retina_record::mp4::read::Recording;

use crate::support::rig::Finished;
use crate::support::{self, Recorder, Rig};

/// A camera with `quirks` (and audio or not), recorded with default flags (and `extra`) from
/// the path `path` until it has sent 3 s, then stopped.
async fn record(quirks: Quirks, audio: bool, path: &str, extra: &[&str]) -> (Rig, Finished) {
    let mut config = support::config("h264_aac.mp4");
    config.quirks = quirks;
    config.audio = audio;
    let rig = Rig::new(config).await;
    let url = format!("rtsp://{}{path}", rig.cam.addr());
    let out = rig.out.to_str().expect("utf-8 path");
    let mut args = vec!["--url", &url];
    args.extend_from_slice(extra);
    args.push(out);
    let rec = Recorder::spawn(rig.dir.path(), &args);
    rig.cam.wait_sent(3.0).await;
    rec.signal(libc::SIGTERM);
    let run = rec.wait().await;
    (rig, run)
}

/// Asserts that the log says `text` exactly once.
#[track_caller]
fn says_once(run: &Finished, text: &str) {
    let n = run.stderr.lines().filter(|l| l.contains(text)).count();
    assert_eq!(n, 1, "{text:?} said {n} times: {}", run.stderr);
}

/// Asserts a clean run whose recording holds what the camera sent, RTP times as sent.
#[track_caller]
fn recorded(rig: &Rig, run: &Finished) {
    run.assert_success();
    let (_, frames, _) = rig.checked(&rig.out, "the recording");
    assert!(frames > 30, "{frames} frames");
}

async fn rtp_info(how: RtpInfo, audio: bool, worked_around: bool) {
    let quirks = Quirks {
        rtp_info: how,
        ..Quirks::default()
    };
    let (rig, run) = record(quirks, audio, "/demo", &[]).await;
    recorded(&rig, &run);
    let said = "gives no rtptime (RTP-Info) for every stream";
    match worked_around {
        true => says_once(&run, said),
        false => assert!(!run.stderr.contains(said), "{}", run.stderr),
    }
}

cases!(rtp_info {
    rtp_info_without_rtptime_two_streams: (RtpInfo::NoRtptime, true, true),
    rtp_info_without_rtptime_one_stream: (RtpInfo::NoRtptime, false, false),
    rtp_info_without_seq: (RtpInfo::NoSeq, true, false),
    rtp_info_naming_other_urls: (RtpInfo::OtherUrls, true, true),
    rtp_info_missing: (RtpInfo::Missing, true, true),
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_goes_straight_to_what_worked() {
    let mut config = support::config("h264_aac.mp4");
    config.quirks = Quirks {
        rtp_info: RtpInfo::Missing,
        refuse_tcp_setup: Some(455),
        ..Quirks::default()
    };
    let rig = Rig::new(config).await;
    let rec = rig.spawn(&[]);
    rig.cam.wait_sent(2.0).await;
    rig.cam.drop_connections();
    // Session 0 was the PLAY retina refused for want of rtptime; 1 the first recorded.
    rig.cam.wait_session_sent(2, 2.0).await;
    rec.signal(libc::SIGTERM);
    let run = rec.wait().await;
    run.assert_success();
    run.assert_says("reconnected");
    says_once(&run, "gives no rtptime");
    says_once(
        &run,
        "refused RTP over TCP (455 Method Not Valid in This State); using UDP",
    );
}

async fn tcp_refused(status: u16) {
    let quirks = Quirks {
        refuse_tcp_setup: Some(status),
        ..Quirks::default()
    };
    let (rig, run) = record(quirks, true, "/demo", &[]).await;
    recorded(&rig, &run);
    says_once(&run, &format!("refused RTP over TCP ({status}"));
    says_once(&run, "using UDP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_is_recorded_through_by_default() {
    let quirks = Quirks {
        lose_video_frame_at: Some(1.0),
        ..Quirks::default()
    };
    let (rig, run) = record(quirks, true, "/demo", &["--transport", "udp"]).await;
    run.assert_success();
    run.assert_says("RTP packet(s) of video between RTP times");
    run.assert_says("; recording through");
    let rec = Recording::open(&rig.out).expect("the recording");
    assert!(rec.video_timing().expect("timing").len() > 60);
}

cases!(tcp_refused {
    tcp_refused_with_400: (400),
    tcp_refused_with_403: (403),
    tcp_refused_with_455: (455),
    tcp_refused_with_461: (461),
    tcp_refused_with_501: (501),
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_that_never_arrives_falls_back_to_tcp() {
    let mut config = support::config("h264_aac.mp4");
    config.quirks.udp_unreachable = true;
    let rig = Rig::new(config).await;
    let rec = rig.spawn(&["--transport", "udp"]);
    // Session 0 went to UDP, where nothing arrives; 1 is over TCP.
    rig.cam.wait_session_sent(1, 3.0).await;
    rec.signal(libc::SIGTERM);
    let run = rec.wait().await;
    run.assert_success();
    // Not checked against the camera's log: its session 0 "sent" the same RTP times to nowhere.
    let rec = Recording::open(&rig.out).expect("the recording");
    let frames = rec.video_timing().expect("timing").len();
    assert!(frames > 60, "{frames} frames");
    assert_eq!(
        support::ffmpeg_decoded_video_frames(&rig.out),
        Some(frames as u64)
    );
    says_once(
        &run,
        "sent nothing over UDP for 5 s (a NAT or firewall between?); using TCP",
    );
    assert!(!run.stderr.contains("reconnecting in"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed() {
    let quirks = Quirks {
        redirects: true,
        ..Quirks::default()
    };
    let (rig, run) = record(quirks, true, "/redirect/3/demo", &[]).await;
    recorded(&rig, &run);
    let to = format!(
        "redirected to rtsp://{}/demo in 3 hops; following",
        rig.cam.addr()
    );
    says_once(&run, &to);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_loop_is_a_failed_attempt() {
    let mut config = support::config("h264_aac.mp4");
    config.quirks.redirects = true;
    let rig = Rig::new(config).await;
    let url = format!("rtsp://{}/loop/demo", rig.cam.addr());
    let args = ["--url", &url, "--no-reconnect", "o.mp4"];
    let run = Recorder::spawn(rig.dir.path(), &args).wait().await;
    let error = run.error_exit(1);
    assert!(error.contains("redirected more than 5 times"), "{error}");
    assert!(error.contains("a loop?"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_host_drops_the_credentials() {
    let mut config = support::config("h264_aac.mp4");
    config.quirks.redirects = true;
    config.credentials = Some(("admin".into(), "hunter2".into()));
    let rig = Rig::new(config).await;
    let url = format!("rtsp://admin:hunter2@{}/elsewhere/demo", rig.cam.addr());
    let args = ["--url", &url, "--no-reconnect", "o.mp4"];
    let run = Recorder::spawn(rig.dir.path(), &args).wait().await;
    // The redirect is seen before authenticating (a 401 to OPTIONS is an answer too), and
    // localhost is another host by name: the camera there gets no password.
    let error = run.error_exit(1);
    assert!(
        error.contains("requires credentials (401 Unauthorized)"),
        "{error}"
    );
    run.assert_says("(another host: without the credentials); following");
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_works_around_what_the_recorder_does_and_says_so() {
    let mut config = support::config("h264_aac.mp4");
    config.quirks = Quirks {
        rtp_info: RtpInfo::NoRtptime,
        refuse_tcp_setup: Some(403),
        ..Quirks::default()
    };
    let rig = Rig::new(config).await;
    let report = support::tools::probe_json(&[&rig.cam.url()]).await;
    assert_eq!(report["transport"], "udp", "{report}");
    let quirks: Vec<&str> = report["quirks"]
        .as_array()
        .expect("quirks")
        .iter()
        .filter_map(|q| q["name"].as_str())
        .collect();
    assert_eq!(quirks, ["tcp-refused", "no-rtptime"], "{report}");
    assert!(
        report["streams"][0]["frames"].as_u64() > Some(10),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_takes_the_recorders_connection_flags() {
    let mut config = support::config("h264_aac.mp4");
    config.quirks.rtp_info = RtpInfo::NoRtptime;
    let rig = Rig::new(config).await;
    let url = rig.cam.url();
    let args = [
        "probe",
        "--initial-timestamp",
        "require",
        "--duration",
        "1",
        &url,
    ];
    let out = support::lines::output(&mut support::rig::recorder_command(&args)).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = support::rig::only_error(&stderr);
    assert!(
        error.contains("answered PLAY in a way that cannot be used"),
        "{error}"
    );
    assert!(error.contains("missing on stream"), "{error}");
}
