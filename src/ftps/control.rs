//! One FTP control connection: reads commands, answers them, and runs transfers.
//!
//! Every file operation goes through the Session layer (permissions, home, audit);
//! this module only speaks FTP. A transfer runs in its own task so the control
//! connection stays responsive: ABOR cancels it, and an upload that is cancelled or
//! cut off is discarded, never committed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::BytesMut;
use futures::TryStreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::command::{parse, Command};
use super::data::{self, DataStream, Plan};
use super::FtpsContext;
use crate::error::{Error, ErrorKind, Result};
use crate::listing;
use crate::net::Ticket;
use crate::policy::Protocol;
use crate::session::Session;
use crate::vfs::VPath;

/// Longest command line accepted (RFC 959 lines are short; paths are < 4 KiB).
const MAX_LINE: u64 = 8192;
/// Size of one read from an upload's data connection.
const CHUNK: usize = 256 * 1024;

/// The control stream: plain until AUTH TLS, or TLS from the start (implicit).
enum Transport {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<tokio_rustls::server::TlsStream<TcpStream>>>),
    Closed,
}

/// How a transfer ended, for the reply.
type Outcome = Result<String>;

pub struct Control {
    ctx: Arc<FtpsContext>,
    peer: SocketAddr,
    local: SocketAddr,
    conn: Transport,
    line: Vec<u8>,
    /// PBSZ then PROT P make data connections TLS.
    protect_data: bool,
    user: Option<String>,
    session: Option<Arc<Session>>,
    cwd: VPath,
    rest: u64,
    rename_from: Option<VPath>,
    plan: Plan,
    transfer: Option<JoinHandle<Outcome>>,
    /// This connection at the listeners' gate: told when the login succeeds.
    ticket: Ticket,
}

impl Control {
    pub fn new(ctx: Arc<FtpsContext>, tcp: TcpStream, peer: SocketAddr, ticket: Ticket) -> Self {
        let local = tcp.local_addr().unwrap_or(peer);
        Control {
            ticket,
            ctx,
            peer,
            local,
            conn: Transport::Plain(BufReader::new(tcp)),
            line: Vec::new(),
            protect_data: false,
            user: None,
            session: None,
            cwd: VPath::root(),
            rest: 0,
            rename_from: None,
            plan: Plan::None,
            transfer: None,
        }
    }

    fn tls(&self) -> bool {
        matches!(self.conn, Transport::Tls(_))
    }

    async fn reply(&mut self, code: u16, text: &str) {
        self.write(format!("{code} {text}\r\n").as_bytes()).await;
    }

    /// A multi-line reply: `code-first`, the lines (indented), `code last`.
    async fn reply_lines(&mut self, code: u16, first: &str, lines: &[String], last: &str) {
        let mut out = format!("{code}-{first}\r\n");
        for l in lines {
            out.push(' ');
            out.push_str(l);
            out.push_str("\r\n");
        }
        out.push_str(&format!("{code} {last}\r\n"));
        self.write(out.as_bytes()).await;
    }

    async fn write(&mut self, bytes: &[u8]) {
        let res = match &mut self.conn {
            Transport::Plain(s) => s.write_all(bytes).await,
            Transport::Tls(s) => s.write_all(bytes).await,
            Transport::Closed => return,
        };
        if res.is_err() {
            self.conn = Transport::Closed;
        }
    }

    /// Serves the connection. `implicit`: TLS starts before the greeting.
    pub async fn run(mut self, implicit: bool) {
        if let Some(left) = self.ctx.auth.defender().banned(self.peer.ip()) {
            if !implicit {
                self.reply(
                    421,
                    &format!("Too many failed logins; try again in {} s", left.as_secs()),
                )
                .await;
            }
            return;
        }
        if implicit {
            if !self.start_tls().await {
                return;
            }
            // Implicit FTPS is TLS from the first byte: data connections too, unless
            // the client asks otherwise (some clients never send PROT here).
            self.protect_data = true;
        }
        self.reply(220, "wharf FTPS ready").await;
        loop {
            let idle = self.ctx.config.idle_timeout;
            let input = if let Some(task) = self.transfer.as_mut() {
                tokio::select! {
                    done = task => {
                        self.transfer = None;
                        let outcome = done.unwrap_or_else(|e| Err(Error::internal("transfer task failed").with_source(e)));
                        self.finish_transfer(outcome).await;
                        continue;
                    }
                    input = read_input(&mut self.conn, &mut self.line, idle) => input,
                }
            } else {
                read_input(&mut self.conn, &mut self.line, idle).await
            };
            let line = match input {
                Input::Line(line) => line,
                Input::Closed => break,
                Input::TooLong => {
                    self.reply(500, "Line too long").await;
                    break;
                }
                Input::Idle => {
                    self.reply(421, "Idle timeout; closing the connection")
                        .await;
                    break;
                }
            };
            if matches!(self.conn, Transport::Closed) {
                break;
            }
            let command = match parse(&line) {
                Ok(c) => c,
                Err(msg) => {
                    self.reply(501, &msg).await;
                    continue;
                }
            };
            tracing::debug!(peer = %self.peer, verb = command.verb(), "FTP command");
            if !self.handle(command).await {
                break;
            }
        }
        if let Some(task) = self.transfer.take() {
            task.abort();
        }
    }

    async fn start_tls(&mut self) -> bool {
        let Transport::Plain(reader) = std::mem::replace(&mut self.conn, Transport::Closed) else {
            return false;
        };
        let tcp = reader.into_inner();
        match tokio::time::timeout(data::CONNECT_TIMEOUT, self.ctx.acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                self.conn = Transport::Tls(Box::new(BufReader::new(tls)));
                true
            }
            _ => {
                tracing::debug!(peer = %self.peer, "TLS handshake failed on the control connection");
                false
            }
        }
    }

    /// Handles one command; `false` ends the connection.
    async fn handle(&mut self, command: Command) -> bool {
        use Command::*;
        if self.transfer.is_some() && !matches!(command, Abor | Stat(None) | Noop | Quit) {
            self.reply(450, "A transfer is in progress; wait for it or send ABOR")
                .await;
            return true;
        }
        let logged_in = self.session.is_some();
        let needs_login = !matches!(
            command,
            User(_)
                | Pass(_)
                | Auth(_)
                | Pbsz(_)
                | Prot(_)
                | Ccc
                | Feat
                | Opts(_)
                | Syst
                | Noop
                | Quit
                | Help
        );
        if needs_login && !logged_in {
            self.reply(530, "Please log in with USER and PASS").await;
            return true;
        }
        let cmd_verb = command.verb();
        match command {
            Auth(mech) if mech == "TLS" || mech == "SSL" || mech == "TLS-C" => {
                if self.tls() {
                    self.reply(503, "TLS is already on").await;
                } else {
                    self.reply(234, "AUTH TLS successful").await;
                    return self.start_tls().await;
                }
            }
            Auth(_) => self.reply(504, "Only AUTH TLS is supported").await,
            Pbsz(_) if !self.tls() => self.reply(503, "PBSZ needs AUTH TLS first").await,
            Pbsz(_) => self.reply(200, "PBSZ=0").await,
            Prot(level) => self.prot(&level).await,
            Ccc => {
                self.reply(
                    534,
                    "CCC is refused: the control connection stays encrypted",
                )
                .await
            }
            User(name) => {
                if self.ctx.require_tls && !self.tls() {
                    self.reply(530, "This server requires TLS: send AUTH TLS first")
                        .await;
                } else if logged_in {
                    self.reply(503, "Already logged in").await;
                } else {
                    self.user = Some(name);
                    self.reply(331, "Password required").await;
                }
            }
            Pass(password) => return self.login(&password).await,
            Feat => {
                let lines = [
                    "AUTH TLS",
                    "PBSZ",
                    "PROT",
                    "EPSV",
                    "EPRT",
                    "MDTM",
                    "SIZE",
                    "REST STREAM",
                    "MLST type*;size*;modify*;perm*;",
                    "UTF8",
                    "TVFS",
                ]
                .map(String::from);
                self.reply_lines(211, "Features:", &lines, "End").await;
            }
            Opts(o) if o.eq_ignore_ascii_case("UTF8 ON") => {
                self.reply(200, "UTF8 is always on").await
            }
            Opts(_) => self.reply(501, "Unknown option").await,
            Syst => self.reply(215, "UNIX Type: L8").await,
            Noop => self.reply(200, "OK").await,
            Allo => self.reply(202, "No storage allocation necessary").await,
            Help => {
                let lines = [
                    "USER PASS AUTH PBSZ PROT FEAT OPTS SYST NOOP QUIT PWD CWD CDUP TYPE MODE STRU",
                    "PASV EPSV PORT EPRT LIST NLST MLSD MLST SIZE MDTM RETR STOR APPE REST",
                    "DELE MKD RMD RNFR RNTO ABOR STAT HELP ALLO",
                ]
                .map(String::from);
                self.reply_lines(214, "Commands:", &lines, "End").await;
            }
            Quit => {
                self.reply(221, "Goodbye").await;
                return false;
            }
            Type(t) if matches!(t.as_str(), "A" | "I" | "A N" | "L 8") => {
                // Files are sent as they are stored (no line-end rewriting), as vsftpd does by default.
                self.reply(200, &format!("Type set to {t}")).await
            }
            Type(_) => self.reply(504, "Type not supported").await,
            Mode(m) if m == "S" => self.reply(200, "Mode S").await,
            Mode(_) => self.reply(504, "Only stream mode").await,
            Stru(s) if s == "F" => self.reply(200, "Structure F").await,
            Stru(_) => self.reply(504, "Only file structure").await,
            Pwd => {
                let pwd = self.cwd.to_string().replace('"', "\"\"");
                self.reply(257, &format!("\"{pwd}\" is the current directory"))
                    .await
            }
            Cwd(path) => self.cwd(&path).await,
            Cdup => self.cwd("..").await,
            Pasv => self.passive(false).await,
            Epsv(Some(a)) if a.eq_ignore_ascii_case("ALL") => self.reply(200, "EPSV ALL ok").await,
            Epsv(_) => self.passive(true).await,
            Port(addr) | Eprt(addr) => {
                if data::active_allowed(addr, self.peer.ip()) {
                    self.plan = Plan::Active(addr);
                    self.reply(200, "Active mode set").await;
                } else {
                    self.reply(500, "Illegal PORT: data connections go only to your own address, on a port above 1023").await;
                }
            }
            Rest(n) => {
                self.rest = n;
                self.reply(350, &format!("Restarting at {n}; send RETR or STOR"))
                    .await;
            }
            List(p) | Nlst(p) | Mlsd(p) => {
                let style = match cmd_verb {
                    "NLST" => Style::Names,
                    "MLSD" => Style::Mlsd,
                    _ => Style::Ls,
                };
                if let Some(path) = self.path_or_reply(p.as_deref()).await {
                    self.start(Job::List(path, style)).await
                }
            }
            Retr(p) => {
                if let Some(path) = self.path_or_reply(Some(&p)).await {
                    self.start(Job::Retr(path)).await
                }
            }
            Stor(p) | Appe(p) => {
                if let Some(path) = self.path_or_reply(Some(&p)).await {
                    self.start(Job::Stor(path, cmd_verb == "APPE")).await
                }
            }
            Mlst(p) => {
                let Some(path) = self.path_or_reply(p.as_deref()).await else {
                    return self.open();
                };
                match self.session().stat(&path).await {
                    Ok(e) => {
                        let line = listing::mlsx_line(&e, path.as_str());
                        self.reply_lines(250, "Listing", &[line], "End").await
                    }
                    Err(e) => self.error(&e).await,
                }
            }
            Size(p) => {
                let Some(path) = self.path_or_reply(Some(&p)).await else {
                    return self.open();
                };
                match self.session().stat(&path).await {
                    Ok(e) if e.is_dir() => self.reply(550, "Not a file").await,
                    Ok(e) => self.reply(213, &e.size.to_string()).await,
                    Err(e) => self.error(&e).await,
                }
            }
            Mdtm(p) => {
                let Some(path) = self.path_or_reply(Some(&p)).await else {
                    return self.open();
                };
                match self.session().stat(&path).await {
                    Ok(e) => {
                        let t = listing::compact(e.modified.unwrap_or(SystemTime::UNIX_EPOCH));
                        self.reply(213, &t).await
                    }
                    Err(e) => self.error(&e).await,
                }
            }
            Dele(p) => {
                if let Some(path) = self.path_or_reply(Some(&p)).await {
                    let res = self.session().delete(&path).await;
                    self.done(res, 250, "File deleted").await
                }
            }
            Mkd(p) => {
                let Some(path) = self.path_or_reply(Some(&p)).await else {
                    return self.open();
                };
                let res = self.session().mkdir(&path).await;
                let text = format!("\"{}\" created", path.as_str().replace('"', "\"\""));
                self.done(res, 257, &text).await
            }
            Rmd(p) => {
                if let Some(path) = self.path_or_reply(Some(&p)).await {
                    let res = self.session().rmdir(&path).await;
                    self.done(res, 250, "Directory removed").await
                }
            }
            Rnfr(p) => {
                // A new RNFR forgets the old one, even when its own path is refused.
                self.rename_from = None;
                let Some(path) = self.path_or_reply(Some(&p)).await else {
                    return self.open();
                };
                match self.session().stat(&path).await {
                    Ok(_) => {
                        self.rename_from = Some(path);
                        self.reply(350, "Ready for RNTO").await
                    }
                    Err(e) => self.error(&e).await,
                }
            }
            Rnto(p) => match self.rename_from.take() {
                None => self.reply(503, "RNFR first").await,
                Some(from) => {
                    if let Some(to) = self.path_or_reply(Some(&p)).await {
                        let res = self.session().rename(&from, &to, true).await;
                        self.done(res, 250, "Renamed").await
                    }
                }
            },
            Abor => match self.transfer.take() {
                Some(task) => {
                    task.abort();
                    self.reply(426, "Transfer aborted; nothing was kept of an upload")
                        .await;
                    self.reply(226, "ABOR successful").await;
                }
                None => self.reply(225, "No transfer to abort").await,
            },
            Stat(None) => {
                let user = self.user.clone().unwrap_or_else(|| "-".into());
                let lines = vec![
                    format!("Connected from {}", self.peer.ip()),
                    format!("Logged in as {user}"),
                    format!(
                        "TLS on control: {}, on data: {}",
                        self.tls(),
                        self.protect_data
                    ),
                    format!("Transfer in progress: {}", self.transfer.is_some()),
                ];
                self.reply_lines(211, "wharf FTPS status", &lines, "End of status")
                    .await
            }
            Stat(Some(p)) => {
                let Some(path) = self.path_or_reply(Some(&p)).await else {
                    return self.open();
                };
                match self.listing_lines(&path, Style::Ls).await {
                    Ok(lines) => {
                        self.reply_lines(213, "Status follows", &lines, "End of status")
                            .await
                    }
                    Err(e) => self.error(&e).await,
                }
            }
            Unknown(verb) => self.reply(502, &format!("{verb} is not implemented")).await,
        }
        !matches!(self.conn, Transport::Closed)
    }

    async fn prot(&mut self, level: &str) {
        match level {
            "P" if self.tls() => {
                self.protect_data = true;
                self.reply(200, "Data connections will use TLS").await
            }
            "P" => self.reply(503, "PROT P needs AUTH TLS first").await,
            "C" if self.ctx.require_tls => {
                self.reply(
                    534,
                    "Unprotected data connections are not allowed: use PROT P",
                )
                .await
            }
            "C" => {
                self.protect_data = false;
                self.reply(200, "Data connections will be plain").await
            }
            _ => self.reply(504, "Only PROT P (or C where allowed)").await,
        }
    }

    async fn login(&mut self, password: &str) -> bool {
        let Some(name) = self.user.take() else {
            self.reply(503, "Send USER first").await;
            return true;
        };
        if self.session.is_some() {
            self.reply(503, "Already logged in").await;
            return true;
        }
        match self
            .ctx
            .auth
            .password(Protocol::Ftps, self.peer, &name, password)
            .await
        {
            Ok(user) => {
                // Logged in: the grace time stops, even if the home is slow to make.
                self.ticket.authenticated();
                let session = Session::new(
                    user,
                    Protocol::Ftps,
                    Some(self.peer),
                    self.ctx.vfs.clone(),
                    self.ctx.audit.clone(),
                );
                if let Err(e) = session.ensure_home().await {
                    tracing::error!(user = %name, error = %e, "cannot prepare the home directory");
                }
                self.session = Some(Arc::new(session));
                self.user = Some(name);
                self.reply(230, "Logged in").await;
                true
            }
            Err(_) => {
                self.reply(530, "Login incorrect").await;
                if self.ctx.auth.defender().banned(self.peer.ip()).is_some() {
                    self.reply(421, "Too many failed logins; closing").await;
                    return false;
                }
                true
            }
        }
    }

    fn session(&self) -> &Arc<Session> {
        self.session.as_ref().expect("checked by the login gate")
    }

    /// A client path resolved against the current directory (inside the home);
    /// no path means the current directory. An invalid path (a NUL or another
    /// control character, an overlong name) is answered with 553 and gives
    /// `None`: it never stands for the current directory.
    async fn path_or_reply(&mut self, p: Option<&str>) -> Option<VPath> {
        let Some(p) = p else {
            return Some(self.cwd.clone());
        };
        match self.cwd.join(p) {
            Ok(path) => Some(path),
            Err(e) => {
                self.error(&e).await;
                None
            }
        }
    }

    /// Whether the control connection is still open (the command loop goes on).
    fn open(&self) -> bool {
        !matches!(self.conn, Transport::Closed)
    }

    async fn cwd(&mut self, p: &str) {
        let target = match self.cwd.join(p) {
            Ok(t) => t,
            Err(e) => return self.error(&e).await,
        };
        match self.session().stat(&target).await {
            Ok(e) if e.is_dir() => {
                self.cwd = target;
                self.reply(250, &format!("Directory is now {}", self.cwd))
                    .await
            }
            Ok(_) => self.reply(550, "Not a directory").await,
            Err(e) => self.error(&e).await,
        }
    }

    async fn passive(&mut self, extended: bool) {
        let bind_ip = self.local.ip();
        let listener = match data::listen(bind_ip, self.ctx.config.passive_ports.as_ref()).await {
            Ok(l) => l,
            Err(e) => return self.error(&e).await,
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        self.plan = Plan::Passive(listener);
        if extended {
            self.reply(229, &format!("Entering Extended Passive Mode (|||{port}|)"))
                .await;
            return;
        }
        let ip = self.ctx.config.passive_address.unwrap_or(bind_ip);
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                let text = format!(
                    "Entering Passive Mode ({a},{b},{c},{d},{},{})",
                    port >> 8,
                    port & 0xff
                );
                self.reply(227, &text).await
            }
            IpAddr::V6(_) => self.reply(522, "PASV is IPv4 only; use EPSV").await,
        }
    }

    async fn done(&mut self, res: Result<()>, code: u16, text: &str) {
        match res {
            Ok(()) => self.reply(code, text).await,
            Err(e) => self.error(&e).await,
        }
    }

    async fn error(&mut self, e: &Error) {
        let (code, text) = reply_for(e);
        self.reply(code, &text).await;
    }

    async fn listing_lines(&self, dir: &VPath, style: Style) -> Result<Vec<String>> {
        let session = self.session();
        let entry = session.stat(dir).await?;
        if !entry.is_dir() {
            return Ok(vec![style.line(&entry, &session.user().name)]);
        }
        let owner = session.user().name.clone();
        session
            .list(dir)
            .await?
            .map_ok(|e| style.line(&e, &owner))
            .try_collect()
            .await
    }

    /// Checks a transfer can start, replies 150, and runs it in a task.
    async fn start(&mut self, job: Job) {
        let rest = std::mem::take(&mut self.rest);
        if self.ctx.require_tls && !self.protect_data {
            self.plan = Plan::None;
            return self
                .reply(
                    521,
                    "Data connections must be protected: send PBSZ 0 and PROT P",
                )
                .await;
        }
        let plan = std::mem::replace(&mut self.plan, Plan::None);
        if matches!(plan, Plan::None) {
            return self.reply(425, "Use PASV, EPSV, PORT or EPRT first").await;
        }
        let session = self.session().clone();
        // Open the source or target first, so a refusal is a clear reply and no
        // data connection is wasted.
        let prepared = match &job {
            Job::Retr(path) => session.open_read(path).await.map(Prepared::Download),
            Job::Stor(path, append) => {
                let keep = if *append {
                    match session.stat(path).await {
                        Ok(e) => Ok(e.size),
                        Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
                        Err(e) => Err(e),
                    }
                } else {
                    Ok(rest)
                };
                match keep {
                    Ok(keep) => session
                        .create_keeping(path, keep)
                        .await
                        .map(Prepared::Upload),
                    Err(e) => Err(e),
                }
            }
            Job::List(path, style) => self.listing_lines(path, *style).await.map(Prepared::Lines),
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => return self.error(&e).await,
        };
        self.reply(150, "Opening data connection").await;
        let tls = self.protect_data.then(|| self.ctx.acceptor.clone());
        let client = self.peer.ip();
        self.transfer = Some(tokio::spawn(async move {
            let stream = data::open(plan, client, tls.as_ref()).await?;
            prepared.run(stream, rest).await
        }));
    }

    async fn finish_transfer(&mut self, outcome: Outcome) {
        match outcome {
            Ok(text) => self.reply(226, &text).await,
            Err(e) => {
                crate::reply::log("ftps", &e);
                let code = match e.kind() {
                    ErrorKind::Unavailable => 425,
                    ErrorKind::PermissionDenied | ErrorKind::NotFound => 550,
                    ErrorKind::StorageFull => 452,
                    _ => 426,
                };
                let text = crate::reply::text(&e);
                self.reply(code, &format!("Transfer failed: {text}")).await
            }
        }
    }
}

/// What the client sent next.
enum Input {
    Line(String),
    Closed,
    TooLong,
    Idle,
}

/// Reads one command line. Cancel-safe for the main loop's select: a partly read
/// line stays in `buf` and the next call continues it; `buf` is emptied only when
/// a whole line is taken.
async fn read_input(conn: &mut Transport, buf: &mut Vec<u8>, idle: std::time::Duration) -> Input {
    let limit = MAX_LINE.saturating_sub(buf.len() as u64);
    let read = async {
        match conn {
            Transport::Plain(s) => s.take(limit).read_until(b'\n', buf).await,
            Transport::Tls(s) => (&mut **s).take(limit).read_until(b'\n', buf).await,
            Transport::Closed => Ok(0),
        }
    };
    match tokio::time::timeout(idle, read).await {
        Err(_) => Input::Idle,
        Ok(Err(_)) | Ok(Ok(0)) => Input::Closed,
        Ok(Ok(_)) if buf.ends_with(b"\n") => {
            let line = String::from_utf8_lossy(buf).into_owned();
            buf.clear();
            Input::Line(line)
        }
        Ok(Ok(_)) if buf.len() as u64 >= MAX_LINE => Input::TooLong,
        Ok(Ok(_)) => Input::Closed,
    }
}

#[derive(Clone, Copy)]
enum Style {
    Ls,
    Names,
    Mlsd,
}

impl Style {
    fn line(self, e: &crate::vfs::Entry, owner: &str) -> String {
        match self {
            Style::Ls => listing::ls_line(e, owner, SystemTime::now()),
            Style::Names => e.name().to_string(),
            Style::Mlsd => listing::mlsx_line(e, e.name()),
        }
    }
}

enum Job {
    Retr(VPath),
    /// Upload; `true` appends.
    Stor(VPath, bool),
    List(VPath, Style),
}

enum Prepared {
    Download(crate::session::Download),
    Upload(crate::session::Upload),
    Lines(Vec<String>),
}

impl Prepared {
    async fn run(self, mut stream: DataStream, rest: u64) -> Outcome {
        match self {
            Prepared::Lines(lines) => {
                let mut out = String::new();
                for l in lines {
                    out.push_str(&l);
                    out.push_str("\r\n");
                }
                stream.write_all(out.as_bytes()).await?;
                stream.shutdown().await?;
                Ok("Listing sent".into())
            }
            Prepared::Download(download) => {
                let size = download.size();
                let sent = send(&download, &mut stream, rest.min(size), size).await;
                let ok = sent.is_ok();
                download.finish(ok).await;
                sent.map(|n| format!("Transfer complete ({n} bytes)"))
            }
            Prepared::Upload(mut upload) => {
                let mut buf = BytesMut::with_capacity(CHUNK);
                loop {
                    buf.reserve(CHUNK);
                    // A TLS stream cut off without close_notify is an error here, so
                    // a truncated upload is discarded rather than committed.
                    match stream.read_buf(&mut buf).await {
                        Ok(0) => break,
                        Ok(_) => {
                            if buf.len() >= CHUNK {
                                upload.write(buf.split().freeze()).await?;
                            }
                        }
                        Err(e) => {
                            // Kept (published) with `interrupted_uploads = "keep"`,
                            // so REST/APPE can resume it; else discarded.
                            upload.interrupted("data connection failed").await?;
                            return Err(Error::from(e).context("receiving the upload"));
                        }
                    }
                }
                if !buf.is_empty() {
                    upload.write(buf.split().freeze()).await?;
                }
                // Answer the client's TLS close_notify with ours: clients such as
                // Python's ftplib wait for it and fail otherwise.
                let _ = stream.shutdown().await;
                let (bytes, _) = upload.close().await?;
                Ok(format!("Transfer complete ({bytes} bytes)"))
            }
        }
    }
}

async fn send<W: AsyncWrite + Unpin + ?Sized>(
    download: &crate::session::Download,
    out: &mut W,
    from: u64,
    size: u64,
) -> Result<u64> {
    let mut chunks = download.stream(from..size).await?;
    let mut n = 0u64;
    while let Some(chunk) = chunks.try_next().await? {
        out.write_all(&chunk).await?;
        n += chunk.len() as u64;
        download.add_sent(chunk.len() as u64);
    }
    out.shutdown().await?;
    Ok(n)
}

/// The FTP reply for an error, from the one public-reply table.
fn reply_for(e: &Error) -> (u16, String) {
    crate::reply::log("ftps", e);
    (
        crate::reply::of(e.kind()).ftp,
        crate::reply::text(e).to_string(),
    )
}
