//! Link downloads through the real link server with a real HTTP client, on the
//! fs connector and on S3 (moto; a share on s3s-fs too): Range, HEAD, Content-Disposition, how uses are
//! counted (50 concurrent downloads of a one-time link, refunds of aborted
//! downloads, resumes under one grant), and the audit rows.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::gateway::Gateway;
use wharf::store::AuditQuery;

/// The transfer store on the same S3 bucket as the files, for S3 runs.
fn transfers_on(storage: &str) -> &'static str {
    if storage == "s3" {
        "[transfers]\nconnector = \"s3\"\nroot = \"transfers\"\n"
    } else {
        ""
    }
}

fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// "uses: N" from `wharf link show`.
fn uses(gw: &Gateway, id: &str) -> String {
    let out = gw.cli(&["link", "show", id]);
    out.lines()
        .find_map(|l| l.strip_prefix("uses:"))
        .unwrap()
        .trim()
        .to_string()
}

fn wait_uses(gw: &Gateway, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while uses(gw, id) != want {
        assert!(
            Instant::now() < deadline,
            "uses stayed {} (want {want})",
            uses(gw, id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn downloads_ranges_and_head(storage: &str) {
    let mut gw = Gateway::start(storage, transfers_on(storage)).await;
    let data = common::pattern(3_000_000, 7);
    let local = gw.path("Größe report.bin");
    std::fs::write(&local, &data).unwrap();
    let (id, token) = gw.link(&["send", local.to_str().unwrap()]);
    let url = gw.url(&token);
    let c = cookie_client();
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let file = format!("{url}{}", common::file_path(&page));

    // HEAD: the headers of the download, and no use.
    let h = c.head(&file).send().await.unwrap();
    assert_eq!(h.status(), 200);
    assert_eq!(h.headers()["content-length"], "3000000");
    assert_eq!(h.headers()["accept-ranges"], "bytes");
    assert_eq!(uses(&gw, &id), "0");

    let r = c
        .get(&file)
        .header("range", "bytes=0-999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 0-999/3000000");
    assert_eq!(&r.bytes().await.unwrap()[..], &data[..1000]);
    let r = c
        .get(&file)
        .header("range", "bytes=1000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        common::sha256(&r.bytes().await.unwrap()),
        common::sha256(&data[1000..])
    );
    let r = c
        .get(&file)
        .header("range", "bytes=3000000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */3000000");

    let r = c.get(&file).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cd = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cd.starts_with("attachment;"), "{cd}");
    assert!(
        cd.contains("filename*=UTF-8''Gr%C3%B6%C3%9Fe%20report.bin"),
        "{cd}"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(
        common::sha256(&r.bytes().await.unwrap()),
        common::sha256(&data)
    );
    // One browser (one grant), many requests: one use. A second browser: two.
    assert_eq!(uses(&gw, &id), "1");
    let other = reqwest::Client::new().get(&file).send().await.unwrap();
    assert_eq!(other.status(), 200);
    other.bytes().await.unwrap();
    wait_uses(&gw, &id, "2");

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("link_download".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    let full: Vec<_> = rows.iter().filter(|e| e.bytes == Some(3_000_000)).collect();
    assert_eq!(full.len(), 2, "{rows:?}");
    assert!(full.iter().all(|e| e
        .remote
        .as_deref()
        .is_some_and(|r| r.starts_with("127.0.0.1:"))
        && e.outcome.as_str() == "ok"));
    assert!(
        rows.iter().any(|e| e.bytes == Some(1000)),
        "the ranged request is audited with its bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_ranges_and_head_on_fs() {
    downloads_ranges_and_head("fs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_ranges_and_head_on_s3() {
    downloads_ranges_and_head("s3").await;
}

/// A share link of a file on S3 served by s3s-fs (a second S3 implementation
/// beside moto): the whole file and a range arrive intact. In the bucket's root:
/// s3s-fs cannot stat folders (see `Caps` in tests/vfs_behaviour.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_file_on_s3s_downloads_whole_and_in_ranges() {
    let gw = Gateway::start("s3s", "").await;
    gw.add_user("alice", "/", "all", Some("pw"), None);
    let data = common::pattern(3_000_000, 8);
    gw.vfs()
        .write_all(
            &wharf::vfs::VPath::parse("/report.bin").unwrap(),
            bytes::Bytes::from(data.clone()),
        )
        .await
        .unwrap();
    // The object is in s3s-fs's folder, not anywhere else.
    let bucket = &gw.config.connectors[0].options["bucket"];
    let stored = std::fs::read(common::s3s_shared().1.join(bucket).join("report.bin")).unwrap();
    assert_eq!(common::sha256(&stored), common::sha256(&data));
    let (_, token) = gw.link(&["share", "/report.bin", "--as", "alice"]);
    let url = gw.url(&token);
    let c = cookie_client();
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let file = format!("{url}{}", common::file_path(&page));

    let r = c.get(&file).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "3000000");
    assert_eq!(
        common::sha256(&r.bytes().await.unwrap()),
        common::sha256(&data)
    );
    let r = c
        .get(&file)
        .header("range", "bytes=1000000-1999999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        "bytes 1000000-1999999/3000000"
    );
    assert_eq!(
        common::sha256(&r.bytes().await.unwrap()),
        common::sha256(&data[1_000_000..2_000_000])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_downloads_of_a_one_time_link_give_exactly_one() {
    let gw = Gateway::start("fs", "").await;
    let data = common::pattern(200_000, 3);
    let local = gw.path("once.bin");
    std::fs::write(&local, &data).unwrap();
    let (id, token) = gw.link(&["send", local.to_str().unwrap(), "--one-time"]);
    let url = gw.url(&token);
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let file = format!("{url}{}", common::file_path(&page));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let file = file.clone();
            tokio::spawn(async move {
                // A client each: fifty different visitors.
                let r = reqwest::Client::new().get(&file).send().await.unwrap();
                let status = r.status().as_u16();
                let body = r.bytes().await.unwrap();
                (status, body)
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => {
                ok += 1;
                assert_eq!(common::sha256(&body), common::sha256(&data));
            }
            410 => assert!(String::from_utf8_lossy(&body).contains("used as many times")),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(uses(&gw, &id), "1/1");
    // Ended: the landing page says so too.
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 410);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_download_is_refunded_and_a_resume_costs_one_use() {
    let mut gw = Gateway::start("fs", "").await;
    let data = common::pattern(32 << 20, 9);
    let local = gw.path("big.bin");
    std::fs::write(&local, &data).unwrap();
    let (id, token) = gw.link(&["send", local.to_str().unwrap(), "--one-time"]);
    let url = gw.url(&token);
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let path = format!("/l/{token}{}", common::file_path(&page));

    // A raw client that reads the start of the file and hangs up.
    let mut s = TcpStream::connect(gw.http_addr()).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    s.read_exact(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    wait_uses(&gw, &id, "1/1");
    drop(s);
    wait_uses(&gw, &id, "0/1");

    // A browser that is cut off, then resumes with Range under the same grant.
    let c = cookie_client();
    let file = format!("http://{}{path}", gw.http_addr());
    let mut r = c.get(&file).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut got = Vec::new();
    while got.len() < 1_000_000 {
        got.extend_from_slice(&r.chunk().await.unwrap().unwrap());
    }
    drop(r);
    wait_uses(&gw, &id, "0/1");
    let r = c
        .get(&file)
        .header("range", format!("bytes={}-", got.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    got.extend_from_slice(&r.bytes().await.unwrap());
    assert_eq!(common::sha256(&got), common::sha256(&data));
    wait_uses(&gw, &id, "1/1");
    // The same browser may fetch a part again; nobody else gets anything.
    let again = c
        .get(&file)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 206);
    assert_eq!(&again.bytes().await.unwrap()[..], &data[..10]);
    assert_eq!(reqwest::get(&file).await.unwrap().status(), 410);
    assert_eq!(uses(&gw, &id), "1/1");

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("link_download".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    let aborted = rows
        .iter()
        .filter(|e| e.outcome.as_str() == "failed")
        .count();
    assert!(
        aborted >= 2,
        "both interrupted downloads are audited as failed: {rows:?}"
    );
}

/// A visitor reading slowly (stalled longer than `[links] reservation_timeout`,
/// so the server is not polling the body) keeps its use: the sweep of stale
/// reservations must not give it back and let the download finish for free.
/// Regression: the download was marked alive only when a chunk went out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_download_keeps_its_use_past_the_reservation_timeout() {
    let gw = Gateway::start("fs", "[links]\nreservation_timeout = \"2s\"\n").await;
    let data = common::pattern(24 << 20, 12);
    let local = gw.path("slow.bin");
    std::fs::write(&local, &data).unwrap();
    let (id, token) = gw.link(&["send", local.to_str().unwrap(), "--max-downloads", "2"]);
    let url = gw.url(&token);
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let file = format!("{url}{}", common::file_path(&page));
    let mut r = reqwest::Client::new().get(&file).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut got = r.chunk().await.unwrap().unwrap().to_vec();
    wait_uses(&gw, &id, "1/2");
    // Stalled well past the timeout (the refund sweep runs every second).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(uses(&gw, &id), "1/2", "a download in flight keeps its use");
    while let Some(c) = r.chunk().await.unwrap() {
        got.extend_from_slice(&c);
    }
    assert_eq!(common::sha256(&got), common::sha256(&data));
    wait_uses(&gw, &id, "1/2");
}
