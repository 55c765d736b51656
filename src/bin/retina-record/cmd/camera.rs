//! `retina-record camera`: serves the built-in camera (or a clip) until the first stop signal.

use retina_record::camera::{BuiltinAudio, Camera, CameraConfig, CameraTls, Clip};
use retina_record::error::{Error, Result};
use retina_record::stop::Stop;

use crate::cli::CameraArgs;

pub(crate) async fn run(args: &CameraArgs, mut stop: Stop) -> Result<()> {
    let clip = match &args.clip {
        Some(path) => Clip::from_file(path),
        None => Clip::builtin(args.video, args.audio),
    }
    .map_err(Error::usage)?;
    let mut config = CameraConfig::new(vec![clip]);
    config.listen = args.listen;
    config.audio = args.audio != BuiltinAudio::None;
    config.speed = args.speed;
    config.clock.offset = args.clock_offset.unwrap_or(0.0);
    config.clock.rtp_drift_ppm = args.rtp_drift_ppm.unwrap_or(0.0);
    config.clock.send_jitter = args.send_jitter.unwrap_or_default();
    config.clock.sr_jitter = args.sr_jitter.unwrap_or_default();
    config.clock.ntp_step = args.ntp_step;
    config.truth = args.truth.clone();
    config.tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(CameraTls::from_pem(cert, key).map_err(Error::usage)?),
        _ if args.tls => {
            let ip = args.listen.ip().to_string();
            Some(CameraTls::self_signed(&[&ip, "localhost"]).map_err(Error::failure)?)
        }
        _ => None,
    };
    let pin = config.tls.as_ref().map(CameraTls::fingerprint);
    let cam = Camera::start(config).await.map_err(Error::usage)?;
    let url = if cam.addr().ip().is_unspecified() {
        let scheme = if pin.is_some() { "rtsps" } else { "rtsp" };
        format!("{scheme}://<this host>:{}/demo", cam.addr().port())
    } else {
        cam.url()
    };
    // The URL alone on stdout, for scripts; the explanation on stderr with the logs.
    println!("{url}");
    match pin {
        None => tracing::info!(
            "serving {url} over TCP and UDP until Ctrl-C; record it with: \
             retina-record --url {url} out.mp4"
        ),
        Some(pin) => {
            tracing::info!("serving {url} over TLS until Ctrl-C; its certificate is {pin}");
            tracing::info!(
                "record it with: retina-record --url {url} --tls-fingerprint sha256:… (above) \
                 out.mp4"
            );
        }
    }
    let _ = stop.changed().await;
    tracing::info!("stopped");
    Ok(())
}
