//! FTPS with real clients against the real server on 127.0.0.1 port 0: suppaftp
//! (rustls) over explicit and implicit TLS on fs, memory and S3, curl, lftp,
//! Python's ftplib (commons-net and the other clients' full round trips are in
//! tests/client_matrix.rs); and what must be refused: plain logins, foreign PORT targets,
//! unprotected data, wrong passwords (audited, then locked out).

mod common;

use std::io::{BufRead, BufReader, Cursor, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::gateway::Gateway;
use common::{pattern, sha256};
use suppaftp::types::FileType;
use suppaftp::RustlsFtpStream;
use tokio::process::Command;
use wharf::audit::Outcome;
use wharf::store::AuditQuery;

const BIG: usize = 50 * 1024 * 1024;

fn explicit(gw: &Gateway, user: &str, password: &str) -> RustlsFtpStream {
    let ftp = RustlsFtpStream::connect(gw.ftps_explicit()).unwrap();
    let mut ftp = ftp.into_secure(gw.ftps_connector(), "localhost").unwrap();
    ftp.login(user, password).unwrap();
    ftp.transfer_type(FileType::Binary).unwrap();
    ftp
}

fn implicit(gw: &Gateway, user: &str, password: &str) -> RustlsFtpStream {
    #[allow(deprecated)]
    let mut ftp = RustlsFtpStream::connect_secure_implicit(
        gw.ftps_implicit(),
        gw.ftps_connector(),
        "localhost",
    )
    .unwrap();
    ftp.login(user, password).unwrap();
    ftp.transfer_type(FileType::Binary).unwrap();
    ftp
}

fn get(ftp: &mut RustlsFtpStream, path: &str) -> Vec<u8> {
    ftp.retr_as_buffer(path).unwrap().into_inner()
}

/// Everything suppaftp can do, on one storage. Runs on a blocking thread: the
/// client is synchronous and the server shares this process's runtime.
async fn suppaftp_round_trip(storage: &str) {
    let gw = Gateway::start(storage, "").await;
    gw.add_user("acme", "/partners/acme", "all", Some("ftp-secret"), None);
    let gw = tokio::task::spawn_blocking(move || {
        let big = pattern(BIG, 7);
        let mut ftp = explicit(&gw, "acme", "ftp-secret");
        ftp.mkdir("in").unwrap();
        ftp.cwd("in").unwrap();
        assert_eq!(ftp.pwd().unwrap(), "/in");
        ftp.put_file("big.bin", &mut Cursor::new(&big)).unwrap();
        assert_eq!(ftp.size("big.bin").unwrap(), BIG);
        let listed = ftp.list(None).unwrap();
        assert!(
            listed
                .iter()
                .any(|l| l.ends_with(" big.bin") && l.contains(&BIG.to_string())),
            "{listed:?}"
        );
        assert_eq!(ftp.nlst(None).unwrap(), ["big.bin"]);
        assert!(ftp.mlsd(None).unwrap()[0].contains("type=file;size=52428800;"));
        assert_eq!(sha256(&get(&mut ftp, "big.bin")), sha256(&big));
        ftp.rename("big.bin", "big2.bin").unwrap();

        // Resumed upload: 20 MiB first, then REST + STOR of the rest.
        ftp.put_file("resume.bin", &mut Cursor::new(&big[..20 << 20]))
            .unwrap();
        ftp.resume_transfer(20 << 20).unwrap();
        ftp.put_file("resume.bin", &mut Cursor::new(&big[20 << 20..]))
            .unwrap();
        assert_eq!(sha256(&get(&mut ftp, "resume.bin")), sha256(&big));
        // Resumed download: REST then RETR gives the tail.
        ftp.resume_transfer(10 << 20).unwrap();
        assert_eq!(sha256(&get(&mut ftp, "big2.bin")), sha256(&big[10 << 20..]));
        // Append.
        ftp.append_file("resume.bin", &mut Cursor::new(b"tail"))
            .unwrap();
        assert_eq!(ftp.size("resume.bin").unwrap(), BIG + 4);

        ftp.rm("big2.bin").unwrap();
        ftp.rm("resume.bin").unwrap();
        ftp.cdup().unwrap();
        ftp.rmdir("in").unwrap();
        assert!(ftp.nlst(None).unwrap().is_empty());
        ftp.quit().unwrap();

        // Implicit TLS, UTF-8 names.
        let mut ftp = implicit(&gw, "acme", "ftp-secret");
        let small = pattern(300_000, 3);
        ftp.put_file("dé jà.bin", &mut Cursor::new(&small)).unwrap();
        assert_eq!(ftp.nlst(None).unwrap(), ["dé jà.bin"]);
        assert_eq!(sha256(&get(&mut ftp, "dé jà.bin")), sha256(&small));
        ftp.quit().unwrap();
        gw
    })
    .await
    .unwrap();
    let mut gw = gw;
    let uploads = gw
        .stop_and_audit(AuditQuery {
            action: Some("upload".into()),
            ..Default::default()
        })
        .await;
    let big = uploads
        .iter()
        .find(|e| e.path.as_deref() == Some("/in/big.bin"))
        .expect("the upload is audited");
    assert_eq!(
        (big.protocol.as_str(), big.outcome, big.bytes),
        ("ftps", Outcome::Ok, Some(BIG as u64))
    );
    assert_eq!(
        big.detail.as_deref(),
        Some(format!("sha256 {}", sha256(&pattern(BIG, 7))).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppaftp_on_fs() {
    suppaftp_round_trip("fs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppaftp_on_memory() {
    suppaftp_round_trip("memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppaftp_on_s3() {
    suppaftp_round_trip("s3").await;
}

async fn run(cmd: &mut Command) -> (bool, String) {
    run_within(cmd, 120).await
}

async fn run_within(cmd: &mut Command, secs: u64) -> (bool, String) {
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(secs), cmd.output())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_lftp_and_python_ftplib() {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let data = pattern(3 * 1024 * 1024 + 5, 9);
    std::fs::write(gw.path("up.bin"), &data).unwrap();
    let (ex, im) = (gw.ftps_explicit().port(), gw.ftps_implicit().port());
    let want = sha256(&data);
    let file = |name: &str| sha256(&std::fs::read(gw.path(name)).unwrap());

    // curl, explicit (AUTH TLS, PROT P) up and down, implicit down.
    let (ok, out) = run(Command::new("curl")
        .args(["-sS", "--ssl-reqd", "-k", "-u", "acme:pw", "-T"])
        .arg(gw.path("up.bin"))
        .arg(format!("ftp://127.0.0.1:{ex}/curl.bin")))
    .await;
    assert!(ok, "curl explicit upload: {out}");
    let (ok, out) = run(Command::new("curl")
        .args(["-sS", "--ssl-reqd", "-k", "-u", "acme:pw", "-o"])
        .arg(gw.path("curl-down.bin"))
        .arg(format!("ftp://127.0.0.1:{ex}/curl.bin")))
    .await;
    assert!(ok, "curl explicit download: {out}");
    assert_eq!(file("curl-down.bin"), want);
    let (ok, out) = run(Command::new("curl")
        .args(["-sS", "-k", "-u", "acme:pw", "-o"])
        .arg(gw.path("curl-implicit.bin"))
        .arg(format!("ftps://127.0.0.1:{im}/curl.bin")))
    .await;
    assert!(ok, "curl implicit download: {out}");
    assert_eq!(file("curl-implicit.bin"), want);
    // lftp, which reuses the control connection's TLS session on data connections.
    let script = format!(
        "set ssl:verify-certificate no; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; \
         put {up} -o lftp.bin; get lftp.bin -o {down}; ls; bye",
        up = gw.path("up.bin").display(),
        down = gw.path("lftp-down.bin").display()
    );
    let (ok, out) = run(Command::new("lftp").args([
        "-p",
        &ex.to_string(),
        "-u",
        "acme,pw",
        "-e",
        &script,
        "127.0.0.1",
    ]))
    .await;
    assert!(ok, "lftp: {out}");
    assert!(out.contains("lftp.bin"), "{out}");
    assert_eq!(file("lftp-down.bin"), want);

    // Python's ftplib resumes no TLS session by itself; wharf requires it on data
    // connections by default (`[ftps] require_ssl_reuse`), so this is the subclass
    // docs/architecture.md shows. (tests/ftps_tls.rs covers plain ftplib.)
    let py = format!(
        r#"{resuming}
import ftplib, ssl, io, hashlib
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
f = ResumingFTP_TLS(context=ctx, timeout=30)
f.connect("127.0.0.1", {ex}); f.login("acme", "pw"); f.prot_p()
data = open("{up}", "rb").read()
f.storbinary("STOR py.bin", io.BytesIO(data))
out = io.BytesIO(); f.retrbinary("RETR py.bin", out.write)
assert out.getvalue() == data
f.rename("py.bin", "py2.bin"); f.mkd("d"); f.rmd("d"); f.delete("py2.bin")
print("OK", hashlib.sha256(out.getvalue()).hexdigest())
# Active mode (PORT): the client listens, wharf connects back and is the TLS server.
# (curl 7.88's active mode fails on its own side before wharf connects.)
f.set_pasv(False)
f.storbinary("STOR active.bin", io.BytesIO(data))
back = io.BytesIO(); f.retrbinary("RETR active.bin", back.write)
assert back.getvalue() == data
print("ACTIVE OK")
f.quit()
"#,
        resuming = common::PY_RESUMING_FTP_TLS,
        up = gw.path("up.bin").display()
    );
    let (ok, out) = run(Command::new("python3").args(["-c", &py])).await;
    assert!(ok, "python ftplib: {out}");
    assert!(out.contains(&format!("OK {want}")), "{out}");
    assert!(out.contains("ACTIVE OK"), "{out}");
}

/// A raw control connection, for what clients would not send.
struct Raw {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Raw {
    fn connect(addr: std::net::SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Raw {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    /// The next complete reply (its last line).
    fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line).unwrap() == 0 {
                return String::new();
            }
            if line.len() >= 4 && line.as_bytes()[3] == b' ' {
                return line.trim_end().to_string();
            }
        }
    }

    fn send(&mut self, cmd: &str) -> String {
        write!(self.w, "{cmd}\r\n").unwrap();
        self.reply()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_lockout() {
    let gw = Gateway::start_with(
        "fs",
        "",
        "[defender]\nmax_failures = 3\nwindow = \"1m\"\nban = \"10m\"\n",
    )
    .await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let gw = tokio::task::spawn_blocking(move || {
        // Plain USER before AUTH TLS.
        let mut raw = Raw::connect(gw.ftps_explicit());
        assert!(raw.reply().starts_with("220"));
        let r = raw.send("USER acme");
        assert!(r.starts_with("530") && r.contains("TLS"), "{r}");
        let r = raw.send("PASS pw");
        assert!(r.starts_with("503"), "PASS without an accepted USER: {r}");

        // Logged in over TLS: a foreign PORT target, unprotected data and CCC are refused.
        let mut ftp = explicit(&gw, "acme", "pw");
        let foreign = ftp.custom_command("PORT 10,0,0,1,200,10", &[suppaftp::Status::CommandOk]);
        assert!(foreign.is_err(), "PORT to another host must be refused");
        let bounce = ftp.custom_command("EPRT |1|127.0.0.1|25|", &[suppaftp::Status::CommandOk]);
        assert!(bounce.is_err(), "a privileged port must be refused");
        let own = ftp.custom_command("EPRT |1|127.0.0.1|40000|", &[suppaftp::Status::CommandOk]);
        assert!(own.is_ok(), "{own:?}");
        let plain = ftp.custom_command("PROT C", &[suppaftp::Status::CommandOk]);
        assert!(plain.is_err(), "PROT C must be refused by default");
        let ccc = ftp.custom_command("CCC", &[suppaftp::Status::CommandOk]);
        assert!(ccc.is_err());
        ftp.quit().unwrap();

        // Wrong passwords: refused, then the address is locked out.
        for _ in 0..3 {
            let ftp = RustlsFtpStream::connect(gw.ftps_explicit()).unwrap();
            let mut ftp = ftp.into_secure(gw.ftps_connector(), "localhost").unwrap();
            assert!(ftp.login("acme", "wrong").is_err());
        }
        let mut banned = Raw::connect(gw.ftps_explicit());
        let greeting = banned.reply();
        assert!(greeting.starts_with("421"), "{greeting}");
        gw
    })
    .await
    .unwrap();
    let mut gw = gw;
    let failed = gw
        .stop_and_audit(AuditQuery {
            action: Some("login_failed".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(failed.len(), 3, "{failed:?}");
    for e in &failed {
        assert_eq!(e.protocol, "ftps");
        assert_eq!(e.actor.as_deref(), Some("acme"));
        assert!(e.remote.as_deref().unwrap().starts_with("127.0.0.1:"));
        assert_eq!(e.detail.as_deref(), Some("password: wrong password"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_told_why() {
    let gw = Gateway::start_with("fs", "max_sessions = 1\n", "").await;
    tokio::task::spawn_blocking(move || {
        let mut first = Raw::connect(gw.ftps_explicit());
        assert!(first.reply().starts_with("220"));
        let mut second = Raw::connect(gw.ftps_explicit());
        let r = second.reply();
        assert!(r.starts_with("421") && r.contains("Too many"), "{r}");
        // The slot is free again once the first session ends.
        assert!(first.send("QUIT").starts_with("221"));
        drop(first);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut again = Raw::connect(gw.ftps_explicit());
            if again.reply().starts_with("220") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the slot was never released"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
}
