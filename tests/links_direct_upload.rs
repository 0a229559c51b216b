//! Direct uploads to S3 (moto) without a browser: an HTTP client speaks the
//! upload page's JSON endpoints (`/l/<token>/direct`) and PUTs the parts to
//! the presigned URLs, as upload.js does. Shown: the published file's SHA-256
//! equals the sent file's, every part URL points at the bucket and wharf
//! received a few hundred bytes of JSON for a 20 MB file (its tus staging
//! folder stays empty); a completion with parts missing keeps the upload open
//! and the rest can follow (resume after a cut: the parts the bucket holds are
//! listed); a wrong declared hash publishes nothing, removes the object and
//! gives the use back; the sweep aborts an abandoned multipart upload; the
//! one-time rule holds (a second visitor gets 410).
//!
//! moto does not check presigned signatures, so a bucket refusing a part URL
//! used with another upload id, key or length (403) is not shown against a
//! server: instead botocore, the AWS SDK's own signer, recomputes each part
//! URL's signature and agrees with wharf's, and disagrees once the upload id,
//! key or length changes (src/vfs/sigv4.rs also matches AWS's published
//! examples in its unit tests). Publishing by a copy in ranges (objects above
//! 5 GiB) is shown on 12 MB in 5 MiB ranges.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::direct_visitor::Visitor;
use common::gateway::Gateway;
use serde_json::json;
use wharf::store::AuditQuery;
use wharf::vfs::VPath;

/// A visitor whose part URLs must all point at the bucket (moto).
fn new_visitor(page: &str) -> Visitor {
    Visitor::new(page).parts_at(common::s3_endpoint())
}

async fn add_alice(gw: &Gateway) {
    gw.add_user("alice", "/alice", "all", Some("alice-pw-1"), None);
    gw.vfs()
        .mkdir(&VPath::parse("/alice").unwrap())
        .await
        .unwrap();
}

/// An upload request of alice's into `/in` (with `extra` arguments) and its
/// first visitor: (link id, token, visitor).
fn request(gw: &Gateway, extra: &[&str]) -> (String, String, Visitor) {
    let mut args = vec!["request", "--as", "alice", "--folder", "/in"];
    args.extend_from_slice(extra);
    let (id, token) = gw.link(&args);
    let visitor = new_visitor(&gw.url(&token));
    (id, token, visitor)
}

fn bucket(gw: &Gateway) -> String {
    gw.config.connectors[0].options["bucket"].clone()
}

/// The bucket's listing (moto answers unsigned requests): keys, and
/// multipart uploads in progress.
async fn in_bucket(gw: &Gateway, query: &str) -> String {
    let url = format!("{}/{}?{query}", common::s3_endpoint(), bucket(gw));
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

fn uses(gw: &Gateway, id: &str) -> String {
    gw.cli(&["link", "show", id])
        .lines()
        .find_map(|l| l.strip_prefix("uses:"))
        .unwrap()
        .trim()
        .to_string()
}

fn staged_parts(gw: &Gateway) -> usize {
    std::fs::read_dir(gw.config.data_dir.join("uploads"))
        .map(|d| d.count())
        .unwrap_or(0)
}

const MB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_upload_resumes_and_publishes_a_checked_file_whose_bytes_skip_wharf() {
    let mut gw = Gateway::start("s3-direct-up", "").await;
    add_alice(&gw).await;
    let (id, token, visitor) = request(&gw, &["--max-files", "1"]);
    let (status, page) = visitor.open().await;
    assert_eq!(status, 200);
    assert!(
        page.contains("data-direct=\""),
        "the page offers direct uploads"
    );
    // Its scripts may reach the bucket, and nothing else outside.
    let r = reqwest::get(gw.url(&token)).await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains(&format!("connect-src 'self' {};", common::s3_endpoint())),
        "{csp}"
    );

    // 20 MB and a bit: three parts of 8 MiB, 8 MiB and the rest.
    let data = common::pattern(20 * MB + 12_345, 7);
    let sha = common::sha256(&data);
    let (status, v) = visitor.begin("Bericht März.bin", data.len()).await;
    assert_eq!(status, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let part_size = v["part_size"].as_u64().unwrap() as usize;
    assert_eq!(v["parts"], 3);
    assert_eq!(uses(&gw, &id), "1/1", "the use is taken at the start");

    // The URLs sign the part, the upload and the length.
    let urls = visitor.urls(&key, &[1, 3]).await;
    for (_, u) in &urls {
        assert!(u.contains("partNumber=") && u.contains("uploadId="), "{u}");
        assert!(
            u.contains("X-Amz-SignedHeaders=content-length%3Bhost"),
            "{u}"
        );
        assert!(
            u.contains(".wharf-partial/direct/"),
            "staged, not the final name: {u}"
        );
    }

    // A cut: only part 1 arrives. Completing now is refused, nothing is lost.
    visitor.put_parts(&key, &data, part_size, &[1]).await;
    let (status, v) = visitor.complete(&key, &sha).await;
    assert_eq!(status, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("1 of 3"), "{v}");
    // Resume: the bucket's parts are listed, the others sent.
    let (status, v) = visitor
        .call(reqwest::Method::GET, &format!("/{key}"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "open");
    let done: Vec<u64> = v["done"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_u64().unwrap())
        .collect();
    assert_eq!(done, [1]);
    let rest: Vec<u64> = (1..=3).filter(|n| !done.contains(n)).collect();
    visitor.put_parts(&key, &data, part_size, &rest).await;
    let (status, v) = visitor.complete(&key, &sha).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["name"], "Bericht März.bin");
    assert_eq!(v["sha256"], sha.as_str());

    assert_eq!(
        gw.stored_sha("/alice/in/Bericht März.bin").await.as_deref(),
        Some(sha.as_str())
    );
    // Wharf saw JSON only; its staging disk was never used.
    let sent = visitor.to_wharf.load(Ordering::Relaxed);
    assert!(sent < 4096, "{sent} bytes went to wharf");
    assert_eq!(staged_parts(&gw), 0);
    // Nothing staged is left or visible.
    assert!(!in_bucket(&gw, "list-type=2")
        .await
        .contains(".wharf-partial"));
    assert!(!in_bucket(&gw, "uploads").await.contains("<UploadId>"));
    let names: Vec<String> = {
        use futures::TryStreamExt;
        gw.vfs()
            .list(&VPath::parse("/alice/in").unwrap())
            .await
            .unwrap()
            .map_ok(|e| e.name().to_string())
            .try_collect()
            .await
            .unwrap()
    };
    assert_eq!(names, ["Bericht März.bin"]);

    // One-time: another visitor gets 410, and so does a second file.
    let other = new_visitor(&gw.url(&token));
    assert_eq!(other.open().await.0, 410);
    let (status, v) = visitor.begin("x.bin", 10 * MB).await;
    assert_eq!(status, 410, "{v}");
    // The visitor whose answer got lost may ask again: it arrived.
    let (status, v) = visitor.complete(&key, &sha).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "complete");
    assert_eq!(v["name"], "Bericht März.bin");
    assert_eq!(v["sha256"], sha.as_str());
    assert_eq!(uses(&gw, &id), "1/1");

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("link_upload".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    // One row: the early completion with a part missing is no refusal.
    assert_eq!(rows.len(), 1, "{rows:?}");
    let ok: Vec<_> = rows.iter().filter(|e| e.outcome.as_str() == "ok").collect();
    assert_eq!(ok.len(), 1, "{rows:?}");
    let detail = ok[0].detail.as_deref().unwrap();
    assert!(
        detail.contains("Bericht März.bin") && detail.contains(&sha) && detail.contains("direct"),
        "{detail}"
    );
    assert_eq!(ok[0].bytes, None, "no bytes passed through wharf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_hash_publishes_nothing_and_gives_the_use_back() {
    let mut gw = Gateway::start("s3-direct-up", "").await;
    add_alice(&gw).await;
    let (id, _, visitor) = request(&gw, &["--max-files", "2"]);
    visitor.open().await;
    let data = common::pattern(9 * MB, 3);
    let (status, v) = visitor.begin("a.bin", data.len()).await;
    assert_eq!(status, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let part_size = v["part_size"].as_u64().unwrap() as usize;
    visitor.put_parts(&key, &data, part_size, &[1, 2]).await;
    assert_eq!(uses(&gw, &id), "1/2");

    let wrong = common::sha256(b"something else");
    let (status, v) = visitor.complete(&key, &wrong).await;
    assert_eq!(status, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("SHA-256"), "{v}");

    assert_eq!(gw.stored_sha("/alice/in/a.bin").await, None);
    let keys = in_bucket(&gw, "list-type=2").await;
    assert!(
        !keys.contains(".wharf-partial") && !keys.contains("a.bin"),
        "nothing stays in the bucket: {keys}"
    );
    assert!(!in_bucket(&gw, "uploads").await.contains("<UploadId>"));
    assert_eq!(uses(&gw, &id), "0/2", "the use is given back");
    // The upload is over: its state says so; nothing more can be sent.
    let (_, v) = visitor
        .call(reqwest::Method::GET, &format!("/{key}"), None)
        .await;
    assert_eq!(v["state"], "failed", "{v}");
    let (status, _) = visitor
        .call(
            reqwest::Method::POST,
            &format!("/{key}/urls"),
            Some(json!({ "parts": [1] })),
        )
        .await;
    assert_eq!(status, 400);

    // The right hash on a new upload publishes.
    let (_, v) = visitor.begin("a.bin", data.len()).await;
    let key = v["key"].as_str().unwrap().to_string();
    visitor.put_parts(&key, &data, part_size, &[1, 2]).await;
    // Asked twice at once (a double click, a retry): published once.
    let sha = common::sha256(&data);
    let (a, b) = tokio::join!(visitor.complete(&key, &sha), visitor.complete(&key, &sha));
    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
    assert_eq!(a.1["name"], "a.bin");
    assert_eq!(b.1["name"], "a.bin");
    let names: Vec<String> = {
        use futures::TryStreamExt;
        gw.vfs()
            .list(&VPath::parse("/alice/in").unwrap())
            .await
            .unwrap()
            .map_ok(|e| e.name().to_string())
            .try_collect()
            .await
            .unwrap()
    };
    assert_eq!(names, ["a.bin"]);
    assert_eq!(uses(&gw, &id), "1/2");

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("link_upload".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    assert!(
        rows.iter().any(|e| e.outcome.as_str() == "failed"),
        "{rows:?}"
    );
    let ok = rows.iter().filter(|e| e.outcome.as_str() == "ok").count();
    assert_eq!(ok, 1, "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_aborts_an_abandoned_direct_upload() {
    let mut gw = Gateway::start("s3-direct-up", "[links]\nupload_abandon = \"1s\"\n").await;
    add_alice(&gw).await;
    let (id, _, visitor) = request(&gw, &[]);
    visitor.open().await;
    let data = common::pattern(9 * MB, 5);
    let (status, v) = visitor.begin("left.bin", data.len()).await;
    assert_eq!(status, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    visitor
        .put_parts(&key, &data, v["part_size"].as_u64().unwrap() as usize, &[1])
        .await;
    assert!(in_bucket(&gw, "uploads").await.contains("<UploadId>"));
    assert_eq!(uses(&gw, &id), "1");

    // The sweep runs at start: restart the gateway once the upload is stale.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gw.running.take().unwrap().shutdown().await;
    let app = wharf::app::App::open(gw.config.clone()).unwrap();
    gw.running = Some(app.start().await.unwrap());

    let deadline = Instant::now() + Duration::from_secs(20);
    while in_bucket(&gw, "uploads").await.contains("<UploadId>") {
        assert!(
            Instant::now() < deadline,
            "the multipart upload is still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while uses(&gw, &id) != "0" {
        assert!(Instant::now() < deadline, "{}", uses(&gw, &id));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_the_page_uses_tus() {
    let gw = Gateway::start("s3", "").await;
    add_alice(&gw).await;
    let (_, token, visitor) = request(&gw, &[]);
    let (_, page) = visitor.open().await;
    assert!(!page.contains("data-direct"));
    let r = reqwest::get(gw.url(&token)).await.unwrap();
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("connect-src 'self';"));
    let (status, v) = visitor.begin("a.bin", 10 * MB).await;
    assert!(status >= 400 && status != 410, "{status} {v}");
}

#[test]
fn direct_uploads_are_for_s3() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wharf.toml");
    std::fs::write(
        &file,
        "[[connector]]\nname = \"disk\"\nscheme = \"fs\"\ndirect_uploads = true\n[connector.options]\nroot = \"files\"\n\n[[mount]]\npath = \"/\"\nconnector = \"disk\"\n",
    )
    .unwrap();
    let err = wharf::config::Config::load(Some(&file), Some(&dir.path().join("data")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("direct_uploads") && err.contains("s3"),
        "{err}"
    );
}

/// Objects above 5 GiB cannot be published with one CopyObject: they are
/// copied in ranges (UploadPartCopy). Shown on 12 MB in 5 MiB ranges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_in_parts_is_the_same_file() {
    let gw = Gateway::start("s3-direct-up", "").await;
    let vfs = gw.vfs();
    let data = common::pattern(12 * MB + 7, 11);
    vfs.write_all(
        &VPath::parse("/big.bin").unwrap(),
        bytes::Bytes::from(data.clone()),
    )
    .await
    .unwrap();
    let place = vfs.direct_place(&VPath::root()).unwrap().unwrap();
    place
        .copy_in_parts(
            "big.bin",
            "copy of big.bin",
            data.len() as u64,
            5 * MB as u64,
        )
        .await
        .unwrap();
    assert_eq!(
        gw.stored_sha("/copy of big.bin").await.as_deref(),
        Some(common::sha256(&data).as_str())
    );
    assert!(!in_bucket(&gw, "uploads").await.contains("<UploadId>"));
}

/// botocore (the AWS SDK for Python's signer, an implementation independent
/// of wharf's) recomputes the signature of a part URL from its parts and
/// wharf's key: it agrees, so S3 checks exactly what wharf signed; with
/// another `uploadId`, another key or another length it does not, which is
/// why S3 refuses such a request (403 SignatureDoesNotMatch; moto does not
/// check presigned signatures, so this is where it is shown).
const BOTOCORE_SIGN: &str = r#"
import sys, datetime, urllib.parse as up
import botocore.auth as a
from botocore.credentials import Credentials
from botocore.awsrequest import AWSRequest
url, key_id, secret, length = sys.argv[1:5]
p = up.urlsplit(url)
q = up.parse_qs(p.query, keep_blank_values=True)
date = q['X-Amz-Date'][0]
a.get_current_datetime = lambda *x: datetime.datetime.strptime(date, '%Y%m%dT%H%M%SZ')
ops = {k: v[0] for k, v in q.items() if not k.startswith('X-Amz-')}
region = q['X-Amz-Credential'][0].split('/')[2]
expires = int(q['X-Amz-Expires'][0])
def sign(ops, path, length):
    base = up.urlunsplit((p.scheme, p.netloc, path, up.urlencode(ops), ''))
    r = AWSRequest(method='PUT', url=base, headers={'Content-Length': length})
    a.S3SigV4QueryAuth(Credentials(key_id, secret), 's3', region, expires=expires).add_auth(r)
    return up.parse_qs(up.urlsplit(r.url).query)['X-Amz-Signature'][0]
print(sign(ops, p.path, length))
print(sign(dict(ops, uploadId='another-upload'), p.path, length))
print(sign(ops, p.path.replace('/direct/', '/direct/0'), length))
print(sign(ops, p.path, str(int(length) - 1)))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_urls_are_what_the_aws_sdk_signs_and_nothing_else() {
    let gw = Gateway::start("s3-direct-up", "").await;
    add_alice(&gw).await;
    let (_, _, visitor) = request(&gw, &[]);
    visitor.open().await;
    let size = 8 * MB * 2 + 1000;
    let (status, v) = visitor.begin("x.bin", size).await;
    assert_eq!(status, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    for (n, url) in visitor.urls(&key, &[1, 3]).await {
        let len = if n == 3 { 1000 } else { 8 * MB };
        let ours = url.rsplit_once("X-Amz-Signature=").unwrap().1.to_string();
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                BOTOCORE_SIGN,
                &url,
                "wharf-test",
                "wharf-test",
                &len.to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sigs: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(sigs[0], ours, "botocore signs part {n} as wharf did");
        for other in &sigs[1..] {
            assert_ne!(other, &ours, "another upload, key or length is not covered");
        }
    }
}

/// Cancelling (the page's Remove) aborts the multipart upload and gives the
/// use back; the upload is gone for its visitor, and never was for others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_aborts_the_multipart_upload() {
    let gw = Gateway::start("s3-direct-up", "").await;
    add_alice(&gw).await;
    let (id, token, visitor) = request(&gw, &["--max-files", "3"]);
    visitor.open().await;
    let data = common::pattern(9 * MB, 9);
    let (_, v) = visitor.begin("gone.bin", data.len()).await;
    let key = v["key"].as_str().unwrap().to_string();
    visitor
        .put_parts(&key, &data, v["part_size"].as_u64().unwrap() as usize, &[1])
        .await;
    assert!(in_bucket(&gw, "uploads").await.contains("<UploadId>"));
    assert_eq!(uses(&gw, &id), "1/3");

    // Another visitor of the same link cannot see or cancel it.
    let other = new_visitor(&gw.url(&token));
    other.open().await;
    let (status, _) = other
        .call(reqwest::Method::DELETE, &format!("/{key}"), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = other
        .call(reqwest::Method::GET, &format!("/{key}"), None)
        .await;
    assert_eq!(status, 404);

    let (status, _) = visitor
        .call(reqwest::Method::DELETE, &format!("/{key}"), None)
        .await;
    assert_eq!(status, 204);
    assert!(!in_bucket(&gw, "uploads").await.contains("<UploadId>"));
    assert_eq!(uses(&gw, &id), "0/3");
    let (_, v) = visitor
        .call(reqwest::Method::GET, &format!("/{key}"), None)
        .await;
    assert_eq!(v["state"], "cancelled", "{v}");
    // Without the header (a cross-site form could not send it): refused.
    let r = reqwest::Client::new()
        .post(format!("{}/direct", gw.url(&token)))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 412);
}

/// The read-back that checks a completed upload's hash draws its buffer from
/// the memory budget like every transfer: with an 8 MiB budget held whole by
/// an SFTP upload in progress, the completion waits (still verifying), and
/// goes on to publish once that upload ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_back_waits_for_room_in_the_memory_budget() {
    use russh_sftp::protocol::OpenFlags;
    let gw = Gateway::start("s3-direct-up", "[storage]\nbuffer_budget = \"8MiB\"\n").await;
    add_alice(&gw).await;
    let (_, _, visitor) = request(&gw, &[]);
    assert_eq!(visitor.open().await.0, 200);
    let data = common::pattern(9 * MB, 21);
    let sha = common::sha256(&data);
    let (status, v) = visitor.begin("held.bin", data.len()).await;
    assert_eq!(status, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let part_size = v["part_size"].as_u64().unwrap() as usize;
    visitor.put_parts(&key, &data, part_size, &[1, 2]).await;

    // An SFTP upload to the bucket holds the whole budget while it is open.
    let (_ssh, sftp) = common::ssh::sftp_login(gw.sftp_addr(), "alice", "alice-pw-1")
        .await
        .unwrap();
    let h = sftp
        .open(
            "/open.bin",
            OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
            Default::default(),
        )
        .await
        .unwrap()
        .handle;
    sftp.write(h.as_str(), 0, vec![7u8; 64 * 1024])
        .await
        .unwrap();

    let (status, v) = visitor
        .call(
            reqwest::Method::POST,
            &format!("/{key}/complete"),
            Some(json!({ "sha256": sha })),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, v) = visitor
        .call(reqwest::Method::GET, &format!("/{key}"), None)
        .await;
    assert_eq!(v["state"], "verifying", "waits for room: {v}");

    sftp.close(h).await.unwrap();
    let (status, v) = visitor.complete(&key, &sha).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["sha256"], sha.as_str());
    assert_eq!(
        gw.stored_sha("/alice/in/held.bin").await.as_deref(),
        Some(sha.as_str())
    );
}
