//! Direct uploads to Azure Blob (Azurite, started by each test on 127.0.0.1)
//! without a browser: an HTTP client speaks the upload page's JSON endpoints
//! (`/l/<token>/direct`) and PUTs each part as a block to the URL wharf hands
//! out, as upload.js does. Azurite checks SAS signatures, so these are real
//! checks of wharf's signing: the part URLs work; the same URL pointed at
//! another upload's staging blob, or with its signature or permissions
//! changed, gets 403.
//!
//! Shown: the published blob's SHA-256 equals the sent file's, wharf received
//! a few hundred bytes of JSON for a 20 MB file and its audit row says
//! `direct` with that hash (no bytes counted through wharf); completing with
//! parts missing keeps the upload open and the rest follow (resume: the
//! blocks the container holds are listed); a wrong declared hash publishes
//! nothing and leaves no blob; the sweep removes an abandoned upload's
//! staging blob with its uncommitted blocks; the CORS rule `wharf connector
//! cors` prints, set on Azurite, admits the page's block PUT from wharf's
//! origin only.
//!
//! Not shown here: Azurite's Delete Blob also removes a blob holding only
//! uncommitted blocks, so the empty block list wharf commits before deleting
//! (which drops such blocks whether or not a service deletes a blob that
//! holds blocks only) makes no difference on it.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::direct_visitor::Visitor;
use common::gateway::Gateway;
use common::{Emulator, AZURITE_ACCOUNT};
use serde_json::json;
use wharf::store::AuditQuery;
use wharf::vfs::VPath;

const MB: usize = 1 << 20;

/// A visitor for Azure Blob, which answers a part (block) PUT with 201.
fn new_visitor(page: &str) -> Visitor {
    Visitor::new(page).part_status(201)
}

/// A gateway whose `/` is an Azurite container taking direct uploads (with
/// `extra` config after it), alice's home `/alice` on it.
struct Azure {
    gw: Gateway,
    port: u16,
    // Dropped after the gateway: the server stops before its folder goes.
    _server: Emulator,
    _tmp: tempfile::TempDir,
}

impl Azure {
    async fn start(extra: &str) -> Azure {
        Azure::start_at(None, extra).await
    }

    /// [`Azure::start`] with the connector's `root` option.
    async fn start_at(root: Option<&str>, extra: &str) -> Azure {
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut options): (Emulator, BTreeMap<String, String>) =
            common::azurite_server(tmp.path());
        if let Some(root) = root {
            options.insert("root".into(), root.into());
        }
        let port = common::azurite_port(&options);
        let opts: Vec<String> = options
            .iter()
            .map(|(k, v)| format!("{k} = \"{v}\""))
            .collect();
        let toml = format!(
            "[[connector]]\nname = \"azure\"\nscheme = \"azblob\"\ndirect_uploads = true\n[connector.options]\n{}\n\n[[mount]]\npath = \"/\"\nconnector = \"azure\"\n{extra}",
            opts.join("\n")
        );
        let gw = Gateway::start("fs", &toml).await;
        gw.add_user("alice", "/alice", "all", Some("alice-pw-1"), None);
        gw.vfs()
            .mkdir(&VPath::parse("/alice").unwrap())
            .await
            .unwrap();
        Azure {
            gw,
            port,
            _server: server,
            _tmp: tmp,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port)
    }

    /// A Shared Key-signed request to Azurite (a signer of its own).
    fn signed(&self, method: &str, path: &str, query: &str) -> (u16, String) {
        common::azurite_signed(self.port, method, path, query, "")
    }

    /// Every blob name in the container, uncommitted ones included.
    fn blobs(&self) -> Vec<String> {
        let (status, text) = self.signed(
            "GET",
            "/wharf",
            "comp=list&include=uncommittedblobs&restype=container",
        );
        assert_eq!(status, 200, "{text}");
        text.split("<Name>")
            .skip(1)
            .filter_map(|s| s.split_once("</Name>").map(|(n, _)| n.to_string()))
            .collect()
    }

    /// Get Block List (uncommitted) of the staging blob of upload `key`.
    fn staged_blocks(&self, key: &str) -> (u16, String) {
        self.signed(
            "GET",
            &format!("/wharf/.wharf-partial/direct/{key}"),
            "blocklisttype=uncommitted&comp=blocklist",
        )
    }
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

async fn names_in(gw: &Gateway, dir: &str) -> Vec<String> {
    use futures::TryStreamExt;
    gw.vfs()
        .list(&VPath::parse(dir).unwrap())
        .await
        .unwrap()
        .map_ok(|e| e.name().to_string())
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_upload_to_azure_resumes_and_publishes_a_checked_file() {
    let mut az = Azure::start("").await;
    let (id, token, visitor) = request(&az.gw, &["--max-files", "1"]);
    let (status, page) = visitor.open().await;
    assert_eq!(status, 200);
    assert!(
        page.contains("data-direct=\""),
        "the page offers direct uploads"
    );
    // Its scripts may reach the container's endpoint, and nothing else outside.
    let r = reqwest::get(az.gw.url(&token)).await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains(&format!("connect-src 'self' http://127.0.0.1:{};", az.port)),
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
    assert_eq!(uses(&az.gw, &id), "1/1", "the use is taken at the start");

    // Each URL is a Put Block on the staging blob under a write-only SAS.
    for (_, u) in visitor.urls(&key, &[1, 3]).await {
        assert!(u.starts_with(&az.endpoint()), "{u}");
        assert!(
            u.contains(&format!("/wharf/.wharf-partial/direct/{key}?")),
            "staged, not the final name: {u}"
        );
        for p in ["comp=block", "blockid=", "sr=b", "sp=w", "se=", "sig="] {
            assert!(u.contains(p), "{p} in {u}");
        }
    }

    // A cut: only part 1 arrives. Completing now is refused, nothing is lost.
    visitor.put_parts(&key, &data, part_size, &[1]).await;
    let (status, v) = visitor.complete(&key, &sha).await;
    assert_eq!(status, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("1 of 3"), "{v}");
    // Resume: the container's blocks are listed, the others sent.
    let (status, v) = visitor
        .call(reqwest::Method::GET, &format!("/{key}"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "open");
    assert_eq!(
        v["done"],
        json!([{ "number": 1, "size": part_size }]),
        "{v}"
    );
    visitor.put_parts(&key, &data, part_size, &[2, 3]).await;
    let (status, v) = visitor.complete(&key, &sha).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["name"], "Bericht März.bin");
    assert_eq!(v["sha256"], sha.as_str());

    assert_eq!(
        az.gw
            .stored_sha("/alice/in/Bericht März.bin")
            .await
            .as_deref(),
        Some(sha.as_str())
    );
    // Wharf saw JSON only; its staging disk was never used.
    let sent = visitor.to_wharf.load(Ordering::Relaxed);
    assert!(sent < 4096, "{sent} bytes went to wharf");
    assert_eq!(staged_parts(&az.gw), 0);
    // Nothing staged is left in the container or visible.
    let blobs = az.blobs();
    assert!(
        !blobs.iter().any(|b| b.contains(".wharf-partial")),
        "{blobs:?}"
    );
    assert!(
        blobs.iter().any(|b| b == "alice/in/Bericht März.bin"),
        "{blobs:?}"
    );
    assert_eq!(az.staged_blocks(&key).0, 404);
    assert_eq!(names_in(&az.gw, "/alice/in").await, ["Bericht März.bin"]);
    assert_eq!(names_in(&az.gw, "/").await, ["alice"]);

    // One-time: another visitor gets 410.
    assert_eq!(new_visitor(&az.gw.url(&token)).open().await.0, 410);
    assert_eq!(uses(&az.gw, &id), "1/1");

    let rows = az
        .gw
        .stop_and_audit(AuditQuery {
            action: Some("link_upload".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].outcome.as_str(), "ok", "{rows:?}");
    let detail = rows[0].detail.as_deref().unwrap();
    assert!(
        detail.contains("Bericht März.bin") && detail.contains(&sha) && detail.contains("direct"),
        "{detail}"
    );
    assert_eq!(rows[0].bytes, None, "no bytes passed through wharf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_hash_publishes_nothing_and_leaves_no_blob() {
    let az = Azure::start("").await;
    let (id, _, visitor) = request(&az.gw, &["--max-files", "2"]);
    visitor.open().await;
    let data = common::pattern(9 * MB, 3);
    let (status, v) = visitor.begin("a.bin", data.len()).await;
    assert_eq!(status, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let part_size = v["part_size"].as_u64().unwrap() as usize;
    visitor.put_parts(&key, &data, part_size, &[1, 2]).await;
    assert_eq!(uses(&az.gw, &id), "1/2");

    let wrong = common::sha256(b"something else");
    let (status, v) = visitor.complete(&key, &wrong).await;
    assert_eq!(status, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("SHA-256"), "{v}");

    assert_eq!(az.gw.stored_sha("/alice/in/a.bin").await, None);
    let blobs = az.blobs();
    assert!(
        !blobs
            .iter()
            .any(|b| b.contains(".wharf-partial") || b.contains("a.bin")),
        "nothing stays in the container: {blobs:?}"
    );
    assert_eq!(uses(&az.gw, &id), "0/2", "the use is given back");
    let (_, v) = visitor
        .call(reqwest::Method::GET, &format!("/{key}"), None)
        .await;
    assert_eq!(v["state"], "failed", "{v}");
}

/// The SAS binds the blob (whose name holds the upload key), the permission
/// and the expiry: Azurite refuses a part URL moved to another upload's
/// staging blob, or with a changed signature or permission, and takes it as
/// handed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_url_works_only_for_its_own_upload() {
    let az = Azure::start("").await;
    let (_, _, visitor) = request(&az.gw, &["--max-files", "2"]);
    visitor.open().await;
    let (_, a) = visitor.begin("a.bin", 1000).await;
    let (_, b) = visitor.begin("b.bin", 1000).await;
    let (a, b) = (a["key"].as_str().unwrap(), b["key"].as_str().unwrap());
    let url = visitor.urls(a, &[1]).await.remove(0).1;
    let part = vec![7u8; 1000];

    let moved = url.replace(a, b);
    assert_ne!(moved, url);
    let (status, text) = visitor.put(&moved, &part).await;
    assert_eq!(status, 403, "another upload's blob: {text}");
    let (head, sig) = url.rsplit_once("sig=").unwrap();
    let first = if sig.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{head}sig={first}{}", &sig[1..]);
    assert_ne!(tampered, url);
    let (status, text) = visitor.put(&tampered, &part).await;
    assert_eq!(status, 403, "a changed signature: {text}");
    let wider = url.replace("sp=w", "sp=rw");
    assert_ne!(wider, url);
    let (status, text) = visitor.put(&wider, &part).await;
    assert_eq!(status, 403, "a wider permission: {text}");
    assert_eq!(az.staged_blocks(b).0, 404, "nothing reached b's blob");

    // As handed out, it works, and b's own URL puts into b only.
    assert_eq!(visitor.put(&url, &part).await.0, 201);
    let (_, v) = visitor
        .call(reqwest::Method::GET, &format!("/{a}"), None)
        .await;
    assert_eq!(v["done"], json!([{ "number": 1, "size": 1000 }]), "{v}");
    let (_, v) = visitor
        .call(reqwest::Method::GET, &format!("/{b}"), None)
        .await;
    assert_eq!(v["done"], json!([]), "{v}");
    // A block id of upload a put into b's blob (with b's URL) is not b's part.
    let b_url = visitor.urls(b, &[1]).await.remove(0).1;
    let a_id = url
        .split("blockid=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let b_id = b_url
        .split("blockid=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert_ne!(a_id, b_id);
    let foreign = b_url.replace(b_id, a_id);
    assert_eq!(visitor.put(&foreign, &part).await.0, 201);
    let (_, v) = visitor
        .call(reqwest::Method::GET, &format!("/{b}"), None)
        .await;
    assert_eq!(v["done"], json!([]), "{v}");
}

/// A part URL carries no part count: its holder can put a block with this
/// upload's id form but a number past the last part. Such a block is not a
/// part: it is left out of the listing and the commit, and the file publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_past_the_last_part_is_left_out() {
    use base64::Engine;
    let az = Azure::start("").await;
    let (_, _, visitor) = request(&az.gw, &[]);
    visitor.open().await;
    let data = common::pattern(1000, 4);
    let (_, v) = visitor.begin("x.bin", data.len()).await;
    let key = v["key"].as_str().unwrap();
    let url = visitor.urls(key, &[1]).await.remove(0).1;
    assert_eq!(visitor.put(&url, &data).await.0, 201);
    let id = url
        .split("blockid=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let extra = base64::engine::general_purpose::STANDARD.encode(format!("{key}-00099"));
    let extra = extra
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    assert_eq!(visitor.put(&url.replace(id, &extra), b"junk").await.0, 201);
    let (_, v) = visitor
        .call(reqwest::Method::GET, &format!("/{key}"), None)
        .await;
    assert_eq!(v["done"], json!([{ "number": 1, "size": 1000 }]), "{v}");
    let (status, v) = visitor.complete(key, &common::sha256(&data)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        az.gw.stored_sha("/alice/in/x.bin").await,
        Some(common::sha256(&data))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_removes_an_abandoned_staging_blob() {
    let mut az = Azure::start("[links]\nupload_abandon = \"1s\"\n").await;
    let (id, _, visitor) = request(&az.gw, &[]);
    visitor.open().await;
    let data = common::pattern(9 * MB, 5);
    let (status, v) = visitor.begin("left.bin", data.len()).await;
    assert_eq!(status, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    visitor
        .put_parts(&key, &data, v["part_size"].as_u64().unwrap() as usize, &[1])
        .await;
    let (status, blocks) = az.staged_blocks(&key);
    assert_eq!(status, 200, "{blocks}");
    assert!(blocks.contains("<Size>8388608</Size>"), "{blocks}");
    assert_eq!(uses(&az.gw, &id), "1");

    // The sweep runs at start: restart the gateway once the upload is stale.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    az.gw.running.take().unwrap().shutdown().await;
    let app = wharf::app::App::open(az.gw.config.clone()).unwrap();
    az.gw.running = Some(app.start().await.unwrap());

    let deadline = Instant::now() + Duration::from_secs(20);
    while az.staged_blocks(&key).0 != 404 {
        assert!(
            Instant::now() < deadline,
            "the staging blob is still there: {:?}",
            az.staged_blocks(&key)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!az.blobs().iter().any(|b| b.contains(".wharf-partial")));
    let deadline = Instant::now() + Duration::from_secs(10);
    while uses(&az.gw, &id) != "0" {
        assert!(Instant::now() < deadline, "{}", uses(&az.gw, &id));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `<Cors>` rule `wharf connector cors` prints, set on Azurite's Blob
/// service as printed, answers the preflight of the page's block PUT from
/// wharf's origin, and not from another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_cors_rule_admits_the_pages_block_puts() {
    let az = Azure::start("").await;
    let origin = format!("http://{}", az.gw.http_addr());
    let rule = az
        .gw
        .cli(&["connector", "cors", "azure", "--origin", &origin]);
    assert!(
        rule.contains("<AllowedMethods>GET,HEAD,PUT</AllowedMethods>"),
        "{rule}"
    );
    common::azurite_set_cors(az.port, &rule);

    let (_, _, visitor) = request(&az.gw, &[]);
    visitor.open().await;
    let (_, v) = visitor.begin("a.bin", 1000).await;
    let key = v["key"].as_str().unwrap();
    let url = visitor.urls(key, &[1]).await.remove(0).1;
    let preflight = |from: String| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, &url)
            .header("Origin", from)
            .header("Access-Control-Request-Method", "PUT")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let r = preflight(origin.clone()).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"].to_str().unwrap(),
        origin
    );
    let r = preflight("http://127.0.0.9:1".into()).await.unwrap();
    assert_eq!(r.status().as_u16(), 403, "another origin");
}

/// Blob names wharf signs are percent-encoded in URLs and canonical
/// resources alike: a connector root with a space and an umlaut works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_root_with_a_space_and_an_umlaut_works() {
    let az = Azure::start_at(Some("/Ablage März"), "").await;
    let (_, _, visitor) = request(&az.gw, &[]);
    visitor.open().await;
    let data = common::pattern(1000, 6);
    let (status, v) = visitor.begin("y z.bin", data.len()).await;
    assert_eq!(status, 201, "{v}");
    let key = v["key"].as_str().unwrap();
    visitor.put_parts(key, &data, 1000, &[1]).await;
    let (status, v) = visitor.complete(key, &common::sha256(&data)).await;
    assert_eq!(status, 200, "{v}");
    let blobs = az.blobs();
    assert!(
        blobs.iter().any(|b| b == "Ablage März/alice/in/y z.bin"),
        "{blobs:?}"
    );
    assert!(!blobs.iter().any(|b| b.contains(".wharf-partial")));
}

#[test]
fn direct_uploads_are_for_s3_azblob_and_gcs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wharf.toml");
    std::fs::write(
        &file,
        "[[connector]]\nname = \"web\"\nscheme = \"webdav\"\ndirect_uploads = true\n[connector.options]\nendpoint = \"http://127.0.0.1:1\"\n\n[[mount]]\npath = \"/\"\nconnector = \"web\"\n",
    )
    .unwrap();
    let err = wharf::config::Config::load(Some(&file), Some(&dir.path().join("data")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("direct_uploads") && err.contains("s3, azblob and gcs"),
        "{err}"
    );
    std::fs::write(
        &file,
        "[[connector]]\nname = \"az\"\nscheme = \"azblob\"\ndirect_uploads = true\n[connector.options]\ncontainer = \"c\"\naccount_name = \"a\"\naccount_key = \"a2V5\"\n\n[[mount]]\npath = \"/\"\nconnector = \"az\"\n",
    )
    .unwrap();
    wharf::config::Config::load(Some(&file), Some(&dir.path().join("data"))).unwrap();
}
