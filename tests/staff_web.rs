//! The staff pages under `/app` through the real link server and a real HTTP
//! client with a cookie store: login (refusals, lock-out, audit), sessions
//! (cookie attributes, logout, a disabled user), the dashboard and a link's page
//! (own links only, escaping), and every action with and without its CSRF token.

mod common;

use common::gateway::Gateway;
use wharf::store::{AuditQuery, NewUser};
use wharf::vfs::VPath;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A client that keeps no cookies: it sends only what a test gives it.
fn bare() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Reply {
    status: u16,
    location: Option<String>,
    cookies: Vec<String>,
    body: String,
}

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    let cookies = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    Reply {
        status,
        location,
        cookies,
        body: r.text().await.unwrap(),
    }
}

struct Staff {
    base: String,
    c: reqwest::Client,
}

impl Staff {
    fn new(gw: &Gateway) -> Staff {
        Staff {
            base: format!("http://{}", gw.http_addr()),
            c: client(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        reply(
            self.c
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        reply(
            self.c
                .post(format!("{}{path}", self.base))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Fills the login form as a browser would.
    async fn login(&self, name: &str, password: &str, next: &str) -> Reply {
        let form = self.get("/app/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let token = common::csrf(&form.body);
        self.post(
            "/app/login",
            &[
                ("csrf", &token),
                ("name", name),
                ("password", password),
                ("next", next),
            ],
        )
        .await
    }

    /// Logs in and returns the session's CSRF token (from the dashboard).
    async fn session(&self, name: &str, password: &str) -> String {
        let r = self.login(name, password, "").await;
        assert_eq!(r.status, 303, "{}", r.body);
        let page = self.get("/app").await;
        assert_eq!(page.status, 200, "{}", page.body);
        common::csrf(&page.body)
    }
}

fn add_user(gw: &Gateway, name: &str, password: Option<&str>, protocols: &str) {
    gw.db
        .blocking()
        .user_insert(&NewUser {
            name: name.into(),
            password_hash: password.map(|p| wharf::secret::hash_password(p).unwrap()),
            home: VPath::parse(&format!("/home/{name}")).unwrap(),
            perms: "all".parse().unwrap(),
            protocols: protocols.parse().unwrap(),
            key_and_password: false,
        })
        .unwrap();
}

/// A send link of `owner` for a new local file; returns (public id, token).
fn send(gw: &Gateway, owner: &str, file: &str, args: &[&str]) -> (String, String) {
    let local = gw.path(file);
    std::fs::write(&local, format!("contents of {file}")).unwrap();
    let mut all = vec!["send", local.to_str().unwrap(), "--as", owner];
    all.extend_from_slice(args);
    gw.link(&all)
}

fn audit(rows: &[wharf::audit::AuditEvent], action: &str) -> Vec<wharf::audit::AuditEvent> {
    rows.iter()
        .filter(|e| e.action == action)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refusals_read_alike_are_audited_and_lock_the_address_out() {
    let mut gw = Gateway::start("fs", "[defender]\nmax_failures = 5\n").await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    add_user(&gw, "keyonly", None, "all");
    add_user(&gw, "sftponly", Some("sftp secret"), "sftp");
    let s = Staff::new(&gw);

    // Without a session every page leads to the login, remembering where to go.
    let r = s.get("/app").await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/app/login")));
    let r = s.get("/app/links/abc").await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location.as_deref(),
        Some("/app/login?next=%2Fapp%2Flinks%2Fabc")
    );
    let r = s.get("/app/login?next=%2Fapp%2Flinks%2Fabc").await;
    assert!(r.body.contains("value=\"/app/links/abc\""), "{}", r.body);

    // A form without the CSRF cookie's value is refused before any password check.
    let r = s
        .post(
            "/app/login",
            &[("name", "alice"), ("password", "alice secret")],
        )
        .await;
    assert_eq!(r.status, 403);

    for (name, password) in [
        ("alice", "wrong"),
        ("nobody", "whatever"),
        ("keyonly", "whatever"),
        ("sftponly", "sftp secret"),
    ] {
        let r = s.login(name, password, "/app").await;
        assert_eq!(r.status, 403, "{name}");
        assert!(r.body.contains("Wrong name or password."), "{name}");
        assert!(!r.cookies.iter().any(|c| c.starts_with("wharf_staff=")));
    }

    let r = s
        .login("alice", "alice secret", "https://evil.example/")
        .await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/app")));
    let cookie = r
        .cookies
        .iter()
        .find(|c| c.starts_with("wharf_staff="))
        .expect("a session cookie");
    let value = cookie["wharf_staff=".len()..].split(';').next().unwrap();
    assert!(value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()));
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/app;"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http base URL: {cookie}");
    // Logged in, the login page sends the user on.
    let r = s.get("/app/login?next=%2Fapp%2Flinks%2Fabc").await;
    assert_eq!(r.location.as_deref(), Some("/app/links/abc"));

    // The fifth failure locks the address out; then even the right password waits.
    let other = Staff::new(&gw);
    let token = common::csrf(&other.get("/app/login").await.body);
    let attempt = |password: &'static str| {
        let token = token.clone();
        let other = &other;
        async move {
            other
                .post(
                    "/app/login",
                    &[("csrf", &token), ("name", "alice"), ("password", password)],
                )
                .await
        }
    };
    let r = attempt("wrong again").await;
    assert_eq!(r.status, 429);
    assert!(r.body.contains("Try again in"), "{}", r.body);
    let r = attempt("alice secret").await;
    assert_eq!(r.status, 429);
    assert!(r.body.contains("too many failed sign-ins"));
    assert!(!r.cookies.iter().any(|c| c.starts_with("wharf_staff=")));
    let r = other.get("/app/login").await;
    assert_eq!(r.status, 429, "the form says so at once");
    // A session opened before the lock-out goes on.
    assert_eq!(s.get("/app").await.status, 200);

    let rows = gw
        .stop_and_audit(AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await;
    let failed: Vec<String> = audit(&rows, "login_failed")
        .into_iter()
        .filter(|e| e.protocol == "http")
        .map(|e| format!("{}: {}", e.actor.unwrap(), e.detail.unwrap()))
        .collect();
    for expected in [
        "alice: password: wrong password",
        "nobody: password: unknown user",
        "keyonly: password: no password set",
        "sftponly: password: protocol not allowed for this account",
    ] {
        assert!(
            failed.iter().any(|f| f == expected),
            "{expected} in {failed:?}"
        );
    }
    assert!(
        failed.iter().any(|f| f.contains("locked out")),
        "{failed:?}"
    );
    let logins = audit(&rows, "login");
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].actor.as_deref(), Some("alice"));
    assert_eq!(logins[0].protocol, "http");
    assert_eq!(audit(&rows, "address_banned").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_own_links_escaped_and_others_are_not_found() {
    let gw = Gateway::start("fs", "").await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    add_user(&gw, "bob", Some("bob secret"), "all");
    let (first, _) = send(
        &gw,
        "alice",
        "report.pdf",
        &[
            "--title",
            "<script>alert(1)</script>",
            "--to",
            "carol@example.com",
            "--max-downloads",
            "3",
        ],
    );
    let (second, _) = send(&gw, "alice", "second.txt", &["--name", "Second & last"]);
    let (bobs, _) = send(&gw, "bob", "bob.txt", &["--name", "Bob's"]);
    let s = Staff::new(&gw);
    let token = s.session("alice", "alice secret").await;

    let page = s.get("/app").await.body;
    assert!(page.contains(&first) && page.contains(&second));
    assert!(
        !page.contains(&bobs) && !page.contains("Bob&#39;s"),
        "only alice's links"
    );
    assert!(
        page.find(&second).unwrap() < page.find(&first).unwrap(),
        "newest first"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<script>alert"), "titles are escaped");
    assert!(page.contains("Second &amp; last"));
    assert!(page.contains("carol@example.com"));
    assert!(page.contains("0 / 3"), "uses of max uses");
    assert!(page.contains("data-expires=\""), "a live countdown");
    assert!(page.contains("src=\"/static/countdown.js\""));
    let js = s.get("/static/countdown.js").await;
    assert_eq!(js.status, 200);
    assert!(js.body.contains("data-expires") || js.body.contains("dataset.expires"));

    let detail = s.get(&format!("/app/links/{first}")).await;
    assert_eq!(detail.status, 200);
    let file_sha = common::sha256(b"contents of report.pdf");
    assert!(detail.body.contains("report.pdf") && detail.body.contains(&file_sha));
    assert!(detail.body.contains("link_create"), "the audit trail");
    assert!(detail.body.contains("&lt;script&gt;"));
    assert!(!detail.body.contains("<script>alert"));
    for action in ["extend", "revoke", "regenerate", "resend", "edit"] {
        assert!(
            detail
                .body
                .contains(&format!("action=\"/app/links/{first}/{action}\"")),
            "{action}"
        );
    }
    // Delete and restore are for administrators.
    for action in ["delete", "restore"] {
        assert!(!detail
            .body
            .contains(&format!("action=\"/app/links/{first}/{action}\"")));
    }
    // No recipients, no resend.
    let detail = s.get(&format!("/app/links/{second}")).await.body;
    assert!(!detail.contains(&format!("/app/links/{second}/resend")));

    // Bob's link does not exist for alice, whether she reads it or acts on it.
    let r = s.get(&format!("/app/links/{bobs}")).await;
    assert_eq!(r.status, 404);
    assert!(!r.body.contains("bob.txt"));
    assert_eq!(s.get("/app/links/nosuchlink").await.status, 404);
    let r = s
        .post(&format!("/app/links/{bobs}/revoke"), &[("csrf", &token)])
        .await;
    assert_eq!(r.status, 404);
    let bob_link = gw.db.blocking().link_by_public_id(&bobs).unwrap().unwrap();
    assert_eq!(bob_link.state, wharf::store::LinkState::Active);
    // Unknown pages answer 404 too; the send page is there.
    assert_eq!(s.get("/app/uploads").await.status, 404);
    let r = s.get("/app/send").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("id=\"send-form\""), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_needs_the_session_token_and_works_with_it() {
    let mut gw = Gateway::start("fs", "").await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    let (id, token) = send(&gw, "alice", "q3.csv", &["--to", "carol@example.com"]);
    let s = Staff::new(&gw);
    let csrf_token = s.session("alice", "alice secret").await;
    let page = format!("/app/links/{id}");
    let link_now = || gw.db.blocking().link_by_public_id(&id).unwrap();
    let before = link_now().unwrap();

    for action in ["extend", "revoke", "regenerate", "resend", "delete"] {
        let path = format!("{page}/{action}");
        let wrong = "0".repeat(64);
        for form in [
            vec![("expires", "2w"), ("confirm", "yes")],
            vec![
                ("csrf", wrong.as_str()),
                ("expires", "2w"),
                ("confirm", "yes"),
            ],
            vec![("csrf", ""), ("expires", "2w"), ("confirm", "yes")],
        ] {
            let r = s.post(&path, &form).await;
            assert_eq!(r.status, 403, "{action} {form:?}");
        }
    }
    assert_eq!(link_now().unwrap(), before, "nothing changed");
    assert_eq!(
        bare().get(gw.url(&token)).send().await.unwrap().status(),
        200
    );

    // Extend: back to the page, which says what happened (once).
    let r = s
        .post(
            &format!("{page}/extend"),
            &[("csrf", &csrf_token), ("expires", "2w")],
        )
        .await;
    assert_eq!(
        (r.status, r.location.as_deref()),
        (303, Some(page.as_str()))
    );
    let shown = s.get(&page).await.body;
    assert!(shown.contains("The link now expires"), "{shown}");
    assert!(!s.get(&page).await.body.contains("The link now expires"));
    let expires = link_now().unwrap().expires_at.unwrap();
    let two_weeks = 14 * 86_400_000;
    assert!((expires - wharf::store::now_ms() - two_weeks).abs() < 600_000);

    // Regenerate: the new URL is on the answer, once; the old URL is gone.
    let r = s
        .post(&format!("{page}/regenerate"), &[("csrf", &csrf_token)])
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("data-copy=\"url\"") && r.body.contains("/static/copy.js"));
    let at = r.body.find("/l/").unwrap() + 3;
    let new_token: String = r.body[at..].chars().take(64).collect();
    assert_ne!(new_token, token);
    assert_eq!(
        bare().get(gw.url(&token)).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        bare()
            .get(gw.url(&new_token))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        s.get(&page).await.body.contains(&new_token),
        "the link's page shows the current URL"
    );

    // Resend: the same URL mailed (to the outbox) again; it keeps working.
    let r = s
        .post(&format!("{page}/resend"), &[("csrf", &csrf_token)])
        .await;
    assert_eq!(
        (r.status, r.location.as_deref()),
        (303, Some(page.as_str()))
    );
    assert!(s
        .get(&page)
        .await
        .body
        .contains("Mailed the link again to carol@example.com"));
    assert_eq!(
        bare()
            .get(gw.url(&new_token))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let outbox = gw.config.data_dir.join("outbox");
    let mails: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .map(|m| m.replace("=\r\n", "").replace("=\n", ""))
        .collect();
    assert!(mails.len() >= 2, "the creation mail and the resent one");
    assert!(
        mails.iter().any(|m| m.contains(&new_token)),
        "the resent mail carries the current URL"
    );

    // Revoke: visitors are told the link was withdrawn; it cannot be extended.
    let r = s
        .post(&format!("{page}/revoke"), &[("csrf", &csrf_token)])
        .await;
    assert_eq!(r.status, 303);
    let cancelled = s.get(&page).await.body;
    assert!(cancelled.contains("is revoked"));
    // Its notes speak only of what can still be done with it.
    assert!(!cancelled.contains("Resend to recipients") && !cancelled.contains("Resending"));
    assert!(cancelled.contains("This link is cancelled"), "{cancelled}");
    assert_eq!(link_now().unwrap().state, wharf::store::LinkState::Revoked);
    let r = s
        .post(
            &format!("{page}/extend"),
            &[("csrf", &csrf_token), ("expires", "1w")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(s.get(&page).await.body.contains("cannot be extended"));

    // Delete: refused to alice (not an administrator), even confirmed.
    let r = s
        .post(
            &format!("{page}/delete"),
            &[("csrf", &csrf_token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(s
        .get(&page)
        .await
        .body
        .contains("only an administrator may delete"));
    assert!(link_now().is_some());
    // An administrator: only when confirmed; then the link is gone.
    gw.db.blocking().user_set_admin("alice", true).unwrap();
    let r = s
        .post(&format!("{page}/delete"), &[("csrf", &csrf_token)])
        .await;
    assert_eq!(r.status, 303);
    assert!(s.get(&page).await.body.contains("Tick the box"));
    assert!(link_now().is_some());
    let r = s
        .post(
            &format!("{page}/delete"),
            &[("csrf", &csrf_token), ("confirm", "yes")],
        )
        .await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/app")));
    assert!(s.get("/app").await.body.contains("is deleted"));
    assert!(link_now().is_none());
    assert_eq!(s.get(&page).await.status, 404);

    let rows = gw
        .stop_and_audit(AuditQuery {
            path: Some(format!("link:{id}")),
            limit: 100,
            ..AuditQuery::default()
        })
        .await;
    for action in [
        "link_extend",
        "link_regenerate",
        "link_resend",
        "link_revoke",
        "link_delete",
    ] {
        let ok: Vec<_> = audit(&rows, action)
            .into_iter()
            .filter(|e| e.outcome == wharf::audit::Outcome::Ok)
            .collect();
        assert_eq!(ok.len(), 1, "{action}: {rows:?}");
        assert_eq!(ok[0].actor.as_deref(), Some("alice"), "{action}");
        assert_eq!(ok[0].protocol, "http");
        assert!(ok[0].remote.as_deref().unwrap().starts_with("127.0.0.1"));
    }
    for action in ["link_extend", "link_delete"] {
        assert!(
            audit(&rows, action)
                .iter()
                .any(|e| e.outcome == wharf::audit::Outcome::Denied),
            "{action}"
        );
    }
    // No URL (token) is ever written to the audit log.
    assert!(!format!("{rows:?}").contains(&new_token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_at_logout_and_when_the_user_may_no_longer_log_in() {
    let mut gw = Gateway::start("fs", "").await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    let base = format!("http://{}", gw.http_addr());
    let with_cookie = |value: String| {
        let url = format!("{base}/app");
        async move {
            bare()
                .get(url)
                .header("cookie", format!("wharf_staff={value}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let session_cookie = |r: &Reply| -> String {
        let c = r
            .cookies
            .iter()
            .find(|c| c.starts_with("wharf_staff="))
            .unwrap();
        c["wharf_staff=".len()..]
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };

    // Logout ends the session itself, not only the browser's cookie.
    let s = Staff::new(&gw);
    let r = s.login("alice", "alice secret", "").await;
    let value = session_cookie(&r);
    assert_eq!(with_cookie(value.clone()).await, 200);
    let token = common::csrf(&s.get("/app").await.body);
    assert_eq!(s.post("/app/logout", &[]).await.status, 403, "CSRF");
    let r = s.post("/app/logout", &[("csrf", &token)]).await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/app/login")));
    assert!(r
        .cookies
        .iter()
        .any(|c| c.starts_with("wharf_staff=;") && c.contains("Max-Age=0")));
    assert_eq!(with_cookie(value).await, 303);
    assert_eq!(s.get("/app").await.status, 303);

    // A disabled user's session stops at once, and stays ended.
    let s = Staff::new(&gw);
    s.session("alice", "alice secret").await;
    gw.db.blocking().user_set_enabled("alice", false).unwrap();
    assert_eq!(s.get("/app").await.status, 303);
    gw.db.blocking().user_set_enabled("alice", true).unwrap();
    assert_eq!(s.get("/app").await.status, 303);

    // So does one whose password changed, or whose account was deleted.
    let s = Staff::new(&gw);
    s.session("alice", "alice secret").await;
    let hash = wharf::secret::hash_password("new secret").unwrap();
    gw.db
        .blocking()
        .user_set_password("alice", Some(&hash))
        .unwrap();
    assert_eq!(s.get("/app").await.status, 303);
    let s = Staff::new(&gw);
    s.session("alice", "new secret").await;
    gw.db.blocking().user_delete("alice").unwrap();
    assert_eq!(s.get("/app").await.status, 303);

    // Made-up cookies open nothing.
    assert_eq!(with_cookie("0".repeat(64)).await, 303);
    assert_eq!(with_cookie("not-a-token".into()).await, 303);

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("logout".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor.as_deref(), Some("alice"));
}

// ---- Creating links from /app: share from storage, request files, send ----

/// The files of `user` (home /home/<user>) on the fs storage.
fn home_dir(gw: &Gateway, user: &str) -> std::path::PathBuf {
    let d = gw.config.data_dir.join("files/home").join(user);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Follows the redirect of a create form to the once-shown URL; returns
/// (public id, link URL).
async fn created_url(s: &Staff, r: &Reply) -> (String, String) {
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.clone().unwrap();
    let id = to
        .strip_prefix("/app/created/")
        .expect("a redirect to the created page")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let page = s.get(&to).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let at = page.body.find("id=\"link-url\" value=\"").expect("the URL") + 21;
    let url = page.body[at..].split('"').next().unwrap().to_string();
    // Shown once: a reload neither shows it again nor makes another link.
    let again = s.get(&to).await;
    assert_eq!(again.status, 200);
    assert!(!again.body.contains(&url), "the URL is shown once");
    (id, url)
}

/// A link URL as the test reaches it (the configured base URL is not served).
fn reach(gw: &Gateway, url: &str) -> String {
    gw.url(url.rsplit('/').next().unwrap())
}

fn sha(data: &[u8]) -> String {
    common::sha256(data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_from_storage_browses_the_own_view_and_the_recipient_downloads() {
    let gw = Gateway::start("fs", "").await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    add_user(&gw, "bob", Some("bob secret"), "all");
    let home = home_dir(&gw, "alice");
    let report = common::pattern(300_000, 7);
    std::fs::create_dir_all(home.join("q3")).unwrap();
    std::fs::write(home.join("q3/report.pdf"), &report).unwrap();
    std::fs::write(home.join("q3/<b>notes.txt"), b"notes").unwrap();
    std::fs::create_dir_all(home.join("big")).unwrap();
    for i in 0..1200 {
        std::fs::write(home.join(format!("big/f{i:04}.txt")), b"x").unwrap();
    }
    std::fs::write(home_dir(&gw, "bob").join("secret.txt"), b"BOB").unwrap();
    let s = Staff::new(&gw);
    let token = s.session("alice", "alice secret").await;

    // The dashboard offers the three ways to create a link.
    let dash = s.get("/app").await.body;
    for (href, label) in [
        ("/app/send", "Send files"),
        ("/app/files", "Share from storage"),
        ("/app/request", "Request files"),
    ] {
        assert!(dash.contains(&format!("href=\"{href}\">{label}")), "{dash}");
    }

    // The browser lists alice's own view: her home is her "/".
    let root = s.get("/app/files").await;
    assert_eq!(root.status, 200, "{}", root.body);
    assert!(
        root.body.contains("q3") && root.body.contains("big"),
        "{}",
        root.body
    );
    assert!(!root.body.contains("/home/alice"), "no full storage path");
    let q3 = s.get("/app/files?path=%2Fq3").await.body;
    assert!(q3.contains("report.pdf"), "{q3}");
    assert!(
        q3.contains("&lt;b&gt;notes.txt") && !q3.contains("<b>notes"),
        "names are escaped"
    );
    assert!(
        q3.contains("/app/share?path=%2Fq3%2Freport%2Epdf"),
        "a Share link per file: {q3}"
    );

    // 1,200 files: page 1 of 12 with a next link; the filter narrows.
    let big = s.get("/app/files?path=%2Fbig").await.body;
    assert!(
        big.contains("f0000.txt") && big.contains("f0099.txt"),
        "{big}"
    );
    assert!(!big.contains("f0100.txt"), "a page holds 100 entries");
    assert!(
        big.contains("Page 1 of 12") && big.contains("rel=\"next\""),
        "{big}"
    );
    let p2 = s.get("/app/files?path=%2Fbig&page=2").await.body;
    assert!(
        p2.contains("f0100.txt") && !p2.contains("f0099.txt"),
        "{p2}"
    );
    let filtered = s.get("/app/files?path=%2Fbig&q=f011").await.body;
    assert!(filtered.contains("f0110.txt") && filtered.contains("f0119.txt"));
    assert!(
        !filtered.contains("f0120.txt") && filtered.contains("10 item(s)"),
        "{filtered}"
    );

    // Another user's files are not in alice's view, by path or by climbing.
    for p in [
        "/app/files?path=%2Fhome%2Fbob",
        "/app/files?path=..%2F..%2Fbob",
        "/app/share?path=%2F..%2Fbob%2Fsecret.txt",
    ] {
        let r = s.get(p).await;
        assert_eq!(r.status, 404, "{p}: {}", r.body);
        assert!(
            !r.body.contains("BOB") && !r.body.contains("/home/alice"),
            "{}",
            r.body
        );
    }
    let r = s
        .post(
            "/app/share",
            &[
                ("csrf", &token),
                ("paths", "/home/bob/secret.txt"),
                ("title", "x"),
            ],
        )
        .await;
    assert_eq!(r.status, 404, "no such file in her view: {}", r.body);
    assert!(!r.body.contains("/home/alice"), "{}", r.body);
    assert!(gw
        .db
        .blocking()
        .link_list(Some("alice"))
        .unwrap()
        .is_empty());

    // A new account whose home does not exist yet sees an empty folder.
    add_user(&gw, "carol", Some("carol secret"), "all");
    let c = Staff::new(&gw);
    c.session("carol", "carol secret").await;
    let empty = c.get("/app/files").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(
        empty.body.contains("This folder is empty."),
        "{}",
        empty.body
    );

    // Without the session's token nothing is made.
    let r = s.post("/app/share", &[("paths", "/q3/report.pdf")]).await;
    assert_eq!(r.status, 403);
    assert!(gw
        .db
        .blocking()
        .link_list(Some("alice"))
        .unwrap()
        .is_empty());

    // The rules page for a picked file, then the link.
    let form = s.get("/app/share?path=%2Fq3%2Freport.pdf").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("report.pdf") && form.body.contains("name=\"expires\""));
    let r = s
        .post(
            "/app/share",
            &[
                ("csrf", &token),
                ("paths", "/q3/report.pdf"),
                ("title", "Q3 report"),
                ("expires", "3d"),
                ("max_uses", "5"),
            ],
        )
        .await;
    let (id, url) = created_url(&s, &r).await;
    let url = reach(&gw, &url);
    let link = gw.db.blocking().link_by_public_id(&id).unwrap().unwrap();
    assert_eq!(link.owner, "alice");
    assert_eq!(link.max_uses, Some(5));
    let visitor = client();
    let page = visitor
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Q3 report"), "{page}");
    let got = visitor
        .get(format!("{url}{}", common::file_path(&page)))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(
        sha(&got.bytes().await.unwrap()),
        sha(&report),
        "the recipient gets the bytes"
    );

    // A folder picked by path, one-time.
    let r = s
        .post(
            "/app/share",
            &[
                ("csrf", &token),
                ("paths", "/q3"),
                ("title", "Folder"),
                ("one_time", "1"),
            ],
        )
        .await;
    let (id, url) = created_url(&s, &r).await;
    let url = reach(&gw, &url);
    let link = gw.db.blocking().link_by_public_id(&id).unwrap().unwrap();
    assert_eq!(link.max_uses, Some(1));
    let page = visitor
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let folder = format!("{url}{}", common::file_path(&page));
    let listing = visitor
        .get(&folder)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listing.contains("report.pdf"), "{listing}");
    let got = visitor
        .get(format!("{folder}/report.pdf"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(sha(&got.bytes().await.unwrap()), sha(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_form_makes_a_request_whose_upload_page_works() {
    let gw = Gateway::start("fs", "").await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    let home = home_dir(&gw, "alice");
    std::fs::create_dir_all(home.join("clients/acme")).unwrap();
    let s = Staff::new(&gw);
    let token = s.session("alice", "alice secret").await;

    let page = s.get("/app/request").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("clients"),
        "the folder picker lists her folders"
    );
    let picked = s.get("/app/request?folder=%2Fclients%2Facme").await.body;
    assert!(picked.contains("value=\"/clients/acme\""), "{picked}");

    let r = s
        .post(
            "/app/request",
            &[
                ("csrf", &token),
                ("folder", "/clients/acme"),
                ("customer", "ACME <Ltd>"),
                ("message", "Please upload the contracts."),
                ("expires", "1w"),
                ("max_files", "3"),
                ("max_size", "1MB"),
            ],
        )
        .await;
    let (id, url) = created_url(&s, &r).await;
    let url = reach(&gw, &url);
    let link = gw.db.blocking().link_by_public_id(&id).unwrap().unwrap();
    assert_eq!(link.max_uses, Some(3));
    assert_eq!(link.title, "Files from ACME <Ltd>");
    let dash = s.get("/app").await.body;
    assert!(
        dash.contains("Request: ACME &lt;Ltd&gt;"),
        "escaped on the dashboard"
    );

    // The customer uploads through the link's page.
    let visitor = client();
    let landing = visitor.get(&url).send().await.unwrap();
    assert_eq!(landing.status(), 200);
    assert!(landing
        .text()
        .await
        .unwrap()
        .contains("Please upload the contracts."));
    let data = common::pattern(50_000, 3);
    use base64::Engine;
    let meta = format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode("contract.pdf")
    );
    let r = visitor
        .post(format!("{url}/uploads"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", data.len().to_string())
        .header("Upload-Metadata", meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let origin = url.split("/l/").next().unwrap();
    let r = visitor
        .patch(format!("{origin}{loc}"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let stored = std::fs::read(home.join("clients/acme/contract.pdf")).unwrap();
    assert_eq!(sha(&stored), sha(&data));

    // Bad input is said clearly and makes nothing.
    let before = gw.db.blocking().link_list(Some("alice")).unwrap().len();
    let r = s
        .post(
            "/app/request",
            &[("csrf", &token), ("folder", "/x"), ("max_size", "lots")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("500MB or 2GB"), "{}", r.body);
    assert_eq!(
        gw.db.blocking().link_list(Some("alice")).unwrap().len(),
        before
    );
}

/// Staff uploads into a new draft: (draft id, each upload's URL path).
async fn staff_upload(s: &Staff, token: &str, files: &[(&str, &[u8])]) -> (String, Vec<String>) {
    let r = s.post("/app/send/draft", &[("csrf", token)]).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let uploads = j["uploads"].as_str().unwrap().to_string();
    let mut names = Vec::new();
    for (name, data) in files {
        use base64::Engine;
        let meta = format!(
            "filename {}",
            base64::engine::general_purpose::STANDARD.encode(name)
        );
        let r =
            s.c.post(format!("{}{uploads}", s.base))
                .header("Tus-Resumable", "1.0.0")
                .header("Upload-Length", data.len().to_string())
                .header("Upload-Metadata", meta)
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 201);
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let r =
            s.c.patch(format!("{}{loc}", s.base))
                .header("Tus-Resumable", "1.0.0")
                .header("Upload-Offset", "0")
                .header("Content-Type", "application/offset+octet-stream")
                .body(data.to_vec())
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 204);
        names.push(loc);
    }
    (j["id"].as_str().unwrap().to_string(), names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_follows_the_policy_and_a_removed_file_is_not_sent() {
    let gw = Gateway::start(
        "fs",
        "[links]\nrequire_password = true\nmax_expiry = \"3d\"\nallow_never = false\n",
    )
    .await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    let s = Staff::new(&gw);
    let token = s.session("alice", "alice secret").await;

    // The page shows the policy: a required password, no choice past 3 days.
    let page = s.get("/app/send").await.body;
    assert!(
        page.contains("value=\"3d\"") && !page.contains("value=\"1w\""),
        "{page}"
    );
    assert!(!page.contains("value=\"never\""));
    assert!(
        page.contains("name=\"password\" type=\"password\" autocomplete=\"new-password\" required")
    );

    // The draft is made under this policy (it used to fail with a 500).
    let keep = common::pattern(40_000, 1);
    let (id, uploads) = staff_upload(
        &s,
        &token,
        &[
            ("keep.bin", &keep),
            ("oops.bin", b"not for them"),
            ("late.bin", b"removed as it finished"),
        ],
    )
    .await;
    // A file removed while still uploading (declared, no bytes yet).
    let meta = {
        use base64::Engine;
        format!(
            "filename {}",
            base64::engine::general_purpose::STANDARD.encode("half.bin")
        )
    };
    let r =
        s.c.post(format!(
            "{}{}",
            s.base,
            uploads[0].rsplit_once('/').unwrap().0
        ))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "1000")
        .header("Upload-Metadata", meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let half = r.headers()["location"].to_str().unwrap().to_string();
    for up in [&uploads[2], &half] {
        let r = s
            .post(
                &format!("/app/send/{id}/withdraw"),
                &[("csrf", &token), ("upload", up)],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("true"), "{}", r.body);
    }

    // The removed file leaves the draft.
    let r = s
        .post(
            &format!("/app/send/{id}/withdraw"),
            &[("csrf", &token), ("name", "oops.bin")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .post(&format!("/app/send/{id}/withdraw"), &[("name", "keep.bin")])
        .await;
    assert_eq!(r.status, 403, "the token is needed");

    let finish = format!("/app/send/{id}/finish");
    // No title, no password: refused with a clear word, the draft stays.
    let r = s
        .post(&finish, &[("csrf", &token), ("password", "pw")])
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("title"), "{}", r.body);
    let r = s
        .post(
            &finish,
            &[("csrf", &token), ("title", "T"), ("expires", "3d")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("password is required"), "{}", r.body);
    let r = s
        .post(
            &finish,
            &[
                ("csrf", &token),
                ("title", "T"),
                ("expires", "1w"),
                ("password", "pw"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("at most"), "{}", r.body);

    let r = s
        .post(
            &finish,
            &[
                ("csrf", &token),
                ("title", "Contracts"),
                ("to_name_0", "Bob"),
                ("to_email_0", "bob@example.com"),
                ("to_name_1", "Carol"),
                ("to_email_1", "carol@example.com"),
                ("expires", "3d"),
                ("password", "open sesame"),
                ("ref_type", "project"),
                ("ref_value", "P-1"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let url = reach(&gw, j["url"].as_str().unwrap());
    let link = gw.db.blocking().link_by_public_id(&id).unwrap().unwrap();
    assert_eq!(
        link.recipients,
        vec!["bob@example.com", "carol@example.com"]
    );
    assert!(link.password_hash.is_some());
    let reference = link
        .reference
        .clone()
        .expect("the reference of the send form");
    assert_eq!(
        (reference.kind.as_str(), reference.value.as_str()),
        ("project", "P-1")
    );
    let files = gw.db.blocking().link_files(link.id).unwrap();
    let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["keep.bin"],
        "the removed file is not in the link"
    );
    assert_eq!(files[0].sha256.as_deref(), Some(sha(&keep).as_str()));
    assert!(
        !gw.config
            .data_dir
            .join("transfers")
            .join(&id)
            .join("oops.bin")
            .exists(),
        "its copy is gone"
    );

    // The recipient, with the password, sees only the kept file.
    let visitor = client();
    let page = visitor
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf_v = common::csrf(&page);
    let r = visitor
        .post(format!("{url}/password"))
        .form(&[("csrf", csrf_v.as_str()), ("password", "open sesame")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = visitor
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("keep.bin"), "{page}");
    assert!(!page.contains("oops.bin"), "{page}");
}

/// The link's URL as its page shows it (the copy field).
fn shown_url(page: &str) -> String {
    let at = page
        .find("id=\"url\" value=\"")
        .unwrap_or_else(|| panic!("no URL on {page}"))
        + 16;
    page[at..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_is_copied_from_its_page_and_edits_change_the_recipients_gate() {
    let mut gw = Gateway::start("fs", "").await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    let (id, token) = send(
        &gw,
        "alice",
        "plan.txt",
        &["--title", "Old title", "--message", "Old message"],
    );
    let s = Staff::new(&gw);
    let csrf_token = s.session("alice", "alice secret").await;
    let page = format!("/app/links/{id}");

    // Copy the link from the page at any time: it is the URL and it opens.
    let detail = s.get(&page).await.body;
    let url = shown_url(&detail);
    assert!(url.ends_with(&format!("/l/{token}")), "{url}");
    assert!(detail.contains("data-copy=\"url\""));
    let visitor = bare();
    let r = visitor.get(gw.url(&token)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Old title"));

    // Edit: a password, an allowed address, a new title, a usage limit.
    let edit = |fields: Vec<(&'static str, String)>| {
        let mut form: Vec<(&str, String)> = vec![("csrf", csrf_token.clone())];
        form.extend(fields);
        form
    };
    let post = |form: Vec<(&'static str, String)>| {
        let s = &s;
        let path = format!("{page}/edit");
        async move {
            let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.post(&path, &f).await
        }
    };
    let r = post(edit(vec![
        ("title", "New title".into()),
        ("message", "Old message".into()),
        ("recipients", String::new()),
        ("password", "first pass".into()),
        ("allowed_emails", "Bob@Example.com".into()),
        ("max_uses", "5".into()),
        ("expires", String::new()),
    ]))
    .await;
    assert_eq!(
        (r.status, r.location.as_deref()),
        (303, Some(page.as_str())),
        "{}",
        r.body
    );
    let shown = s.get(&page).await.body;
    assert!(shown.contains("Saved:"), "{shown}");
    let link = gw.db.blocking().link_by_public_id(&id).unwrap().unwrap();
    assert_eq!(link.title, "New title");
    assert_eq!(link.allowed_emails, ["bob@example.com"]);
    assert_eq!(link.max_uses, Some(5));
    assert!(link.password_hash.is_some());
    assert_eq!(shown_url(&shown), url, "editing keeps the URL");

    // The recipient now meets the password, then the e-mail check.
    let v = client();
    let landing = v.get(gw.url(&token)).send().await.unwrap();
    assert_eq!(landing.status(), 200);
    let body = landing.text().await.unwrap();
    assert!(body.contains("name=\"password\""), "{body}");
    assert!(!body.contains("New title") && !body.contains("plan.txt"));
    let r = v
        .post(format!("{}/password", gw.url(&token)))
        .form(&[
            ("csrf", common::csrf(&body).as_str()),
            ("password", "first pass"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let body = v
        .get(gw.url(&token))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("name=\"email\""), "{body}");

    // A changed password: the grant of the old one no longer opens the link.
    let r = post(edit(vec![("password", "second pass".into())])).await;
    assert_eq!(r.status, 303);
    let body = v
        .get(gw.url(&token))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("name=\"password\""), "{body}");

    // Password and address list removed: the files show to anyone again.
    let r = post(edit(vec![
        ("no_password", "yes".into()),
        ("allowed_emails", String::new()),
        ("max_uses", String::new()),
    ]))
    .await;
    assert_eq!(r.status, 303);
    let body = bare()
        .get(gw.url(&token))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("plan.txt") && body.contains("New title"),
        "{body}"
    );
    let link = gw.db.blocking().link_by_public_id(&id).unwrap().unwrap();
    assert_eq!(
        (link.password_hash, link.max_uses, link.allowed_emails.len()),
        (None, None, 0)
    );

    // Bad input changes nothing and says why.
    let r = post(edit(vec![("allowed_emails", "not an address".into())])).await;
    assert_eq!(r.status, 303);
    assert!(s.get(&page).await.body.contains("is not an e-mail address"));

    let rows = gw
        .stop_and_audit(AuditQuery {
            path: Some(format!("link:{id}")),
            action: Some("link_edit".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await;
    let details: Vec<String> = rows
        .iter()
        .filter(|e| e.outcome == wharf::audit::Outcome::Ok)
        .map(|e| e.detail.clone().unwrap_or_default())
        .collect();
    assert_eq!(details.len(), 3, "{rows:?}");
    assert!(details[2].contains("title") && details[2].contains("password set"));
    assert!(details[2].contains("allowed e-mails bob@example.com"));
    assert!(details[2].contains("usage limit 5"));
    assert!(details[1].contains("password changed"), "{details:?}");
    assert!(details[0].contains("password removed"), "{details:?}");
    let all = format!("{rows:?}");
    assert!(!all.contains("first pass") && !all.contains("second pass"));
    assert!(rows.iter().all(|e| e.actor.as_deref() == Some("alice")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_link_is_restored_by_an_administrator_only() {
    let mut gw = Gateway::start("fs", "").await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    add_user(&gw, "root2", Some("root secret"), "all");
    gw.db.blocking().user_set_admin("root2", true).unwrap();
    let (id, token) = send(&gw, "alice", "keep.txt", &[]);
    let page = format!("/app/links/{id}");
    let alice = Staff::new(&gw);
    let a_csrf = alice.session("alice", "alice secret").await;

    // Cancel: visitors are turned away; the copy stays.
    let r = alice
        .post(&format!("{page}/revoke"), &[("csrf", &a_csrf)])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        bare().get(gw.url(&token)).send().await.unwrap().status(),
        410
    );
    let copy = gw
        .config
        .data_dir
        .join("transfers")
        .join(&id)
        .join("keep.txt");
    assert!(copy.exists(), "cancelling keeps the files");

    // Alice may neither restore nor delete, and is not offered to.
    let shown = alice.get(&page).await.body;
    assert!(!shown.contains(&format!("{page}/restore")));
    assert!(!shown.contains(&format!("{page}/delete")));
    for action in ["restore", "delete"] {
        let r = alice
            .post(
                &format!("{page}/{action}"),
                &[("csrf", &a_csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.status, 303);
        assert!(alice
            .get(&page)
            .await
            .body
            .contains(&format!("only an administrator may {action}")));
    }
    assert_eq!(
        bare().get(gw.url(&token)).send().await.unwrap().status(),
        410
    );

    // An administrator opens alice's link and restores it: the same URL works.
    let admin = Staff::new(&gw);
    let r_csrf = admin.session("root2", "root secret").await;
    let shown = admin.get(&page).await.body;
    assert!(
        shown.contains(&format!("action=\"{page}/restore\"")),
        "{shown}"
    );
    let r = admin
        .post(&format!("{page}/restore"), &[("csrf", &r_csrf)])
        .await;
    assert_eq!(r.status, 303);
    assert!(admin.get(&page).await.body.contains("active again"));
    let r = bare().get(gw.url(&token)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("keep.txt"));

    // Once retention purged the copies, there is nothing to restore.
    alice
        .post(&format!("{page}/revoke"), &[("csrf", &a_csrf)])
        .await;
    let n = gw.db.blocking().link_by_public_id(&id).unwrap().unwrap().id;
    gw.db.blocking().link_delete_files(n).unwrap();
    let r = admin
        .post(&format!("{page}/restore"), &[("csrf", &r_csrf)])
        .await;
    assert_eq!(r.status, 303);
    assert!(admin.get(&page).await.body.contains("already purged"));

    let rows = gw
        .stop_and_audit(AuditQuery {
            path: Some(format!("link:{id}")),
            limit: 100,
            ..AuditQuery::default()
        })
        .await;
    let outcomes: Vec<(String, String, &str)> = rows
        .iter()
        .filter(|e| e.action == "link_restore" || e.action == "link_delete")
        .map(|e| {
            (
                e.action.clone(),
                e.actor.clone().unwrap_or_default(),
                e.outcome.as_str(),
            )
        })
        .collect();
    for want in [
        ("link_restore", "alice", "denied"),
        ("link_delete", "alice", "denied"),
        ("link_restore", "root2", "ok"),
        ("link_restore", "root2", "denied"),
    ] {
        assert!(
            outcomes
                .iter()
                .any(|(a, u, o)| (a.as_str(), u.as_str(), *o) == want),
            "{want:?} in {outcomes:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_the_database_alone_opens_no_link() {
    let mut gw = Gateway::start("fs", "").await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    let (id, token) = send(&gw, "alice", "secret.txt", &[]);
    assert_eq!(
        bare().get(gw.url(&token)).send().await.unwrap().status(),
        200
    );
    gw.stop_and_audit(AuditQuery::default()).await;

    // The database moved to a fresh data directory: new keys are made there.
    let other = tempfile::tempdir().unwrap();
    let data = other.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // The database with its write-ahead log (what is not checkpointed yet).
    for ext in ["", "-wal"] {
        let from = format!("{}{ext}", gw.config.database_path().display());
        if std::path::Path::new(&from).exists() {
            std::fs::copy(&from, data.join(format!("wharf.db{ext}"))).unwrap();
        }
    }
    let file = other.path().join("wharf.toml");
    std::fs::write(
        &file,
        "[http]\nlisten = \"127.0.0.1:0\"\n[ftps]\nenabled = false\n[sftp]\nenabled = false\n",
    )
    .unwrap();
    let config = wharf::config::Config::load(Some(&file), Some(&data)).unwrap();
    let app = wharf::app::App::open(config.clone()).unwrap();
    let running = app.start().await.unwrap();
    let base = format!("http://{}", running.http.unwrap());

    // What that server would make of the link (its URL, derived with its key)
    // opens nothing, and its staff page shows no URL.
    let link = gw.db.blocking().link_by_public_id(&id).unwrap().unwrap();
    let key = wharf::links::token::TokenKey::load_or_create(&data).unwrap();
    let derived = key.token(&id, link.generation.unwrap());
    assert_ne!(derived, token);
    let r = bare()
        .get(format!("{base}/l/{derived}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let s = Staff {
        base: base.clone(),
        c: client(),
    };
    s.session("alice", "alice secret").await;
    let page = s.get(&format!("/app/links/{id}")).await.body;
    assert!(!page.contains("id=\"url\""), "{page}");
    assert!(!page.contains(&derived) && !page.contains(&token));
    assert!(page.contains("cannot be shown"));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_made_before_derived_tokens_works_but_cannot_be_shown() {
    let gw = Gateway::start("fs", "").await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    let (id, _) = send(&gw, "alice", "old.txt", &["--to", "carol@example.com"]);
    // As an older wharf left it: a random token, no generation.
    let old_token = "ab".repeat(32);
    let conn = rusqlite::Connection::open(gw.config.database_path()).unwrap();
    conn.execute(
        "UPDATE links SET token_hash = ?1, generation = NULL WHERE public_id = ?2",
        rusqlite::params![wharf::links::token::hash(&old_token), id],
    )
    .unwrap();
    drop(conn);
    assert_eq!(
        bare()
            .get(gw.url(&old_token))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let s = Staff::new(&gw);
    let csrf_token = s.session("alice", "alice secret").await;
    let page = format!("/app/links/{id}");
    let shown = s.get(&page).await.body;
    assert!(!shown.contains("id=\"url\""));
    assert!(shown.contains("cannot be shown"), "{shown}");
    // Resending cannot mail the same URL; regenerating gives a showable one.
    let r = s
        .post(&format!("{page}/resend"), &[("csrf", &csrf_token)])
        .await;
    assert_eq!(r.status, 303);
    assert!(s.get(&page).await.body.contains("regenerate it"));
    let r = s
        .post(&format!("{page}/regenerate"), &[("csrf", &csrf_token)])
        .await;
    assert_eq!(r.status, 200);
    let url = shown_url(&s.get(&page).await.body);
    let token = url.rsplit('/').next().unwrap();
    assert_eq!(
        bare().get(gw.url(token)).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        bare()
            .get(gw.url(&old_token))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_download_their_links_files_from_the_page_audited() {
    let mut gw = Gateway::start("fs", "").await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    add_user(&gw, "bob", Some("bob secret"), "all");
    let (id, _) = send(&gw, "alice", "report.bin", &["--one-time"]);
    let (bobs, _) = send(&gw, "bob", "bob.bin", &[]);
    let home = gw.config.data_dir.join("files/home/alice");
    std::fs::create_dir_all(&home).unwrap();
    let shared = common::pattern(300_000, 5);
    std::fs::write(home.join("shared.bin"), &shared).unwrap();
    let (share, _) = gw.link(&["share", "/shared.bin", "--as", "alice"]);
    let s = Staff::new(&gw);
    s.session("alice", "alice secret").await;

    for (link, want) in [
        (&id, b"contents of report.bin".to_vec()),
        (&share, shared.clone()),
    ] {
        let page = s.get(&format!("/app/links/{link}")).await.body;
        let at = page
            .find(&format!("/app/links/{link}/files/"))
            .unwrap_or_else(|| panic!("no download on {page}"));
        let href: String = page[at..].chars().take_while(|c| *c != '"').collect();
        let r = s.c.get(format!("{}{href}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{href}");
        assert_eq!(
            common::sha256(&r.bytes().await.unwrap()),
            common::sha256(&want)
        );
    }
    // The one-time link is still unused: staff downloads are not the recipient's.
    let link = gw.db.blocking().link_by_public_id(&id).unwrap().unwrap();
    assert_eq!(link.uses, 0);
    // Someone else's link, an unknown file: 404.
    let other = gw.db.blocking().link_by_public_id(&bobs).unwrap().unwrap();
    let fid = gw.db.blocking().link_files(other.id).unwrap()[0].id;
    assert_eq!(
        s.get(&format!("/app/links/{bobs}/files/{fid}"))
            .await
            .status,
        404
    );
    assert_eq!(
        s.get(&format!("/app/links/{id}/files/999999")).await.status,
        404
    );

    let rows = gw
        .stop_and_audit(AuditQuery {
            limit: 200,
            ..AuditQuery::default()
        })
        .await;
    let staff_rows: Vec<_> = rows
        .iter()
        .filter(|e| e.action == "link_staff_download")
        .collect();
    assert_eq!(staff_rows.len(), 2, "{rows:?}");
    assert!(staff_rows
        .iter()
        .all(|e| e.actor.as_deref() == Some("alice") && e.outcome == wharf::audit::Outcome::Ok));
    let downloads: Vec<_> = rows
        .iter()
        .filter(|e| e.action == "download" && e.actor.as_deref() == Some("alice"))
        .collect();
    assert_eq!(downloads.len(), 2, "{rows:?}");
    let mut bytes: Vec<u64> = downloads.iter().map(|e| e.bytes.unwrap_or(0)).collect();
    bytes.sort();
    assert_eq!(bytes, [22, 300_000]);
    assert!(downloads
        .iter()
        .all(|e| e.outcome == wharf::audit::Outcome::Ok));
}

/// A link of `owner` straight into the store (fast, for lists of many links).
fn stored_link(
    gw: &Gateway,
    owner: &str,
    title: &str,
    file: &str,
    tweak: impl FnOnce(&mut wharf::store::NewLink),
) -> String {
    let public_id = format!("t{}", &wharf::links::token::new_public_id()[1..]);
    let mut new = wharf::store::NewLink {
        public_id: public_id.clone(),
        token_hash: wharf::links::token::new_token().1,
        kind: wharf::store::LinkKind::Send,
        owner: owner.into(),
        title: title.into(),
        message: String::new(),
        recipients: Vec::new(),
        expires_at: Some(wharf::store::now_ms() + 86_400_000),
        max_uses: None,
        password_hash: None,
        allowed_emails: Vec::new(),
        state: wharf::store::LinkState::Active,
        name: String::new(),
        inbound: None,
        generation: None,
        client_id: None,
        reference: None,
    };
    tweak(&mut new);
    let file = wharf::store::LinkFile {
        id: 0,
        name: file.into(),
        path: format!("/{public_id}/{file}"),
        is_dir: false,
        size: 3,
        sha256: None,
    };
    gw.db.blocking().link_insert(&new, &[file]).unwrap();
    public_id
}

/// The link ids of a dashboard page, in the order shown.
fn listed(page: &str) -> Vec<String> {
    page.split("<tr><td><a href=\"/app/links/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_searches_filters_sorts_and_pages_and_admins_see_everyone() {
    let gw = Gateway::start("fs", "").await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    add_user(&gw, "bob", Some("bob secret"), "all");
    add_user(&gw, "boss", Some("boss secret"), "all");
    gw.db.blocking().user_set_admin("boss", true).unwrap();
    let now = wharf::store::now_ms();
    // 30 links of alice, created one millisecond apart (ids order them too).
    let mut ids = Vec::new();
    for i in 0..30 {
        let id = stored_link(
            &gw,
            "alice",
            &format!("Report {i:02}"),
            &format!("r{i:02}.pdf"),
            |l| {
                if i == 7 {
                    l.recipients = vec!["dave@example.com".into()];
                }
                if i == 11 {
                    l.kind = wharf::store::LinkKind::Share;
                }
                if i == 12 {
                    l.expires_at = Some(now - 3_600_000);
                }
            },
        );
        ids.push(id);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let budget = stored_link(&gw, "alice", "Numbers", "budget-2027.xlsx", |_| {});
    let bobs = stored_link(&gw, "bob", "Bob's plans", "plans.txt", |_| {});

    let s = Staff::new(&gw);
    s.session("alice", "alice secret").await;
    // Paging: 25 a page, newest first.
    let p1 = s.get("/app").await.body;
    let shown = listed(&p1);
    assert_eq!(shown.len(), 25, "{p1}");
    assert_eq!(shown[0], budget, "newest first");
    assert!(p1.contains("Page 1 of 2 · 31 links"), "{p1}");
    assert!(!shown.contains(&bobs), "only alice's own links");
    let p2 = s.get("/app?page=2").await.body;
    let second = listed(&p2);
    assert_eq!(second.len(), 6);
    assert_eq!(second.last().unwrap(), &ids[0], "the oldest last");
    assert!(p2.contains("Page 2 of 2") && p2.contains("rel=\"prev\""));
    // Search: title words, a recipient, a file name; filters: status, kind.
    assert_eq!(
        listed(&s.get("/app?q=report+07").await.body),
        vec![ids[7].clone()]
    );
    assert_eq!(
        listed(&s.get("/app?q=dave%40example").await.body),
        vec![ids[7].clone()]
    );
    assert_eq!(
        listed(&s.get("/app?q=budget-2027").await.body),
        vec![budget.clone()]
    );
    assert_eq!(
        listed(&s.get("/app?q=100%25").await.body),
        Vec::<String>::new(),
        "% is literal"
    );
    assert_eq!(
        listed(&s.get("/app?kind=share").await.body),
        vec![ids[11].clone()]
    );
    let expired = s.get("/app?status=expired").await.body;
    assert_eq!(listed(&expired), vec![ids[12].clone()], "{expired}");
    // An ended link shows when it ended, not a countdown; times are <time>
    // elements with the UTC text (the script shows local time).
    assert!(
        expired.contains("class=\"ended\">expired</span>"),
        "{expired}"
    );
    assert!(
        !expired.contains("data-expires="),
        "no countdown of an ended link"
    );
    assert!(expired.contains("<time datetime=\"") && expired.contains(" UTC</time>"));
    assert!(expired.contains("src=\"/static/localtime.js\""));
    let js = s.get("/static/localtime.js").await;
    assert_eq!(js.status, 200);
    assert!(js.body.contains("time[datetime]"));
    let active = listed(&s.get("/app?status=active&page=2").await.body);
    assert_eq!(active.len(), 5, "31 minus the expired one, 25 on page 1");
    // Sorting by name, both ways.
    let az = listed(&s.get("/app?sort=title&dir=asc").await.body);
    assert_eq!(az[0], budget, "Numbers before Report 00");
    assert_eq!(az[1], ids[0]);
    let za = listed(&s.get("/app?sort=title&dir=desc").await.body);
    assert_eq!(za[0], ids[29]);
    // An owner filter from a non-administrator changes nothing.
    assert!(!listed(&s.get("/app?owner=bob").await.body).contains(&bobs));
    assert!(!p1.contains("id=\"f-owner\""), "no owner filter for staff");

    // An administrator sees everyone's links, can narrow to one owner, and
    // opens and manages another user's link from there.
    let a = Staff::new(&gw);
    let token = a.session("boss", "boss secret").await;
    let all = a.get("/app").await.body;
    assert!(
        all.contains("All links") && all.contains("id=\"f-owner\""),
        "{all}"
    );
    assert!(listed(&all).contains(&bobs), "{all}");
    assert!(all.contains("Page 1 of 2 · 32 links"), "{all}");
    let only_bob = a.get("/app?owner=bob").await.body;
    assert_eq!(listed(&only_bob), vec![bobs.clone()]);
    assert!(only_bob.contains("<td data-label=\"Owner\">bob</td>"));
    let page = a.get(&format!("/app/links/{bobs}")).await;
    assert_eq!(page.status, 200);
    let r = a
        .post(&format!("/app/links/{bobs}/revoke"), &[("csrf", &token)])
        .await;
    assert_eq!(r.status, 303);
    let bob_link = gw.db.blocking().link_by_public_id(&bobs).unwrap().unwrap();
    assert_eq!(bob_link.state, wharf::store::LinkState::Revoked);
    let revoked = a.get("/app?status=revoked").await.body;
    assert_eq!(listed(&revoked), vec![bobs.clone()]);
    assert!(revoked.contains("class=\"ended\">cancelled</span>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_share_permission_no_link_can_be_created() {
    let gw = Gateway::start("fs", "").await;
    gw.db
        .blocking()
        .user_insert(&NewUser {
            name: "viewer".into(),
            password_hash: Some(wharf::secret::hash_password("viewer secret").unwrap()),
            home: VPath::parse("/home/viewer").unwrap(),
            perms: "list,read,write".parse().unwrap(),
            protocols: "all".parse().unwrap(),
            key_and_password: false,
        })
        .unwrap();
    std::fs::create_dir_all(home_dir(&gw, "viewer")).unwrap();
    std::fs::write(home_dir(&gw, "viewer").join("a.txt"), b"A").unwrap();
    let mine = stored_link(&gw, "viewer", "Made before", "old.txt", |_| {});
    let s = Staff::new(&gw);
    let token = s.session("viewer", "viewer secret").await;
    let dash = s.get("/app").await.body;
    assert!(
        listed(&dash).contains(&mine),
        "their links are still listed"
    );
    assert!(!dash.contains("+ Create"), "no create menu: {dash}");
    for path in ["/app/send", "/app/share?path=%2Fa.txt", "/app/request"] {
        let r = s.get(path).await;
        assert_eq!(r.status, 403, "{path}");
        assert!(r.body.contains("share permission"), "{}", r.body);
    }
    let before = gw.db.blocking().link_list(None).unwrap().len();
    for (path, form) in [
        ("/app/send/draft", vec![("csrf", token.as_str())]),
        (
            "/app/share",
            vec![
                ("csrf", token.as_str()),
                ("paths", "/a.txt"),
                ("title", "x"),
            ],
        ),
        (
            "/app/request",
            vec![("csrf", token.as_str()), ("folder", "/in")],
        ),
    ] {
        assert_eq!(s.post(path, &form).await.status, 403, "{path}");
    }
    assert_eq!(
        gw.db.blocking().link_list(None).unwrap().len(),
        before,
        "nothing made"
    );

    // The CLI acting as viewer is refused, and the refusal is audited with the
    // administrator running the command.
    let out = gw
        .wharf()
        .args(["link", "share", "/a.txt", "--as", "viewer"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("may not create links"), "{err}");
    let rows = gw
        .db
        .blocking()
        .audit_query(&AuditQuery {
            action: Some("link_create".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .unwrap();
    let row = &rows[0].event;
    assert_eq!(row.outcome, wharf::audit::Outcome::Denied);
    assert!(row.actor.as_deref().unwrap().starts_with("cli:"), "{row:?}");
    assert!(
        row.detail.as_deref().unwrap().contains("acting as viewer"),
        "{row:?}"
    );

    // Granted the permission, viewer shares (the web and the CLI).
    gw.cli(&["user", "share", "viewer", "on"]);
    assert!(s.get("/app").await.body.contains("+ Create"));
    assert_eq!(s.get("/app/send").await.status, 200);
    let (id, _) = gw.link(&["share", "/a.txt", "--as", "viewer"]);
    let rows = gw
        .db
        .blocking()
        .audit_query(&AuditQuery {
            path: Some(format!("link:{id}")),
            limit: 10,
            ..AuditQuery::default()
        })
        .unwrap();
    assert!(rows[0]
        .event
        .detail
        .as_deref()
        .unwrap()
        .contains("acting as viewer"));
    gw.cli(&["user", "share", "viewer", "off"]);
    assert_eq!(s.get("/app/request").await.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_contacts_and_references_file_links_and_filter_the_dashboard() {
    let gw = Gateway::start("fs", "").await;
    add_user(&gw, "alice", Some("alice secret"), "all");
    add_user(&gw, "bob", Some("bob secret"), "all");
    std::fs::create_dir_all(home_dir(&gw, "alice")).unwrap();
    std::fs::write(home_dir(&gw, "alice").join("plan.pdf"), b"PLAN").unwrap();
    let s = Staff::new(&gw);
    let token = s.session("alice", "alice secret").await;
    let r = s
        .post(
            "/app/clients/add",
            &[
                ("csrf", &token),
                ("name", "Acme <Corp>"),
                ("notes", "since 2019"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let acme = gw.db.blocking().client_list(Some("alice")).unwrap()[0].clone();
    assert!(!acme.shared);
    let id = acme.id.to_string();
    let r = s
        .post(
            "/app/clients/contact-add",
            &[
                ("csrf", &token),
                ("client", &id),
                ("name", "Wile E."),
                ("email", "Wile@Acme.example"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let book = s.get("/app/clients").await.body;
    assert!(
        book.contains("Acme &lt;Corp&gt;") && book.contains("wile@acme.example"),
        "{book}"
    );
    // Without the token, nothing changes.
    assert_eq!(
        s.post("/app/clients/add", &[("name", "Evil")]).await.status,
        403
    );

    // The share form offers the client, carrying its contacts for suggestion.
    let form = s.get("/app/share?path=%2Fplan.pdf").await.body;
    assert!(
        form.contains(&format!("<option value=\"{id}\" data-contacts=")),
        "{form}"
    );
    assert!(form.contains("wile@acme.example") && form.contains("src=\"/static/contacts.js\""));
    let r = s
        .post(
            "/app/share",
            &[
                ("csrf", &token),
                ("paths", "/plan.pdf"),
                ("title", "The plan"),
                ("to", "wile@acme.example"),
                ("client", &id),
                ("ref_type", "ticket"),
                ("ref_value", "OPS-42"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let link = gw.db.blocking().link_list(Some("alice")).unwrap()[0].clone();
    assert_eq!(link.client_id, Some(acme.id));
    let reference = link.reference.clone().unwrap();
    assert_eq!(
        (reference.kind.as_str(), reference.value.as_str()),
        ("ticket", "OPS-42")
    );
    let other = stored_link(&gw, "alice", "Unfiled", "u.txt", |_| {});
    let page = s.get(&format!("/app/links/{}", link.public_id)).await.body;
    assert!(
        page.contains("<dt>Client</dt><dd><a href=\"/app?client="),
        "{page}"
    );
    assert!(
        page.contains("Acme &lt;Corp&gt;") && page.contains(">ticket</span> OPS-42"),
        "{page}"
    );
    // The dashboard filters by client, reference type and reference id.
    assert_eq!(
        listed(&s.get(&format!("/app?client={id}")).await.body),
        vec![link.public_id.clone()]
    );
    assert_eq!(
        listed(&s.get("/app?ref_type=ticket").await.body),
        vec![link.public_id.clone()]
    );
    assert_eq!(
        listed(&s.get("/app?ref=ops-4").await.body),
        vec![link.public_id.clone()]
    );
    assert!(listed(&s.get("/app?ref=OPS-99").await.body).is_empty());
    assert!(listed(&s.get("/app").await.body).contains(&other));
    // The edit form changes the reference and removes the client.
    let r = s
        .post(
            &format!("/app/links/{}/edit", link.public_id),
            &[
                ("csrf", &token),
                ("client", ""),
                ("ref_type", "project"),
                ("ref_value", "https://pm.example/p/7"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let edited = gw
        .db
        .blocking()
        .link_by_public_id(&link.public_id)
        .unwrap()
        .unwrap();
    assert_eq!(edited.client_id, None);
    assert_eq!(edited.reference.unwrap().value, "https://pm.example/p/7");
    let page = s.get(&format!("/app/links/{}", link.public_id)).await.body;
    assert!(
        page.contains("href=\"https://pm.example/p/7\" rel=\"noopener noreferrer\""),
        "{page}"
    );

    // Bob does not see alice's private client, cannot file a link under it or
    // change it; shared, he sees and uses it, but still cannot change it.
    let b = Staff::new(&gw);
    let btoken = b.session("bob", "bob secret").await;
    assert!(!b.get("/app/clients").await.body.contains("Acme"));
    let r = b
        .post(
            "/app/clients/contact-add",
            &[("csrf", &btoken), ("client", &id), ("email", "x@y.example")],
        )
        .await;
    assert_eq!(r.status, 303);
    let flash = b.get("/app/clients").await.body;
    assert!(flash.contains("no client with id"), "{flash}");
    let out = gw
        .wharf()
        .args(["link", "share", "/x", "--as", "bob", "--client", &id])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let r = s
        .post(
            "/app/clients/edit",
            &[
                ("csrf", &token),
                ("client", &id),
                ("name", "Acme"),
                ("notes", ""),
                ("shared", "0"),
                ("shared", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(
        gw.db
            .blocking()
            .client_get(acme.id)
            .unwrap()
            .unwrap()
            .shared
    );
    let shared = b.get("/app/clients").await.body;
    assert!(
        shared.contains("Acme") && shared.contains("by alice"),
        "{shared}"
    );
    assert!(
        !shared.contains("action=\"/app/clients/delete\""),
        "not bob's to change"
    );
    let r = b
        .post(
            "/app/clients/delete",
            &[("csrf", &btoken), ("client", &id), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(gw.db.blocking().client_get(acme.id).unwrap().is_some());
    assert!(b
        .get("/app/send")
        .await
        .body
        .contains(&format!("<option value=\"{id}\"")));
    // Alice removes it: her link keeps going without a client.
    let r = s
        .post(
            &format!("/app/links/{}/edit", link.public_id),
            &[("csrf", &token), ("client", &id)],
        )
        .await;
    assert_eq!(r.status, 303);
    let r = s
        .post(
            "/app/clients/delete",
            &[("csrf", &token), ("client", &id), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(gw.db.blocking().client_get(acme.id).unwrap().is_none());
    let kept = gw
        .db
        .blocking()
        .link_by_public_id(&link.public_id)
        .unwrap()
        .unwrap();
    assert_eq!(kept.client_id, None);
    assert_eq!(kept.state, wharf::store::LinkState::Active);
}
