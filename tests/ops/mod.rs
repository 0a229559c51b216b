//! A real `wharf serve` process for the operations tests: started with a config
//! file on 127.0.0.1 port 0 everywhere, its stdout and stderr read line by line,
//! the addresses it prints parsed, signals sent to it by pid, killed when dropped.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a node may take to print what a test waits for.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// `wharf --data-dir DATA [--config CONFIG] ARGS` with a clean environment.
pub fn wharf_cmd(data: &Path, config: Option<&Path>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.arg("--data-dir").arg(data);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(args)
        .env_remove("WHARF_CONFIG")
        .env_remove("WHARF_DATA_DIR")
        .env_remove("WHARF_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Runs a command to completion (bounded) and returns its output.
pub fn run(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("starting a command");
    let id = child.id();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.expect("waiting for a command"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
            panic!("{cmd:?} did not finish within {DEADLINE:?}");
        }
    }
}

/// Like [`run`], asserting exit status 0; returns stdout.
pub fn ok(cmd: Command) -> String {
    let out = run(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The first listener lines `wharf serve` prints, parsed.
#[derive(Debug, Default, Clone)]
pub struct Addrs {
    pub sftp: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub https: bool,
    pub ftps_implicit: Option<SocketAddr>,
    pub redirect: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

/// A running `wharf serve`.
pub struct Node {
    pub child: Child,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub addrs: Addrs,
    lines: Receiver<String>,
    /// Every line of stdout and stderr so far (stdout lines start with `out: `).
    pub transcript: Arc<Mutex<Vec<String>>>,
}

fn forward(
    prefix: &'static str,
    r: impl Read + Send + 'static,
    tx: std::sync::mpsc::Sender<String>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(format!("{prefix}{line}")).is_err() {
                break;
            }
        }
    });
}

fn addr_after(line: &str, marker: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// The listeners of a test node, all on port 0; `extra` is appended.
pub fn base_config(extra: &str) -> String {
    format!(
        "[sftp]\nlisten = \"127.0.0.1:0\"\nauth_delay = \"10ms\"\n[ftps]\nexplicit_listen = \"127.0.0.1:0\"\nimplicit_listen = \"127.0.0.1:0\"\n{extra}\n"
    )
}

impl Node {
    /// Writes `config_text` to `dir/wharf.toml` and starts `wharf serve` on
    /// `dir/data`; waits until it runs.
    pub fn start(dir: &Path, config_text: &str) -> Node {
        let config = dir.join("wharf.toml");
        std::fs::write(&config, config_text).unwrap();
        Node::start_with(dir, &config, &[])
    }

    pub fn start_with(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Node {
        let data = dir.join("data");
        let mut cmd = wharf_cmd(&data, Some(config), &["serve"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wharf serve");
        let (tx, lines) = channel();
        forward("out: ", child.stdout.take().unwrap(), tx.clone());
        forward("err: ", child.stderr.take().unwrap(), tx);
        let mut node = Node {
            child,
            dir: data,
            config: config.to_path_buf(),
            addrs: Addrs::default(),
            lines,
            transcript: Arc::default(),
        };
        node.wait_for("wharf is running", |l| l.contains("wharf is running"));
        // stdout and stderr arrive on separate threads: wait for the last address line.
        node.wait_for("where mail goes", |l| l.starts_with("out: Mail goes to"));
        let mut a = Addrs::default();
        for l in node.transcript.lock().unwrap().iter() {
            if l.contains("SFTP listening on") {
                a.sftp = addr_after(l, "SFTP listening on ");
            } else if l.contains("Link server listening on http://") {
                a.http = addr_after(l, "listening on http://");
            } else if l.contains("Link server listening on https://") {
                a.http = addr_after(l, "listening on https://");
                a.https = true;
            } else if l.contains("FTPS (implicit TLS) listening on") {
                a.ftps_implicit = addr_after(l, "listening on ");
            } else if l.contains("redirects to HTTPS") {
                a.redirect = addr_after(l, "HTTP on ");
            } else if l.contains("Metrics listening on") {
                a.metrics = addr_after(l, "Metrics listening on http://");
            }
        }
        node.addrs = a;
        node
    }

    /// Waits (bounded) until a line satisfies `pred`, searching what came so far
    /// too; returns it.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.transcript.lock().unwrap().iter().find(|l| pred(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.transcript.lock().unwrap().push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("wharf serve did not print {what}:\n{}", self.text()),
            }
        }
    }

    /// Waits until `count` lines satisfy `pred`.
    pub fn wait_count(&mut self, what: &str, count: usize, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while self
            .transcript
            .lock()
            .unwrap()
            .iter()
            .filter(|l| pred(l))
            .count()
            < count
        {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.transcript.lock().unwrap().push(line),
                Err(_) => panic!(
                    "wharf serve did not print {what} {count} times:\n{}",
                    self.text()
                ),
            }
        }
    }

    /// Takes what the process printed so far without waiting.
    pub fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.transcript.lock().unwrap().push(line);
        }
    }

    pub fn text(&self) -> String {
        self.transcript.lock().unwrap().join("\n")
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// `true` while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits (bounded) for exit status 0.
    pub fn stop(mut self) {
        self.signal("TERM");
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.drain();
                assert!(status.success(), "{status:?}\n{}", self.text());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first-start admin password, from the file written when no terminal is
    /// attached.
    pub fn admin_password(&self) -> String {
        std::fs::read_to_string(self.dir.join("initial-admin-password"))
            .unwrap()
            .trim()
            .to_string()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `curl` with a deadline and no proxy; `args` follow.
pub fn curl(args: &[&str]) -> Output {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--noproxy", "*", "--max-time", "30"])
        .args(args);
    run(cmd)
}

/// Lists `/` over SFTP with curl as `user:password`; `true` when it logged in.
pub fn sftp_login(addr: SocketAddr, user: &str, password: &str) -> bool {
    let out = curl(&[
        "--insecure",
        "-u",
        &format!("{user}:{password}"),
        &format!("sftp://{addr}/"),
    ]);
    out.status.success()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
