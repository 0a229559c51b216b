//! Production operations against the real binary: owner-only data directory,
//! the first-start password kept out of logs, SIGHUP reloads without a restart.

mod ops;

use std::path::Path;

use ops::{mode, ok, wharf_cmd, Node};

/// Every directory under `dir` is 0700 and every file 0600, except the contents
/// of the storage roots in `skip` (users' files keep the storage's own modes).
fn assert_owner_only(dir: &Path, skip: &[&str]) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            if skip.iter().any(|s| path.file_name().unwrap() == *s) {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
            } else {
                assert_owner_only(&path, skip);
            }
        } else {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

#[test]
fn config_check_on_a_fresh_directory_makes_it_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fresh").join("data");
    let out = ok(wharf_cmd(&data, None, &["config", "check"]));
    assert!(out.contains("config OK"), "{out}");
    assert!(data.is_dir());
    assert_owner_only(&data, &[]);
    // A user command next creates the database: owner-only as well.
    ok(wharf_cmd(&data, None, &["user", "list"]));
    assert!(data.join("wharf.db").is_file());
    assert_owner_only(&data, &[]);
}

#[test]
fn serve_without_a_terminal_writes_the_password_to_a_private_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut node = Node::start(
        tmp.path(),
        &ops::base_config("[http]\nlisten = \"127.0.0.1:0\"\n"),
    );
    let file = node.dir.join("initial-admin-password");
    assert!(file.is_file(), "{}", node.text());
    assert_eq!(mode(&file), 0o600);
    let password = node.admin_password();
    assert_eq!(password.len(), 24, "{password:?}");
    node.wait_for("where the password is", |l| {
        l.contains("initial-admin-password") && l.starts_with("err: ")
    });

    // A link mail lands in the outbox: owner-only like every file of wharf's.
    let report = tmp.path().join("report.txt");
    std::fs::write(&report, b"quarterly numbers\n").unwrap();
    ok(wharf_cmd(
        &node.dir,
        Some(&node.config),
        &[
            "link",
            "send",
            report.to_str().unwrap(),
            "--to",
            "bob@example.com",
            "--as",
            "admin",
        ],
    ));
    assert!(ops::sftp_login(
        node.addrs.sftp.unwrap(),
        "admin",
        &password
    ));
    assert!(!ops::sftp_login(
        node.addrs.sftp.unwrap(),
        "admin",
        "wrong-password"
    ));
    node.drain();
    let text = node.text();
    assert!(
        !text.contains(&password),
        "the password reached the output:\n{text}"
    );

    for name in [
        "wharf.db",
        "wharf.db-wal",
        "wharf.db-shm",
        "ssh_host_ed25519_key",
        "ftps_cert.pem",
        "ftps_key.pem",
        "link-signing.key",
        "link-signing.pub",
    ] {
        let p = node.dir.join(name);
        assert_eq!(mode(&p), 0o600, "{name}");
    }
    let mails: Vec<_> = std::fs::read_dir(node.dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!mails.is_empty(), "no mail in the outbox:\n{}", node.text());
    assert_owner_only(&node.dir, &["files", "transfers", "uploads"]);

    // Changing the admin password retires the file.
    let mut passwd = wharf_cmd(
        &node.dir,
        Some(&node.config),
        &["user", "passwd", "admin", "--password-stdin"],
    );
    passwd.stdin(std::process::Stdio::piped());
    let mut child = passwd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a-new-admin-password\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(!file.exists());
    node.stop();
}
