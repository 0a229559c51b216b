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
/// Longest wait for a data connection's TLS handshake before the 150 reply, for
/// a client that began it before the transfer command.
const EARLY_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(2);

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
    /// Embedded in this connection's TLS sessions, to recognise their resumption.
    tls_id: super::tls::SessionId,
    /// After `EPSV ALL` only EPSV opens data connections (RFC 2428).
    epsv_all: bool,
    /// The MLSD/MLST facts chosen by `OPTS MLST`.
    mlst_facts: Vec<&'static str>,
    /// The unique name STOU chose, for its 150 reply.
    stou_name: Option<String>,
    /// The claim on that name, held by the upload task until it ends.
    stou_claim: Option<super::stou::StouClaim>,
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
            tls_id: crate::secret::random_bytes::<16>(),
            epsv_all: false,
            mlst_facts: super::listing::FACTS.to_vec(),
            stou_name: None,
            stou_claim: None,
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
        let id = self.tls_id;
        let accept = self
            .ctx
            .tls
            .control
            .accept_with(tcp, |c| c.set_resumption_data(&id));
        match tokio::time::timeout(data::CONNECT_TIMEOUT, accept).await {
            Ok(Ok(tls)) => {
                self.ctx.session_owners.started(self.tls_id);
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
                let mut lines = [
                    "AUTH TLS",
                    "PBSZ",
                    "PROT",
                    "EPSV",
                    "EPRT",
                    "MDTM",
                    "MFMT",
                    "SIZE",
                    "REST STREAM",
                    "UTF8",
                    "TVFS",
                ]
                .map(String::from)
                .to_vec();
                lines.push(super::listing::feat_line(&self.mlst_facts));
                lines.sort();
                self.reply_lines(211, "Features:", &lines, "End").await;
            }
            Opts(o) if o.eq_ignore_ascii_case("UTF8 ON") => {
                self.reply(200, "UTF8 is always on").await
            }
            Opts(o) if o.len() >= 4 && o[..4].eq_ignore_ascii_case("MLST") => {
                self.mlst_facts = super::listing::choose_facts(o[4..].trim());
                let facts: String = self.mlst_facts.iter().map(|f| format!("{f};")).collect();
                self.reply(200, &format!("MLST OPTS {facts}")).await
            }
            Opts(_) => self.reply(501, "Unknown option").await,
            Syst => self.reply(215, "UNIX Type: L8").await,
            Noop => self.reply(200, "OK").await,
            Allo => self.reply(202, "No storage allocation necessary").await,
            Help => {
                let lines = [
                    "USER PASS AUTH PBSZ PROT FEAT OPTS SYST NOOP QUIT PWD CWD CDUP TYPE MODE STRU",
                    "PASV EPSV PORT EPRT LIST NLST MLSD MLST SIZE MDTM MFMT RETR STOR STOU APPE",
                    "REST DELE MKD RMD RNFR RNTO ABOR STAT HELP ALLO SITE",
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
            Pasv | Port(_) | Eprt(_) if self.epsv_all => {
                // 550 as vsftpd answers it (RFC 2428 names no code).
                self.reply(550, &format!("{cmd_verb} not allowed after EPSV ALL"))
                    .await
            }
            Pasv => self.passive(false).await,
            Epsv(Some(a)) if a.eq_ignore_ascii_case("ALL") => {
                self.epsv_all = true;
                self.plan = Plan::None;
                self.reply(200, "EPSV ALL ok.").await
            }
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
            List(args) | Nlst(args) => {
                let style = if cmd_verb == "NLST" {
                    Style::Names
                } else {
                    Style::Ls
                };
                let (path, pattern) =
                    match args.path.as_deref().and_then(super::listing::split_pattern) {
                        Some((dir, pat)) => {
                            let dir = (!dir.is_empty()).then_some(dir);
                            let prefix = dir.unwrap_or_default().to_string();
                            (
                                self.path_or_reply(dir).await,
                                Some((prefix, pat.to_string())),
                            )
                        }
                        None => (self.path_or_reply(args.path.as_deref()).await, None),
                    };
                if let Some(path) = path {
                    let shown = Shown {
                        all: args.all,
                        pattern,
                    };
                    self.start(Job::List(path, style, shown)).await
                }
            }
            Mlsd(p) => {
                if let Some(path) = self.path_or_reply(p.as_deref()).await {
                    let shown = Shown {
                        all: true,
                        pattern: None,
                    };
                    self.start(Job::List(path, Style::Mlsd, shown)).await
                }
            }
            Stou(p) => {
                if let Some(path) = self.unique_path(p.as_deref()).await {
                    self.stou_name = Some(path.file_name().unwrap_or_default().to_string());
                    self.start(Job::Stor(path, false)).await
                }
            }
            Mfmt(time, p) => {
                if let Some(path) = self.path_or_reply(Some(&p)).await {
                    match self.set_mtime(&path, time).await {
                        Ok(()) => {
                            let t = listing::compact(time);
                            self.reply(213, &format!("Modify={t}; {p}")).await
                        }
                        Err(e) => self.error(&e).await,
                    }
                }
            }
            Site(arg) => self.site(&arg).await,
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
                        let line = super::listing::only_facts(&line, &self.mlst_facts);
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
            Mdtm(p) if set_time_form(&p).is_some() => {
                // `MDTM YYYYMMDDHHMMSS path` sets the time, as vsftpd's mdtm_write.
                let (time, name) = set_time_form(&p).unwrap_or((SystemTime::UNIX_EPOCH, ""));
                if let Some(path) = self.path_or_reply(Some(name)).await {
                    match self.set_mtime(&path, time).await {
                        Ok(()) => self.reply(213, "File modification time set.").await,
                        Err(e) => self.error(&e).await,
                    }
                }
            }
            Mdtm(p) => {
                let Some(path) = self.path_or_reply(Some(&p)).await else {
                    return self.open();
                };
                match self.session().stat(&path).await {
                    // MDTM is for files (RFC 3659 §3); vsftpd answers 550.
                    Ok(e) if e.is_dir() => self.reply(550, "Not a file").await,
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
                    // The aborted upload is dropped, not closed: `[storage]
                    // interrupted_uploads` decides what becomes of its bytes.
                    let text = if self.ctx.vfs.keeps_interrupted_uploads() {
                        "Transfer aborted; an upload keeps the bytes received"
                    } else {
                        "Transfer aborted; nothing was kept of an upload"
                    };
                    self.reply(426, text).await;
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
                let shown = Shown {
                    all: false,
                    pattern: None,
                };
                match self.listing_lines(&path, Style::Ls, &shown).await {
                    Ok(lines) => {
                        self.reply_lines(213, "Status follows", &lines, "End of status")
                            .await
                    }
                    Err(e) => self.error(&e).await,
                }
            }
            // 500 "command unrecognized" (RFC 959), as vsftpd answers it.
            Unknown(verb) => self.reply(500, &format!("{verb}: unknown command")).await,
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
                self.ctx
                    .session_owners
                    .logged_in(&self.tls_id, &session.user().name);
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

    async fn listing_lines(&self, dir: &VPath, style: Style, shown: &Shown) -> Result<Vec<String>> {
        let session = self.session();
        let owner = session.user().name.clone();
        let facts = &self.mlst_facts;
        let line = |e: &crate::vfs::Entry, prefix: &str| match style {
            Style::Mlsd => super::listing::only_facts(&style.line(e, &owner), facts),
            Style::Names => format!("{prefix}{}", e.name()),
            Style::Ls => style.line(e, &owner),
        };
        let entry = session.stat(dir).await?;
        if !entry.is_dir() {
            return Ok(vec![line(&entry, "")]);
        }
        let entries: Vec<crate::vfs::Entry> = session.list(dir).await?.try_collect().await?;
        let (prefix, pattern) = match &shown.pattern {
            Some((prefix, pattern)) => (prefix.as_str(), Some(pattern.as_str())),
            None => ("", None),
        };
        let entries = super::listing::select(entries, shown.all, pattern);
        if pattern.is_some() && entries.is_empty() {
            return Err(Error::not_found("no name matches the pattern"));
        }
        let mut lines = Vec::with_capacity(entries.len() + 2);
        if matches!(style, Style::Ls) && shown.all && pattern.is_none() {
            // `LIST -a` starts with `.` and `..`, as `ls -la` and vsftpd
            // (`..` of the home is the home, as SFTP's READDIR shows it).
            let parent = match dir.parent() {
                Some(p) => session.stat(&p).await.unwrap_or_else(|_| entry.clone()),
                None => entry.clone(),
            };
            for (e, name) in [(&entry, "."), (&parent, "..")] {
                let full = line(e, "");
                let head = full.strip_suffix(e.name()).unwrap_or(&full);
                lines.push(format!("{head}{name}"));
            }
        }
        lines.extend(entries.iter().map(|e| line(e, prefix)));
        Ok(lines)
    }

    /// Sets a file's modification time (MFMT, MDTM with a time, SITE UTIME)
    /// through the Session, as SFTP SETSTAT does.
    async fn set_mtime(&self, path: &VPath, time: SystemTime) -> Result<()> {
        let attrs = crate::vfs::SetAttrs {
            mtime: Some(time),
            atime: Some(time),
            ..Default::default()
        };
        self.session().set_attrs(path, &attrs).await
    }

    /// `SITE CHMOD`, `SITE UTIME`, `SITE HELP`, as vsftpd (and ProFTPD for UTIME).
    async fn site(&mut self, arg: &str) {
        let (verb, rest) = arg.split_once(' ').unwrap_or((arg, ""));
        let rest = rest.trim_start();
        match verb.to_ascii_uppercase().as_str() {
            "HELP" => self.reply(214, "CHMOD UTIME HELP").await,
            "CHMOD" => {
                let Some((mode, name)) = rest.split_once(' ') else {
                    return self.reply(501, "SITE CHMOD needs 2 arguments.").await;
                };
                let Some(mode) = u32::from_str_radix(mode, 8).ok().filter(|m| *m <= 0o7777) else {
                    return self
                        .reply(501, "Bad mode: give it in octal, such as 644")
                        .await;
                };
                let Some(path) = self.path_or_reply(Some(name)).await else {
                    return;
                };
                let attrs = crate::vfs::SetAttrs {
                    mode: Some(mode),
                    ..Default::default()
                };
                match self.session().set_attrs(&path, &attrs).await {
                    Ok(()) => self.reply(200, "SITE CHMOD command ok.").await,
                    Err(e) => self.error(&e).await,
                }
            }
            "UTIME" => {
                let Some((time, name)) = utime_args(rest) else {
                    return self
                        .reply(501, "SITE UTIME needs YYYYMMDDhhmm[ss] and a path")
                        .await;
                };
                let Some(path) = self.path_or_reply(Some(name)).await else {
                    return;
                };
                match self.set_mtime(&path, time).await {
                    Ok(()) => self.reply(200, "SITE UTIME command successful").await,
                    Err(e) => self.error(&e).await,
                }
            }
            _ => self.reply(500, "Unknown SITE command.").await,
        }
    }

    /// STOU's target: the name asked for (or `file`) if free, else the first free
    /// of `name.1`, `name.2`, ...
    async fn unique_path(&mut self, asked: Option<&str>) -> Option<VPath> {
        let base = self.path_or_reply(Some(asked.unwrap_or("file"))).await?;
        for i in 0..1000u32 {
            let candidate = if i == 0 {
                Ok(base.clone())
            } else {
                self.cwd.join(&format!("{}.{i}", base.as_str()))
            };
            let candidate = match candidate {
                Ok(c) => c,
                Err(e) => {
                    self.error(&e).await;
                    return None;
                }
            };
            // Claimed first, so a name another STOU is uploading to is skipped
            // even though its upload is not published yet.
            let home = &self.session().user().home;
            let key = format!("{}{}", home.as_str().trim_end_matches('/'), candidate);
            let claim = match self.ctx.stou_claims.claim(key).await {
                Ok(Some(claim)) => claim,
                Ok(None) => continue,
                Err(e) => {
                    self.error(&e).await;
                    return None;
                }
            };
            match self.session().stat(&candidate).await {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    self.stou_claim = Some(claim);
                    return Some(candidate);
                }
                Err(e) => {
                    self.error(&e).await;
                    return None;
                }
                Ok(_) => {}
            }
        }
        self.reply(553, "No unique name found").await;
        None
    }

    /// Checks a transfer can start, replies 150, and runs it in a task.
    async fn start(&mut self, job: Job) {
        let rest = std::mem::take(&mut self.rest);
        // Released when this returns early or when the transfer task ends.
        let stou_claim = self.stou_claim.take();
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
            Job::List(path, style, shown) => self
                .listing_lines(path, *style, shown)
                .await
                .map(Prepared::Lines),
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => return self.error(&e).await,
        };
        let opening = match self.stou_name.take() {
            Some(name) => format!("FILE: {name}"),
            None => "Opening data connection".to_string(),
        };
        let direction = match &job {
            Job::Stor(..) => super::tls::Direction::Upload,
            _ => super::tls::Direction::Download,
        };
        let (plan, spoke_first) = match (self.protect_data, direction) {
            (true, super::tls::Direction::Upload) => data::early(plan, self.peer.ip()),
            _ => (plan, false),
        };
        let tls = self.protect_data.then(|| data::DataTls {
            acceptors: self.ctx.tls.clone(),
            direction,
            id: self.tls_id,
            require_reuse: self.ctx.config.require_ssl_reuse,
            user: session.user().name.clone(),
            owners: self.ctx.session_owners.clone(),
        });
        let client = self.peer.ip();
        let (secured, handshake) = tokio::sync::oneshot::channel::<()>();
        self.transfer = Some(tokio::spawn(async move {
            let _stou_claim = stou_claim;
            let stream = data::open(plan, client, tls).await;
            drop(secured);
            prepared.run(stream?, rest).await
        }));
        // A client that began TLS before the command gets the 150 once the
        // handshake is over (`data::early`), or after EARLY_HANDSHAKE at most, in
        // case it waits for the 150 before finishing it.
        if spoke_first {
            let _ = tokio::time::timeout(EARLY_HANDSHAKE, handshake).await;
        }
        self.reply(150, &opening).await;
    }

    async fn finish_transfer(&mut self, outcome: Outcome) {
        match outcome {
            Ok(text) => self.reply(226, &text).await,
            Err(e) => {
                crate::reply::log("ftps", &e);
                if let Some((code, text)) = crate::reply::ftp_transfer_special(&e) {
                    return self.reply(code, text).await;
                }
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

impl Drop for Control {
    fn drop(&mut self) {
        self.ctx.session_owners.ended(&self.tls_id);
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
            Style::Ls => listing::list_line(e, owner, SystemTime::now()),
            Style::Names => e.name().to_string(),
            Style::Mlsd => listing::mlsx_line(e, e.name()),
        }
    }
}

enum Job {
    Retr(VPath),
    /// Upload; `true` appends.
    Stor(VPath, bool),
    List(VPath, Style, Shown),
}

/// Which entries of a folder a listing shows.
struct Shown {
    /// Names starting with `.` too (`-a`).
    all: bool,
    /// Only names matching a pattern, printed after the folder part as typed.
    pattern: Option<(String, String)>,
}

/// `MDTM YYYYMMDDHHMMSS path`: the time and the path, when MDTM sets the time.
fn set_time_form(arg: &str) -> Option<(SystemTime, &str)> {
    let (t, name) = arg.split_once(' ')?;
    let time = super::command::parse_time(t)?;
    (!name.is_empty()).then_some((time, name))
}

/// `SITE UTIME` arguments: `YYYYMMDDhhmm[ss] path` (ProFTPD's two-argument form)
/// or `path atime mtime ctime UTC` (its five-argument form; mtime is set).
fn utime_args(rest: &str) -> Option<(SystemTime, &str)> {
    if let Some((t, name)) = rest.split_once(' ') {
        let t14 = if t.len() == 12 {
            format!("{t}00")
        } else {
            t.to_string()
        };
        if let Some(time) = super::command::parse_time(&t14) {
            return (!name.is_empty()).then_some((time, name));
        }
    }
    let words: Vec<&str> = rest.rsplitn(5, ' ').collect();
    match words[..] {
        [utc, _ctime, mtime, _atime, name] if utc.eq_ignore_ascii_case("UTC") => {
            Some((super::command::parse_time(mtime)?, name))
        }
        _ => None,
    }
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
                data::linger(stream);
                Ok("Listing sent".into())
            }
            Prepared::Download(download) => {
                let size = download.size();
                let sent = send(&download, &mut stream, rest.min(size), size).await;
                if sent.is_ok() {
                    data::linger(stream);
                }
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
                            // What is buffered arrived in whole TLS records before
                            // the cut: it is part of what was received. All of it
                            // is kept (published) with `interrupted_uploads =
                            // "keep"`, so REST/APPE can resume it; else discarded.
                            if !buf.is_empty() {
                                upload.write(buf.split().freeze()).await?;
                            }
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
