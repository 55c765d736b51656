//! RTSP over TLS (`rtsps://`): the built-in camera serving TLS, the recorder's certificate
//! checks (pinned, a CA, none, refused), ffmpeg as an independent client of the camera, and
//! the bridge's kernel receive times (`--kernel-timestamps`), over TLS and without.

use retina_record::camera::{CameraConfig, CameraTls};

use crate::support::rig::Finished;
use crate::support::timing::rows;
use crate::support::{self, Rig};

/// A camera serving h264_aac.mp4 over TLS with a self-signed certificate for `names`.
async fn tls_camera(names: &[&str]) -> (Rig, CameraTls) {
    let tls = CameraTls::self_signed(names).expect("certificate");
    let mut config: CameraConfig = support::config("h264_aac.mp4");
    config.tls = Some(tls.clone());
    (Rig::new(config).await, tls)
}

/// Records `rig`'s camera with `extra` until it has sent 3 s, then stops the recorder.
async fn record_3s(rig: &Rig, extra: &[&str]) -> Finished {
    let rec = rig.spawn(extra);
    rig.cam.wait_sent(3.0).await;
    rec.signal(libc::SIGTERM);
    rec.wait().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_certificate_records_every_frame() {
    let (rig, tls) = tls_camera(&["127.0.0.1"]).await;
    assert!(rig.cam.url().starts_with("rtsps://"));
    let run = record_3s(&rig, &["--tls-fingerprint", &tls.fingerprint()]).await;
    run.assert_success();
    let (_, frames, _) = rig.checked(&rig.out, "the recording");
    assert!(frames > 60, "{frames} frames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_file_trusts_the_camera() {
    let (rig, tls) = tls_camera(&["127.0.0.1"]).await;
    let ca = rig.dir.path().join("camera.pem");
    std::fs::write(&ca, tls.certificate_pem()).expect("write");
    let run = record_3s(&rig, &["--tls-ca", ca.to_str().expect("utf-8")]).await;
    run.assert_success();
    let (_, frames, _) = rig.checked(&rig.out, "the recording");
    assert!(frames > 60, "{frames} frames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_insecure_records_and_says_so() {
    let (rig, _) = tls_camera(&["127.0.0.1"]).await;
    let run = record_3s(&rig, &["--tls-insecure"]).await;
    run.assert_success();
    run.assert_says("its certificate is not checked (--tls-insecure)");
    rig.checked(&rig.out, "the recording");
}

/// The recorder, with `extra`, refuses the camera's certificate at once, for good: exit 1
/// with one line that says `why`, nothing written.
async fn refused(names: &[&str], extra: &[&str], why: &str) {
    let (rig, tls) = tls_camera(names).await;
    let ca = rig.dir.path().join("camera.pem");
    std::fs::write(&ca, tls.certificate_pem()).expect("write");
    let mut args: Vec<&str> = extra.to_vec();
    let ca = ca.to_str().expect("utf-8");
    if args.is_empty() {
        args = vec!["--tls-ca", ca];
    }
    let started = std::time::Instant::now();
    let run = rig.spawn(&args).wait().await;
    let error = run.error_exit(1);
    assert!(error.contains(why), "{error}");
    assert!(
        error.contains("; pin it with --tls-fingerprint (its fingerprint is in"),
        "{error}"
    );
    run.assert_says(&format!("its certificate is {}", tls.fingerprint()));
    assert!(!run.stderr.contains("reconnecting"), "{}", run.stderr);
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    assert!(!rig.partial().exists());
}

cases!(refused {
    a_wrong_fingerprint_is_refused: (
        &["127.0.0.1"],
        &[
            "--tls-fingerprint",
            "sha256:00000000000000000000000000000000000000000000000000000000000000ff"
        ],
        "not the one pinned",
    ),
    an_untrusted_certificate_is_refused: (&["127.0.0.1"], &["--duration", "9"], "(an unknown CA)"),
    a_certificate_for_another_host_is_refused: (
        &["camera.invalid"],
        &[],
        "(for another host name)"
    ),
});

/// `extra` are refused before connecting to `rig`'s camera: exit 2, one line that says `why`.
async fn refused_at_start(rig: &Rig, extra: &[&str], why: &str) {
    let run = rig.spawn(extra).wait().await;
    let error = run.error_exit(2);
    assert!(error.contains(why), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_cannot_carry_rtsps() {
    let (rig, _) = tls_camera(&["127.0.0.1"]).await;
    let extra = ["--tls-insecure", "--transport", "udp"];
    refused_at_start(&rig, &extra, "SRTP, which is not supported").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_reads_the_cameras_rtsps() {
    if !support::have_tool("ffprobe") {
        return;
    }
    let (rig, _) = tls_camera(&["127.0.0.1"]).await;
    let url = rig.cam.url();
    let out = ffprobe_without_verifying(&url).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let codecs: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(
        codecs,
        ["h264", "aac"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate for 127.0.0.1 valid from `from` to `to` (years), its PEM files written in
/// `dir`: `(cert.pem, key.pem, fingerprint)`.
/// A self-signed certificate for `name`, valid from `from` to `to` (years), and its key, as
/// files in `dir` named after `name`; and its fingerprint.
fn certificate_files(
    dir: &std::path::Path,
    name: &str,
    from: i32,
    to: i32,
) -> (String, String, String) {
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(to, 1, 1);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("certificate");
    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).expect("write");
    std::fs::write(&key_path, key.serialize_pem()).expect("write");
    let pin = retina_record::rtsp::tls::fingerprint(cert.der());
    let path = |p: std::path::PathBuf| p.to_str().expect("utf-8").to_owned();
    (path(cert_path), path(key_path), pin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, _) = certificate_files(dir.path(), "127.0.0.1", 2020, 2021);
    let mut config: CameraConfig = support::config("h264_aac.mp4");
    config.tls = Some(CameraTls::from_pem(cert.as_ref(), key.as_ref()).expect("PEM"));
    let rig = Rig::new(config).await;
    let run = rig.spawn(&["--tls-ca", &cert]).wait().await;
    let error = run.error_exit(1);
    assert!(
        error.contains("sent an untrusted certificate (expired)"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_over_tls_continues_the_recording() {
    let (rig, tls) = tls_camera(&["127.0.0.1"]).await;
    let rec = rig.spawn(&["--tls-fingerprint", &tls.fingerprint()]);
    rig.cam.wait_sent(2.0).await;
    rig.cam.drop_connections();
    rig.cam.wait_session_sent(1, 2.0).await;
    rec.signal(libc::SIGTERM);
    let run = rec.wait().await;
    run.assert_success();
    run.assert_says("reconnected");
    let (_, frames, _) = rig.checked(&rig.out, "the recording");
    assert!(frames > 80, "{frames} frames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_file_pins_its_cameras_certificate() {
    let (rig, tls) = tls_camera(&["127.0.0.1"]).await;
    let site = rig.dir.path().join("site.toml");
    let toml = format!(
        "[camera.front]\nurl = \"{}\"\ntls-fingerprint = \"{}\"\noutput = \"front.mp4\"\n",
        rig.cam.url(),
        tls.fingerprint()
    );
    std::fs::write(&site, toml).expect("write");
    let rec = support::Recorder::spawn(rig.dir.path(), &["--config", "site.toml"]);
    rig.cam.wait_sent(3.0).await;
    rec.signal(libc::SIGTERM);
    rec.wait().await.assert_success();
    rig.checked(&rig.dir.path().join("front.mp4"), "the site's recording");
}

/// gst-rtsp-server serving RTSPS with Digest authentication, read by ffmpeg (the server is
/// right) and recorded for 30 s pinned and trusted by its certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gst_rtsp_server_over_tls_with_digest_30s() {
    if !crate::interop::have_interop_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, pin) = certificate_files(dir.path(), "127.0.0.1", 2025, 2100);
    let clip = crate::interop::make_clip_secs(dir.path(), "h264-aac", 45);
    let server = crate::interop::GstServer::start_tls(
        &clip,
        "h264-aac",
        ("digest", "viewer", "s3cret-pw"),
        (&cert, &key),
    )
    .await;
    let url = server.url.replace("rtsp://", "rtsps://viewer:s3cret-pw@");
    let probed = ffprobe_without_verifying(&url).await;
    assert_eq!(
        String::from_utf8_lossy(&probed.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["h264", "aac"]
    );
    for (trust, value, secs) in [
        ("--tls-fingerprint", pin.as_str(), "30"),
        ("--tls-ca", &cert, "4"),
    ] {
        let out = dir.path().join(format!("rec{secs}.mp4"));
        let out = out.to_str().expect("utf-8");
        let run = support::record(
            dir.path(),
            &["--url", &url, trust, value, "--duration", secs, out],
        )
        .await;
        run.assert_success();
        assert!(!run.stderr.contains("s3cret-pw"), "{}", run.stderr);
        let min = if secs == "30" { 25 * 28 } else { 25 * 3 };
        crate::support::check::check_recording(out.as_ref(), min, true);
    }
}

/// gst-rtsp-server's certificates refused as the built-in camera's are, each at once with one
/// line (exit 1), nothing written, the password never said: an unknown CA (no trust given), a
/// wrong pin, an expired certificate, one for another host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gst_rtsp_server_over_tls_refused_certificates() {
    if !crate::interop::have_interop_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = crate::interop::make_clip_secs(dir.path(), "h264-aac", 5);
    let valid = certificate_files(dir.path(), "127.0.0.1", 2025, 2100);
    let old = dir.path().join("old");
    std::fs::create_dir(&old).expect("mkdir");
    let expired = certificate_files(&old, "127.0.0.1", 2020, 2021);
    let other = certificate_files(dir.path(), "camera.example", 2025, 2100);
    let wrong_pin = format!("sha256:{}", "0".repeat(64));
    let cases: [(_, &[&str], _); 4] = [
        (&valid, &[], "(an unknown CA)"),
        (
            &valid,
            &["--tls-fingerprint", &wrong_pin],
            "(not the one pinned)",
        ),
        (&expired, &["--tls-ca", &expired.0], "(expired)"),
        (&other, &["--tls-ca", &other.0], "(for another host name)"),
    ];
    let out = dir.path().join("refused.mp4");
    let out = out.to_str().expect("utf-8");
    for ((cert, key, _), trust, why) in cases {
        let auth = ("digest", "viewer", "s3cret-pw");
        let server =
            crate::interop::GstServer::start_tls(&clip, "h264-aac", auth, (cert, key)).await;
        let url = server.url.replace("rtsp://", "rtsps://viewer:s3cret-pw@");
        let mut args = vec!["--url", &url, "--duration", "5", out];
        args.extend_from_slice(trust);
        let run = support::record(dir.path(), &args).await;
        let error = run.error_exit(1);
        assert!(error.contains(why), "{why}: {error}");
        assert!(!run.stderr.contains("s3cret-pw"), "{}", run.stderr);
        assert!(!std::path::Path::new(&format!("{out}.partial")).exists());
    }
}

/// ffprobe reading the RTSPS `url` (its certificate not checked): its output.
async fn ffprobe_without_verifying(url: &str) -> std::process::Output {
    tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-tls_verify",
            "0",
            "-show_entries",
            "stream=codec_name",
        ])
        .args(["-of", "csv=p=0", url])
        .output()
        .await
        .expect("ffprobe")
}

/// `--kernel-timestamps`, over plain RTSP and over TLS: every frame recorded, each receive time
/// the kernel's, between the camera's send (5 ms of slack: the truth's time is taken after the
/// write) and a second later, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_timestamps_stamp_every_frame() {
    for over_tls in [false, true] {
        let truth_file = tempfile::NamedTempFile::new().expect("truth file");
        let mut config: CameraConfig = support::config("h264_aac.mp4");
        config.truth = Some(truth_file.path().to_owned());
        let tls = CameraTls::self_signed(&["127.0.0.1"]).expect("certificate");
        let pin = tls.fingerprint();
        config.tls = over_tls.then_some(tls);
        let rig = Rig::new(config).await;
        let mut extra = vec!["--kernel-timestamps"];
        if over_tls {
            extra.extend(["--tls-fingerprint", &pin]);
        }
        record_3s(&rig, &extra).await.assert_success();
        let (_, frames, _) = rig.checked(&rig.out, "the recording");
        assert!(frames > 60, "{frames} frames");
        let rows = rows(rig.dir.path(), &[rig.out.to_str().expect("utf-8")]).await;
        let truth = sent(truth_file.path());
        let mut last = 0.0;
        for r in &rows {
            let late = r.recv_unix - truth[&r.rtp];
            assert!(
                (-0.005..1.0).contains(&late),
                "tls {over_tls}: {r:?} {late} s"
            );
            assert!(r.recv_unix >= last, "tls {over_tls}: {r:?} before {last}");
            last = r.recv_unix;
        }
    }
}

/// The camera's truth file: RTP time → when its last packet was sent (Unix seconds).
fn sent(path: &std::path::Path) -> std::collections::HashMap<u32, f64> {
    #[derive(serde::Deserialize)]
    struct Sent {
        rtp: u32,
        sent_unix: f64,
    }
    let mut rows = csv::Reader::from_path(path).expect("truth file");
    rows.deserialize::<Sent>()
        .map(|r| r.map(|r| (r.rtp, r.sent_unix)).expect("truth row"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_timestamps_need_tcp() {
    let rig = Rig::new(support::config("h264_aac.mp4")).await;
    let extra = ["--kernel-timestamps", "--transport", "udp"];
    refused_at_start(&rig, &extra, "cannot go with --transport udp").await;
}

/// `probe` gives the fingerprint to pin: refused, in the line before its one error; trusted,
/// in its report (text and JSON).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_shows_the_certificate_to_pin() {
    let (rig, tls) = tls_camera(&["127.0.0.1"]).await;
    let (url, pin) = (rig.cam.url(), tls.fingerprint());
    let args = ["probe", "--duration", "1", &url];
    let out = support::lines::output(&mut support::rig::recorder_command(&args)).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = support::rig::only_error(&stderr);
    assert!(
        error.contains("untrusted certificate (an unknown CA)"),
        "{error}"
    );
    assert!(
        stderr.contains(&format!("its certificate is {pin}")),
        "{stderr}"
    );

    let args = ["probe", "--duration", "1", "--tls-fingerprint", &pin, &url];
    let out = support::lines::output(&mut support::rig::recorder_command(&args)).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("certificate {pin}")), "{text}");
    let report = support::tools::probe_json(&["--tls-fingerprint", &pin, &url]).await;
    assert_eq!(
        report["certificate"].as_str(),
        Some(pin.as_str()),
        "{report}"
    );
}
