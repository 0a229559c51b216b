//! Host keys: Ed25519, ECDSA P-256 and RSA (rsa-sha2-256/512) are offered by
//! default, so clients that know only one of them connect (OpenSSH pinned to one
//! algorithm, ssh-keyscan, and old JSch as bundled in Java tools); `ssh-rsa`
//! (SHA-1) is not; `[sftp] host_key` takes one path or an array.

mod common;

use std::path::Path;
use std::time::Duration;

use common::gateway::{Gateway, SSH_OPTS};
use tokio::process::Command;

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

/// `ssh-keyscan` of the gateway: the (type, base64 key) pairs it offers.
async fn keyscan(gw: &Gateway, types: &str) -> Vec<(String, String)> {
    let port = gw.sftp_addr().port().to_string();
    let (_, out, err) = run(
        Command::new("ssh-keyscan").args(["-T", "20", "-t", types, "-p", &port, "127.0.0.1"]),
        60,
    )
    .await;
    let mut keys: Vec<(String, String)> = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip(1);
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect();
    keys.sort();
    assert!(!keys.is_empty(), "ssh-keyscan found nothing: {err}");
    keys
}

/// The (type, base64) of a private key file's public half, via ssh-keygen.
fn public_of(path: &Path) -> (String, String) {
    let out = std::process::Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut w = text.split_whitespace();
    (w.next().unwrap().into(), w.next().unwrap().into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_host_keys_by_default() {
    let gw = Gateway::start("fs", "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", None, Some(&key));
    let port = gw.sftp_addr().port().to_string();

    // The three files, owner-only, and exactly their keys on the wire.
    let mut want = Vec::new();
    for file in [
        "ssh_host_ed25519_key",
        "ssh_host_ecdsa_key",
        "ssh_host_rsa_key",
    ] {
        let path = gw.config.data_dir.join(file);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
        want.push(public_of(&path));
    }
    want.sort();
    assert_eq!(keyscan(&gw, "rsa,ecdsa,ed25519").await, want);
    let bits = std::process::Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(gw.config.data_dir.join("ssh_host_rsa_key"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bits.stdout).starts_with("3072 "));

    // A client that accepts only one host key algorithm still logs in.
    for algo in [
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "rsa-sha2-256",
        "rsa-sha2-512",
    ] {
        let (ok, _, err) = run(
            Command::new("ssh")
                .args(SSH_OPTS)
                .args(["-o", &format!("HostKeyAlgorithms={algo}")])
                .args(["-p", &port, "-i"])
                .arg(&key)
                .arg("acme@127.0.0.1")
                .arg("sha256sum")
                .stdin(std::process::Stdio::null()),
            60,
        )
        .await;
        assert!(ok, "{algo}: {err}");
    }
    // SHA-1 RSA signatures are not offered (as in OpenSSH's sshd since 8.8).
    let (ok, _, _) = run(
        Command::new("ssh")
            .args(SSH_OPTS)
            .args(["-o", "HostKeyAlgorithms=ssh-rsa", "-p", &port, "-i"])
            .arg(&key)
            .arg("acme@127.0.0.1")
            .arg("sha256sum")
            .stdin(std::process::Stdio::null()),
        60,
    )
    .await;
    assert!(!ok, "ssh-rsa (SHA-1) must not be negotiated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_host_keys_one_or_many() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for kind in ["ecdsa", "rsa"] {
        let path = dir.path().join(format!("my_{kind}"));
        let ok = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-f"])
            .arg(&path)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        paths.push(path);
    }
    // An array: exactly those keys, nothing generated.
    let extra = format!(
        "host_key = [\"{}\", \"{}\"]",
        paths[0].display(),
        paths[1].display()
    );
    let gw = Gateway::start("fs", &extra).await;
    let mut want: Vec<_> = paths.iter().map(|p| public_of(p)).collect();
    want.sort();
    assert_eq!(keyscan(&gw, "rsa,ecdsa,ed25519").await, want);
    assert!(!gw.config.data_dir.join("ssh_host_rsa_key").exists());
    // A single string, as before.
    let gw = Gateway::start("fs", &format!("host_key = \"{}\"", paths[0].display())).await;
    assert_eq!(
        keyscan(&gw, "rsa,ecdsa,ed25519").await,
        vec![public_of(&paths[0])]
    );
}

const JSCH_LS: &str = r#"
import com.jcraft.jsch.*;
import java.util.Vector;

public class JschLs {
    public static void main(String[] a) throws Exception {
        JSch jsch = new JSch();
        Session s = jsch.getSession(a[2], "127.0.0.1", Integer.parseInt(a[1]));
        s.setPassword(a[3]);
        s.setConfig("StrictHostKeyChecking", "no");
        s.setConfig("PreferredAuthentications", "password");
        s.connect(30000);
        System.out.println("HOSTKEY " + s.getHostKey().getType());
        ChannelSftp c = (ChannelSftp) s.openChannel("sftp");
        c.connect(30000);
        Vector<?> list = c.ls(a[0]);
        for (Object o : list) {
            System.out.println("ENTRY " + ((ChannelSftp.LsEntry) o).getFilename());
        }
        c.disconnect();
        s.disconnect();
    }
}
"#;

/// JSch 0.1.5x (Debian's libjsch-java) knows ssh-rsa, ssh-dss and ECDSA host
/// keys only: with Ed25519 alone it failed with "Algorithm negotiation fail".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_jsch_connects_and_lists() {
    let jar = Path::new("/usr/share/java/jsch.jar");
    let have_java = std::process::Command::new("javac")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !jar.exists() || !have_java {
        println!("skipped: needs javac and /usr/share/java/jsch.jar (apt-get install default-jdk-headless libjsch-java)");
        return;
    }
    let gw = Gateway::start("fs", "").await;
    gw.add_user("javauser", "/java", "all", Some("java-secret"), None);
    let home = gw.config.data_dir.join("files/java");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("from-wharf.txt"), b"hi").unwrap();

    let src = gw.path("JschLs.java");
    std::fs::write(&src, JSCH_LS).unwrap();
    let (ok, _, err) = run(
        Command::new("javac")
            .arg("-cp")
            .arg(jar)
            .arg("-d")
            .arg(gw.dir.path())
            .arg(&src),
        180,
    )
    .await;
    assert!(ok, "javac: {err}");
    let classpath = format!("{}:{}", jar.display(), gw.dir.path().display());
    let (ok, out, err) = run(
        Command::new("java").args([
            "-cp",
            &classpath,
            "JschLs",
            "/",
            &gw.sftp_addr().port().to_string(),
            "javauser",
            "java-secret",
        ]),
        120,
    )
    .await;
    assert!(ok, "JSch failed: {out}{err}");
    assert!(out.contains("ENTRY from-wharf.txt"), "{out}");
    assert!(out.contains("HOSTKEY ecdsa-sha2-nistp256"), "{out}");

    // With the Ed25519 key alone (all wharf offered before), JSch cannot connect.
    let ed = gw.config.data_dir.join("ssh_host_ed25519_key");
    let gw2 = Gateway::start("fs", &format!("host_key = \"{}\"", ed.display())).await;
    gw2.add_user("javauser", "/java", "all", Some("java-secret"), None);
    let (ok, out, err) = run(
        Command::new("java").args([
            "-cp",
            &classpath,
            "JschLs",
            "/",
            &gw2.sftp_addr().port().to_string(),
            "javauser",
            "java-secret",
        ]),
        120,
    )
    .await;
    assert!(!ok, "JSch 0.1.5x cannot know Ed25519: {out}");
    assert!(err.contains("Algorithm negotiation fail"), "{err}");
}
