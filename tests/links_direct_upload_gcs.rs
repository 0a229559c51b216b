//! Direct uploads to GCS (fake-gcs-server, started by each test on
//! 127.0.0.1) without a browser: an HTTP client speaks the upload page's JSON
//! endpoints (`/l/<token>/direct`) and PUTs each part, in one request, to
//! the resumable upload session URI wharf starts for that part's own object
//! and hands out, as upload.js does.
//!
//! Shown: the published object's SHA-256 equals the sent file's, wharf
//! received a few hundred bytes of JSON for a 20 MB file and its audit row
//! says `direct` with that hash (no bytes counted through wharf); completing
//! with parts missing keeps the upload open and the rest follow (resume: the
//! part objects the bucket holds are listed); a part of the wrong length is
//! refused before anything is joined; a wrong declared hash publishes
//! nothing and leaves no object; cancelling removes the parts; a session
//! URI of upload A writes A's part only, whatever its URL text says, so it
//! cannot complete upload B; the sweep removes an abandoned upload's part
//! objects; a connector root with a space and an umlaut works; more than 32
//! parts are joined in order leaving nothing behind; the emulator answers
//! the preflight of the page's part PUT.
//!
//! Not shown here (fake-gcs-server does not do it): that wharf's session
//! start is authorized as GCS requires (the emulator takes any call; wharf
//! signs it with OpenDAL's own reqsign chain, and a unit test in
//! `vfs/direct_gcs.rs` shows a configured token sent as OpenDAL sends it),
//! that GCS holds a session to
//! its declared length (`X-Upload-Content-Length`; wharf checks each part's
//! length itself), that a bucket's CORS rule applies (the emulator allows
//! every origin), and the cancelling of a session (its DELETE is a no-op).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::direct_visitor::Visitor;
use common::gateway::Gateway;
use common::Emulator;
use serde_json::{json, Value};
use wharf::store::AuditQuery;
use wharf::vfs::VPath;

const MB: usize = 1 << 20;

/// A gateway whose `/` is a fake-gcs-server bucket taking direct uploads
/// (with `extra` config after it), alice's home `/alice` on it.
struct Gcs {
    gw: Gateway,
    endpoint: String,
    // Dropped after the gateway: the server stops before its folder goes.
    _server: Emulator,
    _tmp: tempfile::TempDir,
}

impl Gcs {
    async fn start(extra: &str) -> Gcs {
        Gcs::start_at(None, extra).await
    }

    /// [`Gcs::start`] with the connector's `root` option.
    async fn start_at(root: Option<&str>, extra: &str) -> Gcs {
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut options): (Emulator, BTreeMap<String, String>) =
            common::gcs_server(tmp.path());
        if let Some(root) = root {
            options.insert("root".into(), root.into());
        }
        let endpoint = options["endpoint"].clone();
        let opts: Vec<String> = options
            .iter()
            .map(|(k, v)| format!("{k} = \"{v}\""))
            .collect();
        let toml = format!(
            "[[connector]]\nname = \"gcs\"\nscheme = \"gcs\"\ndirect_uploads = true\n[connector.options]\n{}\n\n[[mount]]\npath = \"/\"\nconnector = \"gcs\"\n{extra}",
            opts.join("\n")
        );
        let gw = Gateway::start("fs", &toml).await;
        gw.add_user("alice", "/alice", "all", Some("alice-pw-1"), None);
        gw.vfs()
            .mkdir(&VPath::parse("/alice").unwrap())
            .await
            .unwrap();
        Gcs {
            gw,
            endpoint,
            _server: server,
            _tmp: tmp,
        }
    }

    /// Every object name in the bucket but folder markers (the emulator's
    /// JSON API, no auth).
    async fn objects(&self) -> Vec<String> {
        let v: Value = reqwest::get(format!("{}/storage/v1/b/wharf/o", self.endpoint))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|o| o["name"].as_str().unwrap().to_string())
                    .filter(|n| !n.ends_with('/'))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The part objects of upload `key` in the bucket.
    async fn part_objects(&self, key: &str) -> Vec<String> {
        let prefix = format!(".wharf-partial/direct/{key}.parts/");
        self.objects()
            .await
            .into_iter()
            .filter(|o| o.starts_with(&prefix))
            .collect()
    }
}

/// An upload request of alice's into `/in` (with `extra` arguments) and its
/// first visitor: (link id, token, visitor).
fn request(gw: &Gateway, extra: &[&str]) -> (String, String, Visitor) {
    let mut args = vec!["request", "--as", "alice", "--folder", "/in"];
    args.extend_from_slice(extra);
    let (id, token) = gw.link(&args);
    let visitor = Visitor::new(&gw.url(&token));
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
async fn a_direct_upload_to_gcs_resumes_and_publishes_a_checked_file() {
    let mut g = Gcs::start("").await;
    let (id, token, visitor) = request(&g.gw, &["--max-files", "1"]);
    let (status, page) = visitor.open().await;
    assert_eq!(status, 200);
    assert!(
        page.contains("data-direct=\""),
        "the page offers direct uploads"
    );
    // Its scripts may reach the bucket's endpoint, and nothing else outside.
    let r = reqwest::get(g.gw.url(&token)).await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains(&format!("connect-src 'self' {};", g.endpoint)),
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
    assert_eq!(uses(&g.gw, &id), "1/1", "the use is taken at the start");

    // Each URL is a resumable session of the bucket for the part's object.
    for (n, u) in visitor.urls(&key, &[1, 3]).await {
        assert!(
            u.starts_with(&format!(
                "{}/upload/storage/v1/b/wharf/o?uploadType=resumable&",
                g.endpoint
            )),
            "{u}"
        );
        assert!(
            u.contains(&format!("direct%2F{key}.parts%2F0000{n}")),
            "staged, not the final name: {u}"
        );
        assert!(u.contains("upload_id="), "{u}");
    }

    // A cut: only part 1 arrives. Completing now is refused, nothing is lost.
    visitor.put_parts(&key, &data, part_size, &[1]).await;
    let (status, v) = visitor.complete(&key, &sha).await;
    assert_eq!(status, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("1 of 3"), "{v}");
    // Resume: the bucket's part objects are listed, the others sent.
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
        g.gw.stored_sha("/alice/in/Bericht März.bin")
            .await
            .as_deref(),
        Some(sha.as_str())
    );
    // Wharf saw JSON only; its staging disk was never used.
    let sent = visitor.to_wharf.load(Ordering::Relaxed);
    assert!(sent < 4096, "{sent} bytes went to wharf");
    assert_eq!(staged_parts(&g.gw), 0);
    // Nothing staged is left in the bucket or visible.
    let objects = g.objects().await;
    assert!(
        !objects.iter().any(|o| o.contains(".wharf-partial")),
        "{objects:?}"
    );
    assert_eq!(objects, ["alice/in/Bericht März.bin"]);
    assert_eq!(names_in(&g.gw, "/alice/in").await, ["Bericht März.bin"]);

    // One-time: another visitor gets 410.
    assert_eq!(Visitor::new(&g.gw.url(&token)).open().await.0, 410);
    assert_eq!(uses(&g.gw, &id), "1/1");

    let rows =
        g.gw.stop_and_audit(AuditQuery {
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

/// The emulator does not hold a session to its declared length; wharf
/// checks each part's own: a short part is refused before anything is
/// joined, the upload stays open, and the part sent again publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_of_the_wrong_length_is_refused_and_can_be_sent_again() {
    let g = Gcs::start("").await;
    let (_, _, visitor) = request(&g.gw, &[]);
    visitor.open().await;
    let data = common::pattern(9 * MB, 8);
    let sha = common::sha256(&data);
    let (_, v) = visitor.begin("c.bin", data.len()).await;
    let key = v["key"].as_str().unwrap().to_string();
    let part_size = v["part_size"].as_u64().unwrap() as usize;
    visitor.put_parts(&key, &data, part_size, &[2]).await;
    let url = visitor.urls(&key, &[1]).await.remove(0).1;
    assert_eq!(visitor.put(&url, &data[..1000]).await.0, 200);
    let (status, v) = visitor.complete(&key, &sha).await;
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("part 1 has 1000 bytes"),
        "{v}"
    );
    assert_eq!(g.gw.stored_sha("/alice/in/c.bin").await, None);
    visitor.put_parts(&key, &data, part_size, &[1]).await;
    let (status, v) = visitor.complete(&key, &sha).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(g.gw.stored_sha("/alice/in/c.bin").await, Some(sha));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_hash_publishes_nothing_and_leaves_no_object() {
    let g = Gcs::start("").await;
    let (id, _, visitor) = request(&g.gw, &["--max-files", "2"]);
    visitor.open().await;
    let data = common::pattern(9 * MB, 3);
    let (status, v) = visitor.begin("a.bin", data.len()).await;
    assert_eq!(status, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let part_size = v["part_size"].as_u64().unwrap() as usize;
    visitor.put_parts(&key, &data, part_size, &[1, 2]).await;
    assert_eq!(uses(&g.gw, &id), "1/2");

    let wrong = common::sha256(b"something else");
    let (status, v) = visitor.complete(&key, &wrong).await;
    assert_eq!(status, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("SHA-256"), "{v}");

    assert_eq!(g.gw.stored_sha("/alice/in/a.bin").await, None);
    let objects = g.objects().await;
    assert!(
        objects.is_empty(),
        "nothing stays in the bucket: {objects:?}"
    );
    assert_eq!(uses(&g.gw, &id), "0/2", "the use is given back");
    let (_, v) = visitor
        .call(reqwest::Method::GET, &format!("/{key}"), None)
        .await;
    assert_eq!(v["state"], "failed", "{v}");
}

/// A session is bound to its object when wharf starts it: upload A's part
/// URL with B's key written into it still writes A's part (the emulator,
/// like GCS, goes by the session id), so it cannot give B a part; a made-up
/// session id writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_url_works_only_for_its_own_upload() {
    let g = Gcs::start("").await;
    let (_, _, visitor) = request(&g.gw, &["--max-files", "2"]);
    visitor.open().await;
    let (_, a) = visitor.begin("a.bin", 1000).await;
    let (_, b) = visitor.begin("b.bin", 1000).await;
    let (a, b) = (a["key"].as_str().unwrap(), b["key"].as_str().unwrap());
    let url = visitor.urls(a, &[1]).await.remove(0).1;
    let part = common::pattern(1000, 9);

    let (head, session) = url.rsplit_once("upload_id=").unwrap();
    let made_up = format!("{head}upload_id={}", "0".repeat(session.len()));
    assert_ne!(made_up, url);
    assert_eq!(visitor.put(&made_up, &part).await.0, 404, "no such session");

    let moved = url.replace(a, b);
    assert_ne!(moved, url);
    let (status, text) = visitor.put(&moved, &part).await;
    assert_eq!(status, 200, "{text}");
    assert!(g.part_objects(b).await.is_empty(), "nothing reached b");
    assert_eq!(g.part_objects(a).await.len(), 1, "a's part arrived");
    let (_, v) = visitor
        .call(reqwest::Method::GET, &format!("/{b}"), None)
        .await;
    assert_eq!(v["done"], json!([]), "{v}");
    let (status, v) = visitor.complete(b, &common::sha256(&part)).await;
    assert_eq!(status, 422, "b has no part: {v}");
    let (status, v) = visitor.complete(a, &common::sha256(&part)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        g.gw.stored_sha("/alice/in/a.bin").await,
        Some(common::sha256(&part))
    );
    assert_eq!(g.gw.stored_sha("/alice/in/b.bin").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_removes_an_abandoned_uploads_parts() {
    let mut g = Gcs::start("[links]\nupload_abandon = \"1s\"\n").await;
    let (id, _, visitor) = request(&g.gw, &[]);
    visitor.open().await;
    let data = common::pattern(9 * MB, 5);
    let (status, v) = visitor.begin("left.bin", data.len()).await;
    assert_eq!(status, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    visitor
        .put_parts(&key, &data, v["part_size"].as_u64().unwrap() as usize, &[1])
        .await;
    assert_eq!(g.part_objects(&key).await.len(), 1);
    assert_eq!(uses(&g.gw, &id), "1");

    // The sweep runs at start: restart the gateway once the upload is stale.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    g.gw.running.take().unwrap().shutdown().await;
    let app = wharf::app::App::open(g.gw.config.clone()).unwrap();
    g.gw.running = Some(app.start().await.unwrap());

    let deadline = Instant::now() + Duration::from_secs(20);
    while !g.part_objects(&key).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the parts are still there: {:?}",
            g.objects().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!g
        .objects()
        .await
        .iter()
        .any(|o| o.contains(".wharf-partial")));
    let deadline = Instant::now() + Duration::from_secs(10);
    while uses(&g.gw, &id) != "0" {
        assert!(Instant::now() < deadline, "{}", uses(&g.gw, &id));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Cancelling a direct upload removes its part objects and gives the use
/// back; another visitor of the link can neither see nor cancel it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_removes_the_parts() {
    let g = Gcs::start("").await;
    let (id, token, visitor) = request(&g.gw, &["--max-files", "3"]);
    visitor.open().await;
    let data = common::pattern(9 * MB, 9);
    let (_, v) = visitor.begin("gone.bin", data.len()).await;
    let key = v["key"].as_str().unwrap().to_string();
    visitor
        .put_parts(&key, &data, v["part_size"].as_u64().unwrap() as usize, &[1])
        .await;
    assert_eq!(g.part_objects(&key).await.len(), 1);
    assert_eq!(uses(&g.gw, &id), "1/3");

    let other = Visitor::new(&g.gw.url(&token));
    other.open().await;
    let (status, _) = other
        .call(reqwest::Method::DELETE, &format!("/{key}"), None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(g.part_objects(&key).await.len(), 1);

    let (status, _) = visitor
        .call(reqwest::Method::DELETE, &format!("/{key}"), None)
        .await;
    assert_eq!(status, 204);
    assert!(g.objects().await.is_empty(), "{:?}", g.objects().await);
    assert_eq!(uses(&g.gw, &id), "0/3");
    let (_, v) = visitor
        .call(reqwest::Method::GET, &format!("/{key}"), None)
        .await;
    assert_eq!(v["state"], "cancelled", "{v}");
}

/// The printed GCS rule allows the page's PUT; the emulator (which takes no
/// bucket CORS rule and allows every origin) answers the preflight of a
/// part URL from wharf's origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_may_put_parts_across_origins() {
    let g = Gcs::start("").await;
    let origin = format!("http://{}", g.gw.http_addr());
    let rule: Value =
        serde_json::from_str(&g.gw.cli(&["connector", "cors", "gcs", "--origin", &origin]))
            .unwrap();
    assert_eq!(rule[0]["origin"], json!([origin]));
    assert!(
        rule[0]["method"]
            .as_array()
            .unwrap()
            .contains(&json!("PUT")),
        "{rule}"
    );
    let (_, _, visitor) = request(&g.gw, &[]);
    visitor.open().await;
    let (_, v) = visitor.begin("a.bin", 1000).await;
    let key = v["key"].as_str().unwrap();
    let url = visitor.urls(key, &[1]).await.remove(0).1;
    let r = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", &origin)
        .header("Access-Control-Request-Method", "PUT")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().contains_key("access-control-allow-origin"));
}

/// Object names in the sessions wharf starts are percent-encoded like
/// OpenDAL's: a connector root with a space and an umlaut works, and the
/// parts land under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_root_with_a_space_and_an_umlaut_works() {
    let g = Gcs::start_at(Some("/Ablage März"), "").await;
    let (_, _, visitor) = request(&g.gw, &[]);
    visitor.open().await;
    let data = common::pattern(1000, 6);
    let (status, v) = visitor.begin("y z.bin", data.len()).await;
    assert_eq!(status, 201, "{v}");
    let key = v["key"].as_str().unwrap();
    visitor.put_parts(key, &data, 1000, &[1]).await;
    let parts = g.objects().await;
    assert_eq!(
        parts,
        [format!(
            "Ablage März/.wharf-partial/direct/{key}.parts/00001"
        )]
    );
    let (status, v) = visitor.complete(key, &common::sha256(&data)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(g.objects().await, ["Ablage März/alice/in/y z.bin"]);
    assert_eq!(
        g.gw.stored_sha("/alice/in/y z.bin").await,
        Some(common::sha256(&data))
    );
}

/// Files over 32 parts (256 MiB) are joined in rounds: GCS composes at most
/// 32 objects per call. 70 small part objects of an upload are listed,
/// joined in order (the staging object's SHA-256 is theirs end to end), and
/// nothing but the staging object is left: no intermediate object (OpenDAL's
/// own rounds would leave them under `__opendal/compose/` at the root, in
/// users' view, on this emulator).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_32_parts_are_joined_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, options) = common::gcs_server(tmp.path());
    let spec = wharf_connectors::ConnectorSpec {
        name: "gcs".into(),
        scheme: "gcs".into(),
        options,
    };
    let mut connector =
        wharf_connectors::build(&spec, &wharf_connectors::Tuning::default()).unwrap();
    connector.direct_upload = Some(wharf_connectors::direct_upload(&spec).unwrap());
    let backend = common::Backend {
        connector: Arc::new(connector),
        server: None,
        dir: None,
    };
    let vfs = common::vfs_on(&backend);
    let place = vfs.direct_place_named("gcs").unwrap();
    let op = backend.connector.operator.clone();
    let key = "k0123";
    let mut whole = Vec::new();
    for n in 1..=70u64 {
        let bytes = common::pattern(1000 + n as usize, n);
        op.write(
            &format!(".wharf-partial/direct/{key}.parts/{n:05}"),
            bytes.clone(),
        )
        .await
        .unwrap();
        whole.extend_from_slice(&bytes);
    }
    let parts = place.parts(key, "gcs").await.unwrap().unwrap();
    assert_eq!(parts.len(), 70);
    assert_eq!(parts[69].size, 1070);
    place.complete(key, "gcs", &parts).await.unwrap();
    let (size, sha) = place
        .hash_staged(key, &wharf::budget::Budget::default())
        .await
        .unwrap();
    assert_eq!(size, whole.len() as u64);
    assert_eq!(sha, common::sha256(&whole));
    let left: Vec<String> = op
        .list_with("")
        .recursive(true)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path().to_string())
        .filter(|p| !p.ends_with('/'))
        .collect();
    assert_eq!(left, [format!(".wharf-partial/direct/{key}")]);
}
