//! Conditional link downloads with curl against the real link server, on fs and
//! on S3 (moto): `ETag` and `Last-Modified` on every download, 304 for a current
//! copy (no use taken, no audit row), `If-Range` honouring a `Range` only for
//! the current validator, and a new `ETag` once the file changes.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::curl::curl;
use common::gateway::Gateway;
use wharf::store::AuditQuery;
use wharf::vfs::{VPath, Vfs};

async fn put(vfs: &Vfs, path: &str, data: &[u8]) {
    let p = VPath::parse(path).unwrap();
    let mut dir = VPath::root();
    for seg in p.parent().unwrap().segments() {
        dir = dir.join(seg).unwrap();
        let _ = vfs.mkdir(&dir).await;
    }
    vfs.write_all(&p, Bytes::copy_from_slice(data))
        .await
        .unwrap();
}

fn uses(gw: &Gateway, id: &str) -> String {
    let out = gw.cli(&["link", "show", id]);
    out.lines()
        .find_map(|l| l.strip_prefix("uses:"))
        .unwrap()
        .trim()
        .to_string()
}

/// Waits for the use count: a use is settled when the body's stream ends,
/// which may be a moment after curl has the last byte.
fn wait_uses(gw: &Gateway, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while uses(gw, id) != want {
        assert!(
            Instant::now() < deadline,
            "uses stayed {}, want {want}",
            uses(gw, id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn conditional_downloads(storage: &str) {
    let mut gw = Gateway::start(storage, "").await;
    gw.add_user("alice", "/alice", "all", Some("pw"), None);
    let vfs = gw.vfs();
    let data = common::pattern(1_000_000, 3);
    put(&vfs, "/alice/doc.bin", &data).await;
    let (id, token) = gw.link(&["share", "/doc.bin", "--as", "alice", "--max-downloads", "2"]);
    let url = gw.url(&token);
    let page = String::from_utf8(curl(&url, &[], None, false).await.body).unwrap();
    let file = format!("{url}{}", common::file_path(&page));
    let jars: PathBuf = gw.path("jar1");
    let (jar1, jar2) = (jars.as_path(), gw.path("jar2"));

    // HEAD: the validators, and no use.
    let h = curl(&file, &[], None, true).await;
    assert_eq!(h.status, 200);
    let etag = h.header("etag").expect("an ETag").to_string();
    let modified = h
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();
    assert!(etag.starts_with('"'), "a strong validator: {etag}");
    assert_eq!(uses(&gw, &id), "0/2");

    // A current copy: 304 without a body, by tag or by date; nothing used.
    let r = curl(&file, &[format!("If-None-Match: {etag}")], None, false).await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert!(r.body.is_empty());
    let r = curl(
        &file,
        &[format!("If-Modified-Since: {modified}")],
        None,
        false,
    )
    .await;
    assert_eq!(r.status, 304);
    assert_eq!(uses(&gw, &id), "0/2");

    // If-Range with the current tag: the Range is honoured (one visitor, one use).
    let range = |r: &str| format!("Range: bytes={r}");
    let if_range = |t: &str| format!("If-Range: {t}");
    let r = curl(&file, &[range("0-99"), if_range(&etag)], Some(jar1), false).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data[..100]);
    let r = curl(&file, &[range("100-"), if_range(&etag)], Some(jar1), false).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data[100..]);
    wait_uses(&gw, &id, "1/2");
    // A stale tag: the whole file, 200.
    let r = curl(
        &file,
        &[range("0-99"), if_range("\"stale\"")],
        Some(&jar2),
        false,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(common::sha256(&r.body), common::sha256(&data));
    wait_uses(&gw, &id, "2/2");

    // The link is used up: a stranger's conditional request meets the rules
    // first (410); the visitor holding a use still gets 304.
    let r = curl(&file, &[format!("If-None-Match: {etag}")], None, false).await;
    assert_eq!(r.status, 410);
    let r = curl(
        &file,
        &[format!("If-None-Match: {etag}")],
        Some(jar1),
        false,
    )
    .await;
    assert_eq!(r.status, 304);

    // The file changes (same size): a new tag, and the old one fetches it anew.
    let changed = common::pattern(1_000_000, 4);
    put(&vfs, "/alice/doc.bin", &changed).await;
    let r = curl(
        &file,
        &[format!("If-None-Match: {etag}")],
        Some(jar1),
        false,
    )
    .await;
    assert_eq!(r.status, 200);
    let new_tag = r.header("etag").unwrap().to_string();
    assert_ne!(new_tag, etag);
    assert_eq!(common::sha256(&r.body), common::sha256(&changed));
    let r = curl(&file, &[range("0-9"), if_range(&etag)], Some(jar1), false).await;
    assert_eq!(r.status, 200, "an old tag in If-Range sends the whole file");
    assert_eq!(r.body.len(), 1_000_000);
    wait_uses(&gw, &id, "2/2");

    // Downloads are audited; the 304s are not.
    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("link_download".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    let mut bytes: Vec<_> = rows
        .iter()
        .filter(|e| e.outcome.as_str() == "ok")
        .map(|e| e.bytes)
        .collect();
    bytes.sort();
    assert_eq!(
        bytes,
        vec![
            Some(100),
            Some(999_900),
            Some(1_000_000),
            Some(1_000_000),
            Some(1_000_000)
        ],
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_downloads_on_fs() {
    conditional_downloads("fs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_downloads_on_s3() {
    conditional_downloads("s3").await;
}
