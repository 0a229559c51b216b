//! Notifications and the mails around links, through a real SMTP listener
//! (aiosmtpd): a link's mail is multipart (plain text and branded HTML with a
//! button), its subject names the sender's display name, it carries
//! Message-ID and Date, each recipient gets their own, greeted by name, and no
//! link token reaches the log; downloads, a used-up link and an expired link
//! reach the owner's feed, and by mail only as the owner's preferences say;
//! the feed escapes what visitors name, and its forms and the preferences
//! need the session's CSRF token and touch only the user's own rows.

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::gateway::Gateway;
use common::smtp::smtp;
use wharf::store::NoticeKind;

/// Everything the gateways of this test binary log, at every level.
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_ansi(false)
            .with_writer(move || Writer(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
    .clone()
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn api_key(gw: &Gateway, user: &str) -> String {
    let out = gw.cli(&["apikey", "create", "--user", user, "--name", "tests"]);
    out.split_whitespace()
        .find(|w| w.starts_with("wharf_"))
        .expect("a key in the output")
        .to_string()
}

/// A gateway with user alice (home /alice, mail alice@example.org) and a file
/// of hers; returns it and an API key of hers.
async fn gateway(extra_http: &str) -> (Gateway, String) {
    let mail = smtp();
    let gw = Gateway::start_full("fs", extra_http, "", &mail.config()).await;
    gw.add_user("alice", "/alice", "all", Some("pw-alice"), None);
    gw.cli(&["user", "email", "alice", "alice@example.org"]);
    let home = gw.config.data_dir.join("files/alice");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("report.pdf"), common::pattern(20_000, 3)).unwrap();
    let key = api_key(&gw, "alice");
    (gw, key)
}

async fn api(
    gw: &Gateway,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .request(method, format!("http://{}{path}", gw.http_addr()))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// The headers of a raw message, unfolded, as (lower-case name, value).
fn headers(raw: &str) -> Vec<(String, String)> {
    let head = raw.split("\n\n").next().unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_mails_are_multipart_branded_and_name_sender_and_recipients() {
    let log = captured_log();
    let mail = smtp();
    let (gw, key) = gateway("product_name = \"Acme Files\"\naccent = \"#aa3300\"").await;
    // The display name by the CLI, then by the API (which wins).
    let out = gw.cli(&["user", "profile", "alice", "--display-name", "Alice S"]);
    assert!(out.contains("Alice S"), "{out}");
    let (status, user) = api(
        &gw,
        &key,
        reqwest::Method::PATCH,
        "/api/v1/users/alice",
        serde_json::json!({"display_name": "Alice Smith"}),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["display_name"], "Alice Smith");
    // Someone else's account is not hers to rename.
    let (status, _) = api(
        &gw,
        &key,
        reqwest::Method::PATCH,
        "/api/v1/users/admin",
        serde_json::json!({"display_name": "x"}),
    )
    .await;
    assert_eq!(status, 404);

    let (status, created) = api(
        &gw,
        &key,
        reqwest::Method::POST,
        "/api/v1/links",
        serde_json::json!({
            "kind": "share",
            "paths": ["/report.pdf"],
            "title": "Q3 report",
            "recipients": ["bob-n@example.org", "carol-n@example.org"],
        }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let url = created["url"].as_str().unwrap().to_string();
    let token = url.rsplit('/').next().unwrap().to_string();
    let id = created["link"]["id"].as_str().unwrap().to_string();

    let bob = mail.wait_for("bob-n@example.org", 1);
    let carol = mail.wait_for("carol-n@example.org", 1);
    for raw in [&bob[0], &carol[0]] {
        let h = headers(raw);
        assert_eq!(
            header(&h, "subject"),
            Some("Alice Smith has shared files with you: Q3 report"),
            "{raw}"
        );
        let mid = header(&h, "message-id").expect("a Message-ID");
        assert!(
            mid.starts_with('<') && mid.ends_with("@example.org>") && mid.len() > 30,
            "{mid}"
        );
        assert!(header(&h, "date").is_some_and(|d| d.len() > 20), "{raw}");
        let ct = header(&h, "content-type").unwrap_or_default();
        assert!(ct.starts_with("multipart/alternative"), "{ct}");
        assert!(raw.contains("Content-Type: text/plain"), "{raw}");
        assert!(raw.contains("Content-Type: text/html"), "{raw}");
        // Plain text and the HTML button both carry the URL; the HTML wears
        // the white label.
        assert!(raw.contains(&format!("Open: {url}")), "{raw}");
        assert!(raw.contains(&format!("href=\"{url}\"")), "{raw}");
        assert!(
            raw.contains("Acme Files") && raw.contains("#aa3300"),
            "{raw}"
        );
        assert!(raw.contains("Hello,"), "{raw}");
    }
    // One mail each: neither sees the other's address.
    let to = header(&headers(&bob[0]), "to").unwrap().to_string();
    assert!(!to.contains("carol"), "{to}");

    // With names stored beside the addresses, each is greeted by name.
    let link = gw.db.blocking().link_by_public_id(&id).unwrap().unwrap();
    gw.db
        .blocking()
        .link_recipient_names_set(
            link.id,
            &[
                ("bob-n@example.org".into(), "Bob Brown".into()),
                ("Carol-N@example.org".into(), "Carol".into()),
            ],
        )
        .unwrap();
    let (status, _) = api(
        &gw,
        &key,
        reqwest::Method::POST,
        &format!("/api/v1/links/{id}/resend"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let bob = mail.wait_for("bob-n@example.org", 2);
    let carol = mail.wait_for("carol-n@example.org", 2);
    assert!(bob[1].contains("Hello Bob Brown,"), "{}", bob[1]);
    assert!(carol[1].contains("Hello Carol,"), "{}", carol[1]);

    // The mails were logged (the log is captured), never with the link's token.
    let text = String::from_utf8_lossy(&log.lock().unwrap()).to_string();
    assert!(text.contains("mail sent"), "log not captured");
    assert!(!text.contains(&token), "the link token is in the log");
}

async fn download(url: &str) {
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let page = c.get(url).send().await.unwrap().text().await.unwrap();
    let file = format!("{url}{}", common::file_path(&page));
    let r = c.get(&file).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 20_000);
}

/// Waits (at most 10 s) until alice has `n` notifications of `kind`.
async fn wait_notices(gw: &Gateway, kind: NoticeKind, n: usize) -> Vec<wharf::store::Notification> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let all = gw.db.blocking().notifications_of("alice", 100).unwrap();
        let found: Vec<_> = all.into_iter().filter(|x| x.kind == kind).collect();
        if found.len() >= n {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {} notification #{n} within 10 s",
            kind.as_str()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_and_ended_links_reach_the_feed_and_mail_as_chosen() {
    let mail = smtp();
    let (gw, key) = gateway("").await;
    // notify_downloads is on by default: the first download is mailed too.
    let (status, created) = api(
        &gw,
        &key,
        reqwest::Method::POST,
        "/api/v1/links",
        serde_json::json!({"kind": "share", "paths": ["/report.pdf"], "title": "Twice", "max_uses": 2}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let url = created["url"].as_str().unwrap();
    let url = gw.url(url.rsplit('/').next().unwrap());
    download(&url).await;
    let got = wait_notices(&gw, NoticeKind::Downloaded, 1).await;
    assert_eq!(got[0].file, "report.pdf");
    assert_eq!(got[0].who, "127.0.0.1");
    assert_eq!(got[0].link_label, "Twice");
    assert!(got[0].read_at.is_none());
    let mails = mail.wait_for("alice@example.org", 1);
    assert!(mails[0].contains("Downloaded: report.pdf"), "{}", mails[0]);

    // Alice turns download mails off: the second download (another visitor,
    // the link's last use) is in the feed, and so is the used-up link, but
    // no mail arrives.
    gw.db
        .blocking()
        .notification_pref_set("alice", NoticeKind::Downloaded, false)
        .unwrap();
    download(&url).await;
    wait_notices(&gw, NoticeKind::Downloaded, 2).await;
    let ended = wait_notices(&gw, NoticeKind::Exhausted, 1).await;
    assert_eq!(ended[0].link_label, "Twice");
    assert_eq!(gw.db.blocking().notifications_unread("alice").unwrap(), 3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mail.messages_to("alice@example.org").len(), 1);

    // An expired link is noticed once (the sweep runs at start and hourly; the
    // feed page runs it too) and mailed when chosen.
    gw.db
        .blocking()
        .notification_pref_set("alice", NoticeKind::Expired, true)
        .unwrap();
    let (status, created) = api(
        &gw,
        &key,
        reqwest::Method::POST,
        "/api/v1/links",
        serde_json::json!({"kind": "share", "paths": ["/report.pdf"], "title": "Short"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["link"]["id"].as_str().unwrap().to_string();
    let conn = rusqlite::Connection::open(gw.config.database_path()).unwrap();
    conn.execute(
        "UPDATE links SET expires_at = ?1 WHERE public_id = ?2",
        rusqlite::params![wharf::store::now_ms() - 1000, id],
    )
    .unwrap();
    let notifier = wharf::notify::Notifier::new(
        gw.db.clone(),
        wharf::mail::Mailer::for_config(&gw.config).unwrap(),
        &gw.config.links,
    );
    assert_eq!(notifier.expired(None, wharf::store::now_ms()).await, 1);
    assert_eq!(notifier.expired(None, wharf::store::now_ms()).await, 0);
    let expired = wait_notices(&gw, NoticeKind::Expired, 1).await;
    assert_eq!(expired[0].link_public_id, id);
    let mails = mail.wait_for("alice@example.org", 2);
    assert!(mails[1].contains("Link expired: Short"), "{}", mails[1]);

    // Marking read: one, then all.
    let store = gw.db.blocking();
    assert_eq!(
        store
            .notifications_mark_read("alice", Some(expired[0].id), 1)
            .unwrap(),
        1
    );
    assert_eq!(store.notifications_unread("alice").unwrap(), 3);
    // Another user's id marks nothing of alice's... and alice's "all" marks the rest.
    assert_eq!(store.notifications_mark_read("admin", None, 1).unwrap(), 0);
    assert_eq!(store.notifications_mark_read("alice", None, 1).unwrap(), 3);
    assert_eq!(store.notifications_unread("alice").unwrap(), 0);
}

/// A signed-in staff browser (cookies kept, redirects not followed).
async fn staff(gw: &Gateway, name: &str, password: &str) -> (reqwest::Client, String) {
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://{}", gw.http_addr());
    let form = c
        .get(format!("{base}/app/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = c
        .post(format!("{base}/app/login"))
        .form(&[
            ("csrf", common::csrf(&form).as_str()),
            ("name", name),
            ("password", password),
            ("next", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    (c, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_escapes_what_visitors_name_and_its_forms_need_the_session_token() {
    let (gw, _) = gateway("").await;
    gw.add_user("mallory", "/mallory", "all", Some("pw-mallory"), None);
    // A notification naming a file and a visitor with markup in their names.
    let store = gw.db.blocking();
    let id = store
        .notification_add(
            &wharf::store::NewNotification {
                user: "alice".into(),
                kind: NoticeKind::Uploaded,
                link_public_id: "abc".into(),
                link_label: "<i>label</i>".into(),
                file: "<script>alert(1)</script>.pdf".into(),
                who: "\"><img src=x>".into(),
                bytes: Some(10),
            },
            1,
        )
        .unwrap()
        .unwrap();
    let (c, base) = staff(&gw, "alice", "pw-alice").await;
    let page = c
        .get(format!("{base}/app/notifications"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;.pdf"),
        "{page}"
    );
    assert!(!page.contains("<script>alert") && !page.contains("<img src=x>"));
    // Times are <time> elements the viewer's browser shows in local time.
    assert!(
        page.contains("<time datetime=\"") && page.contains("/localtime.js"),
        "{page}"
    );
    assert!(page.contains("&lt;i&gt;label&lt;/i&gt;"), "{page}");
    assert!(
        page.contains("class=\"count\">1<"),
        "the bell counts it: {page}"
    );

    // Without the session's token: refused, nothing marked.
    let r = c
        .post(format!("{base}/app/notifications/read"))
        .form(&[("id", id.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(store.notifications_unread("alice").unwrap(), 1);
    // Another user, with their own valid token, cannot mark alice's.
    let (m, _) = staff(&gw, "mallory", "pw-mallory").await;
    let mpage = m
        .get(format!("{base}/app/notifications"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!mpage.contains("alert(1)"), "mallory sees only hers");
    let r = m
        .post(format!("{base}/app/notifications/read"))
        .form(&[("csrf", common::csrf(&mpage)), ("id", id.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(store.notifications_unread("alice").unwrap(), 1);
    // Alice marks it.
    let r = c
        .post(format!("{base}/app/notifications/read"))
        .form(&[("csrf", common::csrf(&page)), ("id", id.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(store.notifications_unread("alice").unwrap(), 0);

    // Preferences: a display name too long is refused and changes nothing;
    // a good one is saved with the choices, and audited.
    let prefs = c
        .get(format!("{base}/app/preferences"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = common::csrf(&prefs);
    let long = "x".repeat(81);
    let r = c
        .post(format!("{base}/app/preferences"))
        .form(&[
            ("csrf", token.as_str()),
            ("display_name", long.as_str()),
            ("mail_link_expired", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let shown = c
        .get(format!("{base}/app/preferences"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains("at most 80 characters"), "{shown}");
    assert_eq!(store.user_get("alice").unwrap().unwrap().display_name, None);
    assert_eq!(store.notification_prefs("alice").unwrap(), []);
    let r = c
        .post(format!("{base}/app/preferences"))
        .form(&[
            ("csrf", token.as_str()),
            ("display_name", "  Alice <A> Smith "),
            ("mail_link_expired", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        store.user_get("alice").unwrap().unwrap().display_name,
        Some("Alice <A> Smith".to_string())
    );
    let mut prefs = store.notification_prefs("alice").unwrap();
    prefs.sort_by_key(|(k, _)| k.as_str());
    assert_eq!(
        prefs,
        [
            (NoticeKind::Downloaded, false),
            (NoticeKind::Exhausted, false),
            (NoticeKind::Expired, true),
            (NoticeKind::Uploaded, false),
        ]
    );
    let shown = c
        .get(format!("{base}/app/preferences"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains("value=\"Alice &lt;A&gt; Smith\""), "{shown}");
    // Without the token: refused.
    let r = c
        .post(format!("{base}/app/preferences"))
        .form(&[("display_name", "Eve")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        store.user_get("alice").unwrap().unwrap().shown_name(),
        "Alice <A> Smith"
    );
}
