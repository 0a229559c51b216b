//! Path-escape tests on a real `fs` root: `..`, `%2e%2e`, backslashes, `//`, NUL,
//! overlong names and symlinks pointing out of the root. None reaches a byte
//! outside the root, for reading, writing or listing.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::*;
use futures::TryStreamExt;
use wharf::vfs::{EntryKind, VPath, Vfs};
use wharf::ErrorKind;

struct Jail {
    vfs: Vfs,
    base: tempfile::TempDir,
    _backend: Backend,
}

/// An fs connector rooted at `<tmp>/root`, with a secret file and links beside it.
fn jail() -> Jail {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(base.path().join("secret"), b"outside").unwrap();
    std::fs::write(root.join("sub/ok.txt"), b"inside").unwrap();
    std::os::unix::fs::symlink(base.path().join("secret"), root.join("out")).unwrap();
    std::os::unix::fs::symlink(base.path(), root.join("updir")).unwrap();
    std::os::unix::fs::symlink(root.join("sub/ok.txt"), root.join("inlink")).unwrap();
    let options = [("root".to_string(), root.display().to_string())].into();
    let backend = Backend {
        connector: connector("fs", "fs", options),
        dir: None,
        server: None,
    };
    Jail {
        vfs: vfs_on(&backend),
        base,
        _backend: backend,
    }
}

fn outside_entries(base: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn dot_dot_backslash_and_double_slash_stay_inside() {
    let j = jail();
    for raw in [
        "../../escaped",
        "..\\..\\escaped",
        "//..//..//escaped",
        "/sub/../../escaped",
    ] {
        let path = VPath::parse(raw).unwrap();
        assert_eq!(path.as_str(), "/escaped", "{raw}");
        j.vfs
            .write_all(&path, Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    assert!(j.base.path().join("root/escaped").is_file());
    assert_eq!(outside_entries(j.base.path()), ["root", "secret"]);
}

#[tokio::test]
async fn percent_encoding_cannot_climb() {
    let j = jail();
    // In protocol paths `%` is literal: a strange but harmless name inside the root.
    let literal = VPath::parse("%2e%2e/%2e%2e/secret").unwrap();
    assert_eq!(
        j.vfs.open(&literal).await.err().unwrap().kind(),
        ErrorKind::NotFound
    );
    // In URLs it is decoded first, then normalised: still inside.
    for raw in [
        "/%2e%2e/%2e%2e/secret",
        "/sub/%2E%2E%2F%2E%2E%2Fsecret",
        "/..%5c..%5csecret",
    ] {
        let path = VPath::from_url_path(raw).unwrap();
        assert_eq!(path.as_str(), "/secret", "{raw}");
        assert_eq!(
            j.vfs.open(&path).await.err().unwrap().kind(),
            ErrorKind::NotFound,
            "{raw} must not reach the file beside the root"
        );
    }
}

#[tokio::test]
async fn nul_control_and_overlong_names_are_refused() {
    let j = jail();
    for raw in ["a\0b", "x/\0/y", "line\nbreak", "%00"] {
        let parsed = if raw == "%00" {
            VPath::from_url_path(raw)
        } else {
            VPath::parse(raw)
        };
        assert_eq!(
            parsed.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "{raw:?}"
        );
    }
    assert_eq!(
        VPath::parse(&"n".repeat(256)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    j.vfs
        .write_all(
            &VPath::parse(&"n".repeat(200)).unwrap(),
            Bytes::from_static(b"ok"),
        )
        .await
        .unwrap();
    // 255 bytes is a valid name; on fs the staging name built from it may not fit,
    // which must be a clear refusal that leaves nothing behind.
    let longest = VPath::parse(&"m".repeat(255)).unwrap();
    match j.vfs.write_all(&longest, Bytes::from_static(b"ok")).await {
        Ok(_) => {}
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert!(e.to_string().contains("too long"), "{e}");
            assert!(j.vfs.stat(&longest).await.is_err());
        }
    }
    let deep = vec!["d"; 2100].join("/");
    assert_eq!(
        VPath::parse(&deep).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn symlinks_out_of_the_root_are_never_followed() {
    let j = jail();
    let v = |s: &str| VPath::parse(s).unwrap();
    for path in ["/out", "/updir/secret", "/updir"] {
        let err = j.vfs.stat(&v(path)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "stat {path}");
    }
    assert_eq!(
        j.vfs.open(&v("/out")).await.err().unwrap().kind(),
        ErrorKind::PermissionDenied
    );
    assert_eq!(
        j.vfs.list(&v("/updir")).await.err().unwrap().kind(),
        ErrorKind::PermissionDenied
    );
    let write = j.vfs.create(&v("/updir/planted")).await;
    assert_eq!(write.err().unwrap().kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        j.vfs.delete(&v("/out")).await.unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    assert_eq!(
        j.vfs
            .rename(&v("/sub/ok.txt"), &v("/updir/stolen"), false)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::PermissionDenied
    );
    assert_eq!(outside_entries(j.base.path()), ["root", "secret"]);
    assert_eq!(
        std::fs::read(j.base.path().join("secret")).unwrap(),
        b"outside"
    );

    // A link that stays inside works and is listed as what it points to; links
    // out and dangling links are left out of listings.
    let r = j.vfs.open(&v("/inlink")).await.unwrap();
    assert_eq!(r.read_at(0, 100).await.unwrap(), &b"inside"[..]);
    let root = j.base.path().join("root");
    std::os::unix::fs::symlink(root.join("sub"), root.join("subdirlink")).unwrap();
    std::os::unix::fs::symlink(root.join("nothing"), root.join("dangling")).unwrap();
    let mut names: Vec<(String, EntryKind, u64)> = j
        .vfs
        .list(&v("/"))
        .await
        .unwrap()
        .map_ok(|e| (e.name().to_string(), e.kind, e.size))
        .try_collect()
        .await
        .unwrap();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        names,
        [
            ("inlink".to_string(), EntryKind::File, 6),
            ("sub".to_string(), EntryKind::Dir, 0),
            ("subdirlink".to_string(), EntryKind::Dir, 0)
        ]
    );
}

#[tokio::test]
async fn the_staging_directory_is_hidden_and_unreachable() {
    let j = jail();
    let staging = VPath::parse(wharf_connectors::PARTIAL_DIR).unwrap();
    assert_eq!(
        j.vfs.stat(&staging).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(j.vfs.create(&staging.join("x").unwrap()).await.is_err());
}
