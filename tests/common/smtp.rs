//! A real SMTP listener for the tests: Python's aiosmtpd on 127.0.0.1, writing
//! every message it accepts into a Maildir. One per test binary, stopped by a
//! watchdog when the test process exits (like the moto server).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Smtp {
    pub port: u16,
    pub maildir: PathBuf,
}

/// The listener, started on first use.
pub fn smtp() -> &'static Smtp {
    static SMTP: OnceLock<Smtp> = OnceLock::new();
    SMTP.get_or_init(|| {
        let port = super::free_port();
        let dir = tempfile::tempdir().unwrap().keep();
        let maildir = dir.join("mail");
        let script = format!(
            "python3 -m aiosmtpd -n -l 127.0.0.1:{port} -c aiosmtpd.handlers.Mailbox {maildir} >/dev/null 2>&1 & m=$!; \
             while kill -0 {pid} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; kill $m 2>/dev/null",
            maildir = maildir.display(),
            pid = std::process::id()
        );
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("starting aiosmtpd (pip install aiosmtpd; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start on port {port} within 30 s: is it installed?"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Smtp { port, maildir }
    })
}

impl Smtp {
    /// The `[mail]` section that sends to this listener.
    pub fn config(&self) -> String {
        format!(
            "[mail]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\nsecurity = \"none\"\nfrom = \"wharf <wharf@example.org>\"\n",
            self.port
        )
    }

    /// Every message received so far for `to`, decoded, oldest first.
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return found;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        paths.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        for p in paths {
            let raw = std::fs::read_to_string(&p).unwrap_or_default();
            let (head, body) = raw
                .split_once("\n\n")
                .or_else(|| raw.split_once("\r\n\r\n"))
                .unwrap_or((&raw, ""));
            let to_line = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("to:"))
                .unwrap_or("");
            if to_line
                .to_ascii_lowercase()
                .contains(&to.to_ascii_lowercase())
            {
                // A header of the message or of one of its parts (mails are
                // multipart: plain text and HTML).
                let qp = raw.to_ascii_lowercase().contains("quoted-printable");
                let body = if qp {
                    decode_qp(body)
                } else {
                    body.to_string()
                };
                found.push(format!("{head}\n\n{body}"));
            }
        }
        found
    }

    /// Waits (at most 20 s) until there are `count` messages for `to`.
    pub fn wait_for(&self, to: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.messages_to(to);
            if m.len() >= count {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no mail #{count} for {to} within 20 s (have {})",
                m.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
