//! SFTP writes as a file opened on disk takes them (OpenSSH's `sftp-server`
//! writes in place): read-write handles, writes at any offset into a file opened
//! without TRUNC (the rest of the file stays), seek then write, APPEND, and STAT
//! of a file still open for writing (the growing file exists). On fs the staged
//! copy is seeded with the old file and published at close; on S3 a write that
//! goes back gets "writes must be sequential on this storage". Clients: paramiko,
//! OpenSSH `sftp` (reput), and sshfs where FUSE works.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::gateway::{Gateway, SSH_OPTS};
use common::{pattern, sha256};
use tokio::process::Command;

const PASSWORD: &str = "writer-secret";

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

/// Runs `body` with `sftp` logged in as acme; returns (success, output).
async fn paramiko(port: u16, body: &str) -> (bool, String) {
    let code = format!(
        "import sys, paramiko\n\
         t = paramiko.Transport(('127.0.0.1', {port}))\n\
         t.connect(username='acme', password='{PASSWORD}')\n\
         sftp = paramiko.SFTPClient.from_transport(t)\n\
         {body}\n\
         t.close()\n"
    );
    let mut cmd = Command::new(python());
    cmd.args(["-c", &code]).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("paramiko finished in time")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn home(gw: &Gateway) -> std::path::PathBuf {
    gw.config.data_dir.join("files/acme")
}

fn store(gw: &Gateway, name: &str, data: &[u8]) {
    std::fs::create_dir_all(home(gw)).unwrap();
    std::fs::write(home(gw).join(name), data).unwrap();
}

fn stored(gw: &Gateway, name: &str) -> Vec<u8> {
    std::fs::read(home(gw).join(name)).unwrap_or_default()
}

fn staging_empty(gw: &Gateway) -> bool {
    let dir = gw.config.data_dir.join("files/.wharf-partial");
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

async fn fs_gateway() -> Gateway {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some(PASSWORD), None);
    store(&gw, ".keep", b"");
    gw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paramiko_updates_files_in_place_on_fs() {
    let gw = fs_gateway().await;
    store(&gw, "rplus.txt", b"abcdef");
    store(&gw, "seek.txt", b"abcdef");
    store(&gw, "append.txt", b"abcdef");
    store(&gw, "peek.txt", b"0123456789");
    let big = pattern(3 * 1024 * 1024 + 17, 5);
    store(&gw, "big.bin", &big);
    let (ok, out) = paramiko(
        gw.sftp_addr().port(),
        "with sftp.open('rplus.txt', 'r+') as f:\n    f.seek(1); f.write(b'X')\n\
         with sftp.open('seek.txt', 'r+') as f:\n    f.seek(3); f.write(b'ZZ'); f.seek(0); f.write(b'Q')\n\
         with sftp.open('append.txt', 'a') as f:\n    f.write(b'123'); f.write(b'45')\n\
         with sftp.open('rw.txt', 'w+') as f:\n    f.write(b'hello world'); f.seek(0); print('READBACK', f.read())\n\
         with sftp.open('peek.txt', 'r+') as f:\n    print('PEEK', f.read(4)); f.seek(8); f.write(b'!'); f.seek(6); print('AFTER', f.read())\n\
         with sftp.open('big.bin', 'r+') as f:\n    f.seek(2 * 1024 * 1024); f.write(b'middle')\n",
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(
        stored(&gw, "rplus.txt"),
        b"aXcdef",
        "r+ write at 1 keeps the rest"
    );
    assert_eq!(stored(&gw, "seek.txt"), b"QbcZZf", "seek then write");
    assert_eq!(stored(&gw, "append.txt"), b"abcdef12345", "append mode");
    assert_eq!(stored(&gw, "rw.txt"), b"hello world");
    assert!(out.contains("READBACK b'hello world'"), "{out}");
    assert!(out.contains("PEEK b'0123'"), "{out}");
    assert!(out.contains("AFTER b'67!9'"), "{out}");
    assert_eq!(stored(&gw, "peek.txt"), b"01234567!9");
    let mut want = big.clone();
    want[2 * 1024 * 1024..2 * 1024 * 1024 + 6].copy_from_slice(b"middle");
    assert_eq!(
        sha256(&stored(&gw, "big.bin")),
        sha256(&want),
        "a 6-byte write into a 3 MiB file changes only those bytes"
    );
    assert!(staging_empty(&gw), "nothing is left in the staging folder");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_open_for_writing_can_be_stated() {
    let gw = fs_gateway().await;
    store(&gw, "old.txt", b"abcdef");
    let (ok, out) = paramiko(
        gw.sftp_addr().port(),
        "f = sftp.open('new.txt', 'w')\n\
         print('EMPTY', sftp.stat('new.txt').st_size, sftp.lstat('new.txt').st_size, f.stat().st_size)\n\
         f.write(b'abc'); f.flush()\n\
         print('GROWN', sftp.stat('new.txt').st_size, f.stat().st_size)\n\
         print('LISTED', 'new.txt' in sftp.listdir('.'))\n\
         r = sftp.open('new.txt'); print('ALIAS', r.read()); r.close()\n\
         f.write(b'de'); f.flush()\n\
         try:\n    sftp.open('new.txt', 'x')\n    print('EXCL opened')\nexcept IOError as e:\n    print('EXCL refused')\n\
         f.close()\n\
         g = sftp.open('old.txt', 'r+'); g.seek(6); g.write(b'gh'); g.flush()\n\
         print('OLD', sftp.stat('old.txt').st_size)\n\
         g.close()\n",
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("EMPTY 0 0 0"), "{out}");
    assert!(out.contains("GROWN 3 3"), "{out}");
    assert!(out.contains("EXCL refused"), "{out}");
    assert!(
        out.contains("ALIAS b'abc'"),
        "a reader sees what was written: {out}"
    );
    assert!(out.contains("OLD 8"), "{out}");
    assert_eq!(stored(&gw, "new.txt"), b"abcde");
    assert_eq!(stored(&gw, "old.txt"), b"abcdefgh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_refuses_writes_that_go_back() {
    let gw = Gateway::start("s3", "").await;
    gw.add_user("acme", "/acme", "all", Some(PASSWORD), None);
    let (ok, out) = paramiko(
        gw.sftp_addr().port(),
        "sftp.mkdir('d')\n\
         with sftp.open('d/a.txt', 'w') as f:\n    f.write(b'abcdef')\n\
         with sftp.open('d/a.txt', 'r+') as f:\n    f.seek(1); f.write(b'X')\n\
         print('RPLUS', sftp.open('d/a.txt').read())\n\
         try:\n    f = sftp.open('d/b.txt', 'w'); f.write(b'abcd'); f.flush(); f.seek(0); f.write(b'Z'); f.close()\n    print('BACK accepted')\n\
         except IOError as e:\n    print('BACK refused:', e)\n",
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("RPLUS b'aXcdef'"), "{out}");
    assert!(
        out.contains("BACK refused: writes must be sequential on this storage"),
        "{out}"
    );
}

async fn run(cmd: &mut Command, secs: u64) -> (bool, String) {
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(secs), cmd.output())
        .await
        .expect("finished in time")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn sftp_batch(gw: &Gateway, key: &Path, batch: &str) -> (bool, String) {
    let file = gw.path("batch.txt");
    std::fs::write(&file, batch).unwrap();
    let mut cmd = Command::new("sftp");
    cmd.current_dir(gw.dir.path())
        .args(SSH_OPTS)
        .arg("-P")
        .arg(gw.sftp_addr().port().to_string())
        .arg("-i")
        .arg(key)
        .arg("-b")
        .arg(&file)
        .arg("acme@127.0.0.1");
    run(&mut cmd, 120).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_reput_completes_a_file() {
    let gw = Gateway::start("fs", "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", None, Some(&key));
    let whole = pattern(5 * 1024 * 1024 + 3, 9);
    std::fs::write(gw.path("whole.bin"), &whole).unwrap();
    std::fs::write(gw.path("part.bin"), &whole[..2 * 1024 * 1024]).unwrap();
    let (ok, out) = sftp_batch(
        &gw,
        &key,
        "put part.bin whole.bin\nreput whole.bin whole.bin\nget whole.bin back.bin\n",
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(sha256(&stored(&gw, "whole.bin")), sha256(&whole));
    assert_eq!(
        sha256(&std::fs::read(gw.path("back.bin")).unwrap()),
        sha256(&whole)
    );
}

/// sshfs over the gateway, where FUSE works here: `cp`, `echo >`, `sed -i` and
/// `touch` of new and existing files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshfs_creates_and_edits_files() {
    if which("sshfs").is_none() || !Path::new("/dev/fuse").exists() {
        println!("SKIPPED: sshfs or /dev/fuse is missing (apt-get install sshfs)");
        return;
    }
    let gw = Gateway::start("fs", "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", None, Some(&key));
    store(&gw, "existing.txt", b"one\ntwo\nthree\n");
    let mnt = gw.path("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut mount = Command::new("sshfs");
    mount
        .args(SSH_OPTS)
        .arg("-p")
        .arg(gw.sftp_addr().port().to_string())
        .arg("-o")
        .arg(format!("IdentityFile={}", key.display()))
        .arg("acme@127.0.0.1:/")
        .arg(&mnt);
    let (ok, out) = run(&mut mount, 30).await;
    if !ok {
        println!("SKIPPED: sshfs could not mount here: {out}");
        return;
    }
    let _unmount = Unmount(mnt.clone());
    let src = gw.path("src.bin");
    let data = pattern(1024 * 1024 + 5, 3);
    std::fs::write(&src, &data).unwrap();
    let script = format!(
        "set -e; cd '{m}'; cp '{src}' copy.bin; echo hello > new.txt; \
         sed -i 's/two/2/' existing.txt; touch touched.txt; echo more >> new.txt; \
         cat new.txt",
        m = mnt.display(),
        src = src.display()
    );
    let (ok, out) = run(Command::new("sh").args(["-c", &script]), 60).await;
    assert!(ok, "shell on sshfs failed: {out}");
    assert_eq!(out, "hello\nmore\n");
    assert_eq!(sha256(&stored(&gw, "copy.bin")), sha256(&data));
    assert_eq!(stored(&gw, "new.txt"), b"hello\nmore\n");
    assert_eq!(stored(&gw, "existing.txt"), b"one\n2\nthree\n");
    assert!(home(&gw).join("touched.txt").is_file());
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        for tool in ["fusermount3", "fusermount", "umount"] {
            let ok = std::process::Command::new(tool)
                .args(if tool == "umount" {
                    vec!["-l"]
                } else {
                    vec!["-u", "-z"]
                })
                .arg(&self.0)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
        }
    }
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

/// Cuts an upload off after `n` acknowledged bytes: paramiko writes them and
/// the process exits without closing anything.
async fn cut_sftp_upload(gw: &Gateway, src: &Path, name: &str, n: usize) {
    let (_, out) = paramiko(
        gw.sftp_addr().port(),
        &format!(
            "import os\n\
             data = open('{src}', 'rb').read()[:{n}]\n\
             f = sftp.open('{name}', 'w')\n\
             for i in range(0, len(data), 32768):\n    f.write(data[i:i + 32768])\n\
             f.flush()\n\
             print('CUT', flush=True)\n\
             os._exit(0)\n",
            src = src.display()
        ),
    )
    .await;
    assert!(out.contains("CUT"), "{out}");
}

/// Waits (bounded) until the stored file has `len` bytes.
/// Up to 30 s: publishing a kept prefix fsyncs it first, and on a loaded
/// 2-core machine beside other tests' fsyncs that has taken over 10 s.
async fn wait_for_size(gw: &Gateway, name: &str, len: u64) -> bool {
    for _ in 0..300 {
        if std::fs::metadata(home(gw).join(name)).is_ok_and(|m| m.len() == len) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_interrupted_uploads_resume_over_sftp_and_ftps() {
    let mut gw = Gateway::start("fs", "[storage]\ninterrupted_uploads = \"keep\"").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", Some(PASSWORD), Some(&key));
    store(&gw, ".keep", b"");
    let data = pattern(3 * 1024 * 1024 + 11, 21);
    let src = gw.path("up.bin");
    std::fs::write(&src, &data).unwrap();

    // SFTP: the received prefix is published; `reput` sends only the rest.
    let cut = 1024 * 1024 + 4096;
    cut_sftp_upload(&gw, &src, "cut.bin", cut).await;
    assert!(
        wait_for_size(&gw, "cut.bin", cut as u64).await,
        "the received prefix is kept"
    );
    assert_eq!(sha256(&stored(&gw, "cut.bin")), sha256(&data[..cut]));
    let (ok, out) = sftp_batch(&gw, &key, "reput up.bin cut.bin\n").await;
    assert!(ok, "{out}");
    assert_eq!(sha256(&stored(&gw, "cut.bin")), sha256(&data));

    // FTPS: the TLS data connection ends without close_notify (FIN, no TLS
    // close): everything the client sent before that is kept, and `curl -C -`
    // resumes (SIZE, then APPE), over TLS 1.3. The client reads its socket to
    // the end before exiting: exiting with unread bytes (TLS 1.3 tickets) would
    // reset the connection and drop data still in flight, which no server can
    // keep. The size is below any buffer the server writes in, so a received
    // tail left unwritten at the cut shows.
    let sent = 200_000;
    let ex = gw.ftps_explicit().port();
    let py = format!(
        r#"{resuming}
import ftplib, ssl, os, socket
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
f = ResumingFTP_TLS(context=ctx, timeout=30)
f.connect("127.0.0.1", {ex}); f.login("acme", "{PASSWORD}"); f.prot_p()
data = open("{src}", "rb").read()
conn = f.transfercmd("STOR ftp.bin")
conn.sendall(data[:{sent}])
conn.shutdown(socket.SHUT_WR)
try:
    while conn.recv(65536):
        pass
except OSError:
    pass
try:
    print("REPLY", f.getresp(), flush=True)
except ftplib.Error as e:
    print("REPLY", e, flush=True)
os._exit(0)
"#,
        resuming = common::PY_RESUMING_FTP_TLS,
        src = src.display()
    );
    let (_, out) = run(Command::new("python3").args(["-c", &py]), 60).await;
    assert!(out.contains("REPLY 426"), "the cut is answered 426: {out}");
    assert!(
        wait_for_size(&gw, "ftp.bin", sent as u64).await,
        "all {sent} bytes sent before the cut are kept, not {:?}",
        std::fs::metadata(home(&gw).join("ftp.bin")).map(|m| m.len())
    );
    assert_eq!(sha256(&stored(&gw, "ftp.bin")), sha256(&data[..sent]));
    let (ok, out) = run(
        Command::new("curl")
            .args(["-sS", "--ssl-reqd", "-k", "-u"])
            .arg(format!("acme:{PASSWORD}"))
            .args(["-C", "-", "-T"])
            .arg(&src)
            .arg(format!("ftp://127.0.0.1:{ex}/ftp.bin")),
        60,
    )
    .await;
    assert!(ok, "curl -C -: {out}");
    assert_eq!(sha256(&stored(&gw, "ftp.bin")), sha256(&data));

    let events = gw
        .stop_and_audit(wharf::store::AuditQuery {
            action: Some("upload".into()),
            ..Default::default()
        })
        .await;
    assert!(
        events.iter().any(|e| e.path.as_deref() == Some("/cut.bin")
            && e.bytes == Some(cut as u64)
            && e.detail.as_deref().is_some_and(|d| d.contains("partial"))),
        "the cut upload is audited as partial: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discarded_interrupted_uploads_leave_nothing() {
    let gw = fs_gateway().await;
    store(&gw, "old.bin", b"old version");
    let data = pattern(1024 * 1024, 4);
    let src = gw.path("up.bin");
    std::fs::write(&src, &data).unwrap();
    cut_sftp_upload(&gw, &src, "new.bin", 512 * 1024).await;
    cut_sftp_upload(&gw, &src, "old.bin", 512 * 1024).await;
    let mut clean = false;
    for _ in 0..50 {
        if staging_empty(&gw) {
            clean = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(clean, "the staged data is removed");
    assert!(!home(&gw).join("new.bin").exists(), "nothing is published");
    assert_eq!(stored(&gw, "old.bin"), b"old version");
}
