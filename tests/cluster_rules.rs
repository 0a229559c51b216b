//! Several wharf nodes on one database behave as one gateway: the rules that
//! must hold across nodes are decided in the database (docs/scale-out.md).
//! Two gateways share one SQLite file here (WAL works across connections and
//! processes), each with its own listeners on 127.0.0.1 port 0.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::gateway::Gateway;
use common::ssh::password_login as ssh_login;
use wharf::app::{App, Running};

/// A second node: the same config (same data directory, so the same database,
/// keys and files) started again with listeners of its own.
async fn second_node(first: &Gateway) -> Running {
    App::open(first.config.clone())
        .unwrap()
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_periodic_job_runs_on_one_node_per_turn_and_moves_when_it_stops() {
    // reservation_timeout 1s: the stale-reservation refund runs every second.
    let mut one = Gateway::start("fs", "[links]\nreservation_timeout = \"1s\"\n").await;
    let two = second_node(&one).await;
    let a0 = one.running.as_ref().unwrap().cluster.runs("refund");
    let b0 = two.cluster.runs("refund");
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let a = one.running.as_ref().unwrap().cluster.runs("refund") - a0;
    let b = two.cluster.runs("refund") - b0;
    assert!(
        (a == 0) != (b == 0),
        "exactly one node runs the job: {a} and {b} turns"
    );
    // About 3 turns of one node (each node has its own timer; a loaded
    // machine may delay one); two nodes both running would give about 6.
    assert!((1..=4).contains(&(a + b)), "once per turn: {a} + {b}");
    assert_ne!(
        one.running.as_ref().unwrap().cluster.node_id(),
        two.cluster.node_id()
    );
    // The holder stops; the other node takes the next turn.
    let (holder, other) = if a > 0 {
        (one.running.take().unwrap(), two)
    } else {
        (two, one.running.take().unwrap())
    };
    holder.shutdown().await;
    let before = other.cluster.runs("refund");
    let deadline = Instant::now() + Duration::from_secs(10);
    while other.cluster.runs("refund") < before + 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        other.cluster.runs("refund") >= before + 2,
        "the other node took the job over"
    );
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_on_one_node_ban_the_address_on_the_other() {
    let one = Gateway::start(
        "fs",
        "[defender]\nmax_failures = 3\nwindow = \"1m\"\nban = \"10m\"\n",
    )
    .await;
    let two = second_node(&one).await;
    let two_sftp = two.sftp.unwrap();
    one.add_user("acme", "/acme", "all", Some("right"), None);
    assert!(ssh_login(two_sftp, "acme", "right").await, "not banned yet");
    // Two failures on node 1, one on node 2: the limit counts all nodes.
    assert!(!ssh_login(one.sftp_addr(), "acme", "wrong").await);
    assert!(!ssh_login(one.sftp_addr(), "acme", "wrong").await);
    assert!(ssh_login(two_sftp, "acme", "right").await, "2 of 3");
    assert!(!ssh_login(two_sftp, "acme", "wrong").await);
    assert!(
        !ssh_login(one.sftp_addr(), "acme", "right").await,
        "the node that did not see the last failure refuses the right password"
    );
    // A fresh ban given on node 1 holds on node 2 within the poll.
    let three = second_node(&one).await;
    assert!(
        !ssh_login(three.sftp.unwrap(), "acme", "right").await,
        "a node started later loads the ban"
    );
    assert!(!ssh_login(two_sftp, "acme", "right").await);
    two.shutdown().await;
    three.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_decided_on_one_node_reaches_the_other_within_a_second() {
    let one = Gateway::start(
        "fs",
        "[defender]\nmax_failures = 2\nwindow = \"1m\"\nban = \"10m\"\n",
    )
    .await;
    let two = second_node(&one).await;
    one.add_user("acme", "/acme", "all", Some("right"), None);
    assert!(ssh_login(two.sftp.unwrap(), "acme", "right").await);
    assert!(!ssh_login(one.sftp_addr(), "acme", "wrong").await);
    assert!(!ssh_login(one.sftp_addr(), "acme", "wrong").await);
    // Node 2 refuses at once (its pre-auth check sees the stored ban within
    // the poll; the store reservation refuses meanwhile).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !ssh_login(two.sftp.unwrap(), "acme", "right").await,
        "banned on node 2 too"
    );
    two.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_starting_at_once_on_an_empty_database_make_one_admin() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("wharf.toml");
    std::fs::write(
        &file,
        "[sftp]\nenabled = false\n[ftps]\nenabled = false\n[http]\nenabled = false\n",
    )
    .unwrap();
    let config = wharf::config::Config::load(Some(&file), Some(&tmp.path().join("data"))).unwrap();
    // The nodes share the data directory here to share the database (and so
    // make their link signing key there at the same moment too).
    let start = |c: wharf::config::Config| async move {
        let app = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Handle::current();
            let _in = rt.enter();
            App::open(c)
        })
        .await
        .unwrap()
        .unwrap();
        app.start().await.unwrap()
    };
    let (a, b) = tokio::join!(start(config.clone()), start(config.clone()));
    let passwords = [&a, &b]
        .iter()
        .filter(|r| r.first_admin_password.is_some())
        .count();
    assert_eq!(
        passwords, 1,
        "one node made the admin and shows its password"
    );
    let db = wharf::app::open_db(&config).unwrap();
    let users = db.blocking().user_list().unwrap();
    assert_eq!(users.len(), 1);
    assert!(users[0].admin && users[0].name == "admin");
    a.shutdown().await;
    b.shutdown().await;
}

/// Sends a PATCH over raw TCP whose body goes slowly (so it is still being
/// written when another request comes), then returns the status line.
fn slow_patch(url: &str, cookie: &str, offset: u64, data: &[u8]) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut tcp = std::net::TcpStream::connect(host).unwrap();
    write!(
        tcp,
        "PATCH {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nTus-Resumable: 1.0.0\r\n\
         Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        data.len()
    )
    .unwrap();
    for chunk in data.chunks(data.len() / 20) {
        tcp.write_all(chunk).unwrap();
        tcp.flush().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_per_upload_across_nodes() {
    let one = Gateway::start("fs", "").await;
    let two = second_node(&one).await;
    one.add_user("alice", "/alice", "all", Some("alice-pw-1"), None);
    one.vfs()
        .mkdir(&wharf::vfs::VPath::parse("/alice").unwrap())
        .await
        .unwrap();
    let (_, token) = one.link(&["request", "--as", "alice", "--folder", "/inbox"]);
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    let page = one.url(&token);
    assert_eq!(client.get(&page).send().await.unwrap().status(), 200);
    let cookie = {
        use reqwest::cookie::CookieStore;
        let url = reqwest::Url::parse(&page).unwrap();
        jar.cookies(&url)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let data = common::pattern(2_000_000, 7);
    let r = client
        .post(format!("{page}/uploads"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", data.len().to_string())
        .header("Upload-Metadata", "filename YS5iaW4=") // a.bin
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let on_one = format!("http://{}{location}", one.http_addr());
    let on_two = format!("http://{}{location}", two.http.unwrap());

    // Node 1 is writing (slowly) when the same upload is PATCHed on node 2.
    let slow = {
        let (url, cookie, data) = (on_one.clone(), cookie.clone(), data.clone());
        tokio::task::spawn_blocking(move || slow_patch(&url, &cookie, 0, &data))
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut bad = data.clone();
    bad.reverse();
    let r = client
        .patch(&on_two)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        423,
        "node 2 sees the writer on node 1: {}",
        r.text().await.unwrap()
    );
    let first = slow.await.unwrap();
    assert!(first.contains(" 204"), "{first}");
    let stored = one.stored_sha("/alice/inbox/a.bin").await;
    assert_eq!(stored.as_deref(), Some(common::sha256(&data).as_str()));
    two.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_password_guesses_count_over_all_nodes() {
    let one = Gateway::start("fs", "").await;
    let two = second_node(&one).await;
    let local = one.path("report.bin");
    std::fs::write(&local, common::pattern(10_000, 3)).unwrap();
    let (_, token) = one.link_with_input(
        &["send", local.to_str().unwrap(), "--password-stdin"],
        Some("link secret"),
    );
    let url_one = one.url(&token);
    let url_two = format!("http://{}/l/{token}", two.http.unwrap());
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = c.get(&url_one).send().await.unwrap().text().await.unwrap();
    let token = common::csrf(&page);
    let post = |url: String, password: &'static str| {
        let (c, token) = (c.clone(), token.clone());
        async move {
            c.post(format!("{url}/password"))
                .form(&[("csrf", token.as_str()), ("password", password)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // The limit is 5 wrong guesses per (link, address): 3 on node 1, 2 on node 2.
    for _ in 0..3 {
        assert_eq!(post(url_one.clone(), "wrong").await, 403);
    }
    for _ in 0..2 {
        assert_eq!(post(url_two.clone(), "wrong").await, 403);
    }
    assert_eq!(
        post(url_one.clone(), "link secret").await,
        429,
        "node 1 throttles after node 2's guesses too"
    );
    assert_eq!(post(url_two.clone(), "link secret").await, 429);
    two.shutdown().await;
}

/// STOU on two nodes never hands out one name twice: while node 1's upload to
/// `race.txt` runs (not yet published), node 2's STOU of the same name gets
/// `race.txt.1`, and both files keep their bytes. Before claims were taken in
/// the store, each node saw the name free and the later upload replaced the
/// earlier one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stou_never_gives_one_name_on_two_nodes() {
    let one = Gateway::start("fs", "").await;
    one.add_user("acme", "/acme", "all", Some("pw"), None);
    let two = second_node(&one).await;
    let script = format!(
        r#"{resuming}
import ftplib, ssl, io
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def login(port):
    f = ResumingFTP_TLS(context=ctx, timeout=30)
    f.connect("127.0.0.1", port); f.login("acme", "pw"); f.prot_p()
    return f
a, b = login({port_one}), login({port_two})
conn = a.transfercmd("STOU race.txt")
conn.sendall(b"first")
b.storbinary("STOU race.txt", io.BytesIO(b"second"))
conn.unwrap(); conn.close()
print("A", a.voidresp())
print("NAMES", sorted(a.nlst()))
a.quit(); b.quit()
print("DONE")
"#,
        resuming = common::PY_RESUMING_FTP_TLS,
        port_one = one.ftps_explicit().port(),
        port_two = two.ftps_explicit.unwrap().port(),
    );
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("python3")
            .args(["-c", &script])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ftplib timed out")
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("DONE"), "{text}");
    assert!(text.contains("NAMES ['race.txt', 'race.txt.1']"), "{text}");
    let home = one.config.data_dir.join("files/acme");
    assert_eq!(std::fs::read(home.join("race.txt")).unwrap(), b"first");
    assert_eq!(std::fs::read(home.join("race.txt.1")).unwrap(), b"second");
    two.shutdown().await;
}
