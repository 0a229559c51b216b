//! A throwaway PostgreSQL server on 127.0.0.1 for tests: Debian's binaries,
//! `initdb -A trust` in a temporary directory, `pg_ctl start` on a free port,
//! run as user `postgres` when the tests run as root (initdb refuses root).
//!
//! [`shared`] gives one server per test binary (stopped by a watchdog when the
//! test process exits: statics are never dropped); [`PgServer::start`] gives
//! one the caller owns, stopped (`pg_ctl -m immediate stop`) on drop. Each test
//! case takes a database of its own ([`PgServer::create_db`]), so cases run in
//! parallel. Without the binaries, tests skip with a message, except under
//! `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct PgServer {
    pub port: u16,
    dir: PathBuf,
    as_postgres: bool,
    stop_on_drop: bool,
}

/// Whether the PostgreSQL binaries are here; under CI they must be.
pub fn available() -> bool {
    let there = Path::new(BIN).join("initdb").exists() && Path::new(BIN).join("pg_ctl").exists();
    if !there {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PostgreSQL binaries not found in {BIN} (apt-get install postgresql; .ci/run does)"
        );
        eprintln!("SKIPPED: PostgreSQL binaries not found in {BIN}");
    }
    there
}

/// The server shared by every test of this binary; `None` (skip) without the
/// binaries outside CI.
pub fn shared() -> Option<&'static PgServer> {
    static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if !available() {
                return None;
            }
            let mut server = PgServer::start_inner("");
            server.stop_on_drop = false;
            server.watch();
            Some(server)
        })
        .as_ref()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl PgServer {
    /// A server of its own, stopped on drop; `None` (skip) without the binaries
    /// outside CI.
    pub fn start() -> Option<PgServer> {
        Self::start_with("")
    }

    /// Like [`PgServer::start`], with more `postgres` options (`-c ssl=on ...`).
    pub fn start_with(options: &str) -> Option<PgServer> {
        available().then(|| PgServer::start_inner(options))
    }

    fn start_inner(options: &str) -> PgServer {
        let dir = tempfile::Builder::new()
            .prefix("wharf-pg-")
            .tempdir()
            .unwrap()
            .keep();
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:postgres", dir.to_str().unwrap()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of {}", dir.display());
        }
        let data = dir.join("data");
        let out = Self::command(as_postgres, "initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A free port may be taken between finding and binding it: try again.
        for _ in 0..5 {
            let port = super::free_port();
            let opts = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 {options}",
                dir.display()
            );
            let out = Self::command(as_postgres, "pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-o", &opts, "-l"])
                .arg(dir.join("log"))
                .args(["-w", "-t", "60", "start"])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            if out.status.success() {
                let server = PgServer {
                    port,
                    dir,
                    as_postgres,
                    stop_on_drop: true,
                };
                server.wait_ready();
                return server;
            }
            eprintln!(
                "pg_ctl start on port {port} failed, trying another: {}",
                std::fs::read_to_string(dir.join("log")).unwrap_or_default()
            );
        }
        panic!("PostgreSQL did not start (see {}/log)", dir.display());
    }

    fn command(as_postgres: bool, tool: &str) -> Command {
        let path = Path::new(BIN).join(tool);
        if as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL is not listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (and removes its files) when this process exits.
    fn watch(&self) {
        let stop = self.stop_line();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    }

    fn stop_line(&self) -> String {
        let pg_ctl = format!(
            "{BIN}/pg_ctl -D '{}/data' -m immediate stop",
            self.dir.display()
        );
        if self.as_postgres {
            format!("runuser -u postgres -- {pg_ctl} >/dev/null 2>&1")
        } else {
            format!("{pg_ctl} >/dev/null 2>&1")
        }
    }

    /// The URL of database `db` (user postgres, no password: trust).
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a fresh database `name`; returns its URL.
    pub fn create_db(&self, name: &str) -> String {
        let out = Command::new("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg(name)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "createdb {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(name)
    }

    /// Runs SQL with psql against `db`; returns its unaligned output lines.
    pub fn psql(&self, db: &str, sql: &str) -> Vec<String> {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", db, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGSSLMODE", "disable")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Gives `path` (recursively) to user `postgres` when the tests run as root,
/// so the server can read it.
pub fn give_to_postgres(path: &Path) {
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown of {}", path.display());
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.stop_on_drop {
            let _ = Command::new("sh").args(["-c", &self.stop_line()]).status();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A process-unique database name for a case.
pub fn db_name(case: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("case_{n}_{}", case.to_ascii_lowercase())
}
