//! Directory listing formats shared by the front-ends: `ls -l` lines (SFTP long
//! names, FTP LIST), FTP MLSD/MLST facts, and the `YYYYMMDDHHMMSS` UTC timestamps
//! of MDTM.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::vfs::Entry;

/// One `ls -l` line, as clients parse it (a symlink as `lrwxrwxrwx`, as
/// OpenSSH's sftp-server writes its long names: without its text).
pub fn ls_line(entry: &Entry, owner: &str, now: SystemTime) -> String {
    let (kind, size) = match &entry.link {
        Some(text) => (mode_string('l', 0o777), text.len() as u64),
        None => {
            let default = if entry.is_dir() { 0o755 } else { 0o644 };
            let letter = if entry.is_dir() { 'd' } else { '-' };
            (
                mode_string(letter, entry.mode.unwrap_or(default)),
                entry.size,
            )
        }
    };
    let when = ls_time(entry.modified.unwrap_or(UNIX_EPOCH), now);
    format!(
        "{kind}    1 {owner:<8} {owner:<8} {size:>12} {when} {name}",
        name = entry.name()
    )
}

/// An FTP LIST line: [`ls_line`], and ` -> text` after a symlink's name, as
/// `ls -l` and vsftpd write it.
pub fn list_line(entry: &Entry, owner: &str, now: SystemTime) -> String {
    let line = ls_line(entry, owner, now);
    match &entry.link {
        Some(text) => format!("{line} -> {text}"),
        None => line,
    }
}

/// `drwxr-x---` for a directory of mode 0750 (special bits are not shown);
/// `letter` is the type column.
fn mode_string(letter: char, mode: u32) -> String {
    let mut out = String::with_capacity(10);
    out.push(letter);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    out
}

/// MLSD/MLST facts (RFC 3659) followed by a space and the name.
pub fn mlsx_line(entry: &Entry, name: &str) -> String {
    // A symlink's type as ProFTPD's mod_facts writes it (RFC 3659 leaves
    // OS-specific types to the server).
    let kind = match (&entry.link, entry.is_dir()) {
        (Some(_), _) => "OS.unix=symlink",
        (None, true) => "dir",
        (None, false) => "file",
    };
    let modify = entry
        .modified
        .map(|t| format!("modify={};", compact(t)))
        .unwrap_or_default();
    let perm = if entry.is_dir() {
        "perm=elcmfd;"
    } else {
        "perm=radfw;"
    };
    format!("type={kind};size={};{modify}{perm} {name}", entry.size)
}

/// `Nov 22 14:05` within the last six months, `Nov 22  2025` otherwise, as `ls -l`.
pub fn ls_time(t: SystemTime, now: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let recent = now
        .duration_since(t)
        .map(|age| age.as_secs() < 182 * 86_400)
        .unwrap_or(true);
    let month = MONTHS[(m - 1) as usize];
    if recent {
        let (hh, mm) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
        format!("{month} {d:>2} {hh:02}:{mm:02}")
    } else {
        format!("{month} {d:>2} {y:>5}")
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `20261122140500` (UTC), as MDTM and MLSD's `modify` fact.
pub fn compact(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_like_ls_and_mdtm() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
        let t = UNIX_EPOCH + Duration::from_secs(20_779 * 86_400 + 14 * 3600 + 5 * 60 + 9);
        assert_eq!(ls_time(t, t + Duration::from_secs(60)), "Nov 22 14:05");
        assert_eq!(
            ls_time(t, t + Duration::from_secs(400 * 86_400)),
            "Nov 22  2026"
        );
        assert_eq!(compact(t), "20261122140509");
    }
}
