//! Figures of the disk under a local-disk (`fs`) path, for SFTP's
//! `statvfs@openssh.com`: `fstatvfs` of the place opened inside its jail (an
//! `O_PATH` descriptor, so nothing is read and a link out is refused as for
//! every other access).

use std::os::fd::AsRawFd;

use super::guard::{self, Place};
use super::local_ops::on_disk;
use super::VPath;
use crate::error::Result;

/// The fields of POSIX `struct statvfs`, as OpenSSH's extension sends them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsStats {
    pub bsize: u64,
    pub frsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub favail: u64,
    pub fsid: u64,
    pub flag: u64,
    pub namemax: u64,
}

pub(super) async fn statvfs(place: Place, path: &VPath) -> Result<FsStats> {
    on_disk(move || {
        let fd = place.open(libc::O_PATH)?;
        // SAFETY: fstatvfs fills the zeroed struct it is given.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // OpenSSH's flag bits: SSH2_FXE_STATVFS_ST_RDONLY 1, ST_NOSUID 2.
        let mut flag = 0;
        if st.f_flag & libc::ST_RDONLY != 0 {
            flag |= 1;
        }
        if st.f_flag & libc::ST_NOSUID != 0 {
            flag |= 2;
        }
        Ok(FsStats {
            bsize: st.f_bsize as u64,
            frsize: st.f_frsize as u64,
            blocks: st.f_blocks as u64,
            bfree: st.f_bfree as u64,
            bavail: st.f_bavail as u64,
            files: st.f_files as u64,
            ffree: st.f_ffree as u64,
            favail: st.f_favail as u64,
            fsid: st.f_fsid as u64,
            flag,
            namemax: st.f_namemax as u64,
        })
    })
    .await
    .map_err(|e| guard::error(e, path, "statvfs"))
}
