//! SFTP as OpenSSH's `sftp-server` answers it, beyond reads and writes:
//! `statvfs@openssh.com` (OpenSSH `sftp`'s `df`) with the disk's figures on fs,
//! `.` and `..` in READDIR, and the status texts client libraries match on
//! ("No such file", "Permission denied", "Failure", "Operation unsupported").

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::gateway::{Gateway, SSH_OPTS};
use tokio::process::Command;

const PASSWORD: &str = "ext-secret";

async fn run(cmd: &mut Command, secs: u64) -> (bool, String) {
    cmd.kill_on_drop(true).stdin(Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(secs), cmd.output())
        .await
        .expect("finished in time")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn sftp_batch(gw: &Gateway, key: &std::path::Path, batch: &str) -> (bool, String) {
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
    run(&mut cmd, 60).await
}

async fn paramiko(port: u16, body: &str) -> (bool, String) {
    let code = format!(
        "import paramiko\n\
         t = paramiko.Transport(('127.0.0.1', {port}))\n\
         t.connect(username='acme', password='{PASSWORD}')\n\
         sftp = paramiko.SFTPClient.from_transport(t)\n\
         {body}\n\
         t.close()\n"
    );
    run(Command::new("python3").args(["-c", &code]), 60).await
}

async fn gateway(storage: &str) -> (Gateway, std::path::PathBuf) {
    let gw = Gateway::start(storage, "").await;
    let key = gw.keygen("k");
    gw.add_user("acme", "/acme", "all", Some(PASSWORD), Some(&key));
    (gw, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn df_shows_the_disk_figures_on_fs() {
    let (gw, key) = gateway("fs").await;
    std::fs::create_dir_all(gw.config.data_dir.join("files/acme")).unwrap();
    let (ok, out) = sftp_batch(&gw, &key, "df\n").await;
    assert!(ok, "{out}");
    // `df` prints Size Used Avail (root) %Capacity in KiB.
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no figures in {out}"));
    let size: u64 = line.split_whitespace().next().unwrap().parse().unwrap();
    let (ok, local) = run(
        Command::new("python3").args([
            "-c",
            &format!(
                "import os; s = os.statvfs('{}'); print(s.f_blocks * s.f_frsize // 1024)",
                gw.config.data_dir.display()
            ),
        ]),
        30,
    )
    .await;
    assert!(ok, "{local}");
    assert_eq!(size, local.trim().parse::<u64>().unwrap(), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statvfs_is_unsupported_on_memory() {
    let (gw, _) = gateway("memory").await;
    let (ok, out) = paramiko(
        gw.sftp_addr().port(),
        "try:\n    sftp._request(paramiko.sftp.CMD_EXTENDED, 'statvfs@openssh.com', '/')\n    print('ANSWERED')\n\
         except IOError as e:\n    print('REFUSED', e)\n",
    )
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains("REFUSED disk figures are not available on this storage"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readdir_lists_dot_and_dotdot() {
    let (gw, key) = gateway("fs").await;
    let home = gw.config.data_dir.join("files/acme");
    std::fs::create_dir_all(home.join("sub")).unwrap();
    std::fs::write(home.join("sub/a.txt"), b"a").unwrap();
    std::fs::write(home.join("top.txt"), b"t").unwrap();
    let (ok, out) = sftp_batch(&gw, &key, "ls -1a sub\nls -1a /\nls -la sub\n").await;
    assert!(ok, "{out}");
    let names: Vec<&str> = out.lines().map(str::trim).collect();
    for want in ["sub/.", "sub/..", "sub/a.txt", "/.", "/..", "/top.txt"] {
        assert!(names.contains(&want), "{want} missing in {out}");
    }
    // The long listing of `.` is a directory line.
    assert!(
        out.lines().any(|l| l.starts_with('d') && l.ends_with(" .")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_texts_are_openssh_words() {
    let (gw, _) = gateway("fs").await;
    std::fs::create_dir_all(gw.config.data_dir.join("files/acme/full")).unwrap();
    std::fs::write(gw.config.data_dir.join("files/acme/full/x"), b"x").unwrap();
    let (ok, out) = paramiko(
        gw.sftp_addr().port(),
        "def text(f):\n    try:\n        f()\n        return 'no error'\n    except IOError as e:\n        return str(e)\n\
         print('MKDIR', text(lambda: sftp.mkdir('full')))\n\
         print('RMDIR', text(lambda: sftp.rmdir('full')))\n\
         print('MISSING', text(lambda: sftp.open('nope.txt')))\n\
         print('EXT', text(lambda: sftp._request(paramiko.sftp.CMD_EXTENDED, 'nosuch@example.com')))\n",
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("MKDIR Failure"), "{out}");
    assert!(out.contains("RMDIR Failure"), "{out}");
    assert!(out.contains("MISSING [Errno 2] No such file"), "{out}");
    assert!(out.contains("EXT Operation unsupported"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_and_hardlinks_stay_in_the_home() {
    let (gw, key) = gateway("fs").await;
    let home = gw.config.data_dir.join("files/acme");
    std::fs::create_dir_all(home.join("sub")).unwrap();
    std::fs::write(home.join("sub/a.txt"), b"a").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", home.join("out")).unwrap();
    let (ok, out) = paramiko(
        gw.sftp_addr().port(),
        "def text(f):\n    try:\n        return repr(f())\n    except IOError as e:\n        return 'error ' + str(e)\n\
         sftp.symlink('sub/a.txt', 'l1')\n\
         sftp.symlink('/sub/a.txt', 'sub/l2')\n\
         sftp.symlink('../../../../etc/passwd', 'esc')\n\
         print('L1', sftp.open('l1').read(), sftp.readlink('l1'))\n\
         print('L2', sftp.open('sub/l2').read(), sftp.readlink('sub/l2'))\n\
         print('ESC', text(lambda: sftp.open('esc').read()))\n\
         print('OUT', text(lambda: sftp.readlink('out')))\n\
         print('OUTREAD', text(lambda: sftp.open('out').read()))\n",
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("L1 b'a' sub/a.txt"), "{out}");
    assert!(out.contains("L2 b'a' a.txt"), "{out}");
    assert!(out.contains("ESC error [Errno 2] No such file"), "{out}");
    assert!(
        out.contains("OUT error [Errno 13] Permission denied"),
        "{out}"
    );
    assert!(
        !out.contains("root:"),
        "nothing outside the home is read: {out}"
    );
    // `..` above the home is clamped: the link leads to <home>/etc/passwd.
    assert_eq!(
        std::fs::read_link(home.join("esc")).unwrap(),
        Path::new("etc/passwd")
    );

    // hardlink@openssh.com through OpenSSH `sftp`'s `ln`.
    let (ok, out) = sftp_batch(&gw, &key, "ln sub/a.txt hard.txt\n").await;
    assert!(ok, "{out}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(home.join("hard.txt")).unwrap().ino(),
        std::fs::metadata(home.join("sub/a.txt")).unwrap().ino()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_can_be_refused() {
    let gw = Gateway::start("fs", "symlinks = \"refuse\"").await;
    gw.add_user("acme", "/acme", "all", Some(PASSWORD), None);
    let home = gw.config.data_dir.join("files/acme");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("a.txt"), b"a").unwrap();
    std::os::unix::fs::symlink("a.txt", home.join("l")).unwrap();
    let (ok, out) = paramiko(
        gw.sftp_addr().port(),
        "import stat\n\
         try:\n    sftp.symlink('a', 'b')\n    print('MADE')\nexcept IOError as e:\n    print('REFUSED', e)\n\
         print('LSTAT', stat.S_ISLNK(sftp.lstat('l').st_mode))\n\
         print('DIR', [stat.S_ISLNK(a.st_mode) for a in sftp.listdir_attr('.') if a.filename == 'l'])\n",
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("REFUSED Operation unsupported"), "{out}");
    // Links that cannot be read are not shown as links: LSTAT answers as STAT.
    assert!(out.contains("LSTAT False"), "{out}");
    assert!(out.contains("DIR [False]"), "{out}");
}

/// LSTAT and READDIR describe a symlink as one (S_IFLNK, as OpenSSH's
/// sftp-server), STAT follows it; a text is shown in the user's view (an
/// absolute one inside the home as the user's absolute path) and never one
/// leading outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_are_listed_as_links_in_the_users_view() {
    let (gw, _) = gateway("fs").await;
    let home = gw.config.data_dir.join("files/acme");
    std::fs::create_dir_all(home.join("sub")).unwrap();
    std::fs::write(home.join("a.txt"), b"abc").unwrap();
    let real = std::fs::canonicalize(&home).unwrap();
    std::os::unix::fs::symlink("a.txt", home.join("rel")).unwrap();
    std::os::unix::fs::symlink(real.join("sub"), home.join("abs")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", home.join("out")).unwrap();
    let (ok, out) = paramiko(
        gw.sftp_addr().port(),
        "import stat\n\
         def text(f):\n    try:\n        return repr(f())\n    except IOError as e:\n        return 'error ' + str(e)\n\
         def kind(a):\n    return 'link' if stat.S_ISLNK(a.st_mode) else 'dir' if stat.S_ISDIR(a.st_mode) else 'reg'\n\
         print('LREL', kind(sftp.lstat('rel')), sftp.lstat('rel').st_size)\n\
         print('SREL', kind(sftp.stat('rel')), sftp.stat('rel').st_size)\n\
         print('LABS', kind(sftp.lstat('abs')), sftp.readlink('abs'))\n\
         print('SABS', kind(sftp.stat('abs')))\n\
         print('LFILE', kind(sftp.lstat('a.txt')))\n\
         print('LOUT', text(lambda: sftp.lstat('out')))\n\
         print('DIR', sorted((a.filename, kind(a)) for a in sftp.listdir_attr('.')))\n\
         print('LONG', [a.longname for a in sftp.listdir_attr('.') if a.filename == 'rel'])\n",
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("LREL link 5"), "{out}");
    assert!(out.contains("SREL reg 3"), "{out}");
    assert!(out.contains("LABS link /sub"), "{out}");
    assert!(out.contains("SABS dir"), "{out}");
    assert!(out.contains("LFILE reg"), "{out}");
    assert!(
        out.contains("LOUT error [Errno 13] Permission denied"),
        "{out}"
    );
    assert!(
        out.contains("DIR [('a.txt', 'reg'), ('abs', 'link'), ('rel', 'link'), ('sub', 'dir')]"),
        "the link leading out is left out: {out}"
    );
    assert!(out.contains("LONG ['lrwxrwxrwx"), "{out}");
    let disk = real.display().to_string();
    assert!(
        !out.contains(&disk),
        "no disk path reaches the client: {out}"
    );
}
