//! The one resolver of fs paths: keeps every access on a local-disk connector
//! inside its jail (the user's home, a share's folder, a request's folder, or at
//! least the mount's root), whatever symlinks the disk holds.
//!
//! A [`Place`] is a path as a chain of directories: the connector's root, then
//! each jail relative to the one before, then the path below the innermost jail.
//! Each step is opened from the descriptor of the step before with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: the kernel follows symlinks
//! only while they stay below that descriptor, and the file is opened in the same
//! call, so a symlink swapped in meanwhile cannot redirect the access (there is no
//! check-then-use). Where openat2 is missing (ENOSYS) or filtered (EPERM), and for
//! links it refuses that may still stay inside (absolute links, `..` that climbs
//! and comes back; EXDEV), [`walk`] resolves the path itself one component at a
//! time with `openat(O_NOFOLLOW)` from descriptors it holds, reading each symlink
//! and resolving its text again inside the jail.
//!
//! Operations on a name itself (rename, unlink, mkdir, rmdir) resolve the parent
//! directory this way and act on the last name with the `*at` syscalls, which do
//! not follow a symlink there. Everything here blocks: it runs inside the blocking
//! tasks of the fs code, never on an async worker.

use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use libc::c_int;

use super::{Entry, EntryKind, VPath};
use crate::error::{Error, ErrorKind};

/// Symlinks followed in one resolution before it counts as a loop (as Linux).
const MAX_LINKS: usize = 40;

/// Set once openat2 answered ENOSYS: the kernel has none, so [`walk`] is used.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Where a virtual path lies on a local disk.
#[derive(Debug, Clone)]
pub(super) struct Place {
    /// The connector's canonical root.
    pub root: PathBuf,
    /// Jail directories, each relative to the one before (the first to `root`):
    /// the mount's root, then the jails of the Vfs that lie in this mount.
    pub jails: Vec<String>,
    /// The path below the innermost jail (`""`: the jail itself).
    pub rel: String,
}

impl Place {
    /// The innermost jail, opened `O_PATH`.
    pub fn jail(&self) -> io::Result<OwnedFd> {
        let root = CString::new(self.root.as_os_str().as_bytes())?;
        // SAFETY: a plain open of a NUL-terminated path; the result is checked.
        let raw = unsafe {
            libc::open(
                root.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        let mut fd = owned(raw)?;
        for jail in &self.jails {
            fd = beneath(fd.as_fd(), jail, libc::O_PATH | libc::O_DIRECTORY)?;
        }
        Ok(fd)
    }

    /// Opens what the path leads to with `flags`, following symlinks only while
    /// they stay inside the jail.
    pub fn open(&self, flags: c_int) -> io::Result<OwnedFd> {
        beneath(self.jail()?.as_fd(), &self.rel, flags)
    }

    /// What the path leads to (a symlink inside the jail is followed).
    pub fn stat(&self) -> io::Result<libc::stat> {
        fstat(self.open(libc::O_PATH)?.as_fd())
    }

    /// The directory holding the path, resolved inside the jail, and the last
    /// name: for operations on the name itself. The jail itself has no parent
    /// here (it cannot be renamed or removed through itself).
    pub fn parent(&self) -> io::Result<(OwnedFd, CString)> {
        let (dir, name) = self.rel.rsplit_once('/').unwrap_or(("", &self.rel));
        if name.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        let dir = beneath(self.jail()?.as_fd(), dir, libc::O_PATH | libc::O_DIRECTORY)?;
        Ok((dir, CString::new(name)?))
    }
}

/// Opens `rel` below `dir` with `flags` (plus `O_CLOEXEC`); symlinks are
/// followed only while they resolve below `dir`. `""` is `dir` itself.
pub(super) fn beneath(dir: BorrowedFd<'_>, rel: &str, flags: c_int) -> io::Result<OwnedFd> {
    let rel = if rel.is_empty() { "." } else { rel };
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let path = CString::new(rel)?;
        // EAGAIN: a rename elsewhere raced the lookup; the kernel asks for a retry.
        for _ in 0..3 {
            match openat2(dir, &path, flags) {
                Ok(fd) => return Ok(fd),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => continue,
                    Some(libc::ENOSYS) => {
                        NO_OPENAT2.store(true, Ordering::Relaxed);
                        break;
                    }
                    // Filtered (seccomp), or a link the kernel will not follow
                    // beneath `dir` that may still stay inside: walk decides.
                    Some(libc::EPERM) | Some(libc::EXDEV) => break,
                    _ => return Err(e),
                },
            }
        }
    }
    walk(dir, rel, flags)
}

/// `open_how` of linux/openat2.h (libc's is non-exhaustive, so it cannot be
/// built outside libc).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn openat2(dir: BorrowedFd<'_>, path: &CStr, flags: c_int) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 reads `how` (of the size given) and the NUL-terminated path.
    let raw = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    owned(raw as c_int)
}

/// Resolves `rel` below `dir` one component at a time, never letting the kernel
/// follow a symlink: each component is opened `O_PATH | O_NOFOLLOW` from the
/// directory descriptor before it; a symlink's text is read and resolved again
/// (relative from where it lies, absolute from the jail's real path, which it
/// must lie under); `..` goes back to the descriptor it came through and never
/// above `dir` (`../<dir's own name>` from `dir` is `dir`). The last component is opened with `flags | O_NOFOLLOW`, so a
/// symlink swapped in after it was looked at fails instead of being followed.
pub(super) fn walk(dir: BorrowedFd<'_>, rel: &str, flags: c_int) -> io::Result<OwnedFd> {
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut todo: VecDeque<Vec<u8>> = components(rel.as_bytes());
    let mut links = 0;
    loop {
        let top = stack.last().map_or(dir, |fd| fd.as_fd());
        let Some(name) = todo.pop_front() else {
            return openat(top, c".", flags);
        };
        if name == b".." {
            if stack.pop().is_none() {
                // Above the jail: only `../<the jail's own name>` comes back in.
                let real = real_path(dir)?;
                let back = real.file_name().map(|n| n.as_bytes());
                if back.is_none() || todo.front().map(Vec::as_slice) != back {
                    return Err(io::Error::from_raw_os_error(libc::EXDEV));
                }
                todo.pop_front();
            }
            continue;
        }
        let name = CString::new(name)?;
        let node = openat(top, &name, libc::O_PATH | libc::O_NOFOLLOW)?;
        let st = fstat(node.as_fd())?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = readlink(node.as_fd())?;
                let rest = if target.first() == Some(&b'/') {
                    let real = real_path(dir)?;
                    let below = Path::new(std::ffi::OsStr::from_bytes(&target))
                        .strip_prefix(&real)
                        .map_err(|_| io::Error::from_raw_os_error(libc::EXDEV))?;
                    stack.clear();
                    components(below.as_os_str().as_bytes())
                } else {
                    components(&target)
                };
                for c in rest.into_iter().rev() {
                    todo.push_front(c);
                }
            }
            _ if todo.is_empty() => {
                if flags & libc::O_PATH != 0 {
                    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
                    if flags & libc::O_DIRECTORY != 0 && !is_dir {
                        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
                    }
                    return Ok(node);
                }
                return openat(top, &name, flags | libc::O_NOFOLLOW);
            }
            libc::S_IFDIR => stack.push(node),
            _ => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        }
    }
}

/// The names of a relative path, without empty and `.` ones.
fn components(path: &[u8]) -> VecDeque<Vec<u8>> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: c_int) -> io::Result<OwnedFd> {
    // SAFETY: a plain openat of a NUL-terminated name; the result is checked.
    owned(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) })
}

fn owned(raw: c_int) -> io::Result<OwnedFd> {
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

pub(super) fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: fstat fills the zeroed struct it is given.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// `lstat` of `name` in `dir`: the name itself, a symlink not followed.
pub(super) fn lstat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: fstatat fills the zeroed struct it is given.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// The text of the symlink `fd` was opened on (`O_PATH | O_NOFOLLOW`).
fn readlink(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: readlinkat writes at most `buf.len()` bytes into `buf`.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Where `dir` is now, for absolute symlinks; without /proc they are refused.
fn real_path(dir: BorrowedFd<'_>) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .map_err(|_| io::Error::from_raw_os_error(libc::EXDEV))
}

/// The text of the symlink `name` in `dir` (not followed).
pub(super) fn readlink_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: readlinkat writes at most `buf.len()` bytes into `buf`.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// A symlink's text as it may be shown: a relative text as stored; an absolute
/// one (a disk path) as `/` and the path below the jail `jail`, which it must
/// lie under. `None` for an absolute text elsewhere (showing it would reveal the
/// disk's layout) and for a text that is not UTF-8.
pub(super) fn jail_text(jail: BorrowedFd<'_>, text: Vec<u8>) -> Option<String> {
    let text = String::from_utf8(text).ok()?;
    if !text.starts_with('/') {
        return Some(text);
    }
    let real = real_path(jail).ok()?;
    let below = Path::new(&text).strip_prefix(&real).ok()?;
    Some(format!("/{}", below.to_str()?))
}

/// A directory entry for `path` from its `stat`, if it is a file or a directory.
pub(super) fn entry(path: VPath, st: &libc::stat) -> Option<Entry> {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => EntryKind::Dir,
        libc::S_IFREG => EntryKind::File,
        _ => return None,
    };
    let modified = (st.st_mtime >= 0).then(|| {
        SystemTime::UNIX_EPOCH + Duration::new(st.st_mtime as u64, st.st_mtime_nsec as u32)
    });
    Some(Entry {
        path,
        kind,
        size: if kind == EntryKind::File {
            st.st_size as u64
        } else {
            0
        },
        modified,
        mode: Some(st.st_mode & 0o7777),
        link: None,
        etag: None,
    })
}

/// The wharf error for a failed fs step on `path`: a link leading out of the
/// jail (or looping) is a refusal; the text names only the user's path.
pub(super) fn error(e: io::Error, path: &VPath, what: &str) -> Error {
    match e.raw_os_error() {
        Some(libc::EXDEV) | Some(libc::ELOOP) => {
            Error::denied(format!("{path} leads outside the permitted folder"))
        }
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => {
            Error::not_found(format!("{path}: no such file or directory"))
        }
        Some(libc::EISDIR) => Error::new(ErrorKind::IsADirectory, format!("{path} is a directory")),
        Some(libc::EEXIST) => {
            Error::new(ErrorKind::AlreadyExists, format!("{path} already exists"))
        }
        Some(libc::ENOTEMPTY) => {
            Error::new(ErrorKind::DirectoryNotEmpty, format!("{path} is not empty"))
        }
        _ => Error::from(e).context(format!("{what} {path}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Disk {
        base: tempfile::TempDir,
        root: PathBuf,
    }

    /// `<tmp>/root` with alice's and bob's folders, links in and out, and a
    /// secret beside the root.
    fn disk() -> Disk {
        use std::os::unix::fs::symlink;
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        std::fs::create_dir_all(root.join("alice/sub")).unwrap();
        std::fs::create_dir_all(root.join("bob")).unwrap();
        std::fs::write(base.path().join("secret"), b"x").unwrap();
        std::fs::write(root.join("alice/sub/ok"), b"ok").unwrap();
        std::fs::write(root.join("bob/b"), b"bob").unwrap();
        symlink("../bob", root.join("alice/evil")).unwrap();
        symlink("../bob/b", root.join("alice/evil-file")).unwrap();
        symlink(base.path(), root.join("alice/abs-out")).unwrap();
        symlink("sub/ok", root.join("alice/in")).unwrap();
        symlink("../alice/sub/ok", root.join("alice/up-and-back")).unwrap();
        let root = root.canonicalize().unwrap();
        symlink(root.join("alice/sub/ok"), root.join("alice/abs-in")).unwrap();
        symlink("nothing", root.join("alice/dangling")).unwrap();
        symlink("loop", root.join("alice/loop")).unwrap();
        Disk { base, root }
    }

    fn read(fd: OwnedFd) -> Vec<u8> {
        std::fs::read(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
    }

    fn alice(d: &Disk, rel: &str) -> Place {
        Place {
            root: d.root.clone(),
            jails: vec!["alice".into()],
            rel: rel.into(),
        }
    }

    /// Both resolvers give the same answers: openat2 (with its fallback) and
    /// the walk alone, as on a kernel without openat2.
    #[test]
    fn the_jail_holds_with_openat2_and_with_the_walk() {
        let d = disk();
        for walk_only in [false, true] {
            let open = |rel: &str| {
                let jail = alice(&d, "").jail().unwrap();
                if walk_only {
                    walk(jail.as_fd(), rel, libc::O_RDONLY)
                } else {
                    beneath(jail.as_fd(), rel, libc::O_RDONLY)
                }
            };
            for ok in ["sub/ok", "in", "abs-in", "up-and-back", "sub/../sub/ok"] {
                assert_eq!(
                    read(open(ok).unwrap()),
                    b"ok",
                    "{ok} (walk only: {walk_only})"
                );
            }
            for out in [
                "evil/b",
                "evil-file",
                "abs-out/secret",
                "..",
                "../bob/b",
                "sub/../../bob/b",
                "loop",
            ] {
                let e = open(out).unwrap_err();
                assert!(
                    matches!(e.raw_os_error(), Some(libc::EXDEV) | Some(libc::ELOOP)),
                    "{out} (walk only: {walk_only}): {e}"
                );
            }
            assert_eq!(
                open("dangling").unwrap_err().raw_os_error(),
                Some(libc::ENOENT)
            );
        }
        let _ = &d.base;
    }

    #[test]
    fn a_jail_that_is_a_link_out_is_refused() {
        let d = disk();
        let share = Place {
            root: d.root.clone(),
            jails: vec!["alice".into(), "evil".into()],
            rel: "b".into(),
        };
        assert!(share.open(libc::O_RDONLY).is_err());
        // The name itself of a link out can still be looked at in its folder.
        let (dir, name) = alice(&d, "evil").parent().unwrap();
        let st = lstat_at(dir.as_fd(), &name).unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
        assert!(alice(&d, "").parent().is_err());
    }
}
