//! One module per subcommand: each turns its flags into the library's configs and runs them.

pub(crate) mod camera;
pub(crate) mod demo;
pub(crate) mod docs;
pub(crate) mod export;
pub(crate) mod list;
pub(crate) mod probe;
pub(crate) mod record;
pub(crate) mod repair;

pub(crate) mod timing;

use retina_record::config::{RecorderConfig, Wording};
use retina_record::error::Result;
use retina_record::rtsp::tls::Trust;
use retina_record::source::{Login, Source};

use crate::cli::ConnectionArgs;

/// A config for connecting to `url` as `connection` says, naming the settings as `wording`
/// does: the part the recorder and `probe` share, so that they connect alike.
pub(crate) fn connecting(
    url: &str,
    connection: &ConnectionArgs,
    wording: Wording,
) -> Result<RecorderConfig> {
    let login = Login {
        username: connection.username.clone(),
        password: connection.password.clone(),
        password_file: connection.password_file.clone(),
    };
    let mut config = RecorderConfig::new(Source::resolve(url, &login, wording)?);
    config.wording = wording;
    config.transport = connection.transport;
    config.initial_timestamp = connection.initial_timestamp;
    config.unknown_rtcp_ssrc = connection.unknown_rtcp_ssrc;
    config.teardown = connection.teardown;
    config.connect_timeout = connection.connect_timeout;
    config.kernel_timestamps = connection.kernel_timestamps;
    config.tls = match (
        &connection.tls_ca,
        connection.tls_fingerprint,
        connection.tls_insecure,
    ) {
        (Some(ca), _, _) => Trust::Ca(ca.clone()),
        (_, Some(pin), _) => Trust::Fingerprint(pin),
        (_, _, true) => Trust::Insecure,
        _ => Trust::System,
    };
    if config.tls == Trust::Insecure && config.source.tls() {
        tracing::warn!(
            "camera {}: its certificate is not checked ({}): anyone between can read and change \
             the stream and the credentials",
            config.source.host_port(),
            wording.of(retina_record::config::Field::TlsInsecure)
        );
    }
    Ok(config)
}
