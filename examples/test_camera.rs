//! Serves a clip with the test camera until killed, printing the URL to record from.
//! Used by `bench/record-60s.sh`.
//!
//! Usage: `cargo run --release --example test_camera -- CLIP.mp4`

#[path = "../tests/support/camera.rs"]
#[allow(dead_code)]
mod camera;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(clip) = std::env::args_os().nth(1) else {
        eprintln!("usage: test_camera CLIP.mp4");
        std::process::exit(2);
    };
    let mut config = camera::CameraConfig::clip("h264_aac.mp4");
    config.clips = vec![clip.into()];
    let cam = camera::Camera::start(config).await;
    println!("{}", cam.url());
    std::future::pending::<()>().await;
}
