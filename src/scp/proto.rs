//! The pure side of SCP: the exec command line (shell-style words, no shell ever
//! runs), scp's options, the records of the legacy protocol, and the mapping of a
//! client's path into the home. No I/O here; the driver is in `driver.rs`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::vfs::VPath;

/// Longest record line accepted from a client (a `C`/`D` header with its name).
pub const MAX_LINE: usize = 8 * 1024;

/// What an exec request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Scp(Scp),
    /// `md5sum`, `sha1sum` or `sha256sum` of these names (`-` or none: standard input).
    Checksum {
        algo: Algo,
        files: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Md5,
    Sha1,
    Sha256,
}

impl Algo {
    pub fn name(self) -> &'static str {
        match self {
            Algo::Md5 => "md5sum",
            Algo::Sha1 => "sha1sum",
            Algo::Sha256 => "sha256sum",
        }
    }
}

/// `scp -t TARGET` (the client uploads) or `scp -f PATH...` (it downloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scp {
    pub mode: Mode,
    pub recursive: bool,
    /// `-p`: the client sends (sink) or wants (source) `T` records.
    pub preserve: bool,
    /// `-d`: the target must be a directory (several sources).
    pub target_is_dir: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Sink(String),
    /// Paths, patterns (a shell's glob) among them.
    Source(Vec<Word>),
}

/// Parses an exec request. `None`: not a command this server runs (the caller
/// refuses it as before). `Some(Err)`: a command we run, but malformed.
pub fn parse_command(raw: &[u8]) -> Option<Result<Command>> {
    let text = std::str::from_utf8(raw).ok()?;
    let first = text.split_whitespace().next()?;
    let algo = match first {
        "scp" => None,
        "md5sum" => Some(Algo::Md5),
        "sha1sum" => Some(Algo::Sha1),
        "sha256sum" => Some(Algo::Sha256),
        _ => return None,
    };
    let words = match split(text) {
        Ok(w) => w,
        Err(e) => return Some(Err(e)),
    };
    Some(match algo {
        None => parse_scp(&words[1..]).map(Command::Scp),
        Some(algo) => parse_checksum(algo, &words[1..]),
    })
}

fn parse_checksum(algo: Algo, args: &[Word]) -> Result<Command> {
    let mut files = Vec::new();
    let mut options_done = false;
    for a in args.iter().map(|w| &w.text) {
        if !options_done && a == "--" {
            options_done = true;
        } else if !options_done && a.starts_with('-') && a != "-" {
            return Err(Error::invalid(format!(
                "{}: option {a} is not supported",
                algo.name()
            )));
        } else {
            files.push(a.clone());
        }
    }
    Ok(Command::Checksum { algo, files })
}

fn parse_scp(args: &[Word]) -> Result<Scp> {
    let (mut sink, mut source) = (false, false);
    let mut scp = Scp {
        mode: Mode::Source(Vec::new()),
        recursive: false,
        preserve: false,
        target_is_dir: false,
    };
    let mut paths = Vec::new();
    let mut options_done = false;
    for word in args {
        let a = &word.text;
        if options_done || !a.starts_with('-') || a == "-" {
            paths.push(word.clone());
            continue;
        }
        if a == "--" {
            options_done = true;
            continue;
        }
        for flag in a[1..].chars() {
            match flag {
                't' => sink = true,
                'f' => source = true,
                'r' => scp.recursive = true,
                'p' => scp.preserve = true,
                'd' => scp.target_is_dir = true,
                // Verbose and the protocol-version flags change nothing here.
                'v' | 'q' | '1' | '2' | '3' | '4' | '6' => {}
                other => {
                    return Err(Error::invalid(format!(
                        "scp: option -{other} is not supported"
                    )))
                }
            }
        }
    }
    scp.mode = match (sink, source) {
        (true, false) => match <[Word; 1]>::try_from(paths) {
            // The target is a name, never a pattern (OpenSSH's sink sees it after
            // a shell that finds nothing to expand in a new name).
            Ok([target]) => Mode::Sink(target.text),
            Err(_) => return Err(Error::invalid("scp: -t takes exactly one target")),
        },
        (false, true) if !paths.is_empty() => Mode::Source(paths),
        (false, true) => return Err(Error::invalid("scp: -f needs a path")),
        _ => {
            return Err(Error::invalid(
                "scp: only the remote side of scp runs here (-t or -f)",
            ))
        }
    };
    Ok(scp)
}

/// One word of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word as a shell passes it on (quotes removed).
    pub text: String,
    /// With an unquoted `*`, `?` or `[`: the pattern a shell would expand, with
    /// quoted special characters escaped by `\\`.
    pub pattern: Option<String>,
}

impl From<&str> for Word {
    fn from(s: &str) -> Self {
        Word {
            text: s.into(),
            pattern: None,
        }
    }
}

#[derive(Default)]
struct WordBuf {
    text: String,
    pattern: String,
    glob: bool,
}

impl WordBuf {
    /// A quoted or escaped character: itself, even in a pattern.
    fn lit(&mut self, c: char) {
        self.text.push(c);
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            self.pattern.push('\\');
        }
        self.pattern.push(c);
    }

    /// An unquoted character: a wildcard if it is one.
    fn wild(&mut self, c: char) {
        self.text.push(c);
        self.pattern.push(c);
        self.glob |= matches!(c, '*' | '?' | '[');
    }

    fn take(&mut self) -> Word {
        let w = std::mem::take(self);
        Word {
            text: w.text,
            pattern: w.glob.then_some(w.pattern),
        }
    }
}

/// The words' texts (quotes removed).
pub fn split_words(line: &str) -> Result<Vec<String>> {
    Ok(split(line)?.into_iter().map(|w| w.text).collect())
}

/// Shell pattern matching of one name: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`, and
/// `\\` escapes. As in a shell, a leading `.` is matched only explicitly.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') && !pattern.starts_with("\\.") {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches_from(&p, &n)
}

fn matches_from(p: &[char], n: &[char]) -> bool {
    // Iterative with one backtrack point for the last `*` (linear enough for
    // names of at most 255 bytes).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => class(&p[pi..], n[ni]),
            Some('\\') if pi + 1 < p.len() => (p[pi + 1] == n[ni]).then_some(2),
            Some(&c) => (c == n[ni]).then_some(1),
            None => None,
        };
        match step {
            Some(len) => {
                pi += len;
                ni += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class at the start of `p` (`[...]`); returns the
/// class's length in the pattern if it matches. An unclosed `[` is literal.
fn class(p: &[char], c: char) -> Option<usize> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while let Some(&x) = p.get(i) {
        if x == ']' && !first {
            return (hit != negate).then_some(i + 1);
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            hit |= (x..=p[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= x == c;
            i += 1;
        }
    }
    (c == '[').then_some(1)
}

/// Splits a command line into words as a POSIX shell would for simple commands:
/// blanks separate words; `'...'` is literal; `"..."` is literal but for `\"`,
/// `\\`, `\$`, `` \` ``; a backslash outside quotes takes the next character
/// literally. Anything that would make a shell do more than run one command
/// (`;`, `|`, `&`, redirections, `$`, backquotes, parentheses, newlines) is
/// refused rather than taken literally, since no shell runs here. An unquoted
/// `*`, `?` or `[` makes the word a pattern (see [`glob_match`]).
pub fn split(line: &str) -> Result<Vec<Word>> {
    let mut words = Vec::new();
    let mut word = WordBuf::default();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(word.take());
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.lit(c),
                        None => return Err(Error::invalid("unterminated quote in the command")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.lit(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.lit('\\');
                                word.lit(c);
                            }
                            None => {
                                return Err(Error::invalid("unterminated quote in the command"))
                            }
                        },
                        Some('$' | '`') => {
                            return Err(Error::invalid(
                                "shell expansions are not supported (no shell runs here)",
                            ))
                        }
                        Some(c) => word.lit(c),
                        None => return Err(Error::invalid("unterminated quote in the command")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.lit(c),
                    None => return Err(Error::invalid("trailing backslash in the command")),
                }
            }
            ';' | '&' | '|' | '<' | '>' | '(' | ')' | '$' | '`' | '\n' | '\r' => {
                return Err(Error::invalid(format!(
                    "'{}' is not supported: no shell runs here; quote names that hold it",
                    c.escape_default()
                )))
            }
            c => {
                in_word = true;
                word.wild(c);
            }
        }
    }
    if in_word {
        words.push(word.take());
    }
    Ok(words)
}

/// Maps a path from the command line into the user's view. `~` is the home, as a
/// shell would expand it; a relative path starts at the home. A path whose `..`
/// would climb above the home is refused (not clamped): the user asked for a
/// place they cannot reach, and must not get a file written somewhere else.
pub fn resolve(raw: &str) -> Result<VPath> {
    let rest = match raw {
        "" | "~" => ".",
        _ => raw.strip_prefix("~/").unwrap_or(raw),
    };
    let mut depth = 0usize;
    for seg in rest.split(['/', '\\']) {
        match seg {
            "" | "." => {}
            ".." if depth == 0 => {
                return Err(
                    Error::denied(format!("{raw}: leads out of the home directory"))
                        .with_public("Permission denied (outside your home directory)"),
                )
            }
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    VPath::parse(rest)
}

/// One record of the legacy protocol, as a client sends it to a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `C<mode> <size> <name>`: a file follows.
    File { mode: u32, size: u64, name: String },
    /// `D<mode> 0 <name>`: entering a directory.
    Dir { mode: u32, name: String },
    /// `E`: leaving the directory.
    End,
    /// `T<mtime> <usec> <atime> <usec>`: times of the next file or directory.
    Times(Times),
    /// `\x01message`: the other side's warning (it skips one item).
    Warning(String),
    /// `\x02message`: the other side's fatal error.
    Fatal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub mtime: SystemTime,
    pub atime: SystemTime,
}

/// Parses one record line, without its final `\n`.
pub fn parse_record(line: &[u8]) -> Result<Record> {
    let (&tag, rest) = line
        .split_first()
        .ok_or_else(|| Error::invalid("protocol error: empty record"))?;
    let rest = std::str::from_utf8(rest)
        .map_err(|_| Error::invalid("protocol error: the record is not UTF-8"))?;
    match tag {
        1 => Ok(Record::Warning(rest.to_string())),
        2 => Ok(Record::Fatal(rest.to_string())),
        b'E' if rest.is_empty() => Ok(Record::End),
        b'T' => parse_times(rest),
        b'C' | b'D' => {
            let bad = || Error::invalid("protocol error: malformed file record");
            let (mode, rest) = rest.split_once(' ').ok_or_else(bad)?;
            let (size, name) = rest.split_once(' ').ok_or_else(bad)?;
            if mode.len() != 4 {
                return Err(bad());
            }
            let mode = u32::from_str_radix(mode, 8).map_err(|_| bad())?;
            if !size.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let size: u64 = size.parse().map_err(|_| bad())?;
            check_record_name(name)?;
            let name = name.to_string();
            Ok(if tag == b'C' {
                Record::File { mode, size, name }
            } else {
                Record::Dir { mode, name }
            })
        }
        _ => Err(Error::invalid("protocol error: unknown record")),
    }
}

/// A name in a record is one path segment: never a path, never `.` or `..`
/// (OpenSSH's sink refuses the same, so a source cannot write elsewhere).
fn check_record_name(name: &str) -> Result<()> {
    if !crate::vfs::is_plain_name(name) {
        return Err(Error::invalid(format!(
            "protocol error: unexpected file name {name:?}"
        )));
    }
    Ok(())
}

fn parse_times(rest: &str) -> Result<Record> {
    let bad = || Error::invalid("protocol error: malformed time record");
    let n: Vec<u64> = rest
        .split(' ')
        .map(|w| w.parse::<u64>().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let [mtime, mus, atime, aus] = n[..] else {
        return Err(bad());
    };
    if mus > 999_999 || aus > 999_999 {
        return Err(bad());
    }
    let at = |s: u64, us: u64| {
        UNIX_EPOCH
            .checked_add(Duration::from_secs(s) + Duration::from_micros(us))
            .ok_or_else(bad)
    };
    Ok(Record::Times(Times {
        mtime: at(mtime, mus)?,
        atime: at(atime, aus)?,
    }))
}

/// `C0644 <size> <name>\n` (or `D0755 0 <name>\n`) for a source.
pub fn file_header(size: u64, name: &str) -> Vec<u8> {
    format!("C0644 {size} {name}\n").into_bytes()
}

pub fn dir_header(name: &str) -> Vec<u8> {
    format!("D0755 0 {name}\n").into_bytes()
}

/// `T<mtime> 0 <mtime> 0\n`: the access time is not kept, the modification
/// time stands for both.
pub fn times_header(mtime: SystemTime) -> Vec<u8> {
    let secs = mtime
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("T{secs} 0 {secs} 0\n").into_bytes()
}

/// An error record: `\x01scp: message\n` (the item is skipped) or, `fatal`,
/// `\x02...` (the transfer ends). Newlines in `message` are flattened.
pub fn error_record(message: &str, fatal: bool) -> Vec<u8> {
    let mut out = vec![if fatal { 2 } else { 1 }];
    out.extend_from_slice(b"scp: ");
    out.extend(message.bytes().map(|b| if b == b'\n' { b' ' } else { b }));
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scp(line: &str) -> Scp {
        match parse_command(line.as_bytes()).unwrap().unwrap() {
            Command::Scp(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn openssh_sink_and_source_lines() {
        let s = scp("scp -v -r -p -d -t -- /in/dir");
        assert!(s.recursive && s.preserve && s.target_is_dir);
        assert!(
            parse_command(b"scp -t -- /in/my dir").unwrap().is_err(),
            "two targets"
        );
        let s = scp("scp -r -t -- '/in/my dir'");
        assert_eq!(s.mode, Mode::Sink("/in/my dir".into()));
        assert!(!s.preserve);
        let s = scp(r#"scp -f a\ b "c \"d\"" 'e'\''f'"#);
        assert_eq!(
            s.mode,
            Mode::Source(vec!["a b".into(), "c \"d\"".into(), "e'f".into()])
        );
        let s = scp("scp -rp -f -- -dash");
        assert!(s.recursive && s.preserve);
        assert_eq!(s.mode, Mode::Source(vec!["-dash".into()]));
    }

    #[test]
    fn other_commands_and_bad_lines() {
        assert!(parse_command(b"ls -la").is_none());
        assert!(parse_command(b"scpx -t x").is_none());
        assert!(parse_command(b"").is_none());
        assert!(parse_command(b"\xff\xfe").is_none());
        for bad in [
            "scp -t x; rm -rf /",
            "scp -t $(id)",
            "scp -t `id`",
            "scp -t 'x",
            "scp -t \"x",
            "scp -t x | cat",
            "scp -t x > y",
            "scp -t x && ls",
            "scp -t x\nls",
            "scp -f",
            "scp -t a -f b",
            "scp x",
            "scp -S /bin/sh -t x",
            "md5sum -c list",
        ] {
            assert!(
                parse_command(bad.as_bytes()).unwrap().is_err(),
                "{bad:?} must be refused"
            );
        }
        // Quoted, those characters are ordinary.
        assert_eq!(scp("scp -t 'a;b|c$d'").mode, Mode::Sink("a;b|c$d".into()));
    }

    #[test]
    fn checksum_commands() {
        let c = parse_command(br"md5sum /a\ b.txt -- -x").unwrap().unwrap();
        assert_eq!(
            c,
            Command::Checksum {
                algo: Algo::Md5,
                files: vec!["/a b.txt".into(), "-x".into()]
            }
        );
        let c = parse_command(b"sha256sum").unwrap().unwrap();
        assert_eq!(
            c,
            Command::Checksum {
                algo: Algo::Sha256,
                files: vec![]
            }
        );
        assert!(matches!(
            parse_command(b"sha1sum -").unwrap().unwrap(),
            Command::Checksum { algo: Algo::Sha1, files } if files == ["-"]
        ));
    }

    #[test]
    fn globs_like_a_shell() {
        let s = scp(r"scp -f /d/*.txt '/d/*.bin' /d/a\*b /d/x'*'*");
        let Mode::Source(w) = s.mode else { panic!() };
        assert_eq!(w[0].pattern.as_deref(), Some("/d/*.txt"));
        assert_eq!(w[1], Word::from("/d/*.bin"), "quoted: literal");
        assert_eq!(w[2], Word::from("/d/a*b"), "escaped: literal");
        assert_eq!(w[3].text, "/d/x**");
        assert_eq!(w[3].pattern.as_deref(), Some("/d/x\\**"));
        for (p, n, want) in [
            ("*.txt", "a b.txt", true),
            ("*.txt", "a.txt.bak", false),
            ("*.txt", ".hidden.txt", false),
            (".*", ".hidden", true),
            ("f?.bin", "f1.bin", true),
            ("f?.bin", "f10.bin", false),
            ("f[0-4]*", "f3x", true),
            ("f[!0-4]*", "f3x", false),
            ("f[!0-4]*", "f9", true),
            ("[]a]", "]", true),
            ("a[", "a[", true),
            ("x\\**", "x*yz", true),
            ("x\\**", "xyz", false),
            ("*a*b*c*", "zzazzbzzczz", true),
            ("*a*b*c*", "zzazzczzbzz", false),
            ("*", "", true),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} ~ {n}");
        }
    }

    #[test]
    fn paths_stay_in_the_home_or_are_refused() {
        assert_eq!(resolve("").unwrap(), VPath::root());
        assert_eq!(resolve(".").unwrap(), VPath::root());
        assert_eq!(resolve("~").unwrap(), VPath::root());
        assert_eq!(resolve("~/a/b").unwrap().as_str(), "/a/b");
        assert_eq!(resolve("a/../b").unwrap().as_str(), "/b");
        assert_eq!(resolve("/x/y").unwrap().as_str(), "/x/y");
        for bad in ["../x", "/..", "a/../../x", "..\\x", "~/../bob", "./../x"] {
            let e = resolve(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::PermissionDenied, "{bad}");
            assert!(!crate::reply::text(&e).contains(bad));
        }
    }

    #[test]
    fn records() {
        assert_eq!(
            parse_record(b"C0644 20971520 big file.bin").unwrap(),
            Record::File {
                mode: 0o644,
                size: 20 << 20,
                name: "big file.bin".into()
            }
        );
        assert_eq!(
            parse_record(b"D0755 0 a dir").unwrap(),
            Record::Dir {
                mode: 0o755,
                name: "a dir".into()
            }
        );
        assert_eq!(parse_record(b"E").unwrap(), Record::End);
        let Record::Times(t) = parse_record(b"T1700000000 0 1700000001 5").unwrap() else {
            panic!()
        };
        assert_eq!(
            t.mtime.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_700_000_000
        );
        assert_eq!(
            parse_record(b"\x01scp: x: No such file").unwrap(),
            Record::Warning("scp: x: No such file".into())
        );
        assert!(matches!(
            parse_record(b"\x02boom").unwrap(),
            Record::Fatal(_)
        ));
        for bad in [
            &b""[..],
            b"C0644 10 ..",
            b"C0644 10 .",
            b"C0644 10 a/b",
            b"C0644 10 ../x",
            b"C0644 10 ",
            b"C0644 -1 x",
            b"C0644 +1 x",
            b"C99 1 x",
            b"C0648 1 x",
            b"C0644 99999999999999999999999 x",
            b"D0755 0 ..",
            b"Ex",
            b"T1 2 3",
            b"T1 2000000 3 0",
            b"X",
        ] {
            assert!(
                parse_record(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn headers() {
        assert_eq!(file_header(5, "a b"), b"C0644 5 a b\n");
        assert_eq!(dir_header("d"), b"D0755 0 d\n");
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(times_header(t), b"T1700000000 0 1700000000 0\n");
        assert_eq!(error_record("a\nb", false), b"\x01scp: a b\n");
        assert_eq!(error_record("x", true)[0], 2);
    }
}
