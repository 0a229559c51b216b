//! Visitors behind proxies, on the real server: forwarding headers from a
//! trusted reverse proxy (127.0.0.1 in `[http] trusted_proxies`) set the audited
//! address and are ignored from anyone else; SFTP behind a PROXY protocol header
//! (HAProxy with `send-proxy-v2`, and an in-test relay that claims another
//! address in v2 and in v1) is audited from the header's address; a PROXY header
//! from an address not trusted to send one is refused.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::gateway::Gateway;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket};
use wharf::store::AuditQuery;

/// The tests share the two CI cores; SSH handshakes run one test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// An SSH password login and an SFTP session; `Err` when refused or cut.
async fn sftp_login(addr: SocketAddr, user: &str, password: &str) -> Result<(), String> {
    tokio::time::timeout(
        Duration::from_secs(20),
        common::ssh::sftp_login(addr, user, password),
    )
    .await
    .map_err(|_| "timed out".to_string())?
    .map(drop)
}

/// Sends one wrong password to a protected link with `X-Forwarded-For`.
async fn wrong_link_password(gw: &Gateway, forwarded_for: &str) -> u16 {
    let local = gw.path("report.bin");
    std::fs::write(&local, common::pattern(1_000, 3)).unwrap();
    let (_, token) = gw.link_with_input(
        &["send", local.to_str().unwrap(), "--password-stdin"],
        Some("link secret"),
    );
    let url = gw.url(&token);
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let r = c
        .post(format!("{url}/password"))
        .header("X-Forwarded-For", forwarded_for)
        .form(&[
            ("csrf", common::csrf(&page).as_str()),
            ("password", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

/// The `Set-Cookie` lines of a first visit to a link page, with `proto` as
/// `X-Forwarded-Proto` when given.
async fn first_visit_cookies(gw: &Gateway, proto: Option<&str>) -> Vec<String> {
    let local = gw.path("page.bin");
    std::fs::write(&local, common::pattern(1_000, 4)).unwrap();
    let (_, token) = gw.link_with_input(
        &["send", local.to_str().unwrap(), "--password-stdin"],
        Some("link secret"),
    );
    let mut req = reqwest::Client::new().get(gw.url(&token));
    if let Some(p) = proto {
        req = req.header("X-Forwarded-Proto", p);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(!cookies.is_empty(), "a first visit sets the CSRF cookie");
    cookies
}

fn secure(cookies: &[String]) -> bool {
    cookies.iter().all(|c| c.contains("; Secure"))
}

/// The audit rows of failed or refused events, as (remote, action).
async fn failures(gw: &mut Gateway) -> Vec<(String, String)> {
    gw.stop_and_audit(AuditQuery::default())
        .await
        .into_iter()
        .filter(|e| !matches!(e.outcome, wharf::audit::Outcome::Ok))
        .map(|e| (e.remote.unwrap_or_default(), e.action))
        .collect()
}

fn from(rows: &[(String, String)], ip: &str) -> bool {
    rows.iter()
        .any(|(r, _)| r == ip || r.starts_with(&format!("{ip}:")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let _serial = SERIAL.lock().await;
    let mut gw = Gateway::start_full("fs", "trusted_proxies = [\"127.0.0.1/32\"]", "", "").await;
    assert_eq!(
        wrong_link_password(&gw, "198.18.0.1, 203.0.113.7").await,
        403
    );
    let rows = failures(&mut gw).await;
    assert!(from(&rows, "203.0.113.7"), "{rows:?}");
    assert!(!from(&rows, "127.0.0.1"), "{rows:?}");

    // The same header from an address not in the list is ignored.
    let mut gw = Gateway::start_full("fs", "trusted_proxies = [\"10.0.0.0/8\"]", "", "").await;
    assert_eq!(wrong_link_password(&gw, "203.0.113.7").await, 403);
    assert!(!secure(&first_visit_cookies(&gw, Some("https")).await));
    let rows = failures(&mut gw).await;
    assert!(from(&rows, "127.0.0.1"), "{rows:?}");
    assert!(!from(&rows, "203.0.113.7"), "{rows:?}");
}

/// A PROXY v2 header (TCP over IPv4) claiming `src` as the client.
fn v2_header(src: [u8; 4], dst: SocketAddr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&src);
    let SocketAddr::V4(d) = dst else {
        panic!("IPv4")
    };
    h.extend_from_slice(&d.ip().octets());
    h.extend_from_slice(&40000u16.to_be_bytes());
    h.extend_from_slice(&d.port().to_be_bytes());
    h
}

/// A relay on 127.0.0.1 that connects to `target` from `source`, writes
/// `header` first, then copies both ways (a handful of connections at most).
async fn relay(target: SocketAddr, source: &str, header: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let source: SocketAddr = format!("{source}:0").parse().unwrap();
    tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let header = header.clone();
            tokio::spawn(async move {
                let socket = TcpSocket::new_v4().unwrap();
                socket.bind(source).unwrap();
                let Ok(mut outbound) = socket.connect(target).await else {
                    return;
                };
                if outbound.write_all(&header).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_behind_a_proxy_header_is_audited_from_the_header_address() {
    let _serial = SERIAL.lock().await;
    let mut gw = Gateway::start("fs", "proxy_protocol = [\"127.0.0.1/32\"]\n").await;
    gw.add_user("acme", "/acme", "all", Some("right"), None);
    let sftp = gw.sftp_addr();

    let v2 = relay(sftp, "127.0.0.1", v2_header([198, 51, 100, 9], sftp)).await;
    assert!(sftp_login(v2, "acme", "wrong").await.is_err());
    sftp_login(v2, "acme", "right")
        .await
        .expect("a login through the v2 relay");
    let v1_line = format!("PROXY TCP4 192.0.2.44 127.0.0.1 40001 {}\r\n", sftp.port());
    let v1 = relay(sftp, "127.0.0.1", v1_line.into_bytes()).await;
    assert!(sftp_login(v1, "acme", "wrong").await.is_err());

    // Without a header, the trusted address gets no session.
    assert!(sftp_login(sftp, "acme", "right").await.is_err());

    let rows = failures(&mut gw).await;
    assert!(from(&rows, "198.51.100.9"), "{rows:?}");
    assert!(from(&rows, "192.0.2.44"), "{rows:?}");
    assert!(!from(&rows, "127.0.0.1"), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_header_from_an_untrusted_address_is_refused() {
    let _serial = SERIAL.lock().await;
    let mut gw = Gateway::start("fs", "proxy_protocol = [\"127.0.0.1/32\"]\n").await;
    gw.add_user("acme", "/acme", "all", Some("right"), None);
    let sftp = gw.sftp_addr();
    // 127.0.0.2 is not trusted: its header must not name the client.
    let spoof = relay(sftp, "127.0.0.2", v2_header([198, 51, 100, 9], sftp)).await;
    assert!(sftp_login(spoof, "acme", "right").await.is_err());
    let spoof_v1 = relay(
        sftp,
        "127.0.0.2",
        format!("PROXY TCP4 198.51.100.9 127.0.0.1 1 {}\r\n", sftp.port()).into_bytes(),
    )
    .await;
    assert!(sftp_login(spoof_v1, "acme", "right").await.is_err());
    // A plain client from that address still logs in.
    let plain = relay(sftp, "127.0.0.2", Vec::new()).await;
    sftp_login(plain, "acme", "right")
        .await
        .expect("a direct login from 127.0.0.2");
    let rows = gw.stop_and_audit(AuditQuery::default()).await;
    assert!(
        rows.iter().all(|e| !e
            .remote
            .clone()
            .unwrap_or_default()
            .starts_with("198.51.100.9")),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_through_haproxy_send_proxy_v2() {
    let _serial = SERIAL.lock().await;
    let mut gw = Gateway::start("fs", "proxy_protocol = [\"127.0.0.1/32\"]\n").await;
    gw.add_user("acme", "/acme", "all", Some("right"), None);
    let front = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cfg = gw.path("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 64\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             listen sftp\n  bind {front}\n  server wharf {} send-proxy-v2\n",
            gw.sftp_addr()
        ),
    )
    .unwrap();
    let mut haproxy = tokio::process::Command::new("haproxy")
        .args(["-db", "-f", cfg.to_str().unwrap()])
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy is installed (.ci/run)");
    let mut up = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(front).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "haproxy listens");
    assert!(sftp_login(front, "acme", "wrong").await.is_err());

    // OpenSSH's sftp uploads through haproxy; the bytes arrive whole.
    let key = gw.keygen("carol_key");
    gw.add_user("carol", "/carol", "all", None, Some(&key));
    let data = common::pattern(200_000, 7);
    std::fs::write(gw.path("up.bin"), &data).unwrap();
    let batch = gw.path("batch");
    std::fs::write(
        &batch,
        format!("put {} up.bin\n", gw.path("up.bin").display()),
    )
    .unwrap();
    let mut sftp_cmd = tokio::process::Command::new("sftp");
    sftp_cmd
        .args(common::gateway::SSH_OPTS)
        .arg("-P")
        .arg(front.port().to_string())
        .arg("-i")
        .arg(&key)
        .arg("-b")
        .arg(&batch)
        .arg("carol@127.0.0.1")
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), sftp_cmd.output())
        .await
        .expect("sftp finishes")
        .unwrap();
    let _ = haproxy.kill().await;
    assert!(
        out.status.success(),
        "sftp through haproxy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        gw.stored_sha("/carol/up.bin").await.as_deref(),
        Some(common::sha256(&data).as_str())
    );
    let rows = failures(&mut gw).await;
    // HAProxy names the real client: here 127.0.0.1, from the header.
    assert!(from(&rows, "127.0.0.1"), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_trusted_connection_is_closed_after_the_header_deadline() {
    let _serial = SERIAL.lock().await;
    let gw = Gateway::start(
        "fs",
        "proxy_protocol = [\"127.0.0.1/32\"]\nmax_sessions = 1\n",
    )
    .await;
    gw.add_user("acme", "/acme", "all", Some("right"), None);
    let sftp = gw.sftp_addr();
    let started = std::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(sftp).await.unwrap();
    // The silent header holds no slot: a client behind the header logs in
    // meanwhile although the listener takes one session only.
    let v2 = relay(sftp, "127.0.0.1", v2_header([198, 51, 100, 9], sftp)).await;
    sftp_login(v2, "acme", "right")
        .await
        .expect("a login while a header is pending");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut silent, &mut buf),
    )
    .await
    .expect("closed within the deadline")
    .unwrap_or(0);
    assert_eq!(n, 0, "no SSH banner without a header");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftps_refuses_a_proxy_header_from_an_untrusted_address() {
    let _serial = SERIAL.lock().await;
    let gw = Gateway::start_with("fs", "proxy_protocol = [\"127.0.0.2/32\"]", "").await;
    let mut tcp = tokio::net::TcpStream::connect(gw.ftps_explicit())
        .await
        .unwrap();
    tcp.write_all(b"PROXY TCP4 198.51.100.9 127.0.0.1 1 21\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut got),
    )
    .await
    .expect("closed");
    assert!(read.is_ok() || got.is_empty());
    assert!(
        got.is_empty(),
        "no greeting: {:?}",
        String::from_utf8_lossy(&got)
    );
    // A client without a header is greeted as usual.
    let mut plain = tokio::net::TcpStream::connect(gw.ftps_explicit())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut plain, &mut buf),
    )
    .await
    .expect("a greeting")
    .unwrap();
    assert!(
        buf[..n].starts_with(b"220"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
}

/// Python's ftplib over `port`: log in, store `up.bin` as `name` in passive
/// mode; prints `STORED` or `REFUSED <error>`.
async fn ftplib_store(gw: &Gateway, port: u16, name: &str) -> String {
    let py = format!(
        r#"{resuming}
import ftplib, ssl, io
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
f = ResumingFTP_TLS(context=ctx, timeout=10)
f.connect("127.0.0.1", {port}); f.login("acme", "pw"); f.prot_p()
try:
    f.storbinary("STOR {name}", io.BytesIO(open("{up}", "rb").read()))
    print("STORED")
except Exception as e:
    print("REFUSED", repr(e))
"#,
        resuming = common::PY_RESUMING_FTP_TLS,
        up = gw.path("up.bin").display()
    );
    let mut cmd = tokio::process::Command::new("python3");
    cmd.args(["-c", &py]).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("python finishes")
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftps_data_connections_must_come_from_the_proxy_header_address() {
    let _serial = SERIAL.lock().await;
    let mut gw = Gateway::start_with("fs", "proxy_protocol = [\"127.0.0.1/32\"]", "").await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let data = common::pattern(100_000, 9);
    std::fs::write(gw.path("up.bin"), &data).unwrap();
    let ftps = gw.ftps_explicit();

    // The header names 127.0.0.1, where the data connection comes from.
    let line = format!("PROXY TCP4 127.0.0.1 127.0.0.1 40002 {}\r\n", ftps.port());
    let same = relay(ftps, "127.0.0.1", line.into_bytes()).await;
    let out = ftplib_store(&gw, same.port(), "ok.bin").await;
    assert!(out.contains("STORED"), "{out}");
    assert_eq!(
        gw.stored_sha("/acme/ok.bin").await.as_deref(),
        Some(common::sha256(&data).as_str())
    );

    // The header names 127.0.0.3; a data connection from 127.0.0.1 is refused.
    let other = relay(ftps, "127.0.0.1", v2_header([127, 0, 0, 3], ftps)).await;
    let out = ftplib_store(&gw, other.port(), "no.bin").await;
    assert!(out.contains("REFUSED"), "{out}");
    assert_eq!(gw.stored_sha("/acme/no.bin").await, None);

    let rows = gw.stop_and_audit(AuditQuery::default()).await;
    assert!(
        rows.iter().any(|e| e
            .remote
            .as_deref()
            .is_some_and(|r| r.starts_with("127.0.0.3"))),
        "the session is audited from the header's address: {rows:?}"
    );
}
