//! Confinement against the real server: every door keeps a user inside their
//! home (a share link inside its folder, an upload request inside its folder),
//! even where symlinks on the fs storage point elsewhere; and a path the server
//! cannot accept is refused, never taken for the current directory.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::gateway::{Gateway, SSH_OPTS};
use common::{file_path, pattern, sha256};
use suppaftp::{FtpError, RustlsConnector, RustlsFtpStream, Status};
use wharf::audit::{AuditEvent, Outcome};
use wharf::store::AuditQuery;

/// A TLS client that trusts exactly the certificate the gateway generated.
fn tls(gw: &Gateway) -> RustlsConnector {
    use rustls::pki_types::pem::PemObject;
    let pem = gw.config.data_dir.join(wharf::ftps::tls::CERT_FILE);
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(&pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    RustlsConnector::from(Arc::new(config))
}

fn ftps(gw: &Gateway, user: &str, password: &str) -> RustlsFtpStream {
    let ftp = RustlsFtpStream::connect(gw.ftps_explicit()).unwrap();
    let mut ftp = ftp.into_secure(tls(gw), "localhost").unwrap();
    ftp.login(user, password).unwrap();
    ftp.transfer_type(suppaftp::types::FileType::Binary)
        .unwrap();
    ftp
}

/// Sends one raw command line; returns the reply code.
fn raw(ftp: &mut RustlsFtpStream, line: &str) -> u32 {
    match ftp.custom_command(line, &[Status::CommandOk]) {
        Ok(r) => r.status.code(),
        Err(FtpError::UnexpectedResponse(r)) => r.status.code(),
        Err(e) => panic!("{line:?}: {e}"),
    }
}

/// `RMD <NUL>` removed the current directory, `RNFR <tab>` + `RNTO` moved it,
/// and `DELE`/`CWD`/`SIZE`/`RETR` with a NUL acted on it too: an invalid path is
/// now a 553 (or 501) and nothing moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftp_invalid_paths_are_refused_not_taken_for_the_current_directory() {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("alice", "/alice", "all", Some("pw-a"), None);
    let gw = tokio::task::spawn_blocking(move || {
        let mut ftp = ftps(&gw, "alice", "pw-a");
        ftp.mkdir("d").unwrap();
        ftp.cwd("d").unwrap();
        let refused = |code: u32| code == 553 || code == 501;
        for line in [
            "RMD \0",
            "RMD x\0y",
            "XRMD \u{1}",
            "DELE \0",
            "CWD a\0",
            "MKD \0",
            "SIZE \0",
            "MDTM \0",
            "MLST \0",
            "RNFR \t",
            "RNFR \0",
        ] {
            let code = raw(&mut ftp, line);
            assert!(refused(code), "{line:?} answered {code}");
            // Had RNFR been accepted, this would move the current directory.
            let code = raw(&mut ftp, "RNTO /moved");
            assert_eq!(code, 503, "RNTO after {line:?}");
        }
        ftp.cwd("/").unwrap();
        ftp.rename("d", "d2").unwrap();
        ftp.cwd("d2").unwrap();
        // RNFR of a valid name followed by an invalid RNTO moves nothing either.
        assert_eq!(raw(&mut ftp, "RNFR ."), 350);
        assert!(refused(raw(&mut ftp, "RNTO \t")));
        assert_eq!(ftp.pwd().unwrap(), "/d2");
        ftp.quit().unwrap();
        gw
    })
    .await
    .unwrap();
    let home = gw.config.data_dir.join("files/alice");
    assert!(home.join("d2").is_dir(), "the directory is still there");
    let names: Vec<_> = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["d2"]);
}

/// Bob's secret: distinctive bytes whose presence anywhere is a leak.
fn bob_secret() -> Vec<u8> {
    let mut v = b"BOB-SECRET-".to_vec();
    v.extend(pattern(100_000, 42));
    v
}

fn alice_real() -> Vec<u8> {
    pattern(50_000, 7)
}

/// Files of bob (and outside the root) with their SHA-256, to check nothing
/// changed; and the names in bob's folder.
fn snapshot(dirs: &[&Path]) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for dir in dirs {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let sha = if p.is_file() {
                sha256(&std::fs::read(&p).unwrap())
            } else {
                "dir".into()
            };
            out.push((p, sha));
        }
    }
    out.sort();
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// alice (home /alice) and bob (home /bob) on the fs default storage; on disk,
/// links from alice's home to bob's folder, to a file of bob's and to a folder
/// outside the root, and one link inside alice's home.
struct World {
    gw: Gateway,
    root: PathBuf,
    outside: PathBuf,
    key: PathBuf,
}

async fn world() -> World {
    use std::os::unix::fs::symlink;
    let gw = Gateway::start("fs", "").await;
    let key = gw.keygen("alice_key");
    gw.add_user("alice", "/alice", "all", Some("pw-a"), Some(&key));
    gw.add_user("bob", "/bob", "all", Some("pw-b"), None);
    let root = gw.config.data_dir.join("files");
    std::fs::create_dir_all(root.join("alice/sub")).unwrap();
    std::fs::create_dir_all(root.join("bob/dir")).unwrap();
    std::fs::write(root.join("bob/secret.txt"), bob_secret()).unwrap();
    std::fs::write(root.join("bob/dir/inner.txt"), bob_secret()).unwrap();
    std::fs::write(root.join("alice/sub/real.txt"), alice_real()).unwrap();
    let outside = gw.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("outside.txt"), bob_secret()).unwrap();
    symlink("../bob", root.join("alice/evil")).unwrap();
    symlink("../bob/secret.txt", root.join("alice/evil-file")).unwrap();
    symlink(&outside, root.join("alice/abs-out")).unwrap();
    symlink("sub/real.txt", root.join("alice/in")).unwrap();
    World {
        gw,
        root,
        outside,
        key,
    }
}

/// Bob's folder and the folder outside the root, file by file.
fn untouched(root: &Path, outside: &Path) -> Vec<(PathBuf, String)> {
    snapshot(&[&root.join("bob"), &root.join("bob/dir"), outside])
}

/// The actions refused (denied) or failed for `protocol` on paths through the links.
fn refused(rows: &[AuditEvent], protocol: &str) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .filter(|e| e.protocol == protocol && e.outcome != Outcome::Ok)
        .map(|e| format!("{} {:?}", e.action, e.outcome))
        .collect();
    v.sort();
    v.dedup();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_out_of_the_home_are_refused_on_every_door() {
    let World {
        gw,
        root,
        outside,
        key,
    } = world().await;
    let before_snapshot = untouched(&root, &outside);

    // SFTP: OpenSSH sftp in batch mode; `-` lets the batch go on after a refusal.
    std::fs::write(gw.path("local.txt"), b"planted by alice").unwrap();
    let batch = "\
-get evil/secret.txt got1
-get evil-file got2
-get abs-out/outside.txt got3
-get evil/dir/inner.txt got4
-put local.txt evil/new.txt
-put local.txt evil-file
-put local.txt abs-out/new.txt
-rm evil/secret.txt
-rename evil/secret.txt stolen.txt
-rename sub/real.txt evil/planted.txt
-mkdir evil/newdir
-rmdir evil/dir
-ls evil
get in in-copy
get sub/real.txt real-copy
ls -1
";
    let file = gw.path("batch.txt");
    std::fs::write(&file, batch).unwrap();
    let out = tokio::process::Command::new("sftp")
        .current_dir(gw.dir.path())
        .args(SSH_OPTS)
        .arg("-P")
        .arg(gw.sftp_addr().port().to_string())
        .arg("-i")
        .arg(&key)
        .arg("-b")
        .arg(&file)
        .arg("alice@127.0.0.1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .unwrap()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    for got in ["got1", "got2", "got3", "got4"] {
        assert!(!gw.path(got).exists(), "sftp fetched {got}: {text}");
    }
    assert_eq!(std::fs::read(gw.path("in-copy")).unwrap(), alice_real());
    assert_eq!(std::fs::read(gw.path("real-copy")).unwrap(), alice_real());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let listed = stdout.rsplit("sftp> ls -1").next().unwrap();
    assert!(
        listed.contains("in") && !listed.contains("evil") && !listed.contains("abs-out"),
        "links out are not listed: {listed}"
    );
    assert!(root.join("alice/evil").is_symlink());
    assert!(root.join("alice/evil-file").is_symlink());

    // FTPS with suppaftp.
    let gw2 = tokio::task::spawn_blocking(move || {
        let mut ftp = ftps(&gw, "alice", "pw-a");
        for p in ["evil/secret.txt", "evil-file", "abs-out/outside.txt"] {
            assert!(ftp.retr_as_buffer(p).is_err(), "RETR {p}");
        }
        for p in ["evil/new.txt", "evil-file", "abs-out/new.txt"] {
            assert!(
                ftp.put_file(p, &mut Cursor::new(b"planted")).is_err(),
                "STOR {p}"
            );
        }
        assert!(ftp.rm("evil/secret.txt").is_err());
        assert!(ftp.rename("evil/secret.txt", "stolen.txt").is_err());
        assert!(ftp.rename("sub/real.txt", "evil/planted.txt").is_err());
        assert!(ftp.mkdir("evil/newdir").is_err());
        assert!(ftp.rmdir("evil/dir").is_err());
        assert!(ftp.cwd("evil").is_err());
        assert!(ftp.list(Some("evil")).is_err());
        let names = ftp.nlst(None).unwrap();
        assert!(
            names
                .iter()
                .all(|n| !n.contains("evil") && !n.contains("abs-out")),
            "{names:?}"
        );
        let got = ftp.retr_as_buffer("in").unwrap().into_inner();
        assert_eq!(got, alice_real());
        ftp.quit().unwrap();
        gw
    })
    .await
    .unwrap();
    let mut gw = gw2;

    // A share link of alice's home: folder page, files, zip.
    let (_, token) = gw.link(&["share", "/", "--as", "alice"]);
    let base = gw.url(&token);
    let http = reqwest::Client::new();
    let page = http.get(&base).send().await.unwrap().text().await.unwrap();
    let item = format!("{base}{}", file_path(&page));
    let folder = http.get(&item).send().await.unwrap();
    assert_eq!(folder.status(), 200);
    let folder = folder.text().await.unwrap();
    assert!(
        !folder.contains("evil") && !folder.contains("abs-out"),
        "{folder}"
    );
    assert!(folder.contains("sub"), "{folder}");
    for p in [
        "evil/secret.txt",
        "evil-file",
        "abs-out/outside.txt",
        "evil",
        "evil/dir/inner.txt",
    ] {
        let r = http.get(format!("{item}/{p}")).send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        assert_eq!(status, 404, "{p}");
        assert!(!contains(&body, b"BOB-SECRET-"), "{p}");
    }
    let r = http.get(format!("{item}/in")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), alice_real());
    let zip = http.get(format!("{base}/zip")).send().await.unwrap();
    assert_eq!(zip.status(), 200);
    let zip = zip.bytes().await.unwrap();
    assert!(!contains(&zip, b"BOB-SECRET-"), "the zip holds bob's bytes");
    assert!(
        contains(&zip, &alice_real()[..4096]),
        "the zip holds alice's file"
    );

    // An upload request into alice's folder, whose folder is then swapped on
    // disk for a link to bob's.
    let (_, rtoken) = gw.link(&["request", "--as", "alice", "--folder", "/inbox"]);
    std::fs::remove_dir(root.join("alice/inbox")).unwrap();
    std::os::unix::fs::symlink("../bob", root.join("alice/inbox")).unwrap();
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let visitor = reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let rpage = gw.url(&rtoken);
    assert_eq!(visitor.get(&rpage).send().await.unwrap().status(), 200);
    let data = b"planted through a request".to_vec();
    let r = visitor
        .post(format!("{rpage}/uploads"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", data.len().to_string())
        .header("Upload-Metadata", "filename cGxhbnRlZC50eHQ=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let origin = rpage.split("/l/").next().unwrap();
    let r = visitor
        .patch(format!("{origin}{location}"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(data)
        .send()
        .await
        .unwrap();
    assert!(
        !r.status().is_success(),
        "published through the link: {}",
        r.status()
    );

    // Bob's files and the folder outside the root are exactly as they were.
    assert_eq!(untouched(&root, &outside), before_snapshot);
    assert!(!root.join("bob/planted.txt").exists());
    assert_eq!(
        std::fs::read(root.join("alice/sub/real.txt")).unwrap(),
        alice_real()
    );

    let rows = gw.stop_and_audit(AuditQuery::default()).await;
    let sftp = refused(&rows, "sftp");
    for want in [
        "upload Denied",
        "delete Denied",
        "rename Failed",
        "mkdir Denied",
        "rmdir Denied",
    ] {
        assert!(sftp.iter().any(|a| a == want), "sftp {want}: {sftp:?}");
    }
    assert!(
        sftp.iter()
            .any(|a| a == "stat Denied" || a == "download Denied"),
        "{sftp:?}"
    );
    let ftps = refused(&rows, "ftps");
    for want in [
        "download Denied",
        "upload Denied",
        "delete Denied",
        "mkdir Denied",
        "rmdir Denied",
    ] {
        assert!(ftps.iter().any(|a| a == want), "ftps {want}: {ftps:?}");
    }
    let http = refused(&rows, "http");
    for want in ["link_download Denied", "link_upload Denied"] {
        assert!(http.iter().any(|a| a == want), "http {want}: {http:?}");
    }
}

/// A link swapped between a file inside the home and bob's file while alice
/// downloads it again and again: no byte of bob's is ever served, and uploads
/// through a swapped folder link never land outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_swapped_during_transfers_never_leaks() {
    let World { gw, root, .. } = world().await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let alice = root.join("alice");
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tmp = alice.join(format!(".swap{}", n % 2));
                let (file, dir) = if n.is_multiple_of(2) {
                    ("sub/real.txt", "sub")
                } else {
                    ("../bob/secret.txt", "../bob")
                };
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(file, &tmp).unwrap();
                std::fs::rename(&tmp, alice.join("race")).unwrap();
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(dir, &tmp).unwrap();
                std::fs::rename(&tmp, alice.join("race-dir")).unwrap();
                n += 1;
            }
            n
        })
    };
    let bob_before = snapshot(&[&root.join("bob")]);
    let gw = tokio::task::spawn_blocking(move || {
        let mut ftp = ftps(&gw, "alice", "pw-a");
        let started = Instant::now();
        let (mut served, mut refused) = (0, 0);
        for i in 0..300 {
            if started.elapsed() > Duration::from_secs(20) {
                break;
            }
            match ftp.retr_as_buffer("race") {
                Ok(got) => {
                    let got = got.into_inner();
                    assert!(!contains(&got, b"BOB-SECRET-"), "bob's bytes served");
                    assert_eq!(got, alice_real());
                    served += 1;
                }
                Err(_) => refused += 1,
            }
            let _ = ftp.put_file(format!("race-dir/up{i}.txt"), &mut Cursor::new(b"x"));
        }
        ftp.quit().unwrap();
        assert!(
            served > 0 && refused > 0,
            "served {served}, refused {refused}"
        );
        gw
    })
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(swapper.join().unwrap() > 10);
    assert_eq!(
        snapshot(&[&root.join("bob")]),
        bob_before,
        "nothing appeared in bob's folder"
    );
    drop(gw);
}
