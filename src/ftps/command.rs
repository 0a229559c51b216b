//! FTP command parsing: one line in, one [`Command`] out. Pure and unit-tested; the
//! control loop decides what each command means for the session.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(String),
    Auth(String),
    Pbsz(String),
    Prot(String),
    Ccc,
    Feat,
    Opts(String),
    Syst,
    Noop,
    Quit,
    Pwd,
    Cwd(String),
    Cdup,
    Type(String),
    Mode(String),
    Stru(String),
    Pasv,
    Epsv(Option<String>),
    Port(SocketAddr),
    Eprt(SocketAddr),
    List(ListArgs),
    Nlst(ListArgs),
    Mlsd(Option<String>),
    Mlst(Option<String>),
    Size(String),
    Mdtm(String),
    /// `MFMT time path` (draft-somers-ftp-mfxx): set the modification time.
    Mfmt(SystemTime, String),
    /// `SITE ...`: the rest of the line, verb first.
    Site(String),
    /// Store under a unique name (RFC 959); optional name to start from.
    Stou(Option<String>),
    Retr(String),
    Stor(String),
    Appe(String),
    Rest(u64),
    Dele(String),
    Mkd(String),
    Rmd(String),
    Rnfr(String),
    Rnto(String),
    Abor,
    Stat(Option<String>),
    Help,
    Allo,
    /// A verb this server does not implement.
    Unknown(String),
}

impl Command {
    /// The verb, for logs. Never the argument: PASS carries a password.
    pub fn verb(&self) -> &'static str {
        use Command::*;
        match self {
            User(_) => "USER",
            Pass(_) => "PASS",
            Auth(_) => "AUTH",
            Pbsz(_) => "PBSZ",
            Prot(_) => "PROT",
            Ccc => "CCC",
            Feat => "FEAT",
            Opts(_) => "OPTS",
            Syst => "SYST",
            Noop => "NOOP",
            Quit => "QUIT",
            Pwd => "PWD",
            Cwd(_) => "CWD",
            Cdup => "CDUP",
            Type(_) => "TYPE",
            Mode(_) => "MODE",
            Stru(_) => "STRU",
            Pasv => "PASV",
            Epsv(_) => "EPSV",
            Port(_) => "PORT",
            Eprt(_) => "EPRT",
            List(_) => "LIST",
            Nlst(_) => "NLST",
            Mlsd(_) => "MLSD",
            Mlst(_) => "MLST",
            Size(_) => "SIZE",
            Mdtm(_) => "MDTM",
            Mfmt(..) => "MFMT",
            Site(_) => "SITE",
            Stou(_) => "STOU",
            Retr(_) => "RETR",
            Stor(_) => "STOR",
            Appe(_) => "APPE",
            Rest(_) => "REST",
            Dele(_) => "DELE",
            Mkd(_) => "MKD",
            Rmd(_) => "RMD",
            Rnfr(_) => "RNFR",
            Rnto(_) => "RNTO",
            Abor => "ABOR",
            Stat(_) => "STAT",
            Help => "HELP",
            Allo => "ALLO",
            Unknown(_) => "unknown",
        }
    }
}

/// Parses one command line (without its CRLF). `Err` is the text of a 501 reply.
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (verb, arg) = match line.split_once(' ') {
        Some((v, a)) => (v, a),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    let need = |what: &str| -> Result<String, String> {
        if arg.is_empty() {
            Err(format!("{verb} needs {what}"))
        } else {
            Ok(arg.to_string())
        }
    };
    let opt = || (!arg.is_empty()).then(|| arg.to_string());
    use Command::*;
    Ok(match verb.as_str() {
        "USER" => User(need("a user name")?),
        "PASS" => Pass(arg.to_string()),
        "AUTH" => Auth(need("a mechanism")?.to_ascii_uppercase()),
        "PBSZ" => Pbsz(need("a size")?),
        "PROT" => Prot(need("a level")?.to_ascii_uppercase()),
        "CCC" => Ccc,
        "FEAT" => Feat,
        "OPTS" => Opts(need("an option")?),
        "SYST" => Syst,
        "NOOP" => Noop,
        "QUIT" => Quit,
        "PWD" | "XPWD" => Pwd,
        "CWD" | "XCWD" => Cwd(need("a directory")?),
        "CDUP" | "XCUP" => Cdup,
        "TYPE" => Type(need("a type")?.to_ascii_uppercase()),
        "MODE" => Mode(need("a mode")?.to_ascii_uppercase()),
        "STRU" => Stru(need("a structure")?.to_ascii_uppercase()),
        "PASV" => Pasv,
        "EPSV" => Epsv(opt()),
        "PORT" => Port(parse_port(arg)?),
        "EPRT" => Eprt(parse_eprt(arg)?),
        "LIST" => List(list_args(arg)),
        "NLST" => Nlst(list_args(arg)),
        "MLSD" => Mlsd(opt()),
        "MLST" => Mlst(opt()),
        "SIZE" => Size(need("a path")?),
        "MDTM" => Mdtm(need("a path")?),
        "MFMT" => {
            let bad = || "MFMT needs YYYYMMDDHHMMSS and a path".to_string();
            let (t, path) = arg.split_once(' ').ok_or_else(bad)?;
            let t = parse_time(t).ok_or_else(bad)?;
            if path.is_empty() {
                return Err(bad());
            }
            Mfmt(t, path.to_string())
        }
        "SITE" => Site(need("a command")?),
        "STOU" => Stou(opt()),
        "RETR" => Retr(need("a path")?),
        "STOR" => Stor(need("a path")?),
        "APPE" => Appe(need("a path")?),
        "REST" => Rest(
            arg.trim()
                .parse()
                .map_err(|_| "REST needs a byte offset".to_string())?,
        ),
        "DELE" => Dele(need("a path")?),
        "MKD" | "XMKD" => Mkd(need("a path")?),
        "RMD" | "XRMD" => Rmd(need("a path")?),
        "RNFR" => Rnfr(need("a path")?),
        "RNTO" => Rnto(need("a path")?),
        "ABOR" => Abor,
        "STAT" => Stat(opt()),
        "HELP" => Help,
        "ALLO" => Allo,
        _ => Unknown(verb),
    })
}

/// LIST and NLST arguments: `ls` flags, then a path (or a pattern).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListArgs {
    /// `-a` (or `-A`): names starting with `.` are listed too.
    pub all: bool,
    pub path: Option<String>,
}

/// `LIST -la dir` → `dir` with `all`; `LIST -la` → no path. Clients send `ls`
/// flags; names that start with `-` are rare enough for every server to treat
/// them this way.
fn list_args(arg: &str) -> ListArgs {
    let mut all = false;
    let rest: Vec<&str> = arg
        .split(' ')
        .skip_while(|w| {
            let flag = w.starts_with('-');
            if flag && w[1..].contains(['a', 'A']) {
                all = true;
            }
            flag || w.is_empty()
        })
        .collect();
    let path = rest.join(" ");
    ListArgs {
        all,
        path: (!path.is_empty()).then_some(path),
    }
}

/// `YYYYMMDDHHMMSS` (UTC; a fraction `.sss` is ignored), as MDTM and MFMT send.
pub fn parse_time(t: &str) -> Option<SystemTime> {
    let t = t.split_once('.').map_or(t, |(whole, _)| whole);
    if t.len() != 14 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, s) = (n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm; the inverse of `listing::civil_from_days`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `h1,h2,h3,h4,p1,p2` (RFC 959).
fn parse_port(arg: &str) -> Result<SocketAddr, String> {
    let nums: Vec<u8> = arg
        .split(',')
        .map(|n| n.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .map_err(|_| "PORT needs h1,h2,h3,h4,p1,p2".to_string())?;
    let [a, b, c, d, p1, p2] = nums[..] else {
        return Err("PORT needs h1,h2,h3,h4,p1,p2".into());
    };
    let port = u16::from(p1) << 8 | u16::from(p2);
    Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port))
}

/// `|1|192.0.2.1|6275|` or `|2|::1|6275|` (RFC 2428).
fn parse_eprt(arg: &str) -> Result<SocketAddr, String> {
    let bad = || "EPRT needs |proto|address|port|".to_string();
    let delim = arg.chars().next().ok_or_else(bad)?;
    let parts: Vec<&str> = arg.split(delim).collect();
    let [_, proto, addr, port, _] = parts[..] else {
        return Err(bad());
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    match (proto, &ip) {
        ("1", IpAddr::V4(_)) | ("2", IpAddr::V6(_)) => {}
        _ => return Err(bad()),
    }
    Ok(SocketAddr::new(ip, port.parse().map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive_and_keep_arguments() {
        assert_eq!(parse("user alice\r\n"), Ok(Command::User("alice".into())));
        assert_eq!(
            parse("STOR my file.txt"),
            Ok(Command::Stor("my file.txt".into()))
        );
        assert_eq!(parse("PASS"), Ok(Command::Pass(String::new())));
        assert_eq!(parse("xpwd"), Ok(Command::Pwd));
        assert_eq!(parse("REST 1048576"), Ok(Command::Rest(1_048_576)));
        assert!(parse("REST x").is_err());
        assert!(parse("RETR").is_err());
        assert_eq!(
            parse("SITE CHMOD 777 x"),
            Ok(Command::Site("CHMOD 777 x".into()))
        );
    }

    #[test]
    fn list_drops_ls_flags() {
        let args = |all, path: Option<&str>| ListArgs {
            all,
            path: path.map(String::from),
        };
        assert_eq!(parse("LIST -la"), Ok(Command::List(args(true, None))));
        assert_eq!(
            parse("LIST -a dir name"),
            Ok(Command::List(args(true, Some("dir name"))))
        );
        assert_eq!(
            parse("LIST -l d/*.txt"),
            Ok(Command::List(args(false, Some("d/*.txt"))))
        );
        assert_eq!(parse("NLST"), Ok(Command::Nlst(args(false, None))));
    }

    #[test]
    fn times_as_mdtm_sends_them() {
        let t = parse_time("20261122140509").unwrap();
        assert_eq!(crate::listing::compact(t), "20261122140509");
        assert_eq!(
            parse_time("20000229000000.123"),
            parse_time("20000229000000")
        );
        assert_eq!(
            crate::listing::compact(parse_time("19700101000000").unwrap()),
            "19700101000000"
        );
        assert!(parse_time("2026112214050").is_none());
        assert!(parse_time("20261322140509").is_none());
        assert!(parse_time("2026112214050x").is_none());
        assert!(matches!(
            parse("MFMT 20261122140509 a b.txt"),
            Ok(Command::Mfmt(_, p)) if p == "a b.txt"
        ));
        assert!(parse("MFMT 2026 x").is_err());
    }

    #[test]
    fn port_and_eprt() {
        assert_eq!(
            parse("PORT 127,0,0,1,4,1"),
            Ok(Command::Port("127.0.0.1:1025".parse().unwrap()))
        );
        assert!(parse("PORT 127,0,0,1,4").is_err());
        assert!(parse("PORT 300,0,0,1,4,1").is_err());
        assert_eq!(
            parse("EPRT |1|127.0.0.1|6275|"),
            Ok(Command::Eprt("127.0.0.1:6275".parse().unwrap()))
        );
        assert_eq!(
            parse("EPRT |2|::1|6275|"),
            Ok(Command::Eprt("[::1]:6275".parse().unwrap()))
        );
        assert!(parse("EPRT |1|::1|6275|").is_err());
    }

    #[test]
    fn verbs_never_show_arguments() {
        assert_eq!(parse("PASS hunter2").unwrap().verb(), "PASS");
    }
}
