//! SETSTAT and FSETSTAT with real clients: `rclone sync` twice (the second run
//! must transfer nothing, which needs the modification times kept), `sftp put -p`
//! and `scp -p` (mtime preserved), `chmod` (shown by `ls -l`), on fs; and honest
//! answers on storage that keeps no attributes (`[storage] setstat_mode`).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::gateway::{Gateway, SSH_OPTS};
use common::pattern;
use tokio::process::Command;
use wharf::store::AuditQuery;

/// A source file's mtime: 2021-03-04, far from now, so "preserved" is unmistakable.
const OLD_MTIME: i64 = 1_614_816_000;

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

fn set_mtime(p: &Path, secs: i64) {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(secs as u64);
    std::fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(t)
        .unwrap();
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

/// The stored file of `name` in acme's home on the fs storage.
fn stored(gw: &Gateway, name: &str) -> std::path::PathBuf {
    gw.config.data_dir.join("files/acme").join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_p_scp_p_and_chmod_on_fs() {
    let mut gw = Gateway::start("fs", "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", None, Some(&key));
    let src = gw.path("src.bin");
    std::fs::write(&src, pattern(100_000, 1)).unwrap();
    set_mtime(&src, OLD_MTIME);

    let (ok, out) = sftp_batch(
        &gw,
        &key,
        "put -p src.bin kept.bin\nput src.bin plain.bin\nchmod 640 kept.bin\nls -l\n",
    )
    .await;
    assert!(ok, "{out}");
    let kept = std::fs::metadata(stored(&gw, "kept.bin")).unwrap();
    assert_eq!(kept.mtime(), OLD_MTIME, "put -p keeps the mtime");
    assert_eq!(kept.permissions().mode() & 0o777, 0o640, "chmod 640");
    assert!(out.contains("-rw-r-----"), "ls -l shows mode 640:\n{out}");
    let plain = std::fs::metadata(stored(&gw, "plain.bin")).unwrap();
    assert!(plain.mtime() > OLD_MTIME + 86_400, "put without -p: now");

    // scp -p (the SFTP protocol in OpenSSH 9) preserves it too.
    let mut scp = Command::new("scp");
    scp.args(SSH_OPTS)
        .args(["-p", "-P", &gw.sftp_addr().port().to_string(), "-i"])
        .arg(&key)
        .arg(&src)
        .arg("acme@127.0.0.1:/via-scp.bin");
    let (ok, out) = run(&mut scp, 60).await;
    assert!(ok, "scp -p: {out}");
    let via = std::fs::metadata(stored(&gw, "via-scp.bin")).unwrap();
    assert_eq!(via.mtime(), OLD_MTIME, "scp -p keeps the mtime");

    // setuid is never set; the owner keeps read and write.
    let (ok, out) = sftp_batch(&gw, &key, "chmod 4000 plain.bin\n").await;
    assert!(ok, "{out}");
    let plain = std::fs::metadata(stored(&gw, "plain.bin")).unwrap();
    assert_eq!(plain.permissions().mode() & 0o7777, 0o600);

    let events = gw
        .stop_and_audit(AuditQuery {
            actor: Some("acme".into()),
            action: Some("setstat".into()),
            ..Default::default()
        })
        .await;
    assert!(
        events.iter().any(|e| e.path.as_deref() == Some("/kept.bin")
            && e.detail.as_deref().is_some_and(|d| d.contains("mode 0640"))),
        "{events:?}"
    );
}

/// Setting attributes through a symlink that leads out of the storage root is
/// refused, and the outside file keeps its mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setstat_through_a_link_out_of_the_root_is_refused() {
    let gw = Gateway::start("fs", "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", None, Some(&key));
    let outside = gw.path("outside.txt");
    std::fs::write(&outside, b"secret").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(stored(&gw, "")).unwrap();
    std::os::unix::fs::symlink(&outside, stored(&gw, "link")).unwrap();
    let (_, out) = sftp_batch(&gw, &key, "-chmod 777 link\n").await;
    assert!(
        out.to_lowercase().contains("permission denied"),
        "refused: {out}"
    );
    let mode = std::fs::metadata(&outside).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the file outside the root is untouched");
}

async fn rclone_sync(gw: &Gateway, src: &Path) -> (bool, String) {
    let obscured = std::process::Command::new("rclone")
        .args(["obscure", "rclone-secret"])
        .output()
        .unwrap();
    let pass = String::from_utf8_lossy(&obscured.stdout).trim().to_string();
    let mut cmd = Command::new("rclone");
    cmd.env("RCLONE_CONFIG", gw.path("rclone.conf"))
        .args(["sync", "-v", "--stats", "0", "--sftp-host", "127.0.0.1"])
        .args(["--sftp-port", &gw.sftp_addr().port().to_string()])
        .args(["--sftp-user", "acme", "--sftp-pass", &pass])
        .args(["--sftp-set-modtime", "--sftp-disable-hashcheck"])
        .arg(src)
        .arg(":sftp:/tree");
    run(&mut cmd, 300).await
}

/// Syncs a tree of `dirs` x `files` small files with rclone twice; the second
/// run must copy nothing: it sees the times it set.
async fn rclone_sync_twice(storage: &str, dirs: usize, files: usize) {
    let gw = Gateway::start(storage, "").await;
    gw.add_user("acme", "/acme", "all", Some("rclone-secret"), None);
    let src = gw.path("tree");
    for d in 0..dirs {
        let dir = src.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..files {
            let p = dir.join(format!("f{f}.txt"));
            std::fs::write(&p, pattern(200 + f, (d * files + f) as u64)).unwrap();
            set_mtime(&p, OLD_MTIME + (d * files + f) as i64);
        }
    }
    let copied = |out: &str| out.matches(": Copied (").count();
    let (ok, out) = rclone_sync(&gw, &src).await;
    assert!(ok, "first sync: {out}");
    assert_eq!(copied(&out), dirs * files, "first sync copies all:\n{out}");
    let (ok, out) = rclone_sync(&gw, &src).await;
    assert!(ok, "second sync: {out}");
    assert_eq!(copied(&out), 0, "second sync copies nothing:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_sync_twice_transfers_nothing_the_second_time() {
    rclone_sync_twice("fs", 4, 50).await;
}

/// On S3 the times rclone sets are kept in the store and listed back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_sync_twice_on_s3_transfers_nothing_the_second_time() {
    rclone_sync_twice("s3", 2, 20).await;
}

/// `sftp put -p` on S3: the time is kept (the mode is refused, as
/// `setstat_mode` says, and the upload still lands), shown by `ls -l`, carried
/// by a rename; an object rewritten outside wharf shows its own time again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_p_on_s3_keeps_the_time_until_the_object_changes_outside() {
    let gw = Gateway::start("s3", "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", None, Some(&key));
    let src = gw.path("src.bin");
    std::fs::write(&src, pattern(100_000, 1)).unwrap();
    set_mtime(&src, OLD_MTIME);
    let line = |ls: &str, name: &str| {
        ls.lines()
            .find(|l| l.starts_with('-') && l.ends_with(name))
            .unwrap_or_else(|| panic!("{name} in\n{ls}"))
            .to_string()
    };
    let (_, out) = sftp_batch(
        &gw,
        &key,
        "put -p src.bin kept.bin\nput src.bin plain.bin\nls -l\n",
    )
    .await;
    assert!(line(&out, "kept.bin").contains(" 2021 "), "{out}");
    assert!(!line(&out, "plain.bin").contains(" 2021 "), "{out}");
    let (ok, out) = sftp_batch(&gw, &key, "rename kept.bin moved.bin\nls -l moved.bin\n").await;
    assert!(ok, "{out}");
    assert!(line(&out, "moved.bin").contains(" 2021 "), "carried: {out}");

    // Rewritten outside wharf (straight to the bucket): its LastModified wins.
    gw.vfs()
        .write_all(
            &wharf::vfs::VPath::parse("/acme/moved.bin").unwrap(),
            pattern(100_001, 2).into(),
        )
        .await
        .unwrap();
    let (ok, out) = sftp_batch(&gw, &key, "ls -l moved.bin\n").await;
    assert!(ok, "{out}");
    assert!(!line(&out, "moved.bin").contains(" 2021 "), "{out}");
}

/// Storage without attributes: refused by default, OK with "ignore".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_refuses_or_ignores() {
    for (mode, refused) in [
        ("", true),
        ("[storage]\nsetstat_mode = \"ignore\"\n", false),
    ] {
        let gw = Gateway::start("memory", mode).await;
        let key = gw.keygen("k");
        gw.add_user("acme", "/acme", "all", None, Some(&key));
        std::fs::write(gw.path("a.bin"), b"abc").unwrap();
        let (ok, out) = sftp_batch(&gw, &key, "put a.bin a.bin\nchmod 600 a.bin\n").await;
        if refused {
            assert!(!ok, "chmod must fail on memory by default: {out}");
            assert!(
                out.to_lowercase().contains("unsupported"),
                "OP_UNSUPPORTED: {out}"
            );
        } else {
            assert!(ok, "ignored on memory with setstat_mode=ignore: {out}");
        }
        // put -p sends FSETSTAT before CLOSE: the upload itself still lands.
        let (_, out) = sftp_batch(&gw, &key, "put -p a.bin b.bin\n").await;
        let (ok, ls) = sftp_batch(&gw, &key, "ls\n").await;
        assert!(ok && ls.contains("b.bin"), "{out}\n{ls}");
    }
}

/// On S3 with `setstat_mode = "ignore"`, `put -p` (mode and time) keeps the
/// time and ignores the mode: the audit row says so, instead of listing the
/// mode as applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_mode_beside_a_kept_time_is_audited_as_ignored() {
    let mut gw = Gateway::start("s3", "[storage]\nsetstat_mode = \"ignore\"\n").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", None, Some(&key));
    let src = gw.path("src.bin");
    std::fs::write(&src, pattern(10_000, 3)).unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o640)).unwrap();
    set_mtime(&src, OLD_MTIME);
    let (ok, out) = sftp_batch(
        &gw,
        &key,
        "put -p src.bin kept.bin\nchmod 600 kept.bin\nls -l\n",
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains(" 2021 "), "time kept: {out}");
    let events = gw
        .stop_and_audit(AuditQuery {
            actor: Some("acme".into()),
            action: Some("setstat".into()),
            ..Default::default()
        })
        .await;
    let details: Vec<&str> = events.iter().filter_map(|e| e.detail.as_deref()).collect();
    assert!(!details.is_empty(), "{events:?}");
    for d in &details {
        // Whatever names a mode must say it was ignored.
        if let Some(at) = d.find("mode ") {
            assert!(
                d[..at].contains("ignored"),
                "a mode listed as applied: {details:?}"
            );
        }
    }
    assert!(
        details.iter().any(|d| d.ends_with(&format!(
            "mtime {OLD_MTIME}; ignored (storage keeps none): mode 0640"
        ))),
        "{details:?}"
    );
}
