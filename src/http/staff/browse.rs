//! The staff file browser: a folder of the signed-in user's own view of the
//! virtual tree (every mount they can see, fs and S3 alike), read through the
//! Session layer — so their permissions and home jail apply and every refusal
//! is audited like on SFTP. Folders are shown a page at a time with a name
//! filter; the same listing serves `/app/files` (pick files to share) and the
//! folder picker of the request form.

use std::net::SocketAddr;

use futures::TryStreamExt;
use hyper::{Response, StatusCode};

use super::super::pages::{esc, human_size};
use super::super::respond::{brand, html};
use super::super::{Body, HttpContext};
use super::pages::frame;
use super::session::Staff;
use crate::error::{ErrorKind, Result};
use crate::policy::Protocol;
use crate::session::Session;
use crate::vfs::{Entry, VPath};

/// Entries on one page.
pub const PAGE: usize = 100;
/// A folder is read up to this many entries (the rest is reached by the filter).
const MAX_READ: usize = 100_000;

/// The signed-in user's Session for this request (audited as `http`).
pub fn session(ctx: &HttpContext, staff: &Staff, peer: SocketAddr) -> Session {
    Session::new(
        staff.user.clone(),
        Protocol::Http,
        Some(peer),
        ctx.vfs.clone(),
        ctx.audit.clone(),
    )
}

/// The pairs of a query string, repeated keys kept (several `path`s).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// The first value of `key`.
pub fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A query-string value, percent-encoded.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// One page of a folder.
pub struct Listing {
    pub dir: VPath,
    pub filter: String,
    pub entries: Vec<Entry>,
    /// Entries matching the filter (all pages).
    pub total: usize,
    /// 1-based.
    pub page: usize,
    pub pages: usize,
    /// The folder holds more than [`MAX_READ`] entries; only those were read.
    pub truncated: bool,
}

/// Reads page `page` of `dir` (folders first, then by name), keeping the
/// names that contain `filter` (case-insensitive).
pub async fn list(session: &Session, dir: &VPath, filter: &str, page: usize) -> Result<Listing> {
    if dir.is_root() {
        // A new account's home is made at its first visit, as at its first
        // SFTP or FTPS login; if that fails, the listing says why.
        if let Err(e) = session.ensure_home().await {
            tracing::debug!(error = %e, "making a home for the file browser");
        }
    }
    let needle = filter.trim().to_lowercase();
    let mut stream = session.list(dir).await?;
    let mut all = Vec::new();
    let mut truncated = false;
    while let Some(e) = stream.try_next().await? {
        if all.len() >= MAX_READ {
            truncated = true;
            break;
        }
        if needle.is_empty() || e.name().to_lowercase().contains(&needle) {
            all.push(e);
        }
    }
    all.sort_by(|a, b| {
        b.is_dir()
            .cmp(&a.is_dir())
            .then_with(|| a.name().to_lowercase().cmp(&b.name().to_lowercase()))
            .then_with(|| a.name().cmp(b.name()))
    });
    let total = all.len();
    let pages = total.div_ceil(PAGE).max(1);
    let page = page.clamp(1, pages);
    let entries = all.into_iter().skip((page - 1) * PAGE).take(PAGE).collect();
    Ok(Listing {
        dir: dir.clone(),
        filter: filter.trim().to_string(),
        entries,
        total,
        page,
        pages,
        truncated,
    })
}

/// What a listing is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Pick files and folders to share (`/app/files`).
    Share,
    /// Pick the folder an upload request fills (`/app/request`).
    Folder,
}

impl Mode {
    fn base(self) -> &'static str {
        match self {
            Mode::Share => "/app/files",
            Mode::Folder => "/app/request",
        }
    }
}

/// The URL of a folder (and page, filter) in this mode.
pub fn href(mode: Mode, dir: &VPath, filter: &str, page: usize) -> String {
    let mut u = format!("{}?path={}", mode.base(), enc(dir.as_str()));
    if mode == Mode::Folder {
        u.push_str("&browse=1");
    }
    if !filter.is_empty() {
        u.push_str(&format!("&q={}", enc(filter)));
    }
    if page > 1 {
        u.push_str(&format!("&page={page}"));
    }
    u
}

/// The path of a folder as links: `/` › a › b.
fn crumbs(mode: Mode, dir: &VPath) -> String {
    let mut out = format!(
        "<a href=\"{}\">Your files</a>",
        esc(&href(mode, &VPath::root(), "", 1))
    );
    let mut at = VPath::root();
    for seg in dir.segments() {
        at = match at.join(seg) {
            Ok(p) => p,
            Err(_) => break,
        };
        out.push_str(&format!(
            " / <a href=\"{}\">{}</a>",
            esc(&href(mode, &at, "", 1)),
            esc(seg)
        ));
    }
    format!("<p class=\"crumbs\">{out}</p>")
}

/// The listing as HTML: breadcrumbs, filter, table, pages. In `Share` mode the
/// rows carry checkboxes of the form `share-pick` and a "Share" link each.
pub fn render(mode: Mode, l: &Listing) -> String {
    let filter = format!(
        "<form method=\"get\" action=\"{base}\" class=\"filter\">\
         <input type=\"hidden\" name=\"path\" value=\"{path}\">{browse}\
         <label for=\"q\">Filter names</label>\
         <span class=\"row\"><input id=\"q\" name=\"q\" value=\"{q}\" placeholder=\"part of a name\">\
         <button type=\"submit\">Filter</button></span></form>",
        base = mode.base(),
        path = esc(l.dir.as_str()),
        browse = if mode == Mode::Folder {
            "<input type=\"hidden\" name=\"browse\" value=\"1\">"
        } else {
            ""
        },
        q = esc(&l.filter),
    );
    let mut rows = String::new();
    if let Some(parent) = l.dir.parent() {
        rows.push_str(&format!(
            "<tr><td></td><td colspan=\"3\"><a href=\"{}\">↑ Up one folder</a></td></tr>",
            esc(&href(mode, &parent, "", 1))
        ));
    }
    for e in &l.entries {
        let name = esc(e.name());
        let path = esc(e.path.as_str());
        let pick = match mode {
            Mode::Share => format!(
                "<input type=\"checkbox\" name=\"path\" value=\"{path}\" form=\"share-pick\" aria-label=\"Pick {name}\">"
            ),
            Mode::Folder => String::new(),
        };
        let (shown, size) = if e.is_dir() {
            (
                format!(
                    "<a class=\"dir\" href=\"{}\">{name}/</a>",
                    esc(&href(mode, &e.path, "", 1))
                ),
                "folder".to_string(),
            )
        } else {
            (name.clone(), human_size(e.size))
        };
        let act = match mode {
            Mode::Share => format!(
                "<a class=\"btn small\" href=\"/app/share?path={}\">Share</a>",
                esc(&enc(e.path.as_str()))
            ),
            Mode::Folder if e.is_dir() => format!(
                "<a class=\"btn small\" href=\"/app/request?folder={}\">Use</a>",
                esc(&enc(e.path.as_str()))
            ),
            Mode::Folder => String::new(),
        };
        rows.push_str(&format!(
            "<tr><td class=\"pick\">{pick}</td><td class=\"name\">{shown}</td><td class=\"size\">{size}</td><td class=\"act\">{act}</td></tr>"
        ));
    }
    let empty = if l.entries.is_empty() {
        if l.filter.is_empty() {
            "<p class=\"muted\">This folder is empty.</p>"
        } else {
            "<p class=\"muted\">No names match the filter.</p>"
        }
    } else {
        ""
    };
    let mut nav = String::new();
    if l.page > 1 {
        nav.push_str(&format!(
            "<a rel=\"prev\" href=\"{}\">← Previous</a> ",
            esc(&href(mode, &l.dir, &l.filter, l.page - 1))
        ));
    }
    nav.push_str(&format!(
        "<span class=\"muted\">Page {} of {} · {} item(s)</span>",
        l.page, l.pages, l.total
    ));
    if l.page < l.pages {
        nav.push_str(&format!(
            " <a rel=\"next\" href=\"{}\">Next →</a>",
            esc(&href(mode, &l.dir, &l.filter, l.page + 1))
        ));
    }
    let truncated = if l.truncated {
        "<p class=\"muted\">This folder is very large: only part of it is listed; use the filter.</p>"
    } else {
        ""
    };
    format!(
        "{crumbs}{filter}<table class=\"files\"><tbody>{rows}</tbody></table>{empty}{truncated}<p class=\"pages\">{nav}</p>",
        crumbs = crumbs(mode, &l.dir),
    )
}

/// A folder that cannot be listed: why, in words for people (no storage path,
/// no internal text), and the status to answer.
pub fn refusal(e: &crate::error::Error) -> (StatusCode, String) {
    let status = match e.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory => StatusCode::NOT_FOUND,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        _ => {
            crate::reply::log("staff browse", e);
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    (status, crate::reply::text(e).to_string())
}

/// `GET /app/files?path=&q=&page=`: browse and pick files to share.
pub async fn page(
    ctx: &HttpContext,
    staff: &Staff,
    peer: SocketAddr,
    query: Option<&str>,
) -> Response<Body> {
    let q = query_pairs(query);
    let dir = match VPath::parse(first(&q, "path").unwrap_or("/")) {
        Ok(d) => d,
        Err(e) => return problem(ctx, staff, StatusCode::BAD_REQUEST, crate::reply::text(&e)),
    };
    let page: usize = first(&q, "page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let session = session(ctx, staff, peer);
    let listing = match list(&session, &dir, first(&q, "q").unwrap_or(""), page).await {
        Ok(l) => l,
        Err(e) => {
            let (status, text) = refusal(&e);
            return problem(ctx, staff, status, &text);
        }
    };
    let body = format!(
        "<h1>Your files</h1><p class=\"muted\">Tick files or folders and share them, or use \
         “Share” on one of them. <a href=\"/app/request?folder={here}\">Request files into this folder</a></p>\
         {listing}\
         <form id=\"share-pick\" method=\"get\" action=\"/app/share\">\
         <button type=\"submit\">Share the ticked items</button></form>",
        here = esc(&enc(dir.as_str())),
        listing = render(Mode::Share, &listing),
    );
    html(
        StatusCode::OK,
        frame(&brand(ctx), staff, "Your files", None, &with_style(&body)),
    )
}

/// The browser's few styles (narrow screens included).
pub fn with_style(body: &str) -> String {
    format!(
        "<style>.crumbs{{overflow-wrap:anywhere}}.filter .row{{display:flex;gap:.5rem}}\
         .filter .row input{{flex:1}}table.files td{{vertical-align:middle}}\
         td.pick{{width:1.5rem}}td.pick input{{width:auto}}td.name{{overflow-wrap:anywhere}}\
         td.size{{white-space:nowrap;color:#5b6270;font-size:.85rem}}td.act{{text-align:right;white-space:nowrap}}\
         a.btn.small{{padding:.25rem .6rem;font-size:.85rem}}a.dir{{font-weight:600}}\
         label .muted{{font-weight:400}}.buttons{{display:flex;gap:.75rem;flex-wrap:wrap;align-items:center}}.pages a{{margin:0 .5rem}}</style>{body}"
    )
}

/// A staff page that only says what went wrong.
pub fn problem(ctx: &HttpContext, staff: &Staff, status: StatusCode, text: &str) -> Response<Body> {
    let body = format!(
        "<h1>Cannot show this</h1><p class=\"err\">{}</p><p><a href=\"/app/files\">Back to your files</a></p>",
        esc(text)
    );
    html(
        status,
        frame(&brand(ctx), staff, "Cannot show this", None, &body),
    )
}
