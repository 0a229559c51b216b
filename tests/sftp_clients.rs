//! SFTP with the clients partners really use: OpenSSH `sftp` in batch mode, `scp`,
//! `curl sftp://` and Python's asyncssh, against the real server on 127.0.0.1 port 0, on fs, memory
//! and S3 (moto). Bytes are compared by SHA-256; the audit rows are checked.

mod common;

use std::path::Path;
use std::time::Duration;

use common::gateway::{Gateway, SSH_OPTS};
use common::{pattern, sha256};
use tokio::process::Command;
use wharf::audit::Outcome;
use wharf::store::AuditQuery;

const BIG: usize = 50 * 1024 * 1024;

fn file_sha(p: &Path) -> String {
    sha256(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// Runs a command with a deadline; returns (success, stdout + stderr).
async fn run(cmd: &mut Command, secs: u64) -> (bool, String) {
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(secs), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{cmd:?} did not finish in {secs} s"))
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn sftp_batch(gw: &Gateway, key: &Path, user: &str, batch: &str) -> (bool, String) {
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
        .arg(format!("{user}@127.0.0.1"));
    run(&mut cmd, 600).await
}

/// The full OpenSSH round trip on one storage.
async fn openssh_round_trip(storage: &str) {
    let mut gw = Gateway::start(storage, "").await;
    let key = gw.keygen("partner_key");
    gw.add_user("acme", "/partners/acme", "all", None, Some(&key));

    let big = pattern(BIG, 11);
    std::fs::write(gw.path("big.bin"), &big).unwrap();
    std::fs::write(gw.path("part.bin"), &big[..20 << 20]).unwrap();
    std::fs::write(gw.path("partial.bin"), &big[..10 << 20]).unwrap();
    for d in 0..3 {
        let dir = gw.path(&format!("tree/d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..20 {
            std::fs::write(
                dir.join(format!("f{f}.txt")),
                pattern(1000 + d * 100 + f, f as u64),
            )
            .unwrap();
        }
    }

    let batch = "\
mkdir in
put big.bin in/big.bin
put -r tree in/tree
ls -l in
rename in/big.bin in/big2.bin
get in/big2.bin got.bin
get -r in/tree gottree
put part.bin in/resume.bin
reput big.bin in/resume.bin
get in/resume.bin resumed.bin
reget in/big2.bin partial.bin
rm in/tree/d0/*
rm in/tree/d1/*
rm in/tree/d2/*
rmdir in/tree/d0
rmdir in/tree/d1
rmdir in/tree/d2
rmdir in/tree
rm in/big2.bin
rm in/resume.bin
rmdir in
ls -la
";
    let (ok, out) = sftp_batch(&gw, &key, "acme", batch).await;
    assert!(ok, "sftp batch failed on {storage}:\n{out}");
    assert!(out.contains("big.bin"), "ls -l shows the upload:\n{out}");

    let want = sha256(&big);
    for name in ["got.bin", "resumed.bin", "partial.bin"] {
        assert_eq!(file_sha(&gw.path(name)), want, "{name} on {storage}");
    }
    for d in 0..3 {
        for f in 0..20 {
            let rel = format!("d{d}/f{f}.txt");
            assert_eq!(
                file_sha(&gw.path(&format!("gottree/{rel}"))),
                file_sha(&gw.path(&format!("tree/{rel}"))),
                "{rel} on {storage}"
            );
        }
    }

    let uploads = gw
        .stop_and_audit(AuditQuery {
            actor: Some("acme".into()),
            action: Some("upload".into()),
            ..Default::default()
        })
        .await;
    let big_upload = uploads
        .iter()
        .find(|e| e.path.as_deref() == Some("/in/big.bin"))
        .expect("the 50 MB upload is audited");
    assert_eq!(big_upload.outcome, Outcome::Ok);
    assert_eq!(big_upload.bytes, Some(BIG as u64));
    assert_eq!(
        big_upload.detail.as_deref(),
        Some(format!("sha256 {want}").as_str())
    );
    assert!(big_upload
        .remote
        .as_deref()
        .unwrap()
        .starts_with("127.0.0.1:"));
    // Newest first: the reput, then the first 20 MiB put.
    let resumed = uploads
        .iter()
        .find(|e| e.path.as_deref() == Some("/in/resume.bin") && e.outcome == Outcome::Ok)
        .expect("the resumed upload is audited");
    assert_eq!(
        resumed.bytes,
        Some(BIG as u64),
        "a resume commits the whole file"
    );
    assert_eq!(
        uploads
            .iter()
            .filter(|e| e
                .path
                .as_deref()
                .is_some_and(|p| p.starts_with("/in/tree/")))
            .count(),
        60
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_round_trip_on_fs() {
    openssh_round_trip("fs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_round_trip_on_memory() {
    openssh_round_trip("memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_round_trip_on_s3() {
    openssh_round_trip("s3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_and_curl() {
    let gw = Gateway::start("fs", "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", Some("curl-secret"), Some(&key));
    let data = pattern(3 * 1024 * 1024 + 7, 3);
    std::fs::write(gw.path("up.bin"), &data).unwrap();
    let port = gw.sftp_addr().port().to_string();

    let mut up = Command::new("scp");
    up.args(SSH_OPTS)
        .args(["-P", &port, "-i"])
        .arg(&key)
        .arg(gw.path("up.bin"))
        .arg("acme@127.0.0.1:/via-scp.bin");
    let (ok, out) = run(&mut up, 120).await;
    assert!(ok, "scp upload: {out}");
    let mut down = Command::new("scp");
    down.args(SSH_OPTS)
        .args(["-P", &port, "-i"])
        .arg(&key)
        .arg("acme@127.0.0.1:/via-scp.bin")
        .arg(gw.path("down.bin"));
    let (ok, out) = run(&mut down, 120).await;
    assert!(ok, "scp download: {out}");
    assert_eq!(file_sha(&gw.path("down.bin")), sha256(&data));

    // curl (libssh2) with a password.
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--insecure", "-u", "acme:curl-secret", "-o"])
        .arg(gw.path("curl.bin"))
        .arg(format!("sftp://127.0.0.1:{port}/via-scp.bin"));
    let (ok, out) = run(&mut curl, 120).await;
    assert!(ok, "curl sftp:// download: {out}");
    assert_eq!(file_sha(&gw.path("curl.bin")), sha256(&data));

    // A wrong password fails for curl too.
    let mut bad = Command::new("curl");
    bad.args(["-sS", "--insecure", "-u", "acme:nope", "-o", "/dev/null"])
        .arg(format!("sftp://127.0.0.1:{port}/via-scp.bin"));
    let (ok, _) = run(&mut bad, 120).await;
    assert!(!ok);

    // A shell is refused with a clear message.
    let mut ssh = Command::new("ssh");
    ssh.args(SSH_OPTS)
        .args(["-p", &port, "-i"])
        .arg(&key)
        .arg("acme@127.0.0.1")
        .arg("ls");
    let (ok, out) = run(&mut ssh, 60).await;
    assert!(!ok, "exec must be refused");
    assert!(out.contains("SFTP only"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_and_ecdsa_keys_log_in() {
    let gw = Gateway::start("fs", "").await;
    for (user, kind) in [("rsa_user", "rsa"), ("ecdsa_user", "ecdsa")] {
        let key = gw.path(&format!("{user}_key"));
        let ok = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", user, "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        gw.add_user(user, &format!("/{user}"), "all", None, Some(&key));
        let (ok, out) = sftp_batch(&gw, &key, user, "mkdir proof\nls\n").await;
        assert!(ok, "{kind} key login failed: {out}");
        assert!(out.contains("proof"), "{out}");
        // Another user's key is refused.
        let (ok, _) = sftp_batch(&gw, &key, "nobody", "ls\n").await;
        assert!(!ok);
    }
}

/// Every cipher OpenSSH's client offers by default is accepted, including
/// aes128-gcm, which russh does not enable on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_ciphers() {
    let gw = Gateway::start("fs", "").await;
    let key = gw.keygen("cipher_key");
    gw.add_user("cipher_user", "/c", "all", None, Some(&key));
    std::fs::create_dir_all(gw.config.data_dir.join("files/c")).unwrap();
    for cipher in [
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        "chacha20-poly1305@openssh.com",
        "aes128-ctr",
        "aes256-ctr",
    ] {
        let file = gw.path("batch.txt");
        std::fs::write(&file, "ls\n").unwrap();
        let mut cmd = Command::new("sftp");
        cmd.args(SSH_OPTS)
            .args(["-c", cipher, "-P"])
            .arg(gw.sftp_addr().port().to_string())
            .arg("-i")
            .arg(&key)
            .arg("-b")
            .arg(&file)
            .arg("cipher_user@127.0.0.1");
        let (ok, out) = run(&mut cmd, 60).await;
        assert!(ok, "{cipher}: {out}");
    }
}

const ASYNCSSH_PASSWORD: &str = "asyncssh-secret";

/// asyncssh's SFTP client: mkdir, a 3 MB upload and a tree of 200 small files
/// (`put(recurse=True)`, its parallel requests), list, rename, download of both
/// and delete (`rmtree`). Every downloaded byte is compared by SHA-256.
async fn asyncssh_round_trip(storage: &str) {
    let have = std::process::Command::new("python3")
        .args(["-c", "import asyncssh"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        println!("SKIPPED: python3 asyncssh is missing (pip install asyncssh)");
        return;
    }
    let gw = Gateway::start(storage, "").await;
    gw.add_user("acme", "/acme", "all", Some(ASYNCSSH_PASSWORD), None);
    let big = pattern(3 * 1024 * 1024 + 17, 31);
    std::fs::write(gw.path("big.bin"), &big).unwrap();
    let tree = gw.path("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let mut files = Vec::new();
    for i in 0..200u64 {
        let data = pattern(2048 + (i as usize * 37) % 4096, 1000 + i);
        let name = format!("f{i:03}.txt");
        std::fs::write(tree.join(&name), &data).unwrap();
        files.push((name, sha256(&data)));
    }
    let out = gw.path("out");
    std::fs::create_dir_all(&out).unwrap();
    let script = format!(
        r#"
import asyncio, asyncssh
async def main():
    async with asyncssh.connect("127.0.0.1", {port}, username="acme", password="{ASYNCSSH_PASSWORD}",
                                known_hosts=None, client_keys=None) as conn:
        async with conn.start_sftp_client() as sftp:
            await sftp.mkdir("up")
            await sftp.put("{big}", "up/big.bin")
            await sftp.put("{tree}", "up/tree", recurse=True)
            names = [n for n in await sftp.listdir("up/tree") if n not in (".", "..")]
            print("COUNT", len(names))
            print("SIZE", (await sftp.stat("up/big.bin")).size)
            await sftp.rename("up/big.bin", "up/big2.bin")
            print("RENAMED", await sftp.exists("up/big.bin"), await sftp.exists("up/big2.bin"))
            await sftp.get("up/big2.bin", "{out}/big.bin")
            await sftp.get("up/tree", "{out}/tree", recurse=True)
            await sftp.remove("up/big2.bin")
            await sftp.rmtree("up/tree")
            print("GONE", await sftp.exists("up/tree"), await sftp.exists("up/big2.bin"))
    print("DONE")
asyncio.run(main())
"#,
        port = gw.sftp_addr().port(),
        big = gw.path("big.bin").display(),
        tree = tree.display(),
        out = out.display(),
    );
    let (ok, text) = run(Command::new("python3").args(["-c", &script]), 300).await;
    assert!(
        ok && text.contains("DONE"),
        "asyncssh failed on {storage}: {text}"
    );
    assert!(text.contains("COUNT 200"), "{text}");
    assert!(text.contains(&format!("SIZE {}", big.len())), "{text}");
    assert!(text.contains("RENAMED False True"), "{text}");
    assert!(text.contains("GONE False False"), "{text}");
    assert_eq!(file_sha(&out.join("big.bin")), sha256(&big), "{storage}");
    for (name, sha) in &files {
        assert_eq!(
            &file_sha(&out.join("tree").join(name)),
            sha,
            "{storage} {name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asyncssh_round_trip_on_fs() {
    asyncssh_round_trip("fs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asyncssh_round_trip_on_s3() {
    asyncssh_round_trip("s3").await;
}
