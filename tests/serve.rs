//! `wharf serve` as a real process: the first start creates `admin` and hands its
//! password over once (without a terminal: in an owner-only file, never in the
//! output, the log or the database in clear), the CLI
//! works beside a running server on the same data directory, a second start creates
//! nothing, and SIGTERM stops the server cleanly with exit status 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// How long the server may take to print what a test waits for.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long the server may take to exit after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// `wharf --data-dir DATA ...` with a clean environment.
fn wharf_cmd(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("WHARF_CONFIG")
        .env_remove("WHARF_DATA_DIR")
        .env_remove("WHARF_LOG");
    cmd
}

/// Runs a CLI command to completion, feeding `stdin` (or nothing) to it; kills it
/// and fails the test if it takes longer than [`START_DEADLINE`] (a CLI command must
/// never wait on the running server).
fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting wharf");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).unwrap();
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > START_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {START_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn wharf(data: &Path, args: &[&str]) -> Output {
    run(wharf_cmd(data, args), None)
}

fn wharf_stdin(data: &Path, args: &[&str], input: &str) -> Output {
    run(wharf_cmd(data, args), Some(input))
}

/// Asserts exit code 0 and returns stdout.
fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// A running `wharf serve` whose stdout and stderr are read line by line on threads.
/// Dropping it kills the process, so a failing test leaves nothing behind.
struct Server {
    child: Child,
    lines: Receiver<(Stream, String)>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    /// How far [`Server::wait_for`] has looked in `stdout` and `stderr`.
    out_cursor: usize,
    err_cursor: usize,
}

fn forward(stream: Stream, r: impl Read + Send + 'static, tx: Sender<(Stream, String)>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send((stream, line)).is_err() {
                break;
            }
        }
    });
}

impl Server {
    /// Starts `wharf serve` with extra global `args` and environment variables.
    fn start(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        // Every listener on 127.0.0.1 port 0: tests never take a fixed port.
        let config = data.with_extension("toml");
        std::fs::write(
            &config,
            "[sftp]\nlisten = \"127.0.0.1:0\"\n[ftps]\nexplicit_listen = \"127.0.0.1:0\"\nimplicit_listen = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        let mut cmd = wharf_cmd(data, &["serve", "--config", config.to_str().unwrap()]);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wharf serve");
        let (tx, lines) = channel();
        forward(Stream::Out, child.stdout.take().unwrap(), tx.clone());
        forward(Stream::Err, child.stderr.take().unwrap(), tx);
        Server {
            child,
            lines,
            stdout: Vec::new(),
            stderr: Vec::new(),
            out_cursor: 0,
            err_cursor: 0,
        }
    }

    /// Takes one line into the transcript; `false` on timeout or when both streams
    /// are closed.
    fn pull_line(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok((Stream::Out, line)) => self.stdout.push(line),
            Ok((Stream::Err, line)) => self.stderr.push(line),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
        }
        true
    }

    /// Waits (bounded) for the next line of `stream` that satisfies `pred`. Each
    /// stream has its own cursor, so lines of the other stream are never skipped
    /// (the two are read on separate threads and may arrive in any order).
    fn wait_for(&mut self, stream: Stream, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let (lines, cursor) = match stream {
                Stream::Out => (&self.stdout, &mut self.out_cursor),
                Stream::Err => (&self.stderr, &mut self.err_cursor),
            };
            while *cursor < lines.len() {
                let line = &lines[*cursor];
                *cursor += 1;
                if pred(line) {
                    return line.clone();
                }
            }
            if !self.pull_line(deadline) {
                break;
            }
        }
        panic!(
            "wharf serve did not print {what} on {stream:?} within {START_DEADLINE:?}\n{}",
            self.transcript()
        );
    }

    /// Waits until the server reports it is running.
    fn wait_running(&mut self) {
        self.wait_for(Stream::Err, "\"wharf is running\"", |l| {
            l.contains("wharf is running")
        });
    }

    fn transcript(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout.join("\n"),
            self.stderr.join("\n")
        )
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Sends SIGTERM and waits (bounded) for the exit; then collects the rest of the
    /// output.
    fn stop(&mut self) -> ExitStatus {
        self.sigterm();
        let deadline = Instant::now() + STOP_DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "wharf serve did not exit within {STOP_DEADLINE:?} of SIGTERM\n{}",
                self.transcript()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // The process is gone, so the pipes close; read what is left.
        let deadline = Instant::now() + STOP_DEADLINE;
        while self.pull_line(deadline) {}
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads the first-start banner: waits for `created user "admin"`; without a
/// terminal the password is not printed but written, owner-only, to
/// `initial-admin-password` in the data directory, which the banner names.
fn first_start_password(server: &mut Server) -> String {
    let created = server.wait_for(Stream::Out, "created user \"admin\"", |l| {
        l.contains("created user \"admin\"")
    });
    assert!(created.contains("home /, all permissions"), "{created}");
    let file = created
        .split("its password is in ")
        .nth(1)
        .unwrap_or_else(|| panic!("no file named: {created}"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{file}");
    let password = std::fs::read_to_string(file).unwrap().trim().to_string();
    assert_eq!(password.len(), 24, "{password:?}");
    assert!(
        password.chars().all(|c| c.is_ascii_alphanumeric()),
        "{password:?}"
    );
    password
}

#[test]
fn first_start_creates_admin_and_the_cli_works_beside_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mut server = Server::start(d, &[], &[]);
    first_start_password(&mut server);
    server.wait_for(Stream::Out, "the data directory", |l| {
        l.starts_with("wharf data directory:")
    });
    server.wait_running();

    // The CLI uses the same database while serve holds it open.
    let shown = ok(wharf(d, &["user", "show", "admin"]));
    for line in [
        "home:       /",
        "perms:      list,read,write,delete,mkdir,rename,share",
        "status:     enabled",
        "password:   set",
    ] {
        assert!(
            shown.lines().any(|l| l == line),
            "missing {line:?}:\n{shown}"
        );
    }
    let added = ok(wharf_stdin(
        d,
        &["user", "add", "erin", "--home", "/erin", "--password-stdin"],
        "erins-password\n",
    ));
    assert!(added.contains("created user erin (home /erin)"), "{added}");

    let status = server.stop();
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}\n{}",
        server.transcript()
    );
    assert!(
        server.stderr.iter().any(|l| l.contains("stopped")),
        "{}",
        server.transcript()
    );
    assert!(
        server
            .stdout
            .iter()
            .any(|l| l.contains("mount / -> connector files")),
        "{}",
        server.transcript()
    );

    let users = ok(wharf(d, &["user", "list"]));
    let names: Vec<&str> = users
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["admin", "erin"], "{users}");
}

#[test]
fn a_second_start_creates_no_new_admin() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();

    let mut first = Server::start(d, &[], &[]);
    first_start_password(&mut first);
    first.wait_running();
    assert_eq!(first.stop().code(), Some(0), "{}", first.transcript());

    let mut second = Server::start(d, &[], &[]);
    second.wait_for(Stream::Out, "the data directory", |l| {
        l.starts_with("wharf data directory:")
    });
    second.wait_running();
    let status = second.stop();
    assert_eq!(status.code(), Some(0), "{}", second.transcript());
    assert!(
        !second.stdout.iter().any(|l| l.contains("created user")),
        "a second start must not create a user:\n{}",
        second.transcript()
    );
    assert!(
        second.stderr.iter().any(|l| l.contains("stopped")),
        "{}",
        second.transcript()
    );
    let users = ok(wharf(d, &["user", "list"]));
    assert_eq!(users.lines().count(), 2, "header and admin only:\n{users}");
}

#[test]
fn the_admin_password_is_not_logged_or_stored_in_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // The most verbose log there is, as JSON: still no password.
    let mut server = Server::start(d, &["--log-format", "json"], &[("WHARF_LOG", "trace")]);
    let password = first_start_password(&mut server);
    server.wait_running();
    assert_eq!(server.stop().code(), Some(0), "{}", server.transcript());

    assert!(
        server.stderr.iter().any(|l| l.contains("stopped")),
        "the log was captured:\n{}",
        server.transcript()
    );
    assert!(
        !server.stderr.iter().any(|l| l.contains(&password)),
        "the password is in the log:\n{}",
        server.stderr.join("\n")
    );
    assert!(
        !server.stdout.iter().any(|l| l.contains(&password)),
        "without a terminal the password is not printed either"
    );

    for entry in std::fs::read_dir(d).unwrap() {
        let path = entry.unwrap().path();
        // The one place it is meant to be (owner-only, checked above).
        if path.is_file() && !path.ends_with("initial-admin-password") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes
                    .windows(password.len())
                    .any(|w| w == password.as_bytes()),
                "the password is in {} in clear",
                path.display()
            );
        }
    }
}

/// The signal handlers are installed before anything else starts, so a SIGTERM
/// during start-up (store opening, first admin) stops wharf cleanly: status 0,
/// "stopped", audit flushed — not status 143.
#[test]
fn sigterm_during_start_up_still_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start(tmp.path(), &[], &[]);
    // Well after the process and its runtime exist, while the first start is still
    // migrating the database and hashing the admin password.
    std::thread::sleep(Duration::from_millis(150));
    let status = server.stop();
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}\n{}",
        server.transcript()
    );
}
