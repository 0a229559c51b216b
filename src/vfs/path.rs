//! [`VPath`]: a virtual path normalised once, which can never climb above `/`.
//!
//! Every path a client sends becomes a `VPath` before anything else looks at it.
//! Storage keys are derived from a `VPath` by the mount table only, so no front-end
//! ever concatenates strings into a storage path.

use std::fmt;

use crate::error::{Error, Result};

/// Longest accepted name of one path segment, in bytes (as POSIX `NAME_MAX`).
pub const MAX_NAME: usize = 255;
/// Longest accepted whole path, in bytes (as POSIX `PATH_MAX`).
pub const MAX_PATH: usize = 4096;

/// An absolute, normalised virtual path: starts with `/`, no empty, `.` or `..`
/// segments, no trailing slash (except the root itself), no NUL or control
/// characters. `..` at the root stays at the root, as in a chroot.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VPath(String);

impl VPath {
    pub fn root() -> Self {
        VPath("/".into())
    }

    /// Parses a path as a protocol client sent it (SFTP, FTP, CLI). Backslashes count
    /// as separators; `%` is an ordinary character here (see [`VPath::from_url_path`]).
    /// A relative path is taken from the root.
    pub fn parse(raw: &str) -> Result<Self> {
        VPath::root().join(raw)
    }

    /// Parses the path part of a URL: percent-encoding is decoded first, then the
    /// result is normalised like any other path, so `%2e%2e` is `..` and stays inside.
    pub fn from_url_path(raw: &str) -> Result<Self> {
        let decoded = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| Error::invalid("path is not valid UTF-8 after percent-decoding"))?;
        VPath::parse(&decoded)
    }

    /// Resolves `rel` against this path. An absolute `rel` starts again from `/`;
    /// `..` never climbs above `/`.
    pub fn join(&self, rel: &str) -> Result<Self> {
        if rel.len() > MAX_PATH {
            return Err(Error::invalid(format!(
                "path is longer than {MAX_PATH} bytes"
            )));
        }
        let mut segs: Vec<&str> = if rel.starts_with(['/', '\\']) {
            Vec::new()
        } else {
            self.segments().collect()
        };
        for seg in rel.split(['/', '\\']) {
            match seg {
                "" | "." => {}
                ".." => {
                    segs.pop();
                }
                name => {
                    check_name(name)?;
                    segs.push(name);
                }
            }
        }
        let path = VPath::from_segments(&segs);
        if path.0.len() > MAX_PATH {
            return Err(Error::invalid(format!(
                "path is longer than {MAX_PATH} bytes"
            )));
        }
        Ok(path)
    }

    /// Appends `inner`, another virtual path, below this one: how a user's view is
    /// placed inside their home. Since `inner` is already normalised, the result
    /// can never leave `self`.
    pub fn nest(&self, inner: &VPath) -> VPath {
        if self.is_root() {
            return inner.clone();
        }
        if inner.is_root() {
            return self.clone();
        }
        VPath(format!("{}{}", self.0, inner.0))
    }

    fn from_segments(segs: &[&str]) -> Self {
        if segs.is_empty() {
            return VPath::root();
        }
        let mut s = String::with_capacity(segs.iter().map(|s| s.len() + 1).sum());
        for seg in segs {
            s.push('/');
            s.push_str(seg);
        }
        VPath(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// The last segment; `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        self.segments().last()
    }

    /// The parent directory; `None` for the root.
    pub fn parent(&self) -> Option<VPath> {
        if self.is_root() {
            return None;
        }
        let cut = self.0.rfind('/').unwrap_or(0);
        Some(if cut == 0 {
            VPath::root()
        } else {
            VPath(self.0[..cut].to_string())
        })
    }

    /// True if `self` is `base` or lies below it, compared segment by segment:
    /// `/a/share2` is not below `/a/share`.
    pub fn starts_with(&self, base: &VPath) -> bool {
        self.strip_prefix(base).is_some()
    }

    /// The part of `self` below `base`, without a leading slash (`""` when equal).
    pub fn strip_prefix(&self, base: &VPath) -> Option<&str> {
        if base.is_root() {
            return Some(&self.0[1..]);
        }
        let rest = self.0.strip_prefix(base.0.as_str())?;
        if rest.is_empty() {
            Some("")
        } else {
            rest.strip_prefix('/')
        }
    }

    /// `self` seen from inside `base` (a home or a share root), as an absolute path.
    pub fn relative_to(&self, base: &VPath) -> Option<VPath> {
        self.strip_prefix(base)
            .map(|rest| VPath(format!("/{rest}")))
    }
}

/// `true` when `name` is one plain path segment a client may give as a file
/// name: not empty, not `.` or `..`, no `/`, `\\` or control character (NUL
/// included), within the length limit. The one test every door uses for a
/// name that arrives on its own (SCP records, uploads, link URLs).
pub fn is_plain_name(name: &str) -> bool {
    !matches!(name, "" | "." | "..") && !name.contains(['/', '\\']) && check_name(name).is_ok()
}

fn check_name(name: &str) -> Result<()> {
    if name.len() > MAX_NAME {
        return Err(Error::invalid(format!(
            "name is longer than {MAX_NAME} bytes"
        )));
    }
    if name.chars().any(|c| c.is_control()) {
        // NUL truncates paths in C APIs; CR/LF would split FTP replies and log lines.
        return Err(Error::invalid("name contains a control character"));
    }
    Ok(())
}

impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VPath({:?})", self.0)
    }
}

impl AsRef<str> for VPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        VPath::parse(s).unwrap().0
    }

    #[test]
    fn normalises_separators_and_dots() {
        assert_eq!(p(""), "/");
        assert_eq!(p("/"), "/");
        assert_eq!(p("a//b/./c/"), "/a/b/c");
        assert_eq!(p("a\\b\\..\\c"), "/a/c");
        assert_eq!(p("/a/b/../../.."), "/");
    }

    #[test]
    fn dot_dot_never_climbs_above_root() {
        assert_eq!(p("../../etc/passwd"), "/etc/passwd");
        assert_eq!(p("/..\\..\\x"), "/x");
        let home = VPath::parse("/partners/acme").unwrap();
        let inner = VPath::parse("../../../other").unwrap();
        assert_eq!(home.nest(&inner).as_str(), "/partners/acme/other");
    }

    #[test]
    fn percent_is_literal_in_protocol_paths_and_decoded_in_urls() {
        assert_eq!(p("%2e%2e/x"), "/%2e%2e/x");
        let u = VPath::from_url_path("/a/%2e%2e/%2e%2e/%2e%2e/etc").unwrap();
        assert_eq!(u.as_str(), "/etc");
        let u = VPath::from_url_path("/a%2f..%2f..%2fb").unwrap();
        assert_eq!(u.as_str(), "/b");
        assert!(VPath::from_url_path("/a%00b").is_err());
        assert!(VPath::from_url_path("/%ff").is_err());
    }

    #[test]
    fn rejects_nul_control_and_overlong() {
        assert!(VPath::parse("a\0b").is_err());
        assert!(VPath::parse("a\r\nb").is_err());
        assert!(VPath::parse(&"x".repeat(MAX_NAME + 1)).is_err());
        assert!(VPath::parse(&"x".repeat(MAX_NAME)).is_ok());
        let deep = vec!["abcdefgh"; 600].join("/");
        assert!(VPath::parse(&deep).is_err());
    }

    #[test]
    fn prefix_checks_respect_segment_boundaries() {
        let share = VPath::parse("/a/share").unwrap();
        assert!(VPath::parse("/a/share/x").unwrap().starts_with(&share));
        assert!(VPath::parse("/a/share").unwrap().starts_with(&share));
        assert!(!VPath::parse("/a/share2").unwrap().starts_with(&share));
        assert_eq!(
            VPath::parse("/a/share/x/y")
                .unwrap()
                .relative_to(&share)
                .unwrap()
                .as_str(),
            "/x/y"
        );
        assert!(VPath::parse("/x").unwrap().starts_with(&VPath::root()));
    }

    #[test]
    fn parent_and_name() {
        let v = VPath::parse("/a/b").unwrap();
        assert_eq!(v.parent().unwrap().as_str(), "/a");
        assert_eq!(v.parent().unwrap().parent().unwrap(), VPath::root());
        assert_eq!(v.file_name(), Some("b"));
        assert_eq!(VPath::root().parent(), None);
    }
}
