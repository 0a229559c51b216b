"""SFTP conformance cases, run by paramiko against one server and printed as JSON
({case: outcome}). tests/conformance.rs runs them against OpenSSH's sftp-server
(over a pipe, the reference) and against wharf (over SSH, on fs and on S3) and
writes docs/conformance.md.

  sftp_cases.py --pipe /usr/lib/openssh/sftp-server --dir DIR
  sftp_cases.py --ssh 127.0.0.1:PORT --user U --password P

An outcome is what a client library sees: a value, or the error paramiko raises
(ENOENT / EACCES with the server's text, or the text of any other status).
Every case works in its own folder, named after the case, relative to the
session's starting directory.
"""
import argparse
import errno
import json
import os
import stat
import subprocess
import sys

import paramiko


class Pipe:
    """A socket-like object over a child's stdin/stdout, for SFTPClient."""

    def __init__(self, argv, cwd):
        self.p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()
        return len(data)

    def recv(self, n):
        return self.p.stdout.read1(n)

    def get_name(self):
        return "sftp-server"

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def outcome(fn):
    try:
        v = fn()
        return "ok" if v is None else str(v)
    except EOFError as e:
        return "EOF"
    except IOError as e:
        if e.errno == errno.ENOENT:
            return "ENOENT: " + str(e.strerror)
        if e.errno == errno.EACCES:
            return "EACCES: " + str(e.strerror)
        return "error: " + (str(e.args[0]) if e.args else "")
    except Exception as e:  # a protocol-level failure is an outcome too
        return "exception: " + type(e).__name__


def write(sftp, path, data, mode="wb"):
    with sftp.open(path, mode) as f:
        f.write(data)


def read(sftp, path):
    with sftp.open(path, "rb") as f:
        return f.read()


def cases(sftp):
    c = {}

    def case(name):
        def wrap(fn):
            sftp.mkdir(name)
            c[name] = outcome(lambda: fn(name))
            return fn
        return wrap

    @case("open_missing")
    def _(d):
        sftp.open(d + "/nope", "rb")

    @case("stat_missing")
    def _(d):
        sftp.stat(d + "/nope")

    @case("remove_missing")
    def _(d):
        sftp.remove(d + "/nope")

    @case("mkdir_existing")
    def _(d):
        sftp.mkdir(d + "/x")
        sftp.mkdir(d + "/x")

    @case("mkdir_missing_parent")
    def _(d):
        sftp.mkdir(d + "/a/b")

    @case("rmdir_not_empty")
    def _(d):
        sftp.mkdir(d + "/x")
        write(sftp, d + "/x/f", b"1")
        sftp.rmdir(d + "/x")

    @case("rmdir_file")
    def _(d):
        write(sftp, d + "/f", b"1")
        sftp.rmdir(d + "/f")

    @case("remove_directory")
    def _(d):
        sftp.mkdir(d + "/x")
        sftp.remove(d + "/x")

    @case("rename_onto_existing")
    def _(d):
        write(sftp, d + "/a", b"a")
        write(sftp, d + "/b", b"b")
        sftp.rename(d + "/a", d + "/b")

    @case("posix_rename_onto_existing")
    def _(d):
        write(sftp, d + "/a", b"a")
        write(sftp, d + "/b", b"b")
        sftp.posix_rename(d + "/a", d + "/b")
        return read(sftp, d + "/b").decode()

    @case("rename_missing")
    def _(d):
        sftp.rename(d + "/nope", d + "/b")

    @case("open_excl_existing")
    def _(d):
        write(sftp, d + "/f", b"1")
        sftp.open(d + "/f", "wx")

    @case("write_at_offset_r+")
    def _(d):
        write(sftp, d + "/f", b"abcdef")
        with sftp.open(d + "/f", "r+") as f:
            f.seek(1)
            f.write(b"X")
        return read(sftp, d + "/f").decode()

    @case("append")
    def _(d):
        write(sftp, d + "/f", b"abc")
        write(sftp, d + "/f", b"def", "ab")
        return read(sftp, d + "/f").decode()

    @case("read_write_handle")
    def _(d):
        with sftp.open(d + "/f", "w+") as f:
            f.write(b"hello")
            f.seek(0)
            return f.read().decode()

    @case("stat_while_writing")
    def _(d):
        with sftp.open(d + "/f", "w") as f:
            f.write(b"12345")
            f.flush()
            return sftp.stat(d + "/f").st_size

    @case("read_past_eof")
    def _(d):
        write(sftp, d + "/f", b"abc")
        with sftp.open(d + "/f", "rb") as f:
            f.seek(10)
            return repr(f.read(5))

    @case("open_directory_for_read")
    def _(d):
        f = sftp.open(d, "rb")
        return repr(f.read(1))

    @case("listdir_on_file")
    def _(d):
        write(sftp, d + "/f", b"1")
        sftp.listdir(d + "/f")

    @case("readdir_names")
    def _(d):
        write(sftp, d + "/f", b"1")
        sftp.mkdir(d + "/s")
        names = sorted(a.filename for a in sftp.listdir_iter(d))
        return ",".join(names)

    @case("readdir_raw_names")
    def _(d):
        write(sftp, d + "/f", b"1")
        t, msg = sftp._request(paramiko.sftp.CMD_OPENDIR, d)
        handle = msg.get_binary()
        names = []
        try:
            while True:
                t, msg = sftp._request(paramiko.sftp.CMD_READDIR, handle)
                for _ in range(msg.get_int()):
                    names.append(msg.get_text())
                    msg.get_text()
                    paramiko.SFTPAttributes._from_msg(msg)
        except EOFError:
            pass
        sftp._request(paramiko.sftp.CMD_CLOSE, handle)
        return ",".join(sorted(names))

    @case("stat_kinds")
    def _(d):
        write(sftp, d + "/f", b"12")
        f, s = sftp.stat(d + "/f"), sftp.stat(d)
        return "%s:%d %s" % (
            "reg" if stat.S_ISREG(f.st_mode) else "?",
            f.st_size,
            "dir" if stat.S_ISDIR(s.st_mode) else "?",
        )

    @case("chmod")
    def _(d):
        write(sftp, d + "/f", b"1")
        sftp.chmod(d + "/f", 0o640)
        return oct(stat.S_IMODE(sftp.stat(d + "/f").st_mode))

    @case("utime")
    def _(d):
        write(sftp, d + "/f", b"1")
        sftp.utime(d + "/f", (1_600_000_000, 1_600_000_000))
        return sftp.stat(d + "/f").st_mtime

    @case("truncate")
    def _(d):
        write(sftp, d + "/f", b"abcdef")
        sftp.truncate(d + "/f", 2)
        return read(sftp, d + "/f").decode()

    @case("realpath_dot")
    def _(d):
        return "absolute" if sftp.normalize(d + "/.").startswith("/") else "relative"

    @case("realpath_dotdot")
    def _(d):
        base = sftp.normalize(d)
        return "parent" if sftp.normalize(d + "/..") == os.path.dirname(base) else "other"

    @case("symlink_readlink")
    def _(d):
        write(sftp, d + "/f", b"1")
        sftp.symlink("f", d + "/l")
        return sftp.readlink(d + "/l")

    @case("lstat_symlink")
    def _(d):
        write(sftp, d + "/f", b"1")
        sftp.symlink("f", d + "/l")
        return "link" if stat.S_ISLNK(sftp.lstat(d + "/l").st_mode) else "not a link"

    @case("stat_symlink")
    def _(d):
        write(sftp, d + "/f", b"1")
        sftp.symlink("f", d + "/l")
        a = sftp.stat(d + "/l")
        return ("reg:%d" % a.st_size) if stat.S_ISREG(a.st_mode) else "other"

    @case("readdir_symlink")
    def _(d):
        write(sftp, d + "/f", b"1")
        sftp.mkdir(d + "/s")
        sftp.symlink("f", d + "/l")
        sftp.symlink("s", d + "/m")
        kinds = {a.filename: ("link" if stat.S_ISLNK(a.st_mode) else "dir" if stat.S_ISDIR(a.st_mode) else "reg")
                 for a in sftp.listdir_attr(d)}
        return ",".join("%s=%s" % kv for kv in sorted(kinds.items()))

    @case("statvfs")
    def _(d):
        v = sftp._request(paramiko.sftp.CMD_EXTENDED, "statvfs@openssh.com", d)
        return "answered"

    @case("fstatvfs")
    def _(d):
        write(sftp, d + "/f", b"1")
        figures = []
        for mode in ("rb", "wb"):
            with sftp.open(d + "/" + ("f" if mode == "rb" else "g"), mode) as f:
                t, msg = sftp._request(paramiko.sftp.CMD_EXTENDED, "fstatvfs@openssh.com", f.handle)
                bsize, frsize, blocks = msg.get_int64(), msg.get_int64(), msg.get_int64()
                figures.append(bsize > 0 and blocks > 0)
        return "answered" if all(figures) else "zero figures"

    @case("hardlink")
    def _(d):
        write(sftp, d + "/f", b"1")
        sftp._request(paramiko.sftp.CMD_EXTENDED, "hardlink@openssh.com", d + "/f", d + "/h")
        return read(sftp, d + "/h").decode()

    @case("fsync")
    def _(d):
        with sftp.open(d + "/f", "w") as f:
            f.write(b"1")
            f.flush()
            sftp._request(paramiko.sftp.CMD_EXTENDED, "fsync@openssh.com", f.handle)
        return read(sftp, d + "/f").decode()

    @case("unknown_extension")
    def _(d):
        sftp._request(paramiko.sftp.CMD_EXTENDED, "nothing@example.com")

    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pipe")
    ap.add_argument("--dir")
    ap.add_argument("--ssh")
    ap.add_argument("--user")
    ap.add_argument("--password")
    a = ap.parse_args()
    if a.pipe:
        sock = Pipe([a.pipe, "-e", "-l", "QUIET"], a.dir)
        sftp = paramiko.SFTPClient(sock)
    else:
        host, port = a.ssh.rsplit(":", 1)
        t = paramiko.Transport((host, int(port)))
        t.connect(username=a.user, password=a.password)
        sftp = paramiko.SFTPClient.from_transport(t)
    json.dump(cases(sftp), sys.stdout, indent=1, sort_keys=True)
    sftp.close()


if __name__ == "__main__":
    main()
