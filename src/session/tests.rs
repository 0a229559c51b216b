//! Session tests: chroot to the home, permission refusals, and the audit rows each
//! operation leaves (with bytes and SHA-256 for uploads).

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use wharf_connectors::{ConnectorSpec, Tuning};

use super::*;
use crate::audit::{AuditLog, AuditTuning};
use crate::policy::ProtocolSet;
use crate::store::sqlite::SqliteStore;
use crate::store::{AuditQuery, Db};
use crate::vfs::{Mount, MountTable};

struct Fixture {
    vfs: Arc<Vfs>,
    db: Db,
    audit: AuditLog,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(SqliteStore::open(&dir.path().join("t.db")).unwrap());
    let spec = ConnectorSpec {
        name: "m".into(),
        scheme: "memory".into(),
        options: Default::default(),
    };
    let conn = Arc::new(wharf_connectors::build(&spec, &Tuning::default()).unwrap());
    let table = MountTable::new(vec![Mount {
        at: VPath::root(),
        connector: conn,
        root: String::new(),
    }])
    .unwrap();
    let audit = AuditLog::start(
        db.clone(),
        AuditTuning {
            queue: 64,
            batch: 8,
        },
    );
    Fixture {
        vfs: Arc::new(Vfs::new(table, 64 * 1024)),
        db,
        audit,
        _dir: dir,
    }
}

impl Fixture {
    async fn session(&self, home: &str, perms: &str) -> Session {
        self.vfs
            .mkdir(&VPath::parse("/partners").unwrap())
            .await
            .ok();
        self.vfs.mkdir(&VPath::parse(home).unwrap()).await.ok();
        let user = User {
            id: 1,
            name: "acme".into(),
            password_hash: None,
            enabled: true,
            home: VPath::parse(home).unwrap(),
            perms: perms.parse().unwrap(),
            protocols: ProtocolSet::all(),
            key_and_password: false,
            email: None,
            created_at: 0,
            admin: false,
            display_name: None,
        };
        let remote = "127.0.0.1:40000".parse().ok();
        Session::new(
            user,
            Protocol::Sftp,
            remote,
            self.vfs.clone(),
            self.audit.clone(),
        )
    }

    async fn audit_rows(&self, action: &str) -> Vec<crate::audit::AuditEvent> {
        self.audit.shutdown().await;
        let q = AuditQuery {
            action: Some(action.into()),
            ..Default::default()
        };
        self.db
            .blocking()
            .audit_query(&q)
            .unwrap()
            .into_iter()
            .map(|r| r.event)
            .collect()
    }
}

fn v(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

#[tokio::test]
async fn paths_stay_inside_the_home() {
    let f = fixture();
    f.vfs
        .write_all(&v("/secret.txt"), Bytes::from_static(b"top"))
        .await
        .unwrap();
    let s = f.session("/partners/acme", "all").await;
    let mut up = s.create(&v("/../../escape.txt")).await.unwrap();
    up.write(Bytes::from_static(b"inside")).await.unwrap();
    up.close().await.unwrap();
    assert!(f.vfs.stat(&v("/partners/acme/escape.txt")).await.is_ok());
    assert!(f.vfs.stat(&v("/escape.txt")).await.is_err());
    let err = s.open_read(&v("/../secret.txt")).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        !err.to_string().contains("partners"),
        "errors show the user's paths only: {err}"
    );
    let names: Vec<String> = s
        .list(&v("/.."))
        .await
        .unwrap()
        .map_ok(|e| e.path.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(names, ["/escape.txt"]);
    assert_eq!(
        s.rmdir(&v("/")).await.unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
}

#[tokio::test]
async fn refusals_are_audited_and_change_nothing() {
    let f = fixture();
    let s = f.session("/partners/acme", "list,read").await;
    let err = s.create(&v("/new.txt")).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(err.to_string().contains("write permission"), "{err}");
    assert_eq!(
        s.mkdir(&v("/d")).await.unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    assert!(f.vfs.stat(&v("/partners/acme/new.txt")).await.is_err());
    assert!(f.vfs.stat(&v("/partners/acme/d")).await.is_err());
    let rows = f.audit_rows("upload").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, Outcome::Denied);
    assert_eq!(rows[0].actor.as_deref(), Some("acme"));
    assert_eq!(rows[0].remote.as_deref(), Some("127.0.0.1:40000"));
    assert_eq!(rows[0].path.as_deref(), Some("/new.txt"));
}

#[tokio::test]
async fn uploads_and_downloads_are_audited_with_bytes_and_sha256() {
    let f = fixture();
    let s = f.session("/partners/acme", "all").await;
    let data = vec![42u8; 300_000];
    let mut up = s.create(&v("/in/../data.bin")).await.unwrap();
    for c in data.chunks(70_000) {
        up.write(Bytes::copy_from_slice(c)).await.unwrap();
    }
    let (bytes, sha) = up.close().await.unwrap();
    assert_eq!(bytes, 300_000);
    assert_eq!(sha, hex::encode(Sha256::digest(&data)));

    let down = s.open_read(&v("/data.bin")).await.unwrap();
    assert_eq!(down.read_at(0, 1000).await.unwrap().len(), 1000);
    down.finish(true).await;

    // An upload that dies with its connection is audited as failed.
    let mut broken = s.create(&v("/broken.bin")).await.unwrap();
    broken.write(Bytes::from_static(b"partial")).await.unwrap();
    drop(broken);

    let uploads = f.audit_rows("upload").await;
    assert_eq!(uploads.len(), 2);
    let ok = uploads.iter().find(|e| e.outcome == Outcome::Ok).unwrap();
    assert_eq!(ok.bytes, Some(300_000));
    assert_eq!(ok.detail.as_deref(), Some(format!("sha256 {sha}").as_str()));
    let failed = uploads
        .iter()
        .find(|e| e.outcome == Outcome::Failed)
        .unwrap();
    assert_eq!(
        (failed.bytes, failed.detail.as_deref()),
        (Some(7), Some("interrupted"))
    );
    let downloads = f.audit_rows("download").await;
    assert_eq!(downloads.len(), 1);
    assert_eq!(downloads[0].bytes, Some(1000));
    assert_eq!(downloads[0].outcome, Outcome::Ok);
}

#[tokio::test]
async fn changes_are_audited_with_their_outcome() {
    let f = fixture();
    let s = f.session("/partners/acme", "all").await;
    s.mkdir(&v("/d")).await.unwrap();
    assert_eq!(
        s.mkdir(&v("/d")).await.unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    s.rename(&v("/d"), &v("/e"), false).await.unwrap();
    s.rmdir(&v("/e")).await.unwrap();
    let mkdirs = f.audit_rows("mkdir").await;
    let outcomes: Vec<Outcome> = mkdirs.iter().map(|e| e.outcome).collect();
    assert_eq!(outcomes, [Outcome::Failed, Outcome::Ok]);
    let renames = f.audit_rows("rename").await;
    assert_eq!(renames[0].detail.as_deref(), Some("to /e"));
    assert_eq!(f.audit_rows("rmdir").await.len(), 1);
}

#[test]
fn symlink_texts_are_relative_to_the_link_folder() {
    let p = |s: &str| VPath::parse(s).unwrap();
    assert_eq!(relative(&p("/"), &p("/sub/a.txt")), "sub/a.txt");
    assert_eq!(relative(&p("/sub"), &p("/sub/a.txt")), "a.txt");
    assert_eq!(relative(&p("/a/b"), &p("/c")), "../../c");
    assert_eq!(relative(&p("/a/b"), &p("/a/b")), ".");
    assert_eq!(relative(&p("/a/b"), &p("/")), "../..");
}

#[test]
fn link_texts_are_shown_in_the_users_view() {
    let p = |s: &str| VPath::parse(s).unwrap();
    let home = p("/acme");
    let shown = |link: &str, text: &str| shown_link(&home, &p(link), text.to_string());
    // Relative texts as stored, while they stay inside the home.
    assert_eq!(shown("/l", "a.txt").as_deref(), Some("a.txt"));
    assert_eq!(shown("/sub/l", "../a.txt").as_deref(), Some("../a.txt"));
    assert_eq!(shown("/l", "../acme/a.txt"), None);
    assert_eq!(shown("/sub/l", "../../x"), None);
    // Absolute (virtual) texts as the user's absolute path, inside the home only.
    assert_eq!(shown("/l", "/acme/sub").as_deref(), Some("/sub"));
    assert_eq!(shown("/l", "/acme").as_deref(), Some("/"));
    assert_eq!(shown("/l", "/other/x"), None);
    assert_eq!(shown("/l", "/acmeish/x"), None);
    assert_eq!(
        shown_link(&p("/"), &p("/l"), "/x".into()).as_deref(),
        Some("/x")
    );
}
