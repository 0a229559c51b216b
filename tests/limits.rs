//! Limits against guessing and against connections that hog the listeners, on
//! the real server with real clients: parallel wrong passwords get no more than
//! the lock-out limit checked; link guesses are throttled per link and never
//! lock the address out of SFTP.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::gateway::Gateway;
use futures::future::join_all;
use russh::keys::PublicKeyOrCertificate;
use wharf::store::AuditQuery;

struct Client;

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// An SSH login with a password and an SFTP session on it; `Err` when refused.
async fn sftp_login(
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> Result<
    (
        russh::client::Handle<Client>,
        russh_sftp::client::RawSftpSession,
    ),
    String,
> {
    let config = Arc::new(russh::client::Config::default());
    let mut ssh = russh::client::connect(config, addr, Client)
        .await
        .map_err(|e| e.to_string())?;
    let auth = ssh
        .authenticate_password(user, password)
        .await
        .map_err(|e| e.to_string())?;
    if !auth.success() {
        return Err("authentication refused".into());
    }
    let channel = ssh
        .channel_open_session()
        .await
        .map_err(|e| e.to_string())?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| e.to_string())?;
    let sftp = russh_sftp::client::RawSftpSession::new(channel.into_stream());
    sftp.init().await.map_err(|e| e.to_string())?;
    Ok((ssh, sftp))
}

fn details(rows: &[wharf::audit::AuditEvent]) -> Vec<String> {
    rows.iter().filter_map(|e| e.detail.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_passwords_get_no_more_than_the_limit_checked() {
    let mut gw = Gateway::start(
        "fs",
        "[defender]\nmax_failures = 5\nwindow = \"5m\"\nban = \"10m\"\n",
    )
    .await;
    gw.add_user("acme", "/acme", "all", Some("right"), None);
    let addr = gw.sftp_addr();
    let tries = (0..30)
        .map(|i| async move { sftp_login(addr, "acme", &format!("wrong{i}")).await.is_ok() });
    let accepted = join_all(tries).await;
    assert!(accepted.iter().all(|ok| !ok), "no wrong password gets in");
    assert!(
        sftp_login(addr, "acme", "right").await.is_err(),
        "the address is locked out, so even the right password is refused"
    );

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("login_failed".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    let details = details(&rows);
    let checked = details
        .iter()
        .filter(|d| d.contains("wrong password"))
        .count();
    let locked = details.iter().filter(|d| d.contains("locked out")).count();
    assert!(
        (1..=5).contains(&checked),
        "{checked} wrong passwords were checked, the limit is 5: {details:?}"
    );
    assert_eq!(
        checked + locked,
        31,
        "every other try was refused unchecked: {details:?}"
    );
}

/// The hidden CSRF field of a form page.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF field")
        + 19;
    page[at..at + 32].to_string()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A send link with a password; returns its URL.
fn protected_link(gw: &Gateway, password: &str) -> String {
    let local = gw.path("report.bin");
    std::fs::write(&local, common::pattern(10_000, 3)).unwrap();
    let (_, token) = gw.link_with_input(
        &["send", local.to_str().unwrap(), "--password-stdin"],
        Some(password),
    );
    gw.url(&token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_guesses_are_throttled_per_link_and_never_lock_out_sftp() {
    let mut gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some("right"), None);
    let url = protected_link(&gw, "link secret");
    let c = browser();
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let token = csrf(&page);
    let mut statuses = Vec::new();
    for i in 0..10 {
        let r = c
            .post(format!("{url}/password"))
            .form(&[("csrf", token.as_str()), ("password", &format!("guess{i}"))])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..5], &[403; 5], "{statuses:?}");
    assert_eq!(&statuses[5..], &[429; 5], "{statuses:?}");

    // The same address still logs in over SFTP, and the staff login page is open.
    let (_ssh, sftp) = sftp_login(gw.sftp_addr(), "acme", "right")
        .await
        .expect("link guesses do not lock the address out of SFTP");
    drop(sftp);
    let login = c
        .get(format!("http://{}/app/login", gw.http_addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("address_banned".into()),
            ..Default::default()
        })
        .await;
    assert!(rows.is_empty(), "no address ban: {rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_link_guesses_get_no_more_than_the_limit_checked() {
    let mut gw = Gateway::start("fs", "").await;
    let url = protected_link(&gw, "link secret");
    let c = browser();
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let token = csrf(&page);
    let guesses = (0..40).map(|i| {
        let (c, url, token) = (c.clone(), url.clone(), token.clone());
        async move {
            c.post(format!("{url}/password"))
                .form(&[("csrf", token.as_str()), ("password", &format!("guess{i}"))])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = join_all(guesses).await;
    let wrong = statuses.iter().filter(|s| **s == 403).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(wrong + throttled, 40, "{statuses:?}");
    assert!(wrong <= 5, "{wrong} guesses were checked: {statuses:?}");

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("link_password_failed".into()),
            limit: 100,
            ..Default::default()
        })
        .await;
    assert!(rows.len() <= 5, "{} guesses audited as checked", rows.len());
}
