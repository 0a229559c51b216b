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
        self.procs = []
        self.results = {}  # case -> peer -> [seconds]
        self.rss = {}  # case -> peak RSS of wharf in bytes

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
        for i in range(32):
            write_random(f"{self.home}/s32/f{i:02}.bin", 64 << 20)
        if subprocess.run(["id", USER], capture_output=True).returncode != 0:
            sh(["useradd", "-M", "-d", self.home, "-s", "/bin/sh", USER])
        sh(["usermod", "-d", self.home, USER])
        sh(["chpasswd"], input=f"{USER}:{PASSWORD}".encode())
        sh(["chown", "-R", f"{USER}:", self.home])
        sh(["chmod", "-R", "a+rX", self.files])
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{w}/client_key"])
        shutil.copy(f"{w}/client_key.pub", f"{w}/authorized_keys")
        os.chmod(f"{w}/authorized_keys", 0o644)
        self.start_wharf()
        self.start_sshd()
        self.start_vsftpd()
        self.start_nginx()

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
        cfg = ["--config", f"{w}/wharf.toml"]
        sh([WHARF] + cfg + ["user", "add", "admin", "--home", "/", "--generate-password"],
           stdout=subprocess.DEVNULL)
        sh([WHARF] + cfg + ["user", "add", USER, "--home", "/bench", "--key", f"{w}/client_key.pub",
                            "--password-stdin"], input=PASSWORD.encode(), stdout=subprocess.DEVNULL)
        self.wharf = self.spawn([WHARF] + cfg + ["serve"])
        wait_port(PORTS["wharf_http"], "wharf")
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

    def timed(self, case, peer, cmd, cleanup=None, shell=False):
        if peer == "wharf":
            self.reset_rss()
        if isinstance(cmd, list):
            cmd = ["taskset", "-c", CLIENT_CPU] + cmd
        t = time.perf_counter()
        r = subprocess.run(cmd, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = time.perf_counter() - t
        if r.returncode != 0:
            sys.exit(f"{case} on {peer} failed: {r.stderr.decode()[-500:]}")
        self.results.setdefault(case, {}).setdefault(peer, []).append(dt)
        if peer == "wharf":
            # The reset only lowers the peak to the current resident size, which
            # still holds memory freed by earlier cases: the smallest peak over the
            # repetitions is the closest (still upper) bound for this case.
            peak = self.peak_rss()
            self.rss[case] = min(self.rss.get(case, peak), peak)
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
        big = f"{self.local}/big.bin"
        for rep in range(reps):
            print(f"repetition {rep + 1}/{reps}")
            order = ["wharf", "openssh"] if rep % 2 == 0 else ["openssh", "wharf"]
            for cipher, short in (("aes128-gcm@openssh.com", "aes128-gcm"), ("chacha20-poly1305@openssh.com", "chacha20")):
                for peer in order:
                    self.timed(f"SFTP download {self.args.size} ({short})", peer,
                               self.sftp(peer, "get big.bin /dev/null\n", cipher))
                    self.timed(f"SFTP upload {self.args.size} ({short})", peer,
                               self.sftp(peer, f"put {big} up.bin\n", cipher), self.rm_remote("up.bin"))
            for peer in order:
                dl = f"{self.work}/dl-{peer}"
                self.timed("SFTP 2,000 x 4 KiB get -r", peer, self.sftp(peer, f"get -r small {dl}\n"),
                           lambda: shutil.rmtree(dl, ignore_errors=True))
                self.timed("SFTP 2,000 x 4 KiB put -r", peer,
                           self.sftp(peer, f"put -r {self.local}/small smallup\n"), self.rm_remote("smallup"))
            order = ["wharf", "vsftpd"] if rep % 2 == 0 else ["vsftpd", "wharf"]
            for peer in order:
                port = PORTS["wharf_ftps"] if peer == "wharf" else PORTS["vsftpd"]
                url = f"ftp://127.0.0.1:{port}"
                auth = f"{USER}:{PASSWORD}"
                curl = ["curl", "-sS", "--ssl-reqd", "-k", "-u", auth]
                self.timed(f"FTPS download {self.args.size} (curl)", peer, curl + [f"{url}/big.bin", "-o", "/dev/null"])
                self.timed(f"FTPS upload {self.args.size} (curl)", peer, curl + ["-T", big, f"{url}/up.bin"],
                           self.rm_remote("up.bin"))
                lftp = ["lftp", "-u", f"{USER},{PASSWORD}", "-p", str(port), "-e",
                        "set ssl:verify-certificate no; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; "
                        "set net:max-retries 1; set xfer:clobber on; {}; bye", "127.0.0.1"]
                get = list(lftp)
                get[6] = get[6].format("get big.bin -o /dev/null")
                self.timed(f"FTPS download {self.args.size} (lftp)", peer, get)
                put = list(lftp)
                put[6] = put[6].format(f"put {big} -o up.bin")
                self.timed(f"FTPS upload {self.args.size} (lftp)", peer, put, self.rm_remote("up.bin"))
            order = ["wharf", "nginx"] if rep % 2 == 0 else ["nginx", "wharf"]
            for peer in order:
                url = self.link_file if peer == "wharf" else f"http://127.0.0.1:{PORTS['nginx']}/bench/big.bin"
                self.timed(f"Link download {self.args.size} (curl)", peer, ["curl", "-sS", "-o", "/dev/null", url])
            order = ["wharf", "openssh"] if rep % 2 == 0 else ["openssh", "wharf"]
            for peer in order:
                cmds = " & ".join(
                    " ".join(self.sftp_shell(peer, f"get s32/f{i:02}.bin /dev/null", i)) for i in range(32)
                )
                self.timed("32 SFTP sessions x 64 MiB", peer, f"taskset -c {CLIENT_CPU} sh -c '{cmds} & wait'",
                           shell=True)
        self.wrk()

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
            "",
            "| Case | Peer | wharf (median) | peer (median) | ratio | wharf peak RSS |",
            "|---|---|---|---|---|---|",
        ]
        for case, by in self.results.items():
            peer = [p for p in by if p != "wharf"][0]
            w, o = statistics.median(by["wharf"]), statistics.median(by[peer])
            mb = self.size if "4 KiB" not in case and "32 " not in case else (
                2000 * 4096 if "4 KiB" in case else 32 * (64 << 20))
            rate = lambda s: f"{s:.2f} s ({mb / s / 1e6:.0f} MB/s)"
            lines.append(f"| {case} | {peers_of.get(case[:4], peer)} | {rate(w)} | {rate(o)} | {o / w:.2f} | "
                         f"{self.rss.get(case, 0) / 1e6:.0f} MB |")
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
            "",
        ]
        return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="1G")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()
    b = Bench(args)
    load_before = open("/proc/loadavg").read().strip()
    try:
        b.setup()
        b.run()
    finally:
        b.stop()
    load_after = open("/proc/loadavg").read().strip()
    table = b.report(load_before, load_after)
    keep = ""
    if os.path.exists(args.out):
        old = open(args.out).read()
        if "<!-- notes -->" in old:
            keep = old[old.index("<!-- notes -->"):]
    with open(args.out, "w") as f:
        f.write(table + "\n" + (keep or "<!-- notes -->\n"))
    print(table)


if __name__ == "__main__":
    main()
