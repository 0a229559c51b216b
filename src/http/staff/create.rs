//! Creating links from `/app` without uploading: *Share from storage*
//! (`/app/share`, files and folders picked in the file browser where they
//! already live) and *Request files* (`/app/request`, an upload request into
//! a folder picked the same way). Both go through `LinkService` (the same
//! rules as `wharf link share|request` and the API), with paths in the user's
//! own view. A created link's URL is shown once, after a POST/redirect: the
//! answer to the POST is a redirect to `/app/created/<id>`, which takes the
//! URL from a short-lived, in-memory slot of this user (a reload never
//! creates a second link, and never shows the URL again).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use hyper::{Response, StatusCode};

use super::super::pages::{esc, human_size};
use super::super::respond::{brand, html, redirect};
use super::super::{Body, HttpContext};
use super::browse::{self, first, query_pairs, Mode};
use super::pages::{frame, script};
use super::session::Staff;
use super::{expired, not_found};
use crate::audit::{AuditEvent, Outcome};
use crate::error::{Error, ErrorKind};
use crate::links::{Created, LinkOptions, Origin, RequestOptions};
use crate::policy::links::{parse_expiry, LinkPolicy};
use crate::policy::Protocol;
use crate::store::now_ms;
use crate::vfs::VPath;

/// The expiry presets: (value, label).
const PRESETS: [(&str, &str); 6] = [
    ("1d", "1 day"),
    ("3d", "3 days"),
    ("1w", "1 week"),
    ("2w", "2 weeks"),
    ("1m", "1 month"),
    ("never", "never"),
];

/// The presets the administrator's policy allows, and the one picked first:
/// a week if allowed, else the longest allowed that expires.
pub fn expiry_choices(policy: &LinkPolicy) -> (Vec<(&'static str, &'static str)>, &'static str) {
    let now = now_ms();
    let allowed: Vec<_> = PRESETS
        .into_iter()
        .filter(|(v, _)| parse_expiry(Some(v), policy, now).is_ok())
        .collect();
    let default = if allowed.iter().any(|(v, _)| *v == "1w") {
        "1w"
    } else {
        allowed
            .iter()
            .rev()
            .find(|(v, _)| *v != "never")
            .or(allowed.first())
            .map(|(v, _)| *v)
            .unwrap_or("1d")
    };
    (allowed, default)
}

/// The expiry `<select>` (named `expires`), `chosen` kept across a refusal.
pub fn expiry_select(policy: &LinkPolicy, chosen: Option<&str>) -> String {
    let (allowed, default) = expiry_choices(policy);
    let chosen = chosen.filter(|c| allowed.iter().any(|(v, _)| v == c));
    let options: String = allowed
        .iter()
        .map(|(v, l)| {
            let sel = if Some(*v) == chosen || (chosen.is_none() && *v == default) {
                " selected"
            } else {
                ""
            };
            format!("<option value=\"{v}\"{sel}>{l}</option>")
        })
        .collect();
    let cap = policy
        .max_expiry
        .map(|m| {
            format!(
                " <span class=\"muted\">(at most {} here)</span>",
                humantime::format_duration(m)
            )
        })
        .unwrap_or_default();
    format!("<label for=\"expires\">Expires after{cap}</label><select id=\"expires\" name=\"expires\">{options}</select>")
}

/// The password field, marked required when the policy wants one.
pub fn password_field(policy: &LinkPolicy, what: &str) -> String {
    if policy.require_password {
        format!(
            "<label for=\"password\">Password <span class=\"req\">(required here)</span> \
             <span class=\"muted\">give it to the {what} yourself</span></label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required>"
        )
    } else {
        format!(
            "<label for=\"password\">Password <span class=\"muted\">(optional; give it to the {what} yourself)</span></label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\">"
        )
    }
}

/// A refusal before any work, in words that say what to do.
pub fn check_policy(policy: &LinkPolicy, password: Option<&String>) -> Result<(), String> {
    if policy.require_password && password.is_none_or(|p| p.is_empty()) {
        return Err("A password is required for every link here: fill in the password.".into());
    }
    Ok(())
}

/// Addresses typed comma, semicolon, space or line separated.
pub fn addresses(form: &HashMap<String, String>, key: &str) -> Vec<String> {
    form.get(key)
        .map(|v| {
            v.split([',', ';', ' ', '\n', '\r'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn field(form: &HashMap<String, String>, k: &str) -> Option<String> {
    form.get(k)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn value(form: &HashMap<String, String>, k: &str) -> String {
    esc(form.get(k).map(String::as_str).unwrap_or(""))
}

/// A URL waiting to be shown: (user, URL, when made).
type Fresh = (String, String, Instant);

/// URLs made by a POST, waiting for the page that shows them once, by public id.
static FRESH: LazyLock<Mutex<HashMap<String, Fresh>>> = LazyLock::new(Default::default);
/// How long the redirect may take to come back.
const FRESH_FOR: Duration = Duration::from_secs(300);

fn keep_url(user: &str, id: &str, url: &str) {
    let mut m = FRESH.lock().expect("fresh urls");
    m.retain(|_, (_, _, at)| at.elapsed() < FRESH_FOR);
    m.insert(
        id.to_string(),
        (user.to_string(), url.to_string(), Instant::now()),
    );
}

fn take_url(user: &str, id: &str) -> Option<String> {
    let mut m = FRESH.lock().expect("fresh urls");
    match m.get(id) {
        Some((u, _, at)) if u == user && at.elapsed() < FRESH_FOR => {
            m.remove(id).map(|(_, url, _)| url)
        }
        _ => None,
    }
}

async fn audit(ctx: &HttpContext, peer: SocketAddr, staff: &Staff, id: &str, detail: String) {
    ctx.audit
        .record(
            AuditEvent::new(Protocol::Http, "link_create")
                .remote(peer)
                .actor(staff.user.name.clone())
                .link(id)
                .outcome(Outcome::Ok)
                .detail(detail),
        )
        .await;
}

/// After a link is made: its URL kept for the next page, the browser sent there.
fn created(staff: &Staff, c: &Created) -> Response<Body> {
    keep_url(&staff.user.name, &c.link.public_id, &c.url);
    let mut to = format!("/app/created/{}", c.link.public_id);
    if let Some(e) = &c.mail_error {
        tracing::warn!(link = %c.link.public_id, error = %e, "mailing a new link");
        to.push_str("?mail=failed");
    }
    redirect(&to)
}

/// Words for a refusal of the service; unexpected errors go to the log.
fn refusal_text(e: &Error) -> String {
    match e.kind() {
        ErrorKind::InvalidInput
        | ErrorKind::NotFound
        | ErrorKind::PermissionDenied
        | ErrorKind::AlreadyExists
        | ErrorKind::NotADirectory => crate::reply::text(e).to_string(),
        _ => {
            crate::reply::log("staff create", e);
            "The link could not be created now; try again in a moment.".into()
        }
    }
}

/// `GET /app/created/<id>`: the new link's URL, once.
pub async fn shown(
    ctx: &HttpContext,
    staff: &Staff,
    id: &str,
    query: Option<&str>,
) -> Response<Body> {
    let Some(link) = super::views::own_link(ctx, staff, id).await else {
        return not_found(ctx);
    };
    let mail_failed = first(&query_pairs(query), "mail") == Some("failed");
    let body = match take_url(&staff.user.name, id) {
        Some(url) => format!(
            "<h1>Your link is ready</h1>{mail}\
             <p><label for=\"link-url\">Link</label><input id=\"link-url\" value=\"{url}\" readonly></p>\
             <p class=\"buttons\"><button type=\"button\" data-copy=\"link-url\">Copy link</button> \
             <a class=\"btn\" href=\"/app/links/{id}\">See the link</a> <a href=\"/app\">Back to your links</a></p>\
             <p class=\"muted\">This URL is shown only now: it is not stored and cannot be shown again.</p>{script}",
            mail = if mail_failed {
                "<p class=\"err\">The mail to the recipients could not be sent: pass the link on yourself.</p>"
            } else if link.recipients.is_empty() {
                ""
            } else {
                "<p>The recipients have been mailed the link.</p>"
            },
            url = esc(&url),
            id = esc(&link.public_id),
            script = script("copy.js"),
        ),
        None => format!(
            "<h1>Link created</h1><p>The URL was shown once and is not stored. \
             To get a new one, use “Regenerate URL” on <a href=\"/app/links/{id}\">the link's page</a>.</p>",
            id = esc(&link.public_id)
        ),
    };
    html(
        StatusCode::OK,
        frame(&brand(ctx), staff, "Your link", None, &body),
    )
}

// ---- Share from storage ----

/// `GET /app/share?path=...`: the rules for the picked items (no path: the browser).
pub async fn share_page(
    ctx: &HttpContext,
    staff: &Staff,
    peer: SocketAddr,
    query: Option<&str>,
) -> Response<Body> {
    let paths: Vec<String> = query_pairs(query)
        .into_iter()
        .filter(|(k, v)| k == "path" && !v.is_empty())
        .map(|(_, v)| v)
        .collect();
    if paths.is_empty() {
        return redirect("/app/files");
    }
    share_form(
        ctx,
        staff,
        peer,
        &paths,
        &HashMap::new(),
        None,
        StatusCode::OK,
    )
    .await
}

async fn share_form(
    ctx: &HttpContext,
    staff: &Staff,
    peer: SocketAddr,
    paths: &[String],
    form: &HashMap<String, String>,
    error: Option<&str>,
    status: StatusCode,
) -> Response<Body> {
    let session = browse::session(ctx, staff, peer);
    let mut items = String::new();
    for p in paths {
        let entry = match VPath::parse(p) {
            Ok(v) => session.stat(&v).await,
            Err(e) => Err(e),
        };
        match entry {
            Ok(e) => items.push_str(&format!(
                "<li>{name} <span class=\"muted\">{size} · {path}</span></li>",
                name = esc(e.name()),
                size = if e.is_dir() {
                    "folder".into()
                } else {
                    human_size(e.size)
                },
                path = esc(e.path.as_str()),
            )),
            Err(e) => {
                let (status, text) = browse::refusal(&e);
                return browse::problem(ctx, staff, status, &text);
            }
        }
    }
    let policy = &ctx.links().policy;
    let error = error
        .map(|e| format!("<p class=\"err\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Share from storage</h1><p class=\"muted\">Nothing is copied: the link reads the files \
         where they are, with your rights.</p><ul class=\"picked\">{items}</ul>\
         <p><a href=\"/app/files\">Pick other files</a></p>{error}\
         <form method=\"post\" action=\"/app/share\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"paths\" value=\"{paths}\">\
         <label for=\"title\">Title <span class=\"muted\">(what recipients see)</span></label>\
         <input id=\"title\" name=\"title\" maxlength=\"200\" value=\"{title}\">\
         <label for=\"to\">Recipients <span class=\"muted\">(e-mail addresses, comma separated; optional — they get the link by mail)</span></label>\
         <input id=\"to\" name=\"to\" autocomplete=\"off\" list=\"contact-list\" value=\"{to}\">\
         {filed}\
         <label for=\"message\">Message</label><textarea id=\"message\" name=\"message\" rows=\"3\">{message}</textarea>\
         {expiry}{password}\
         <label for=\"max_uses\">Download limit <span class=\"muted\">(optional)</span></label>\
         <input id=\"max_uses\" name=\"max_uses\" type=\"number\" min=\"1\" inputmode=\"numeric\" value=\"{max_uses}\">\
         <label class=\"inline\"><input type=\"checkbox\" name=\"one_time\" value=\"1\"{one}> One-time link (a single download)</label>\
         <label for=\"allow_email\">Only these addresses may open it <span class=\"muted\">(optional; they get a code by mail)</span></label>\
         <input id=\"allow_email\" name=\"allow_email\" autocomplete=\"off\" value=\"{allow}\">\
         <p class=\"buttons\"><button type=\"submit\">Create link</button> <a href=\"/app\">Cancel</a></p></form>",
        csrf = esc(&staff.csrf),
        paths = esc(&paths.join("\n")),
        title = value(form, "title"),
        to = value(form, "to"),
        filed = super::tags::fields(&super::tags::book(ctx, staff).await, form),
        message = value(form, "message"),
        expiry = expiry_select(policy, form.get("expires").map(String::as_str)),
        password = password_field(policy, "recipients"),
        max_uses = value(form, "max_uses"),
        one = if form.contains_key("one_time") { " checked" } else { "" },
        allow = value(form, "allow_email"),
    );
    html(
        status,
        frame(
            &brand(ctx),
            staff,
            "Share from storage",
            None,
            &form_style(&body),
        ),
    )
}

/// The form pages' styles.
pub fn form_style(body: &str) -> String {
    format!(
        "<style>textarea{{width:100%;box-sizing:border-box;font:inherit;padding:.5rem}}\
         label.inline{{font-weight:400;display:flex;gap:.5rem;align-items:center}}label.inline input{{width:auto}}\
         .req{{color:#a4161a}}ul.picked{{padding-left:1.2rem;overflow-wrap:anywhere}}\
         details.picker{{border:1px solid #d3d7de;border-radius:.5rem;padding:.5rem .75rem}}\
         details.picker summary{{cursor:pointer;font-weight:600}}</style>{}",
        browse::with_style(body)
    )
}

/// The options of a share or request form.
fn options(form: &HashMap<String, String>) -> Result<LinkOptions, String> {
    let max_uses = match field(form, "max_uses").map(|v| v.parse::<u32>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return Err("The download limit must be a whole number.".into()),
    };
    let max_uses = if form.contains_key("one_time") {
        Some(1)
    } else {
        max_uses
    };
    Ok(LinkOptions {
        name: String::new(),
        title: field(form, "title").unwrap_or_default(),
        message: form.get("message").cloned().unwrap_or_default(),
        recipients: addresses(form, "to"),
        expires: field(form, "expires"),
        // Passwords are taken as typed (spaces included).
        password: form.get("password").filter(|p| !p.is_empty()).cloned(),
        max_uses,
        allowed_emails: addresses(form, "allow_email"),
        client: super::tags::client_of(form)?,
        reference: super::tags::reference_of(form)?,
        recipient_names: Vec::new(),
    })
}

/// `POST /app/share`.
pub async fn share(
    ctx: &HttpContext,
    peer: SocketAddr,
    staff: &Staff,
    form: &HashMap<String, String>,
) -> Response<Body> {
    if !staff.csrf_ok(form.get("csrf")) {
        return expired(ctx);
    }
    let paths: Vec<String> = form
        .get("paths")
        .map(|p| {
            p.lines()
                .map(str::to_string)
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if paths.is_empty() {
        return redirect("/app/files");
    }
    let paths = &paths;
    let again = |text: String| async move {
        share_form(
            ctx,
            staff,
            peer,
            paths,
            form,
            Some(&text),
            StatusCode::BAD_REQUEST,
        )
        .await
    };
    if let Err(t) = check_policy(&ctx.links().policy, form.get("password")) {
        return again(t).await;
    }
    let o = match options(form) {
        Ok(o) => o,
        Err(t) => return again(t).await,
    };
    let origin = Origin {
        protocol: Protocol::Http,
        remote: Some(peer),
    };
    match ctx
        .service
        .share_from(&staff.user.name, paths, &o, origin)
        .await
    {
        Ok(c) => {
            audit(
                ctx,
                peer,
                staff,
                &c.link.public_id,
                format!("share of {} item(s) from the browser", paths.len()),
            )
            .await;
            created(staff, &c)
        }
        Err(e) => again(refusal_text(&e)).await,
    }
}

// ---- Request files ----

/// `GET /app/request?folder=...` (and `path`, `q`, `page` while browsing).
pub async fn request_page(
    ctx: &HttpContext,
    staff: &Staff,
    peer: SocketAddr,
    query: Option<&str>,
) -> Response<Body> {
    let q = query_pairs(query);
    let mut form = HashMap::new();
    // The folder chosen, else the one being browsed.
    if let Some(f) = first(&q, "folder").or(first(&q, "path")) {
        form.insert("folder".to_string(), f.to_string());
    }
    request_form(ctx, staff, peer, &q, &form, None, StatusCode::OK).await
}

async fn request_form(
    ctx: &HttpContext,
    staff: &Staff,
    peer: SocketAddr,
    q: &[(String, String)],
    form: &HashMap<String, String>,
    error: Option<&str>,
    status: StatusCode,
) -> Response<Body> {
    let folder = form.get("folder").map(String::as_str).unwrap_or("/");
    // The picker shows the folder asked for while browsing, else the chosen one.
    let at = first(q, "path").unwrap_or(folder);
    let dir = VPath::parse(at).unwrap_or_else(|_| VPath::root());
    let page: usize = first(q, "page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let session = browse::session(ctx, staff, peer);
    let picker = match browse::list(&session, &dir, first(q, "q").unwrap_or(""), page).await {
        Ok(l) => format!(
            "{}<p><a class=\"btn small\" href=\"/app/request?folder={}\">Use this folder</a></p>",
            browse::render(Mode::Folder, &l),
            esc(&browse::enc(l.dir.as_str()))
        ),
        Err(e) => {
            // A folder not made yet is fine: the request makes it.
            let (_, text) = browse::refusal(&e);
            format!(
                "<p class=\"muted\">{} <a href=\"/app/request?browse=1&amp;path=%2F\">Browse from the top</a></p>",
                esc(&text)
            )
        }
    };
    let policy = &ctx.links().policy;
    let error = error
        .map(|e| format!("<p class=\"err\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Request files</h1><p class=\"muted\">Someone outside uploads files into a folder of yours \
         through a link; nothing they send can be read back through it.</p>\
         <h2>1. The folder</h2><details class=\"picker\"{open}><summary>Browse your folders</summary>{picker}</details>\
         <h2>2. The request</h2>{error}\
         <form method=\"post\" action=\"/app/request\" id=\"request-form\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"folder\">Folder the files go into <span class=\"muted\">(made if missing; or browse above)</span></label>\
         <input id=\"folder\" name=\"folder\" value=\"{folder}\" required>\
         <label for=\"customer\">Customer's name</label>\
         <input id=\"customer\" name=\"customer\" maxlength=\"200\" value=\"{customer}\">\
         <label for=\"to\">Customer's e-mail <span class=\"muted\">(optional; they get the link by mail)</span></label>\
         <input id=\"to\" name=\"to\" type=\"email\" autocomplete=\"off\" list=\"contact-list\" value=\"{to}\">\
         {filed}\
         <label for=\"title\">Title <span class=\"muted\">(what the customer sees)</span></label>\
         <input id=\"title\" name=\"title\" maxlength=\"200\" value=\"{title}\">\
         <label for=\"message\">Description / message</label><textarea id=\"message\" name=\"message\" rows=\"3\">{message}</textarea>\
         {expiry}\
         <label for=\"max_files\">Most files accepted <span class=\"muted\">(optional)</span></label>\
         <input id=\"max_files\" name=\"max_files\" type=\"number\" min=\"1\" inputmode=\"numeric\" value=\"{max_files}\">\
         <label for=\"max_size\">Largest file <span class=\"muted\">(optional, e.g. 500MB or 2GB)</span></label>\
         <input id=\"max_size\" name=\"max_size\" value=\"{max_size}\">\
         {password}\
         <label for=\"allow_email\">Only these addresses may upload <span class=\"muted\">(optional; they get a code by mail)</span></label>\
         <input id=\"allow_email\" name=\"allow_email\" autocomplete=\"off\" value=\"{allow}\">\
         <p class=\"buttons\"><button type=\"submit\">Create request link</button> <a href=\"/app\">Cancel</a></p></form>",
        // The picker stays open while browsing, closed once a folder is chosen.
        open = if first(q, "path").is_some() || !form.contains_key("folder") {
            " open"
        } else {
            ""
        },
        csrf = esc(&staff.csrf),
        folder = esc(folder),
        customer = value(form, "customer"),
        to = value(form, "to"),
        filed = super::tags::fields(&super::tags::book(ctx, staff).await, form),
        title = value(form, "title"),
        message = value(form, "message"),
        expiry = expiry_select(policy, form.get("expires").map(String::as_str)),
        max_files = value(form, "max_files"),
        max_size = value(form, "max_size"),
        password = password_field(policy, "customer"),
        allow = value(form, "allow_email"),
    );
    html(
        status,
        frame(
            &brand(ctx),
            staff,
            "Request files",
            None,
            &form_style(&body),
        ),
    )
}

/// `POST /app/request`.
pub async fn request(
    ctx: &HttpContext,
    peer: SocketAddr,
    staff: &Staff,
    form: &HashMap<String, String>,
) -> Response<Body> {
    if !staff.csrf_ok(form.get("csrf")) {
        return expired(ctx);
    }
    let again = |text: String| async move {
        request_form(
            ctx,
            staff,
            peer,
            &[],
            form,
            Some(&text),
            StatusCode::BAD_REQUEST,
        )
        .await
    };
    let Some(folder) = field(form, "folder") else {
        return again("Pick the folder the files go into.".into()).await;
    };
    if let Err(t) = check_policy(&ctx.links().policy, form.get("password")) {
        return again(t).await;
    }
    let max_files = match field(form, "max_files").map(|v| v.parse::<u32>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return again("The number of files must be a whole number.".into()).await,
    };
    let max_size = match field(form, "max_size").map(|v| v.parse::<crate::config::ByteSize>()) {
        None => None,
        Some(Ok(n)) => Some(n.0),
        Some(Err(_)) => {
            return again("The largest file is a size such as 500MB or 2GB.".into()).await
        }
    };
    let mut o = match options(form) {
        Ok(o) => o,
        Err(t) => return again(t).await,
    };
    o.max_uses = None;
    if let Some(c) = field(form, "customer") {
        // The customer is the one recipient: their mail greets them by name.
        if let [to] = o.recipients.as_slice() {
            o.recipient_names = vec![(to.clone(), c.chars().take(100).collect())];
        }
        o.name = format!("Request: {c}");
        if o.title.is_empty() {
            o.title = format!("Files from {c}");
        }
    }
    let r = RequestOptions {
        max_files,
        max_size,
        notify: ctx.service.notify_uploads_default(),
    };
    match ctx.service.request(&staff.user.name, &folder, &r, &o).await {
        Ok(c) => {
            audit(
                ctx,
                peer,
                staff,
                &c.link.public_id,
                "request from the browser".into(),
            )
            .await;
            created(staff, &c)
        }
        Err(e) => again(refusal_text(&e)).await,
    }
}
