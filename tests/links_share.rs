//! Share links through the real link server, on fs and on S3 (moto): files and
//! folders where they live, re-checked at every access (creator disabled, read
//! taken away, file removed), folder browsing that never reaches a sibling
//! folder, and "download all" as a streamed zip checked by Python's zipfile.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::Bytes;
use common::gateway::Gateway;
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

/// A GET with the path exactly as given (HTTP clients normalise `..` away).
fn raw_get(gw: &Gateway, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(gw.http_addr()).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, text)
}

async fn body(url: &str) -> (u16, Vec<u8>) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

fn item_path(page: &str, name: &str) -> String {
    // Each item row: <strong>name</strong> ... href="/l/<token>/f/<id>"
    let at = page
        .find(&format!("<strong>{name}</strong>"))
        .expect("the item on the page");
    let rest = &page[at..];
    let f = rest.find("/f/").unwrap();
    let id: String = rest[f + 3..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    format!("/f/{id}")
}

async fn shares(storage: &str) {
    let mut gw = Gateway::start(storage, "").await;
    gw.add_user("alice", "/alice", "all", Some("pw"), None);
    let vfs = gw.vfs();
    let a = common::pattern(300_000, 1);
    put(&vfs, "/alice/proj/a.bin", &a).await;
    put(&vfs, "/alice/proj/sub/b.txt", b"inner b").await;
    put(&vfs, "/alice/proj2/secret.txt", b"sibling secret").await;
    put(&vfs, "/alice/single.txt", b"single file").await;

    let (_, folder) = gw.link(&["share", "/proj", "--as", "alice"]);
    let (file_id, single) = gw.link(&["share", "/single.txt", "--as", "alice"]);
    let furl = gw.url(&folder);
    let page = reqwest::get(&furl).await.unwrap().text().await.unwrap();
    let item = item_path(&page, "proj");
    let base = format!("{furl}{item}");

    // The folder page lists what is inside; files inside download.
    let (status, listing) = body(&base).await;
    assert_eq!(status, 200);
    let listing = String::from_utf8(listing).unwrap();
    assert!(
        listing.contains("a.bin") && listing.contains("sub/"),
        "{listing}"
    );
    let (status, got) = body(&format!("{base}/a.bin")).await;
    assert_eq!(status, 200);
    assert_eq!(common::sha256(&got), common::sha256(&a));
    assert_eq!(
        body(&format!("{base}/sub/b.txt")).await,
        (200, b"inner b".to_vec())
    );
    assert_eq!(body(&format!("{base}/missing.txt")).await.0, 404);

    // Nothing reaches the sibling folder /alice/proj2, however it is spelt.
    let raw = format!("/l/{folder}{item}");
    for path in [
        format!("{raw}/../proj2/secret.txt"),
        format!("{raw}/%2e%2e/proj2/secret.txt"),
        format!("{raw}/..%2fproj2%2fsecret.txt"),
        format!("{raw}/sub/..%2f..%2fproj2/secret.txt"),
        format!("{raw}2/secret.txt"),
        format!("{raw}/%2e%2e%5cproj2%5csecret.txt"),
    ] {
        let (status, text) = raw_get(&gw, &path);
        assert!(status == 404 || status == 400, "{path}: {status}");
        assert!(!text.contains("sibling secret"), "{path}");
    }

    // Download all: one zip with the folder's tree.
    let r = reqwest::get(format!("{furl}/zip")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let zip = gw.path("all.zip");
    std::fs::write(&zip, r.bytes().await.unwrap()).unwrap();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys,zipfile,hashlib\nz=zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\n\
             for n in sorted(z.namelist()): print(n, hashlib.sha256(z.read(n)).hexdigest())",
        ])
        .arg(&zip)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        listed,
        format!(
            "proj/a.bin {}\nproj/sub/b.txt {}\n",
            common::sha256(&a),
            common::sha256(b"inner b")
        )
    );

    // A single shared file; then its creator is disabled, then the file goes.
    let surl = gw.url(&single);
    let page = reqwest::get(&surl).await.unwrap().text().await.unwrap();
    let sfile = format!("{surl}{}", item_path(&page, "single.txt"));
    assert_eq!(body(&sfile).await, (200, b"single file".to_vec()));
    gw.cli(&["user", "disable", "alice"]);
    let (status, text) = body(&sfile).await;
    assert_eq!(status, 410);
    assert!(String::from_utf8_lossy(&text).contains("no longer available"));
    // Its page too: a disabled creator's share no longer lists its items.
    let (status, text) = body(&surl).await;
    assert_eq!(status, 410);
    assert!(!String::from_utf8_lossy(&text).contains("single.txt"));
    assert_eq!(
        body(&format!("{base}/a.bin")).await.0,
        410,
        "the folder share stops too"
    );
    gw.cli(&["user", "enable", "alice"]);
    assert_eq!(body(&sfile).await.0, 200);
    // Read taken away: the share stops.
    gw.cli(&["user", "perms", "alice", "list"]);
    assert_eq!(body(&sfile).await.0, 410);
    assert_eq!(body(&surl).await.0, 410);
    gw.cli(&["user", "perms", "alice", "all"]);
    vfs.delete(&VPath::parse("/alice/single.txt").unwrap())
        .await
        .unwrap();
    let (status, text) = body(&sfile).await;
    assert_eq!(status, 410);
    assert!(String::from_utf8_lossy(&text).contains("no longer available"));
    // A share with rules: the same door as a send link.
    put(&vfs, "/alice/guarded.txt", b"guarded").await;
    let (_, guarded) = gw.link(&[
        "share",
        "/guarded.txt",
        "--as",
        "alice",
        "--max-downloads",
        "1",
    ]);
    let gurl = gw.url(&guarded);
    let page = reqwest::get(&gurl).await.unwrap().text().await.unwrap();
    let gfile = format!("{gurl}{}", item_path(&page, "guarded.txt"));
    assert_eq!(body(&gfile).await, (200, b"guarded".to_vec()));
    assert_eq!(
        body(&gfile).await.0,
        410,
        "a second visitor finds it used up"
    );
    // The share's record still says what it was.
    assert!(gw.cli(&["link", "show", &file_id]).contains("single.txt"));

    // One audit row per access, the link's own: the two downloads, and a
    // `link_unavailable` denial with its reason for each refused one (file
    // and page while disabled, file and page without read, file removed).
    let trail = gw
        .stop_and_audit(wharf::store::AuditQuery {
            path: Some(format!("link:{file_id}")),
            limit: 100,
            ..Default::default()
        })
        .await;
    let of = |action: &str| trail.iter().filter(|r| r.action == action).count();
    assert_eq!(of("link_download"), 2, "{trail:?}");
    assert_eq!(of("link_unavailable"), 5, "{trail:?}");
    let reasons: Vec<&str> = trail
        .iter()
        .filter(|r| r.action == "link_unavailable")
        .inspect(|r| assert_eq!(r.outcome, wharf::audit::Outcome::Denied))
        .filter_map(|r| r.detail.as_deref())
        .collect();
    for why in [
        "creator is disabled",
        "creator lost a permission it needs",
        "the file was removed",
    ] {
        assert!(reasons.contains(&why), "{why}: {reasons:?}");
    }
    assert!(
        trail.iter().all(|r| r.actor.as_deref() != Some("alice")),
        "no row as the creator's own access: {trail:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_on_fs() {
    shares("fs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_on_s3() {
    shares("s3").await;
}
