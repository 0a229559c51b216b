//! SFTP at the protocol level, with a Rust client (russh + russh-sftp's raw
//! session) against the real server on 127.0.0.1 port 0: pipelined out-of-order
//! writes, reads past EOF, a 10,000-entry directory, permission refusals, paths
//! that try to leave the home, audited login failures and the lock-out, and 20
//! sessions at once.

mod common;

use std::sync::Arc;

use common::gateway::Gateway;
use common::{pattern, sha256};
use futures::future::join_all;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{OpenFlags, StatusCode};
use wharf::audit::Outcome;
use wharf::store::AuditQuery;

/// An SFTP session and the SSH connection it runs on (dropping it disconnects).
struct Conn {
    sftp: RawSftpSession,
    _ssh: common::ssh::Handle,
}

impl std::ops::Deref for Conn {
    type Target = RawSftpSession;
    fn deref(&self) -> &RawSftpSession {
        &self.sftp
    }
}

/// Logs in with a password; `Err` if authentication is refused.
async fn login(gw: &Gateway, user: &str, password: &str) -> Result<Conn, String> {
    let (ssh, sftp) = common::ssh::sftp_login(gw.sftp_addr(), user, password).await?;
    Ok(Conn { sftp, _ssh: ssh })
}

fn code(e: SftpError) -> StatusCode {
    match e {
        SftpError::Status(s) => s.status_code,
        other => panic!("expected a status, got {other:?}"),
    }
}

async fn write_file(s: &RawSftpSession, path: &str, data: &[u8]) {
    let h = s
        .open(
            path,
            OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
            Default::default(),
        )
        .await
        .unwrap()
        .handle;
    for (i, chunk) in data.chunks(32 * 1024).enumerate() {
        s.write(h.as_str(), (i * 32 * 1024) as u64, chunk.to_vec())
            .await
            .unwrap();
    }
    s.close(h).await.unwrap();
}

async fn read_file(s: &RawSftpSession, path: &str) -> Vec<u8> {
    let h = s
        .open(path, OpenFlags::READ, Default::default())
        .await
        .unwrap()
        .handle;
    let mut out = Vec::new();
    loop {
        match s.read(h.as_str(), out.len() as u64, 32 * 1024).await {
            Ok(d) => out.extend_from_slice(&d.data),
            Err(e) => {
                assert_eq!(code(e), StatusCode::Eof);
                break;
            }
        }
    }
    s.close(h).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_out_of_order_writes_and_reads_past_eof() {
    for storage in ["fs", "s3"] {
        let gw = Gateway::start(storage, "").await;
        gw.add_user("acme", "/acme", "all", Some("pw"), None);
        let s = login(&gw, "acme", "pw").await.unwrap();
        let data = pattern(4 * 1024 * 1024 + 333, 21);
        let h = s
            .open(
                "/ooo.bin",
                OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
                Default::default(),
            )
            .await
            .unwrap()
            .handle;
        // All blocks in flight at once, sent last block first.
        let mut writes = Vec::new();
        for (i, chunk) in data.chunks(32 * 1024).enumerate().rev() {
            writes.push(s.write(h.as_str(), (i * 32 * 1024) as u64, chunk.to_vec()));
        }
        for r in join_all(writes).await {
            r.unwrap();
        }
        s.close(h.as_str()).await.unwrap();
        assert_eq!(
            sha256(&read_file(&s, "/ooo.bin").await),
            sha256(&data),
            "{storage}"
        );

        let h = s
            .open("/ooo.bin", OpenFlags::READ, Default::default())
            .await
            .unwrap()
            .handle;
        let size = data.len() as u64;
        let tail = s.read(h.as_str(), size - 10, 4096).await.unwrap();
        assert_eq!(
            tail.data,
            &data[data.len() - 10..],
            "a read across EOF is short"
        );
        assert_eq!(
            code(s.read(h.as_str(), size, 10).await.unwrap_err()),
            StatusCode::Eof
        );
        assert_eq!(
            code(s.read(h.as_str(), size + 1000, 10).await.unwrap_err()),
            StatusCode::Eof
        );
        // Random access after sequential reads still returns the right bytes.
        let mid = s.read(h.as_str(), 1_000_000, 1000).await.unwrap();
        assert_eq!(mid.data, &data[1_000_000..1_001_000]);
        s.close(h).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readdir_of_ten_thousand_entries() {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let dir = gw.config.data_dir.join("files/acme/many");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..10_000 {
        std::fs::write(dir.join(format!("f{i:05}")), b"x").unwrap();
    }
    let s = login(&gw, "acme", "pw").await.unwrap();
    let h = s.opendir("/many").await.unwrap().handle;
    let mut names = std::collections::HashSet::new();
    loop {
        match s.readdir(h.as_str()).await {
            Ok(page) => {
                for f in page.files {
                    assert!(f.longname.contains(&f.filename), "{}", f.longname);
                    names.insert(f.filename);
                }
            }
            Err(e) => {
                assert_eq!(code(e), StatusCode::Eof);
                break;
            }
        }
    }
    s.close(h).await.unwrap();
    // `.` and `..` come too, as OpenSSH lists them.
    assert!(names.remove(".") && names.remove(".."));
    assert_eq!(names.len(), 10_000);
    assert!(names.contains("f09999"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_and_the_home_boundary() {
    let mut gw = Gateway::start("fs", "").await;
    gw.add_user("reader", "/partners/acme", "list,read", Some("pw"), None);
    let files = gw.config.data_dir.join("files");
    std::fs::create_dir_all(files.join("partners/acme")).unwrap();
    std::fs::create_dir_all(files.join("partners/other")).unwrap();
    std::fs::write(files.join("partners/acme/hello.txt"), b"hello").unwrap();
    std::fs::write(files.join("partners/other/secret.txt"), b"secret").unwrap();
    let s = login(&gw, "reader", "pw").await.unwrap();

    assert_eq!(read_file(&s, "/hello.txt").await, b"hello");
    let denied = s
        .open(
            "/new.txt",
            OpenFlags::CREATE | OpenFlags::WRITE,
            Default::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code(denied), StatusCode::PermissionDenied);
    assert_eq!(
        code(s.mkdir("/d", Default::default()).await.unwrap_err()),
        StatusCode::PermissionDenied
    );
    assert_eq!(
        code(s.remove("/hello.txt").await.unwrap_err()),
        StatusCode::PermissionDenied
    );
    assert_eq!(
        code(s.rename("/hello.txt", "/x").await.unwrap_err()),
        StatusCode::PermissionDenied
    );
    assert!(!files.join("partners/acme/new.txt").exists());

    // `cd ..` above the home stays at the home.
    let up = s.realpath("/../..").await.unwrap();
    assert_eq!(up.files[0].filename, "/");
    let h = s.opendir("../..").await.unwrap().handle;
    let page = s.readdir(h.as_str()).await.unwrap();
    let listed: Vec<&str> = page.files.iter().map(|f| f.filename.as_str()).collect();
    assert_eq!(listed, [".", "..", "hello.txt"]);
    s.close(h).await.unwrap();
    for path in [
        "/../other/secret.txt",
        "../../partners/other/secret.txt",
        "..\\other\\secret.txt",
    ] {
        let err = s
            .open(path, OpenFlags::READ, Default::default())
            .await
            .unwrap_err();
        assert_eq!(code(err), StatusCode::NoSuchFile, "{path}");
    }
    // Making a symlink needs `write` (symlinks are confined to the home on fs:
    // tests/sftp_extensions.rs).
    assert_eq!(
        code(s.symlink("/hello.txt", "/l").await.unwrap_err()),
        StatusCode::PermissionDenied
    );

    let denied = gw
        .stop_and_audit(AuditQuery {
            actor: Some("reader".into()),
            ..Default::default()
        })
        .await;
    let refused: Vec<&str> = denied
        .iter()
        .filter(|e| e.outcome == Outcome::Denied)
        .map(|e| e.action.as_str())
        .collect();
    for action in ["upload", "mkdir", "delete", "rename"] {
        assert!(
            refused.contains(&action),
            "{action} refusal audited: {refused:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_audited_and_lock_the_address_out() {
    let mut gw = Gateway::start(
        "fs",
        "[defender]\nmax_failures = 3\nwindow = \"1m\"\nban = \"10m\"\n",
    )
    .await;
    gw.add_user("acme", "/acme", "all", Some("right"), None);
    gw.add_user("off", "/off", "all", Some("right"), None);
    gw.db.blocking().user_set_enabled("off", false).unwrap();

    assert!(
        login(&gw, "off", "right").await.is_err(),
        "a disabled user is refused"
    );
    assert!(login(&gw, "acme", "wrong").await.is_err());
    assert!(
        login(&gw, "acme", "right").await.is_ok(),
        "not yet locked out"
    );
    assert!(login(&gw, "nobody", "whatever").await.is_err());
    // Third failure from 127.0.0.1: the address is banned, even the right password fails.
    assert!(login(&gw, "acme", "right").await.is_err());

    let failed = gw
        .stop_and_audit(AuditQuery {
            action: Some("login_failed".into()),
            ..Default::default()
        })
        .await;
    let details: Vec<String> = failed.iter().filter_map(|e| e.detail.clone()).collect();
    assert!(failed
        .iter()
        .all(|e| e.remote.as_deref().unwrap().starts_with("127.0.0.1:")));
    assert!(
        details.iter().any(|d| d.contains("wrong password")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.contains("unknown user")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.contains("account disabled")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.contains("locked out")),
        "{details:?}"
    );
    let bans = gw
        .db
        .blocking()
        .audit_query(&AuditQuery {
            action: Some("address_banned".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(bans.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sessions_at_once() {
    // Twenty argon2 checks at once on a loaded 2-core runner can pass the default
    // 30 s login grace time; this test is about sessions, not that limit.
    let gw = Arc::new(Gateway::start("fs", "login_grace_time = \"5m\"").await);
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let tasks = (0..20).map(|i| {
        let gw = gw.clone();
        tokio::spawn(async move {
            let s = login(&gw, "acme", "pw").await.unwrap();
            let data = pattern(1024 * 1024 + i * 1000, i as u64 + 100);
            let path = format!("/file{i}.bin");
            write_file(&s, &path, &data).await;
            assert_eq!(sha256(&read_file(&s, &path).await), sha256(&data), "{path}");
        })
    });
    for t in join_all(tasks).await {
        t.unwrap();
    }
    let names: Vec<_> = std::fs::read_dir(gw.config.data_dir.join("files/acme"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 20);
}

async fn connect(gw: &Gateway) -> common::ssh::Handle {
    common::ssh::connect(gw.sftp_addr()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_and_password_both_required() {
    let mut gw = Gateway::start("fs", "").await;
    let key_path = gw.keygen("two_factor");
    gw.add_user("bank", "/bank", "all", Some("pw"), Some(&key_path));
    gw.db
        .blocking()
        .user_set_key_and_password("bank", true)
        .unwrap();
    let key = Arc::new(russh::keys::load_secret_key(&key_path, None).unwrap());
    let signer = || russh::keys::PrivateKeyWithHashAlg::new(key.clone(), None);

    // Either factor alone is not enough.
    let mut ssh = connect(&gw).await;
    assert!(!ssh
        .authenticate_password("bank", "pw")
        .await
        .unwrap()
        .success());
    let mut ssh2 = connect(&gw).await;
    let only_key = ssh2.authenticate_publickey("bank", signer()).await.unwrap();
    assert!(!only_key.success());

    // The key, then the password, on one connection: in.
    let both = ssh2.authenticate_password("bank", "pw").await.unwrap();
    assert!(both.success(), "key then password must log in");
    // The password, then the key: in as well.
    let then_key = ssh.authenticate_publickey("bank", signer()).await.unwrap();
    assert!(then_key.success(), "password then key must log in");

    let logins = gw
        .stop_and_audit(AuditQuery {
            actor: Some("bank".into()),
            action: Some("login".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(logins.len(), 2, "one login row per completed login");
    assert!(logins
        .iter()
        .all(|e| e.detail.as_deref() == Some("publickey+password")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_interactive_password_prompt() {
    use russh::client::KeyboardInteractiveAuthResponse as R;
    let gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some("kbd-secret"), None);
    for (answer, expect_ok) in [("wrong", false), ("kbd-secret", true)] {
        let mut ssh = connect(&gw).await;
        let prompts = match ssh
            .authenticate_keyboard_interactive_start("acme", None)
            .await
            .unwrap()
        {
            R::InfoRequest { prompts, .. } => prompts,
            _ => panic!("expected a prompt"),
        };
        assert_eq!(prompts.len(), 1);
        assert!(prompts[0].prompt.contains("Password"));
        assert!(!prompts[0].echo, "passwords are not echoed");
        let reply = ssh
            .authenticate_keyboard_interactive_respond(vec![answer.to_string()])
            .await
            .unwrap();
        assert_eq!(matches!(reply, R::Success), expect_ok, "answer {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_handles_are_limited_per_session() {
    let gw = Gateway::start("fs", "max_handles = 3\n").await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let s = login(&gw, "acme", "pw").await.unwrap();
    write_file(&s, "/f", b"data").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            s.open("/f", OpenFlags::READ, Default::default())
                .await
                .unwrap()
                .handle,
        );
    }
    let err = s
        .open("/f", OpenFlags::READ, Default::default())
        .await
        .unwrap_err();
    assert_eq!(code(err), StatusCode::Failure);
    s.close(open.pop().unwrap()).await.unwrap();
    s.open("/f", OpenFlags::READ, Default::default())
        .await
        .unwrap();
}
