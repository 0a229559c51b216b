#!/usr/bin/env python3
"""Benchmark driver: wharf against OpenSSH internal-sftp, vsftpd and nginx on this
machine, in one run. Started by bench/run.sh (which installs the peers and builds
wharf in release mode); writes docs/benchmarks.md.

Servers are pinned to core 0 and clients to core 1 (taskset). Within a
repetition the peers alternate, so drift in the machine's state hits both alike.
Every case runs --reps times; the table shows medians and wharf / peer ratios of
throughput (higher is better for wharf)."""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHARF = os.path.join(ROOT, "target", "release", "wharf")
USER = "wharfbench"
PASSWORD = "bench-Pa55word"
PORTS = dict(wharf_sftp=3022, wharf_ftps=3021, wharf_http=3080, sshd=4022, vsftpd=4021, nginx=4080)
SERVER_CPU, CLIENT_CPU = "0", "1"
# Case groups, selectable with --cases (all by default).
CASES = {
    "sftp": "SFTP download/upload of one large file, aes128-gcm and chacha20",
    "small": "SFTP 2,000 x 4 KiB get -r / put -r",
    "ftps": "FTPS download/upload with curl and lftp",
    "link": "link download with curl vs nginx",
    "sessions": "32 SFTP sessions x 64 MiB",
    "web": "landing page under wrk",
    "s3": "SFTP download from the S3 connector (s3s-fs) vs OpenSSH from disk",
    "rss": "peak RSS of a fresh wharf while uploading --rss-size over SFTP, FTPS and HTTP (tus)",
}
S3_PORT, S3_BUCKET, S3_KEY, S3_SECRET = 4090, "bench", "benchkey", "bench-secret-key"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)", s.upper())
    if not m:
        sys.exit(f"bad size {s!r}: use e.g. 256M or 1G")
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def write_random(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 8 << 20)
            f.write(os.urandom(n))
            left -= n


def wait_port(port, what, timeout=30):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not listen on {port}")


class Bench:
    def __init__(self, args):
        self.args = args
        self.size = parse_size(args.size)
        self.work = "/tmp/wharf-bench"
        self.cases = set(args.cases.split(","))
        unknown = self.cases - set(CASES)
        if unknown:
            sys.exit(f"unknown case(s) {', '.join(sorted(unknown))}: choose from {', '.join(CASES)}")
        self.procs = []
        self.results = {}  # case -> peer -> [seconds]
        self.rss = {}  # case -> peak RSS of wharf in bytes
        self.cpu = {}  # case -> [CPU seconds wharf used]
        self.fresh = []  # (protocol, seconds, peak RSS) of a fresh wharf per large upload
        self.small_runs = 0  # repetitions of the small-file case so far: a new folder each

    # ---------------------------------------------------------------- setup
    def setup(self):
        if os.path.exists(self.work):
            shutil.rmtree(self.work)
        os.makedirs(self.work)
        os.chmod(self.work, 0o755)
        w = self.work
        self.files = f"{w}/files"
        self.home = f"{self.files}/bench"
        self.local = f"{w}/local"
        for d in (self.home, f"{self.home}/small", f"{self.home}/s32", self.local, f"{self.local}/small"):
            os.makedirs(d, exist_ok=True)
        print(f"writing test data ({self.args.size} file, 2,000 small files, 32 x 64 MiB)")
        write_random(f"{self.home}/big.bin", self.size)
        shutil.copy(f"{self.home}/big.bin", f"{self.local}/big.bin")
        for i in range(2000):
            data = os.urandom(4096)
            for d in (f"{self.home}/small", f"{self.local}/small"):
                with open(f"{d}/f{i:04}.bin", "wb") as f:
                    f.write(data)
        if "sessions" in self.cases:
            for i in range(32):
                write_random(f"{self.home}/s32/f{i:02}.bin", 64 << 20)
        if "rss" in self.cases:
            print(f"writing a {self.args.rss_size} file for the RSS cases")
            write_random(f"{self.local}/huge.bin", parse_size(self.args.rss_size))
        if "s3" in self.cases:
            os.makedirs(f"{w}/s3root/{S3_BUCKET}")
        if subprocess.run(["id", USER], capture_output=True).returncode != 0:
            sh(["useradd", "-M", "-d", self.home, "-s", "/bin/sh", USER])
        sh(["usermod", "-d", self.home, USER])
        sh(["chpasswd"], input=f"{USER}:{PASSWORD}".encode())
        sh(["chown", "-R", f"{USER}:", self.home])
        sh(["chmod", "-R", "a+rX", self.files])
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{w}/client_key"])
        shutil.copy(f"{w}/client_key.pub", f"{w}/authorized_keys")
        os.chmod(f"{w}/authorized_keys", 0o644)
        # Gigabytes were just written (and the last run's removed): let writeback
        # finish now rather than during the first repetitions, where it would slow
        # whichever peer it met.
        os.sync()
        time.sleep(10)
        if "s3" in self.cases:
            self.start_s3()
        self.start_wharf()
        self.start_sshd()
        self.start_vsftpd()
        self.start_nginx()
        if "s3" in self.cases:
            # Through the S3 API (wharf's multipart upload), not copied into
            # s3s-fs's folder: objects put that way carry their ETag, while a file
            # copied in would be hashed whole by s3s-fs on every ranged GET.
            sh(self.sftp("wharf", f"put {self.local}/big.bin s3/big.bin\n"), stdout=subprocess.DEVNULL)

    def spawn(self, cmd, **kw):
        p = subprocess.Popen(["taskset", "-c", SERVER_CPU] + cmd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def start_wharf(self):
        w = self.work
        with open(f"{w}/wharf.toml", "w") as f:
            f.write(f"""data_dir = "{w}/wharf-data"
[log]
level = "warn"
[[connector]]
name = "files"
scheme = "fs"
[connector.options]
root = "{self.files}"
[[mount]]
path = "/"
connector = "files"
[sftp]
listen = "127.0.0.1:{PORTS['wharf_sftp']}"
max_sessions = 256
# Every benchmark client connects from 127.0.0.1, up to 32 sessions at once.
max_per_address = 256
max_unauthenticated_per_address = 256
[defender]
max_failures = 0
[ftps]
explicit_listen = "127.0.0.1:{PORTS['wharf_ftps']}"
implicit_listen = ""
passive_ports = "3100-3199"
[http]
listen = "127.0.0.1:{PORTS['wharf_http']}"
[links]
base_url = "http://127.0.0.1:{PORTS['wharf_http']}"
""")
            if "s3" in self.cases:
                f.write(f"""[[connector]]
name = "s3"
scheme = "s3"
[connector.options]
bucket = "{S3_BUCKET}"
endpoint = "http://127.0.0.1:{S3_PORT}"
region = "us-east-1"
access_key_id = "{S3_KEY}"
secret_access_key = "{S3_SECRET}"
disable_config_load = "true"
[[mount]]
path = "/bench/s3"
connector = "s3"
""")
        cfg = self.cfg = ["--config", f"{w}/wharf.toml"]
        sh([WHARF] + cfg + ["user", "add", "admin", "--home", "/", "--generate-password"],
           stdout=subprocess.DEVNULL)
        sh([WHARF] + cfg + ["user", "add", USER, "--home", "/bench", "--key", f"{w}/client_key.pub",
                            "--password-stdin"], input=PASSWORD.encode(), stdout=subprocess.DEVNULL)
        self.start_wharf_process()
        out = subprocess.run([WHARF] + cfg + ["link", "share", "/big.bin", "--as", USER, "--expires", "never"],
                             check=True, capture_output=True, text=True).stdout
        landing = out.splitlines()[1].strip()
        page = urllib.request.urlopen(landing).read().decode()
        self.landing = landing
        self.link_file = landing + re.search(r"/f/\d+", page).group(0)
        # The same page as a static file, for nginx under wrk.
        with open(f"{self.files}/landing.html", "w") as f:
            f.write(page)
        os.chmod(f"{self.files}/landing.html", 0o644)

    def start_wharf_process(self):
        # --no-fsync: an experiment only, to measure what durability costs.
        nosync = ["eatmydata"] if self.args.no_fsync else []
        self.wharf = self.spawn(nosync + [WHARF] + self.cfg + ["serve"])
        wait_port(PORTS["wharf_http"], "wharf")
        wait_port(PORTS["wharf_sftp"], "wharf")
        wait_port(PORTS["wharf_ftps"], "wharf")

    def restart_wharf(self):
        """A fresh process, so VmHWM is the peak of the next case alone."""
        self.wharf.send_signal(signal.SIGTERM)
        self.wharf.wait(30)
        self.procs.remove(self.wharf)
        self.start_wharf_process()

    def start_s3(self):
        s3s = shutil.which("s3s-fs") or os.path.expanduser("~/.cargo/bin/s3s-fs")
        if not os.path.exists(s3s):
            sys.exit("s3s-fs not found: bench/run.sh installs it (cargo install s3s-fs)")
        self.spawn([s3s, "--host", "127.0.0.1", "--port", str(S3_PORT), "--access-key", S3_KEY,
                    "--secret-key", S3_SECRET, f"{self.work}/s3root"])
        wait_port(S3_PORT, "s3s-fs")

    def start_sshd(self):
        w = self.work
        os.makedirs("/run/sshd", exist_ok=True)
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{w}/ssh_host_ed25519_key"])
        with open(f"{w}/sshd_config", "w") as f:
            f.write(f"""Port {PORTS['sshd']}
ListenAddress 127.0.0.1
HostKey {w}/ssh_host_ed25519_key
PidFile {w}/sshd.pid
AuthorizedKeysFile {w}/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowUsers {USER}
Subsystem sftp internal-sftp
ForceCommand internal-sftp
""")
        self.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", f"{w}/sshd_config"])
        wait_port(PORTS["sshd"], "sshd")

    def start_vsftpd(self):
        w = self.work
        os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
        sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-keyout", f"{w}/vsftpd.key", "-out", f"{w}/vsftpd.pem"], stderr=subprocess.DEVNULL)
        with open(f"{w}/vsftpd.conf", "w") as f:
            f.write(f"""listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={PORTS['vsftpd']}
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
ssl_enable=YES
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse=NO
rsa_cert_file={w}/vsftpd.pem
rsa_private_key_file={w}/vsftpd.key
pasv_enable=YES
pasv_min_port=4100
pasv_max_port=4199
pasv_address=127.0.0.1
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
pam_service_name=vsftpd
xferlog_enable=NO
""")
        self.spawn(["/usr/sbin/vsftpd", f"{w}/vsftpd.conf"])
        wait_port(PORTS["vsftpd"], "vsftpd")

    def start_nginx(self):
        w = self.work
        with open(f"{w}/nginx.conf", "w") as f:
            f.write(f"""daemon off;
worker_processes 1;
pid {w}/nginx.pid;
error_log {w}/nginx.err;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    types {{ text/html html; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{PORTS['nginx']};
        root {self.files};
    }}
}}
""")
        self.spawn(["/usr/sbin/nginx", "-c", f"{w}/nginx.conf", "-p", w])
        wait_port(PORTS["nginx"], "nginx")

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    # ---------------------------------------------------------------- measuring
    def reset_rss(self):
        with open(f"/proc/{self.wharf.pid}/clear_refs", "w") as f:
            f.write("5")

    def peak_rss(self):
        with open(f"/proc/{self.wharf.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self):
        """User + system CPU time of the wharf process so far."""
        with open(f"/proc/{self.wharf.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def timed(self, case, peer, cmd, cleanup=None, shell=False):
        if peer == "wharf":
            self.reset_rss()
            cpu = self.cpu_seconds()
        if isinstance(cmd, list):
            cmd = ["taskset", "-c", CLIENT_CPU] + cmd
        t = time.perf_counter()
        r = subprocess.run(cmd, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = time.perf_counter() - t
        if r.returncode != 0:
            sys.exit(f"{case} on {peer} failed: {r.stderr.decode()[-500:]}")
        self.results.setdefault(case, {}).setdefault(peer, []).append(dt)
        print(f"  {case} / {peer}: {dt:.2f} s", flush=True)
        if peer == "wharf":
            # The reset only lowers the peak to the current resident size, which
            # still holds memory freed by earlier cases: the smallest peak over the
            # repetitions is the closest (still upper) bound for this case.
            peak = self.peak_rss()
            self.rss[case] = min(self.rss.get(case, peak), peak)
            self.cpu.setdefault(case, []).append(self.cpu_seconds() - cpu)
        if cleanup:
            cleanup()

    def sftp(self, peer, batch, cipher="aes128-gcm@openssh.com"):
        port = PORTS["wharf_sftp"] if peer == "wharf" else PORTS["sshd"]
        path = f"{self.work}/batch-{peer}"
        with open(path, "w") as f:
            f.write(batch)
        return ["sftp", "-q", "-b", path, "-P", str(port), "-i", f"{self.work}/client_key", "-c", cipher,
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                f"{USER}@127.0.0.1"]

    def rm_remote(self, name):
        def go():
            p = f"{self.home}/{name}"
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif os.path.exists(p):
                os.remove(p)
        return go

    def run(self):
        reps = self.args.reps
        for rep in range(reps):
            print(f"repetition {rep + 1}/{reps}", flush=True)
            # Peers alternate who goes first from one repetition to the next.
            first = rep % 2 == 0
            if "sftp" in self.cases:
                self.sftp_big(["wharf", "openssh"] if first else ["openssh", "wharf"])
            if "small" in self.cases:
                self.sftp_small(["wharf", "openssh"] if first else ["openssh", "wharf"])
            if "s3" in self.cases:
                self.sftp_s3(["wharf", "openssh"] if first else ["openssh", "wharf"])
            if "ftps" in self.cases:
                self.ftps(["wharf", "vsftpd"] if first else ["vsftpd", "wharf"])
            if "link" in self.cases:
                self.link(["wharf", "nginx"] if first else ["nginx", "wharf"])
            if "sessions" in self.cases:
                self.sessions(["wharf", "openssh"] if first else ["openssh", "wharf"])
        if "web" in self.cases:
            self.wrk()
        if "rss" in self.cases:
            self.rss_uploads()

    def sftp_big(self, order):
        big = f"{self.local}/big.bin"
        for cipher, short in (("aes128-gcm@openssh.com", "aes128-gcm"), ("chacha20-poly1305@openssh.com", "chacha20")):
            for peer in order:
                self.timed(f"SFTP download {self.args.size} ({short})", peer,
                           self.sftp(peer, "get big.bin /dev/null\n", cipher))
                self.timed(f"SFTP upload {self.args.size} ({short})", peer,
                           self.sftp(peer, f"put {big} up.bin\n", cipher), self.rm_remote("up.bin"))
                if short == "aes128-gcm":
                    # -f: sshd fsyncs too, as wharf always does before publishing.
                    self.timed(f"SFTP upload {self.args.size} -f ({short})", peer,
                               self.sftp(peer, f"put -f {big} up.bin\n", cipher), self.rm_remote("up.bin"))

    def sftp_small(self, order):
        # Each transfer writes into a new folder and nothing is deleted (the next
        # run's setup clears the work directory): on ext4, creating files just
        # after thousands were deleted makes inode allocation scan the recently
        # freed ones (recently_deleted() in the kernel profile), which would
        # measure the previous repetition's cleanup, on the server's side for
        # uploads and on the client's for downloads.
        self.small_runs += 1
        n = self.small_runs
        for peer in order:
            self.timed("SFTP 2,000 x 4 KiB get -r", peer,
                       self.sftp(peer, f"get -r small {self.work}/dl-{peer}-{n}\n"))
            self.timed("SFTP 2,000 x 4 KiB put -r", peer,
                       self.sftp(peer, f"put -r {self.local}/small smallup-{peer}-{n}\n"))
            # -f: the client asks for fsync after each file, which sshd then does;
            # wharf syncs every upload before publishing it anyway.
            self.timed("SFTP 2,000 x 4 KiB put -r -f", peer,
                       self.sftp(peer, f"put -r -f {self.local}/small smallupf-{peer}-{n}\n"))

    def sftp_s3(self, order):
        """wharf through the S3 connector against sshd on its disk (what object
        storage costs), and against curl talking to the S3 server directly (what
        wharf adds on top of the store's own speed)."""
        big = f"{self.local}/big.bin"
        down, up = f"SFTP download {self.args.size} from S3", f"SFTP upload {self.args.size} to S3"
        for peer in order:
            if peer == "wharf":
                self.timed(down, "wharf", self.sftp("wharf", "get s3/big.bin /dev/null\n"))
                self.timed(up, "wharf", self.sftp("wharf", f"put {big} s3/up.bin\n"))
            else:
                self.timed(down, peer, self.sftp(peer, "get big.bin /dev/null\n"))
                self.timed(up, peer, self.sftp(peer, f"put {big} up.bin\n"), self.rm_remote("up.bin"))
                self.timed(down, "s3s-fs", ["curl", "-sS", "--fail", "-o", "/dev/null",
                                            self.presign("get_object", "big.bin")])
                self.timed(up, "s3s-fs", ["curl", "-sS", "--fail", "-T", big, self.presign("put_object", "up.bin")])

    def presign(self, method, key):
        import boto3
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{S3_PORT}", aws_access_key_id=S3_KEY,
                          aws_secret_access_key=S3_SECRET, region_name="us-east-1")
        return s3.generate_presigned_url(method, Params={"Bucket": S3_BUCKET, "Key": key}, ExpiresIn=3600)

    def ftps(self, order):
        big = f"{self.local}/big.bin"
        for peer in order:
            port = PORTS["wharf_ftps"] if peer == "wharf" else PORTS["vsftpd"]
            url = f"ftp://127.0.0.1:{port}"
            self.timed(f"FTPS download {self.args.size} (curl)", peer,
                       self.curl_ftps() + [f"{url}/big.bin", "-o", "/dev/null"])
            self.timed(f"FTPS upload {self.args.size} (curl)", peer, self.curl_ftps() + ["-T", big, f"{url}/up.bin"],
                       self.rm_remote("up.bin"))
            self.timed(f"FTPS download {self.args.size} (lftp)", peer, self.lftp(port, "get big.bin -o /dev/null"))
            self.timed(f"FTPS upload {self.args.size} (lftp)", peer, self.lftp(port, f"put {big} -o up.bin"),
                       self.rm_remote("up.bin"))

    def curl_ftps(self):
        return ["curl", "-sS", "--ssl-reqd", "-k", "-u", f"{USER}:{PASSWORD}"]

    def lftp(self, port, command):
        return ["lftp", "-u", f"{USER},{PASSWORD}", "-p", str(port), "-e",
                "set ssl:verify-certificate no; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; "
                f"set net:max-retries 1; set xfer:clobber on; {command}; bye", "127.0.0.1"]

    def link(self, order):
        for peer in order:
            url = self.link_file if peer == "wharf" else f"http://127.0.0.1:{PORTS['nginx']}/bench/big.bin"
            self.timed(f"Link download {self.args.size} (curl)", peer, ["curl", "-sS", "-o", "/dev/null", url])

    def sessions(self, order):
        for peer in order:
            cmds = " & ".join(
                " ".join(self.sftp_shell(peer, f"get s32/f{i:02}.bin /dev/null", i)) for i in range(32)
            )
            self.timed("32 SFTP sessions x 64 MiB", peer, f"taskset -c {CLIENT_CPU} sh -c '{cmds} & wait'",
                       shell=True)

    def rss_uploads(self):
        """One large upload per protocol, each into a freshly started wharf, whose
        VmHWM afterwards is that upload's peak alone."""
        huge = f"{self.local}/huge.bin"
        size = self.args.rss_size
        port = PORTS["wharf_ftps"]
        uploads = [
            ("SFTP (OpenSSH sftp put)", self.sftp("wharf", f"put {huge} huge-up.bin\n"), "huge-up.bin"),
            ("FTPS (curl -T, PROT P)", self.curl_ftps() + ["-T", huge, f"ftp://127.0.0.1:{port}/huge-up.bin"],
             "huge-up.bin"),
            ("HTTP upload request (tus, curl PATCH)", None, "inbox"),
        ]
        for protocol, cmd, left in uploads:
            print(f"{size} upload over {protocol}")
            self.restart_wharf()
            if cmd is None:
                cmd = self.tus_upload(huge)
            t = time.perf_counter()
            r = subprocess.run(["taskset", "-c", CLIENT_CPU] + cmd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
            dt = time.perf_counter() - t
            if r.returncode != 0:
                sys.exit(f"{size} upload over {protocol} failed: {r.stderr.decode()[-500:]}")
            stored = f"{self.home}/inbox/huge.bin" if left == "inbox" else f"{self.home}/{left}"
            if os.path.getsize(stored) != os.path.getsize(huge):
                sys.exit(f"{size} upload over {protocol}: stored {os.path.getsize(stored)} bytes")
            self.fresh.append((protocol, dt, self.peak_rss()))
            self.rm_remote(left)()

    def tus_upload(self, path):
        """Opens an upload request as a visitor (grant cookie), declares the upload
        and returns the curl command that sends the whole file in one PATCH."""
        out = subprocess.run([WHARF] + self.cfg + ["link", "request", "--folder", "/inbox", "--as", USER,
                                                   "--expires", "1d"],
                             check=True, capture_output=True, text=True).stdout
        page = out.splitlines()[1].strip()
        jar = f"{self.work}/jar"
        sh(["curl", "-sS", "-c", jar, "-o", "/dev/null", page])
        size = os.path.getsize(path)
        head = subprocess.run(["curl", "-sS", "-b", jar, "-X", "POST", "-D", "-", "-o", "/dev/null",
                               "-H", "Tus-Resumable: 1.0.0", "-H", f"Upload-Length: {size}",
                               "-H", "Upload-Metadata: filename aHVnZS5iaW4=", f"{page}/uploads"],
                              check=True, capture_output=True, text=True).stdout
        location = re.search(r"(?im)^location:\s*(\S+)", head).group(1)
        origin = page.split("/l/")[0]
        return ["curl", "-sS", "--fail", "-b", jar, "-X", "PATCH", "-T", path,
                "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0",
                "-H", "Content-Type: application/offset+octet-stream", f"{origin}{location}"]

    def sftp_shell(self, peer, line, i):
        path = f"{self.work}/batch-{peer}-{i}"
        with open(path, "w") as f:
            f.write(line + "\n")
        port = PORTS["wharf_sftp"] if peer == "wharf" else PORTS["sshd"]
        return ["sftp", "-q", "-b", path, "-P", str(port), "-i", f"{self.work}/client_key",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                f"{USER}@127.0.0.1", ">/dev/null"]

    def wrk(self):
        self.web = {}
        for peer, url in (("wharf", self.landing), ("nginx", f"http://127.0.0.1:{PORTS['nginx']}/landing.html")):
            out = subprocess.run(["taskset", "-c", CLIENT_CPU, "wrk", "-t1", "-c16", "-d10s", "--latency", url],
                                 check=True, capture_output=True, text=True).stdout
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
            scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
            self.web[peer] = (rps, float(p99.group(1)) * scale)

    # ---------------------------------------------------------------- report
    def report(self, load_before, load_after):
        peers_of = {"SFTP": "OpenSSH internal-sftp", "FTPS": "vsftpd", "Link": "nginx", "32 S": "OpenSSH internal-sftp"}
        lines = [
            "# Benchmarks",
            "",
            "Written by `bench/run.sh` (run by hand, as root); do not edit by hand.",
            "",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; file size {self.args.size}, "
            f"{self.args.reps} repetitions per case, medians shown.",
            f"- Machine: {os.cpu_count()} cores; servers pinned to core {SERVER_CPU}, clients to core {CLIENT_CPU}.",
            f"- /proc/loadavg before: `{load_before}`; after: `{load_after}`.",
            "- Ratio: wharf throughput / peer throughput (1.00 = as fast; higher is better for wharf).",
            "- wharf CPU: user + system time of the wharf process during the case (median).",
            "",
            "| Case | Peer | wharf (median) | peer (median) | ratio | wharf CPU | wharf peak RSS |",
            "|---|---|---|---|---|---|---|",
        ]
        for case, by in self.results.items():
            mb = self.size if "4 KiB" not in case and "32 " not in case else (
                2000 * 4096 if "4 KiB" in case else 32 * (64 << 20))
            rate = lambda s: f"{s:.2f} s ({mb / s / 1e6:.0f} MB/s)"
            w = statistics.median(by["wharf"])
            # One row per peer: the S3 cases have two (sshd on disk, the store itself).
            for peer in (p for p in by if p != "wharf"):
                o = statistics.median(by[peer])
                if peer == "s3s-fs":
                    label = "curl straight to s3s-fs"
                elif "S3" in case:
                    label = "OpenSSH internal-sftp, on disk"
                else:
                    label = peers_of.get(case[:4], peer)
                lines.append(f"| {case} | {label} | {rate(w)} | {rate(o)} | {o / w:.2f} | "
                             f"{statistics.median(self.cpu[case]):.2f} s | {self.rss.get(case, 0) / 1e6:.0f} MB |")
        if "web" in self.cases:
            (wr, wp), (nr, np_) = self.web["wharf"], self.web["nginx"]
            lines += [
                "",
                "Landing page under `wrk -t1 -c16 -d10s` (nginx serves the same HTML as a static file):",
                "",
                "| Server | requests/s | p99 latency |",
                "|---|---|---|",
                f"| wharf | {wr:.0f} | {wp:.2f} ms |",
                f"| nginx | {nr:.0f} | {np_:.2f} ms |",
                f"| ratio | {wr / nr:.2f} | |",
            ]
        if self.fresh:
            size = parse_size(self.args.rss_size)
            lines += [
                "",
                f"Peak RSS (`VmHWM`) of a freshly started wharf while receiving one {self.args.rss_size} upload:",
                "",
                "| Protocol | time | wharf peak RSS |",
                "|---|---|---|",
            ]
            for protocol, dt, peak in self.fresh:
                lines.append(f"| {protocol} | {dt:.1f} s ({size / dt / 1e6:.0f} MB/s) | {peak / 1e6:.0f} MB |")
        lines.append("")
        return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="1G")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rss-size", default="4G", help="size of the one upload per protocol in the rss case")
    ap.add_argument("--cases", default=",".join(CASES),
                    help="comma-separated: " + "; ".join(f"{k}: {v}" for k, v in CASES.items()))
    ap.add_argument("--no-fsync", action="store_true",
                    help="run wharf under eatmydata (fsync turned into a no-op): an experiment that shows "
                         "what wharf's durable uploads cost; never how to run wharf")
    ap.add_argument("--out", help="report file (default docs/benchmarks.md when every case runs, "
                                  "else only printed)")
    args = ap.parse_args()
    if args.out is None and set(args.cases.split(",")) == set(CASES):
        args.out = os.path.join(ROOT, "docs", "benchmarks.md")
    b = Bench(args)
    load_before = open("/proc/loadavg").read().strip()
    try:
        b.setup()
        b.run()
    finally:
        b.stop()
    load_after = open("/proc/loadavg").read().strip()
    table = b.report(load_before, load_after)
    print(table)
    if args.out is None:
        return
    keep = ""
    if os.path.exists(args.out):
        old = open(args.out).read()
        if "<!-- notes -->" in old:
            keep = old[old.index("<!-- notes -->"):]
    with open(args.out, "w") as f:
        f.write(table + "\n" + (keep or "<!-- notes -->\n"))


if __name__ == "__main__":
    main()
