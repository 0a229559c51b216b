//! Hardening seen from the clients: what an error tells them (never a storage
//! URL, bucket or header; a full disk in each protocol's own words), what a store
//! failure looks like to a visitor (503, not "no such link"), that no code or
//! token reaches the log, and that an absurd expiry is refused while listings of
//! links that hold one still work.

mod common;

use std::io::Cursor;
use std::process::Command as StdCommand;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::gateway::Gateway;
use common::{pattern, s3_endpoint, s3_options};
use suppaftp::types::FileType;
use suppaftp::RustlsFtpStream;
use tokio::process::Command;

/// Everything the gateways of this test binary log, at every level.
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_ansi(false)
            .with_writer(move || Writer(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
    .clone()
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn ftps_login(gw: &Gateway, user: &str, password: &str) -> RustlsFtpStream {
    let ftp = RustlsFtpStream::connect(gw.ftps_explicit()).unwrap();
    let mut ftp = ftp.into_secure(gw.ftps_connector(), "localhost").unwrap();
    ftp.login(user, password).unwrap();
    ftp.transfer_type(FileType::Binary).unwrap();
    ftp
}

/// Runs a paramiko script (user `acme`, password `pw`, `PORT` set) and returns
/// what it printed: paramiko shows the server's status text in its errors.
async fn paramiko(gw: &Gateway, body: &str) -> String {
    let script = format!(
        "import paramiko, sys\n\
         t = paramiko.Transport(('127.0.0.1', {port}))\n\
         t.connect(username='acme', password='pw')\n\
         s = paramiko.SFTPClient.from_transport(t)\n\
         {body}\n\
         t.close()\n",
        port = gw.sftp_addr().port()
    );
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new("python3")
            .arg("-c")
            .arg(&script)
            .current_dir(gw.dir.path())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("paramiko finished")
    .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn api_key(gw: &Gateway, user: &str) -> String {
    let out = gw.cli(&["apikey", "create", "--user", user, "--name", "tests"]);
    out.split_whitespace()
        .find(|w| w.starts_with("wharf_"))
        .expect("a key in the output")
        .to_string()
}

fn fs_mount(name: &str, root: &std::path::Path) -> String {
    format!(
        "[[connector]]\nname = \"{name}\"\nscheme = \"fs\"\noptions = {{ root = \"{}\" }}\n\n[[mount]]\npath = \"/\"\nconnector = \"{name}\"\n",
        root.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_errors_reach_clients_without_urls_buckets_or_headers() {
    // A bucket that does not exist on a real S3 server: every call fails with the
    // service's error, whose text names the bucket, the endpoint and headers.
    let bucket = format!("wharf-never-made-{}", std::process::id());
    let opts: Vec<String> = s3_options(&bucket)
        .into_iter()
        .map(|(k, v)| format!("{k} = \"{v}\""))
        .collect();
    let storage = format!(
        "[[connector]]\nname = \"s3\"\nscheme = \"s3\"\n[connector.options]\n{}\n\n[[mount]]\npath = \"/\"\nconnector = \"s3\"\n",
        opts.join("\n")
    );
    let gw = Gateway::start("fs", &storage).await;
    gw.add_user("acme", "/", "all", Some("pw"), None);
    let endpoint = s3_endpoint().trim_start_matches("http://").to_string();
    let needles = [
        bucket.clone(),
        endpoint,
        "http".into(),
        "x-amz".into(),
        "amz-".into(),
    ];
    let leaks = move |text: &str| -> Vec<String> {
        needles
            .iter()
            .filter(|n| text.contains(n.as_str()))
            .cloned()
            .collect()
    };

    let sftp = paramiko(
        &gw,
        "for op in (lambda: s.listdir('/'), lambda: s.stat('/a.bin'), lambda: s.open('/a.bin').read(), lambda: s.mkdir('/d')):\n    \
         try:\n        op()\n        print('NO ERROR')\n    \
         except Exception as e:\n        print('ERR', type(e).__name__, e)",
    )
    .await;
    assert!(sftp.matches("ERR").count() == 4, "{sftp}");
    assert!(
        leaks(&sftp).is_empty(),
        "SFTP replies leak {:?}: {sftp}",
        leaks(&sftp)
    );

    let ftp_leaks = leaks.clone();
    let gw = tokio::task::spawn_blocking(move || {
        let leaks = ftp_leaks;
        let mut ftp = ftps_login(&gw, "acme", "pw");
        let mut seen = String::new();
        seen += &format!("{}\n", ftp.list(None).unwrap_err());
        seen += &format!("{}\n", ftp.retr_as_buffer("/a.bin").unwrap_err());
        seen += &format!(
            "{}\n",
            ftp.put_file("/b.bin", &mut Cursor::new(b"x".to_vec()))
                .unwrap_err()
        );
        seen += &format!("{}\n", ftp.mkdir("/d").unwrap_err());
        assert!(leaks(&seen).is_empty(), "FTP replies leak: {seen}");
        assert!(seen.contains("451") || seen.contains("550"), "{seen}");
        gw
    })
    .await
    .unwrap();

    let key = api_key(&gw, "acme");
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/links", gw.http_addr()))
        .bearer_auth(&key)
        .json(&serde_json::json!({"kind": "share", "paths": ["/a.bin"]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert!(leaks(&body).is_empty(), "API answer leaks: {body}");
    assert!(status >= 400, "{status} {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_in_each_protocols_own_words() {
    let disk = tempfile::tempdir().unwrap();
    let mounted = StdCommand::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(disk.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: cannot mount a small tmpfs here (needs root); the full-disk replies are not checked");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = StdCommand::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(disk.path().to_path_buf());
    let extra = format!(
        "{}\n[transfers]\nconnector = \"small\"\nroot = \"/sent\"\n",
        fs_mount("small", disk.path())
    );
    let gw = Gateway::start("fs", &extra).await;
    gw.add_user("acme", "/", "all", Some("pw"), None);
    std::fs::write(gw.path("big.bin"), pattern(3 << 20, 1)).unwrap();

    let sftp = paramiko(
        &gw,
        "f = s.open('/big.bin', 'wb')\n\
         try:\n    f.write(open('big.bin', 'rb').read())\n    f.close()\n    print('NO ERROR')\n\
         except Exception as e:\n    print('ERR', e)",
    )
    .await;
    assert!(sftp.contains("No space left on device"), "{sftp}");

    let gw = tokio::task::spawn_blocking(move || {
        let mut ftp = ftps_login(&gw, "acme", "pw");
        let err = ftp
            .put_file("/big-ftp.bin", &mut Cursor::new(pattern(3 << 20, 2)))
            .unwrap_err();
        let text = format!("{err}");
        assert!(text.contains("452"), "FTP: {text}");
        gw
    })
    .await
    .unwrap();

    let key = api_key(&gw, "acme");
    let form = reqwest::multipart::Form::new()
        .part(
            "link",
            reqwest::multipart::Part::text(r#"{"kind":"send","title":"big"}"#)
                .mime_str("application/json")
                .unwrap(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(pattern(3 << 20, 3)).file_name("big.bin"),
        );
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/links", gw.http_addr()))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(status, 507, "{body}");
    assert!(body.contains("No space left on device"), "{body}");
    // Nothing half-written is left visible: the disk is as empty as before.
    drop(gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_gives_503_not_link_not_found() {
    let gw = Gateway::start("fs", "").await;
    let local = gw.path("f.txt");
    std::fs::write(&local, b"hello").unwrap();
    let (_, token) = gw.link(&["send", local.to_str().unwrap()]);
    let url = gw.url(&token);
    let c = reqwest::Client::new();
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);

    let db = rusqlite::Connection::open(gw.config.database_path()).unwrap();
    db.execute_batch("ALTER TABLE links RENAME TO links_away")
        .unwrap();
    let r = c.get(&url).send().await.unwrap();
    let status = r.status().as_u16();
    let page = r.text().await.unwrap();
    assert_eq!(status, 503, "{page}");
    assert!(!page.contains("does not exist"), "{page}");
    assert!(!page.contains("links_away") && !page.contains("no such table"));
    db.execute_batch("ALTER TABLE links_away RENAME TO links")
        .unwrap();
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_code_or_token_reaches_the_log() {
    let log = captured_log();
    let gw = Gateway::start("fs", "").await;
    let local = gw.path("f.txt");
    std::fs::write(&local, b"for dana").unwrap();
    let (_, token) = gw.link(&[
        "send",
        local.to_str().unwrap(),
        "--allow-email",
        "dana@example.org",
    ]);
    let url = gw.url(&token);
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = page[at..at + 32].to_string();
    let r = c
        .post(format!("{url}/email"))
        .form(&[("csrf", csrf.as_str()), ("email", "dana@example.org")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let outbox = gw.config.data_dir.join("outbox");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let eml = loop {
        let found = std::fs::read_dir(&outbox).ok().and_then(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "eml"))
        });
        if let Some(p) = found {
            break std::fs::read_to_string(p).unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no code mail");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let code = common::mail_code(&eml);
    assert!(!eml
        .lines()
        .any(|l| l.starts_with("Subject:") && l.contains(&code)));
    // The mail was logged (so the log is being captured), without its secrets.
    // The line is written just after the file appears: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = String::from_utf8_lossy(&log.lock().unwrap()).to_string();
        if text.contains("mail written to the outbox") || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        text.contains("mail written to the outbox"),
        "log not captured"
    );
    assert!(!text.contains(&code), "the code is in the log");
    assert!(!text.contains(&token), "the link token is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_expiry_is_refused_and_listings_survive_one_in_the_store() {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("alice", "/alice", "all", Some("pw-a"), None);
    std::fs::create_dir_all(gw.config.data_dir.join("files/alice")).unwrap();
    std::fs::write(gw.config.data_dir.join("files/alice/a.txt"), b"a").unwrap();
    let key = api_key(&gw, "alice");
    let api = |path: &str| format!("http://{}{path}", gw.http_addr());
    let c = reqwest::Client::new();
    for expires in ["300000y", "99999-12-31", "9999999999999999999y"] {
        let r = c
            .post(api("/api/v1/links"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"kind": "share", "paths": ["/a.txt"], "expires": expires}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{expires}: {}", r.text().await.unwrap());
    }
    let r = c
        .post(api("/api/v1/links"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"kind": "share", "paths": ["/a.txt"], "expires": "1d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // A row written before the bound existed (or by hand) holds a far future.
    let db = rusqlite::Connection::open(gw.config.database_path()).unwrap();
    db.execute("UPDATE links SET expires_at = ?1", [i64::MAX / 2])
        .unwrap();
    let r = c
        .get(api("/api/v1/links"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: serde_json::Value = r.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["expires_at"], "9999-12-31T23:59:59Z");
    let out = gw.cli(&["link", "list"]);
    assert!(out.contains("9999-12-31"), "{out}");
}

/// `wharf serve` as a child process on `data` with `config`, waited for until
/// its link server at `port` accepts.
fn serve(data: &std::path::Path, config: &std::path::Path, port: u16) -> std::process::Child {
    let log = std::fs::File::create(data.with_extension("log")).unwrap();
    let child = common::wharf_cmd(data, Some(config))
        .arg("serve")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_by_kill_9_gives_its_one_time_use_back_after_the_timeout() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = common::free_port();
    let config = dir.path().join("wharf.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n[links]\nbase_url = \"http://127.0.0.1:{port}\"\nreservation_timeout = \"2s\"\n\
             [sftp]\nenabled = false\n[ftps]\nenabled = false\n"
        ),
    )
    .unwrap();
    let file = dir.path().join("big.bin");
    let bytes = pattern(20 << 20, 9);
    std::fs::write(&file, &bytes).unwrap();
    let mut server = serve(&data, &config, port); // makes the first admin
    let out = common::wharf_cmd(&data, Some(&config))
        .args(["link", "send", file.to_str().unwrap(), "--one-time"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = text
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();

    let page = get(&url).await.text().await.unwrap();
    let file_url = format!("{url}{}", common::file_path(&page));
    // Start the download, read a little, and kill the server under it.
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let path = file_url.trim_start_matches(&format!("http://127.0.0.1:{port}"));
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut head = vec![0u8; 64 * 1024];
    let n = tcp.read(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    server.kill().unwrap(); // SIGKILL: nothing settles the use
    server.wait().unwrap();
    drop(tcp);

    let mut server = serve(&data, &config, port);
    assert_eq!(
        get(&url).await.status(),
        410,
        "the cut download still holds the use"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let page = loop {
        let r = get(&url).await;
        if r.status() == 200 {
            break r.text().await.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the use never came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let got = get(&format!("{url}{}", common::file_path(&page)))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(common::sha256(&got), common::sha256(&bytes));
    assert_eq!(get(&url).await.status(), 410, "one use, now taken");
    server.kill().unwrap();
    server.wait().unwrap();
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}
