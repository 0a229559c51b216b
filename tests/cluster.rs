//! The cluster test (issue 15): a throwaway PostgreSQL, an S3 server (moto),
//! three `wharf serve` processes with one configuration file (database, S3
//! mounts and transfers, the same SSH host key, FTPS certificate and link
//! signing key, browser uploads staged on a second S3 bucket through
//! `[links] upload_staging_connector`, each node its own data directory) and
//! Debian's haproxy in front
//! (TCP for SFTP, HTTP for links, round-robin, health checks), all on
//! 127.0.0.1. What a user of the cluster would check:
//! - the SSH host key is the same whichever node answers (ssh-keyscan);
//! - a one-time link under 50 concurrent downloads gives exactly one 200 with
//!   the right SHA-256, a limit of 5 under 60 concurrent gives exactly 5;
//! - a tus upload cut on node 1 is finished through node 2, SHA-256 equal
//!   (the staged chunks are on S3, not on node 1's disk), and no chunk is
//!   left under the staging prefix once it is published;
//! - wrong SFTP passwords on node 1 ban the address on nodes 2 and 3;
//! - `kill -9` of node 2 during downloads and uploads: the others keep
//!   serving, no partial upload shows on S3, the cut downloads' uses are
//!   given back after `[links] reservation_timeout` by one survivor.
//!
//! Skipped with a message without haproxy or PostgreSQL, except under
//! `CI=true`, where they must be present.

mod common;
mod ops;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ops::{curl, ok, sha256_hex, wharf_cmd, Node};

/// Whether haproxy and PostgreSQL are here; under CI they must be.
fn tools_present() -> bool {
    let haproxy = Command::new("haproxy")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !haproxy {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "haproxy not found (apt-get install haproxy; .ci/run does)"
        );
        eprintln!("SKIPPED: haproxy not found");
        return false;
    }
    common::postgres::available()
}

/// The keys every node reads: one identity for the cluster.
fn make_keys(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let host_key = dir.join("ssh_host_ed25519_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key)
        .status()
        .unwrap();
    assert!(st.success(), "ssh-keygen");
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(dir.join("ftps.key"))
        .arg("-out")
        .arg(dir.join("ftps.crt"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl req");
    let signing = dir.join("link-signing.key");
    let key: [u8; 32] = rand_bytes();
    std::fs::write(&signing, format!("{}\n", hex::encode(key))).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for f in ["ftps.key", "link-signing.key"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut f, &mut b).unwrap();
    b
}

/// The one configuration file of all three nodes (listeners on port 0).
fn config(db: &str, bucket: &str, keys: &Path, staging: &str, front_http: u16) -> String {
    let k = keys.display();
    format!(
        "[database]\nurl = \"{db}\"\n\
         [[connector]]\nname = \"s3\"\nscheme = \"s3\"\n[connector.options]\nbucket = \"{bucket}\"\n\
         endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\naccess_key_id = \"wharf-test\"\n\
         secret_access_key = \"wharf-test\"\ndisable_config_load = \"true\"\n\
         [[connector]]\nname = \"staging\"\nscheme = \"s3\"\n[connector.options]\nbucket = \"{staging}\"\n\
         endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\naccess_key_id = \"wharf-test\"\n\
         secret_access_key = \"wharf-test\"\ndisable_config_load = \"true\"\n\
         [[mount]]\npath = \"/\"\nconnector = \"s3\"\n\
         [transfers]\nconnector = \"s3\"\nroot = \"transfers\"\n\
         [sftp]\nlisten = \"127.0.0.1:0\"\nauth_delay = \"10ms\"\nhost_key = [\"{k}/ssh_host_ed25519_key\"]\n\
         [defender]\nmax_failures = 3\nwindow = \"5m\"\nban = \"15m\"\n\
         [ftps]\nexplicit_listen = \"127.0.0.1:0\"\nimplicit_listen = \"127.0.0.1:0\"\n\
         certificate = \"{k}/ftps.crt\"\nkey = \"{k}/ftps.key\"\n\
         [links]\nbase_url = \"http://127.0.0.1:{front_http}\"\nsigning_key = \"{k}/link-signing.key\"\n\
         reservation_timeout = \"3s\"\nupload_staging_connector = \"staging\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\n",
        endpoint = common::s3_endpoint(),
    )
}

/// haproxy in front of the nodes: TCP for SFTP, HTTP for links.
struct Haproxy {
    child: Child,
}

impl Haproxy {
    fn start(dir: &Path, sftp: u16, http: u16, nodes: &[&Node]) -> Haproxy {
        let mut cfg = String::from(
            "global\n  maxconn 1024\ndefaults\n  timeout connect 2s\n  timeout client 30s\n  \
             timeout server 30s\n  retries 3\n  option redispatch\n",
        );
        cfg += &format!("listen sftp\n  mode tcp\n  bind 127.0.0.1:{sftp}\n  balance roundrobin\n");
        for (i, n) in nodes.iter().enumerate() {
            cfg += &format!(
                "  server n{} {} check inter 500ms fall 2 rise 2\n",
                i + 1,
                n.addrs.sftp.unwrap()
            );
        }
        cfg +=
            &format!("listen links\n  mode http\n  bind 127.0.0.1:{http}\n  balance roundrobin\n");
        for (i, n) in nodes.iter().enumerate() {
            cfg += &format!(
                "  server n{} {} check inter 500ms fall 2 rise 2\n",
                i + 1,
                n.addrs.http.unwrap()
            );
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting haproxy");
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in [sftp, http] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "haproxy does not listen");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Haproxy { child }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wharf ARGS` on node `n`'s data directory and the shared configuration,
/// `input` on standard input; asserts success, returns standard output.
fn cli(n: &Node, args: &[&str], input: Option<&str>) -> String {
    let mut cmd = wharf_cmd(&n.dir, Some(&n.config), args);
    if let Some(text) = input {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        writeln!(child.stdin.take().unwrap(), "{text}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return String::from_utf8_lossy(&out.stdout).into_owned();
    }
    ok(cmd)
}

/// `wharf link ARGS` → (id, token).
fn link(n: &Node, args: &[&str]) -> (String, String) {
    let mut all = vec!["link"];
    all.extend_from_slice(args);
    let text = cli(n, &all, None);
    let id = text
        .split_whitespace()
        .nth(3)
        .unwrap_or_default()
        .to_string();
    let token = text
        .lines()
        .nth(1)
        .and_then(|l| l.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    assert!(!token.is_empty(), "{text}");
    (id, token)
}

fn uses(n: &Node, id: &str) -> String {
    cli(n, &["link", "show", id], None)
        .lines()
        .find_map(|l| l.strip_prefix("uses:"))
        .unwrap()
        .trim()
        .to_string()
}

fn wait_uses(n: &Node, id: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = uses(n, id);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "uses {got}, want {want}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Lists `/` over SFTP with curl, from `source` (127.0.0.x); `true` when logged in.
fn sftp_login(addr: SocketAddr, source: &str, password: &str) -> bool {
    curl(&[
        "--insecure",
        "--interface",
        source,
        "-u",
        &format!("alice:{password}"),
        &format!("sftp://{addr}/"),
    ])
    .status
    .success()
}

/// The ed25519 host key a server at `port` shows (base64 field).
fn keyscan(port: u16) -> String {
    let out = ops::run({
        let mut c = Command::new("ssh-keyscan");
        c.args([
            "-T",
            "10",
            "-t",
            "ed25519",
            "-p",
            &port.to_string(),
            "127.0.0.1",
        ]);
        c
    });
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

/// N concurrent downloads of `file`, each a new client (a visitor of its own,
/// no cookie): the statuses and the SHA-256 of each 200's body.
async fn concurrent(file: &str, n: usize) -> Vec<(u16, String)> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let file = file.to_string();
            tokio::spawn(async move {
                let r = reqwest::Client::new().get(&file).send().await.unwrap();
                let status = r.status().as_u16();
                let body = r.bytes().await.unwrap();
                (status, sha256_hex(&body))
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// The file URL of a link's first file, read from its page.
async fn file_url(front: &str, token: &str) -> String {
    let url = format!("{front}/l/{token}");
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    format!("{url}{}", common::file_path(&page))
}

/// Sends a PATCH whose body stops after `sent` of `data`, then drops the
/// connection (a browser cut off mid-upload).
fn cut_patch(url: &str, cookie: &str, data: &[u8], sent: usize) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut tcp = std::net::TcpStream::connect(host).unwrap();
    write!(
        tcp,
        "PATCH {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nTus-Resumable: 1.0.0\r\n\
         Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        data.len()
    )
    .unwrap();
    tcp.write_all(&data[..sent]).unwrap();
    tcp.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    tcp.shutdown(std::net::Shutdown::Both).unwrap();
}

/// The objects under `prefix` in the bucket, as (key, size), straight from S3.
fn s3_objects(bucket: &str, prefix: &str) -> Vec<(String, u64)> {
    let out = curl(&[&format!(
        "{}/{bucket}?list-type=2&prefix={prefix}",
        common::s3_endpoint()
    )]);
    let xml = String::from_utf8_lossy(&out.stdout).into_owned();
    let between = |s: &str, a: &str, b: &str| -> String {
        let i = s.find(a).unwrap() + a.len();
        s[i..i + s[i..].find(b).unwrap()].to_string()
    };
    xml.split("<Contents>")
        .skip(1)
        .map(|c| {
            (
                between(c, "<Key>", "</Key>"),
                between(c, "<Size>", "</Size>").parse().unwrap(),
            )
        })
        .collect()
}

fn log_lines(n: &mut Node, pat: &str) -> Vec<String> {
    n.drain();
    n.transcript
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(pat))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_behind_haproxy_behave_as_one_gateway() {
    if !tools_present() {
        return;
    }
    let started = Instant::now();
    let pg = common::postgres::PgServer::start().unwrap();
    let db = pg.create_db("cluster");
    let bucket = common::new_bucket();
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    make_keys(&keys);
    let staging = common::new_bucket();
    let (front_sftp, front_http) = (common::free_port(), common::free_port());
    let text = config(&db, &bucket, &keys, &staging, front_http);
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| {
            let dir = tmp.path().join(format!("n{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            Node::start(&dir, &text)
        })
        .collect();
    let _lb = Haproxy::start(
        tmp.path(),
        front_sftp,
        front_http,
        &nodes.iter().collect::<Vec<_>>(),
    );
    let front = format!("http://127.0.0.1:{front_http}");
    let front_sftp_addr: SocketAddr = format!("127.0.0.1:{front_sftp}").parse().unwrap();
    cli(
        &nodes[0],
        &["user", "add", "alice", "--home", "/", "--password-stdin"],
        Some("alice-pw-1"),
    );

    // 5. One host key whichever node answers.
    let public = std::fs::read_to_string(keys.join("ssh_host_ed25519_key.pub")).unwrap();
    let public = public.split_whitespace().nth(1).unwrap().to_string();
    for _ in 0..6 {
        assert_eq!(keyscan(front_sftp), public, "host key through haproxy");
    }
    for n in &nodes {
        assert_eq!(keyscan(n.addrs.sftp.unwrap().port()), public);
    }

    // 1. A one-time link under 50 concurrent downloads spread over the nodes.
    let data = common::pattern(300_000, 21);
    let want = sha256_hex(&data);
    let local = tmp.path().join("once.bin");
    std::fs::write(&local, &data).unwrap();
    let (once_id, token) = link(
        &nodes[0],
        &[
            "send",
            local.to_str().unwrap(),
            "--one-time",
            "--as",
            "alice",
        ],
    );
    let file = file_url(&front, &token).await;
    let got = concurrent(&file, 50).await;
    let oks: Vec<_> = got.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(oks.len(), 1, "{got:?}");
    assert_eq!(oks[0].1, want);
    assert!(
        got.iter().all(|(s, _)| [200, 409, 410].contains(s)),
        "{got:?}"
    );
    assert_eq!(uses(&nodes[1], &once_id), "1/1");
    // A limit of 5 under 60 concurrent visitors.
    let (five_id, token) = link(
        &nodes[1],
        &[
            "send",
            local.to_str().unwrap(),
            "--max-downloads",
            "5",
            "--as",
            "alice",
        ],
    );
    let file = file_url(&front, &token).await;
    let got = concurrent(&file, 60).await;
    let oks: Vec<_> = got.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(oks.len(), 5, "{got:?}");
    assert!(oks.iter().all(|(_, sha)| *sha == want));
    assert!(
        got.iter().all(|(s, _)| [200, 409, 410].contains(s)),
        "{got:?}"
    );
    assert_eq!(uses(&nodes[2], &five_id), "5/5");

    // 3. A tus upload cut on node 1, finished through node 2.
    let (_, token) = link(&nodes[0], &["request", "--as", "alice", "--folder", "/tus"]);
    let up = common::pattern(3_000_000, 22);
    let up_sha = sha256_hex(&up);
    let on = |i: usize| format!("http://{}", nodes[i].addrs.http.unwrap());
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page1 = format!("{}/l/{token}", on(0));
    assert_eq!(client.get(&page1).send().await.unwrap().status(), 200);
    let r = client
        .post(format!("{page1}/uploads"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", up.len().to_string())
        .header("Upload-Metadata", "filename Y3V0LmJpbg==") // "cut.bin"
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let cookie_header = {
        use reqwest::cookie::CookieStore;
        jar.cookies(&reqwest::Url::parse(&page1).unwrap())
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    cut_patch(
        &format!("{}{location}", on(0)),
        &cookie_header,
        &up,
        up.len() / 2,
    );
    // Node 2 sees what node 1 staged (bounded: the writer's lock ends with the cut).
    let url2 = format!("{}{location}", on(1));
    let deadline = Instant::now() + Duration::from_secs(15);
    let offset: u64 = loop {
        let r = client
            .head(&url2)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let at = r
            .headers()
            .get("upload-offset")
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        if status == 200 && at.is_some_and(|a| a > 0) {
            break at.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "node 2 does not see the upload started on node 1: HEAD {status} offset {at:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(offset <= up.len() as u64 / 2, "{offset}");
    // What node 1 staged is on S3, not on its disk.
    let chunks = s3_objects(&staging, "wharf-staging/");
    assert_eq!(
        chunks.iter().map(|(_, n)| n).sum::<u64>(),
        offset,
        "{chunks:?}"
    );
    let local_parts = std::fs::read_dir(nodes[0].dir.join("uploads"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(local_parts, 0, "nothing staged on node 1's disk");
    let deadline = Instant::now() + Duration::from_secs(15);
    let r = loop {
        let r = client
            .patch(&url2)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .body(up[offset as usize..].to_vec())
            .send()
            .await
            .unwrap();
        // 423: node 1 still holds the upload's writer lock for a moment.
        if r.status() != 423 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(r.status(), 204, "{:?}", r.headers());
    assert_eq!(r.headers()["wharf-sha256"].to_str().unwrap(), up_sha);
    // Read back from S3 through node 3.
    let out = curl(&[
        "--insecure",
        "-u",
        "alice:alice-pw-1",
        &format!("sftp://{}/tus/cut.bin", nodes[2].addrs.sftp.unwrap()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256_hex(&out.stdout), up_sha);
    assert_eq!(s3_objects(&staging, "wharf-staging/"), vec![]);

    // 2. Wrong passwords from 127.0.0.2 on node 1 ban 127.0.0.2 on nodes 2 and 3.
    let n1 = nodes[0].addrs.sftp.unwrap();
    assert!(sftp_login(
        nodes[1].addrs.sftp.unwrap(),
        "127.0.0.2",
        "alice-pw-1"
    ));
    for _ in 0..3 {
        assert!(!sftp_login(n1, "127.0.0.2", "wrong"));
    }
    for n in &nodes[1..] {
        assert!(
            !sftp_login(n.addrs.sftp.unwrap(), "127.0.0.2", "alice-pw-1"),
            "the ban holds on every node"
        );
        // Another address is not banned.
        assert!(sftp_login(n.addrs.sftp.unwrap(), "127.0.0.1", "alice-pw-1"));
    }

    // 4. kill -9 of node 2 during downloads and uploads through haproxy.
    let big = common::pattern(16 << 20, 23);
    let big_sha = sha256_hex(&big);
    let big_local = tmp.path().join("big.bin");
    std::fs::write(&big_local, &big).unwrap();
    let (big_id, token) = link(
        &nodes[0],
        &[
            "send",
            big_local.to_str().unwrap(),
            "--max-downloads",
            "20",
            "--as",
            "alice",
        ],
    );
    let file = file_url(&front, &token).await;
    // Six downloads one after another: round-robin gives node 2 two of them.
    let mut downloads = Vec::new();
    for _ in 0..6 {
        let mut r = reqwest::Client::new().get(&file).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let first = r.chunk().await.unwrap().unwrap().to_vec();
        downloads.push((r, first));
    }
    wait_uses(&nodes[0], &big_id, "6/20", Duration::from_secs(10));
    // Uploads, slowed down so they are in flight at the kill.
    let small = common::pattern(1 << 20, 24);
    let small_sha = sha256_hex(&small);
    let small_local = tmp.path().join("small.bin");
    std::fs::write(&small_local, &small).unwrap();
    let uploads: Vec<Child> = (0..6)
        .map(|i| {
            Command::new("curl")
                .args(["-sS", "--noproxy", "*", "--max-time", "40", "--insecure"])
                .args([
                    "--limit-rate",
                    "256k",
                    "--ftp-create-dirs",
                    "-u",
                    "alice:alice-pw-1",
                    "-T",
                ])
                .arg(&small_local)
                .arg(format!("sftp://{front_sftp_addr}/up/f{i}.bin"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let refunds_before: Vec<usize> = [0, 2]
        .iter()
        .map(|&i| log_lines(&mut nodes[i], "gave back the uses").len())
        .collect();
    nodes[1].signal("KILL");
    let killed_at = Instant::now();

    // The downloads: those on the survivors finish whole, node 2's are cut.
    let mut finished = 0;
    let mut cut = 0;
    for (mut r, mut body) in downloads {
        let whole = loop {
            match tokio::time::timeout(Duration::from_secs(20), r.chunk()).await {
                Ok(Ok(Some(c))) => body.extend_from_slice(&c),
                Ok(Ok(None)) => break true,
                Ok(Err(_)) | Err(_) => break false,
            }
        };
        if whole && body.len() == big.len() {
            assert_eq!(sha256_hex(&body), big_sha);
            finished += 1;
        } else {
            cut += 1;
        }
    }
    assert_eq!(finished + cut, 6);
    assert!(cut >= 1, "node 2 served none of the six downloads");
    assert!(finished >= 3, "the survivors' downloads finish: {finished}");

    // The uploads: whatever shows on S3 is whole.
    let mut upload_ok = 0;
    for mut c in uploads {
        let deadline = Instant::now() + Duration::from_secs(45);
        let st = loop {
            if let Some(st) = c.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "curl upload hangs");
            std::thread::sleep(Duration::from_millis(100));
        };
        upload_ok += usize::from(st.success());
    }
    assert!(
        upload_ok >= 3,
        "uploads through the survivors finish: {upload_ok}"
    );
    // ("up/" itself is the folder marker `--ftp-create-dirs` made.)
    let objects: Vec<_> = s3_objects(&bucket, "up/")
        .into_iter()
        .filter(|(k, _)| !k.ends_with('/'))
        .collect();
    assert!(objects.len() >= upload_ok, "{objects:?}");
    for (key, size) in &objects {
        assert_eq!(*size, small.len() as u64, "partial object {key} on S3");
        // Read back through node 1 (the object's bytes, as a user gets them).
        let out = curl(&[
            "--insecure",
            "-u",
            "alice:alice-pw-1",
            &format!("sftp://{}/{key}", nodes[0].addrs.sftp.unwrap()),
        ]);
        assert_eq!(sha256_hex(&out.stdout), small_sha, "{key}");
    }

    // The survivors keep serving through haproxy (node 2 marked down).
    for _ in 0..6 {
        let r = reqwest::Client::new().get(&file).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(sha256_hex(&r.bytes().await.unwrap()), big_sha);
    }
    for _ in 0..3 {
        assert!(sftp_login(front_sftp_addr, "127.0.0.1", "alice-pw-1"));
    }

    // The cut downloads' uses come back (reservation_timeout 3 s), given back
    // by one survivor's refund job.
    let settled = finished + 6;
    wait_uses(
        &nodes[0],
        &big_id,
        &format!("{settled}/20"),
        Duration::from_secs(20),
    );
    // The log line follows the store's answer: wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    let new_lines: Vec<Vec<String>> = loop {
        let lines: Vec<Vec<String>> = [0, 2]
            .iter()
            .zip(&refunds_before)
            .map(|(&i, &before)| log_lines(&mut nodes[i], "gave back the uses")[before..].to_vec())
            .collect();
        let given: u64 = lines
            .iter()
            .flatten()
            .filter_map(|l| l.split("uses=").nth(1))
            .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        if given >= cut as u64 || Instant::now() > deadline {
            assert_eq!(given, cut as u64, "each cut use given back once: {lines:?}");
            break lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        new_lines.iter().filter(|l| !l.is_empty()).count(),
        1,
        "one survivor runs the refund job: {new_lines:?}"
    );
    let holders = pg.psql(
        "cluster",
        "SELECT holder FROM leases WHERE name = 'job:refund'",
    );
    assert_eq!(holders.len(), 1, "{holders:?}");
    eprintln!(
        "cluster test: {finished} downloads finished, {cut} cut and refunded {:?} after the kill; {upload_ok}/6 uploads; {:?} in all",
        killed_at.elapsed(),
        started.elapsed()
    );

    for mut n in nodes {
        if n.alive() {
            n.stop();
        }
    }
}
