//! What a recipient gets: the "Download all" zip extracted with Debian's
//! `unzip` and read back as an unprivileged user (mode 0644, the files' own
//! modification times), and a password link's page that tells nothing (no
//! title, no message) before the password.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use common::gateway::Gateway;

/// Reads `path` as nobody (uid/gid 65534) when we are root, else as ourselves
/// (already a normal user).
fn read_as_normal_user(path: &std::path::Path) -> Vec<u8> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let out = if root {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
            .arg(path)
            .output()
            .unwrap()
    } else {
        Command::new("cat").arg(path).output().unwrap()
    };
    assert!(
        out.status.success(),
        "{} unreadable: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn mtime(path: &std::path::Path) -> u64 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zip_unzips_readable_with_the_files_times() {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("alice", "/alice", "all", Some("pw"), None);
    let root = gw.config.data_dir.join("files/alice/proj");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let files = [
        ("a.bin", common::pattern(200_000, 3), 1_615_000_000u64),
        ("sub/b.txt", b"inner b".to_vec(), 1_700_000_001),
    ];
    for (name, data, at) in &files {
        let p = root.join(name);
        std::fs::write(&p, data).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(UNIX_EPOCH + Duration::from_secs(*at))
            .unwrap();
    }
    let (_, token) = gw.link(&["share", "/proj", "--as", "alice"]);
    let r = reqwest::get(format!("{}/zip", gw.url(&token)))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let zip = gw.path("all.zip");
    std::fs::write(&zip, r.bytes().await.unwrap()).unwrap();

    // Somewhere an unprivileged user can walk into.
    let place = tempfile::tempdir().unwrap();
    std::fs::set_permissions(place.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&zip, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = place.path().join("out");
    // MS-DOS times carry no zone: wharf writes UTC, so unzip reads them as UTC.
    let st = Command::new("unzip")
        .env("TZ", "UTC")
        .arg("-q")
        .arg(&zip)
        .arg("-d")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    for (name, data, at) in &files {
        let p = out.join("proj").join(name);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{name}");
        assert_eq!(
            common::sha256(&read_as_normal_user(&p)),
            common::sha256(data),
            "{name}"
        );
        // MS-DOS time counts in steps of 2 s.
        let got = mtime(&p);
        assert!(got.abs_diff(*at) <= 2, "{name}: {got} != {at}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_link_tells_nothing_before_the_password() {
    let gw = Gateway::start("fs", "").await;
    let local = gw.path("merger.pdf");
    std::fs::write(&local, b"the merger").unwrap();
    let (_, token) = gw.link_with_input(
        &[
            "send",
            local.to_str().unwrap(),
            "--title",
            "Project Falcon merger",
            "--message",
            "Board eyes only until Friday",
            "--password-stdin",
        ],
        Some("open sesame"),
    );
    let page = reqwest::get(gw.url(&token))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"password\""), "{page}");
    for secret in ["Falcon", "Board eyes", "merger.pdf"] {
        assert!(!page.contains(secret), "{secret} shown: {page}");
    }
}
