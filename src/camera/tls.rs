//! The camera's side of RTSPS (RFC 2326 §3.2 over TLS, rustls): a certificate given as PEM
//! files, or a throwaway self-signed one made at start (rcgen) whose fingerprint the caller
//! prints, so that a recorder can pin it.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate (chain) and key the camera serves RTSPS with.
#[derive(Clone, Debug)]
pub struct CameraTls {
    /// The chain, the camera's own certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl CameraTls {
    /// From PEM files: `cert` holds the chain, `key` the private key.
    pub fn from_pem(cert: &Path, key: &Path) -> anyhow::Result<CameraTls> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("cannot read the certificate {}", cert.display()))?;
        anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("cannot read the key {}", key.display()))?;
        Ok(CameraTls {
            chain,
            key: Arc::new(key),
        })
    }

    /// A self-signed certificate for `names` (host names or IP addresses), made now.
    pub fn self_signed(names: &[&str]) -> anyhow::Result<CameraTls> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let made = rcgen::generate_simple_self_signed(names)?;
        let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
            .map_err(|e| anyhow::anyhow!("the generated key: {e}"))?;
        Ok(CameraTls {
            chain: vec![made.cert.der().clone()],
            key: Arc::new(key),
        })
    }

    /// `sha256:HEX` of the camera's own certificate: what `--tls-fingerprint` takes.
    pub fn fingerprint(&self) -> String {
        crate::rtsp::tls::fingerprint(self.chain.first().map_or(&[][..], |c| c.as_ref()))
    }

    /// The camera's own certificate as PEM (for `--tls-ca`, a self-signed one is its own CA).
    pub fn certificate_pem(&self) -> String {
        use base64::Engine as _;
        let der = self.chain.first().map_or(&[][..], |c| c.as_ref());
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }

    pub(super) fn acceptor(&self) -> anyhow::Result<TlsAcceptor> {
        let provider = crate::rtsp::tls::provider();
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        // The session keys to `$SSLKEYLOGFILE` when set (nothing otherwise), as curl and
        // browsers do: so tshark can read a capture of the camera's RTSPS (`bench/arrival.sh`).
        config.key_log = Arc::new(tokio_rustls::rustls::KeyLogFile::new());
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
