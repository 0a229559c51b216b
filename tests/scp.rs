//! Legacy SCP (`scp -O`, what every OpenSSH scp before 9.0 speaks) and the exec
//! checksum commands, with the real OpenSSH client against the real server on
//! 127.0.0.1 port 0, on fs and S3 (moto). Bytes are compared by SHA-256; refusals
//! are checked by exit status and by the file's absence; audit rows are checked.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::gateway::{Gateway, SSH_OPTS};
use common::{pattern, sha256};
use tokio::process::Command;
use wharf::audit::Outcome;
use wharf::store::AuditQuery;

const BIG: usize = 20 * 1024 * 1024;

fn file_sha(p: &Path) -> String {
    sha256(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// Runs a command with a deadline; returns (success, stdout, stderr).
async fn run(cmd: &mut Command, secs: u64) -> (bool, String, String) {
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(secs), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{cmd:?} did not finish in {secs} s"))
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `scp -O` (the legacy protocol) with the key, options first.
fn scp(gw: &Gateway, key: &Path) -> Command {
    let mut cmd = Command::new("scp");
    cmd.current_dir(gw.dir.path())
        .arg("-O")
        .args(SSH_OPTS)
        .args(["-P", &gw.sftp_addr().port().to_string(), "-i"])
        .arg(key);
    cmd
}

fn ssh(gw: &Gateway, key: &Path, user: &str) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args(SSH_OPTS)
        .args(["-p", &gw.sftp_addr().port().to_string(), "-i"])
        .arg(key)
        .arg(format!("{user}@127.0.0.1"));
    cmd
}

/// A tree of 3 directories (one nested, names with spaces) and 50 files.
fn make_tree(root: &Path) -> Vec<PathBuf> {
    let dirs = ["a dir", "b", "b/nested dir"];
    let mut files = Vec::new();
    for (i, n) in (0..50).enumerate() {
        let dir = root.join(dirs[i % dirs.len()]);
        std::fs::create_dir_all(&dir).unwrap();
        let name = if n % 2 == 0 {
            format!("file {n}.txt")
        } else {
            format!("f{n}.bin")
        };
        std::fs::write(dir.join(&name), pattern(500 + n * 37, n as u64)).unwrap();
        files.push(dir.join(name).strip_prefix(root).unwrap().to_path_buf());
    }
    files
}

async fn scp_round_trip(storage: &str) {
    let mut gw = Gateway::start(storage, "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/partners/acme", "all", None, Some(&key));
    let big = pattern(BIG, 21);
    std::fs::write(gw.path("big.bin"), &big).unwrap();

    // A 20 MB file up and down.
    let (ok, _, err) = run(
        scp(&gw, &key).arg("big.bin").arg("acme@127.0.0.1:up.bin"),
        300,
    )
    .await;
    assert!(ok, "scp -O upload on {storage}: {err}");
    assert_eq!(
        gw.stored_sha("/partners/acme/up.bin").await.as_deref(),
        Some(sha256(&big).as_str())
    );
    let (ok, _, err) = run(
        scp(&gw, &key).arg("acme@127.0.0.1:/up.bin").arg("down.bin"),
        300,
    )
    .await;
    assert!(ok, "scp -O download on {storage}: {err}");
    assert_eq!(file_sha(&gw.path("down.bin")), sha256(&big));

    // A tree up (-r) into a new folder, then down again.
    let files = make_tree(&gw.path("tree"));
    let (ok, _, err) = run(
        scp(&gw, &key)
            .arg("-r")
            .arg("tree")
            .arg("acme@127.0.0.1:in"),
        300,
    )
    .await;
    assert!(ok, "scp -O -r upload on {storage}: {err}");
    let (ok, _, err) = run(
        scp(&gw, &key)
            .arg("-r")
            .arg("acme@127.0.0.1:in")
            .arg("back"),
        300,
    )
    .await;
    assert!(ok, "scp -O -r download on {storage}: {err}");
    for f in &files {
        assert_eq!(
            file_sha(&gw.path("back").join(f)),
            file_sha(&gw.path("tree").join(f)),
            "{} on {storage}",
            f.display()
        );
    }
    let count = walk(&gw.path("back"));
    assert_eq!(count, files.len(), "nothing more came back");

    let uploads = gw
        .stop_and_audit(AuditQuery {
            actor: Some("acme".into()),
            action: Some("upload".into()),
            ..Default::default()
        })
        .await;
    let up = uploads
        .iter()
        .find(|e| e.path.as_deref() == Some("/up.bin"))
        .expect("the scp upload is audited");
    assert_eq!(up.outcome, Outcome::Ok);
    assert_eq!(up.bytes, Some(BIG as u64));
    assert_eq!(
        up.detail.as_deref(),
        Some(format!("sha256 {}", sha256(&big)).as_str())
    );
    assert!(up.remote.as_deref().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(
        uploads
            .iter()
            .filter(|e| e.outcome == Outcome::Ok
                && e.path.as_deref().is_some_and(|p| p.starts_with("/in/")))
            .count(),
        50
    );
    assert!(
        uploads
            .iter()
            .any(|e| e.path.as_deref() == Some("/in/b/nested dir/file 2.txt")),
        "names with spaces keep them"
    );
}

fn walk(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            n += walk(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_legacy_on_fs() {
    scp_round_trip("fs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_legacy_on_s3() {
    scp_round_trip("s3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_refusals() {
    let mut gw = Gateway::start("fs", "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/partners/acme", "all", None, Some(&key));
    gw.add_user("reader", "/partners/acme", "list,read", None, Some(&key));
    std::fs::write(gw.path("f.txt"), b"hello").unwrap();
    let files = gw.config.data_dir.join("files");

    // A user who may not write: non-zero exit, nothing written.
    let (ok, _, err) = run(
        scp(&gw, &key).arg("f.txt").arg("reader@127.0.0.1:/ro.txt"),
        60,
    )
    .await;
    assert!(!ok, "an upload without the write permission must fail");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(!files.join("partners/acme/ro.txt").exists());

    // Out of the home: refused, neither clamped into the home nor written beside it.
    for target in ["../x", "/../x", "sub/../../x"] {
        let (ok, _, err) = run(
            scp(&gw, &key)
                .arg("f.txt")
                .arg(format!("acme@127.0.0.1:{target}")),
            60,
        )
        .await;
        assert!(!ok, "{target} must be refused");
        assert!(err.contains("Permission denied"), "{target}: {err}");
        assert!(!err.contains("partners"), "no home path in {err}");
        for p in ["partners/acme/x", "partners/x", "x"] {
            assert!(!files.join(p).exists(), "{target} wrote {p}");
        }
        let (ok, _, _) = run(
            scp(&gw, &key)
                .arg(format!("acme@127.0.0.1:{target}"))
                .arg("got-x"),
            60,
        )
        .await;
        assert!(!ok, "download of {target} must be refused");
    }
    // Into a folder that does not exist (trailing slash) or onto a file as a
    // folder: refused, nothing created.
    for target in ["newdir/", "f-as-dir/"] {
        std::fs::create_dir_all(files.join("partners/acme")).unwrap();
        std::fs::write(files.join("partners/acme/f-as-dir"), b"file").unwrap();
        let (ok, _, err) = run(
            scp(&gw, &key)
                .arg("f.txt")
                .arg(format!("acme@127.0.0.1:{target}")),
            60,
        )
        .await;
        assert!(!ok, "{target} must be refused");
        assert!(err.contains(target), "{err}");
        assert!(!files.join("partners/acme/newdir").exists());
        assert_eq!(
            std::fs::read(files.join("partners/acme/f-as-dir")).unwrap(),
            b"file"
        );
    }
    // A missing file to download: non-zero exit, a clear message.
    let (ok, _, err) = run(scp(&gw, &key).arg("acme@127.0.0.1:/missing").arg("m"), 60).await;
    assert!(!ok);
    assert!(err.to_lowercase().contains("no such file"), "{err}");

    // A shell command is refused; the refusal names SFTP.
    let (ok, out, err) = run(ssh(&gw, &key, "acme").arg("ls"), 60).await;
    assert!(!ok, "ls must be refused: {out}");
    assert!(err.contains("SFTP only"), "{err}");
    let (ok, _, _) = run(ssh(&gw, &key, "acme").arg("scp -t x; ls"), 60).await;
    assert!(!ok);

    // A client that promises 1000 bytes and sends 10: nothing is published, the
    // upload is audited as failed. A record naming another folder: refused.
    for (input, name) in [
        (&b"C0644 1000 cut.bin\n0123456789"[..], "cut.bin"),
        (&b"C0644 5 ../evil.bin\nevil!\0"[..], "evil.bin"),
        (&b"C0644 5 a/evil.bin\nevil!\0"[..], "a/evil.bin"),
    ] {
        let (ok, out) = ssh_with_input(ssh(&gw, &key, "acme").arg("scp -t /"), input).await;
        assert!(!ok, "{name}: must fail");
        assert!(!files.join("partners/acme").join(name).exists(), "{name}");
        assert!(!files.join("partners").join(name).exists(), "{name}");
        assert!(out.starts_with(b"\0"), "the sink is ready first: {out:?}");
    }

    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("upload".into()),
            ..Default::default()
        })
        .await;
    assert!(
        rows.iter()
            .any(|e| e.actor.as_deref() == Some("reader") && e.outcome == Outcome::Denied),
        "the refused upload is audited: {rows:?}"
    );
    let cut = rows
        .iter()
        .find(|e| e.path.as_deref() == Some("/cut.bin"))
        .expect("the cut upload is audited");
    assert_eq!(cut.outcome, Outcome::Failed);
}

/// `interrupted_uploads = "keep"`: a legacy scp upload cut mid-file is
/// published with every byte that arrived (300,000 of a promised 1,000,000:
/// more than one storage write, and a tail shorter than one), and audited as
/// partial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_cut_upload_keeps_what_arrived() {
    let mut gw = Gateway::start("fs", "[storage]\ninterrupted_uploads = \"keep\"").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", None, Some(&key));
    let data = pattern(300_000, 9);
    let mut input = b"C0644 1000000 cut.bin\n".to_vec();
    input.extend_from_slice(&data);
    let (ok, out) = ssh_with_input(ssh(&gw, &key, "acme").arg("scp -t /"), &input).await;
    assert!(!ok, "a cut upload fails: {out:?}");
    let path = gw.config.data_dir.join("files/acme/cut.bin");
    let mut kept = None;
    for _ in 0..300 {
        kept = std::fs::read(&path).ok().filter(|b| b.len() == data.len());
        if kept.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let len = std::fs::metadata(&path).map(|m| m.len());
    let kept = kept.unwrap_or_else(|| panic!("all 300000 bytes are kept, not {len:?}"));
    assert_eq!(sha256(&kept), sha256(&data));
    let rows = gw
        .stop_and_audit(AuditQuery {
            action: Some("upload".into()),
            ..Default::default()
        })
        .await;
    assert!(
        rows.iter().any(|e| e.path.as_deref() == Some("/cut.bin")
            && e.bytes == Some(300_000)
            && e.detail.as_deref().is_some_and(|d| d.contains("partial"))),
        "audited as partial: {rows:?}"
    );
}

/// Runs an ssh command with `input` on its standard input; (success, stdout).
async fn ssh_with_input(cmd: &mut Command, input: &[u8]) -> (bool, Vec<u8>) {
    use tokio::io::AsyncWriteExt;
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("ssh did not finish in 60 s")
        .unwrap();
    (out.status.success(), out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_commands() {
    let gw = Gateway::start("fs", "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", None, Some(&key));
    let dir = gw.config.data_dir.join("files/acme");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a file.bin"), pattern(3 << 20, 5)).unwrap();
    std::fs::write(dir.join("b.txt"), b"bee\n").unwrap();

    for tool in ["md5sum", "sha1sum", "sha256sum"] {
        let local = std::process::Command::new(tool)
            .current_dir(&dir)
            .args(["a file.bin", "b.txt"])
            .output()
            .unwrap();
        assert!(local.status.success());
        let (ok, out, err) = run(
            ssh(&gw, &key, "acme").arg(format!("{tool} 'a file.bin' /b.txt")),
            60,
        )
        .await;
        assert!(ok, "{tool}: {err}");
        let want = String::from_utf8_lossy(&local.stdout).replace("  b.txt", "  /b.txt");
        assert_eq!(out, want, "{tool}");
    }
    // rclone's probe: md5sum of an empty standard input.
    let (ok, out, _) = run(
        ssh(&gw, &key, "acme")
            .arg("md5sum")
            .stdin(std::process::Stdio::null()),
        60,
    )
    .await;
    assert!(ok);
    assert_eq!(out, "d41d8cd98f00b204e9800998ecf8427e  -\n");
    // A missing file or a path out of the home: exit status 1, coreutils' shape.
    let (ok, out, err) = run(
        ssh(&gw, &key, "acme").arg("md5sum nope ../../etc/passwd"),
        60,
    )
    .await;
    assert!(!ok);
    assert_eq!(out, "");
    assert!(
        err.to_lowercase()
            .contains("md5sum: nope: /nope: no such file"),
        "{err}"
    );
    assert!(
        err.contains("md5sum: ../../etc/passwd: Permission denied"),
        "{err}"
    );
    // A folder is no file to hash.
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let (ok, out, err) = run(ssh(&gw, &key, "acme").arg("sha1sum sub"), 60).await;
    assert!(!ok, "{out}");
    assert!(err.starts_with("sha1sum: sub: "), "{err}");
    // scp of a folder without -r: refused by name, as OpenSSH's scp does.
    let (ok, _, err) = run(scp(&gw, &key).arg("acme@127.0.0.1:sub").arg("x"), 60).await;
    assert!(!ok);
    assert!(err.contains("sub: not a regular file"), "{err}");
}

/// `scp -O -p`: the `T` records flow both ways. Downloads keep the stored mtime,
/// uploads keep the client's (files and folders, through `Session::set_attrs`).
/// Remote patterns (`host:dir/*.txt`) expand as a shell would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_preserve_times() {
    let gw = Gateway::start("fs", "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", None, Some(&key));
    let home = gw.config.data_dir.join("files/acme");
    std::fs::create_dir_all(home.join("d")).unwrap();
    let when = std::time::UNIX_EPOCH + Duration::from_secs(1_612_345_678); // Feb 2021
    for f in ["old.txt", "d/inner.txt"] {
        std::fs::write(home.join(f), f.as_bytes()).unwrap();
        std::fs::File::options()
            .write(true)
            .open(home.join(f))
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();

    let (ok, _, err) = run(
        scp(&gw, &key)
            .args(["-p", "acme@127.0.0.1:old.txt"])
            .arg("got.txt"),
        60,
    )
    .await;
    assert!(ok, "scp -O -p download: {err}");
    assert_eq!(mtime(&gw.path("got.txt")), when);
    let (ok, _, err) = run(
        scp(&gw, &key)
            .args(["-r", "-p", "acme@127.0.0.1:d"])
            .arg("gotd"),
        60,
    )
    .await;
    assert!(ok, "scp -O -r -p download: {err}");
    assert_eq!(mtime(&gw.path("gotd/inner.txt")), when);
    assert_eq!(
        std::fs::read(gw.path("gotd/inner.txt")).unwrap(),
        b"d/inner.txt"
    );

    // Upload with -p into the home (empty target: ".", a directory).
    let (ok, _, err) = run(
        scp(&gw, &key).args(["-p", "got.txt", "acme@127.0.0.1:"]),
        60,
    )
    .await;
    assert!(ok, "scp -O -p upload: {err}");
    assert_eq!(std::fs::read(home.join("got.txt")).unwrap(), b"old.txt");
    assert_eq!(mtime(&home.join("got.txt")), when, "upload kept the time");
    let (ok, _, err) = run(
        scp(&gw, &key).args(["-r", "-p", "gotd", "acme@127.0.0.1:up"]),
        60,
    )
    .await;
    assert!(ok, "scp -O -r -p upload: {err}");
    assert_eq!(mtime(&home.join("up/inner.txt")), when);
    assert_eq!(mtime(&home.join("up")), mtime(&gw.path("gotd")));

    // A remote pattern, as a shell on the server would expand it; quoted, literal.
    std::fs::create_dir_all(home.join("g")).unwrap();
    for f in ["x1.txt", "x 2.txt", "y.bin", ".h.txt"] {
        std::fs::write(home.join("g").join(f), f.as_bytes()).unwrap();
    }
    std::fs::create_dir_all(gw.path("gotg")).unwrap();
    let (ok, _, err) = run(
        scp(&gw, &key).arg("acme@127.0.0.1:g/*.txt").arg("gotg/"),
        60,
    )
    .await;
    assert!(ok, "scp -O of g/*.txt: {err}");
    let mut got: Vec<String> = std::fs::read_dir(gw.path("gotg"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, ["x 2.txt", "x1.txt"]);
    assert_eq!(std::fs::read(gw.path("gotg/x 2.txt")).unwrap(), b"x 2.txt");
    let (ok, _, _) = run(
        scp(&gw, &key).arg("acme@127.0.0.1:'g/*.txt'").arg("gotq/"),
        60,
    )
    .await;
    assert!(!ok, "a quoted pattern is a literal name");
}

/// rclone (SFTP backend) runs `md5sum <escaped path>` and `rclone md5sum`
/// prints the stored files' MD5s, computed on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_md5sum() {
    if std::process::Command::new("rclone")
        .arg("version")
        .output()
        .is_err()
    {
        println!("skipped: rclone is not installed");
        return;
    }
    let gw = Gateway::start("fs", "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", None, Some(&key));
    let home = gw.config.data_dir.join("files/acme");
    std::fs::create_dir_all(home.join("sub dir")).unwrap();
    std::fs::write(home.join("sub dir/a b.txt"), b"alpha").unwrap();
    std::fs::write(home.join("c.bin"), pattern(100_000, 9)).unwrap();
    let local = std::process::Command::new("md5sum")
        .current_dir(&home)
        .args(["c.bin", "sub dir/a b.txt"])
        .output()
        .unwrap();
    let mut want: Vec<String> = String::from_utf8_lossy(&local.stdout)
        .lines()
        .map(String::from)
        .collect();
    want.sort();
    let (ok, out, err) = run(
        Command::new("rclone")
            .args([
                "md5sum",
                "-vv",
                "--config",
                "/dev/null",
                "--sftp-host",
                "127.0.0.1",
            ])
            // As rclone config saves them after its first probe (which runs
            // while the first files are hashed, and fails those).
            .args([
                "--sftp-shell-type",
                "unix",
                "--sftp-md5sum-command",
                "md5sum",
            ])
            .args(["--sftp-port", &gw.sftp_addr().port().to_string()])
            .args(["--sftp-user", "acme", "--sftp-key-file"])
            .arg(&key)
            .arg(":sftp:"),
        120,
    )
    .await;
    assert!(ok, "rclone md5sum: {err}");
    let mut got: Vec<String> = out.lines().map(String::from).collect();
    got.sort();
    assert_eq!(got, want, "{err}");
    assert!(
        err.contains("Running remote command: md5sum"),
        "rclone used the server's md5sum: {err}"
    );
}
