//! Direct downloads from S3 (moto) with curl: on a connector with
//! `direct_downloads = true` a link download answers 303 to a presigned GET
//! that serves the file intact; the use is charged when the URL is handed out
//! (a one-time link's second visitor gets 410), the audit row says `direct`,
//! folder pages stay pages; without the setting the download is proxied.

mod common;

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

fn wait_uses(gw: &Gateway, id: &str, want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while uses(gw, id) != want {
        assert!(std::time::Instant::now() < deadline, "{}", uses(gw, id));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A one-time share of `/alice/Größe report.bin` (2 MB); (gateway, id,
/// file URL, the bytes).
async fn one_time_share(storage: &str) -> (Gateway, String, String, Vec<u8>) {
    let gw = Gateway::start(storage, "").await;
    gw.add_user("alice", "/alice", "all", Some("pw"), None);
    let data = common::pattern(2_000_000, 21);
    let vfs = gw.vfs();
    put(&vfs, "/alice/Größe report.bin", &data).await;
    put(&vfs, "/alice/dir/inner.txt", b"inside").await;
    let (id, token) = gw.link(&["share", "/Größe report.bin", "--as", "alice", "--one-time"]);
    let url = gw.url(&token);
    let page = String::from_utf8(curl(&url, &[], None, false).await.body).unwrap();
    let file = format!("{url}{}", common::file_path(&page));
    (gw, id, file, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_downloads_redirect_to_the_bucket_and_charge_the_use() {
    let (mut gw, id, file, data) = one_time_share("s3-direct").await;
    let jar = gw.path("jar");

    // HEAD stays here and uses nothing.
    let h = curl(&file, &[], Some(&jar), true).await;
    assert_eq!(h.status, 200);
    assert_eq!(uses(&gw, &id), "0/1");

    let r = curl(&file, &[], Some(&jar), false).await;
    assert_eq!(r.status, 303);
    let to = r.header("location").expect("a Location").to_string();
    let moto = common::s3_endpoint();
    assert!(to.starts_with(moto), "{to} is on the bucket ({moto})");
    assert!(to.contains("X-Amz-Signature="), "{to}");
    assert!(
        to.contains("response-content-disposition=attachment"),
        "{to}"
    );
    assert!(
        to.contains("Gr%25C3%25B6%25C3%259Fe%2520report.bin")
            || to.contains("Gr%C3%B6%C3%9Fe%20report.bin"),
        "the file name rides in the URL: {to}"
    );
    assert!(r.body.is_empty());
    // Charged when handed out.
    wait_uses(&gw, &id, "1/1");

    // The bucket serves the bytes.
    let got = curl(&to, &[], None, false).await;
    assert_eq!(got.status, 200);
    assert_eq!(common::sha256(&got.body), common::sha256(&data));

    // One-time: the next visitor gets 410; the first may come back.
    let other = curl(&file, &[], None, false).await;
    assert_eq!(other.status, 410);
    let again = curl(&file, &[], Some(&jar), false).await;
    assert_eq!(again.status, 303);
    assert_eq!(uses(&gw, &id), "1/1");

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("link_download".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    let direct: Vec<_> = rows.iter().filter(|e| e.outcome.as_str() == "ok").collect();
    assert_eq!(direct.len(), 2, "{rows:?}");
    assert!(
        direct.iter().all(|e| e
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("Größe report.bin") && d.contains("direct"))
            && e.bytes.is_none()),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_pages_stay_pages_and_files_inside_go_direct() {
    let gw = Gateway::start("s3-direct", "").await;
    gw.add_user("alice", "/alice", "all", Some("pw"), None);
    put(&gw.vfs(), "/alice/dir/inner.txt", b"inside").await;
    let (_, token) = gw.link(&["share", "/dir", "--as", "alice"]);
    let url = gw.url(&token);
    let page = String::from_utf8(curl(&url, &[], None, false).await.body).unwrap();
    let folder = format!("{url}{}", common::file_path(&page));
    let r = curl(&folder, &[], None, false).await;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("inner.txt"));
    let r = curl(&format!("{folder}/inner.txt"), &[], None, false).await;
    assert_eq!(r.status, 303);
    let got = curl(r.header("location").unwrap(), &[], None, false).await;
    assert_eq!(got.body, b"inside");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_downloads_are_proxied() {
    let (gw, id, file, data) = one_time_share("s3").await;
    let r = curl(&file, &[], None, false).await;
    assert_eq!(r.status, 200);
    assert!(r.header("location").is_none());
    assert_eq!(common::sha256(&r.body), common::sha256(&data));
    wait_uses(&gw, &id, "1/1");
}

#[test]
fn direct_downloads_need_a_service_that_presigns() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wharf.toml");
    std::fs::write(
        &file,
        "[[connector]]\nname = \"disk\"\nscheme = \"fs\"\ndirect_downloads = true\n[connector.options]\nroot = \"files\"\n\n[[mount]]\npath = \"/\"\nconnector = \"disk\"\n",
    )
    .unwrap();
    let err = wharf::config::Config::load(Some(&file), Some(&dir.path().join("data")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("direct_downloads") && err.contains("presign"),
        "{err}"
    );
}
