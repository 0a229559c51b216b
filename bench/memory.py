#!/usr/bin/env python3
"""Memory of wharf under many SFTP sessions (issue 18): a fresh release build of
wharf on a fresh data directory, N OpenSSH `sftp` clients (100 by default), and
the server's RSS read from /proc/<pid>/status at four moments (--client paramiko:
paramiko clients in threads instead, whose `put` pipelines writes without limit
and whose `get` asks for the whole file at once):

- started: the gateway alone, before any client;
- idle: all N sessions logged in and idle;
- active: N parallel transfers, each session uploading then downloading a
  --size file (VmRSS sampled every 50 ms, VmHWM at the end);
- closed: all sessions ended, after --settle seconds.

Run by hand (no root needed): `python3 bench/memory.py` after
`cargo build --release --workspace`. Listeners bind 127.0.0.1 port 0. Every client's
exit status is checked and every uploaded file's SHA-256 compared; the script exits
1 on any failure. Results are printed (and, with --json, written as JSON); the
numbers in docs/benchmarks.md ("Memory") come from it."""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER = "membench"


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)", s.upper())
    if not m:
        sys.exit(f"bad size {s!r}: use e.g. 20M")
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def status(pid, key):
    """A /proc/<pid>/status value in bytes (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def mib(n):
    return f"{n / (1 << 20):.1f} MiB"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Client:
    """One `sftp -b -` process: commands go to its stdin, its stdout is read by a
    thread so a command's completion can be awaited."""

    def __init__(self, i, port, key):
        self.i = i
        self.proc = subprocess.Popen(
            ["sftp", "-b", "-", "-i", key, "-P", str(port),
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"{USER}@127.0.0.1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def send(self, *commands):
        self.proc.stdin.write("".join(c + "\n" for c in commands))
        self.proc.stdin.flush()

    def wait_line(self, pattern, deadline):
        """Waits until a stdout line matches; False at EOF or past the deadline."""
        with self.cond:
            while True:
                if any(l is not None and re.search(pattern, l) for l in self.lines):
                    return True
                if None in self.lines or time.time() > deadline:
                    return False
                self.cond.wait(max(0.0, min(1.0, deadline - time.time())))


class Bench:
    def __init__(self, args):
        self.args = args
        self.size = parse_size(args.size)
        self.work = tempfile.mkdtemp(prefix="wharf-mem-")
        self.wharf = None
        self.results = {}

    def setup(self):
        w = self.work
        self.files = f"{w}/files"
        self.home = f"{self.files}/{USER}"
        os.makedirs(f"{self.home}/up")
        with open(f"{self.home}/down.bin", "wb") as f:
            f.write(os.urandom(self.size))
        shutil.copy(f"{self.home}/down.bin", f"{w}/up.bin")
        self.sha = sha256(f"{w}/up.bin")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{w}/key"], check=True)
        budget = f'buffer_budget = "{self.args.budget}"\n' if self.args.budget else ""
        with open(f"{w}/wharf.toml", "w") as f:
            f.write(f"""data_dir = "{w}/data"
[log]
level = "warn"
[storage]
{budget}[[connector]]
name = "files"
scheme = "fs"
[connector.options]
root = "{self.files}"
[[mount]]
path = "/"
connector = "files"
[sftp]
listen = "127.0.0.1:0"
max_sessions = {self.args.sessions + 16}
max_per_address = {self.args.sessions + 16}
max_unauthenticated_per_address = {self.args.sessions + 16}
[defender]
max_failures = 0
[ftps]
explicit_listen = ""
implicit_listen = ""
[http]
listen = "127.0.0.1:0"
""")
        self.cfg = ["--config", f"{w}/wharf.toml"]
        subprocess.run([self.args.wharf] + self.cfg + ["user", "add", USER, "--home", f"/{USER}",
                                                       "--key", f"{w}/key.pub"],
                       check=True, stdout=subprocess.DEVNULL)

    def start(self):
        self.wharf = subprocess.Popen([self.args.wharf] + self.cfg + ["serve"], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
        deadline = time.time() + 60
        for line in self.wharf.stdout:
            m = re.match(r"SFTP listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
            if time.time() > deadline:
                break
        else:
            sys.exit("wharf did not start")
        threading.Thread(target=lambda: [None for _ in self.wharf.stdout], daemon=True).start()

    def rss(self):
        return status(self.wharf.pid, "VmRSS")

    def settle(self):
        time.sleep(self.args.settle)

    def run(self):
        n, pid = self.args.sessions, self.wharf.pid
        time.sleep(1)
        started = self.rss()
        print(f"started: {mib(started)}")

        if self.args.client == "paramiko":
            clients = self.paramiko_login()
        else:
            clients = []
            for i in range(n):
                clients.append(Client(i, self.port, f"{self.work}/key"))
                clients[-1].send("pwd")
            deadline = time.time() + 120
            bad = [c.i for c in clients if not c.wait_line(r"^Remote working directory", deadline)]
            if bad:
                self.fail(clients, f"sessions {bad[:10]} did not log in")
        self.settle()
        idle = self.rss()
        print(f"idle ({n} sessions): {mib(idle)}, {mib((idle - started) / n)} per session")

        # Peak of the active phase alone: reset VmHWM (clear_refs 5) first.
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        samples, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                samples.append(self.rss())
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t = time.perf_counter()
        if self.args.client == "paramiko":
            failed = self.paramiko_transfers(clients)
            clients = []
        else:
            for c in clients:
                c.send(f"put {self.work}/up.bin up/f{c.i:03}.bin", "get down.bin /dev/null", "bye")
            for c in clients:
                try:
                    c.proc.wait(self.args.timeout)
                except subprocess.TimeoutExpired:
                    self.fail(clients, f"client {c.i} still running after {self.args.timeout} s")
            failed = [(c.i, c.proc.returncode, c.proc.stderr.read()[-300:]) for c in clients
                      if c.proc.returncode != 0]
        elapsed = time.perf_counter() - t
        stop.set()
        sampler.join()
        peak = status(pid, "VmHWM")
        if failed:
            self.fail(clients, f"{len(failed)} clients failed, e.g. {failed[:3]}")
        for i in range(n):
            got = f"{self.home}/up/f{i:03}.bin"
            if sha256(got) != self.sha:
                self.fail(clients, f"upload {got} differs from the source")
        moved = 2 * n * self.size
        print(f"active ({n} x {self.args.size} up + down in {elapsed:.1f} s, "
              f"{moved / elapsed / (1 << 20):.0f} MiB/s): peak {mib(peak)} "
              f"(sampled VmRSS max {mib(max(samples, default=0))})")

        self.settle()
        closed = self.rss()
        print(f"closed: {mib(closed)}")
        self.results = dict(sessions=n, size=self.size, started=started, idle=idle,
                            idle_per_session=(idle - started) / n, active_peak=peak,
                            active_seconds=elapsed, closed=closed)

    def paramiko_login(self):
        import paramiko
        key = paramiko.Ed25519Key.from_private_key_file(f"{self.work}/key")
        clients = []
        for _ in range(self.args.sessions):
            t = paramiko.Transport(("127.0.0.1", self.port))
            t.connect(username=USER, pkey=key)
            clients.append((t, paramiko.SFTPClient.from_transport(t)))
        return clients

    def paramiko_transfers(self, clients):
        """Each session uploads then downloads in a thread of its own; returns the
        failures (index, exception)."""
        failed = []

        def go(i, sftp):
            try:
                sftp.put(f"{self.work}/up.bin", f"up/f{i:03}.bin")
                with open(os.devnull, "wb") as sink:
                    got = sftp.getfo("down.bin", sink)
                if got != self.size:
                    raise IOError(f"downloaded {got} bytes")
            except Exception as e:  # reported below, with the session's index
                failed.append((i, repr(e)))

        threads = [threading.Thread(target=go, args=(i, s)) for i, (_, s) in enumerate(clients)]
        for th in threads:
            th.start()
        deadline = time.time() + self.args.timeout
        for th in threads:
            th.join(max(0.0, deadline - time.time()))
            if th.is_alive():
                failed.append(("timeout", f"transfers still running after {self.args.timeout} s"))
                break
        for t, s in clients:
            s.close()
            t.close()
        return failed

    def fail(self, clients, why):
        for c in clients:
            if c.proc.poll() is None:
                c.proc.kill()
        self.stop()
        sys.exit(f"FAILED: {why}")

    def stop(self):
        if self.wharf and self.wharf.poll() is None:
            self.wharf.terminate()
            try:
                self.wharf.wait(30)
            except subprocess.TimeoutExpired:
                self.wharf.kill()
        shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--size", default="20M", help="bytes each session uploads and downloads")
    ap.add_argument("--wharf", default=os.path.join(ROOT, "target", "release", "wharf"))
    ap.add_argument("--client", choices=["openssh", "paramiko"], default="openssh")
    ap.add_argument("--budget", default="", help="[storage] buffer_budget (default: wharf's own)")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds before the idle and closed readings")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for the transfers")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if not os.path.exists(args.wharf):
        sys.exit(f"{args.wharf} not found: cargo build --release --workspace")
    b = Bench(args)
    try:
        b.setup()
        b.start()
        b.run()
    finally:
        b.stop()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(b.results, f, indent=2)


if __name__ == "__main__":
    main()
