//! Keeps an `fs` connector inside its root: OpenDAL follows symlinks, so a link
//! placed inside the root that points outside it must be caught here.
//!
//! The check canonicalises the deepest existing part of the path and requires it to
//! stay below the canonical root. A symlink that cannot be resolved (dangling, or a
//! loop) is refused rather than guessed at. This is a check-then-use: it stops links
//! that exist when a request arrives; wharf's own protocols cannot create symlinks.

use std::path::Path;

use crate::error::{Error, Result};

/// Refuses `key` (a storage key below `root`) if it resolves outside `root`.
pub fn check_inside(root: &Path, key: &str) -> Result<()> {
    let mut path = root.join(key.trim_end_matches('/'));
    loop {
        match std::fs::canonicalize(&path) {
            Ok(real) if real.starts_with(root) => return Ok(()),
            Ok(_) => return Err(escape(key)),
            // ENOTDIR (a file used as a folder) means the path does not exist either.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                let is_link = std::fs::symlink_metadata(&path)
                    .map(|m| m.file_type().is_symlink())
                    .unwrap_or(false);
                if is_link {
                    return Err(escape(key));
                }
                if !path.pop() || !path.starts_with(root) {
                    return Ok(());
                }
            }
            Err(e) => return Err(Error::from(e).context(format!("checking {key}"))),
        }
    }
}

fn escape(key: &str) -> Error {
    Error::denied(format!("/{key} leads outside the storage root"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_out_of_the_root_are_refused() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(base.path().join("secret"), b"x").unwrap();
        std::fs::write(root.join("sub/ok"), b"x").unwrap();
        std::os::unix::fs::symlink(base.path().join("secret"), root.join("out")).unwrap();
        std::os::unix::fs::symlink(base.path(), root.join("updir")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/ok"), root.join("in")).unwrap();
        std::os::unix::fs::symlink(base.path().join("nothing"), root.join("dangling")).unwrap();
        let root = root.canonicalize().unwrap();
        assert!(check_inside(&root, "sub/ok").is_ok());
        assert!(check_inside(&root, "sub/new-file").is_ok());
        assert!(check_inside(&root, "in").is_ok());
        assert!(check_inside(&root, "out").is_err());
        assert!(check_inside(&root, "updir/secret").is_err());
        assert!(check_inside(&root, "updir/new").is_err());
        assert!(check_inside(&root, "dangling").is_err());
    }
}
