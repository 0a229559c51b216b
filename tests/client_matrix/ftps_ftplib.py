"""The client matrix's Python ftplib case (tests/client_matrix.rs), over
explicit FTPS, each data connection resuming the control connection's TLS
session: mkdir, upload of the big file and the tree, list (NLST), download,
rename, delete, and resume both ways with REST (STOR and RETR).
Arguments: port user password payload res out."""
import ftplib, os, ssl, sys

port, user, password, payload, res, out = sys.argv[1:7]

class ResumingFTP_TLS(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
f = ResumingFTP_TLS(context=ctx, timeout=60)
f.connect("127.0.0.1", int(port))
f.login(user, password)
f.prot_p()
f.mkd("m")
with open(os.path.join(payload, "big.bin"), "rb") as src:
    f.storbinary("STOR m/big.bin", src)
tree = os.path.join(payload, "tree")
f.mkd("m/tree")
for d in sorted(os.listdir(tree)):
    f.mkd(f"m/tree/{d}")
    for n in sorted(os.listdir(os.path.join(tree, d))):
        with open(os.path.join(tree, d, n), "rb") as src:
            f.storbinary(f"STOR m/tree/{d}/{n}", src)
for name in f.nlst("m/tree/d00"):
    print("NAME", name)
def fetch(remote, local, rest=None):
    with open(local, "ab" if rest else "wb") as dst:
        f.retrbinary(f"RETR {remote}", dst.write, rest=rest)
fetch("m/big.bin", os.path.join(out, "big.bin"))
for d in sorted(os.listdir(tree)):
    os.makedirs(os.path.join(out, "tree", d), exist_ok=True)
    for n in f.nlst(f"m/tree/{d}"):
        n = n.rsplit("/", 1)[-1]
        fetch(f"m/tree/{d}/{n}", os.path.join(out, "tree", d, n))
f.rename("m/big.bin", "m/renamed.bin")
f.delete("m/tree/d00/f00.bin")
# Resume: the first part arrived before a cut; REST + STOR sends the rest.
with open(os.path.join(res, "part.bin"), "rb") as src:
    f.storbinary("STOR m/resume.bin", src)
have = f.size("m/resume.bin")
with open(os.path.join(res, "resume.bin"), "rb") as src:
    src.seek(have)
    f.storbinary("STOR m/resume.bin", src, rest=have)
local = os.path.join(out, "resume.bin")
fetch("m/resume.bin", local, rest=os.path.getsize(local))
f.quit()
print("DONE")
