//! Memory per SFTP session (issue 18), measured on this test process, which runs
//! the gateway: many OpenSSH `sftp` sessions idle, then all transferring at once,
//! then closed. Idle sessions must cost little, the transfers must stay within the
//! memory budget, and the memory they used must go back once they end (glibc kept
//! it before: `wharf::allocator`). Bounds are generous (a debug build). Uploads
//! past the shared buffer budget wait for room, on local disk and on S3 (multipart
//! part buffers). The tests run one at a time: the first measures this process.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::gateway::{Gateway, SSH_OPTS};
use common::{backend, p, pattern, sha256, vfs_on};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use wharf::budget::Budget;

/// One test at a time: the first measures this process's memory.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SESSIONS: usize = 40;
const SIZE: usize = 4 << 20;
const MIB: f64 = (1 << 20) as f64;

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

struct Client {
    child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

async fn connect(gw: &Gateway, key: &std::path::Path) -> Client {
    let mut child = Command::new("sftp")
        .current_dir(gw.dir.path())
        .args(SSH_OPTS)
        .arg("-P")
        .arg(gw.sftp_addr().port().to_string())
        .arg("-i")
        .arg(key)
        .args(["-b", "-", "acme@127.0.0.1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all(b"pwd\n").await.unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    Client { child, lines }
}

/// Waits until the session answered its `pwd`: it is logged in.
async fn logged_in(c: &mut Client) {
    let wait = async {
        while let Some(line) = c.lines.next_line().await.unwrap() {
            if line.starts_with("Remote working directory") {
                return;
            }
        }
        panic!("sftp ended before logging in");
    };
    tokio::time::timeout(Duration::from_secs(120), wait)
        .await
        .expect("sftp did not log in within 120 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_sessions_cost_little_idle_stay_bounded_and_give_memory_back() {
    let _one = SERIAL.lock().await;
    let n = SESSIONS + 8;
    let mut gw = Gateway::start(
        "fs",
        &format!("max_sessions = {n}\nmax_per_address = {n}\nmax_unauthenticated_per_address = {n}\n[defender]\nmax_failures = 0\n"),
    )
    .await;
    let key = gw.keygen("key");
    gw.add_user("acme", "/acme", "all", None, Some(&key));
    let data = pattern(SIZE, 7);
    std::fs::write(gw.path("up.bin"), &data).unwrap();
    std::fs::create_dir_all(gw.config.data_dir.join("files/acme/up")).unwrap();
    std::fs::write(gw.config.data_dir.join("files/acme/down.bin"), &data).unwrap();

    // A first session warms up what every session shares (host keys, the store).
    let mut warm = connect(&gw, &key).await;
    logged_in(&mut warm).await;
    drop(warm);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss();

    let mut clients = Vec::new();
    for _ in 0..SESSIONS {
        clients.push(connect(&gw, &key).await);
    }
    for c in clients.iter_mut() {
        logged_in(c).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss();
    let per_idle = idle.saturating_sub(before) as f64 / SESSIONS as f64 / MIB;
    eprintln!(
        "before {:.1} MiB, {SESSIONS} idle {:.1} MiB ({per_idle:.2} MiB each)",
        before as f64 / MIB,
        idle as f64 / MIB
    );
    assert!(per_idle < 2.0, "{per_idle:.2} MiB per idle session");

    // All at once: upload then download SIZE each, sampling the peak.
    let up = gw.path("up.bin");
    for (i, c) in clients.iter_mut().enumerate() {
        let batch = format!(
            "put {} up/f{i}.bin\nget down.bin /dev/null\nbye\n",
            up.display()
        );
        let stdin = c.child.stdin.as_mut().unwrap();
        stdin.write_all(batch.as_bytes()).await.unwrap();
    }
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut waits = Vec::new();
    for c in clients {
        let Client {
            mut child,
            mut lines,
        } = c;
        waits.push(tokio::spawn(async move {
            // Its output is read to the end: a closed pipe would end it early.
            while let Ok(Some(_)) = lines.next_line().await {}
            let status = child.wait().await.unwrap();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut err).await;
            }
            (status.success(), err)
        }));
    }
    while waits.iter().any(|w| !w.is_finished()) {
        assert!(Instant::now() < deadline, "transfers did not end in 600 s");
        peak = peak.max(rss());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (i, w) in waits.into_iter().enumerate() {
        let (ok, err) = w.await.unwrap();
        assert!(ok, "session {i} failed: {err}");
        let got =
            std::fs::read(gw.config.data_dir.join(format!("files/acme/up/f{i}.bin"))).unwrap();
        assert_eq!(sha256(&got), sha256(&data), "upload {i}");
    }
    let per_active = peak.saturating_sub(before) as f64 / SESSIONS as f64 / MIB;
    eprintln!(
        "peak {:.1} MiB with {SESSIONS} transferring ({per_active:.2} MiB each)",
        peak as f64 / MIB
    );
    assert!(per_active < 3.0, "{per_active:.2} MiB per active session");

    // Closed: the memory goes back (within a bound for what stays cached).
    let settled = Instant::now() + Duration::from_secs(20);
    let mut after = rss();
    while after > before + (16 << 20) && Instant::now() < settled {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = rss();
    }
    eprintln!("after close {:.1} MiB", after as f64 / MIB);
    assert!(
        after <= before + (16 << 20),
        "{:.1} MiB still resident after every session closed (before: {:.1} MiB)",
        after as f64 / MIB,
        before as f64 / MIB
    );
    gw.running.take().unwrap().shutdown().await;
}

/// Opens uploads on `kind` storage until the budget is spent: the next one waits
/// until one of them ends, then proceeds; all of it comes back at the end.
async fn uploads_wait_for_room(kind: &str, budget: usize, fit: usize) {
    let _one = SERIAL.lock().await;
    let b = backend(kind);
    let vfs = vfs_on(&b).with_budget(Budget::new(budget));
    let mut open = Vec::new();
    for i in 0..fit {
        open.push(vfs.create(&p(&format!("/f{i}.bin"))).await.unwrap());
    }
    assert!(
        vfs.budget().available() < budget / fit,
        "{fit} uploads left {} of {budget} bytes",
        vfs.budget().available()
    );
    let next_path = p("/next.bin");
    let next = vfs.create(&next_path);
    tokio::pin!(next);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), next.as_mut())
            .await
            .is_err(),
        "an upload past the budget started at once"
    );
    let mut first = open.remove(0);
    first
        .write(bytes::Bytes::from(pattern(1000, 1)))
        .await
        .unwrap();
    first.close().await.unwrap();
    let mut w = tokio::time::timeout(Duration::from_secs(30), next)
        .await
        .expect("the waiting upload did not start once room was made")
        .unwrap();
    let data = pattern(300 << 10, 2);
    w.write(bytes::Bytes::from(data.clone())).await.unwrap();
    w.close().await.unwrap();
    for w in open {
        w.abort().await.unwrap();
    }
    assert_eq!(vfs.budget().available(), budget);
    let got = vfs.open(&p("/next.bin")).await.unwrap();
    let bytes = got.read_at(0, data.len() + 1).await.unwrap();
    assert_eq!(sha256(&bytes), sha256(&data));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_uploads_past_the_budget_wait() {
    // 64 KiB chunks (vfs_on): four fit in 256 KiB.
    uploads_wait_for_room("fs", 256 << 10, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_multipart_buffers_come_from_the_budget() {
    // 5 MiB parts: with 12 MiB, one upload (its part and one in flight) fits.
    uploads_wait_for_room("s3", 12 << 20, 1).await;
}
