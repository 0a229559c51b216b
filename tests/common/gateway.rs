//! A real wharf gateway started in-process on 127.0.0.1 port 0, on a chosen storage
//! (fs, memory, or S3 on the moto server), with users created through the store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use wharf::app::{App, Running};
use wharf::audit::AuditEvent;
use wharf::config::Config;
use wharf::store::{AuditQuery, Db, NewUser};
use wharf::vfs::VPath;

pub struct Gateway {
    pub running: Option<Running>,
    pub db: Db,
    pub config: Config,
    pub dir: tempfile::TempDir,
}

/// Storage under `/` for the gateway.
pub fn storage_toml(kind: &str) -> String {
    match kind {
        "fs" => String::new(), // the embedded default
        "memory" => "[[connector]]\nname = \"mem\"\nscheme = \"memory\"\n\n[[mount]]\npath = \"/\"\nconnector = \"mem\"\n".into(),
        "s3" => {
            let bucket = super::new_bucket();
            let opts: Vec<String> = super::s3_options(&bucket)
                .into_iter()
                .map(|(k, v)| format!("{k} = \"{v}\""))
                .collect();
            format!(
                "[[connector]]\nname = \"s3\"\nscheme = \"s3\"\n[connector.options]\n{}\n\n[[mount]]\npath = \"/\"\nconnector = \"s3\"\n",
                opts.join("\n")
            )
        }
        // S3 whose link downloads answer 303 to a presigned GET.
        "s3-direct" => storage_toml("s3").replacen(
            "scheme = \"s3\"\n",
            "scheme = \"s3\"\ndirect_downloads = true\ndirect_download_lifetime = \"2m\"\n",
            1,
        ),
        // S3 whose upload pages send files straight to the bucket.
        "s3-direct-up" => {
            storage_toml("s3").replacen("scheme = \"s3\"\n", "scheme = \"s3\"\ndirect_uploads = true\n", 1)
        }
        // The same, with wharf and browsers reaching the bucket at another
        // address (a proxy in front of moto).
        other if other.starts_with("s3-direct-up@") => storage_toml("s3-direct-up").replacen(
            &format!("endpoint = \"{}\"", super::s3_endpoint()),
            &format!("endpoint = \"{}\"", &other["s3-direct-up@".len()..]),
            1,
        ),
        // S3 on s3s-fs (a second implementation), a fresh bucket per gateway.
        "s3s" => {
            let opts: Vec<String> = super::s3s_shared_bucket()
                .into_iter()
                .map(|(k, v)| format!("{k} = \"{v}\""))
                .collect();
            format!(
                "[[connector]]\nname = \"s3s\"\nscheme = \"s3\"\n[connector.options]\n{}\n\n[[mount]]\npath = \"/\"\nconnector = \"s3s\"\n",
                opts.join("\n")
            )
        }
        other => panic!("unknown storage {other}"),
    }
}

impl Gateway {
    /// Starts a gateway; `extra` is appended to its config file right after the
    /// `[sftp]` table: bare keys set SFTP options, `[other]` headers start sections.
    pub async fn start(storage: &str, extra: &str) -> Gateway {
        Gateway::start_with(storage, "", extra).await
    }

    /// Like [`Gateway::start`], with `ftps` lines inside the `[ftps]` table.
    pub async fn start_with(storage: &str, ftps: &str, extra: &str) -> Gateway {
        Gateway::start_full(storage, "", ftps, extra).await
    }

    /// Like [`Gateway::start_with`], with `http` lines inside the `[http]` table.
    pub async fn start_full(storage: &str, http: &str, ftps: &str, extra: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{}\n[http]\nlisten = \"127.0.0.1:0\"\n{http}\n[ftps]\nexplicit_listen = \"127.0.0.1:0\"\nimplicit_listen = \"127.0.0.1:0\"\n{ftps}\n[sftp]\nlisten = \"127.0.0.1:0\"\nauth_delay = \"10ms\"\n{extra}\n",
            storage_toml(storage)
        );
        let file = dir.path().join("wharf.toml");
        std::fs::write(&file, text).unwrap();
        let config = Config::load(Some(&file), Some(&dir.path().join("data"))).unwrap();
        let db = wharf::app::open_db(&config).unwrap();
        let app = App::open(config.clone()).unwrap();
        let running = app.start().await.unwrap();
        Gateway {
            running: Some(running),
            db,
            config,
            dir,
        }
    }

    /// A TLS client for FTPS that trusts exactly the certificate this gateway
    /// generated.
    pub fn ftps_connector(&self) -> suppaftp::RustlsConnector {
        use rustls::pki_types::pem::PemObject;
        let pem = self.config.data_dir.join(wharf::ftps::tls::CERT_FILE);
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(&pem).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        suppaftp::RustlsConnector::from(std::sync::Arc::new(config))
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.running.as_ref().unwrap().http.unwrap()
    }

    pub fn ftps_explicit(&self) -> SocketAddr {
        self.running.as_ref().unwrap().ftps_explicit.unwrap()
    }

    pub fn ftps_implicit(&self) -> SocketAddr {
        self.running.as_ref().unwrap().ftps_implicit.unwrap()
    }

    pub fn sftp_addr(&self) -> SocketAddr {
        self.running.as_ref().unwrap().sftp.unwrap()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Adds a user with a password and, optionally, a key file.
    pub fn add_user(
        &self,
        name: &str,
        home: &str,
        perms: &str,
        password: Option<&str>,
        key: Option<&Path>,
    ) {
        let store = self.db.blocking();
        store
            .user_insert(&NewUser {
                name: name.into(),
                password_hash: password.map(|p| wharf::secret::hash_password(p).unwrap()),
                home: VPath::parse(home).unwrap(),
                perms: perms.parse().unwrap(),
                protocols: "all".parse().unwrap(),
                key_and_password: false,
            })
            .unwrap();
        if let Some(k) = key {
            let text = std::fs::read_to_string(k.with_extension("pub")).unwrap();
            store
                .key_insert(name, &wharf::users::parse_public_key(&text).unwrap())
                .unwrap();
        }
    }

    /// Generates an ed25519 key pair with ssh-keygen; returns the private key path.
    pub fn keygen(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen failed");
        path
    }

    /// The wharf binary on this gateway's data directory and config.
    pub fn wharf(&self) -> Command {
        super::wharf_cmd(&self.config.data_dir, Some(&self.path("wharf.toml")))
    }

    /// Runs `wharf link ARGS` and returns (public id, token) from its output.
    pub fn link(&self, args: &[&str]) -> (String, String) {
        self.link_with_input(args, None)
    }

    /// Like [`Gateway::link`], writing `input` to its standard input (for
    /// `--password-stdin`).
    pub fn link_with_input(&self, args: &[&str], input: Option<&str>) -> (String, String) {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .wharf()
            .arg("link")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(text) = input {
            writeln!(stdin, "{text}").unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = text
            .split_whitespace()
            .nth(3)
            .unwrap_or_default()
            .to_string();
        let token = text
            .lines()
            .nth(1)
            .and_then(|l| l.rsplit('/').next())
            .unwrap_or_default()
            .to_string();
        (id, token)
    }

    /// Runs `wharf ARGS`, asserts success, returns standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.wharf().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The gateway's storage as its configuration builds it: the same folder or
    /// S3 bucket (a memory connector would be a new, empty instance).
    pub fn vfs(&self) -> wharf::vfs::Vfs {
        let connectors = wharf::app::build_connectors(&self.config).unwrap();
        wharf::app::build_vfs(&self.config, &connectors).unwrap()
    }

    /// SHA-256 of a stored file, read through [`Gateway::vfs`]; `None` if absent.
    pub async fn stored_sha(&self, path: &str) -> Option<String> {
        use futures::TryStreamExt;
        use sha2::Digest;
        let reader = self.vfs().open(&VPath::parse(path).unwrap()).await.ok()?;
        let mut stream = reader.stream(0..reader.size()).await.unwrap();
        let mut h = sha2::Sha256::new();
        while let Some(chunk) = stream.try_next().await.unwrap() {
            h.update(&chunk);
        }
        Some(hex::encode(h.finalize()))
    }

    /// The link server's URL for a token.
    pub fn url(&self, token: &str) -> String {
        format!("http://{}/l/{token}", self.http_addr())
    }

    /// Stops the gateway (draining sessions, flushing the audit log) and returns
    /// the audit rows matching `query`.
    pub async fn stop_and_audit(&mut self, query: AuditQuery) -> Vec<AuditEvent> {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        self.db
            .blocking()
            .audit_query(&query)
            .unwrap()
            .into_iter()
            .map(|r| r.event)
            .collect()
    }
}

/// Options that make OpenSSH clients talk to a throwaway test server quietly.
pub const SSH_OPTS: [&str; 8] = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "BatchMode=yes",
];
