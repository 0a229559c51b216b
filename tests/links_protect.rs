//! Protected links through the real link server, a real HTTP client and a real
//! SMTP listener (aiosmtpd): the password form (CSRF, throttling, audit), the
//! e-mail code flow end to end, the same answer for any address, the mail to the
//! recipients at creation and the download notification to the creator.

mod common;

use common::gateway::Gateway;
use common::smtp::smtp;
use wharf::store::AuditQuery;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `wharf link send FILE ARGS` with `password` on standard input.
fn send_with_password(gw: &Gateway, file: &str, password: &str, args: &[&str]) -> (String, String) {
    let mut all = vec!["send", file, "--password-stdin"];
    all.extend_from_slice(args);
    gw.link_with_input(&all, Some(password))
}

async fn post(
    c: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let r = c.post(url).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.text().await.unwrap(), location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_form_csrf_throttle_and_audit() {
    let mut gw = Gateway::start("fs", "").await;
    let data = common::pattern(100_000, 5);
    let local = gw.path("secret.bin");
    std::fs::write(&local, &data).unwrap();
    let (id, token) = send_with_password(&gw, local.to_str().unwrap(), "correct horse", &[]);
    let url = gw.url(&token);
    let c = client();

    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("type=\"password\"") && !page.contains("secret.bin"),
        "files stay hidden"
    );
    let token_field = common::csrf(&page);
    // Arriving from a mail (cross-site, Strict cookies withheld): one same-site reload.
    let from_mail = client()
        .get(&url)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        from_mail.contains("http-equiv=\"refresh\"") && !from_mail.contains("type=\"password\"")
    );
    // Downloads before the password lead back to the form.
    let r = c.get(format!("{url}/f/1")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // A form without the CSRF token (another site's) is refused.
    let (status, body, _) = post(
        &c,
        &format!("{url}/password"),
        &[("password", "correct horse")],
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.contains("expired"));
    let (status, body, _) = post(
        &c,
        &format!("{url}/password"),
        &[("csrf", &token_field), ("password", "wrong")],
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.contains("not right"));
    let (status, _, location) = post(
        &c,
        &format!("{url}/password"),
        &[("csrf", &token_field), ("password", "correct horse")],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some(format!("/l/{token}").as_str()));
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("secret.bin"));
    let r = c
        .get(format!("{url}{}", common::file_path(&page)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        common::sha256(&r.bytes().await.unwrap()),
        common::sha256(&data)
    );
    // Another browser without the password gets nothing.
    assert_eq!(
        client()
            .get(format!("{url}{}", common::file_path(&page)))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );

    // Guessing: after a few wrong passwords the link refuses even the right one.
    let (_, token2) = send_with_password(&gw, local.to_str().unwrap(), "another secret", &[]);
    let url2 = gw.url(&token2);
    let g = client();
    let page = g.get(&url2).send().await.unwrap().text().await.unwrap();
    let t = common::csrf(&page);
    let mut throttled_after = None;
    for i in 0..10 {
        let (status, _, _) = post(
            &g,
            &format!("{url2}/password"),
            &[("csrf", &t), ("password", &format!("guess{i}"))],
        )
        .await;
        if status == 429 {
            throttled_after = Some(i);
            break;
        }
        assert_eq!(status, 403);
    }
    let n = throttled_after.expect("wrong passwords are throttled");
    assert!(n <= 5, "throttled only after {n} guesses");
    let (status, body, _) = post(
        &g,
        &format!("{url2}/password"),
        &[("csrf", &t), ("password", "another secret")],
    )
    .await;
    assert_eq!(status, 429);
    assert!(body.contains("Too many"));

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("link_password_failed".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    assert!(rows.len() >= 4, "{rows:?}");
    assert!(rows.iter().all(|e| e
        .remote
        .as_deref()
        .is_some_and(|r| r.starts_with("127.0.0.1"))));
    assert!(rows
        .iter()
        .any(|e| e.path.as_deref() == Some(&format!("link:{id}"))));
    let throttled = gw.db.blocking().audit_query(&AuditQuery {
        action: Some("link_password_throttled".into()),
        limit: 10,
        ..Default::default()
    });
    assert!(!throttled.unwrap().is_empty());
}

/// The 6-digit code in a mail.
fn code_in(mail: &str) -> String {
    common::mail_code(mail)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_codes_end_to_end_through_a_real_smtp_listener() {
    let mail = smtp();
    let mut gw = Gateway::start("fs", &mail.config()).await;
    // The creator gets download notifications at this address.
    gw.cli(&["user", "email", "admin", "owner-e2e@example.org"]);
    let data = common::pattern(50_000, 11);
    let local = gw.path("plans.pdf");
    std::fs::write(&local, &data).unwrap();
    let (id, token) = gw.link(&[
        "send",
        local.to_str().unwrap(),
        "--title",
        "Plans",
        "--to",
        "bob-e2e@example.org",
        "--allow-email",
        "bob-e2e@example.org,carol-e2e@example.org",
    ]);
    let url = gw.url(&token);

    // The recipient's mail carries the link.
    let invite = mail.wait_for("bob-e2e@example.org", 1);
    assert!(invite[0].contains(&format!("/l/{token}")), "{}", invite[0]);
    assert!(invite[0].contains("Plans") && invite[0].contains("plans.pdf"));

    let c = client();
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("type=\"email\"") && !page.contains("plans.pdf"));
    let t = common::csrf(&page);
    // Someone not on the list gets the same page as someone on it, and no mail.
    let (s1, stranger, _) = post(
        &c,
        &format!("{url}/email"),
        &[("csrf", &t), ("email", "mallory-e2e@example.org")],
    )
    .await;
    let (s2, listed, _) = post(
        &c,
        &format!("{url}/email"),
        &[("csrf", &t), ("email", "Bob-E2E@example.org")],
    )
    .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(
        stranger.replace("mallory-e2e@example.org", "X"),
        listed.replace("bob-e2e@example.org", "X"),
        "the page must not tell listed from unlisted addresses"
    );
    let mails = mail.wait_for("bob-e2e@example.org", 2);
    let code = code_in(&mails[1]);
    assert!(mail.messages_to("mallory-e2e@example.org").is_empty());

    // A wrong code, then the right one.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body, _) = post(
        &c,
        &format!("{url}/code"),
        &[
            ("csrf", &t),
            ("email", "bob-e2e@example.org"),
            ("code", wrong),
        ],
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.contains("not right"));
    // The stranger cannot use Bob's code.
    let (status, _, _) = post(
        &c,
        &format!("{url}/code"),
        &[
            ("csrf", &t),
            ("email", "mallory-e2e@example.org"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, location) = post(
        &c,
        &format!("{url}/code"),
        &[
            ("csrf", &t),
            ("email", "bob-e2e@example.org"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(status, 303, "the right code opens the link");
    assert!(location.is_some());
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let r = c
        .get(format!("{url}{}", common::file_path(&page)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        common::sha256(&r.bytes().await.unwrap()),
        common::sha256(&data)
    );
    // The code was used up.
    let (status, _, _) = post(
        &client(),
        &format!("{url}/code"),
        &[
            ("csrf", &t),
            ("email", "bob-e2e@example.org"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(status, 403);

    // The creator hears about the download.
    let note = mail.wait_for("owner-e2e@example.org", 1);
    assert!(
        note[0].contains("plans.pdf") && note[0].contains("bob-e2e@example.org"),
        "{}",
        note[0]
    );

    // Resend: the same URL goes out again and keeps working.
    let out = gw.cli(&["link", "resend", &id]);
    let resent = out
        .lines()
        .last()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(resent, token);
    let mails = mail.wait_for("bob-e2e@example.org", 3);
    assert!(mails[2].contains(&format!("/l/{token}")), "{}", mails[2]);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);

    let rows = gw
        .stop_and_audit(AuditQuery {
            limit: 200,
            ..Default::default()
        })
        .await;
    let has = |action: &str, detail: &str| {
        rows.iter()
            .any(|e| e.action == action && e.detail.as_deref().is_some_and(|d| d.contains(detail)))
    };
    assert!(has("link_code_sent", "bob-e2e@example.org"));
    assert!(has("link_code_refused", "mallory-e2e@example.org"));
    assert!(has("link_code_failed", "bob-e2e@example.org"));
    assert!(has("link_verified", "bob-e2e@example.org"));
    assert!(has("link_download", "plans.pdf"));
    // Every download row names the address the visitor verified.
    let downloads: Vec<_> = rows
        .iter()
        .filter(|e| e.action == "link_download")
        .collect();
    assert!(!downloads.is_empty());
    for d in downloads {
        assert!(
            d.detail
                .as_deref()
                .is_some_and(|x| x.contains("verified e-mail bob-e2e@example.org")),
            "{d:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_then_email_and_outbox_without_smtp() {
    // No [mail]: messages land in the outbox as .eml files.
    let gw = Gateway::start("fs", "").await;
    let local = gw.path("both.txt");
    std::fs::write(&local, b"both rules").unwrap();
    let (_, token) = send_with_password(
        &gw,
        local.to_str().unwrap(),
        "pw-both",
        &["--allow-email", "dana@example.org"],
    );
    let url = gw.url(&token);
    let c = client();
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let t = common::csrf(&page);
    assert!(page.contains("type=\"password\""));
    let (status, _, _) = post(
        &c,
        &format!("{url}/password"),
        &[("csrf", &t), ("password", "pw-both")],
    )
    .await;
    assert_eq!(status, 303);
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("type=\"email\""),
        "after the password comes the e-mail check"
    );
    let (status, _, _) = post(
        &c,
        &format!("{url}/email"),
        &[("csrf", &t), ("email", "dana@example.org")],
    )
    .await;
    assert_eq!(status, 200);
    let outbox = gw.config.data_dir.join("outbox");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let eml = loop {
        let found = std::fs::read_dir(&outbox)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "eml"))
            })
            .ok()
            .flatten();
        if let Some(p) = found {
            break std::fs::read_to_string(p).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no .eml in {}",
            outbox.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(eml.contains("dana@example.org"));
    let code = code_in(&eml);
    let (status, _, _) = post(
        &c,
        &format!("{url}/code"),
        &[("csrf", &t), ("email", "dana@example.org"), ("code", &code)],
    )
    .await;
    assert_eq!(status, 303);
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let r = c
        .get(format!("{url}{}", common::file_path(&page)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"both rules");
}
