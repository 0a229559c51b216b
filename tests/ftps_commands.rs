//! FTP commands answered as vsftpd answers them (ProFTPD for `SITE UTIME`, RFC
//! 3659 for `OPTS MLST`), with Python's ftplib, curl and lftp: `SITE CHMOD`,
//! `MFMT`, `MDTM <time> <file>`, `SITE UTIME`, `SITE HELP`, `OPTS MLST`, `STOU`,
//! `EPSV ALL`, and listings sorted by name, without dotfiles unless `-a`, with
//! patterns in the last segment (`dir/file*`).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, UNIX_EPOCH};

use common::gateway::Gateway;
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

fn mtime(path: &std::path::Path) -> u64 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// 2020-01-02 03:04:05 UTC.
const T2020: u64 = 1_577_934_245;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ftplib_site_times_mlst_stou_epsv_all_and_listings() {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let port = gw.ftps_explicit().port();
    let script = format!(
        r#"{resuming}
import ftplib, ssl, io, socket
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
f = ResumingFTP_TLS(context=ctx, timeout=30)
f.connect("127.0.0.1", {port}); f.login("acme", "pw"); f.prot_p()
for name in ["b.txt", "a.txt", ".hidden", "c.log"]:
    f.storbinary("STOR " + name, io.BytesIO(name.encode()))
f.mkd("sub"); f.storbinary("STOR sub/c.txt", io.BytesIO(b"c")); f.storbinary("STOR sub/d.bin", io.BytesIO(b"d"))
def out(label, value): print(label, repr(value))
def err(cmd):
    try:
        return f.sendcmd(cmd)
    except ftplib.all_errors as e:
        return str(e)
out("HELP", f.sendcmd("SITE HELP"))
out("CHMOD", f.sendcmd("SITE CHMOD 600 a.txt"))
out("CHMODBAD", err("SITE CHMOD 9x9 a.txt"))
out("CHMODMISSING", err("SITE CHMOD 600 nope.txt"))
out("SITEBAD", err("SITE NOPE"))
out("MFMT", f.sendcmd("MFMT 20200102030405 a.txt"))
out("MDTMA", f.sendcmd("MDTM a.txt"))
out("MDTMSET", f.sendcmd("MDTM 20210102030405 b.txt"))
out("MDTMB", f.sendcmd("MDTM b.txt"))
out("UTIME2", f.sendcmd("SITE UTIME 202203040506 c.log"))
out("MDTMC", f.sendcmd("MDTM c.log"))
out("UTIME5", f.sendcmd("SITE UTIME sub/c.txt 20230101000000 20230101000000 20230101000000 UTC"))
out("MDTMSUB", f.sendcmd("MDTM sub/c.txt"))
out("FEAT", f.sendcmd("FEAT"))
out("OPTS", f.sendcmd("OPTS MLST type;size;"))
out("FEAT2", [l.strip() for l in f.sendcmd("FEAT").splitlines() if "MLST" in l])
out("MLSD", sorted(l for l in (lambda acc: (f.retrlines("MLSD", acc.append), acc)[1])([])))
out("NLST", f.nlst())
lines = []; f.retrlines("LIST -a", lines.append); out("LISTA", [l.split()[-1] for l in lines])
lines = []; f.retrlines("LIST", lines.append); out("LIST", [l.split()[-1] for l in lines])
out("GLOB", f.nlst("*.txt"))
out("GLOBSUB", f.nlst("sub/c*"))
lines = []; f.retrlines("LIST sub/*.bin", lines.append); out("LISTGLOB", [l.split()[-1] for l in lines])
try:
    out("GLOBNONE", f.nlst("*.none"))
except ftplib.all_errors as e:
    out("GLOBNONE", str(e))
f.storbinary("STOU a.txt", io.BytesIO(b"unique"))
f.storbinary("STOU a.txt", io.BytesIO(b"unique2"))
f.storbinary("STOU", io.BytesIO(b"noname"))
out("AFTERSTOU", f.nlst())
out("EPSVALL", f.sendcmd("EPSV ALL"))
out("PASV", err("PASV"))
out("PORT", err("PORT 127,0,0,1,200,10"))
out("EPRT", err("EPRT |1|127.0.0.1|40000|"))
f.af = socket.AF_INET6  # makes ftplib use EPSV
out("EPSVLIST", f.nlst("sub"))
f.quit()
print("DONE")
"#,
        resuming = common::PY_RESUMING_FTP_TLS
    );
    let (ok, out) = run(Command::new("python3").args(["-c", &script])).await;
    assert!(ok && out.contains("DONE"), "{out}");
    let line = |label: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{label} ")))
            .unwrap_or_else(|| panic!("{label} missing: {out}"))
            .to_string()
    };
    let home = gw.config.data_dir.join("files/acme");
    assert_eq!(line("HELP"), "'214 CHMOD UTIME HELP'");
    assert_eq!(line("CHMOD"), "'200 SITE CHMOD command ok.'");
    assert_eq!(mode(&home.join("a.txt")), 0o600);
    assert!(line("CHMODBAD").starts_with("'501"), "{out}");
    assert!(line("CHMODMISSING").starts_with("'550"), "{out}");
    assert_eq!(line("SITEBAD"), "'500 Unknown SITE command.'");
    assert_eq!(line("MFMT"), "'213 Modify=20200102030405; a.txt'");
    assert_eq!(line("MDTMA"), "'213 20200102030405'");
    assert_eq!(mtime(&home.join("a.txt")), T2020);
    assert_eq!(line("MDTMSET"), "'213 File modification time set.'");
    assert_eq!(line("MDTMB"), "'213 20210102030405'");
    assert_eq!(line("UTIME2"), "'200 SITE UTIME command successful'");
    assert_eq!(line("MDTMC"), "'213 20220304050600'");
    assert_eq!(line("MDTMSUB"), "'213 20230101000000'");
    assert!(line("FEAT").contains("MFMT"), "{out}");
    assert!(
        line("FEAT").contains("MLST type*;size*;modify*;perm*;"),
        "{out}"
    );
    assert_eq!(line("OPTS"), "'200 MLST OPTS type;size;'");
    assert_eq!(line("FEAT2"), "['MLST type*;size*;modify;perm;']");
    let mlsd = line("MLSD");
    assert!(mlsd.contains("'type=file;size=5; a.txt'"), "{mlsd}");
    assert!(!mlsd.contains("modify="), "{mlsd}");
    assert_eq!(line("NLST"), "['a.txt', 'b.txt', 'c.log', 'sub']");
    assert_eq!(
        line("LISTA"),
        "['.', '..', '.hidden', 'a.txt', 'b.txt', 'c.log', 'sub']"
    );
    assert_eq!(line("LIST"), "['a.txt', 'b.txt', 'c.log', 'sub']");
    assert_eq!(line("GLOB"), "['a.txt', 'b.txt']");
    assert_eq!(line("GLOBSUB"), "['sub/c.txt']");
    assert_eq!(line("LISTGLOB"), "['d.bin']");
    assert!(line("GLOBNONE").starts_with("'550"), "{out}");
    assert_eq!(
        line("AFTERSTOU"),
        "['a.txt', 'a.txt.1', 'a.txt.2', 'b.txt', 'c.log', 'file', 'sub']"
    );
    assert_eq!(
        std::fs::read(home.join("a.txt")).unwrap(),
        b"a.txt",
        "STOU kept the original"
    );
    assert_eq!(std::fs::read(home.join("a.txt.1")).unwrap(), b"unique");
    assert_eq!(line("EPSVALL"), "'200 EPSV ALL ok.'");
    assert_eq!(line("PASV"), "'550 PASV not allowed after EPSV ALL'");
    assert_eq!(line("PORT"), "'550 PORT not allowed after EPSV ALL'");
    assert_eq!(line("EPRT"), "'550 EPRT not allowed after EPSV ALL'");
    assert_eq!(line("EPSVLIST"), "['c.txt', 'd.bin']");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_and_lftp_set_modes_and_times_and_list_patterns() {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let port = gw.ftps_explicit().port();
    let home = gw.config.data_dir.join("files/acme");
    std::fs::create_dir_all(home.join("d")).unwrap();
    for name in [
        "x.bin",
        "d/one.txt",
        "d/two.txt",
        "d/three.log",
        "d/.dot.txt",
    ] {
        std::fs::write(home.join(name), name).unwrap();
    }
    let base = format!("ftp://127.0.0.1:{port}/");
    let curl = || {
        let mut c = Command::new("curl");
        c.args(["-sS", "--ssl-reqd", "-k", "-u", "acme:pw"]);
        c
    };
    // curl's quote commands, then a name listing of d/.
    let (ok, out) = run(curl()
        .args([
            "-Q",
            "SITE CHMOD 640 x.bin",
            "-Q",
            "MFMT 20200102030405 x.bin",
        ])
        .args(["-l", &format!("{base}d/")]))
    .await;
    assert!(ok, "curl: {out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["one.txt", "three.log", "two.txt"]
    );
    assert_eq!(mode(&home.join("x.bin")), 0o640);
    assert_eq!(mtime(&home.join("x.bin")), T2020);
    // A refused quote command fails curl.
    let (ok, out) = run(curl().args(["-Q", "SITE CHMOD 640 missing.bin", &base])).await;
    assert!(!ok && out.contains("550"), "{out}");

    // lftp: chmod (SITE CHMOD), a pattern listed by the server, sorted `ls`.
    let script =
        "set ssl:verify-certificate no; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; \
         chmod 600 d/one.txt; nlist d/t*; ls d; bye";
    let (ok, out) = run(Command::new("lftp").args([
        "-p",
        &port.to_string(),
        "-u",
        "acme,pw",
        "-e",
        script,
        "127.0.0.1",
    ]))
    .await;
    assert!(ok, "lftp: {out}");
    assert_eq!(mode(&home.join("d/one.txt")), 0o600);
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert!(
        names.windows(2).any(|w| w == ["d/three.log", "d/two.txt"]),
        "{out}"
    );
    let listed: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(listed, ["one.txt", "three.log", "two.txt"], "{out}");
}

/// ABOR during an upload says what becomes of its bytes, as `[storage]
/// interrupted_uploads` decides: discarded by default, kept with `keep`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abor_of_an_upload_says_what_is_kept() {
    for (mode, kept) in [("discard", false), ("keep", true)] {
        let gw = Gateway::start(
            "fs",
            &format!("[storage]\ninterrupted_uploads = \"{mode}\""),
        )
        .await;
        gw.add_user("acme", "/acme", "all", Some("pw"), None);
        let port = gw.ftps_explicit().port();
        let script = format!(
            r#"{resuming}
import ftplib, ssl, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
f = ResumingFTP_TLS(context=ctx, timeout=30)
f.connect("127.0.0.1", {port}); f.login("acme", "pw"); f.prot_p()
f.voidcmd("TYPE I")
conn = f.transfercmd("STOR big.bin")
conn.sendall(b"x" * 300000)
time.sleep(0.5)
f.putcmd("ABOR")
print("ABOR1", repr(f.getline()))
print("ABOR2", repr(f.getline()))
conn.close()
f.quit()
"#,
            resuming = common::PY_RESUMING_FTP_TLS
        );
        let (ok, out) = run(Command::new("python3").args(["-c", &script])).await;
        assert!(ok, "{out}");
        let want = if kept {
            "426 Transfer aborted; an upload keeps the bytes received"
        } else {
            "426 Transfer aborted; nothing was kept of an upload"
        };
        assert!(out.contains(want), "{mode}: {out}");
        assert!(out.contains("226 ABOR successful"), "{mode}: {out}");
        let stored = gw.config.data_dir.join("files/acme/big.bin");
        // The kept prefix is published in the background once the upload drops.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while kept && !stored.exists() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(stored.exists(), kept, "{mode}: {out}");
    }
}

/// FTP listings show a symlink as a link, as vsftpd (LIST: `lrwxrwxrwx ...
/// name -> text`) and ProFTPD (MLSD: `type=OS.unix=symlink`) do, with its text
/// in the user's view; a link leading out of the home is not listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_show_symlinks_as_links() {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let home = gw.config.data_dir.join("files/acme");
    std::fs::create_dir_all(home.join("sub")).unwrap();
    std::fs::write(home.join("a.txt"), b"abc").unwrap();
    let real = std::fs::canonicalize(&home).unwrap();
    std::os::unix::fs::symlink("a.txt", home.join("rel")).unwrap();
    std::os::unix::fs::symlink(real.join("sub"), home.join("abs")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", home.join("out")).unwrap();
    let port = gw.ftps_explicit().port();
    let script = format!(
        r#"{resuming}
import ftplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
f = ResumingFTP_TLS(context=ctx, timeout=30)
f.connect("127.0.0.1", {port}); f.login("acme", "pw"); f.prot_p()
lines = []; f.retrlines("LIST", lines.append)
for l in lines: print("LIST", l)
lines = []; f.retrlines("MLSD", lines.append)
for l in lines: print("MLSD", l)
f.quit()
print("DONE")
"#,
        resuming = common::PY_RESUMING_FTP_TLS
    );
    let (ok, out) = run(Command::new("python3").args(["-c", &script])).await;
    assert!(ok && out.contains("DONE"), "{out}");
    let list: Vec<&str> = out.lines().filter(|l| l.starts_with("LIST ")).collect();
    let rel = list.iter().find(|l| l.contains(" rel")).expect(&out);
    assert!(rel.starts_with("LIST lrwxrwxrwx"), "{out}");
    assert!(rel.ends_with(" rel -> a.txt"), "{out}");
    let abs = list.iter().find(|l| l.contains(" abs")).expect(&out);
    assert!(abs.ends_with(" abs -> /sub"), "{out}");
    assert!(
        !out.contains(" out"),
        "the link leading out is not listed: {out}"
    );
    assert!(out.contains("MLSD type=OS.unix=symlink;"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("MLSD type=file;") && l.ends_with(" a.txt")),
        "{out}"
    );
    assert!(!out.contains(&real.display().to_string()), "{out}");
}

/// Two STOU of one name at once never pick the same name: the second, asked
/// while the first upload still runs (not yet published), gets `name.1`, and
/// both files keep their bytes. Before names were claimed, both got `race.txt`
/// and the upload that ended last replaced the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_stou_never_share_a_name() {
    let gw = Gateway::start("fs", "").await;
    gw.add_user("acme", "/acme", "all", Some("pw"), None);
    let port = gw.ftps_explicit().port();
    let script = format!(
        r#"{resuming}
import ftplib, ssl, io
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def login():
    f = ResumingFTP_TLS(context=ctx, timeout=30)
    f.connect("127.0.0.1", {port}); f.login("acme", "pw"); f.prot_p()
    return f
a, b = login(), login()
conn = a.transfercmd("STOU race.txt")
conn.sendall(b"first")
b.storbinary("STOU race.txt", io.BytesIO(b"second"))
conn.unwrap(); conn.close()
print("A", a.voidresp())
print("NAMES", sorted(a.nlst()))
a.quit(); b.quit()
print("DONE")
"#,
        resuming = common::PY_RESUMING_FTP_TLS
    );
    let (ok, out) = run(Command::new("python3").args(["-c", &script])).await;
    assert!(ok && out.contains("DONE"), "{out}");
    assert!(out.contains("NAMES ['race.txt', 'race.txt.1']"), "{out}");
    let home = gw.config.data_dir.join("files/acme");
    assert_eq!(std::fs::read(home.join("race.txt")).unwrap(), b"first");
    assert_eq!(std::fs::read(home.join("race.txt.1")).unwrap(), b"second");
}
