//! The mount table: which connector, and which root inside it, serves a virtual path.
//!
//! This is the only place where a [`VPath`] turns into a storage key.

use std::sync::Arc;

use wharf_connectors::{Connector, PARTIAL_DIR};

use super::VPath;
use crate::error::{Error, Result};

/// One `[[mount]]`: everything at or below `at` lives in `connector` under `root`.
#[derive(Debug)]
pub struct Mount {
    pub at: VPath,
    pub connector: Arc<Connector>,
    /// Storage prefix inside the connector: `""` or `"some/dir/"`.
    pub root: String,
}

/// A resolved path, owning its key so it can outlive the lookup.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    pub mount: &'a Mount,
    pub key: String,
}

impl Resolved<'_> {
    /// The key as a file (`a/b`); the mount root as a file is `""`.
    pub fn file_key(&self) -> &str {
        &self.key
    }

    /// The key as a directory (`a/b/`); the mount root is `"/"` for OpenDAL.
    pub fn dir_key(&self) -> String {
        if self.key.is_empty() {
            if self.mount.root.is_empty() {
                "/".into()
            } else {
                self.mount.root.clone()
            }
        } else {
            format!("{}/", self.key)
        }
    }
}

#[derive(Debug, Default)]
pub struct MountTable {
    /// Sorted by decreasing depth so the first match is the most specific mount.
    mounts: Vec<Mount>,
}

impl MountTable {
    pub fn new(mut mounts: Vec<Mount>) -> Result<Self> {
        for m in &mut mounts {
            m.root = normalise_root(&m.root)?;
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.at.segments().count()));
        for (i, m) in mounts.iter().enumerate() {
            if mounts[..i].iter().any(|o| o.at == m.at) {
                return Err(Error::invalid(format!("{} is mounted twice", m.at)));
            }
        }
        Ok(MountTable { mounts })
    }

    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// Finds the mount for `path` and the storage key inside it.
    pub fn resolve(&self, path: &VPath) -> Result<Resolved<'_>> {
        for mount in &self.mounts {
            if let Some(rest) = path.strip_prefix(&mount.at) {
                let key = format!("{}{}", mount.root, rest);
                if is_reserved(mount, &key) {
                    return Err(Error::not_found(format!("{path}: no such file")));
                }
                return Ok(Resolved { mount, key });
            }
        }
        if self.is_virtual_dir(path) {
            return Err(Error::new(
                crate::error::ErrorKind::Unsupported,
                format!("{path} only holds mount points"),
            ));
        }
        Err(Error::not_found(format!("{path}: no mount covers it")))
    }

    /// True when `path` is an ancestor of a mount point but no mount covers it.
    pub fn is_virtual_dir(&self, path: &VPath) -> bool {
        !self.mounts.iter().any(|m| path.starts_with(&m.at))
            && self
                .mounts
                .iter()
                .any(|m| m.at.starts_with(path) && m.at != *path)
    }

    /// Names of mount points directly below `dir`: they show in its listing even when
    /// the storage behind `dir` holds nothing of that name.
    pub fn child_mounts(&self, dir: &VPath) -> Vec<String> {
        let mut names: Vec<String> = self
            .mounts
            .iter()
            .filter_map(|m| m.at.strip_prefix(dir))
            .filter(|rest| !rest.is_empty())
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// The staging directory of an fs connector (or of direct uploads to a
/// bucket) is never reachable through the Vfs.
fn is_reserved(mount: &Mount, key: &str) -> bool {
    (mount.connector.local_root.is_some() || mount.connector.direct_upload.is_some())
        && (key == PARTIAL_DIR || key.starts_with(&format!("{PARTIAL_DIR}/")))
}

fn normalise_root(root: &str) -> Result<String> {
    let v = VPath::parse(root)?;
    Ok(if v.is_root() {
        String::new()
    } else {
        format!("{}/", &v.as_str()[1..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_connectors::{ConnectorSpec, Tuning};

    fn mem() -> Arc<Connector> {
        let spec = ConnectorSpec {
            name: "m".into(),
            scheme: "memory".into(),
            options: Default::default(),
        };
        Arc::new(wharf_connectors::build(&spec, &Tuning::default()).unwrap())
    }

    fn table() -> MountTable {
        let c = mem();
        MountTable::new(vec![
            Mount {
                at: VPath::parse("/data").unwrap(),
                connector: c.clone(),
                root: "/".into(),
            },
            Mount {
                at: VPath::parse("/data/archive").unwrap(),
                connector: c.clone(),
                root: "../old//stuff".into(),
            },
            Mount {
                at: VPath::parse("/x/y/z").unwrap(),
                connector: c,
                root: "".into(),
            },
        ])
        .unwrap()
    }

    #[test]
    fn most_specific_mount_wins() {
        let t = table();
        let r = t
            .resolve(&VPath::parse("/data/archive/2020/a").unwrap())
            .unwrap();
        assert_eq!(r.key, "old/stuff/2020/a");
        let r = t.resolve(&VPath::parse("/data/archived").unwrap()).unwrap();
        assert_eq!(r.key, "archived");
        let r = t.resolve(&VPath::parse("/data").unwrap()).unwrap();
        assert_eq!(r.dir_key(), "/");
    }

    #[test]
    fn ancestors_of_mounts_are_virtual() {
        let t = table();
        assert!(t.is_virtual_dir(&VPath::root()));
        assert!(t.is_virtual_dir(&VPath::parse("/x/y").unwrap()));
        assert!(!t.is_virtual_dir(&VPath::parse("/data").unwrap()));
        assert_eq!(t.child_mounts(&VPath::root()), vec!["data", "x"]);
        assert_eq!(
            t.child_mounts(&VPath::parse("/data").unwrap()),
            vec!["archive"]
        );
        assert!(t.resolve(&VPath::parse("/nowhere").unwrap()).is_err());
    }

    #[test]
    fn duplicate_mounts_are_refused() {
        let c = mem();
        let m = |root: &str| Mount {
            at: VPath::root(),
            connector: c.clone(),
            root: root.into(),
        };
        assert!(MountTable::new(vec![m(""), m("a")]).is_err());
    }
}
