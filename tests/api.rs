//! The admin HTTP API against the real server, with keys made by the real
//! `wharf apikey` binary: every endpoint, keys that are refused (missing,
//! malformed, unknown, revoked, disabled account, banned address), other users'
//! links, bad JSON, pagination, a multipart send downloaded through its URL,
//! shares, regenerate and resend, the audit rows, that no secret is ever
//! answered, and that the router and the OpenAPI document agree.

mod common;

use std::sync::Mutex;

use common::gateway::Gateway;
use common::{pattern, sha256};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Api {
    gw: Gateway,
    http: reqwest::Client,
    /// Every body the API answered, for the check that no secret is in any.
    seen: Mutex<Vec<String>>,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    json: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or_default()
    }
}

impl Api {
    /// A gateway with users alice and bob (files under their homes), carol
    /// (no http), and the first-start admin.
    async fn start(extra: &str) -> Api {
        let gw = Gateway::start("fs", extra).await;
        gw.add_user("alice", "/alice", "all", Some("pw-a"), None);
        gw.add_user("bob", "/bob", "all", Some("pw-b"), None);
        gw.cli(&[
            "user",
            "add",
            "carol",
            "--home",
            "/carol",
            "--protocols",
            "sftp",
            "--generate-password",
        ]);
        let files = gw.config.data_dir.join("files");
        std::fs::create_dir_all(files.join("alice/reports")).unwrap();
        std::fs::create_dir_all(files.join("bob")).unwrap();
        std::fs::write(files.join("alice/reports/q3.txt"), b"third quarter").unwrap();
        std::fs::write(files.join("alice/notes.txt"), b"notes of alice").unwrap();
        Api {
            gw,
            // No idle connections: a stopping gateway need not wait for them.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            seen: Mutex::new(Vec::new()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gw.http_addr())
    }

    /// A new API key of `user`, made with `wharf apikey create`.
    fn key(&self, user: &str) -> String {
        let out = self
            .gw
            .cli(&["apikey", "create", "--user", user, "--name", "tests"]);
        key_in(&out)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        self.seen.lock().unwrap().push(text.clone());
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
        };
        Reply {
            status,
            headers,
            json,
        }
    }

    async fn call(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Reply {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(Method::GET, path, key, None).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::POST, path, key, Some(body)).await
    }

    /// POST with a raw body (for bad JSON).
    async fn post_raw(&self, path: &str, key: &str, body: &str) -> Reply {
        let req = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(req).await
    }

    /// Creates a link as `key`, asserting 201; returns (id, token).
    async fn create(&self, key: &str, body: Value) -> (String, String) {
        let r = self.post("/api/v1/links", key, body).await;
        assert_eq!(r.status, 201, "{}", r.json);
        (
            r.json["link"]["id"].as_str().unwrap().to_string(),
            token_of(&r.json["url"]),
        )
    }

    fn bodies(&self) -> String {
        self.seen.lock().unwrap().join("\n")
    }
}

fn key_in(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("wharf_"))
        .unwrap_or_else(|| panic!("no key in {out}"))
        .to_string()
}

fn token_of(url: &Value) -> String {
    url.as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Downloads the first file of an open link the way a visitor does.
async fn download_first(gw: &Gateway, token: &str) -> Vec<u8> {
    let c = cookie_client();
    let url = gw.url(token);
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let r = c
        .get(format!("{url}{}", common::file_path(&page)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap().to_vec()
}

async fn status_of(url: &str) -> u16 {
    reqwest::get(url).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_are_missing_malformed_unknown_or_revoked_get_401() {
    let mut api = Api::start("[defender]\nmax_failures = 100\n").await;
    let alice = api.key("alice");
    assert_eq!(api.get("/api/v1/users", &alice).await.status, 200);

    let r = api.send(api.http.get(api.url("/api/v1/links"))).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "unauthorized");
    assert_eq!(r.headers["www-authenticate"], "Bearer");

    let unknown = format!("wharf_abcdefgh_{}", "0".repeat(64));
    let wrong_secret = format!("{}{}", &alice[..15], "f".repeat(64));
    for bad in ["nope", "wharf_x_y", unknown.as_str(), wrong_secret.as_str()] {
        let r = api.get("/api/v1/links", bad).await;
        assert_eq!(r.status, 401, "{bad}: {}", r.json);
        assert_eq!(r.code(), "unauthorized");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
    }
    // Basic auth instead of a bearer key.
    let r = api
        .send(
            api.http
                .get(api.url("/api/v1/links"))
                .basic_auth("alice", Some("pw-a")),
        )
        .await;
    assert_eq!(r.status, 401);

    let prefix = &alice[6..14];
    api.gw.cli(&["apikey", "revoke", prefix]);
    let r = api.get("/api/v1/links", &alice).await;
    assert_eq!(r.status, 401, "a revoked key: {}", r.json);

    let bob = api.key("bob");
    api.gw.cli(&["user", "disable", "bob"]);
    assert_eq!(
        api.get("/api/v1/links", &bob).await.status,
        401,
        "a disabled account"
    );
    api.gw.cli(&["user", "enable", "bob"]);
    assert_eq!(api.get("/api/v1/links", &bob).await.status, 200);

    let carol = api.key("carol");
    let r = api.get("/api/v1/links", &carol).await;
    assert_eq!(r.status, 403, "no http: {}", r.json);
    assert_eq!(r.code(), "forbidden");

    // Each refusal is audited with its reason (and the key, never its secret).
    let rows = api
        .gw
        .stop_and_audit(wharf::store::AuditQuery {
            action: Some("login_failed".into()),
            ..Default::default()
        })
        .await;
    let details: Vec<String> = rows.iter().filter_map(|e| e.detail.clone()).collect();
    for why in [
        "malformed key",
        "unknown key",
        "wrong key",
        "revoked key",
        "account disabled",
    ] {
        assert!(
            details.iter().any(|d| d.contains(why)),
            "{why} in {details:?}"
        );
    }
    assert!(!details.iter().any(|d| d.contains(&alice[15..])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_lock_the_address_out_with_429() {
    let api = Api::start("[defender]\nmax_failures = 3\n").await;
    let alice = api.key("alice");
    let bad = format!("wharf_abcdefgh_{}", "0".repeat(64));
    for _ in 0..3 {
        assert_eq!(api.get("/api/v1/links", &bad).await.status, 401);
    }
    let r = api.get("/api/v1/links", &alice).await;
    assert_eq!(
        r.status, 429,
        "even a good key from a banned address: {}",
        r.json
    );
    assert_eq!(r.code(), "rate_limited");
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    // The document needs no key and stays readable.
    assert_eq!(status_of(&api.url("/api/v1/openapi.json")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_created_shown_changed_and_deleted_without_answering_secrets() {
    let api = Api::start("").await;
    let alice = api.key("alice");
    let password = "correct horse battery staple";

    // Share from a path as alice sees it; the URL opens it.
    let r = api
        .post(
            "/api/v1/links",
            &alice,
            json!({"kind": "share", "paths": ["/reports/q3.txt"], "title": "Q3", "expires": "3d"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let share = r.json["link"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.headers["location"], format!("/api/v1/links/{share}"));
    assert_eq!(r.json["link"]["kind"], "share");
    assert_eq!(r.json["link"]["status"], "active");
    assert_eq!(r.json["link"]["owner"], "alice");
    assert_eq!(r.json["link"]["files"][0]["name"], "q3.txt");
    let share_token = token_of(&r.json["url"]);
    assert_eq!(
        download_first(&api.gw, &share_token).await,
        b"third quarter"
    );

    // Send from a path, with a password and rules.
    let r = api
        .post(
            "/api/v1/links",
            &alice,
            json!({
                "kind": "send", "paths": ["/notes.txt"], "name": "notes for dan",
                "password": password, "max_uses": 2, "expires": "never",
                "allowed_emails": ["Dan@Example.org"], "recipients": ["dan@example.org"]
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let send = r.json["link"].clone();
    let send_id = send["id"].as_str().unwrap().to_string();
    let send_token = token_of(&r.json["url"]);
    assert_eq!(send["has_password"], true);
    assert_eq!(send["max_uses"], 2);
    assert_eq!(send["uses"], 0);
    assert_eq!(send["expires_at"], Value::Null);
    assert_eq!(send["allowed_emails"], json!(["dan@example.org"]));
    assert_eq!(send["files"][0]["sha256"], sha256(b"notes of alice"));
    assert_eq!(r.json["mail_error"], Value::Null);

    // Show, list.
    let r = api.get(&format!("/api/v1/links/{send_id}"), &alice).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["name"], "notes for dan");
    assert_eq!(
        token_of(&r.json["url"]),
        send_token,
        "the owner can copy the URL again"
    );
    let r = api.get("/api/v1/links", &alice).await;
    let ids: Vec<&str> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [send_id.as_str(), share.as_str()], "newest first");
    assert_eq!(r.json["next_cursor"], Value::Null);

    // Extend.
    let r = api
        .post(
            &format!("/api/v1/links/{share}/extend"),
            &alice,
            json!({"expires": "2099-12-31"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["expires_at"], "2099-12-31T23:59:59Z");
    let r = api
        .post(
            &format!("/api/v1/links/{share}/extend"),
            &alice,
            json!({"expires": "yesterday"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "invalid_request");

    // Regenerate: the old URL is gone, the new one works.
    let r = api
        .post(
            &format!("/api/v1/links/{share}/regenerate"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let new_token = token_of(&r.json["url"]);
    assert_ne!(new_token, share_token);
    assert_eq!(status_of(&api.gw.url(&share_token)).await, 404);
    assert_eq!(download_first(&api.gw, &new_token).await, b"third quarter");

    // Resend: mails the same URL to the recipients again.
    let outbox = api.gw.config.data_dir.join("outbox");
    let mails_before = std::fs::read_dir(&outbox).unwrap().count();
    let r = api
        .call(
            Method::POST,
            &format!("/api/v1/links/{send_id}/resend"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json, json!({"mailed_to": ["dan@example.org"]}));
    let mails: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        // Long lines are quoted-printable: undo the soft line breaks.
        .map(|m| m.replace("=\r\n", "").replace("=\n", ""))
        .collect();
    assert_eq!(mails.len(), mails_before + 1, "the resend mailed once");
    let mailed_tokens: Vec<String> = mails
        .iter()
        .filter_map(|m| m.split("/l/").nth(1))
        .map(|t| t.chars().take(64).collect())
        .collect();
    assert!(mailed_tokens.contains(&send_token), "the creation mail");
    assert_eq!(
        mailed_tokens.iter().filter(|t| **t == send_token).count(),
        2,
        "the same URL mailed twice: {mailed_tokens:?}"
    );
    assert_eq!(
        status_of(&api.gw.url(&send_token)).await,
        200,
        "still works"
    );
    // A link without recipients has nobody to mail.
    let r = api
        .post(&format!("/api/v1/links/{share}/resend"), &alice, json!({}))
        .await;
    assert_eq!(r.status, 400);

    // Revoke: the link ends; revoking again changes nothing.
    let r = api
        .call(
            Method::POST,
            &format!("/api/v1/links/{share}/revoke"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["status"], "revoked");
    assert!(r.json["ended_at"].is_string());
    assert_eq!(status_of(&api.gw.url(&new_token)).await, 410);
    let r = api
        .post(&format!("/api/v1/links/{share}/revoke"), &alice, json!({}))
        .await;
    assert_eq!(r.status, 200);
    let r = api
        .post(
            &format!("/api/v1/links/{share}/extend"),
            &alice,
            json!({"expires": "1d"}),
        )
        .await;
    assert_eq!(r.status, 400, "a revoked link cannot be extended");

    // Delete: for administrators only; then gone, and its copies too.
    let r = api
        .call(
            Method::DELETE,
            &format!("/api/v1/links/{send_id}"),
            &alice,
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"));
    assert_eq!(status_of(&api.gw.url(&send_token)).await, 200);
    let admin = api.key("admin");
    let r = api
        .call(
            Method::DELETE,
            &format!("/api/v1/links/{send_id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.json, Value::Null);
    let r = api.get(&format!("/api/v1/links/{send_id}"), &alice).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "not_found");
    let copies = api.gw.config.data_dir.join("transfers").join(&send_id);
    assert!(!copies.exists(), "{} is left", copies.display());

    // No secret in any answer: the password, its hash, tokens' hashes, keys.
    let all = api.bodies();
    let store = api.gw.db.blocking();
    assert!(!all.contains(password));
    assert!(!all.contains("$argon2"));
    assert!(!all.contains("password_hash") && !all.contains("token_hash"));
    for t in [&share_token, &new_token, &send_token] {
        assert!(!all.contains(&wharf::links::token::hash(t)));
    }
    assert!(!all.contains(&alice[15..]), "the key's secret");
    for k in store.api_key_list(None).unwrap() {
        assert!(!all.contains(&k.key_hash));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_users_links_are_not_found_and_admins_see_everything() {
    let api = Api::start("").await;
    let alice = api.key("alice");
    let bob = api.key("bob");
    let admin = api.key("admin");
    let (id, _) = api
        .create(&alice, json!({"kind": "share", "paths": ["/notes.txt"]}))
        .await;

    let missing = api.get("/api/v1/links/nosuchlink", &bob).await;
    assert_eq!(missing.status, 404);
    let theirs = api.get(&format!("/api/v1/links/{id}"), &bob).await;
    assert_eq!(theirs.status, 404);
    assert_eq!(theirs.code(), "not_found");
    assert_eq!(
        theirs.message().replace(&id, "X"),
        missing.message().replace("nosuchlink", "X"),
        "another user's link looks like no link"
    );
    for action in ["extend", "revoke", "regenerate", "resend"] {
        let r = api
            .post(
                &format!("/api/v1/links/{id}/{action}"),
                &bob,
                json!({"expires": "1d"}),
            )
            .await;
        let want = if action == "extend" { 404 } else { 400 };
        // extend takes `expires`; the others refuse it as an unknown field first.
        assert_eq!(r.status, want, "{action}: {}", r.json);
        let r = api
            .call(
                Method::POST,
                &format!("/api/v1/links/{id}/{action}"),
                &bob,
                (action == "extend").then(|| json!({"expires": "1d"})),
            )
            .await;
        assert_eq!(r.status, 404, "{action}: {}", r.json);
    }
    let r = api
        .call(Method::DELETE, &format!("/api/v1/links/{id}"), &bob, None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        api.get("/api/v1/links", &bob).await.json["items"],
        json!([])
    );
    for q in ["owner=alice", "all=true"] {
        let r = api.get(&format!("/api/v1/links?{q}"), &bob).await;
        assert_eq!(r.status, 403, "{q}");
    }
    assert_eq!(api.get("/api/v1/links?owner=bob", &bob).await.status, 200);

    // The admin (made at first start) sees and manages anyone's links.
    let r = api.get(&format!("/api/v1/links/{id}"), &admin).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["owner"], "alice");
    let (mine, _) = api
        .create(&admin, json!({"kind": "share", "paths": ["/bob"]}))
        .await;
    let all = api.get("/api/v1/links?all=true", &admin).await;
    assert_eq!(all.json["items"].as_array().unwrap().len(), 2);
    let owned = api.get("/api/v1/links?owner=alice", &admin).await;
    assert_eq!(owned.json["items"][0]["id"], id.as_str());
    assert_eq!(owned.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.get("/api/v1/links", &admin).await.json["items"][0]["id"],
        mine.as_str()
    );
    let r = api
        .post(&format!("/api/v1/links/{id}/revoke"), &admin, json!({}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        api.get("/api/v1/links?owner=a&all=true", &admin)
            .await
            .status,
        400
    );

    // Users: admins see all, others themselves; never a hash.
    let r = api.get("/api/v1/users", &bob).await;
    assert_eq!(r.status, 200);
    let names = |r: &Reply| -> Vec<String> {
        r.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&r), ["bob"]);
    assert_eq!(r.json["items"][0]["admin"], false);
    assert_eq!(r.json["items"][0]["has_password"], true);
    let r = api.get("/api/v1/users", &admin).await;
    assert_eq!(names(&r), ["admin", "alice", "bob", "carol"]);
    assert_eq!(r.json["items"][0]["admin"], true);
    let all = api.bodies();
    assert!(!all.contains("$argon2") && !all.contains("password_hash"));

    // A share needs the read permission (bob may still create links).
    api.gw.cli(&["user", "perms", "bob", "list,share"]);
    let r = api
        .post(
            "/api/v1/links",
            &bob,
            json!({"kind": "share", "paths": ["/"]}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.json);
    assert!(r.message().contains("read"), "{}", r.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_json_unknown_fields_and_bad_requests_get_400_with_a_message() {
    let api = Api::start("").await;
    let alice = api.key("alice");

    let r = api
        .post_raw("/api/v1/links", &alice, "{\"kind\": \"share\",")
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "bad_json");
    assert!(r.message().contains("line 1 column"), "{}", r.message());

    let r = api
        .post(
            "/api/v1/links",
            &alice,
            json!({"kind": "share", "paths": ["/notes.txt"], "colour": "red"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "invalid_request");
    assert!(
        r.message().contains("unknown field `colour`"),
        "{}",
        r.message()
    );

    let r = api
        .post(
            "/api/v1/links",
            &alice,
            json!({"kind": "share", "paths": "/notes.txt"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.message().contains("expected a sequence"),
        "{}",
        r.message()
    );

    let r = api
        .post("/api/v1/links", &alice, json!({"kind": "zip"}))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "unsupported_kind"));
    let r = api
        .post(
            "/api/v1/links",
            &alice,
            json!({"kind": "share", "paths": ["/notes.txt"], "folder": "/in"}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"));
    let r = api
        .post("/api/v1/links", &alice, json!({"kind": "send"}))
        .await;
    assert_eq!(r.status, 400, "a send needs files");
    let r = api
        .post(
            "/api/v1/links",
            &alice,
            json!({"kind": "share", "paths": ["/nope.txt"]}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.json);
    let r = api
        .post(
            "/api/v1/links",
            &alice,
            json!({"kind": "share", "paths": ["/notes.txt"], "max_uses": 0}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"));
    let r = api
        .post(
            "/api/v1/links",
            &alice,
            json!({"kind": "share", "paths": ["/notes.txt"], "recipients": ["not-mail"]}),
        )
        .await;
    assert!(
        r.message().contains("not an e-mail address"),
        "{}",
        r.message()
    );

    let big = format!(
        "{{\"kind\": \"share\", \"title\": \"{}\"}}",
        "x".repeat(70_000)
    );
    let r = api.post_raw("/api/v1/links", &alice, &big).await;
    assert_eq!((r.status.as_u16(), r.code()), (413, "payload_too_large"));

    let (id, _) = api
        .create(&alice, json!({"kind": "share", "paths": ["/notes.txt"]}))
        .await;
    let r = api
        .post(
            &format!("/api/v1/links/{id}/extend"),
            &alice,
            json!({"expires": 7}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("invalid type"), "{}", r.message());
    let r = api
        .post_raw(&format!("/api/v1/links/{id}/extend"), &alice, "")
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "bad_json"));
    let r = api
        .post(
            &format!("/api/v1/links/{id}/revoke"),
            &alice,
            json!({"now": true}),
        )
        .await;
    assert_eq!(r.status, 400);

    let r = api.get("/api/v1/links?limt=5", &alice).await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("limt"));
    for q in ["limit=0", "limit=201", "cursor=garbage", "all=maybe"] {
        assert_eq!(
            api.get(&format!("/api/v1/links?{q}"), &alice).await.status,
            400,
            "{q}"
        );
    }
    assert_eq!(
        api.get("/api/v1/audit?since=soon", &alice).await.status,
        400
    );

    let r = api
        .call(Method::PUT, &format!("/api/v1/links/{id}"), &alice, None)
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (405, "method_not_allowed"));
    assert_eq!(r.headers["allow"], "GET, PATCH, DELETE");
    let r = api.get("/api/v1/nothing", &alice).await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_walks_every_link_exactly_once() {
    let api = Api::start("").await;
    let alice = api.key("alice");
    let mut made = Vec::new();
    for i in 0..7 {
        let (id, _) = api
            .create(
                &alice,
                json!({"kind": "share", "paths": ["/notes.txt"], "name": format!("n{i}")}),
            )
            .await;
        made.push(id);
    }
    let bob = api.key("bob");
    api.create(&bob, json!({"kind": "share", "paths": ["/"]}))
        .await;

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/links?limit=3&cursor={c}"),
            None => "/api/v1/links?limit=3".to_string(),
        };
        let r = api.get(&path, &alice).await;
        assert_eq!(r.status, 200, "{}", r.json);
        let items = r.json["items"].as_array().unwrap();
        pages.push(items.len());
        seen.extend(items.iter().map(|l| l["id"].as_str().unwrap().to_string()));
        match r.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, [3, 3, 1]);
    made.reverse();
    assert_eq!(seen, made, "newest first, each once, only alice's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_send_streams_files_that_download_with_the_same_sha256() {
    let api = Api::start("").await;
    let alice = api.key("alice");
    let big = pattern(3_000_000, 5);
    let small = b"small file".to_vec();
    let form = reqwest::multipart::Form::new()
        .part(
            "link",
            reqwest::multipart::Part::text(
                json!({"kind": "send", "title": "uploaded", "max_uses": 1}).to_string(),
            )
            .mime_str("application/json")
            .unwrap(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(big.clone()).file_name("big data.bin"),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(small.clone()).file_name("C:\\tmp\\small.txt"),
        );
    let r = api
        .send(
            api.http
                .post(api.url("/api/v1/links"))
                .bearer_auth(&alice)
                .multipart(form),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let files = r.json["link"]["files"].as_array().unwrap();
    let find = |name: &str| files.iter().find(|f| f["name"] == name).unwrap().clone();
    assert_eq!(find("big data.bin")["sha256"], sha256(&big));
    assert_eq!(find("big data.bin")["size"], big.len());
    assert_eq!(find("small.txt")["sha256"], sha256(&small));
    assert_eq!(r.json["link"]["status"], "active");
    let id = r.json["link"]["id"].as_str().unwrap().to_string();
    let token = token_of(&r.json["url"]);
    // Files are listed by name: "big data.bin" comes first.
    let got = download_first(&api.gw, &token).await;
    assert_eq!(sha256(&got), sha256(&big));
    let shown = api.get(&format!("/api/v1/links/{id}"), &alice).await;
    assert_eq!(shown.json["uses"], 1);
    assert_eq!(shown.json["status"], "exhausted");

    // Paths and uploads in one link; the link part must come first.
    let form = reqwest::multipart::Form::new()
        .text(
            "link",
            json!({"kind": "send", "paths": ["/notes.txt"]}).to_string(),
        )
        .part(
            "f",
            reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("x.txt"),
        );
    let r = api
        .send(
            api.http
                .post(api.url("/api/v1/links"))
                .bearer_auth(&alice)
                .multipart(form),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["link"]["files"].as_array().unwrap().len(), 2);

    // Failures leave nothing: a duplicate name after a complete file, a part
    // without a file name, files before the link part, a share with files.
    let links_before = api.get("/api/v1/links", &alice).await.json["items"]
        .as_array()
        .unwrap()
        .len();
    let bad_forms = [
        reqwest::multipart::Form::new()
            .text("link", json!({"kind": "send"}).to_string())
            .part(
                "a",
                reqwest::multipart::Part::bytes(big.clone()).file_name("same.bin"),
            )
            .part(
                "b",
                reqwest::multipart::Part::bytes(small.clone()).file_name("same.bin"),
            ),
        reqwest::multipart::Form::new()
            .text("link", json!({"kind": "send"}).to_string())
            .part(
                "a",
                reqwest::multipart::Part::bytes(small.clone()).file_name("ok.bin"),
            )
            .text("comment", "not a file"),
        reqwest::multipart::Form::new()
            .part(
                "a",
                reqwest::multipart::Part::bytes(small.clone()).file_name("a.bin"),
            )
            .text("link", json!({"kind": "send"}).to_string()),
        reqwest::multipart::Form::new()
            .text(
                "link",
                json!({"kind": "share", "paths": ["/notes.txt"]}).to_string(),
            )
            .part(
                "a",
                reqwest::multipart::Part::bytes(small.clone()).file_name("a.bin"),
            ),
        reqwest::multipart::Form::new().text("link", json!({"kind": "send"}).to_string()),
        reqwest::multipart::Form::new()
            .text("link", "{not json")
            .part(
                "a",
                reqwest::multipart::Part::bytes(small.clone()).file_name("a.bin"),
            ),
    ];
    for form in bad_forms {
        let r = api
            .send(
                api.http
                    .post(api.url("/api/v1/links"))
                    .bearer_auth(&alice)
                    .multipart(form),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.json);
        assert!(!r.message().is_empty());
    }
    let links_after = api.get("/api/v1/links", &alice).await.json["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(links_after, links_before, "no link left behind");
    let transfers: Vec<String> = std::fs::read_dir(api.gw.config.data_dir.join("transfers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(
        transfers.len(),
        2,
        "only the two links' copies: {transfers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_audited_and_users_read_only_their_part() {
    let api = Api::start("").await;
    let alice = api.key("alice");
    let bob = api.key("bob");
    let admin = api.key("admin");
    let (id, _) = api
        .create(&alice, json!({"kind": "send", "paths": ["/notes.txt"]}))
        .await;
    api.post(
        &format!("/api/v1/links/{id}/extend"),
        &alice,
        json!({"expires": "2d"}),
    )
    .await;
    api.post(&format!("/api/v1/links/{id}/regenerate"), &alice, json!({}))
        .await;
    api.post(&format!("/api/v1/links/{id}/revoke"), &admin, json!({}))
        .await;
    // A refused change is audited too.
    api.post(&format!("/api/v1/links/{id}/revoke"), &bob, json!({}))
        .await;
    let (bobs, _) = api
        .create(&bob, json!({"kind": "share", "paths": ["/"]}))
        .await;

    let r = api
        .get(&format!("/api/v1/audit?path=link:{id}"), &alice)
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let rows = r.json["items"].as_array().unwrap();
    let actions: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("link_revoke", "bob", "denied"),
            ("link_revoke", "admin", "ok"),
            ("link_regenerate", "alice", "ok"),
            ("link_extend", "alice", "ok"),
            ("link_create", "alice", "ok"),
        ]
    );
    let alice_prefix = &alice[6..14];
    let create = &rows[4];
    assert_eq!(create["protocol"], "http");
    assert!(create["remote"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(create["detail"], format!("api key {alice_prefix}; send"));
    assert!(create["time"].as_str().unwrap().ends_with('Z'));

    // The copy of /notes.txt was read as alice, over http (that row comes
    // through the audit queue, so it may take a moment).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let r = loop {
        let r = api.get("/api/v1/audit?action=download", &alice).await;
        if !r.json["items"].as_array().unwrap().is_empty() {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "no download row");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(r.json["items"][0]["path"], "/notes.txt");
    assert_eq!(r.json["items"][0]["actor"], "alice");
    assert_eq!(r.json["items"][0]["protocol"], "http");

    // Bob sees his own doings (his refused revoke, his link), not alice's link.
    let r = api.get("/api/v1/audit", &bob).await;
    for e in r.json["items"].as_array().unwrap() {
        let mine = e["actor"] == "bob" || e["path"] == format!("link:{bobs}");
        assert!(mine, "bob sees {e}");
    }
    let r = api.get("/api/v1/audit?action=link_create", &bob).await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    // The admin sees everything, page by page.
    let r = api.get("/api/v1/audit?action=link_create", &admin).await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 2);
    let mut ids = Vec::new();
    let mut path = "/api/v1/audit?limit=2&since=1h".to_string();
    loop {
        let r = api.get(&path, &admin).await;
        ids.extend(
            r.json["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match r.json["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/audit?limit=2&since=1h&cursor={c}"),
            None => break,
        }
    }
    // The pages' own reads are audited nowhere, so one big page sees the same rows.
    let whole = api.get("/api/v1/audit?limit=200&since=1h", &admin).await;
    let once: Vec<i64> = whole.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, once, "the pages hold every row once, in order");
    assert!(ids.len() >= 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_and_the_openapi_document_agree() {
    let api = Api::start("").await;
    let alice = api.key("alice");
    let r = reqwest::get(api.url("/api/v1/openapi.json")).await.unwrap();
    assert_eq!(r.status(), 200, "no key needed");
    assert_eq!(r.headers()["content-type"], "application/json");
    let served = r.text().await.unwrap();
    assert_eq!(
        served,
        std::fs::read_to_string("docs/openapi.json").unwrap()
    );
    assert_eq!(served, wharf::api::OPENAPI);

    // Every documented operation is answered by the router...
    let documented = wharf::api::documented_operations();
    assert!(!documented.is_empty());
    for (method, path) in &documented {
        let path = path.replace("{id}", "nosuchlink");
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let r = api.call(m, &path, &alice, None).await;
        assert_ne!(r.status, 405, "{method} {path}");
        assert!(
            !r.message().starts_with("no such endpoint"),
            "{method} {path} is documented but not routed"
        );
    }
    // ...and every route is documented.
    let mut routes: Vec<(String, String)> = wharf::api::ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(routes, documented);
    // What is neither is not answered.
    let r = api.get("/api/v1/keys", &alice).await;
    assert!(r.message().starts_with("no such endpoint"), "{}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apikey_cli_creates_once_lists_and_revokes_and_stores_only_a_hash() {
    let api = Api::start("").await;
    let gw = &api.gw;
    let out = gw.cli(&[
        "apikey",
        "create",
        "--user",
        "alice",
        "--name",
        "backup job",
    ]);
    let key = key_in(&out);
    let prefix = key[6..14].to_string();
    assert!(
        out.contains(&format!("created API key {prefix} for alice (backup job)")),
        "{out}"
    );
    assert_eq!(key.len(), "wharf_".len() + 8 + 1 + 64);

    let list = gw.cli(&["apikey", "list"]);
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("{list}"))
        .split_whitespace()
        .collect();
    assert_eq!(&row[..4], [prefix.as_str(), "backup", "job", "alice"]);
    assert_eq!(row[5..], ["-", "-"], "never used, not revoked: {list}");
    assert!(!list.contains(&key[15..]), "the key is never listed");

    // Only the hash is stored: the secret is nowhere in the database files.
    for name in ["wharf.db", "wharf.db-wal"] {
        let path = gw.config.data_dir.join(name);
        if let Ok(bytes) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&key[15..]), "secret in {}", path.display());
        }
    }

    assert_eq!(api.get("/api/v1/users", &key).await.status, 200);
    let list = gw.cli(&["apikey", "list", "--user", "alice"]);
    let used = list.lines().find(|l| l.starts_with(&prefix)).unwrap();
    assert!(!used.contains(" - "), "last used is set: {used}");
    assert!(gw.cli(&["apikey", "list", "--user", "bob"]).lines().count() == 1);

    let out = gw.cli(&["apikey", "revoke", &prefix]);
    assert!(out.contains(&format!("revoked API key {prefix}")), "{out}");
    let list = gw.cli(&["apikey", "list"]);
    let revoked = list.lines().find(|l| l.starts_with(&prefix)).unwrap();
    assert!(revoked.trim_end().ends_with('Z'), "revoked time: {revoked}");
    assert_eq!(api.get("/api/v1/users", &key).await.status, 401);

    let fail = |args: &[&str]| {
        let out = gw.wharf().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(fail(&["apikey", "revoke", "zzzzzzzz"]).contains("no API key"));
    assert!(fail(&["apikey", "create", "--user", "nobody"]).contains("no user named"));

    let audit = gw.cli(&["audit", "--json", "--action", "apikey_create"]);
    assert!(audit.contains(&format!("apikey:{prefix}")), "{audit}");
    let audit = gw.cli(&["audit", "--json", "--action", "apikey_revoke"]);
    assert!(audit.contains(&format!("apikey:{prefix}")), "{audit}");

    // Administrators: the first admin, `user add --admin`, `user admin`.
    let show = gw.cli(&["user", "show", "admin"]);
    assert!(show.lines().any(|l| l == "admin:      yes"), "{show}");
    gw.cli(&[
        "user",
        "add",
        "erin",
        "--home",
        "/erin",
        "--admin",
        "--generate-password",
    ]);
    let list = gw.cli(&["user", "list"]);
    let erin = list.lines().find(|l| l.starts_with("erin ")).unwrap();
    assert!(erin.trim_end().ends_with("yes"), "{erin}");
    gw.cli(&["user", "admin", "erin", "off"]);
    let show = gw.cli(&["user", "show", "erin", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&show).unwrap()["admin"],
        false
    );
    gw.cli(&["user", "admin", "alice", "on"]);
    let alice = api.key("alice");
    assert_eq!(api.get("/api/v1/links?all=true", &alice).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_off_midway_leaves_no_link_and_no_copy() {
    use std::io::Write;

    let api = Api::start("").await;
    let alice = api.key("alice");
    let boundary = "wharf-test-boundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"link\"\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big.bin\"\r\n\r\n",
        json!({"kind": "send"})
    );
    let announced = head.len() + 10_000_000;
    let mut tcp = std::net::TcpStream::connect(api.gw.http_addr()).unwrap();
    write!(
        tcp,
        "POST /api/v1/links HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {announced}\r\n\r\n{head}"
    )
    .unwrap();
    tcp.write_all(&pattern(2_000_000, 3)).unwrap();
    tcp.flush().unwrap();
    // While the bytes stream in, the link is a draft.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = api.get("/api/v1/links", &alice).await;
        if r.json["items"][0]["status"] == "draft" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no draft: {}", r.json);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(tcp);

    let transfers = api.gw.config.data_dir.join("transfers");
    let left = || -> Vec<String> {
        std::fs::read_dir(&transfers)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect()
    };
    loop {
        let r = api.get("/api/v1/links", &alice).await;
        if r.json["items"] == json!([]) && left().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: {} {:?}",
            r.json,
            left()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_links_ask_for_uploads_into_a_folder() {
    let api = Api::start("").await;
    let alice = api.key("alice");
    let r = api
        .post(
            "/api/v1/links",
            &alice,
            json!({
                "kind": "request", "folder": "/incoming/acme", "max_files": 3,
                "max_size": 1000000, "notify": false, "title": "Your invoices"
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let link = &r.json["link"];
    assert_eq!(link["kind"], "request");
    assert_eq!(link["folder"], "/alice/incoming/acme");
    assert_eq!(link["max_uses"], 3);
    assert_eq!(link["max_size"], 1000000);
    assert_eq!(link["notify"], false);
    assert!(
        api.gw
            .config
            .data_dir
            .join("files/alice/incoming/acme")
            .is_dir(),
        "the folder is made"
    );
    assert_eq!(status_of(&api.gw.url(&token_of(&r.json["url"]))).await, 200);
    let id = link["id"].as_str().unwrap();
    let shown = api.get(&format!("/api/v1/links/{id}"), &alice).await;
    assert_eq!(shown.json["folder"], "/alice/incoming/acme");
    assert_eq!(shown.json["files"], json!([]));
    // Other kinds show no request fields.
    let (share, _) = api
        .create(&alice, json!({"kind": "share", "paths": ["/notes.txt"]}))
        .await;
    let shown = api.get(&format!("/api/v1/links/{share}"), &alice).await;
    assert_eq!(shown.json["folder"], Value::Null);

    for bad in [
        json!({"kind": "request"}),
        json!({"kind": "request", "folder": "/in", "paths": ["/notes.txt"]}),
        json!({"kind": "request", "folder": "/in", "max_files": 2, "max_uses": 2}),
        json!({"kind": "request", "folder": "/notes.txt"}),
    ] {
        let r = api.post("/api/v1/links", &alice, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.json);
    }
    api.gw.cli(&["user", "perms", "alice", "list,read,share"]);
    let r = api
        .post(
            "/api/v1/links",
            &alice,
            json!({"kind": "request", "folder": "/in"}),
        )
        .await;
    assert_eq!(r.status, 403, "a request needs write: {}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_edited_with_patch_under_the_policy_and_audited() {
    let mut api = Api::start("[links]\nrequire_password = true\n").await;
    let alice = api.key("alice");
    let bob = api.key("bob");
    let r = api
        .post(
            "/api/v1/links",
            &alice,
            json!({"kind": "share", "paths": ["/notes.txt"], "title": "Notes", "password": "one two"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let id = r.json["link"]["id"].as_str().unwrap().to_string();
    let token = token_of(&r.json["url"]);
    let path = format!("/api/v1/links/{id}");

    // The owner sees the URL again; another user does not see the link.
    let r = api.get(&path, &alice).await;
    assert_eq!(token_of(&r.json["url"]), token);
    assert_eq!(api.get(&path, &bob).await.status, 404);
    let r = api
        .call(Method::PATCH, &path, &bob, Some(json!({"title": "x"})))
        .await;
    assert_eq!(r.status, 404);

    let r = api
        .call(
            Method::PATCH,
            &path,
            &alice,
            Some(json!({
                "title": "Notes v2", "message": "read me", "recipients": ["Dan@Example.org"],
                "password": "three four", "allowed_emails": ["dan@example.org"],
                "max_uses": 3, "expires": "2w"
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["title"], "Notes v2");
    assert_eq!(r.json["recipients"], json!(["dan@example.org"]));
    assert_eq!(r.json["allowed_emails"], json!(["dan@example.org"]));
    assert_eq!(r.json["max_uses"], 3);
    assert_eq!(r.json["has_password"], true);
    assert!(r.json["expires_at"].is_string());
    // The new password opens it; the old one no longer does.
    let c = cookie_client();
    let url = api.gw.url(&token);
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let csrf = |p: &str| {
        let at = p.find("name=\"csrf\" value=\"").unwrap() + 19;
        p[at..].split('"').next().unwrap().to_string()
    };
    let r = c
        .post(format!("{url}/password"))
        .form(&[("csrf", csrf(&page).as_str()), ("password", "one two")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the old password");
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let r = c
        .post(format!("{url}/password"))
        .form(&[("csrf", csrf(&page).as_str()), ("password", "three four")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    // null removes; left out keeps. The policy keeps the password.
    let r = api
        .call(
            Method::PATCH,
            &path,
            &alice,
            Some(json!({"max_uses": null})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["max_uses"], Value::Null);
    assert_eq!(r.json["title"], "Notes v2");
    let r = api
        .call(
            Method::PATCH,
            &path,
            &alice,
            Some(json!({"password": null})),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"));
    assert!(r.message().contains("password"), "{}", r.message());
    for bad in [
        json!({"max_uses": 0}),
        json!({"allowed_emails": ["nope"]}),
        json!({"expires": "yesterday"}),
        json!({"colour": "blue"}),
    ] {
        let r = api
            .call(Method::PATCH, &path, &alice, Some(bad.clone()))
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.json);
    }
    let link = api
        .gw
        .db
        .blocking()
        .link_by_public_id(&id)
        .unwrap()
        .unwrap();
    assert!(link.password_hash.is_some());
    assert_eq!(link.max_uses, None);

    let all = api.bodies();
    assert!(!all.contains("three four") && !all.contains("$argon2"));
    let rows = api
        .gw
        .stop_and_audit(wharf::store::AuditQuery {
            action: Some("link_edit".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    let ok: Vec<String> = rows
        .iter()
        .filter(|e| e.outcome == wharf::audit::Outcome::Ok)
        .map(|e| e.detail.clone().unwrap_or_default())
        .collect();
    assert_eq!(ok.len(), 2, "{rows:?}");
    assert!(ok[1].contains("password changed") && ok[1].contains("usage limit 3"));
    assert!(ok[0].contains("usage limit removed"), "{ok:?}");
    assert!(!format!("{rows:?}").contains("three four"));
    assert!(rows.iter().any(|e| e.outcome != wharf::audit::Outcome::Ok
        && e.detail.as_deref().unwrap_or_default().contains("password")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_links_are_restored_and_deleted_by_administrators_only() {
    let api = Api::start("").await;
    let alice = api.key("alice");
    let admin = api.key("admin");
    let (id, token) = api
        .create(&alice, json!({"kind": "send", "paths": ["/notes.txt"]}))
        .await;
    let r = api
        .post(&format!("/api/v1/links/{id}/revoke"), &alice, json!({}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(status_of(&api.gw.url(&token)).await, 410);
    let copy = api
        .gw
        .config
        .data_dir
        .join("transfers")
        .join(&id)
        .join("notes.txt");
    assert!(copy.exists(), "cancelling keeps the copy");

    let restore = format!("/api/v1/links/{id}/restore");
    let r = api.post(&restore, &alice, json!({})).await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"));
    let r = api
        .call(Method::DELETE, &format!("/api/v1/links/{id}"), &alice, None)
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"));
    assert!(copy.exists());

    let r = api.call(Method::POST, &restore, &admin, None).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["status"], "active");
    assert_eq!(r.json["ended_at"], Value::Null);
    assert_eq!(download_first(&api.gw, &token).await, b"notes of alice");
    // Only a cancelled link can be restored.
    let r = api.post(&restore, &admin, json!({})).await;
    assert_eq!(r.status, 400);

    let r = api
        .call(Method::DELETE, &format!("/api/v1/links/{id}"), &admin, None)
        .await;
    assert_eq!(r.status, 204);
    assert!(!copy.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_contacts_and_link_references_through_the_api() {
    let api = Api::start("").await;
    let alice = api.key("alice");
    let bob = api.key("bob");
    let r = api
        .post(
            "/api/v1/clients",
            &alice,
            json!({ "name": "Acme", "notes": "n" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let acme = r.json["id"].as_i64().unwrap();
    assert_eq!(
        (r.json["owner"].as_str(), r.json["shared"].as_bool()),
        (Some("alice"), Some(false))
    );
    let again = api
        .post("/api/v1/clients", &alice, json!({ "name": "Acme" }))
        .await;
    assert_eq!(again.status, 409, "{}", again.json);
    let r = api
        .post(
            "/api/v1/contacts",
            &alice,
            json!({ "client_id": acme, "name": "Wile", "email": "Wile@acme.example" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let contact = r.json["id"].as_i64().unwrap();
    assert_eq!(r.json["email"], "wile@acme.example");
    let bad = api
        .post(
            "/api/v1/contacts",
            &alice,
            json!({ "client_id": acme, "email": "not an address" }),
        )
        .await;
    assert_eq!(bad.status, 400);
    let r = api
        .get(&format!("/api/v1/contacts?client={acme}"), &alice)
        .await;
    assert_eq!(r.json["items"][0]["name"], "Wile");

    // Bob does not see alice's private client: 404, and he cannot file a link
    // under it.
    assert_eq!(
        api.get(&format!("/api/v1/clients/{acme}"), &bob)
            .await
            .status,
        404
    );
    assert_eq!(
        api.get("/api/v1/clients", &bob).await.json["items"],
        json!([])
    );
    let r = api
        .post(
            "/api/v1/links",
            &bob,
            json!({ "kind": "request", "folder": "/in", "client_id": acme }),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.json);

    // A link carries its client and reference; PATCH changes and removes them.
    let r = api
        .post(
            "/api/v1/links",
            &alice,
            json!({ "kind": "share", "paths": ["/notes.txt"], "client_id": acme,
                    "reference": { "type": "ticket", "value": "OPS-42" } }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let id = r.json["link"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.json["link"]["client_id"], acme);
    assert_eq!(
        r.json["link"]["reference"],
        json!({ "type": "ticket", "value": "OPS-42" })
    );
    // The list filters by client, reference, status and words, in the store.
    let other = api
        .create(&alice, json!({ "kind": "share", "paths": ["/reports"] }))
        .await
        .0;
    let ids = |r: &Reply| -> Vec<String> {
        r.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_string())
            .collect()
    };
    for query in [
        format!("client={acme}"),
        "reference=ops-4".to_string(),
        "ref_type=ticket&status=active".to_string(),
        "q=notes.txt".to_string(),
    ] {
        let r = api.get(&format!("/api/v1/links?{query}"), &alice).await;
        assert_eq!(ids(&r), vec![id.clone()], "{query}: {}", r.json);
    }
    let r = api.get("/api/v1/links?kind=share&limit=1", &alice).await;
    assert_eq!(ids(&r), vec![other.clone()], "newest first");
    let next = r.json["next_cursor"].as_str().unwrap().to_string();
    let r = api
        .get(
            &format!("/api/v1/links?kind=share&limit=1&cursor={next}"),
            &alice,
        )
        .await;
    assert_eq!(ids(&r), vec![id.clone()]);
    assert_eq!(r.json["next_cursor"], Value::Null);
    for bad in ["status=lost", "kind=zip", "client=x", "ref_type=wish"] {
        let r = api.get(&format!("/api/v1/links?{bad}"), &alice).await;
        assert_eq!(r.status, 400, "{bad}");
    }
    let bad = api
        .post(
            "/api/v1/links",
            &alice,
            json!({ "kind": "share", "paths": ["/notes.txt"], "reference": { "type": "wish", "value": "x" } }),
        )
        .await;
    assert_eq!(bad.status, 400);
    let r = api
        .call(
            Method::PATCH,
            &format!("/api/v1/links/{id}"),
            &alice,
            Some(json!({ "client_id": null, "reference": { "type": "project", "value": "P-7" } })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["client_id"], Value::Null);
    assert_eq!(r.json["reference"]["type"], "project");

    // Shared, bob sees the client but may not change it.
    let r = api
        .call(
            Method::PATCH,
            &format!("/api/v1/clients/{acme}"),
            &alice,
            Some(json!({ "shared": true })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        api.get(&format!("/api/v1/clients/{acme}"), &bob)
            .await
            .status,
        200
    );
    let r = api
        .call(
            Method::PATCH,
            &format!("/api/v1/clients/{acme}"),
            &bob,
            Some(json!({ "name": "Mine" })),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.json);
    let r = api
        .call(
            Method::DELETE,
            &format!("/api/v1/contacts/{contact}"),
            &bob,
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.json);
    let r = api
        .call(
            Method::DELETE,
            &format!("/api/v1/contacts/{contact}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = api
        .call(
            Method::DELETE,
            &format!("/api/v1/clients/{acme}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        api.get(&format!("/api/v1/clients/{acme}"), &alice)
            .await
            .status,
        404
    );

    // Every change is audited with the client's path.
    let rows = api
        .gw
        .db
        .blocking()
        .audit_query(&wharf::store::AuditQuery {
            path: Some(format!("client:{acme}")),
            limit: 20,
            ..Default::default()
        })
        .unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.event.action.as_str()).collect();
    for a in [
        "client_create",
        "contact_add",
        "client_edit",
        "contact_remove",
        "client_delete",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_links_needs_the_share_permission_granted_by_an_administrator() {
    let api = Api::start("").await;
    api.gw
        .cli(&["user", "perms", "bob", "list,read,write,mkdir"]);
    let bob = api.key("bob");
    let alice = api.key("alice");
    let admin = api.key("admin");
    let users = api.get("/api/v1/users", &bob).await;
    assert_eq!(users.json["items"][0]["share"], false, "{}", users.json);
    for body in [
        json!({ "kind": "request", "folder": "/in" }),
        json!({ "kind": "share", "paths": ["/x"] }),
        json!({ "kind": "send", "paths": ["/x"] }),
    ] {
        let r = api.post("/api/v1/links", &bob, body).await;
        assert_eq!(r.status, 403, "{}", r.json);
        assert_eq!(r.code(), "forbidden");
        assert!(r.message().contains("share permission"), "{}", r.message());
    }
    // Only an administrator grants it: another user's account is not even
    // shown to alice (404, as in GET /api/v1/users), and her own permissions
    // are not hers to change (403).
    let r = api
        .call(
            Method::PATCH,
            "/api/v1/users/bob",
            &alice,
            Some(json!({ "share": true })),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = api
        .call(
            Method::PATCH,
            "/api/v1/users/alice",
            &alice,
            Some(json!({ "perms": "all" })),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.json);
    let r = api
        .call(
            Method::PATCH,
            "/api/v1/users/bob",
            &admin,
            Some(json!({ "share": true })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["share"], true);
    assert_eq!(r.json["perms"], "list,read,write,mkdir,share");
    let r = api
        .post(
            "/api/v1/links",
            &bob,
            json!({ "kind": "request", "folder": "/in" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let rows = api
        .gw
        .db
        .blocking()
        .audit_query(&wharf::store::AuditQuery {
            path: Some("user:bob".into()),
            limit: 20,
            ..Default::default()
        })
        .unwrap();
    assert!(rows.iter().any(|r| r.event.action == "user_perms"
        && r.event.actor.as_deref() == Some("admin")
        && r.event.outcome == wharf::audit::Outcome::Ok));
}
