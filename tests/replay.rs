//! Real cameras' RTSP answers, replayed into the recorder (`support::replay`): each capture in
//! `tests/fixtures/cameras/` (sources and licenses in its README) answers the recorder's
//! requests as that camera did, with the built-in camera's media relayed to fit its SDP. The
//! recorder runs with default flags; each records (a file ffmpeg decodes, every frame relayed
//! there, the fed audio too) or fails as expected with one clear line, and none panics.

use retina_record::mp4::read::Recording;

use crate::support::replay::Describe::{Answer, Sdp};
use crate::support::replay::{Capture, Replay};
use crate::support::rig::only_error;
use crate::support::{self, Recorder};

/// What a capture must come to.
enum Expect {
    /// A recording of the fed video (and audio), exit 0.
    Records,
    /// Exit 1 with one `error:` line saying this.
    Fails(&'static str),
}
use Expect::{Fails, Records};

/// A capture with only its DESCRIBE answer (or SDP) at `path`; the rest made up.
const fn described(path: &'static str, describe: crate::support::replay::Describe) -> Capture {
    Capture {
        path,
        options: None,
        describe,
        setups: &[],
        play: None,
        teardown: None,
    }
}

/// A capture whose SETUP and PLAY answers were captured too.
const fn played(
    path: &'static str,
    describe: &'static str,
    setups: &'static [&'static str],
    play: &'static str,
) -> Capture {
    Capture {
        setups,
        play: Some(play),
        ..described(path, Answer(describe))
    }
}

const HIKVISION: &str = "/Streaming/Channels/101";
const DAHUA_ONVIF: &str = "/cam/realmonitor?channel=1&subtype=1&unicast=true&proto=Onvif";
const REOLINK: &str = "/h264Preview_01_main";
const BUNNY: &str = "/vod/mp4:BigBuckBunny_115k.mov";
const GW_SUB: &str = "/H264?channel=1&subtype=1&unicast=true&proto=Onvif";

/// The longest stderr line allowed.
const MAX_LINE: usize = 200;

async fn replays(capture: Capture, expect: Expect) {
    let replay = Replay::start(&capture).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--url", &replay.url, "--duration", "6", "out.mp4"];
    let run = Recorder::spawn(dir.path(), &args).wait().await;
    // Every problem at once, so that a failing case says all that went wrong.
    let mut problems = Vec::new();
    if run.stderr.contains("panicked") {
        problems.push("a panic".to_owned());
    }
    let code = run.status.code();
    if !matches!(code, Some(0 | 1)) {
        problems.push(format!("exit status {:?}", run.status));
    }
    for line in run.stderr.lines() {
        let n = line.chars().count();
        if n >= MAX_LINE {
            problems.push(format!("a {n}-character line: {line}"));
        }
    }
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    if code == Some(1) && errors.len() != 1 {
        problems.push(format!("{} error lines", errors.len()));
    }
    if let Some(e) = errors.iter().find(|e| e.contains('{') || e.contains('}')) {
        problems.push(format!("a Debug-shaped error: {e}"));
    }
    match (&expect, code) {
        (Records, Some(0)) => {}
        (Records, _) => problems.push(format!("no recording: {}", errors.join(" / "))),
        (Fails(text), Some(1)) if errors.iter().any(|e| e.contains(text)) => {}
        (Fails(text), _) => problems.push(format!("expected a failure saying {text:?}")),
    }
    assert!(
        problems.is_empty(),
        "{} ({}):\n- {}\n--- stderr:\n{}",
        replay.url,
        capture.path,
        problems.join("\n- "),
        run.stderr
    );
    match expect {
        Records => check_recording(&dir.path().join("out.mp4"), &replay, &run.stderr),
        Fails(_) => eprintln!("replay: failed as expected: {}", only_error(&run.stderr)),
    }
}

/// A recording of the relayed video: at least 4 s, every frame relayed (but the last one or
/// two), each decoded by ffmpeg; the fed audio recorded and decoded too.
fn check_recording(out: &std::path::Path, replay: &Replay, stderr: &str) {
    let rec = Recording::open(out).unwrap_or_else(|e| panic!("{e:#}\n{stderr}"));
    let video = rec.video_track().expect("a video track");
    let frames = rec.track_samples(video.track_id).count();
    let secs = rec.track_duration_secs(video);
    let relayed = replay
        .relayed
        .video_frames
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(secs > 4.0, "{secs:.1} s of video recorded:\n{stderr}");
    // Every frame relayed is recorded, but for one or two in flight at the stop.
    assert!(
        frames <= relayed && frames + 2 >= relayed,
        "{frames} frames recorded, {relayed} relayed:\n{stderr}"
    );
    if let Some(decoded) = support::ffmpeg_decoded_video_frames(out) {
        assert_eq!(decoded as usize, frames, "ffmpeg decodes every frame");
    }
    let audio = replay
        .relayed
        .audio_packets
        .load(std::sync::atomic::Ordering::Relaxed);
    let recorded_audio = rec.audio_track().map(|a| rec.track_duration_secs(a));
    if audio > 0 {
        let a = recorded_audio.unwrap_or_else(|| panic!("{audio} audio packets, no track"));
        assert!(a > 4.0, "{a:.1} s of audio recorded:\n{stderr}");
        if let Some(decoded) = support::ffmpeg_audio(out) {
            assert!(
                decoded.decoded_secs > 4.0,
                "{} s decoded",
                decoded.decoded_secs
            );
        }
    }
    eprintln!(
        "replay: recorded {frames} video frames ({secs:.1} s) of {relayed} relayed, audio {}",
        recorded_audio.map_or("none".into(), |a| format!("{a:.1} s"))
    );
}

cases!(replays {
    hikvision: (
        played(
            HIKVISION,
            "hikvision_describe.txt",
            &["hikvision_setup.txt"],
            "hikvision_play.txt"
        ),
        Records,
    ),
    hikvision_ssrc_with_a_space: (
        Capture {
            setups: &["hikvision_setup_ssrc_space.txt"],
            ..described(HIKVISION, Answer("hikvision_describe.txt"))
        },
        Records,
    ),
    dahua_h264_aac_onvif: (
        Capture {
            options: Some("dahua_options.txt"),
            ..played(
                DAHUA_ONVIF,
                "dahua_describe_h264_aac_onvif.txt",
                &["dahua_setup.txt"],
                "dahua_play.txt",
            )
        },
        Records,
    ),
    dahua_rtp_info_decimal_ssrc: (
        Capture {
            play: Some("dahua_play_decimal_ssrc.txt"),
            ..described(DAHUA_ONVIF, Answer("dahua_describe_h264_aac_onvif.txt"))
        },
        Records,
    ),
    dahua_h265_pcma: (
        described(
            "/cam/realmonitor?channel=1&subtype=2",
            Answer("dahua_describe_h265_pcma.txt")
        ),
        Records,
    ),
    reolink: (
        Capture {
            teardown: Some("reolink_teardown.txt"),
            ..played(
                REOLINK,
                "reolink_describe.txt",
                &["reolink_setup.txt"],
                "reolink_play.txt"
            )
        },
        Records,
    ),
    reolink_control_first: (
        played(
            REOLINK,
            "reolink_describe_control_first.txt",
            &["reolink_setup.txt"],
            "reolink_play.txt",
        ),
        Records,
    ),
    bunny_wowza: (
        played(
            BUNNY,
            "bunny_describe.txt",
            &["bunny_setup.txt"],
            "bunny_play.txt"
        ),
        Records,
    ),
    bunny_wowza_bad_rtptime: (
        played(
            BUNNY,
            "bunny_describe.txt",
            &["bunny_setup.txt"],
            "bad_rtptime.txt"
        ),
        Records,
    ),
    gw_security_main: (
        played(
            "/H264?channel=1&subtype=0&unicast=true&proto=Onvif",
            "gw_main_describe.txt",
            &["gw_main_setup_video.txt", "gw_main_setup_audio.txt"],
            "gw_main_play.txt",
        ),
        Records,
    ),
    gw_security_sub: (
        played(
            GW_SUB,
            "gw_sub_describe.txt",
            &["gw_sub_setup.txt"],
            "gw_sub_play.txt"
        ),
        Records,
    ),
    gw_security_sub_laureii_play: (
        played(
            GW_SUB,
            "gw_sub_describe.txt",
            &["gw_sub_setup.txt"],
            "laureii_play.txt"
        ),
        Records,
    ),
    h264dvr: (
        played(
            "/camera",
            "h264dvr_describe.txt",
            &["h264dvr_setup_video.txt", "h264dvr_setup_audio.txt"],
            "h264dvr_play.txt",
        ),
        Records,
    ),
    foscam: (
        described("/videoMain", Answer("foscam_describe.txt")),
        Records
    ),
    vstarcam: (described("/", Answer("vstarcam_describe.txt")), Records),
    macrovideo: (described("/", Answer("macrovideo_describe.txt")), Records),
    ipcam: (described("/", Answer("ipcam_describe.txt")), Records),
    anjvision_h265: (
        described("/stream0", Answer("anjvision_describe.txt")),
        Records
    ),
    no_content_type: (
        described("/", Answer("missing_content_type_describe.txt")),
        Records
    ),
    anpviz: (described("/", Sdp("anpviz_sdp.txt")), Records),
    geovision: (
        described("/media/video1", Sdp("geovision_sdp.txt")),
        Records
    ),
    tplink_h265: (described("/", Sdp("tplink_sdp.txt")), Records),
    ubiquiti: (described("/", Sdp("ubiquiti_sdp.txt")), Records),
    longse_digest_401: (
        described("/", Answer("longse_unauthorized.txt")),
        Fails("requires credentials (401 Unauthorized)"),
    ),
});
