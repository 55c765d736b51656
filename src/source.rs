//! Where to connect and as whom: an `rtsp://` or `rtsps://` URL (RFC 2326 §3.2) and its
//! credentials.
//!
//! Credentials can come from the URL's user-info, a user name and password given apart, or a
//! password file; none of them is ever printed. URLs are shown through [`redacted`], which
//! drops the user-info part, and retina is given the URL without it (it refuses credentials
//! inside URLs).

use std::path::PathBuf;

use anyhow::bail;

use crate::error::{Error, Result};
use crate::wording::{Field, Wording};

/// Where to connect and as whom.
#[derive(Clone)]
pub struct Source {
    /// The URL without user-info.
    pub url: url::Url,
    /// User name and password, if the camera needs them.
    pub credentials: Option<retina::client::Credentials>,
}

/// Credentials given apart from the URL, each overriding the URL's.
#[derive(Clone, Debug, Default)]
pub struct Login {
    /// Overrides the URL's user name.
    pub username: Option<String>,
    /// Overrides the URL's password.
    pub password: Option<String>,
    /// Read the password from the first line of this file; overrides `password`.
    pub password_file: Option<PathBuf>,
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

impl Source {
    /// Parses `url` and resolves the credentials, in precedence order: the password file, then
    /// the password given apart, then the URL's; likewise the user name given apart before the
    /// URL's. Every error is bad usage, names the settings as `wording` does, and never echoes
    /// the URL (it may hold a password).
    pub fn resolve(url: &str, login: &Login, wording: Wording) -> Result<Source> {
        Self::resolve_inner(url, login, wording).map_err(Error::usage)
    }

    fn resolve_inner(url: &str, login: &Login, wording: Wording) -> anyhow::Result<Source> {
        let name = |f: Field| wording.of(f);
        let mut url = url::Url::parse(url).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a valid URL ({e}); expected rtsp://host[:port]/path",
                name(Field::Url)
            )
        })?;
        if !matches!(url.scheme(), "rtsp" | "rtsps") {
            bail!(
                "{} must be an rtsp:// or rtsps:// URL, not {}://",
                name(Field::Url),
                url.scheme()
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
            );
        }
        if url.host_str().is_none_or(str::is_empty) {
            bail!("{} has no host name", name(Field::Url));
        }
        let url_user = percent_decode(url.username());
        let url_pass = url.password().map(percent_decode);
        let _ = url.set_username("");
        let _ = url.set_password(None);

        let password = match &login.password_file {
            Some(path) => Some(read_password_file(path, name(Field::PasswordFile))?),
            None => login.password.clone().or(url_pass),
        };
        let username = login
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
                "a password was given without a username: give {}, or put it in the URL",
                name(Field::Username)
            ),
        };
        Ok(Source { url, credentials })
    }

    /// A source without credentials.
    pub fn from_url(url: url::Url) -> Source {
        Source {
            url,
            credentials: None,
        }
    }

    /// `host:port` of the camera, for messages.
    pub fn host_port(&self) -> String {
        let host = self.url.host_str().unwrap_or("?");
        let port = self.url.port().unwrap_or(self.default_port());
        format!("{host}:{port}")
    }

    /// The port of the URL's scheme (RFC 2326 §3.2): 554, or 322 for `rtsps://`.
    pub fn default_port(&self) -> u16 {
        match self.url.scheme() {
            "rtsps" => crate::rtsp::tls::DEFAULT_PORT,
            _ => 554,
        }
    }

    /// Whether the camera is reached over TLS (`rtsps://`).
    pub fn tls(&self) -> bool {
        self.url.scheme() == "rtsps"
    }

    /// The password, for scrubbing messages.
    pub(crate) fn secret(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.password.as_str())
    }
}

fn read_password_file(path: &std::path::Path, setting: &str) -> anyhow::Result<String> {
    // The reason in the message itself: it may be shown without its causes.
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {setting} {}: {e}", path.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    fn credentials(url: &str, login: &Login) -> anyhow::Result<(String, String, String)> {
        let src =
            Source::resolve(url, login, Wording::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let c = src.credentials.context("no credentials")?;
        Ok((src.url.to_string(), c.username, c.password))
    }

    #[test]
    fn credentials_from_url_are_removed_from_it() -> anyhow::Result<()> {
        let (url, user, pass) = credentials(
            "rtsp://ad%40min:s3cr%3At@cam.example:8554/s",
            &Login::default(),
        )?;
        assert_eq!(url, "rtsp://cam.example:8554/s");
        assert_eq!((user.as_str(), pass.as_str()), ("ad@min", "s3cr:t"));
        Ok(())
    }

    #[test]
    fn given_credentials_override_the_urls() -> anyhow::Result<()> {
        let login = Login {
            username: Some("v".into()),
            password: Some("q".into()),
            password_file: None,
        };
        let (_, user, pass) = credentials("rtsp://u:p@cam/s", &login)?;
        assert_eq!((user.as_str(), pass.as_str()), ("v", "q"));
        Ok(())
    }

    #[test]
    fn bad_url_error_does_not_echo_it() {
        for url in ["rtsp://user:hunter2@[bad/s", "http://user:hunter2@cam/s"] {
            match Source::resolve(url, &Login::default(), Wording::default()) {
                Ok(_) => panic!("{url} was accepted"),
                Err(e) => {
                    assert!(!e.to_string().contains("hunter2"), "{e}");
                    assert_eq!(e.exit_code(), 2);
                }
            }
        }
    }

    #[test]
    fn redaction() -> anyhow::Result<()> {
        let u = url::Url::parse("rtsp://user:pw@cam:554/x?y=1")?;
        assert_eq!(redacted(&u), "rtsp://cam:554/x?y=1");
        Ok(())
    }
}
