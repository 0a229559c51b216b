//! FTPS data connections over TLS 1.3 with real clients: rclone (Go's TLS)
//! uploading and downloading several MB, Python's `ssl` resuming the control
//! connection's session on every data connection, and a Python download whose TLS
//! close is clean (no application data after close_notify). Then
//! `require_ssl_reuse`: a data connection that does not resume the control
//! session is refused by default and accepted with the setting off.

mod common;

use std::time::Duration;

use common::gateway::Gateway;
use common::{pattern, sha256};
use tokio::process::Command;

async fn run(cmd: &mut Command) -> (bool, String) {
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("client timed out")
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn python(script: &str) -> (bool, String) {
    run(Command::new("python3").args(["-c", script])).await
}

/// An ftplib client that resumes the control connection's TLS session on every
/// data connection (as lftp, curl, FileZilla and WinSCP do), and reports whether
/// each data connection did and which TLS version it spoke.
const RESUMING_FTPLIB: &str = r#"
import ftplib, ssl, io, hashlib, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
REUSED = []
class ResumingFTP_TLS(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
            REUSED.append((conn.session_reused, conn.version()))
        return conn, size
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_over_tls13_uploads_and_downloads_megabytes() {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let port = gw.ftps_explicit().port();
    let (ok, obscured) = run(Command::new("rclone").args(["obscure", "pw"])).await;
    assert!(ok, "{obscured}");
    let remote = format!(
        ":ftp,host=127.0.0.1,port={port},user=acme,pass={},explicit_tls=true,no_check_certificate=true:",
        obscured.trim()
    );
    let up = gw.path("up");
    std::fs::create_dir_all(&up).unwrap();
    let mut want = Vec::new();
    for (i, size) in [1 << 20, 3 << 20, 6 << 20].into_iter().enumerate() {
        let data = pattern(size + i, 40 + i as u64);
        let file = up.join(format!("f{i}.bin"));
        std::fs::write(&file, &data).unwrap();
        // An old modification time, which rclone sets with MFMT after the upload.
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_577_934_245))
            .unwrap();
        want.push((format!("f{i}.bin"), sha256(&data)));
    }
    let rclone = |args: &[&str]| {
        let mut c = Command::new("rclone");
        c.args([
            "--config",
            "/dev/null",
            "--retries",
            "1",
            "--low-level-retries",
            "1",
        ])
        .args(args);
        c
    };
    let (ok, out) = run(&mut rclone(&[
        "copy",
        up.to_str().unwrap(),
        &format!("{remote}in"),
    ]))
    .await;
    assert!(ok, "rclone upload over TLS 1.3: {out}");
    for (name, sha) in &want {
        assert_eq!(
            gw.stored_sha(&format!("/acme/in/{name}")).await.as_deref(),
            Some(sha.as_str()),
            "{name} stored whole"
        );
    }
    let stored = gw.config.data_dir.join("files/acme/in/f0.bin");
    assert_eq!(
        std::fs::metadata(&stored).unwrap().modified().unwrap(),
        std::time::UNIX_EPOCH + Duration::from_secs(1_577_934_245),
        "rclone kept the modification time (MFMT)"
    );
    // So a second copy finds every file up to date and sends nothing.
    let (ok, out) = run(&mut rclone(&[
        "copy",
        "-v",
        up.to_str().unwrap(),
        &format!("{remote}in"),
    ]))
    .await;
    assert!(
        ok && !out.contains("Copied"),
        "second copy sent nothing: {out}"
    );
    let down = gw.path("down");
    let (ok, out) = run(&mut rclone(&[
        "copy",
        &format!("{remote}in"),
        down.to_str().unwrap(),
    ]))
    .await;
    assert!(ok, "rclone download over TLS 1.3: {out}");
    for (name, sha) in &want {
        assert_eq!(
            &sha256(&std::fs::read(down.join(name)).unwrap()),
            sha,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_resumes_the_control_session_on_every_data_connection() {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let port = gw.ftps_explicit().port();
    let script = format!(
        r#"{RESUMING_FTPLIB}
f = ResumingFTP_TLS(context=ctx, timeout=30)
f.connect("127.0.0.1", {port}); f.login("acme", "pw"); f.prot_p()
data = bytes(range(256)) * 4096
f.storbinary("STOR a.bin", io.BytesIO(data))
out = io.BytesIO(); f.retrbinary("RETR a.bin", out.write)
assert out.getvalue() == data
names = f.nlst()
assert names == ["a.bin"], names
f.quit()
print("REUSED", REUSED)
assert [r for r, _ in REUSED] == [True, True, True], REUSED
assert all(v == "TLSv1.3" for _, v in REUSED), REUSED
print("OK")
"#
    );
    let (ok, out) = python(&script).await;
    assert!(
        ok && out.contains("OK"),
        "3 of 3 data connections resumed: {out}"
    );
}

/// Python's `ssl` fails a read that finds application data after the peer's
/// close_notify (ftputil's reads broke on it); a download must end cleanly, with
/// the client reading to the end and unwrapping the connection itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_download_ends_with_a_clean_tls_close() {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let port = gw.ftps_explicit().port();
    let home = gw.config.data_dir.join("files/acme");
    std::fs::create_dir_all(&home).unwrap();
    let data = pattern(5 << 20, 11);
    std::fs::write(home.join("big.bin"), &data).unwrap();
    let want = sha256(&data);
    let script = format!(
        r#"{RESUMING_FTPLIB}
f = ResumingFTP_TLS(context=ctx, timeout=30)
f.connect("127.0.0.1", {port}); f.login("acme", "pw"); f.prot_p()
for i in range(3):
    # As ftputil reads: the socket's file object until EOF, then unwrap.
    conn = f.transfercmd("RETR big.bin")
    h = hashlib.sha256(); n = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        h.update(chunk); n += len(chunk)
    conn.unwrap()
    conn.close()
    print(f.voidresp())
    print("SHA", h.hexdigest(), n)
    assert h.hexdigest() == "{want}"
# A listing read the same way.
conn = f.transfercmd("LIST")
listing = b""
while True:
    chunk = conn.recv(65536)
    if not chunk:
        break
    listing += chunk
conn.unwrap(); conn.close(); f.voidresp()
assert b"big.bin" in listing, listing
f.quit()
print("OK")
"#
    );
    let (ok, out) = python(&script).await;
    assert!(
        ok && out.contains("OK"),
        "clean TLS close on downloads: {out}"
    );
    assert!(
        !out.contains("APPLICATION_DATA_AFTER_CLOSE_NOTIFY"),
        "{out}"
    );
}

/// Python's plain `ftplib.FTP_TLS` resumes no session: refused with vsftpd's 522
/// by default (nothing stored), accepted with `require_ssl_reuse = false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_ssl_reuse_refuses_a_client_that_does_not_resume() {
    let script = |port: u16| {
        format!(
            r#"
import ftplib, ssl, io
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
f = ftplib.FTP_TLS(context=ctx, timeout=30)
f.connect("127.0.0.1", {port}); f.login("acme", "pw"); f.prot_p()
try:
    f.storbinary("STOR plain.bin", io.BytesIO(b"x" * 100000))
    print("STORED")
except ftplib.all_errors as e:
    print("REFUSED", e)
f = ftplib.FTP_TLS(context=ctx, timeout=30)
f.connect("127.0.0.1", {port}); f.login("acme", "pw"); f.prot_p()
try:
    print("LISTED", f.nlst())
except ftplib.all_errors as e:
    print("REFUSED", e)
"#
        )
    };
    let gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let (_, out) = python(&script(gw.ftps_explicit().port())).await;
    assert_eq!(
        out.matches("REFUSED 522 SSL connection failed: session reuse required")
            .count(),
        2,
        "{out}"
    );
    assert_eq!(
        gw.stored_sha("/acme/plain.bin").await,
        None,
        "nothing stored"
    );

    let gw = Gateway::start_with("fs", "require_ssl_reuse = false\n", "").await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let (_, out) = python(&script(gw.ftps_explicit().port())).await;
    assert!(
        out.contains("STORED") && out.contains("LISTED ['plain.bin']"),
        "{out}"
    );
}
