//! Upload requests through the real link server: the tus endpoints driven by an
//! HTTP client (and by tuspy, an independent tus client), a connection cut in
//! the middle of a chunk and resumed, files published with equal SHA-256 on the
//! fs connector and on S3 (moto), uploads staged on a connector (S3, fs)
//! instead of the local folder (and the sweep of their chunks), the limits
//! (file count, size, offsets), the rules at the door, name conflicts, the
//! audit row and the notification.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::gateway::Gateway;
use reqwest::cookie::CookieStore;
use wharf::store::AuditQuery;
use wharf::vfs::VPath;

/// A browser-like visitor: its own cookie jar (grant), tus requests.
struct Visitor {
    client: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    page: String,
}

impl Visitor {
    fn new(page: &str) -> Visitor {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Visitor {
            client,
            jar,
            page: page.to_string(),
        }
    }

    /// Opens the link's page (and so gets a grant); returns status and body.
    async fn open(&self) -> (u16, String) {
        let r = self.client.get(&self.page).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    fn cookie(&self) -> String {
        let url = reqwest::Url::parse(&self.page).unwrap();
        self.jar
            .cookies(&url)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// Declares an upload; returns status, the upload's absolute URL, the body.
    async fn create(&self, name: &str, size: u64) -> (u16, String, String) {
        let meta = format!("filename {}", b64(name));
        let r = self
            .client
            .post(format!("{}/uploads", self.page))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", size.to_string())
            .header("Upload-Metadata", meta)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let origin = self.page.split("/l/").next().unwrap().to_string();
        let url = if location.is_empty() {
            location
        } else {
            format!("{origin}{location}")
        };
        (status, url, r.text().await.unwrap())
    }

    async fn patch(&self, url: &str, offset: u64, data: Vec<u8>) -> reqwest::Response {
        self.client
            .patch(url)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .body(data)
            .send()
            .await
            .unwrap()
    }

    /// HEAD: (status, Upload-Offset).
    async fn offset(&self, url: &str) -> (u16, Option<u64>) {
        let r = self
            .client
            .head(url)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        let at = header(&r, "upload-offset").map(|v| v.parse().unwrap());
        (r.status().as_u16(), at)
    }

    async fn delete(&self, url: &str) -> u16 {
        self.client
            .delete(url)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Uploads `data` whole in one PATCH; returns the final response's
    /// (status, Wharf-File-Name, Wharf-Sha256).
    async fn upload(&self, name: &str, data: &[u8]) -> (u16, String, String) {
        let (status, url, body) = self.create(name, data.len() as u64).await;
        assert_eq!(status, 201, "{body}");
        let r = self.patch(&url, 0, data.to_vec()).await;
        let status = r.status().as_u16();
        let name = header(&r, "wharf-file-name").unwrap_or_default();
        let sha = header(&r, "wharf-sha256").unwrap_or_default();
        (status, decode(&name), sha)
    }
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

/// Sends a PATCH whose body stops after `sent` of `declared` bytes, then drops
/// the connection: what a cut network does to a browser's upload.
fn cut_patch(url: &str, cookie: &str, offset: u64, data: &[u8], sent: usize) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut tcp = TcpStream::connect(host).unwrap();
    write!(
        tcp,
        "PATCH {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nTus-Resumable: 1.0.0\r\n\
         Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        data.len()
    )
    .unwrap();
    tcp.write_all(&data[..sent]).unwrap();
    tcp.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    tcp.shutdown(std::net::Shutdown::Both).unwrap();
}

/// The user `alice` (home `/alice`, made in the gateway's storage) with an
/// address for notifications.
async fn add_alice(gw: &Gateway) {
    gw.add_user("alice", "/alice", "all", Some("alice-pw-1"), None);
    gw.db
        .blocking()
        .user_set_email("alice", Some("alice@example.com"))
        .unwrap();
    gw.vfs()
        .mkdir(&VPath::parse("/alice").unwrap())
        .await
        .unwrap();
}

fn staged_parts(gw: &Gateway) -> usize {
    std::fs::read_dir(gw.config.data_dir.join("uploads"))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn resumes_after_a_cut_and_publishes(storage: &str) {
    let mut gw = Gateway::start(storage, "").await;
    add_alice(&gw).await;
    let (id, token) = gw.link(&[
        "request",
        "--as",
        "alice",
        "--folder",
        "/inbox",
        "--max-files",
        "3",
        "--max-size",
        "20MB",
        "--title",
        "Q3 documents",
    ]);
    let v = Visitor::new(&gw.url(&token));
    let (status, page) = v.open().await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"uploader\"") && page.contains("Q3 documents"));
    assert!(page.contains("/static/upload.js"));
    assert!(v.cookie().contains("wharf_grant="), "{}", v.cookie());

    let data = common::pattern(5_000_000, 42);
    let (status, url, body) = v.create("../../Q3 report.bin", data.len() as u64).await;
    assert_eq!(status, 201, "{body}");
    let r = v.patch(&url, 0, data[..1_000_000].to_vec()).await;
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(header(&r, "upload-offset").unwrap(), "1000000");

    // The next chunk is cut after 1.5 MB of its 2 MB.
    cut_patch(
        &url,
        &v.cookie(),
        1_000_000,
        &data[1_000_000..3_000_000],
        1_500_000,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let resumed_at = loop {
        let (status, at) = v.offset(&url).await;
        assert_eq!(status, 200);
        let at = at.unwrap();
        // A PATCH at the reported offset is accepted once the cut request is over.
        if at > 1_000_000 {
            let r = v.patch(&url, at, data[at as usize..].to_vec()).await;
            if r.status().as_u16() != 423 {
                assert_eq!(r.status().as_u16(), 204, "{:?}", r.text().await);
                assert_eq!(header(&r, "upload-offset").unwrap(), "5000000");
                assert_eq!(header(&r, "wharf-sha256").unwrap(), common::sha256(&data));
                assert_eq!(
                    decode(&header(&r, "wharf-file-name").unwrap()),
                    "Q3 report.bin"
                );
                break at;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the cut bytes never showed (at {at})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        resumed_at <= 2_500_000,
        "more bytes than were sent: {resumed_at}"
    );
    assert_eq!(
        gw.stored_sha("/alice/inbox/Q3 report.bin").await,
        Some(common::sha256(&data))
    );
    assert_eq!(staged_parts(&gw), 0, "the staged bytes are removed");

    // The same name again: published beside it, never over it.
    let small = common::pattern(10, 1);
    let (status, name, sha) = v.upload("Q3 report.bin", &small).await;
    assert_eq!((status, name.as_str()), (204, "Q3 report (1).bin"));
    assert_eq!(sha, common::sha256(&small));
    assert_eq!(
        gw.stored_sha("/alice/inbox/Q3 report.bin").await,
        Some(common::sha256(&data)),
        "the first file is intact"
    );

    // `wharf link show` lists both with their SHA-256; visitors cannot fetch them.
    let show = gw.cli(&["link", "show", &id]);
    assert!(show.contains("uses:        2/3"), "{show}");
    assert!(show.contains("folder:      /alice/inbox"), "{show}");
    let line = show.lines().find(|l| l.contains("Q3 report.bin")).unwrap();
    assert!(
        line.contains("5000000") && line.contains(&common::sha256(&data)),
        "{line}"
    );
    assert!(show.contains("Q3 report (1).bin"), "{show}");
    let page = reqwest::get(format!("{}/f/1", gw.url(&token)))
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 404);
    let zip = reqwest::get(format!("{}/zip", gw.url(&token)))
        .await
        .unwrap();
    assert_eq!(zip.status().as_u16(), 404);

    // The creator is told (outbox: no SMTP configured).
    let outbox = gw.config.data_dir.join("outbox");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mail = loop {
        let found = std::fs::read_dir(&outbox).unwrap().find_map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            (text.contains("To: alice@example.com") && text.contains("Uploaded: Q3 report.bin"))
                .then_some(text)
        });
        if let Some(m) = found {
            break m;
        }
        assert!(Instant::now() < deadline, "no notification mail");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(mail.contains(&common::sha256(&data)), "{mail}");

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("link_upload".into()),
            limit: 10,
            ..Default::default()
        })
        .await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let big = rows.iter().find(|r| r.bytes == Some(5_000_000)).unwrap();
    assert_eq!(big.path.as_deref(), Some(format!("link:{id}").as_str()));
    assert!(big.remote.as_deref().unwrap().starts_with("127.0.0.1:"));
    let detail = big.detail.as_deref().unwrap();
    assert!(
        detail.contains("/alice/inbox/Q3 report.bin") && detail.contains(&common::sha256(&data)),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_a_cut_and_publishes_on_fs() {
    resumes_after_a_cut_and_publishes("fs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_a_cut_and_publishes_on_s3() {
    resumes_after_a_cut_and_publishes("s3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_offsets_and_other_visitors() {
    let gw = Gateway::start("fs", "").await;
    add_alice(&gw).await;
    let (id, token) = gw.link(&[
        "request",
        "--as",
        "alice",
        "--folder",
        "/in",
        "--max-files",
        "2",
        "--max-size",
        "1MB",
    ]);
    let page = gw.url(&token);

    // No grant yet (the page was never opened), then no tus header.
    let stranger = Visitor::new(&page);
    assert_eq!(stranger.create("a.txt", 10).await.0, 403);
    let v = Visitor::new(&page);
    assert_eq!(v.open().await.0, 200);
    let other = Visitor::new(&page);
    assert_eq!(other.open().await.0, 200);
    let r = v
        .client
        .post(format!("{page}/uploads"))
        .header("Upload-Length", "10")
        .header("Upload-Metadata", format!("filename {}", b64("a.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 412);

    // Too large for the link: refused before any byte, no use taken.
    let (status, _, body) = v.create("big.bin", 2_000_000).await;
    assert_eq!(status, 413);
    assert!(body.contains("1.0 MB"), "{body}");

    let (s1, u1, _) = v.create("one.txt", 100).await;
    let (s2, u2, _) = v.create("two.txt", 100).await;
    assert_eq!((s1, s2), (201, 201));
    let (s3, _, body) = v.create("three.txt", 100).await;
    assert_eq!(s3, 410, "two files in all: {body}");
    assert!(body.contains("as many files as it accepts"), "{body}");
    // Cancelling gives the use back.
    assert_eq!(v.delete(&u2).await, 204);
    assert_eq!(v.offset(&u2).await.0, 410);
    let (s3, u3, _) = v.create("three.txt", 100).await;
    assert_eq!(s3, 201);

    // Another visitor of the same link cannot see or write this upload.
    assert_eq!(other.offset(&u1).await.0, 404);
    assert_eq!(
        other.patch(&u1, 0, vec![0; 100]).await.status().as_u16(),
        404
    );
    assert_eq!(other.delete(&u1).await, 404);

    // Offsets must continue where the upload stands; no more than declared.
    let r = v.patch(&u1, 50, vec![0; 50]).await;
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(header(&r, "upload-offset").as_deref(), Some("0"));
    assert_eq!(v.patch(&u1, 0, vec![0; 150]).await.status().as_u16(), 413);
    assert_eq!(v.offset(&u1).await.1, Some(0), "nothing of it was kept");
    let r = v
        .client
        .patch(&u1)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "text/plain")
        .body(vec![0; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);

    // Both uploads finish; the link is then used up for new uploads.
    assert_eq!(v.patch(&u1, 0, vec![1; 100]).await.status().as_u16(), 204);
    assert_eq!(v.patch(&u3, 0, vec![3; 100]).await.status().as_u16(), 204);
    assert_eq!(v.create("four.txt", 10).await.0, 410);
    assert_eq!(v.open().await.0, 410);
    let files: Vec<String> = std::fs::read_dir(gw.config.data_dir.join("files/alice/in"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut files = files;
    files.sort();
    assert_eq!(
        files,
        ["one.txt", "three.txt"],
        "the cancelled upload left nothing"
    );
    assert_eq!(staged_parts(&gw), 0);

    // A revoked request takes nothing more, not even an upload already begun.
    let (id2, token2) = gw.link(&["request", "--as", "alice", "--folder", "/in"]);
    let v2 = Visitor::new(&gw.url(&token2));
    v2.open().await;
    let (_, u, _) = v2.create("late.txt", 10).await;
    gw.cli(&["link", "revoke", &id2]);
    assert_eq!(v2.patch(&u, 0, vec![0; 10]).await.status().as_u16(), 410);
    assert_eq!(v2.create("later.txt", 10).await.0, 410);
    let _ = id;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_gate_and_refused_conflicts() {
    let gw = Gateway::start("fs", "[links]\nupload_conflict = \"refuse\"\n").await;
    add_alice(&gw).await;
    let (_, token) = gw.link_with_input(
        &[
            "request",
            "--as",
            "alice",
            "--folder",
            "/drop",
            "--password-stdin",
            "--no-notify",
        ],
        Some("letmein-42"),
    );
    let page = gw.url(&token);
    let v = Visitor::new(&page);
    let (status, form) = v.open().await;
    assert_eq!(status, 200);
    assert!(form.contains("type=\"password\""), "{form}");
    assert_eq!(
        v.create("a.txt", 3).await.0,
        403,
        "the password comes first"
    );

    let at = form.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &form[at..at + 32];
    let r = v
        .client
        .post(format!("{page}/password"))
        .form(&[("csrf", csrf), ("password", "letmein-42")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let (status, body) = v.open().await;
    assert_eq!(status, 200);
    assert!(body.contains("id=\"uploader\""));

    assert_eq!(v.upload("a.txt", b"one").await.0, 204);
    // Refused at once when the name is taken, and again at publish time if the
    // file appeared meanwhile; the existing file stays.
    let (status, _, body) = v.create("a.txt", 3).await;
    assert_eq!(status, 409, "{body}");
    let (status, url, _) = v.create("b.txt", 3).await;
    assert_eq!(status, 201);
    std::fs::write(gw.config.data_dir.join("files/alice/drop/b.txt"), "old").unwrap();
    let r = v.patch(&url, 0, b"new".to_vec()).await;
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(
        std::fs::read_to_string(gw.config.data_dir.join("files/alice/drop/b.txt")).unwrap(),
        "old"
    );
    assert_eq!(
        std::fs::read_to_string(gw.config.data_dir.join("files/alice/drop/a.txt")).unwrap(),
        "one"
    );
    let outbox = std::fs::read_dir(gw.config.data_dir.join("outbox"))
        .unwrap()
        .count();
    assert_eq!(outbox, 0, "--no-notify: no mail to the creator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuspy_a_standard_tus_client_uploads_in_chunks() {
    let gw = Gateway::start("fs", "").await;
    add_alice(&gw).await;
    let (_, token) = gw.link(&["request", "--as", "alice", "--folder", "/tus"]);
    let v = Visitor::new(&gw.url(&token));
    assert_eq!(v.open().await.0, 200);
    let data = common::pattern(3_500_000, 9);
    let local = gw.path("from-python.bin");
    std::fs::write(&local, &data).unwrap();
    let script = r#"
import sys
from tusclient import client
c = client.TusClient(sys.argv[1], headers={"Cookie": sys.argv[2]})
u = c.uploader(sys.argv[3], chunk_size=1024 * 1024, metadata={"filename": "from python.bin"})
u.upload()
print(u.offset)
"#;
    let endpoint = format!("{}/uploads", gw.url(&token));
    let cookie = v.cookie();
    let local_path = local.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", script, &endpoint, &cookie, &local_path])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "tuspy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3500000");
    assert_eq!(
        gw.stored_sha("/alice/tus/from python.bin").await,
        Some(common::sha256(&data))
    );
}

/// An upload request acts for its creator as they are now, through the
/// Session: once they lose `write`, or are disabled, it refuses new uploads
/// before any byte moves (403, "no longer accepts files", nothing staged, one
/// `link_upload` row `denied`) and its page says so (410, one
/// `link_unavailable` row `denied`), and takes files again when they get it
/// back. Before the link server went through the Session, the creator was
/// checked only at publication: the page was served, the upload accepted
/// (201), and the visitor sent the whole file for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creator_who_may_no_longer_write_stops_the_request() {
    let mut gw = Gateway::start("fs", "").await;
    add_alice(&gw).await;
    let (id, token) = gw.link(&["request", "--as", "alice", "--folder", "/in"]);
    let v = Visitor::new(&gw.url(&token));
    assert_eq!(v.open().await.0, 200);

    gw.cli(&["user", "perms", "alice", "list,read,share"]);
    let (status, page) = v.open().await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("no longer accepts files"), "{page}");
    let (status, url, body) = v.create("late.txt", 10).await;
    assert_eq!(status, 403, "{body}");
    assert!(url.is_empty(), "no upload was begun");
    assert!(body.contains("no longer accepts files"), "{body}");
    gw.cli(&["user", "perms", "alice", "all"]);
    gw.cli(&["user", "disable", "alice"]);
    assert_eq!(v.create("late.txt", 10).await.0, 403);
    assert_eq!(staged_parts(&gw), 0);

    gw.cli(&["user", "enable", "alice"]);
    let data = b"on time now".to_vec();
    let (status, name, sha) = v.upload("late.txt", &data).await;
    assert_eq!((status, name.as_str()), (204, "late.txt"));
    assert_eq!(sha, common::sha256(&data));
    assert_eq!(
        std::fs::read(gw.config.data_dir.join("files/alice/in/late.txt")).unwrap(),
        data
    );

    let trail = gw
        .stop_and_audit(AuditQuery {
            path: Some(format!("link:{id}")),
            limit: 50,
            ..Default::default()
        })
        .await;
    let unavailable: Vec<_> = trail
        .iter()
        .filter(|r| r.action == "link_unavailable")
        .collect();
    assert_eq!(unavailable.len(), 1, "{trail:?}");
    assert_eq!(unavailable[0].outcome, wharf::audit::Outcome::Denied);
    let rows: Vec<_> = trail.iter().filter(|r| r.action == "link_upload").collect();
    let denied: Vec<_> = rows
        .iter()
        .filter(|r| r.outcome == wharf::audit::Outcome::Denied)
        .collect();
    assert_eq!(denied.len(), 2, "one row per refusal: {rows:?}");
    for r in &denied {
        assert_eq!(r.path.as_deref(), Some(format!("link:{id}").as_str()));
        assert!(r.detail.as_deref().unwrap().contains("late.txt"), "{r:?}");
    }
    assert_eq!(rows.len(), 3, "and one for the upload: {rows:?}");
}

/// The objects under `wharf-staging/` in `bucket`: (key, size).
async fn staged_objects(bucket: &str) -> Vec<(String, u64)> {
    let spec = wharf_connectors::ConnectorSpec {
        name: "check".into(),
        scheme: "s3".into(),
        options: common::s3_options(bucket),
    };
    let c = wharf_connectors::build(&spec, &wharf_connectors::Tuning::default()).unwrap();
    let mut found: Vec<(String, u64)> = c
        .operator
        .list_with("wharf-staging/")
        .recursive(true)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.metadata().is_file())
        .map(|e| (e.path().to_string(), e.metadata().content_length()))
        .collect();
    found.sort();
    found
}

/// A gateway on S3 whose browser uploads are staged on a bucket of their own
/// (`staging_bucket`); `links` lines go into its `[links]` table.
async fn with_staging_bucket(staging_bucket: &str, links: &str) -> Gateway {
    let opts: Vec<String> = common::s3_options(staging_bucket)
        .into_iter()
        .map(|(k, v)| format!("{k} = \"{v}\""))
        .collect();
    let extra = format!(
        "[[connector]]\nname = \"staging\"\nscheme = \"s3\"\n[connector.options]\n{}\n\
         [links]\nupload_staging_connector = \"staging\"\n{links}",
        opts.join("\n")
    );
    Gateway::start("s3", &extra).await
}

/// `[links] upload_staging_connector` on an S3 bucket (moto) of its own: each
/// PATCH leaves one chunk object, HEAD counts the run of chunks (a cut request
/// keeps what arrived), too many bytes leave nothing, and publishing or
/// cancelling leaves no object under the prefix (nor any local staging file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_staged_on_a_connector_resume_and_leave_nothing() {
    let staging_bucket = common::new_bucket();
    let gw = with_staging_bucket(&staging_bucket, "").await;
    add_alice(&gw).await;
    let (_, token) = gw.link(&["request", "--as", "alice", "--folder", "/inbox"]);
    let v = Visitor::new(&gw.url(&token));
    assert_eq!(v.open().await.0, 200);

    let data = common::pattern(3_000_000, 77);
    let (status, url, body) = v.create("staged.bin", data.len() as u64).await;
    assert_eq!(status, 201, "{body}");
    let key = url.rsplit('/').next().unwrap().to_string();
    assert_eq!(staged_objects(&staging_bucket).await, vec![]);
    let r = v.patch(&url, 0, data[..1_000_000].to_vec()).await;
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(header(&r, "upload-offset").unwrap(), "1000000");
    assert_eq!(
        staged_objects(&staging_bucket).await,
        vec![(format!("wharf-staging/{key}/{:020}", 0), 1_000_000)]
    );

    // Cut after 600 kB of a 1 MB request: what arrived is kept.
    cut_patch(
        &url,
        &v.cookie(),
        1_000_000,
        &data[1_000_000..2_000_000],
        600_000,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let at = loop {
        let (status, at) = v.offset(&url).await;
        assert_eq!(status, 200);
        let at = at.unwrap();
        if at > 1_000_000 {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "the cut bytes never showed (at {at})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(at <= 1_600_000, "more bytes than were sent: {at}");
    let objects = staged_objects(&staging_bucket).await;
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert_eq!(
        objects[1],
        (
            format!("wharf-staging/{key}/{:020}", 1_000_000),
            at - 1_000_000
        )
    );

    // More than the declared length: refused, nothing of it kept.
    let deadline = Instant::now() + Duration::from_secs(20);
    let r = loop {
        let mut over = data[at as usize..].to_vec();
        over.push(7);
        let r = v.patch(&url, at, over).await;
        if r.status().as_u16() != 423 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(v.offset(&url).await, (200, Some(at)));
    assert_eq!(staged_objects(&staging_bucket).await, objects);

    // The rest: published whole, the chunks gone.
    let r = v.patch(&url, at, data[at as usize..].to_vec()).await;
    assert_eq!(r.status().as_u16(), 204, "{:?}", r.text().await);
    assert_eq!(header(&r, "wharf-sha256").unwrap(), common::sha256(&data));
    assert_eq!(
        gw.stored_sha("/alice/inbox/staged.bin").await,
        Some(common::sha256(&data))
    );
    assert_eq!(staged_objects(&staging_bucket).await, vec![]);
    assert_eq!(staged_parts(&gw), 0, "nothing staged on local disk");

    // A cancelled upload leaves nothing either.
    let (status, url, _) = v.create("dropped.bin", 2_000_000).await;
    assert_eq!(status, 201);
    let r = v.patch(&url, 0, data[..500_000].to_vec()).await;
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(staged_objects(&staging_bucket).await.len(), 1);
    assert_eq!(v.delete(&url).await, 204);
    assert_eq!(staged_objects(&staging_bucket).await, vec![]);
    assert_eq!(v.offset(&url).await.0, 410);
}

/// The job that drops abandoned uploads (run at start, then hourly) deletes
/// their chunks on the staging connector, and the chunks of uploads no longer
/// open (here: a folder no upload owns).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_and_orphaned_chunks_on_the_connector_are_swept() {
    let staging_bucket = common::new_bucket();
    let mut gw = with_staging_bucket(&staging_bucket, "upload_abandon = \"1s\"\n").await;
    add_alice(&gw).await;
    let (_, token) = gw.link(&["request", "--as", "alice", "--folder", "/inbox"]);
    let v = Visitor::new(&gw.url(&token));
    assert_eq!(v.open().await.0, 200);
    let (status, url, _) = v.create("left.bin", 1_000_000).await;
    assert_eq!(status, 201);
    let key = url.rsplit('/').next().unwrap().to_string();
    let r = v.patch(&url, 0, common::pattern(100_000, 3)).await;
    assert_eq!(r.status().as_u16(), 204);
    // A folder of chunks no upload owns (a publish whose clean-up failed).
    let spec = wharf_connectors::ConnectorSpec {
        name: "check".into(),
        scheme: "s3".into(),
        options: common::s3_options(&staging_bucket),
    };
    let op = wharf_connectors::build(&spec, &wharf_connectors::Tuning::default())
        .unwrap()
        .operator;
    let orphan = format!("wharf-staging/{}/{:020}", "ab".repeat(16), 0);
    op.write(&orphan, vec![1u8; 10]).await.unwrap();
    assert_eq!(staged_objects(&staging_bucket).await.len(), 2);

    // Stopped (giving back the job's lease) and started again past `upload_abandon`.
    gw.running.take().unwrap().shutdown().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let app = wharf::app::App::open(gw.config.clone()).unwrap();
    gw.running = Some(app.start().await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = staged_objects(&staging_bucket).await;
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "chunks left: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let up = gw.db.blocking().upload_get(&key).unwrap().unwrap();
    assert_eq!(up.state, wharf::store::UploadState::Cancelled);
}

/// A staging connector of scheme `fs` (a shared file system, say): chunk
/// files in a folder per upload, resumed after a cut, published whole, and
/// the folder emptied (the upload's own folder removed too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_staged_on_an_fs_connector() {
    let shared = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[connector]]\nname = \"shared\"\nscheme = \"fs\"\n[connector.options]\nroot = \"{}\"\n\
         [links]\nupload_staging_connector = \"shared\"\nupload_staging_prefix = \"parts\"\n",
        shared.path().display()
    );
    let gw = Gateway::start("s3", &extra).await;
    add_alice(&gw).await;
    let (_, token) = gw.link(&["request", "--as", "alice", "--folder", "/inbox"]);
    let v = Visitor::new(&gw.url(&token));
    assert_eq!(v.open().await.0, 200);
    let data = common::pattern(2_000_000, 9);
    let (status, url, _) = v.create("fs.bin", data.len() as u64).await;
    assert_eq!(status, 201);
    let key = url.rsplit('/').next().unwrap().to_string();
    let r = v.patch(&url, 0, data[..700_000].to_vec()).await;
    assert_eq!(r.status().as_u16(), 204);
    let chunk = shared
        .path()
        .join("parts")
        .join(&key)
        .join(format!("{:020}", 0));
    assert_eq!(std::fs::metadata(&chunk).unwrap().len(), 700_000);
    cut_patch(&url, &v.cookie(), 700_000, &data[700_000..], 500_000);
    let deadline = Instant::now() + Duration::from_secs(20);
    let at = loop {
        let at = v.offset(&url).await.1.unwrap();
        if at > 700_000 {
            break at;
        }
        assert!(Instant::now() < deadline, "the cut bytes never showed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(at <= 1_200_000, "{at}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let r = loop {
        let r = v.patch(&url, at, data[at as usize..].to_vec()).await;
        if r.status().as_u16() != 423 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(r.status().as_u16(), 204, "{:?}", r.text().await);
    assert_eq!(header(&r, "wharf-sha256").unwrap(), common::sha256(&data));
    assert_eq!(
        gw.stored_sha("/alice/inbox/fs.bin").await,
        Some(common::sha256(&data))
    );
    let left: Vec<_> = std::fs::read_dir(shared.path().join("parts"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `/readyz` probes the staging connector like the mounts' connectors: a node
/// whose staging bucket does not answer is not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_probes_the_staging_connector() {
    let closed = common::free_port();
    let extra = format!(
        "[[connector]]\nname = \"staging\"\nscheme = \"s3\"\n[connector.options]\n\
         bucket = \"nowhere\"\nendpoint = \"http://127.0.0.1:{closed}\"\nregion = \"us-east-1\"\n\
         access_key_id = \"x\"\nsecret_access_key = \"x\"\ndisable_config_load = \"true\"\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n\
         [links]\nupload_staging_connector = \"staging\"\n"
    );
    let gw = Gateway::start("s3", &extra).await;
    let m = gw.running.as_ref().unwrap().metrics.unwrap();
    let r = reqwest::get(format!("http://{m}/readyz")).await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let body = r.text().await.unwrap();
    assert!(body.contains("connector staging"), "{body}");
    assert!(!body.contains("connector s3"), "{body}");
}
