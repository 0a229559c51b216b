//! User permissions and allowed protocols, and the one function that decides whether
//! an operation is allowed.

use std::fmt;
use std::str::FromStr;

/// One permission a user can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Perm {
    /// See names and sizes: directory listings and stat.
    List = 1,
    /// Download file contents.
    Read = 2,
    /// Upload: create new files and overwrite existing ones.
    Write = 4,
    /// Remove files and empty directories.
    Delete = 8,
    Mkdir = 16,
    Rename = 32,
    /// Create links (send, share, request). Not a file operation: the link
    /// service checks it; administrators may always.
    Share = 64,
}

impl Perm {
    pub const ALL: [Perm; 7] = [
        Perm::List,
        Perm::Read,
        Perm::Write,
        Perm::Delete,
        Perm::Mkdir,
        Perm::Rename,
        Perm::Share,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Perm::List => "list",
            Perm::Read => "read",
            Perm::Write => "write",
            Perm::Delete => "delete",
            Perm::Mkdir => "mkdir",
            Perm::Rename => "rename",
            Perm::Share => "share",
        }
    }
}

/// A set of [`Perm`]s, written as a comma list (`list,read,write`) or `all`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct PermSet(u8);

impl PermSet {
    pub fn all() -> Self {
        Perm::ALL.into_iter().collect()
    }

    pub fn has(self, p: Perm) -> bool {
        self.0 & p as u8 != 0
    }
}

impl FromIterator<Perm> for PermSet {
    fn from_iter<I: IntoIterator<Item = Perm>>(iter: I) -> Self {
        PermSet(iter.into_iter().fold(0, |acc, p| acc | p as u8))
    }
}

impl FromStr for PermSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_list(s, &Perm::ALL, Perm::name, "permission").map(|v| v.into_iter().collect())
    }
}

impl fmt::Display for PermSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Perm::ALL
            .iter()
            .filter(|p| self.has(**p))
            .map(|p| p.name())
            .collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for PermSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PermSet({self})")
    }
}

/// How someone reaches wharf. Users are allowed a subset of the login protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Protocol {
    Sftp = 1,
    Ftps = 2,
    /// The link server and its staff pages.
    Http = 4,
    /// The local command line (administration, never a login).
    Cli = 8,
}

impl Protocol {
    /// Protocols a user account can be allowed to log in with.
    pub const LOGIN: [Protocol; 3] = [Protocol::Sftp, Protocol::Ftps, Protocol::Http];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Sftp => "sftp",
            Protocol::Ftps => "ftps",
            Protocol::Http => "http",
            Protocol::Cli => "cli",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ProtocolSet(u8);

impl ProtocolSet {
    pub fn all() -> Self {
        Protocol::LOGIN.into_iter().collect()
    }

    pub fn has(self, p: Protocol) -> bool {
        self.0 & p as u8 != 0
    }
}

impl FromIterator<Protocol> for ProtocolSet {
    fn from_iter<I: IntoIterator<Item = Protocol>>(iter: I) -> Self {
        ProtocolSet(iter.into_iter().fold(0, |acc, p| acc | p as u8))
    }
}

impl FromStr for ProtocolSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_list(s, &Protocol::LOGIN, Protocol::name, "protocol").map(|v| v.into_iter().collect())
    }
}

impl fmt::Display for ProtocolSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Protocol::LOGIN
            .iter()
            .filter(|p| self.has(**p))
            .map(|p| p.name())
            .collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for ProtocolSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProtocolSet({self})")
    }
}

fn parse_list<T: Copy>(
    s: &str,
    all: &[T],
    name: fn(T) -> &'static str,
    what: &str,
) -> Result<Vec<T>, String> {
    if s.trim() == "all" {
        return Ok(all.to_vec());
    }
    s.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| {
            all.iter().copied().find(|p| name(*p) == w).ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|p| name(*p)).collect();
                format!("unknown {what} {w:?} (known: {}, or all)", known.join(", "))
            })
        })
        .collect()
}

/// A file operation as the permission check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Stat,
    List,
    Read,
    /// Create a file or replace an existing one.
    Write,
    Delete,
    Mkdir,
    Rmdir,
    Rename,
    /// Change a file's permissions, times or size (SFTP SETSTAT).
    SetAttrs,
}

impl Op {
    pub fn needs(self) -> Perm {
        match self {
            Op::Stat | Op::List => Perm::List,
            Op::Read => Perm::Read,
            Op::Write | Op::SetAttrs => Perm::Write,
            Op::Delete | Op::Rmdir => Perm::Delete,
            Op::Mkdir => Perm::Mkdir,
            Op::Rename => Perm::Rename,
        }
    }
}

/// Decides `op` for a user holding `perms`: `Err` names the missing permission.
pub fn check(perms: PermSet, op: Op) -> Result<(), Perm> {
    let need = op.needs();
    if perms.has(need) {
        Ok(())
    } else {
        Err(need)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_op_needs_exactly_its_permission() {
        let ops = [
            (Op::Stat, Perm::List),
            (Op::List, Perm::List),
            (Op::Read, Perm::Read),
            (Op::Write, Perm::Write),
            (Op::Delete, Perm::Delete),
            (Op::Rmdir, Perm::Delete),
            (Op::Mkdir, Perm::Mkdir),
            (Op::Rename, Perm::Rename),
        ];
        for (op, perm) in ops {
            assert_eq!(check(PermSet::all(), op), Ok(()));
            let without: PermSet = Perm::ALL.into_iter().filter(|p| *p != perm).collect();
            assert_eq!(check(without, op), Err(perm), "{op:?} without {perm:?}");
            assert_eq!(check([perm].into_iter().collect(), op), Ok(()));
        }
        assert_eq!(check(PermSet::default(), Op::Read), Err(Perm::Read));
    }

    #[test]
    fn perm_sets_parse_and_print() {
        let p: PermSet = "read, list".parse().unwrap();
        assert_eq!(p.to_string(), "list,read");
        assert_eq!("all".parse::<PermSet>().unwrap(), PermSet::all());
        let err = "read,fly".parse::<PermSet>().unwrap_err();
        assert!(err.contains("\"fly\"") && err.contains("mkdir"), "{err}");
        assert_eq!("".parse::<PermSet>().unwrap(), PermSet::default());
    }

    #[test]
    fn protocol_sets_parse_and_print() {
        let p: ProtocolSet = "sftp".parse().unwrap();
        assert!(p.has(Protocol::Sftp) && !p.has(Protocol::Ftps));
        assert_eq!(ProtocolSet::all().to_string(), "sftp,ftps,http");
        assert!("cli".parse::<ProtocolSet>().is_err());
    }
}
