//! SFTP with Python paramiko, as partners' automation runs it: `get()` and `put()`
//! with their defaults. paramiko's `get()` asks for the whole file at once (one
//! 32 KiB read request per block, thousands in flight) and reads the replies while
//! its prefetch thread still sends; the gateway must serve that without stalling.
//! A client that vanishes mid-transfer must end its session at once, audited.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::gateway::Gateway;
use common::{pattern, sha256};
use tokio::process::Command;
use wharf::audit::Outcome;
use wharf::store::AuditQuery;

/// 2,048 read requests in flight: four times what stalled wharf before (~512).
/// Larger files only take longer here (a debug build does AES-CTR in software).
const BIG: usize = 64 * 1024 * 1024;
const PASSWORD: &str = "paramiko-secret";

/// The first Python that imports paramiko: CI installs it with pip into `python3`;
/// Debian's `python3-paramiko` lives with `/usr/bin/python3`.
fn python() -> &'static str {
    for py in ["python3", "/usr/bin/python3"] {
        let ok = std::process::Command::new(py)
            .args(["-c", "import paramiko"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return py;
        }
    }
    panic!("no python3 with paramiko (pip install paramiko, or apt install python3-paramiko)");
}

/// Opens an SFTP client with paramiko's defaults; the script's own code follows.
fn script(port: u16, body: &str) -> String {
    format!(
        "import hashlib, os, sys, paramiko\n\
         t = paramiko.Transport(('127.0.0.1', {port}))\n\
         t.connect(username='acme', password='{PASSWORD}')\n\
         sftp = paramiko.SFTPClient.from_transport(t)\n\
         {body}\n"
    )
}

/// Runs a Python script with a deadline; returns (success, stdout + stderr).
async fn run_python(code: &str, secs: u64) -> (bool, String) {
    let mut cmd = Command::new(python());
    cmd.args(["-c", code]).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(secs), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("paramiko did not finish in {secs} s (the transfer hung)"))
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn start_user(gw: &Gateway) {
    gw.add_user("acme", "/acme", "all", Some(PASSWORD), None);
}

/// Puts a file straight into the fs storage, under the user's home.
fn store(gw: &Gateway, name: &str, data: &[u8]) {
    let dir = gw.config.data_dir.join("files/acme");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paramiko_get_and_put_with_defaults() {
    let mut gw = Gateway::start("fs", "").await;
    start_user(&gw);
    let big = pattern(BIG, 21);
    store(&gw, "big.bin", &big);
    let want = sha256(&big);
    drop(big);

    // get(): thousands of read requests in flight at once.
    let got = gw.path("got.bin");
    let code = script(
        gw.sftp_addr().port(),
        &format!("sftp.get('/big.bin', {got:?})\nsftp.close(); t.close()"),
    );
    let started = Instant::now();
    let (ok, out) = run_python(&code, 120).await;
    assert!(ok, "paramiko get failed:\n{out}");
    assert_eq!(common::sha256(&std::fs::read(&got).unwrap()), want);
    eprintln!("paramiko get of {BIG} bytes: {:?}", started.elapsed());

    // put(): pipelined writes, with paramiko's defaults.
    let up = pattern(16 * 1024 * 1024 + 5, 22);
    std::fs::write(gw.path("up.bin"), &up).unwrap();
    let code = script(
        gw.sftp_addr().port(),
        &format!(
            "a = sftp.put({:?}, '/up.bin')\nprint('size', a.st_size)\nsftp.close(); t.close()",
            gw.path("up.bin")
        ),
    );
    let started = Instant::now();
    let (ok, out) = run_python(&code, 120).await;
    assert!(ok, "paramiko put failed:\n{out}");
    eprintln!(
        "paramiko put of {} bytes: {:?}",
        up.len(),
        started.elapsed()
    );
    assert_eq!(
        gw.stored_sha("/acme/up.bin").await.as_deref(),
        Some(sha256(&up).as_str())
    );

    let events = gw
        .stop_and_audit(AuditQuery {
            actor: Some("acme".into()),
            ..Default::default()
        })
        .await;
    let download = events
        .iter()
        .find(|e| e.action == "download" && e.path.as_deref() == Some("/big.bin"))
        .expect("the download is audited");
    assert_eq!(download.outcome, Outcome::Ok);
    assert_eq!(download.bytes, Some(BIG as u64));
    let upload = events
        .iter()
        .find(|e| e.action == "upload" && e.path.as_deref() == Some("/up.bin"))
        .expect("the upload is audited");
    assert_eq!(upload.outcome, Outcome::Ok);
    assert_eq!(upload.bytes, Some(up.len() as u64));
}

/// A client killed in the middle of a prefetching `get()`: its session ends at
/// once (not at the idle timeout, not at shutdown), and the interrupted download
/// is in the audit log while the gateway still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_paramiko_client_ends_its_session() {
    let gw = Gateway::start("fs", "").await;
    start_user(&gw);
    store(&gw, "big.bin", &pattern(64 * 1024 * 1024, 23));

    // The callback kills the process (no goodbye on the wire) after 4 MiB.
    let code = script(
        gw.sftp_addr().port(),
        "def cb(done, total):\n    if done >= 4 << 20:\n        os.kill(os.getpid(), 9)\n\
         sftp.get('/big.bin', '/dev/null', callback=cb)",
    );
    let (ok, out) = run_python(&code, 60).await;
    assert!(!ok, "the client was to be killed mid-transfer:\n{out}");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = gw
            .db
            .blocking()
            .audit_query(&AuditQuery {
                actor: Some("acme".into()),
                action: Some("download".into()),
                ..Default::default()
            })
            .unwrap();
        if let Some(row) = rows.first() {
            let ev = &row.event;
            assert_eq!(ev.outcome, Outcome::Failed, "{ev:?}");
            assert_eq!(ev.path.as_deref(), Some("/big.bin"));
            assert!(ev.bytes.unwrap_or(0) < 64 * 1024 * 1024, "{ev:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the vanished client's download was not audited within 20 s: its session hangs"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Open uploads that receive nothing give their share of the memory budget
/// back (`[storage] buffer_budget`), so they keep no other upload waiting,
/// and take it again at their next write, losing nothing. With 1 MiB of
/// buffers and 256 KiB per upload on local disk, four idle uploads fill the
/// budget: a fifth upload used to wait until one of them closed (here, never:
/// the same client holds them, so the script hung past its deadline); now it
/// starts once they have idled for 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_uploads_give_their_buffers_back() {
    let gw = Gateway::start(
        "fs",
        "[storage]\nbuffer_budget = \"1MiB\"\nbuffer_size = \"256KiB\"\n",
    )
    .await;
    start_user(&gw);
    let code = script(
        gw.sftp_addr().port(),
        "import io, time\n\
         files = []\n\
         for i in range(4):\n\
         \x20   f = sftp.open('idle%d.bin' % i, 'wb')\n\
         \x20   f.write(b'x' * 1000)\n\
         \x20   f.flush()\n\
         \x20   files.append(f)\n\
         data = bytes(range(256)) * 2400\n\
         t0 = time.time()\n\
         sftp.putfo(io.BytesIO(data), 'next.bin')\n\
         print('waited %.1f' % (time.time() - t0))\n\
         for f in files:\n\
         \x20   f.write(b'y' * 1000)\n\
         \x20   f.close()\n\
         print('next', hashlib.sha256(data).hexdigest())",
    );
    let (ok, out) = run_python(&code, 60).await;
    assert!(ok, "{out}");
    let waited: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("waited "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (3.0..30.0).contains(&waited),
        "the fifth upload waited {waited} s"
    );
    let home = gw.config.data_dir.join("files/acme");
    let want = [vec![b'x'; 1000], vec![b'y'; 1000]].concat();
    for i in 0..4 {
        let got = std::fs::read(home.join(format!("idle{i}.bin"))).unwrap();
        assert_eq!(sha256(&got), sha256(&want), "idle{i}.bin");
    }
    let next = std::fs::read(home.join("next.bin")).unwrap();
    assert!(out.contains(&format!("next {}", sha256(&next))), "{out}");
    assert_eq!(next.len(), 256 * 2400);
}
