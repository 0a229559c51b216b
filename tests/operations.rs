//! Production operations against the real binary: owner-only data directory,
//! the first-start password kept out of logs, SIGHUP reloads without a restart.

mod ops;

use std::path::Path;

use ops::{mode, ok, wharf_cmd, Node};

/// Every directory under `dir` is 0700 and every file 0600, except the contents
/// of the storage roots in `skip` (users' files keep the storage's own modes).
fn assert_owner_only(dir: &Path, skip: &[&str]) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            if skip.iter().any(|s| path.file_name().unwrap() == *s) {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
            } else {
                assert_owner_only(&path, skip);
            }
        } else {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

#[test]
fn config_check_on_a_fresh_directory_makes_it_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fresh").join("data");
    let out = ok(wharf_cmd(&data, None, &["config", "check"]));
    assert!(out.contains("config OK"), "{out}");
    assert!(data.is_dir());
    assert_owner_only(&data, &[]);
    // A user command next creates the database: owner-only as well.
    ok(wharf_cmd(&data, None, &["user", "list"]));
    assert!(data.join("wharf.db").is_file());
    assert_owner_only(&data, &[]);
}

#[test]
fn serve_without_a_terminal_writes_the_password_to_a_private_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut node = Node::start(
        tmp.path(),
        &ops::base_config("[http]\nlisten = \"127.0.0.1:0\"\n"),
    );
    let file = node.dir.join("initial-admin-password");
    assert!(file.is_file(), "{}", node.text());
    assert_eq!(mode(&file), 0o600);
    let password = node.admin_password();
    assert_eq!(password.len(), 24, "{password:?}");
    node.wait_for("where the password is", |l| {
        l.contains("initial-admin-password") && l.starts_with("err: ")
    });

    // A link mail lands in the outbox: owner-only like every file of wharf's.
    let report = tmp.path().join("report.txt");
    std::fs::write(&report, b"quarterly numbers\n").unwrap();
    ok(wharf_cmd(
        &node.dir,
        Some(&node.config),
        &[
            "link",
            "send",
            report.to_str().unwrap(),
            "--to",
            "bob@example.com",
            "--as",
            "admin",
        ],
    ));
    assert!(ops::sftp_login(
        node.addrs.sftp.unwrap(),
        "admin",
        &password
    ));
    assert!(!ops::sftp_login(
        node.addrs.sftp.unwrap(),
        "admin",
        "wrong-password"
    ));
    node.drain();
    let text = node.text();
    assert!(
        !text.contains(&password),
        "the password reached the output:\n{text}"
    );

    for name in [
        "wharf.db",
        "wharf.db-wal",
        "wharf.db-shm",
        "ssh_host_ed25519_key",
        "ftps_cert.pem",
        "ftps_key.pem",
        "link-signing.key",
        "link-signing.pub",
    ] {
        let p = node.dir.join(name);
        assert_eq!(mode(&p), 0o600, "{name}");
    }
    let mails: Vec<_> = std::fs::read_dir(node.dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!mails.is_empty(), "no mail in the outbox:\n{}", node.text());
    assert_owner_only(&node.dir, &["files", "transfers", "uploads"]);

    // Changing the admin password retires the file.
    let mut passwd = wharf_cmd(
        &node.dir,
        Some(&node.config),
        &["user", "passwd", "admin", "--password-stdin"],
    );
    passwd.stdin(std::process::Stdio::piped());
    let mut child = passwd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a-new-admin-password\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(!file.exists());
    node.stop();
}

/// A self-signed pair for 127.0.0.1 written (atomically) to `cert` and `key`;
/// returns the certificate PEM.
fn write_cert(cert: &Path, key: &Path, name: &str) -> String {
    let g = rcgen::generate_simple_self_signed(vec![name.to_string(), "127.0.0.1".to_string()])
        .unwrap();
    let pem = g.cert.pem();
    for (path, text) in [(key, g.signing_key.serialize_pem()), (cert, pem.clone())] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    pem
}

/// The leaf certificate a new TLS handshake with `addr` sees, as PEM.
fn served_cert(addr: std::net::SocketAddr) -> String {
    let out = ops::run({
        let mut c = std::process::Command::new("sh");
        c.args([
            "-c",
            &format!(
                "openssl s_client -connect {addr} -servername localhost </dev/null 2>/dev/null | openssl x509 -outform PEM"
            ),
        ]);
        c
    });
    String::from_utf8(out.stdout).unwrap()
}

/// Normalises a PEM through openssl, so files and handshakes compare equal.
fn pem_of(cert: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.pem");
    std::fs::write(&f, cert).unwrap();
    let mut c = std::process::Command::new("openssl");
    c.args(["x509", "-outform", "PEM", "-in", f.to_str().unwrap()]);
    ok(c)
}

fn tls_config(dir: &Path, extra: &str) -> String {
    ops::base_config(&format!(
        "[http]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n{extra}",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    ))
}

#[test]
fn https_serves_http1_and_http2_with_hsts_secure_cookies_and_a_redirect() {
    let tmp = tempfile::tempdir().unwrap();
    let cert = tmp.path().join("cert.pem");
    write_cert(&cert, &tmp.path().join("key.pem"), "localhost");
    let text = tls_config(
        tmp.path(),
        "redirect_listen = \"127.0.0.1:0\"\n[links]\nbase_url = \"https://files.example.test\"\n",
    );
    let node = Node::start(tmp.path(), &text);
    assert!(node.addrs.https, "{}", node.text());
    let addr = node.addrs.http.unwrap();
    let cacert = cert.to_str().unwrap();
    let url = format!("https://{addr}/");

    // TLS 1.3, HTTP/1.1: the landing page, with HSTS.
    let out = ops::curl(&[
        "--tlsv1.3",
        "--http1.1",
        "--cacert",
        cacert,
        "-D",
        "-",
        &url,
    ]);
    let page = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{page}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("This server shares files through links."),
        "{page}"
    );
    assert!(
        page.to_ascii_lowercase()
            .contains("strict-transport-security: max-age="),
        "{page}"
    );
    // TLS 1.2 still works; HTTP/2 is negotiated by ALPN.
    let out = ops::curl(&[
        "--tlsv1.2",
        "--tls-max",
        "1.2",
        "--cacert",
        cacert,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let out = ops::curl(&[
        "--http2",
        "--cacert",
        cacert,
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        &url,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200");

    // A cookie set over TLS is Secure (the staff login's CSRF cookie), on HTTP/2 too.
    let out = ops::curl(&[
        "--http2",
        "--cacert",
        cacert,
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("{url}app/login"),
    ]);
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    let cookie = head
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie:\n{head}"));
    assert!(cookie.contains("; secure"), "{cookie}");
    assert!(head.contains("strict-transport-security"), "{head}");

    // Plain HTTP on the HTTPS port gets no page.
    let out = ops::curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{addr}/"),
    ]);
    assert_ne!(String::from_utf8_lossy(&out.stdout), "200");

    // The redirect listener sends plain HTTP to base_url, path and query kept.
    let r = node.addrs.redirect.expect("redirect listener");
    let out = ops::curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("http://{r}/l/abc?x=1"),
    ]);
    let head = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(head.starts_with("HTTP/1.1 308"), "{head}");
    assert!(
        head.lines().any(|l| l
            .trim_end()
            .eq_ignore_ascii_case("location: https://files.example.test/l/abc?x=1")),
        "{head}"
    );
    node.stop();
}

#[test]
fn sighup_swaps_certificates_keeps_transfers_and_survives_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let first = write_cert(&cert, &key, "first.test");
    let config = tmp.path().join("wharf.toml");
    std::fs::write(&config, tls_config(tmp.path(), "")).unwrap();
    let mut node = Node::start_with(tmp.path(), &config, &[]);
    let https = node.addrs.http.unwrap();
    let ftps = node.addrs.ftps_implicit.unwrap();
    let sftp = node.addrs.sftp.unwrap();
    assert_eq!(served_cert(https), pem_of(&first));
    let ftps_first = served_cert(ftps);
    assert!(ftps_first.contains("BEGIN CERTIFICATE"), "{ftps_first}");

    // An SFTP upload, slowed down so it spans the reload.
    let data: Vec<u8> = (0..12u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let src = tmp.path().join("big.bin");
    std::fs::write(&src, &data).unwrap();
    let password = node.admin_password();
    let mut upload = std::process::Command::new("curl")
        .args(["-sS", "--insecure", "--limit-rate", "3M", "-u"])
        .arg(format!("admin:{password}"))
        .arg("-T")
        .arg(&src)
        .arg(format!("sftp://{sftp}/big.bin"))
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert!(
        upload.try_wait().unwrap().is_none(),
        "the upload should still run"
    );

    // New files for HTTPS and FTPS, then SIGHUP.
    let second = write_cert(&cert, &key, "second.test");
    let ftps_new = write_cert(
        &node.dir.join("ftps_cert.pem"),
        &node.dir.join("ftps_key.pem"),
        "ftps.test",
    );
    node.signal("HUP");
    node.wait_for("the HTTPS reload", |l| {
        l.contains("HTTPS certificate reloaded")
    });
    node.wait_for("the FTPS reload", |l| {
        l.contains("FTPS certificate reloaded")
    });
    assert_eq!(served_cert(https), pem_of(&second));
    assert_eq!(served_cert(ftps), pem_of(&ftps_new));
    assert!(node.alive());

    // The transfer begun before the signal completes, byte for byte.
    let status = upload.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let got = ops::curl(&[
        "--insecure",
        "-u",
        &format!("admin:{password}"),
        &format!("sftp://{sftp}/big.bin"),
    ]);
    assert!(got.status.success());
    assert_eq!(ops::sha256_hex(&got.stdout), ops::sha256_hex(&data));

    // A broken certificate keeps the old one, and the log says why; a changed log
    // level applies, a changed [defender] is named as needing a restart.
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("[log]\nlevel = \"debug\"\n[defender]\nmax_failures = 9\n{text}"),
    )
    .unwrap();
    node.signal("HUP");
    let why = node.wait_for("the refusal", |l| {
        l.contains("HTTPS certificate not reloaded")
    });
    assert!(why.contains("cert.pem"), "{why}");
    node.wait_for("the log level", |l| l.contains("log level changed"));
    node.wait_for("the new limits", |l| l.contains("[defender] changed"));
    assert_eq!(served_cert(https), pem_of(&second));
    assert!(node.alive());
    node.stop();
}

/// POSTs a share of `path` to the node's API as `key`; returns the status.
fn api_share(http: std::net::SocketAddr, key: &str, path: &str, password: Option<&str>) -> String {
    let mut body = serde_json::json!({"kind": "share", "paths": [path]});
    if let Some(p) = password {
        body["password"] = p.into();
    }
    let out = ops::curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("authorization: Bearer {key}"),
        "-H",
        "content-type: application/json",
        "--data",
        &body.to_string(),
        &format!("http://{http}/api/v1/links"),
    ]);
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn sighup_puts_new_links_rules_and_defender_limits_in_force() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("wharf.toml");
    let settings = |failures: u32, password: bool, staging: &str| {
        ops::base_config(&format!(
            "[defender]\nmax_failures = {failures}\n[links]\nrequire_password = {password}\nupload_staging = \"{staging}\"\n"
        ))
    };
    let staging = tmp.path().join("staging");
    std::fs::write(&config, settings(10, false, staging.to_str().unwrap())).unwrap();
    let mut node = Node::start_with(tmp.path(), &config, &[]);
    let (sftp, http) = (node.addrs.sftp.unwrap(), node.addrs.http.unwrap());
    let password = node.admin_password();
    let src = tmp.path().join("a.txt");
    std::fs::write(&src, b"shared").unwrap();
    let up = ops::curl(&[
        "--insecure",
        "-u",
        &format!("admin:{password}"),
        "-T",
        src.to_str().unwrap(),
        &format!("sftp://{sftp}/a.txt"),
    ]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let created = ok(wharf_cmd(
        &node.dir,
        Some(&node.config),
        &["apikey", "create", "--user", "admin", "--name", "reload"],
    ));
    let key = created
        .split_whitespace()
        .find(|w| w.starts_with("wharf_"))
        .unwrap_or_else(|| panic!("no key in {created}"))
        .to_string();
    assert_eq!(api_share(http, &key, "/a.txt", None), "201");
    // Two wrong passwords are far below 10: the right one still logs in.
    for _ in 0..2 {
        assert!(!ops::sftp_login(sftp, "admin", "wrong"));
    }
    assert!(ops::sftp_login(sftp, "admin", &password));

    // Passwords required, two failures ban, and a staging folder moved: the first
    // two apply at once, the third is named as needing a restart.
    let moved = tmp.path().join("elsewhere");
    std::fs::write(&config, settings(2, true, moved.to_str().unwrap())).unwrap();
    node.signal("HUP");
    let links = node.wait_for("the new rules", |l| l.contains("[links] changed"));
    assert!(links.contains("require_password"), "{links}");
    node.wait_for("the new limits", |l| l.contains("[defender] changed"));
    let restart = node.wait_for("the restart notice", |l| l.contains("only after a restart"));
    assert!(restart.contains("upload_staging"), "{restart}");
    assert!(!restart.contains("require_password"), "{restart}");

    assert_eq!(api_share(http, &key, "/a.txt", None), "400");
    assert_eq!(
        api_share(http, &key, "/a.txt", Some("a long passphrase")),
        "201"
    );
    for _ in 0..2 {
        assert!(!ops::sftp_login(sftp, "admin", "wrong"));
    }
    assert!(
        !ops::sftp_login(sftp, "admin", &password),
        "two failures now ban the address"
    );
    node.wait_for("the ban", |l| l.contains("address locked out"));
    assert!(node.alive());
    node.stop();
}

/// The next datagram on `socket` (bounded wait).
fn next_notice(socket: &std::os::unix::net::UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a notice within the timeout");
    String::from_utf8_lossy(&buf[..n]).to_string()
}

#[test]
fn serve_tells_systemd_ready_reloading_and_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let config = tmp.path().join("wharf.toml");
    std::fs::write(&config, ops::base_config("")).unwrap();
    let node = Node::start_with(
        tmp.path(),
        &config,
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    // READY only once the listeners are bound: the node has printed them.
    let ready = next_notice(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    node.signal("HUP");
    let reloading = next_notice(&socket);
    assert!(
        reloading.lines().any(|l| l == "RELOADING=1")
            && reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading}"
    );
    assert_eq!(next_notice(&socket), "READY=1");
    node.stop();
    assert_eq!(next_notice(&socket), "STOPPING=1");
}

/// The samples of a Prometheus text page, parsed by Python's prometheus_client:
/// one `name{k="v",...} value` line each, labels sorted.
fn prometheus_samples(text: &str) -> Vec<String> {
    let script = "import sys\nfrom prometheus_client.parser import text_string_to_metric_families\nfor f in text_string_to_metric_families(sys.stdin.read()):\n    for s in f.samples:\n        labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n        print(f'{s.name}{{{labels}}} {s.value}')\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the page: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn sample(samples: &[String], key: &str) -> f64 {
    let line = samples
        .iter()
        .find(|l| l.rsplit_once(' ').map(|(k, _)| k) == Some(key))
        .unwrap_or_else(|| panic!("no sample {key}:\n{}", samples.join("\n")));
    line.rsplit_once(' ').unwrap().1.parse().unwrap()
}

#[test]
fn metrics_count_what_moved_and_parse_as_prometheus_text() {
    let tmp = tempfile::tempdir().unwrap();
    let mut node = Node::start(
        tmp.path(),
        &ops::base_config(
            "[http]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
        ),
    );
    let m = node.addrs.metrics.expect("metrics listener");
    let (sftp, http) = (node.addrs.sftp.unwrap(), node.addrs.http.unwrap());
    let password = node.admin_password();

    let out = ops::curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{m}/healthz"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");

    // One SFTP upload, one failed login, one link download.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let src = tmp.path().join("up.bin");
    std::fs::write(&src, &data).unwrap();
    let out = ops::curl(&[
        "--insecure",
        "-u",
        &format!("admin:{password}"),
        "-T",
        src.to_str().unwrap(),
        &format!("sftp://{sftp}/up.bin"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!ops::sftp_login(sftp, "admin", "not-the-password"));
    // Logins and transfers also reach the log stream as structured events.
    let sha = ops::sha256_hex(&data);
    node.wait_for("the upload event", |l| {
        l.contains("wharf::event")
            && l.contains("action=upload")
            && l.contains(&sha)
            && l.contains("duration_ms=")
    });
    node.wait_for("the failed login event", |l| {
        l.contains("wharf::event") && l.contains("action=login_failed")
    });
    let shared = ok(wharf_cmd(
        &node.dir,
        Some(&node.config),
        &["link", "share", "/up.bin", "--as", "admin"],
    ));
    let token = shared
        .split("/l/")
        .nth(1)
        .and_then(|r| {
            r.split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_')
                .next()
        })
        .unwrap_or_else(|| panic!("no link in {shared}"));
    let landing = ops::curl(&[&format!("http://{http}/l/{token}")]);
    let page = String::from_utf8_lossy(&landing.stdout).to_string();
    let id = page
        .split(&format!("/l/{token}/f/"))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no file on the landing page:\n{page}"));
    let got = ops::curl(&[&format!("http://{http}/l/{token}/f/{id}")]);
    assert_eq!(ops::sha256_hex(&got.stdout), ops::sha256_hex(&data));

    // The audit rows are written and counted when recorded; give the link
    // download's row (written when its body ends) a moment.
    let mut samples = Vec::new();
    let want = data.len() as f64;
    for _ in 0..100 {
        let page = ops::curl(&[&format!("http://{m}/metrics")]);
        samples = prometheus_samples(&String::from_utf8_lossy(&page.stdout));
        let key = "wharf_transfer_bytes_total{direction=download,protocol=http}";
        if samples.iter().any(|l| l.starts_with(&format!("{key} "))) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        sample(
            &samples,
            "wharf_transfer_bytes_total{direction=upload,protocol=sftp}"
        ),
        want
    );
    assert_eq!(
        sample(
            &samples,
            "wharf_transfer_bytes_total{direction=download,protocol=http}"
        ),
        want
    );
    assert_eq!(
        sample(
            &samples,
            "wharf_transfers_total{direction=upload,protocol=sftp,result=ok}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            "wharf_transfers_total{direction=download,protocol=http,result=ok}"
        ),
        1.0
    );
    assert!(sample(&samples, "wharf_logins_total{protocol=sftp,result=ok}") >= 1.0);
    // curl tries the password, then keyboard-interactive: each is a failed login.
    assert!(sample(&samples, "wharf_logins_total{protocol=sftp,result=failed}") >= 1.0);
    assert_eq!(sample(&samples, "wharf_link_visits_total{result=ok}"), 1.0);
    assert!(sample(&samples, "wharf_sessions_total{protocol=sftp}") >= 2.0);
    assert!(sample(&samples, "wharf_sessions_active{protocol=http}") >= 0.0);
    assert_eq!(sample(&samples, "wharf_audit_dropped_total{}"), 0.0);
    assert!(sample(&samples, "wharf_audit_queue_depth{}") >= 0.0);
    assert_eq!(
        sample(
            &samples,
            &format!("wharf_build_info{{version={}}}", env!("CARGO_PKG_VERSION"))
        ),
        1.0
    );
    // Storage calls of the transfers above are timed by the connector's layer.
    assert!(
        samples
            .iter()
            .any(|l| l.starts_with("wharf_storage_operation_seconds_count{connector=files,")),
        "{}",
        samples.join("\n")
    );
    // /readyz times a stat on every connector: the histogram has buckets.
    let out = ops::curl(&["-w", " %{http_code}", &format!("http://{m}/readyz")]);
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(" 200"));
    let page = ops::curl(&[&format!("http://{m}/metrics")]);
    let samples = prometheus_samples(&String::from_utf8_lossy(&page.stdout));
    assert!(
        sample(
            &samples,
            "wharf_storage_operation_seconds_count{connector=files,operation=stat}"
        ) >= 1.0
    );
    assert!(samples
        .iter()
        .any(|l| l.starts_with("wharf_storage_operation_seconds_bucket{connector=files,le=")));
    node.stop();
}

/// A moto S3 server of this test's own, so it can be stopped and started again.
struct Moto {
    child: std::process::Child,
}

impl Moto {
    fn start(port: u16) -> Moto {
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto (pip install 'moto[server]')");
        let deadline = std::time::Instant::now() + ops::DEADLINE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "moto did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let out = ops::curl(&[
            "-X",
            "PUT",
            &format!("http://127.0.0.1:{port}/ready-bucket"),
        ]);
        assert!(out.status.success());
        Moto { child }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

fn readyz(m: std::net::SocketAddr) -> (String, String) {
    let out = ops::curl(&["-w", "\n%{http_code}", &format!("http://{m}/readyz")]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.to_string(), body.to_string())
}

#[test]
fn readyz_and_ping_follow_an_s3_connector_going_away_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut moto = Moto::start(port);
    let storage = format!(
        "[[connector]]\nname = \"files\"\nscheme = \"fs\"\noptions = {{ root = \"files\" }}\n\
         [[connector]]\nname = \"archive\"\nscheme = \"s3\"\n[connector.options]\nbucket = \"ready-bucket\"\n\
         endpoint = \"http://127.0.0.1:{port}\"\nregion = \"us-east-1\"\naccess_key_id = \"k\"\n\
         secret_access_key = \"s\"\ndisable_config_load = \"true\"\n\
         [[mount]]\npath = \"/\"\nconnector = \"files\"\n[[mount]]\npath = \"/archive\"\nconnector = \"archive\"\n\
         [storage]\nmax_retries = 0\n"
    );
    let node = Node::start(
        tmp.path(),
        &format!(
            "{storage}{}",
            ops::base_config(
                "[http]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n"
            )
        ),
    );
    let m = node.addrs.metrics.unwrap();
    let ping = || {
        ops::run(wharf_cmd(
            &node.dir,
            Some(&node.config),
            &["ping", "--addr", &m.to_string()],
        ))
    };
    assert_eq!(readyz(m).0, "200");
    assert!(ping().status.success());

    moto.stop();
    let (code, body) = readyz(m);
    assert_eq!(code, "503", "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let failed = v["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{body}");
    assert_eq!(failed[0]["check"], "connector archive", "{body}");
    assert!(!body.contains("127.0.0.1"), "no storage address in {body}");
    let out = ping();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("connector archive"));
    // /healthz only says the process serves.
    let out = ops::curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{m}/healthz"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");

    let _moto = Moto::start(port);
    assert_eq!(readyz(m).0, "200");
    assert!(ping().status.success());
    node.stop();
}

fn count(db: &Path, table: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn backup_during_uploads_restores_into_a_new_directory_that_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(
        tmp.path(),
        &ops::base_config("[http]\nlisten = \"127.0.0.1:0\"\n"),
    );
    let sftp = node.addrs.sftp.unwrap();
    let password = node.admin_password();
    let src = tmp.path().join("part.bin");
    std::fs::write(&src, vec![42u8; 600_000]).unwrap();
    ok(wharf_cmd(
        &node.dir,
        Some(&node.config),
        &[
            "link",
            "send",
            src.to_str().unwrap(),
            "--to",
            "bob@example.com",
            "--as",
            "admin",
        ],
    ));

    // 20 uploads at once, slowed down so the backup runs in the middle of them.
    let uploads: Vec<_> = (0..20)
        .map(|i| {
            std::process::Command::new("curl")
                .args(["-sS", "--insecure", "--limit-rate", "400K", "-u"])
                .arg(format!("admin:{password}"))
                .arg("-T")
                .arg(&src)
                .arg(format!("sftp://{sftp}/up-{i}.bin"))
                .spawn()
                .unwrap()
        })
        .collect();
    // Back up once every upload has logged in (argon2 takes a while), while
    // their bytes still flow.
    let live = node.dir.join("wharf.db");
    let deadline = std::time::Instant::now() + ops::DEADLINE;
    while rusqlite::Connection::open(&live)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM audit WHERE action = 'login'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        < 20
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the uploads did not log in"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let archive = tmp.path().join("wharf-backup.tar");
    let out = ok(wharf_cmd(
        &node.dir,
        Some(&node.config),
        &["backup", "--to", archive.to_str().unwrap()],
    ));
    assert!(out.contains("wharf.db"), "{out}");
    assert_eq!(mode(&archive), 0o600);
    for mut u in uploads {
        assert!(u.wait().unwrap().success());
    }
    node.stop();

    // The archive is an ordinary tar.
    let listing = ok({
        let mut c = std::process::Command::new("tar");
        c.args(["tf", archive.to_str().unwrap()]);
        c
    });
    assert!(
        listing.starts_with("wharf-backup.json\nwharf.db\n"),
        "{listing}"
    );
    assert!(listing.contains("link-signing.key"), "{listing}");

    let restored = tempfile::tempdir().unwrap();
    let data = restored.path().join("data");
    let out = ok(wharf_cmd(
        &data,
        None,
        &["restore", "--from", archive.to_str().unwrap()],
    ));
    assert!(out.contains("integrity ok"), "{out}");
    assert_owner_only(&data, &["files", "transfers", "uploads"]);
    let db = data.join("wharf.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    assert_eq!(count(&db, "users"), 1);
    assert_eq!(count(&db, "links"), 1);
    let audited = count(&db, "audit");
    assert!(audited >= 21, "logins and the link are audited: {audited}");
    // A second restore into the same directory is refused: nothing is overwritten.
    let again = ops::run(wharf_cmd(
        &data,
        None,
        &["restore", "--from", archive.to_str().unwrap()],
    ));
    assert!(!again.status.success());

    // The restored directory serves: the same admin password and keys.
    let node = Node::start(
        restored.path(),
        &ops::base_config("[http]\nlisten = \"127.0.0.1:0\"\n"),
    );
    assert!(
        !node.dir.join("initial-admin-password").exists(),
        "no new admin"
    );
    assert!(ops::sftp_login(
        node.addrs.sftp.unwrap(),
        "admin",
        &password
    ));
    let links = ok(wharf_cmd(&node.dir, Some(&node.config), &["link", "list"]));
    assert!(links.lines().count() >= 2, "{links}");
    node.stop();
}

/// The systemd unit passes `systemd-analyze verify` (with ExecStart pointed at
/// the binary under test, since verify checks that it exists), keeps its
/// hardening, reloads with SIGHUP; the container's config file loads.
#[test]
fn packaging_files_check_out() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("packaging/wharf.service")).unwrap();
    for line in [
        "User=wharf",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/wharf",
        "NoNewPrivileges=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Type=notify",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("wharf.service");
    std::fs::write(
        &local,
        unit.replace("/usr/local/bin/wharf", env!("CARGO_BIN_EXE_wharf")),
    )
    .unwrap();
    let out = ops::run({
        let mut c = std::process::Command::new("systemd-analyze");
        c.args(["verify", local.to_str().unwrap()]);
        c
    });
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ok(wharf_cmd(
        &tmp.path().join("data"),
        Some(&root.join("packaging/container.toml")),
        &["config", "check"],
    ));
    assert!(out.contains("config OK"), "{out}");
}
