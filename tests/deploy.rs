//! What `contrib/` ships for running past one machine: the systemd unit for a site file, and
//! the Kubernetes example (valid for the API, offline; sharded by as many as it has replicas,
//! each shard with a camera; its site file taken by the recorder; probed where its metrics are
//! served).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::support::rig::recorder_command;
use crate::support::tools::installed;

/// The Kubernetes versions the manifests are validated against: the first with the pod-index
/// label they need, and the newest kubernetes-validate 1.37.0 (what .ci/run installs) knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.28", "1.37"];

fn contrib(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The YAML files of the Kubernetes example, sorted.
fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(contrib("kubernetes"))
        .expect("contrib/kubernetes")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    files
}

/// The one document of `path` (documents split at `---`) whose kind is `kind`.
fn document(path: &Path, kind: &str) -> String {
    let text = read(path);
    let docs: Vec<&str> = text
        .split("\n---")
        .filter(|d| d.lines().any(|l| l.trim() == format!("kind: {kind}")))
        .collect();
    assert_eq!(docs.len(), 1, "one {kind} in {}", path.display());
    docs[0].to_owned()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// A line's content without its indentation, a list item's `- ` and a trailing comment.
fn content(line: &str) -> &str {
    let t = line.trim_start();
    let t = t.strip_prefix("- ").unwrap_or(t);
    t.split(" #").next().unwrap_or_default().trim()
}

/// The lines of `yaml` (a document, or a block of one) under its only `key:`: those indented
/// deeper, and list items at its own indentation.
fn under<'a>(yaml: &'a str, key: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = yaml.lines().collect();
    let at: Vec<usize> = (0..lines.len())
        .filter(|&i| !lines[i].trim_start().starts_with('#'))
        .filter(|&i| content(lines[i]) == format!("{key}:"))
        .collect();
    assert_eq!(at.len(), 1, "one `{key}:` (opening a block) in\n{yaml}");
    let own = indent(lines[at[0]]);
    lines[at[0] + 1..]
        .iter()
        .take_while(|l| {
            let t = l.trim_start();
            t.is_empty()
                || t.starts_with('#')
                || indent(l) > own
                || (t.starts_with("- ") && indent(l) == own)
        })
        .copied()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect()
}

/// The value of the only `key: value` in `lines`, unquoted.
fn value(lines: &[&str], key: &str) -> String {
    let found: Vec<&str> = lines
        .iter()
        .filter_map(|l| content(l).strip_prefix(&format!("{key}: ")))
        .collect();
    assert_eq!(found.len(), 1, "one `{key}:` in {lines:#?}");
    found[0].trim().trim_matches('"').to_owned()
}

/// The list items in `lines`, unquoted.
fn items(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.trim_start().starts_with("- "))
        .map(|l| content(l).trim_matches('"').to_owned())
        .collect()
}

/// The value of `flag` in `args`, given as `--flag=VALUE` or `--flag VALUE`.
fn flag<'a>(args: &'a [String], flag: &str) -> &'a str {
    let found: Vec<&str> = args
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match a.strip_prefix(flag)? {
            "" => args.get(i + 1).map(String::as_str),
            v => v.strip_prefix('='),
        })
        .collect();
    assert_eq!(found.len(), 1, "one {flag} in {args:?}");
    found[0]
}

/// The container port `port` names: a number, or the name of one of `ports`' entries.
fn port_number(ports: &[&str], port: &str) -> u16 {
    if let Ok(n) = port.parse() {
        return n;
    }
    let entries: Vec<&[&str]> = ports
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("- "))
        .map(|(i, _)| {
            let end = (i + 1..ports.len())
                .find(|&j| ports[j].trim_start().starts_with("- "))
                .unwrap_or(ports.len());
            &ports[i..end]
        })
        .collect();
    let named: Vec<&&[&str]> = entries
        .iter()
        .filter(|e| value(e, "name") == port)
        .collect();
    assert_eq!(named.len(), 1, "one port named {port} in {ports:#?}");
    value(named[0], "containerPort").parse().expect("a port")
}

/// `--shard K/N`'s hash: FNV-1a (64 bits) of the name's UTF-8 bytes.
fn fnv1a(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The StatefulSet's replicas.
fn replicas(statefulset: &str) -> u64 {
    let lines: Vec<&str> = statefulset.lines().collect();
    value(&lines, "replicas")
        .parse()
        .expect("replicas: a number")
}

/// Every manifest is valid for the Kubernetes API (strictly: no field it does not know), by
/// the schemas kubernetes-validate carries, without a cluster or the network; a warning (a
/// kind it has no schema for) fails too.
#[test]
fn the_kubernetes_manifests_validate() {
    let found = std::process::Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed(
        found,
        "kubernetes-validate (pip install kubernetes-validate)",
    ) {
        return;
    }
    let mut command = std::process::Command::new("kubernetes-validate");
    command.args(["--strict", "--quiet"]);
    for v in KUBERNETES_VERSIONS {
        command.args(["-k", v]);
    }
    let out = command
        .args(manifests())
        .output()
        .expect("kubernetes-validate");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

/// Pod K records `--shard K/N` with N the StatefulSet's replicas, K its pod index; the liveness
/// probe asks `/metrics` on the port `--metrics` binds, on every interface (the kubelet probes
/// the pod's address), and the Service points at that port.
#[test]
fn the_statefulset_shards_by_its_replicas_and_probes_its_metrics() {
    let path = contrib("kubernetes/statefulset.yaml");
    let sts = document(&path, "StatefulSet");
    let n = replicas(&sts);
    assert!(n >= 2, "replicas: {n}");

    let args = items(&under(&sts, "args"));
    assert_eq!(
        flag(&args, "--shard"),
        format!("$(POD_INDEX)/{n}"),
        "{args:?}"
    );
    let env = under(&sts, "env");
    assert_eq!(value(&env, "name"), "POD_INDEX");
    assert_eq!(
        value(&env, "fieldPath"),
        "metadata.labels['apps.kubernetes.io/pod-index']"
    );
    assert!(
        flag(&args, "--config").starts_with("/etc/retina-record/"),
        "{args:?}"
    );

    let metrics: SocketAddr = flag(&args, "--metrics").parse().expect("--metrics ADDR");
    assert!(
        metrics.ip().is_unspecified(),
        "{metrics}: the kubelet probes the pod's address"
    );
    let ports = under(&sts, "ports");
    let probe = under(&sts, "livenessProbe").join("\n");
    let get = under(&probe, "httpGet");
    assert_eq!(value(&get, "path"), "/metrics");
    assert_eq!(port_number(&ports, &value(&get, "port")), metrics.port());

    let service = document(&path, "Service");
    assert_eq!(value(&under(&service, "spec"), "clusterIP"), "None");
    let sts_lines: Vec<&str> = sts.lines().collect();
    assert_eq!(
        value(&sts_lines, "serviceName"),
        value(&under(&service, "metadata"), "name")
    );
    let target = value(&under(&service, "ports"), "targetPort");
    assert_eq!(port_number(&ports, &target), metrics.port());
}

/// A pod whose shard has no camera exits 2 and restarts forever: the example's cameras fill
/// every shard of as many as the StatefulSet has replicas.
#[test]
fn every_shard_of_the_example_site_has_a_camera() {
    // FNV-1a's published test vectors.
    assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a("foobar"), 0x8594_4171_f739_67e8);

    let n = replicas(&document(
        &contrib("kubernetes/statefulset.yaml"),
        "StatefulSet",
    ));
    let site = document(&contrib("kubernetes/site.yaml"), "ConfigMap");
    let cameras: Vec<&str> = site
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[camera.")?.strip_suffix(']'))
        .collect();
    assert!(cameras.len() as u64 >= n, "{cameras:?}");
    for k in 0..n {
        let mine: Vec<&&str> = cameras.iter().filter(|c| fnv1a(c) % n == k).collect();
        assert!(
            !mine.is_empty(),
            "shard {k}/{n} has no camera of {cameras:?}"
        );
    }
    for c in &cameras {
        assert!(
            site.contains(&format!("/etc/retina-record/passwords/{c}\"")),
            "{c}'s password-file is the Secret's key {c}"
        );
    }
}

/// The example's site file, as the recorder reads it: every shard of the StatefulSet's has a
/// camera to record (one with none is a usage error), each a second here, with the cameras'
/// hosts, password files and volume moved into a temporary directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorder_takes_the_example_site_file_on_every_shard() {
    let path = contrib("kubernetes/statefulset.yaml");
    let sts = document(&path, "StatefulSet");
    let n = replicas(&sts);
    let args = items(&under(&sts, "args"));
    let shard = flag(&args, "--shard").to_owned();

    let dir = tempfile::tempdir().expect("tempdir");
    let site = document(&contrib("kubernetes/site.yaml"), "ConfigMap");
    let toml: Vec<&str> = site
        .lines()
        .skip_while(|l| l.trim() != "site.toml: |")
        .skip(1)
        .map(|l| l.strip_prefix("    ").unwrap_or(l.trim()))
        .collect();
    let passwords = dir.path().join("passwords");
    std::fs::create_dir(&passwords).expect("mkdir");
    let toml = toml
        .join("\n")
        .replace(
            "/etc/retina-record/passwords/",
            &format!("{}/", passwords.display()),
        )
        .replace(
            "/var/lib/retina-record/",
            &format!("{}/", dir.path().display()),
        )
        .replace("rtsp://", "rtsp://127.0.0.1:9/")
        .replace(".cams.example/stream", "");
    for line in toml.lines() {
        if let Some(name) = line
            .strip_prefix("[camera.")
            .and_then(|l| l.strip_suffix(']'))
        {
            std::fs::write(passwords.join(name), "secret\n").expect("write");
        }
    }
    let config = dir.path().join("site.toml");
    std::fs::write(&config, toml).expect("write");

    let runs = (0..n).map(|k| {
        let shard = shard.replace("$(POD_INDEX)", &k.to_string());
        let config = config.display().to_string();
        async move {
            let args = ["--config", &config, "--shard", &shard, "--duration", "1s"];
            (
                shard.clone(),
                crate::support::lines::output(&mut recorder_command(&args)).await,
            )
        }
    });
    for (shard, out) in futures::future::join_all(runs).await {
        // Accepted, and every camera of the shard tried (no camera answers at port 9): a
        // camera that records nothing in its whole --duration has failed, exit 1, not 2.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "--shard {shard}: {stderr}");
        assert!(
            stderr.contains("cannot connect"),
            "--shard {shard}: {stderr}"
        );
    }
}

/// `systemd-analyze verify` passes `file` (in contrib/systemd/) as instance `name`, its
/// ExecStart pointed at the binary under test (verify checks that the program exists); the
/// unit's text.
pub(crate) fn verify_unit(file: &str, name: &str) -> String {
    let unit = read(&contrib(&format!("systemd/{file}")));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    let here = unit.replace(
        "/usr/local/bin/retina-record",
        env!("CARGO_BIN_EXE_retina-record"),
    );
    assert_ne!(here, unit, "ExecStart runs /usr/local/bin/retina-record");
    std::fs::write(&path, here).expect("write");
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    unit
}

/// The site unit verifies, runs the instance's site file, and has the one-camera unit's
/// watchdog, restart, stop and hardening lines, each as it is there; the credential path its
/// comments give the site file is the one its LoadCredential= makes.
#[test]
fn the_site_unit_verifies_and_is_hardened_as_the_camera_unit() {
    let unit = verify_unit(
        "retina-record-site@.service",
        "retina-record-site@lab.service",
    );
    for line in [
        "Type=notify",
        "Restart=always",
        "ExecStart=/usr/local/bin/retina-record --config /etc/retina-record/%i.toml $ARGS",
        "LoadCredential=pw:/etc/retina-record/%i.passwords",
        "StateDirectory=retina-record/%i",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line}");
    }
    assert!(unit.contains("\"/run/credentials/retina-record-site@lab.service/pw_front\""));
    assert!(unit.contains("output = \"/var/lib/retina-record/lab/{camera}/"));

    let camera = read(&contrib("systemd/retina-record@.service"));
    let hardening: Vec<&str> = camera
        .lines()
        .skip_while(|l| !l.starts_with("WatchdogSec="))
        .take_while(|l| !l.starts_with("[Install]"))
        .filter(|l| l.contains('=') && !l.starts_with('#'))
        .collect();
    assert!(hardening.len() > 10, "{hardening:?}");
    for line in hardening {
        assert!(
            unit.lines().any(|l| l == line),
            "the site unit lacks {line}"
        );
    }
}
