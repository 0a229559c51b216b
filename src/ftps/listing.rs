//! What FTP listings show, as `ls` and vsftpd do: names sorted, dotfiles only with
//! `-a`, a pattern in the last segment (`dir/file*`) listing the matches, and the
//! MLSD/MLST facts a client chose with `OPTS MLST` (RFC 3659 §7.9). Pure; the
//! line formats are `crate::listing`'s.

use crate::vfs::Entry;

/// The facts wharf knows, in the order they are written.
pub const FACTS: [&str; 4] = ["type", "size", "modify", "perm"];

/// Whether a path segment is a pattern (`*`, `?` or `[`).
pub fn is_pattern(segment: &str) -> bool {
    segment.contains(['*', '?', '['])
}

/// Splits `dir/pat*` into the folder part as typed (`dir/`, or empty) and the
/// pattern, when the last segment is one.
pub fn split_pattern(path: &str) -> Option<(&str, &str)> {
    let (dir, last) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    is_pattern(last).then_some((dir, last))
}

/// Keeps the entries a listing shows and sorts them by name: dotfiles only with
/// `all` (a pattern starting with `.` matches them too), only names matching
/// `pattern` when there is one.
pub fn select(mut entries: Vec<Entry>, all: bool, pattern: Option<&str>) -> Vec<Entry> {
    entries.retain(|e| match pattern {
        Some(p) => crate::scp::proto::glob_match(p, e.name()) || (all && glob_all(p, e.name())),
        None => all || !e.name().starts_with('.'),
    });
    entries.sort_by(|a, b| a.name().cmp(b.name()));
    entries
}

/// A pattern matched against a dotfile as if the dot were explicit (`ls -a *`).
fn glob_all(pattern: &str, name: &str) -> bool {
    name.starts_with('.') && crate::scp::proto::glob_match(&format!(".{pattern}"), name)
}

/// `OPTS MLST type;size;`: the facts chosen among those wharf knows (unknown
/// ones are dropped, as RFC 3659 says), lower case, in wharf's order.
pub fn choose_facts(arg: &str) -> Vec<&'static str> {
    let asked: Vec<String> = arg
        .split(';')
        .map(|f| f.trim().to_ascii_lowercase())
        .filter(|f| !f.is_empty())
        .collect();
    FACTS
        .into_iter()
        .filter(|f| asked.iter().any(|a| a == f))
        .collect()
}

/// An MLSD/MLST line (`fact=value;...; name`) with only the `chosen` facts.
pub fn only_facts(line: &str, chosen: &[&str]) -> String {
    let Some((facts, name)) = line.split_once(' ') else {
        return line.to_string();
    };
    let kept: String = facts
        .split_terminator(';')
        .filter(|f| {
            let key = f.split('=').next().unwrap_or_default();
            chosen.iter().any(|c| key.eq_ignore_ascii_case(c))
        })
        .map(|f| format!("{f};"))
        .collect();
    format!("{kept} {name}")
}

/// FEAT's MLST line: every fact, the chosen ones marked with `*`.
pub fn feat_line(chosen: &[&str]) -> String {
    let facts: String = FACTS
        .iter()
        .map(|f| {
            let star = if chosen.contains(f) { "*" } else { "" };
            format!("{f}{star};")
        })
        .collect();
    format!("MLST {facts}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::VPath;

    fn file(name: &str) -> Entry {
        let mut e = Entry::dir(VPath::parse(&format!("/d/{name}")).unwrap());
        e.kind = crate::vfs::EntryKind::File;
        e
    }

    fn names(v: Vec<Entry>) -> Vec<String> {
        v.iter().map(|e| e.name().to_string()).collect()
    }

    #[test]
    fn sorted_dotfiles_hidden_patterns() {
        let all = || vec![file("b.txt"), file(".hidden"), file("a.log"), file("a.txt")];
        assert_eq!(
            names(select(all(), false, None)),
            ["a.log", "a.txt", "b.txt"]
        );
        assert_eq!(
            names(select(all(), true, None)),
            [".hidden", "a.log", "a.txt", "b.txt"]
        );
        assert_eq!(
            names(select(all(), false, Some("*.txt"))),
            ["a.txt", "b.txt"]
        );
        assert_eq!(names(select(all(), false, Some("a*"))), ["a.log", "a.txt"]);
        assert_eq!(names(select(all(), false, Some(".h*"))), [".hidden"]);
        assert_eq!(split_pattern("d/file*"), Some(("d/", "file*")));
        assert_eq!(split_pattern("*.txt"), Some(("", "*.txt")));
        assert_eq!(split_pattern("d/file"), None);
    }

    #[test]
    fn mlst_facts() {
        let chosen = choose_facts("Type;Size;unknown;");
        assert_eq!(chosen, ["type", "size"]);
        assert_eq!(
            only_facts(
                "type=file;size=3;modify=20261122140509;perm=radfw; a b",
                &chosen
            ),
            "type=file;size=3; a b"
        );
        assert_eq!(only_facts("type=file;size=3; x", &[]), " x");
        assert_eq!(feat_line(&chosen), "MLST type*;size*;modify;perm;");
    }
}
