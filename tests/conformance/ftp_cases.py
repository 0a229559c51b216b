"""FTP conformance cases, run by Python's ftplib against one server and printed
as JSON ({case: outcome}). tests/conformance.rs runs them against vsftpd
(explicit FTPS, anonymous with writes allowed, the reference) and against wharf (explicit
FTPS, on fs and on S3) and writes the FTP table of docs/conformance.md.

  ftp_cases.py --port PORT [--tls]                  (anonymous)
  ftp_cases.py --port PORT --tls --user U --password P

An outcome is what a client sees: the reply code (and, where the case reads
something back, the value), never the reply's text, which servers word freely.
Every case works in its own folder, named after the case, relative to the
login directory (vsftpd without chroot shows its disk path in PWD).
"""
import argparse
import ftplib
import io
import json
import re
import sys


class ResumingFTP_TLS(ftplib.FTP_TLS):
    """FTPS whose data connections resume the control connection's session."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


def code(e):
    """The reply code of an ftplib error or reply."""
    m = re.match(r"\d{3}", str(e.args[0]) if isinstance(e, Exception) else str(e))
    return m.group(0) if m else "?"


def outcome(fn):
    try:
        v = fn()
        return "ok" if v is None else str(v)
    except ftplib.all_errors as e:
        return code(e)
    except Exception as e:
        return "exception: " + type(e).__name__


def cases(f):
    c = {}
    home = f.pwd()

    def case(name):
        def wrap(fn):
            f.cwd(home)
            f.mkd(name)
            f.cwd(name)
            c[name] = outcome(fn)
            return fn

        return wrap

    def put(name, data):
        f.storbinary("STOR " + name, io.BytesIO(data))

    def get(name):
        buf = io.BytesIO()
        f.retrbinary("RETR " + name, buf.write)
        return buf.getvalue().decode()

    def cmd(line):
        return code(f.sendcmd(line))

    def names(verb):
        lines = []
        f.retrlines(verb, lines.append)
        return ",".join(l.split()[-1] for l in lines)

    @case("mkd_existing")
    def _():
        f.mkd("d")
        return cmd("MKD d")

    @case("mkd_missing_parent")
    def _():
        return cmd("MKD a/b")

    @case("rmd_not_empty")
    def _():
        f.mkd("d")
        put("d/f", b"1")
        return cmd("RMD d")

    @case("rmd_file")
    def _():
        put("f", b"1")
        return cmd("RMD f")

    @case("dele_missing")
    def _():
        return cmd("DELE nope")

    @case("dele_directory")
    def _():
        f.mkd("d")
        return cmd("DELE d")

    @case("rnfr_missing")
    def _():
        return cmd("RNFR nope")

    @case("rename_onto_existing")
    def _():
        put("a", b"a")
        put("b", b"b")
        f.rename("a", "b")
        return get("b")

    @case("retr_missing")
    def _():
        return get("nope")

    @case("size_file")
    def _():
        put("f", b"12345")
        return f.sendcmd("SIZE f")

    @case("size_directory")
    def _():
        f.mkd("d")
        return cmd("SIZE d")

    @case("size_missing")
    def _():
        return cmd("SIZE nope")

    @case("mdtm")
    def _():
        put("f", b"1")
        r = f.sendcmd("MDTM f")
        return "213 timestamp" if re.fullmatch(r"213 \d{14}(\.\d+)?", r) else r

    @case("mdtm_set")
    def _():
        put("f", b"1")
        cmd("MDTM 20200102030405 f")
        return f.sendcmd("MDTM f")

    @case("mdtm_directory")
    def _():
        f.mkd("d")
        return cmd("MDTM d")

    @case("mfmt")
    def _():
        put("f", b"1")
        r = cmd("MFMT 20200102030405 f")
        return r + " " + f.sendcmd("MDTM f")

    @case("site_chmod")
    def _():
        put("f", b"1")
        return cmd("SITE CHMOD 600 f")

    @case("nlst_wildcard")
    def _():
        for n in ["b.txt", "a.txt", "c.log"]:
            put(n, b"1")
        return ",".join(f.nlst("*.txt"))

    @case("nlst_no_match")
    def _():
        return ",".join(f.nlst("*.none"))

    @case("list_sorted")
    def _():
        for n in ["b", "c", "a"]:
            put(n, b"1")
        return names("LIST")

    @case("list_dotfiles")
    def _():
        for n in [".h", "v"]:
            put(n, b"1")
        return names("LIST") + " / " + names("LIST -a")

    @case("list_file")
    def _():
        put("f", b"1")
        return names("LIST f")

    @case("list_missing")
    def _():
        return names("LIST nope")

    @case("stou")
    def _():
        put("f", b"old")
        r = f.storbinary("STOU f", io.BytesIO(b"new"))
        return code(r) + " " + ",".join(sorted(f.nlst())) + " " + get("f")

    @case("rest_stor")
    def _():
        put("f", b"abc")
        f.storbinary("STOR f", io.BytesIO(b"def"), rest=3)
        return get("f")

    @case("appe")
    def _():
        put("f", b"abc")
        f.storbinary("APPE f", io.BytesIO(b"def"))
        return get("f")

    @case("appe_missing")
    def _():
        f.storbinary("APPE f", io.BytesIO(b"def"))
        return get("f")

    @case("opts_mlst")
    def _():
        return cmd("OPTS MLST type;size;")

    @case("cwd_file")
    def _():
        put("f", b"1")
        return cmd("CWD f")

    @case("cwd_missing")
    def _():
        return cmd("CWD nope")

    @case("cdup")
    def _():
        return cmd("CDUP")

    @case("unknown_command")
    def _():
        return cmd("XYZZY")

    @case("type_and_mode")
    def _():
        return cmd("TYPE I") + " " + cmd("MODE S") + " " + cmd("STRU F")

    @case("noop_syst")
    def _():
        return cmd("NOOP") + " " + cmd("SYST")

    # Last: after EPSV ALL only EPSV opens data connections.
    @case("epsv_all_then_pasv")
    def _():
        first = cmd("EPSV ALL")
        try:
            second = cmd("PASV")
        except ftplib.all_errors as e:
            second = code(e)
        return first + " " + second

    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--user", default="anonymous")
    ap.add_argument("--password", default="")
    a = ap.parse_args()
    if a.tls:
        import ssl

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        f = ResumingFTP_TLS(context=ctx, timeout=30)
    else:
        f = ftplib.FTP(timeout=30)
    f.connect("127.0.0.1", a.port)
    f.login(a.user, a.password)
    if a.tls:
        f.prot_p()
    f.set_pasv(True)
    json.dump(cases(f), sys.stdout, indent=1, sort_keys=True)
    try:
        f.quit()
    except ftplib.all_errors:
        pass


if __name__ == "__main__":
    main()
