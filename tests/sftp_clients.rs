//! SFTP details beyond the client matrix (tests/client_matrix.rs, where every
//! client transfers on fs and S3): OpenSSH `sftp`'s round trip on memory with
//! its audit rows, refusals (wrong password, a shell), key types and ciphers.

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
async fn openssh_round_trip_on_memory() {
    openssh_round_trip("memory").await;
}

/// Transfers with scp and curl are in tests/client_matrix.rs; here what
/// they must be refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_wrong_password_and_a_shell_are_refused() {
    let gw = Gateway::start("fs", "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", Some("curl-secret"), Some(&key));
    let port = gw.sftp_addr().port().to_string();

    // A wrong password fails for curl too.
    let mut bad = Command::new("curl");
    bad.args(["-sS", "--insecure", "-u", "acme:nope", "-o", "/dev/null"])
        .arg(format!("sftp://127.0.0.1:{port}/"));
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
/// aes128-gcm, which russh does not enable on its own, and carries a file both
/// ways intact: 3 MB moves in full 32 KiB packets, which take the vector
/// Poly1305 of chacha20-poly1305 on CPUs with AVX-512 IFMA.
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
        let data = pattern(3_000_000 + cipher.len(), cipher.len() as u64);
        let src = gw.path("cipher-src.bin");
        let back = gw.path("cipher-back.bin");
        std::fs::write(&src, &data).unwrap();
        let _ = std::fs::remove_file(&back);
        let file = gw.path("batch.txt");
        std::fs::write(
            &file,
            format!(
                "put {} up.bin\nget up.bin {}\nls\n",
                src.display(),
                back.display()
            ),
        )
        .unwrap();
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
        let stored = std::fs::read(gw.config.data_dir.join("files/c/up.bin")).unwrap();
        assert_eq!(sha256(&stored), sha256(&data), "{cipher}: upload");
        assert_eq!(
            sha256(&std::fs::read(&back).unwrap()),
            sha256(&data),
            "{cipher}: download"
        );
    }
}
