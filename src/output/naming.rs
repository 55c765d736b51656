//! What a recording's files are called ([`Naming`]: a plain name, a template, or stdout), and
//! the default names: `movie%Y%m%d_%H%M%S_<camera>.mp4`, named for the time of the first frame
//! and the camera, as retina-record 0.2 named them.

use std::path::PathBuf;
use std::time::Duration;

use super::template::Template;

/// What the files are called.
#[derive(Clone, Debug)]
pub(crate) enum Naming {
    /// One file of this name.
    Plain(PathBuf),
    /// A name for each file, from its first frame's local time.
    Template(Template),
    /// OUT `-`: one stream on stdout.
    Stdout,
}

/// The camera's name for the default file name: the host name's first label; for an IP
/// address, the first label of its reverse-DNS name, else the address with dashes (as 0.2:
/// `ipv4-10-0-0-5`).
pub(crate) async fn camera_name(url: &url::Url) -> String {
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

/// The default output name: the template `movie%Y%m%d_%H%M%S_<camera>.mp4`, in the current
/// directory, as retina-record 0.2 named its files.
pub(crate) fn default_template(camera: &str) -> String {
    format!("movie%Y%m%d_%H%M%S_{camera}.mp4")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let template = super::super::template::Template::parse(&default_template("frontdoor"))
            .map_err(anyhow::Error::msg)?;
        assert_eq!(
            template.expand(&t),
            std::path::PathBuf::from("movie20261124_080910_frontdoor.mp4")
        );
        Ok(())
    }
}
