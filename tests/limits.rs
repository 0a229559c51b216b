//! Limits against guessing and against connections that hog the listeners, on
//! the real server with real clients: parallel wrong passwords get no more than
//! the lock-out limit checked; link guesses are throttled per link and never
//! lock the address out of SFTP; silent sockets from one address (127.0.0.2)
//! neither keep others (127.0.0.1) from logging in nor outlive the login grace
//! time.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::gateway::Gateway;
use common::ssh::sftp_login;
use futures::future::join_all;
use wharf::store::AuditQuery;

/// The tests here measure time (logins within a bound, deadlines) or load the
/// two CI cores (thirty parallel SSH handshakes): they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn details(rows: &[wharf::audit::AuditEvent]) -> Vec<String> {
    rows.iter().filter_map(|e| e.detail.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_passwords_get_no_more_than_the_limit_checked() {
    let _serial = SERIAL.lock().await;
    // Thirty connections at once from one address: above the default cap on
    // connections waiting to log in, so that is raised here.
    let mut gw = Gateway::start(
        "fs",
        "max_unauthenticated_per_address = 32\n[defender]\nmax_failures = 5\nwindow = \"5m\"\nban = \"10m\"\n",
    )
    .await;
    gw.add_user("acme", "/acme", "all", Some("right"), None);
    let addr = gw.sftp_addr();
    let tries = (0..30)
        .map(|i| async move { sftp_login(addr, "acme", &format!("wrong{i}")).await.is_ok() });
    let accepted = join_all(tries).await;
    assert!(accepted.iter().all(|ok| !ok), "no wrong password gets in");
    assert!(
        sftp_login(addr, "acme", "right").await.is_err(),
        "the address is locked out, so even the right password is refused"
    );

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("login_failed".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    let details = details(&rows);
    let checked = details
        .iter()
        .filter(|d| d.contains("wrong password"))
        .count();
    let locked = details.iter().filter(|d| d.contains("locked out")).count();
    assert!(
        (1..=5).contains(&checked),
        "{checked} wrong passwords were checked, the limit is 5: {details:?}"
    );
    assert_eq!(
        checked + locked,
        31,
        "every other try was refused unchecked: {details:?}"
    );
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A send link with a password; returns its URL.
fn protected_link(gw: &Gateway, password: &str) -> String {
    let local = gw.path("report.bin");
    std::fs::write(&local, common::pattern(10_000, 3)).unwrap();
    let (_, token) = gw.link_with_input(
        &["send", local.to_str().unwrap(), "--password-stdin"],
        Some(password),
    );
    gw.url(&token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_guesses_are_throttled_per_link_and_never_lock_out_sftp() {
    let _serial = SERIAL.lock().await;
    let mut gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some("right"), None);
    let url = protected_link(&gw, "link secret");
    let c = browser();
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let token = common::csrf(&page);
    let mut statuses = Vec::new();
    for i in 0..10 {
        let r = c
            .post(format!("{url}/password"))
            .form(&[("csrf", token.as_str()), ("password", &format!("guess{i}"))])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..5], &[403; 5], "{statuses:?}");
    assert_eq!(&statuses[5..], &[429; 5], "{statuses:?}");

    // The same address still logs in over SFTP, and the staff login page is open.
    let (_ssh, sftp) = sftp_login(gw.sftp_addr(), "acme", "right")
        .await
        .expect("link guesses do not lock the address out of SFTP");
    drop(sftp);
    let login = c
        .get(format!("http://{}/app/login", gw.http_addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("address_banned".into()),
            ..Default::default()
        })
        .await;
    assert!(rows.is_empty(), "no address ban: {rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_link_guesses_get_no_more_than_the_limit_checked() {
    let _serial = SERIAL.lock().await;
    let mut gw = Gateway::start("fs", "").await;
    let url = protected_link(&gw, "link secret");
    let c = browser();
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let token = common::csrf(&page);
    let guesses = (0..40).map(|i| {
        let (c, url, token) = (c.clone(), url.clone(), token.clone());
        async move {
            c.post(format!("{url}/password"))
                .form(&[("csrf", token.as_str()), ("password", &format!("guess{i}"))])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = join_all(guesses).await;
    let wrong = statuses.iter().filter(|s| **s == 403).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(wrong + throttled, 40, "{statuses:?}");
    assert!(wrong <= 5, "{wrong} guesses were checked: {statuses:?}");

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("link_password_failed".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    assert!(rows.len() <= 5, "{} guesses audited as checked", rows.len());
}

/// Starts a gateway on `dir` with `config` as its whole config file (storage is
/// the embedded default: fs in the data directory).
async fn start_on(dir: tempfile::TempDir, config: &str) -> Gateway {
    let file = dir.path().join("wharf.toml");
    std::fs::write(&file, config).unwrap();
    let config = wharf::config::Config::load(Some(&file), Some(&dir.path().join("data"))).unwrap();
    let db = wharf::app::open_db(&config).unwrap();
    let running = wharf::app::App::open(config.clone())
        .unwrap()
        .start()
        .await
        .unwrap();
    Gateway {
        running: Some(running),
        db,
        config,
        dir,
    }
}

/// Listeners on port 0; `extra[section]` lines go into each table.
fn config(sftp: &str, ftps: &str, http: &str) -> String {
    format!(
        "[sftp]\nlisten = \"127.0.0.1:0\"\nauth_delay = \"10ms\"\n{sftp}\n\
         [ftps]\nexplicit_listen = \"127.0.0.1:0\"\nimplicit_listen = \"127.0.0.1:0\"\n{ftps}\n\
         [http]\nlisten = \"127.0.0.1:0\"\n{http}\n"
    )
}

/// `n` TCP connections to `to` from 127.0.0.2 that never send a byte.
async fn silent_sockets(to: SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        out.push(socket.connect(to).await.unwrap());
    }
    out
}

/// Whether the server closed `socket` before `deadline` (whatever it sent first).
async fn closed_by(socket: &mut tokio::net::TcpStream, deadline: Instant) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Runs `cmd` (a client), at most `limit`; true if it succeeded in time.
async fn within(limit: Duration, cmd: &mut tokio::process::Command) -> Result<(), String> {
    cmd.kill_on_drop(true);
    match tokio::time::timeout(limit, cmd.output()).await {
        Err(_) => Err(format!("no answer within {limit:?}")),
        Ok(out) => {
            let out = out.unwrap();
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_from_one_address_lock_nobody_out_and_are_closed() {
    let _serial = SERIAL.lock().await;
    // A login normally takes well under a second; the bound leaves room for a
    // debug build's argon2 on two busy cores, and stays below the grace time, so
    // only a free slot (not a silent socket closed meanwhile) lets a login in.
    const GRACE: Duration = Duration::from_secs(8);
    const LOGIN: Duration = Duration::from_secs(5);
    let gw = start_on(
        tempfile::tempdir().unwrap(),
        &config(
            "login_grace_time = \"8s\"",
            "login_grace_time = \"8s\"",
            "header_timeout = \"8s\"",
        ),
    )
    .await;
    gw.add_user("acme", "/acme", "all", Some("right"), None);
    let mut all = Vec::new();

    // SFTP: 70 silent sockets (more than max_sessions), then a login.
    let opened = Instant::now();
    let mut idle = silent_sockets(gw.sftp_addr(), 70).await;
    let t = Instant::now();
    let login = tokio::time::timeout(LOGIN, sftp_login(gw.sftp_addr(), "acme", "right")).await;
    assert!(
        matches!(login, Ok(Ok(_))),
        "SFTP login beside 70 silent sockets: {:?}",
        login.map(|r| r.map(|_| ()))
    );
    assert!(t.elapsed() < LOGIN);
    all.push(("sftp", opened, std::mem::take(&mut idle)));

    // FTPS, explicit and implicit (one gate for both): curl lists the home.
    for (name, addr, url) in [
        (
            "ftps explicit",
            gw.ftps_explicit(),
            format!("ftp://127.0.0.1:{}/", gw.ftps_explicit().port()),
        ),
        (
            "ftps implicit",
            gw.ftps_implicit(),
            format!("ftps://127.0.0.1:{}/", gw.ftps_implicit().port()),
        ),
    ] {
        let opened = Instant::now();
        let idle = silent_sockets(addr, 70).await;
        let res = within(
            LOGIN,
            tokio::process::Command::new("curl")
                .args(["-sS", "--ssl-reqd", "-k", "-u", "acme:right", "--list-only"])
                .arg(&url),
        )
        .await;
        assert!(
            res.is_ok(),
            "{name} login beside 70 silent sockets: {res:?}"
        );
        all.push((name, opened, idle));
    }

    // HTTP: 300 silent sockets (more than max_connections), then the staff login page.
    let opened = Instant::now();
    let idle = silent_sockets(gw.http_addr(), 300).await;
    let page = tokio::time::timeout(
        LOGIN,
        reqwest::get(format!("http://{}/app/login", gw.http_addr())),
    )
    .await;
    let status = page.map(|r| r.map(|r| r.status().as_u16()));
    assert!(
        matches!(status, Ok(Ok(200))),
        "HTTP beside 300 silent sockets: {status:?}"
    );
    all.push(("http", opened, idle));

    // Every silent socket is closed: refused at once, or after the grace time.
    for (name, opened, mut sockets) in all {
        let deadline = opened + GRACE + Duration::from_secs(3);
        let mut open = 0;
        for s in &mut sockets {
            if !closed_by(s, deadline).await {
                open += 1;
            }
        }
        assert_eq!(
            open, 0,
            "{name}: {open} silent sockets still open after the grace time"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_head_and_keep_alive_deadlines_cannot_be_stretched() {
    let _serial = SERIAL.lock().await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = start_on(
        tempfile::tempdir().unwrap(),
        &config(
            "",
            "",
            "header_timeout = \"2s\"\nkeepalive_timeout = \"1s\"",
        ),
    )
    .await;
    let addr = gw.http_addr();

    // Slow-loris: a header line every 300 ms never completes the head; the
    // connection is cut 2 s after it opened, not 2 s after the last byte, and
    // not by the 1 s idle deadline either (it is sending).
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let opened = Instant::now();
    slow.write_all(b"GET /app/login HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut cut = None;
    for i in 0..30 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if slow
            .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = Some(opened.elapsed());
            break;
        }
        let mut buf = [0u8; 512];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await
        {
            cut = Some(opened.elapsed());
            break;
        }
    }
    let cut = cut.expect("the trickling client was never cut off");
    assert!(
        cut > Duration::from_millis(1500) && cut < Duration::from_secs(4),
        "a head in progress gets the head deadline (2 s), not the idle one: cut after {cut:?}"
    );

    // A connection that never sends a byte is idle: closed after about a second.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let opened = Instant::now();
    assert!(closed_by(&mut silent, opened + Duration::from_secs(3)).await);
    assert!(opened.elapsed() < Duration::from_millis(1900));

    // Keep-alive: one request answered, then the idle connection is closed after
    // about a second.
    let mut kept = tokio::net::TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /app/login HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("</html>") {
        let n = tokio::time::timeout(Duration::from_secs(2), kept.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"));
    let answered = Instant::now();
    assert!(closed_by(&mut kept, answered + Duration::from_secs(3)).await);
    let idle = answered.elapsed();
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_millis(1900),
        "closed after {idle:?} idle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_out_survives_a_restart() {
    let _serial = SERIAL.lock().await;
    let text =
        config("", "", "") + "[defender]\nmax_failures = 2\nwindow = \"5m\"\nban = \"10m\"\n";
    let mut gw = start_on(tempfile::tempdir().unwrap(), &text).await;
    gw.add_user("acme", "/acme", "all", Some("right"), None);
    for _ in 0..2 {
        assert!(sftp_login(gw.sftp_addr(), "acme", "wrong").await.is_err());
    }
    assert!(
        sftp_login(gw.sftp_addr(), "acme", "right").await.is_err(),
        "locked out"
    );
    gw.running.take().unwrap().shutdown().await;
    let Gateway { dir, db, .. } = gw;
    drop(db);

    // The same data directory, a new process state: still locked out.
    let mut gw = start_on(dir, &text).await;
    assert!(
        sftp_login(gw.sftp_addr(), "acme", "right").await.is_err(),
        "the lock-out outlives the restart"
    );
    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("login_failed".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    let details = details(&rows);
    assert_eq!(
        details.iter().filter(|d| d.contains("locked out")).count(),
        2,
        "once before and once after the restart: {details:?}"
    );
}
