#!/usr/bin/env python3
"""Benchmark driver: wharf against OpenSSH internal-sftp, vsftpd and nginx on this
machine, in one run. Started by bench/run.sh (which installs the peers and builds
wharf in release mode); writes docs/benchmarks.md.

Servers are pinned to core 0 and clients to core 1 (taskset). Within a
repetition the peers alternate, so drift in the machine's state hits both alike.
Every case runs --reps times; the table shows medians (min-max) of throughput and
of the server's CPU seconds per GiB, for wharf and for the peer, and the wharf /
peer throughput ratio (higher is better for wharf).

The numbers are only worth what the run checked:
- every client's exit status is checked (each of the concurrent sessions too), and
  uploads are checked by the stored size; a failed transfer makes its row say
  FAILED and the run exit non-zero at the end;
- the peers' connection limits are raised to what the cases need (sshd
  MaxStartups / MaxSessions, vsftpd max_clients / max_per_ip) and stated;
- before each case a load gate waits (at most --load-wait seconds) for the 1-minute
  load average to fall below --max-load; /proc/loadavg is recorded before and after
  each case, and a case that started on a busy machine is marked;
- server CPU comes from a cgroup v2 per server (cpu.stat usage_usec, which counts
  sshd's and vsftpd's per-session processes and nginx's workers), or, where no
  writable cgroup v2 exists, from /proc: utime+stime of the server's process tree
  plus cutime+cstime of the children it reaped."""

import argparse
import base64
import os
import shlex
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHARF = os.path.join(ROOT, "target", "release", "wharf")
USER = "wharfbench"
PASSWORD = "bench-Pa55word"
PORTS = dict(wharf_sftp=3022, wharf_ftps=3021, wharf_http=3080, sshd=4022, vsftpd=4021, nginx=4080,
             nginx_tls=4443)
SERVER_CPU, CLIENT_CPU = "0", "1"
# The server process (and CPU account) behind each peer of a case.
SERVER_OF = {"wharf": "wharf", "openssh": "sshd", "vsftpd": "vsftpd", "nginx": "nginx", "s3s-fs": "s3s-fs",
             # The direct upload's "peer" is wharf too: its CPU is what wharf spends
             # when the bytes go straight to the bucket.
             "direct": "wharf"}
# Case groups, selectable with --cases (all by default).
CASES = {
    "sftp": "SFTP download/upload of one large file, aes128-gcm and chacha20",
    "small": "SFTP 2,000 x 4 KiB get -r / put -r",
    "ftps": "FTPS download/upload with curl and lftp",
    "link": "link download with curl vs nginx",
    "tls": "link download over HTTPS (TLS 1.3, AES-128-GCM) with curl vs nginx; wharf restarted with [http] tls_cert",
    "sessions": "--sessions concurrent SFTP sessions x 64 MiB (32 by default)",
    "web": "landing page under wrk",
    "s3": "SFTP download from the S3 connector (s3s-fs) vs OpenSSH from disk",
    "direct": "browser upload to a request on the S3 connector: through wharf (tus) vs straight to the bucket "
              "(presigned parts, bench/direct_upload.py; wharf hands out URLs and reads the object back once)",
    "rss": "peak RSS of a fresh wharf while uploading --rss-size over SFTP, FTPS and HTTP (tus)",
}
S3_PORT, S3_BUCKET, S3_KEY, S3_SECRET = 4090, "bench", "benchkey", "bench-secret-key"
# The direct case's bucket: moto, since s3s-fs has no ListParts/ListMultipartUploads.
MOTO_PORT, MOTO_BUCKET = 4091, "bench-direct"


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


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# The load gate's other test: share of CPU time idle over a window of seconds.
QUIET_IDLE = 0.9
QUIET_WINDOW = 3.0


def cpu_idle(window):
    """Share of all CPUs' time spent idle (or waiting for I/O) over the next
    `window` seconds, from /proc/stat."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v[:8])
    idle0, total0 = sample()
    time.sleep(window)
    idle1, total1 = sample()
    return (idle1 - idle0) / max(1, total1 - total0)


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().strip()


def cgroup2_root():
    """The mount point of a cgroup v2 hierarchy in which this process may create
    groups, or None."""
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f if line.split()[2] == "cgroup2"]
    for m in mounts:
        probe = os.path.join(m, f"wharf-bench-probe-{os.getpid()}")
        try:
            os.mkdir(probe)
        except OSError:
            continue
        ok = os.path.exists(os.path.join(probe, "cpu.stat"))
        os.rmdir(probe)
        if ok:
            return m
    return None


class CgroupCpu:
    """One cgroup v2 per server: every process the server forks stays in it, and
    cpu.stat counts the CPU of exited members too."""

    def __init__(self, root):
        self.base = os.path.join(root, f"wharf-bench-{os.getpid()}")
        os.makedirs(self.base, exist_ok=True)
        self.groups = {}
        self.description = (f"cgroup v2 per server ({self.base}/<server>/cpu.stat usage_usec), which "
                            "includes every process the server forks")

    def group(self, name):
        g = self.groups.get(name)
        if g is None:
            g = self.groups[name] = os.path.join(self.base, name)
            os.makedirs(g, exist_ok=True)
        return g

    def preexec(self, name):
        procs = os.path.join(self.group(name), "cgroup.procs")

        def enter():
            with open(procs, "w") as f:
                f.write("0")
        return enter

    def attach(self, name, pid):
        pass

    def seconds(self, name):
        with open(os.path.join(self.group(name), "cpu.stat")) as f:
            for line in f:
                k, v = line.split()
                if k == "usage_usec":
                    return int(v) / 1e6
        return 0.0

    def count(self, name):
        with open(os.path.join(self.group(name), "cgroup.procs")) as f:
            return len(f.read().split())

    def cleanup(self):
        for g in self.groups.values():
            kill = os.path.join(g, "cgroup.kill")
            if os.path.exists(kill):
                try:
                    with open(kill, "w") as f:
                        f.write("1")
                except OSError:
                    pass
        for g in self.groups.values():
            for _ in range(50):
                try:
                    os.rmdir(g)
                    break
                except OSError:
                    time.sleep(0.1)
        try:
            os.rmdir(self.base)
        except OSError:
            pass


class ProcTreeCpu:
    """Without cgroups: the server's process tree sampled now (utime + stime of
    every live member) plus cutime + cstime, which holds what the children a
    process reaped used (sshd's and vsftpd's per-session processes once they end)."""

    def __init__(self, why):
        self.description = ("/proc: utime+stime of the server's live process tree plus cutime+cstime "
                            f"of the children it reaped ({why})")
        self.roots = {}
        self.tick = os.sysconf("SC_CLK_TCK")

    def preexec(self, name):
        return None

    def attach(self, name, pid):
        self.roots[name] = pid

    def _table(self):
        table = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[0] is the state (field 3); ppid is field 4, utime..cstime 14..17.
            table[int(d)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
        return table

    def _tree(self, name):
        table = self._table()
        root = self.roots.get(name)
        if root is None or root not in table:
            return table, set()
        members, todo = {root}, [root]
        while todo:
            p = todo.pop()
            for pid, (ppid, _) in table.items():
                if ppid == p and pid not in members:
                    members.add(pid)
                    todo.append(pid)
        return table, members

    def seconds(self, name):
        table, members = self._tree(name)
        return sum(table[p][1] for p in members) / self.tick

    def count(self, name):
        return len(self._tree(name)[1])

    def cleanup(self):
        pass



def ok(runs):
    return bool(runs) and not any(r["error"] for r in runs)


def spread(values, fmt):
    """Median with (min–max)."""
    values = sorted(values)
    return f"{fmt(statistics.median(values))} ({fmt(values[0])}–{fmt(values[-1])})"


def failed(runs):
    return f"FAILED ({sum(1 for r in runs if r['error'])}/{len(runs)})"


def mbs(runs, nbytes):
    if not ok(runs):
        return failed(runs)
    return spread((nbytes / r["seconds"] / 1e6 for r in runs), lambda v: f"{v:.0f}" if v >= 10 else f"{v:.2f}")


def cpu_per_gib(runs, nbytes):
    if not ok(runs):
        return failed(runs)
    return spread((r["cpu"] / (nbytes / (1 << 30)) for r in runs), lambda v: f"{v:.2f}")


def loads(runs):
    before = statistics.median(float(r["load_before"].split()[0]) for r in runs)
    after = statistics.median(float(r["load_after"].split()[0]) for r in runs)
    busy = sum(1 for r in runs if r["busy"])
    return f"{before:.2f} → {after:.2f}" + (f" busy {busy}/{len(runs)}" if busy else "")


class Bench:
    def __init__(self, args):
        self.args = args
        self.size = parse_size(args.size)
        self.work = "/tmp/wharf-bench"
        self.cases = set(args.cases.split(","))
        self.sessions_reps = args.sessions_reps or max(args.reps, 5)
        unknown = self.cases - set(CASES)
        if unknown:
            sys.exit(f"unknown case(s) {', '.join(sorted(unknown))}: choose from {', '.join(CASES)}")
        self.procs = []
        self.runs = {}  # case -> peer -> [one dict per repetition]
        self.nbytes = {}  # case -> bytes moved per repetition
        self.failures = []  # "case / peer: why"
        self.rss = {}  # case -> peak RSS of wharf in bytes
        self.web_busy = False
        root = cgroup2_root() if args.cpu_accounting in ("auto", "cgroup") else None
        if args.cpu_accounting == "cgroup" and root is None:
            sys.exit("--cpu-accounting cgroup: no writable cgroup v2 hierarchy here")
        if root:
            self.acct = CgroupCpu(root)
        else:
            why = "--cpu-accounting proc" if args.cpu_accounting == "proc" else "no writable cgroup v2 here"
            self.acct = ProcTreeCpu(why)
        # The peers' limits, sized for the concurrent-sessions case (every client
        # connects from 127.0.0.1, all at once) and stated in the report.
        n = max(args.sessions, 10)
        self.limits = dict(max_startups=2 * n, max_sessions=2 * n, max_clients=2 * n, max_per_ip=2 * n,
                           wharf_sessions=max(256, 2 * n))
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
        for d in (self.home, f"{self.home}/small", f"{self.home}/sessions", self.local, f"{self.local}/small"):
            os.makedirs(d, exist_ok=True)
        print(f"writing test data ({self.args.size} file, 2,000 small files, {self.args.sessions} x 64 MiB)")
        write_random(f"{self.home}/big.bin", self.size)
        shutil.copy(f"{self.home}/big.bin", f"{self.local}/big.bin")
        for i in range(2000):
            data = os.urandom(4096)
            for d in (f"{self.home}/small", f"{self.local}/small"):
                with open(f"{d}/f{i:04}.bin", "wb") as f:
                    f.write(data)
        if "sessions" in self.cases:
            for i in range(self.args.sessions):
                write_random(f"{self.home}/sessions/f{i:03}.bin", 64 << 20)
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
        if "direct" in self.cases:
            self.spawn("moto", ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", str(MOTO_PORT)])
            wait_port(MOTO_PORT, "moto")
            self.moto().create_bucket(Bucket=MOTO_BUCKET)
        if "tls" in self.cases:
            # One self-signed certificate for both servers (curl runs with -k).
            sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", f"{w}/tls.key", "-out", f"{w}/tls.crt", "-days", "2",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.start_wharf()
        self.start_sshd()
        self.start_vsftpd()
        self.start_nginx()
        if "s3" in self.cases:
            # Through the S3 API (wharf's multipart upload), not copied into
            # s3s-fs's folder: objects put that way carry their ETag, while a file
            # copied in would be hashed whole by s3s-fs on every ranged GET.
            sh(self.sftp("wharf", f"put {self.local}/big.bin s3/big.bin\n"), stdout=subprocess.DEVNULL)

    def spawn(self, server, cmd, **kw):
        """Starts a server (pinned to the server core) in its own CPU account."""
        p = subprocess.Popen(["taskset", "-c", SERVER_CPU] + cmd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, preexec_fn=self.acct.preexec(server), **kw)
        self.acct.attach(server, p.pid)
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
max_sessions = {self.limits['wharf_sessions']}
# Every benchmark client connects from 127.0.0.1, up to --sessions at once.
max_per_address = {self.limits['wharf_sessions']}
max_unauthenticated_per_address = {self.limits['wharf_sessions']}
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
            if "direct" in self.cases:
                f.write(f"""[[connector]]
name = "direct"
scheme = "s3"
direct_uploads = true
[connector.options]
bucket = "{MOTO_BUCKET}"
endpoint = "http://127.0.0.1:{MOTO_PORT}"
region = "us-east-1"
access_key_id = "test"
secret_access_key = "test"
disable_config_load = "true"
[[mount]]
path = "/bench/direct"
connector = "direct"
""")
        with open(f"{w}/wharf.toml") as f:
            self.wharf_toml = f.read()
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
        self.wharf = self.spawn("wharf", nosync + [WHARF] + self.cfg + ["serve"])
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
        self.spawn("s3s-fs", [s3s, "--host", "127.0.0.1", "--port", str(S3_PORT), "--access-key", S3_KEY,
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
# Every session of the concurrent case connects at once from 127.0.0.1: the default
# MaxStartups 10:30:100 drops connections beyond 10 unauthenticated ones.
MaxStartups {self.limits['max_startups']}
MaxSessions {self.limits['max_sessions']}
""")
        self.spawn("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", f"{w}/sshd_config"])
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
max_clients={self.limits['max_clients']}
max_per_ip={self.limits['max_per_ip']}
""")
        self.spawn("vsftpd", ["/usr/sbin/vsftpd", f"{w}/vsftpd.conf"])
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
    {self.nginx_tls_server()}
}}
""")
        self.spawn("nginx", ["/usr/sbin/nginx", "-c", f"{w}/nginx.conf", "-p", w])
        wait_port(PORTS["nginx"], "nginx")

    def nginx_tls_server(self):
        """nginx's HTTPS server for the TLS case: TLS 1.3 only, its defaults
        otherwise (no kernel TLS, so no sendfile under TLS, as shipped)."""
        if "tls" not in self.cases:
            return ""
        w = self.work
        return f"""server {{
        listen 127.0.0.1:{PORTS['nginx_tls']} ssl;
        ssl_certificate {w}/tls.crt;
        ssl_certificate_key {w}/tls.key;
        ssl_protocols TLSv1.3;
        root {self.files};
    }}"""

    def wharf_with_tls(self):
        """Restarts wharf with its link server on HTTPS (same port, same data, so
        the same link works with https://)."""
        w = self.work
        text = self.wharf_toml.replace(
            "[http]\n", f'[http]\ntls_cert = "{w}/tls.crt"\ntls_key = "{w}/tls.key"\n', 1
        ).replace(f'base_url = "http://', 'base_url = "https://', 1)
        with open(f"{w}/wharf-tls.toml", "w") as f:
            f.write(text)
        self.cfg = ["--config", f"{w}/wharf-tls.toml"]
        self.restart_wharf()

    def link_tls(self, order):
        for peer in order:
            if peer == "wharf":
                url = self.link_file.replace("http://", "https://", 1)
            else:
                url = f"https://127.0.0.1:{PORTS['nginx_tls']}/bench/big.bin"
            self.timed(f"Link download {self.args.size} over TLS (curl)", peer,
                       ["curl", "-sS", "--fail", "-k", "--tlsv1.3", "--tls13-ciphers", "TLS_AES_128_GCM_SHA256",
                        "-o", "/dev/null", url])

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.acct.cleanup()

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

    def load_gate(self):
        """Waits (bounded) for a quiet machine: the 1-minute load average below
        --max-load, or the CPUs at least QUIET_IDLE idle over the last
        QUIET_WINDOW seconds (after a burst of 32 clients the load average takes
        minutes to decay on an idle machine). Returns /proc/loadavg and whether
        the machine was still busy."""
        deadline = time.time() + self.args.load_wait
        while True:
            quiet = load1() < self.args.max_load or cpu_idle(QUIET_WINDOW) >= QUIET_IDLE
            if quiet or time.time() >= deadline:
                return loadavg(), not quiet

    def settle(self, server, base):
        """Waits (bounded) for the server's per-session processes to exit, so
        their CPU is in the account."""
        deadline = time.time() + 5
        while self.acct.count(server) > base and time.time() < deadline:
            time.sleep(0.05)

    def timed(self, case, peer, cmd, cleanup=None, check=None, nbytes=None):
        """Runs one repetition of a case: `cmd` is one client command, or a list of
        them run at once (concurrent sessions). Every exit status is checked, then
        `check` (returns an error or None)."""
        self.nbytes[case] = nbytes if nbytes is not None else self.size
        server = SERVER_OF[peer]
        load_before, busy = self.load_gate()
        if peer == "wharf":
            self.reset_rss()
        base = self.acct.count(server)
        cpu = self.acct.seconds(server)
        cmds = cmd if isinstance(cmd[0], list) else [cmd]
        errs = [tempfile.TemporaryFile() for _ in cmds]
        t = time.perf_counter()
        procs = [subprocess.Popen(["taskset", "-c", CLIENT_CPU] + c, stdout=subprocess.DEVNULL, stderr=e)
                 for c, e in zip(cmds, errs)]
        codes = [p.wait() for p in procs]
        dt = time.perf_counter() - t
        self.settle(server, base)
        cpu = self.acct.seconds(server) - cpu
        load_after = loadavg()
        error = None
        failed = [i for i, c in enumerate(codes) if c != 0]
        if failed:
            errs[failed[0]].seek(0)
            tail = errs[failed[0]].read().decode(errors="replace")[-300:].strip()
            error = f"{len(failed)} of {len(cmds)} client(s) failed (exit {codes[failed[0]]}): {tail}"
        elif check:
            error = check()
        for e in errs:
            e.close()
        run = dict(seconds=dt, cpu=cpu, load_before=load_before, load_after=load_after, busy=busy, error=error)
        self.runs.setdefault(case, {}).setdefault(peer, []).append(run)
        mark = " (busy machine)" if busy else ""
        if error:
            self.failures.append(f"{case} / {peer}: {error}")
            print(f"  {case} / {peer}: FAILED: {error}", flush=True)
        else:
            print(f"  {case} / {peer}: {dt:.2f} s, server CPU {cpu:.2f} s, load {load_before.split()[0]}"
                  f" -> {load_after.split()[0]}{mark}", flush=True)
        if peer == "wharf":
            # The reset only lowers the peak to the current resident size, which
            # still holds memory freed by earlier cases: the smallest peak over the
            # repetitions is the closest (still upper) bound for this case.
            peak = self.peak_rss()
            self.rss[case] = min(self.rss.get(case, peak), peak)
        if cleanup:
            cleanup()

    def stored(self, name, size):
        """A check that the upload `name` arrived whole."""
        def go():
            p = f"{self.home}/{name}"
            if not os.path.exists(p):
                return f"{name} is not on the server"
            got = os.path.getsize(p)
            return None if got == size else f"{name} has {got} bytes, not {size}"
        return go

    def stored_tree(self, folder, root=None):
        """A check that a recursive transfer brought all 2,000 small files."""
        def go():
            p = os.path.join(root or self.home, folder)
            n = len(os.listdir(p)) if os.path.isdir(p) else 0
            return None if n == 2000 else f"{folder} holds {n} of 2000 files"
        return go

    def sftp(self, peer, batch, cipher="aes128-gcm@openssh.com", batch_name=None, requests=0):
        port = PORTS["wharf_sftp"] if peer == "wharf" else PORTS["sshd"]
        path = f"{self.work}/batch-{batch_name or peer}"
        with open(path, "w") as f:
            f.write(batch)
        window = ["-R", str(requests)] if requests else []
        return ["sftp", *window, "-q", "-b", path, "-P", str(port), "-i", f"{self.work}/client_key", "-c", cipher,
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
            if "direct" in self.cases:
                self.direct(["wharf", "direct"] if first else ["direct", "wharf"])
            if "ftps" in self.cases:
                self.ftps(["wharf", "vsftpd"] if first else ["vsftpd", "wharf"])
            if "link" in self.cases:
                self.link(["wharf", "nginx"] if first else ["nginx", "wharf"])
        if "sessions" in self.cases:
            # A block of its own, with more repetitions than the others: its
            # figure is a rise read between two noisy runs, so each repetition
            # pairs them back to back (see `rise`).
            for rep in range(self.sessions_reps):
                print(f"sessions repetition {rep + 1}/{self.sessions_reps}", flush=True)
                self.sessions(["wharf", "openssh"] if rep % 2 == 0 else ["openssh", "wharf"])
        if "web" in self.cases:
            self.wrk()
        if "tls" in self.cases:
            # After the others (their URLs are http://), with every repetition in
            # one block: one restart into HTTPS and one back.
            self.wharf_with_tls()
            for rep in range(reps):
                self.link_tls(["wharf", "nginx"] if rep % 2 == 0 else ["nginx", "wharf"])
            self.cfg = ["--config", f"{self.work}/wharf.toml"]
            self.restart_wharf()
        if "rss" in self.cases:
            self.rss_uploads()

    def sftp_big(self, order):
        big = f"{self.local}/big.bin"
        for cipher, short in (("aes128-gcm@openssh.com", "aes128-gcm"), ("chacha20-poly1305@openssh.com", "chacha20")):
            for peer in order:
                self.timed(f"SFTP download {self.args.size} ({short})", peer,
                           self.sftp(peer, "get big.bin /dev/null\n", cipher))
                self.timed(f"SFTP upload {self.args.size} ({short})", peer,
                           self.sftp(peer, f"put {big} up.bin\n", cipher), self.rm_remote("up.bin"),
                           self.stored("up.bin", self.size))
                if short == "aes128-gcm":
                    # -f: sshd fsyncs too, as wharf always does before publishing.
                    self.timed(f"SFTP upload {self.args.size} -f ({short})", peer,
                               self.sftp(peer, f"put -f {big} up.bin\n", cipher), self.rm_remote("up.bin"),
                               self.stored("up.bin", self.size))

    def sftp_small(self, order):
        # Each transfer writes into a new folder and nothing is deleted (the next
        # run's setup clears the work directory): on ext4, creating files just
        # after thousands were deleted makes inode allocation scan the recently
        # freed ones (recently_deleted() in the kernel profile), which would
        # measure the previous repetition's cleanup, on the server's side for
        # uploads and on the client's for downloads.
        self.small_runs += 1
        n = self.small_runs
        small = 2000 * 4096
        for peer in order:
            self.timed("SFTP 2,000 x 4 KiB get -r", peer,
                       self.sftp(peer, f"get -r small {self.work}/dl-{peer}-{n}\n"),
                       check=self.stored_tree(f"dl-{peer}-{n}", self.work), nbytes=small)
            self.timed("SFTP 2,000 x 4 KiB put -r", peer,
                       self.sftp(peer, f"put -r {self.local}/small smallup-{peer}-{n}\n"),
                       check=self.stored_tree(f"smallup-{peer}-{n}"), nbytes=small)
            # -f: the client asks for fsync after each file, which sshd then does;
            # wharf syncs every upload before publishing it anyway.
            self.timed("SFTP 2,000 x 4 KiB put -r -f", peer,
                       self.sftp(peer, f"put -r -f {self.local}/small smallupf-{peer}-{n}\n"),
                       check=self.stored_tree(f"smallupf-{peer}-{n}"), nbytes=small)

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
                self.timed(up, peer, self.sftp(peer, f"put {big} up.bin\n"), self.rm_remote("up.bin"),
                           self.stored("up.bin", self.size))
                self.timed(down, "s3s-fs", ["curl", "-sS", "--fail", "-o", "/dev/null",
                                            self.presign("get_object", "big.bin")])
                self.timed(up, "s3s-fs", ["curl", "-sS", "--fail", "-T", big, self.presign("put_object", "up.bin")])

    def moto(self):
        import boto3
        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{MOTO_PORT}", aws_access_key_id="test",
                            aws_secret_access_key="test", region_name="us-east-1")

    def direct(self, order):
        """An upload request on an S3 connector (moto: s3s-fs lacks the
        multipart listing calls) receiving one file: through wharf (tus: staged
        on wharf's disk, then written to the bucket) against straight to the
        bucket (the page's direct path: wharf signs part URLs, completes the
        multipart upload and reads the object back once to check its SHA-256).
        Both columns are wharf's CPU; moto's is not counted."""
        big = f"{self.local}/big.bin"
        case = f"HTTP upload request {self.args.size} to S3 (moto)"
        for peer in order:
            n = self.direct_n = getattr(self, "direct_n", 0) + 1
            name = f"up-{peer}-{n}.bin"

            def check(name=name):
                try:
                    size = self.moto().head_object(Bucket=MOTO_BUCKET, Key=name)["ContentLength"]
                except Exception as e:  # noqa: BLE001 - any failure is the row's error
                    return f"{name}: {e}"
                return None if size == self.size else f"{name}: {size} bytes"
            if peer == "wharf":
                self.timed(case, peer, self.tus_upload(big, "/direct", name), check=check)
            else:
                self.timed(case, peer, ["python3", f"{ROOT}/bench/direct_upload.py",
                                        self.request_page("/direct"), big, name], check=check)

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
                       self.rm_remote("up.bin"), self.stored("up.bin", self.size))
            self.timed(f"FTPS download {self.args.size} (lftp)", peer, self.lftp(port, "get big.bin -o /dev/null"))
            self.timed(f"FTPS upload {self.args.size} (lftp)", peer, self.lftp(port, f"put {big} -o up.bin"),
                       self.rm_remote("up.bin"), self.stored("up.bin", self.size))

    def curl_ftps(self):
        return ["curl", "-sS", "--fail", "--ssl-reqd", "-k", "-u", f"{USER}:{PASSWORD}"]

    def lftp(self, port, command):
        return ["lftp", "-u", f"{USER},{PASSWORD}", "-p", str(port), "-e",
                "set ssl:verify-certificate no; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; "
                f"set net:max-retries 1; set xfer:clobber on; {command}; bye", "127.0.0.1"]

    def link(self, order):
        for peer in order:
            url = self.link_file if peer == "wharf" else f"http://127.0.0.1:{PORTS['nginx']}/bench/big.bin"
            self.timed(f"Link download {self.args.size} (curl)", peer, ["curl", "-sS", "--fail", "-o", "/dev/null", url])
        # On loopback the receiver's kernel work partly lands on the sender's core,
        # and more of it the faster the sender outruns curl: CPU per GiB is only
        # comparable at one rate, so both also run capped at the same one.
        for peer in order:
            url = self.link_file if peer == "wharf" else f"http://127.0.0.1:{PORTS['nginx']}/bench/big.bin"
            self.timed(f"Link download {self.args.size} (curl), both capped at 1000 MB/s", peer,
                       ["curl", "-sS", "--fail", "--limit-rate", "1000M", "-o", "/dev/null", url])

    def sessions_cases(self):
        """The names of the sessions case's two rows: one at a time, at once."""
        n = self.args.sessions
        return f"{n} SFTP sessions x 64 MiB, one at a time", f"{n} SFTP sessions x 64 MiB"

    def sessions(self, order):
        n = self.args.sessions
        one_by_one, at_once = self.sessions_cases()
        for peer in order:
            cmds = [self.sftp(peer, f"get sessions/f{i:03}.bin /dev/null\n", batch_name=f"{peer}-{i}",
                              requests=self.args.sessions_requests)
                    for i in range(n)]
            # The same sessions one after another, first: the base the rise in CPU
            # per GiB is read from, with the same bytes per session (a 1 GiB
            # download runs at another rate, and CPU per GiB on loopback depends
            # on the rate).
            self.timed(one_by_one, peer,
                       ["sh", "-c", " && ".join(shlex.join(c) for c in cmds)], nbytes=n * (64 << 20))
            # Then at once, right after: one client process per session, each exit
            # status checked (a shell's `wait` without arguments reports success
            # whatever its jobs did).
            self.timed(at_once, peer, cmds, nbytes=n * (64 << 20))

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
            stored = f"{self.home}/inbox/huge.bin" if left == "inbox" else f"{self.home}/{left}"
            if r.returncode != 0:
                error = f"exit {r.returncode}: {r.stderr.decode(errors='replace')[-300:].strip()}"
            elif not os.path.exists(stored) or os.path.getsize(stored) != os.path.getsize(huge):
                error = f"stored {os.path.getsize(stored) if os.path.exists(stored) else 0} bytes"
            else:
                error = None
            if error:
                self.failures.append(f"{size} upload over {protocol}: {error}")
                print(f"  FAILED: {error}", flush=True)
            self.fresh.append((protocol, dt, self.peak_rss(), error))
            self.rm_remote(left)()

    def request_page(self, folder):
        """A new upload request into `folder` (in the bench user's view)."""
        out = subprocess.run([WHARF] + self.cfg + ["link", "request", "--folder", folder, "--as", USER,
                                                   "--expires", "1d"],
                             check=True, capture_output=True, text=True).stdout
        return out.splitlines()[1].strip()

    def tus_upload(self, path, folder="/inbox", name="huge.bin"):
        """Opens an upload request as a visitor (grant cookie), declares the upload
        and returns the curl command that sends the whole file in one PATCH."""
        page = self.request_page(folder)
        jar = f"{self.work}/jar"
        sh(["curl", "-sS", "-c", jar, "-o", "/dev/null", page])
        size = os.path.getsize(path)
        head = subprocess.run(["curl", "-sS", "-b", jar, "-X", "POST", "-D", "-", "-o", "/dev/null",
                               "-H", "Tus-Resumable: 1.0.0", "-H", f"Upload-Length: {size}",
                               "-H", f"Upload-Metadata: filename {base64.b64encode(name.encode()).decode()}", f"{page}/uploads"],
                              check=True, capture_output=True, text=True).stdout
        location = re.search(r"(?im)^location:\s*(\S+)", head).group(1)
        origin = page.split("/l/")[0]
        return ["curl", "-sS", "--fail", "-b", jar, "-X", "PATCH", "-T", path,
                "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0",
                "-H", "Content-Type: application/offset+octet-stream", f"{origin}{location}"]

    def wrk(self):
        self.web = {}
        for peer, url in (("wharf", self.landing), ("nginx", f"http://127.0.0.1:{PORTS['nginx']}/landing.html")):
            _, busy = self.load_gate()
            self.web_busy |= busy
            r = subprocess.run(["taskset", "-c", CLIENT_CPU, "wrk", "-t1", "-c16", "-d10s", "--latency", url],
                               capture_output=True, text=True)
            out = r.stdout
            # wrk exits 0 even when every request failed: it counts them instead.
            bad = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
            if r.returncode != 0 or bad or "Requests/sec" not in out:
                why = bad.group(0) if bad else f"exit {r.returncode}: {r.stderr.strip()[-300:]}"
                self.failures.append(f"landing page / {peer}: {why}")
                self.web[peer] = None
                continue
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
            scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
            self.web[peer] = (rps, float(p99.group(1)) * scale)

    # ---------------------------------------------------------------- report
    def rise(self):
        """The rise in CPU per GiB from the sessions run one at a time to the same
        sessions at once, per repetition (the two run back to back, so slow drifts
        of the machine fall out of each ratio), as median (min–max)."""
        n = self.args.sessions
        seq, conc = (self.runs.get(case, {}) for case in self.sessions_cases())
        rows = []
        for peer, name in (("wharf", "wharf"), ("openssh", "OpenSSH internal-sftp")):
            a, b = seq.get(peer, []), conc.get(peer, [])
            if not (ok(a) and ok(b)):
                continue
            rises = [(y["cpu"] / x["cpu"] - 1) * 100 for x, y in zip(a, b)]
            rows.append(f"| {name} | {spread(rises, lambda v: f'{v:+.0f}%')} | {len(rises)} |")
        if not rows:
            return []
        window = (f" Each client kept {self.args.sessions_requests} READ requests in flight (`sftp -R`), "
                  "not OpenSSH's default 64." if self.args.sessions_requests else "")
        return ["", f"Rise in server CPU per GiB from the {n} sessions one at a time to the same {n} at once, "
                f"each repetition's pair run back to back.{window}", "",
                "| Server | rise, median (min–max) | pairs |", "|---|---|---|", *rows]

    def report(self, load_before, load_after):
        peers_of = {"SFTP": "OpenSSH internal-sftp", "FTPS": "vsftpd", "Link": "nginx"}
        lim = self.limits
        lines = [
            "# Benchmarks",
            "",
            "Written by `bench/run.sh` (run by hand, as root); do not edit by hand.",
            "",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; file size {self.args.size}, "
            f"{self.args.reps} repetitions per case ({self.sessions_reps} for the sessions case); "
            "medians with (min–max).",
            f"- Machine: {os.cpu_count()} cores; servers pinned to core {SERVER_CPU}, clients to core {CLIENT_CPU}.",
            f"- /proc/loadavg before the run: `{load_before}`; after: `{load_after}`.",
            f"- Load gate: before each case the driver waited up to {self.args.load_wait:.0f} s for the 1-minute "
            f"load average to fall below {self.args.max_load:.2f} or the CPUs to be {QUIET_IDLE:.0%} idle over "
            f"{QUIET_WINDOW:.0f} s; the load column shows the median 1-minute "
            "load before → after the case, and `busy k/n` when k of its n runs (wharf's and the peer's) started on a "
            "machine that was not quiet by then.",
            f"- Peers' limits: sshd `MaxStartups {lim['max_startups']}`, `MaxSessions {lim['max_sessions']}`; "
            f"vsftpd `max_clients={lim['max_clients']}`, `max_per_ip={lim['max_per_ip']}`; wharf "
            f"`max_sessions = {lim['wharf_sessions']}` (per address too).",
            "- Checked: every client's exit status (each session of the concurrent case), uploads by stored size, "
            "recursive transfers by file count; a failed repetition makes its side of the row say FAILED.",
            "- Ratio: wharf throughput / peer throughput (1.00 = as fast; higher is better for wharf).",
            f"- Server CPU s/GiB: CPU seconds the serving process used per GiB moved, measured as "
            f"{self.acct.description}. wharf's S3 rows count wharf only, not s3s-fs.",
            "",
            "| Case | Peer | wharf MB/s | peer MB/s | ratio | wharf CPU s/GiB | peer CPU s/GiB | load before → after "
            "| wharf peak RSS |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for case, by in self.runs.items():
            nbytes = self.nbytes[case]
            w = by.get("wharf", [])
            # One row per peer: the S3 cases have two (sshd on disk, the store itself).
            for peer in (p for p in by if p != "wharf"):
                o = by[peer]
                if peer == "s3s-fs":
                    label = "curl straight to s3s-fs"
                elif peer == "direct":
                    label = "direct to the bucket (wharf's CPU in the peer column)"
                elif "S3" in case:
                    label = "OpenSSH internal-sftp, on disk"
                else:
                    label = peers_of.get(case[:4], "OpenSSH internal-sftp")
                ratio = "—"
                if ok(w) and ok(o):
                    ratio = f"{statistics.median(r['seconds'] for r in o) / statistics.median(r['seconds'] for r in w):.2f}"
                lines.append(f"| {case} | {label} | {mbs(w, nbytes)} | {mbs(o, nbytes)} | {ratio} | "
                             f"{cpu_per_gib(w, nbytes)} | {cpu_per_gib(o, nbytes)} | {loads(w + o)} | "
                             f"{self.rss.get(case, 0) / 1e6:.0f} MB |")
        lines += self.rise()
        if "web" in self.cases:
            busy = " (started on a busy machine)" if self.web_busy else ""
            row = lambda v: f"{v[0]:.0f} | {v[1]:.2f} ms" if v else "FAILED |"
            wv, nv = self.web["wharf"], self.web["nginx"]
            lines += [
                "",
                f"Landing page under `wrk -t1 -c16 -d10s` (nginx serves the same HTML as a static file){busy}:",
                "",
                "| Server | requests/s | p99 latency |",
                "|---|---|---|",
                f"| wharf | {row(wv)} |",
                f"| nginx | {row(nv)} |",
                f"| ratio | {wv[0] / nv[0]:.2f} | |" if wv and nv else "| ratio | — | |",
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
            for protocol, dt, peak, error in self.fresh:
                if error:
                    lines.append(f"| {protocol} | FAILED | |")
                else:
                    lines.append(f"| {protocol} | {dt:.1f} s ({size / dt / 1e6:.0f} MB/s) | {peak / 1e6:.0f} MB |")
        lines.append("")
        return "\n".join(lines)


def main():
    global WHARF
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="1G")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rss-size", default="4G", help="size of the one upload per protocol in the rss case")
    ap.add_argument("--wharf", default=WHARF, help="the wharf binary (default: target/release/wharf)")
    ap.add_argument("--sessions", type=int, default=32, help="concurrent SFTP sessions in the sessions case")
    ap.add_argument("--sessions-reps", type=int, default=0,
                    help="repetitions of the sessions case (default: --reps, at least 5)")
    ap.add_argument("--sessions-requests", type=int, default=0,
                    help="READ requests each sessions-case client keeps in flight (sftp -R; default: "
                         "OpenSSH's 64, i.e. 2 MiB): an experiment on what the clients' window costs the server")
    ap.add_argument("--max-load", type=float, default=(os.cpu_count() or 2) / 2,
                    help="load gate: the 1-minute load average to wait for before each case (default: cores / 2)")
    ap.add_argument("--load-wait", type=float, default=120,
                    help="load gate: most seconds to wait before a case; it then runs and is marked busy")
    ap.add_argument("--cpu-accounting", choices=("auto", "cgroup", "proc"), default="auto",
                    help="server CPU from a cgroup v2 per server (auto: when one can be created) or from /proc")
    ap.add_argument("--cases", default=",".join(CASES),
                    help="comma-separated: " + "; ".join(f"{k}: {v}" for k, v in CASES.items()))
    ap.add_argument("--no-fsync", action="store_true",
                    help="run wharf under eatmydata (fsync turned into a no-op): an experiment that shows "
                         "what wharf's durable uploads cost; never how to run wharf")
    ap.add_argument("--out", help="report file (default docs/benchmarks.md when every case runs, "
                                  "else only printed)")
    args = ap.parse_args()
    WHARF = os.path.abspath(args.wharf)
    if args.out is None and set(args.cases.split(",")) == set(CASES):
        args.out = os.path.join(ROOT, "docs", "benchmarks.md")
    b = Bench(args)
    load_before = loadavg()
    try:
        b.setup()
        b.run()
    finally:
        b.stop()
    load_after = loadavg()
    table = b.report(load_before, load_after)
    print(table)
    if args.out is not None:
        write_report(args.out, table)
    if b.failures:
        print(f"{len(b.failures)} failed transfer(s):", file=sys.stderr)
        for f in b.failures:
            print(f"  {f}", file=sys.stderr)
        sys.exit(1)


def write_report(out, table):
    keep = ""
    if os.path.exists(out):
        old = open(out).read()
        if "<!-- notes -->" in old:
            keep = old[old.index("<!-- notes -->"):]
    with open(out, "w") as f:
        f.write(table + "\n" + (keep or "<!-- notes -->\n"))


if __name__ == "__main__":
    main()
