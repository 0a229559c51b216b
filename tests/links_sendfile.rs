//! Link downloads of local files over plain HTTP are sent by the kernel
//! (`sendfile`, `src/http/sendfile.rs`): with curl and with Python's
//! `http.client` on one keep-alive connection (full file, a 206 range, another
//! file, a HEAD, another full file) every body's SHA-256 is the file's, the
//! audit rows and byte counters are as before, and
//! `wharf_http_sendfile_bytes_total` rises by exactly the bytes sent;
//! pipelined requests each get their own file. TLS and
//! S3 downloads take the streamed path (the counter stays), still correct. A
//! file that shrinks while it is sent ends the connection: the visitor sees a
//! transfer cut short (fewer bytes than its Content-Length) and the audit row
//! says failed.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::gateway::Gateway;
use wharf::store::AuditQuery;

/// The metrics registry is process-wide: one case at a time reads it.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const METRICS: &str = "[metrics]\nlisten = \"127.0.0.1:0\"\n";

/// Random (non-repeating) bytes, so a misplaced or zeroed chunk shows.
fn random(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    let mut f = std::fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut f, &mut data).unwrap();
    data
}

fn metrics_addr(gw: &Gateway) -> SocketAddr {
    gw.running.as_ref().unwrap().metrics.unwrap()
}

/// The sum of the samples of `name` whose labels contain every one of `labels`
/// (0 while the counter does not exist yet).
async fn counter(m: SocketAddr, name: &str, labels: &[&str]) -> u64 {
    let text = reqwest::get(format!("http://{m}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

const SENDFILE: &str = "wharf_http_sendfile_bytes_total";
const TRANSFER: &str = "wharf_transfer_bytes_total";
const HTTP_DOWN: [&str; 2] = ["protocol=\"http\"", "direction=\"download\""];

/// Waits (bounded) until the download byte counter reaches `want`: it is
/// counted when the audit row is written, just after the body ends.
async fn wait_transfer(m: SocketAddr, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = counter(m, TRANSFER, &HTTP_DOWN).await;
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{TRANSFER} stayed {now}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A file on the gateway's disk shared by a send link: its download path
/// (`/l/<token>/f/<id>`).
async fn share(gw: &Gateway, name: &str, data: &[u8]) -> String {
    let local = gw.path(name);
    std::fs::write(&local, data).unwrap();
    let (_, token) = gw.link(&["send", local.to_str().unwrap()]);
    let url = gw.url(&token);
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let addr = gw.http_addr().to_string();
    let path = url.split(&addr).nth(1).unwrap().to_string();
    format!("{path}{}", common::file_path(&page))
}

/// Python `http.client` on ONE keep-alive connection: GET `a`, GET `a` with a
/// range, GET `b`, HEAD `a`, GET `b`. One line per request: status, body length,
/// SHA-256 of the body; and a last line saying whether the socket stayed the same.
const KEEPALIVE: &str = r#"
import hashlib, http.client, sys
host, port, a, b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = http.client.HTTPConnection(host, port, timeout=30)
asks = [("GET", a, {}), ("GET", a, {"Range": "bytes=1000-1999999"}), ("GET", b, {}), ("HEAD", a, {}), ("GET", b, {})]
sock = None
for method, path, headers in asks:
    c.request(method, path, headers=headers)
    r = c.getresponse()
    body = r.read()
    print(r.status, len(body), hashlib.sha256(body).hexdigest(), r.getheader("content-length"))
    if sock is None:
        sock = c.sock
    elif c.sock is not sock:
        print("reconnected")
print("same-connection")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_downloads_of_local_files_are_sent_by_the_kernel() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut gw = Gateway::start("fs", METRICS).await;
    let m = metrics_addr(&gw);
    let a = random(5_000_000 + 17);
    let b = random(3_000_001);
    let pa = share(&gw, "a.bin", &a).await;
    let pb = share(&gw, "b.bin", &b).await;
    let sent0 = counter(m, SENDFILE, &[]).await;
    let moved0 = counter(m, TRANSFER, &HTTP_DOWN).await;

    // curl: the whole file.
    let url = format!("http://{}{pa}", gw.http_addr());
    let got = common::curl::curl(&url, &[], None, false).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-length"), Some("5000017"));
    assert_eq!(common::sha256(&got.body), common::sha256(&a));
    assert_eq!(counter(m, SENDFILE, &[]).await - sent0, a.len() as u64);
    wait_transfer(m, moved0 + a.len() as u64).await;

    // Python: five requests on one connection.
    let addr = gw.http_addr();
    let (host, port) = (addr.ip().to_string(), addr.port().to_string());
    let (pa2, pb2) = (pa.clone(), pb.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", KEEPALIVE, &host, &port, &pa2, &pb2])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    let want = [
        format!("200 {} {} {}", a.len(), common::sha256(&a), a.len()),
        format!(
            "206 1999000 {} 1999000",
            common::sha256(&a[1000..2_000_000])
        ),
        format!("200 {} {} {}", b.len(), common::sha256(&b), b.len()),
        format!("200 0 {} {}", common::sha256(&[]), a.len()),
        format!("200 {} {} {}", b.len(), common::sha256(&b), b.len()),
        "same-connection".to_string(),
    ];
    assert_eq!(lines, want, "{text}");
    let bodies = (a.len() + 1_999_000 + 2 * b.len()) as u64;
    let all = a.len() as u64 + bodies;
    assert_eq!(counter(m, SENDFILE, &[]).await - sent0, all);
    wait_transfer(m, moved0 + all).await;

    // The audit rows, as for streamed downloads: one per GET, its bytes, ok.
    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("link_download".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    let mut bytes: Vec<u64> = rows.iter().map(|e| e.bytes.unwrap_or(0)).collect();
    bytes.sort_unstable();
    let mut want = vec![
        a.len() as u64,
        a.len() as u64,
        1_999_000,
        b.len() as u64,
        b.len() as u64,
    ];
    want.sort_unstable();
    assert_eq!(bytes, want, "{rows:?}");
    assert!(rows.iter().all(|e| e.outcome.as_str() == "ok"), "{rows:?}");
}

/// Three requests written at once on one connection (pipelined): the second
/// for another file, the third a range of the first. Prints status, body
/// length and SHA-256 per response.
const PIPELINED: &str = r#"
import hashlib, socket, sys
host, port, a, b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection((host, port), timeout=30)
asks = [(a, ""), (b, ""), (a, "Range: bytes=70000-\r\n")]
s.sendall("".join("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % ask for ask in asks).encode())
f = s.makefile("rb")
for _ in asks:
    status = int(f.readline().split()[1])
    length = 0
    while True:
        line = f.readline().strip()
        if not line:
            break
        k, v = line.split(b":", 1)
        if k.strip().lower() == b"content-length":
            length = int(v)
    body = f.read(length)
    print(status, len(body), hashlib.sha256(body).hexdigest())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_each_get_their_own_file() {
    let _one = ONE_AT_A_TIME.lock().await;
    let gw = Gateway::start("fs", METRICS).await;
    let m = metrics_addr(&gw);
    let a = random(2_500_000);
    let b = random(1_300_000);
    let pa = share(&gw, "a.bin", &a).await;
    let pb = share(&gw, "b.bin", &b).await;
    let sent0 = counter(m, SENDFILE, &[]).await;
    let addr = gw.http_addr();
    let (host, port) = (addr.ip().to_string(), addr.port().to_string());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", PIPELINED, &host, &port, &pa, &pb])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = [
        format!("200 {} {}", a.len(), common::sha256(&a)),
        format!("200 {} {}", b.len(), common::sha256(&b)),
        format!("206 {} {}", a.len() - 70_000, common::sha256(&a[70_000..])),
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), want, "{text}");
    let all = (2 * a.len() - 70_000 + b.len()) as u64;
    assert_eq!(counter(m, SENDFILE, &[]).await - sent0, all);
}

/// Writes a self-signed certificate for 127.0.0.1 and its key into `dir`.
fn write_cert(dir: &std::path::Path) -> (String, String) {
    let g = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, g.cert.pem()).unwrap();
    std::fs::write(&key, g.signing_key.serialize_pem()).unwrap();
    (
        cert.to_str().unwrap().to_string(),
        key.to_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_downloads_are_streamed_not_sent_by_the_kernel() {
    let _one = ONE_AT_A_TIME.lock().await;
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = write_cert(certs.path());
    let http = format!("tls_cert = \"{cert}\"\ntls_key = \"{key}\"\n");
    let gw = Gateway::start_full("fs", &http, "", METRICS).await;
    let m = metrics_addr(&gw);
    let a = random(4_000_003);
    let local = gw.path("a.bin");
    std::fs::write(&local, &a).unwrap();
    let (_, token) = gw.link(&["send", local.to_str().unwrap()]);
    let base = format!("https://{}/l/{token}", gw.http_addr());
    let sent0 = counter(m, SENDFILE, &[]).await;
    let moved0 = counter(m, TRANSFER, &HTTP_DOWN).await;
    let curl = |args: Vec<String>| async move {
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("curl")
                .args(["-s", "--max-time", "30", "--http1.1", "--cacert"])
                .args(&args)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{out:?}");
        out.stdout
    };
    let page = curl(vec![cert.clone(), base.clone()]).await;
    let file = format!(
        "{base}{}",
        common::file_path(&String::from_utf8_lossy(&page))
    );
    let body = curl(vec![cert.clone(), file.clone()]).await;
    assert_eq!(common::sha256(&body), common::sha256(&a));
    let part = curl(vec![cert.clone(), "-r".into(), "10-99999".into(), file]).await;
    assert_eq!(common::sha256(&part), common::sha256(&a[10..100_000]));
    wait_transfer(m, moved0 + a.len() as u64 + 99_990).await;
    assert_eq!(counter(m, SENDFILE, &[]).await, sent0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_downloads_are_streamed_not_sent_by_the_kernel() {
    let _one = ONE_AT_A_TIME.lock().await;
    let extra = format!("[transfers]\nconnector = \"s3\"\nroot = \"transfers\"\n{METRICS}");
    let gw = Gateway::start("s3", &extra).await;
    let m = metrics_addr(&gw);
    let a = random(3_000_007);
    let pa = share(&gw, "a.bin", &a).await;
    let sent0 = counter(m, SENDFILE, &[]).await;
    let moved0 = counter(m, TRANSFER, &HTTP_DOWN).await;
    let url = format!("http://{}{pa}", gw.http_addr());
    let got = common::curl::curl(&url, &[], None, false).await;
    assert_eq!(got.status, 200);
    assert_eq!(common::sha256(&got.body), common::sha256(&a));
    let r = common::curl::curl(&url, &["Range: bytes=-5000".into()], None, false).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &a[a.len() - 5000..]);
    wait_transfer(m, moved0 + a.len() as u64 + 5000).await;
    assert_eq!(counter(m, SENDFILE, &[]).await, sent0);
}

/// Python reads the head, waits until told, then reads what comes: the file is
/// truncated meanwhile. Prints the bytes received to stdout.
const SLOW_READER: &str = r#"
import socket, sys
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
# Before connecting, so the window stays small and the server must wait.
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.settimeout(30)
s.connect((host, port))
s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
sys.stderr.write("sent\n"); sys.stderr.flush()
sys.stdin.readline()
got = b""
while True:
    try:
        chunk = s.recv(1 << 20)
    except OSError:
        break
    if not chunk:
        break
    got += chunk
sys.stdout.buffer.write(got)
"#;

/// The file under `dir` that is `len` bytes long.
fn find_len(dir: &std::path::Path, len: u64) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let meta = e.metadata().ok()?;
        if meta.is_dir() {
            if let Some(p) = find_len(&e.path(), len) {
                return Some(p);
            }
        } else if meta.len() == len {
            return Some(e.path());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_shrinks_while_sent_ends_the_connection_short() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut gw = Gateway::start("fs", METRICS).await;
    let a = random(24_000_000);
    let pa = share(&gw, "a.bin", &a).await;
    let addr = gw.http_addr();
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            SLOW_READER,
            &addr.ip().to_string(),
            &addr.port().to_string(),
            &pa,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    assert_eq!(line, "sent\n");
    // Let the server fill the socket buffers, then cut the file short.
    tokio::time::sleep(Duration::from_millis(800)).await;
    // A send link serves its copy in the transfer store: that one shrinks.
    let copy = find_len(&gw.config.data_dir.join("transfers"), a.len() as u64)
        .expect("the link's copy in the transfer store");
    std::fs::OpenOptions::new()
        .write(true)
        .open(copy)
        .unwrap()
        .set_len(1_000_000)
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"go\n").unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let got = out.stdout;
    let at = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&got[..at]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body = &got[at..];
    assert!(
        body.len() < a.len(),
        "the whole file arrived ({} bytes): the transfer looks complete",
        body.len()
    );
    // What the kernel had queued before the cut may show the cut (the page
    // cache's partial page at the new end reads as zeros: sendfile sends pages,
    // not copies, as with nginx): the visitor must see a broken transfer.
    assert_eq!(&body[..1_000_000], &a[..1_000_000]);
    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("link_download".into()),
            limit: 10,
            ..Default::default()
        })
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].outcome.as_str(), "failed", "{rows:?}");
}
