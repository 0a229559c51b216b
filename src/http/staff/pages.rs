//! The HTML of the staff pages, in the look of the link pages (`pages::layout`).
//! Every value from a link, a user or the audit log goes through `esc`; forms
//! carry the session's CSRF token; scripts are files (`/static/...`).

use super::super::pages::{esc, human_size, layout, Brand};
use super::flash::{Flash, Kind};
use super::session::Staff;
use crate::links::rules_of;
use crate::policy::links::{status, Status};
use crate::store::{format_ms, AuditRecord, Client, Contact, Link, LinkFile, Millis};

/// Wider than the visitors' pages (tables), and the few staff-only styles.
const STYLE: &str = "<style>main{max-width:68rem}\
nav{display:flex;gap:1rem;align-items:center;justify-content:flex-end;margin-bottom:1rem;font-size:.9rem}\
nav form{margin:0}nav button{padding:.3rem .8rem;font-size:.9rem}\
th{text-align:left;font-size:.8rem;color:#5b6270;padding:.25rem}\
.st{display:inline-block;padding:.1rem .5rem;border-radius:1rem;font-size:.8rem;background:#e3e5e9}\
.st-active{background:#d3f0dc;color:#12602b}.st-draft{background:#fff3c4;color:#6b5200}\
.st-expired,.st-exhausted,.st-revoked{background:#fbdada;color:#8a1111}\
.flash{padding:.75rem;border-radius:.4rem;background:#d3f0dc;color:#12602b}\
.flash.err{background:#fbdada;color:#8a1111}\
.actions form{display:inline-block;margin:0 1rem 1rem 0;vertical-align:top}\
.actions label{font-weight:400;display:inline}.actions input[type=checkbox]{width:auto}\
select{font-size:1rem;padding:.45rem;border:1px solid #9aa1ad;border-radius:.4rem}\
button.danger{background:#a4161a}dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}\
dt{color:#5b6270}dd{margin:0;overflow-wrap:anywhere}.small{font-size:.8rem}\
.reftype{display:inline-block;padding:0 .4rem;border-radius:.3rem;background:#e3e5e9;font-size:.75rem}\
nav{flex-wrap:wrap}nav a{white-space:nowrap}</style>";

pub(super) use super::super::pages::script;

/// A hidden CSRF field and a submit button, posting to `action`.
fn form(action: &str, csrf: &str, fields: &str, button: &str, class: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         {fields}<button type=\"submit\"{class}>{button}</button></form>",
        action = esc(action),
        csrf = esc(csrf),
        class = if class.is_empty() {
            String::new()
        } else {
            format!(" class=\"{class}\"")
        },
    )
}

/// A page of a logged-in user: who, a way home and out, the message of the
/// last action.
pub(super) fn frame(
    brand: &Brand,
    staff: &Staff,
    title: &str,
    flash: Option<&Flash>,
    body: &str,
) -> String {
    let nav = format!(
        "<nav><span class=\"muted\">Signed in as <strong>{user}</strong></span>\
         <a href=\"/app\">Your links</a><a href=\"/app/clients\">Clients</a>{bell}{logout}</nav>",
        user = esc(&staff.user.name),
        bell = super::bell::bell(staff.unread),
        logout = form("/app/logout", &staff.csrf, "", "Log out", ""),
    );
    let flash = flash
        .map(|f| {
            format!(
                "<p class=\"flash{}\" role=\"status\">{}</p>",
                if f.kind == Kind::Error { " err" } else { "" },
                esc(&f.text)
            )
        })
        .unwrap_or_default();
    layout(brand, title, &format!("{STYLE}{nav}{flash}{body}"))
}

/// Time left until `at`, as the countdown script also writes it.
pub fn remaining(at: Millis, now: Millis) -> String {
    let left = at - now;
    if left <= 0 {
        return "expired".into();
    }
    let s = left / 1000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("in {d} d {h} h")
    } else if h > 0 {
        format!("in {h} h {m} min")
    } else {
        format!("in {m} min {} s", s % 60)
    }
}

/// A time as a `<time>` element: UTC text (what shows without script, and on
/// hover), turned into the viewer's local time by `localtime.js`.
pub(super) fn when(ms: Millis) -> String {
    let iso = format_ms(ms);
    let utc = format!("{} UTC", iso.trim_end_matches('Z').replacen('T', " ", 1));
    format!("<time datetime=\"{iso}\" title=\"{utc}\">{utc}</time>")
}

/// When the link expires, with a live countdown; an ended link shows when it
/// ended instead (expired, used up, or cancelled).
pub(super) fn expiry(link: &Link, now: Millis) -> String {
    let s = status(&rules_of(link), now);
    let ended = match s {
        Status::Expired => Some("expired"),
        Status::Exhausted => Some("used up"),
        Status::Revoked => Some("cancelled"),
        Status::Active | Status::Draft => None,
    };
    if let Some(word) = ended {
        return match crate::links::ended_at(link, now) {
            Some(at) => format!(
                "<span class=\"ended\">{word}</span><div class=\"muted small\">{}</div>",
                when(at)
            ),
            None => format!("<span class=\"ended\">{word}</span>"),
        };
    }
    match link.expires_at {
        None => "never".into(),
        Some(at) => format!(
            "<span data-expires=\"{at}\">{}</span><div class=\"muted small\">{}</div>",
            remaining(at, now),
            when(at)
        ),
    }
}

pub(super) fn badge(s: Status) -> String {
    format!("<span class=\"st st-{0}\">{0}</span>", s.as_str())
}

pub(super) fn uses(link: &Link) -> String {
    match link.max_uses {
        Some(m) => format!("{} / {m}", link.uses),
        None => format!("{} / unlimited", link.uses),
    }
}

/// What staff call a link: its name, else its title, else its id.
pub(super) fn label(link: &Link) -> &str {
    [&link.name, &link.title, &link.public_id]
        .into_iter()
        .find(|s| !s.is_empty())
        .map(String::as_str)
        .unwrap_or_default()
}

pub(super) fn text_or_none(text: &str) -> String {
    if text.is_empty() {
        "<span class=\"muted\">none</span>".into()
    } else {
        esc(text)
    }
}

pub(super) fn list(items: &[String]) -> String {
    if items.is_empty() {
        "<span class=\"muted\">none</span>".into()
    } else {
        items
            .iter()
            .map(|s| esc(s))
            .collect::<Vec<_>>()
            .join("<br>")
    }
}

pub fn login(brand: &Brand, csrf: &str, next: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"err\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let fields = format!(
        "<input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <label for=\"name\">User name</label>\
         <input id=\"name\" name=\"name\" autocomplete=\"username\" required autofocus>\
         <label for=\"pw\">Password</label>\
         <input id=\"pw\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <p></p>",
        next = esc(next)
    );
    let body = format!(
        "<h1>Sign in</h1><p class=\"muted\">Staff of {product}: manage the links you have shared.</p>{error}{}",
        form("/app/login", csrf, &fields, "Sign in", ""),
        product = esc(&brand.product),
    );
    layout(brand, "Sign in", &body)
}

/// The dashboard's "+ Create" menu (a `<details>`: works without script).
pub(super) fn create_menu(accent: &str) -> String {
    const STYLE: &str = "<style>.head{display:flex;justify-content:space-between;align-items:center;gap:1rem;flex-wrap:wrap}\
.head h1{margin:0}details.create{position:relative}details.create summary{list-style:none;cursor:pointer;\
display:inline-block;padding:.5rem 1rem;border-radius:.4rem;color:#fff;font-weight:600}\
details.create summary::-webkit-details-marker{display:none}\
details.create ul{position:absolute;right:0;z-index:2;list-style:none;margin:.3rem 0 0;padding:.3rem 0;background:#fff;\
border:1px solid #d3d7de;border-radius:.5rem;box-shadow:0 4px 14px #0002;min-width:15rem}\
details.create li a{display:block;padding:.55rem 1rem;color:inherit;text-decoration:none}\
details.create li a:hover,details.create li a:focus{background:#eef1f6}\
details.create li small{display:block;color:#5b6270}\
@media (max-width:40rem){table.links thead{display:none}table.links tr{display:block;border-top:1px solid #e3e5e9;padding:.5rem 0}\
table.links td{display:grid;grid-template-columns:6rem 1fr;column-gap:1rem;border:0;padding:.15rem 0;overflow-wrap:anywhere}\
table.links td>*{grid-column:2;justify-self:start}table.links td:first-child{display:block;padding-bottom:.3rem}\
table.links td[data-label]::before{content:attr(data-label);grid-column:1;color:#5b6270;font-size:.85rem}}</style>";
    format!(
        "{STYLE}<details class=\"create\"><summary style=\"background:{accent}\">+ Create</summary><ul>\
         <li><a href=\"/app/send\">Send files<small>Upload files from this computer</small></a></li>\
         <li><a href=\"/app/files\">Share from storage<small>Files already in your folders</small></a></li>\
         <li><a href=\"/app/request\">Request files<small>Someone uploads into your folder</small></a></li>\
         </ul></details>",
        accent = esc(accent)
    )
}

/// What the detail page shows and offers.
pub struct Detail<'a> {
    pub link: &'a Link,
    pub files: &'a [LinkFile],
    pub trail: &'a [AuditRecord],
    /// The expiry presets the policy allows: (value, label).
    pub presets: &'a [(&'static str, &'static str)],
    pub now: Millis,
    /// The link's URL, when it can be shown again (not for links made before
    /// tokens were derived).
    pub url: Option<&'a str>,
    /// The viewer is an administrator (restore, delete).
    pub admin: bool,
    /// The link's client, when the viewer sees it.
    pub client: Option<&'a Client>,
    /// The clients the viewer may file the link under (the edit form).
    pub book: &'a [(Client, Vec<Contact>)],
}

/// A link's reference: its type and id, the id a link when it is a URL.
pub(super) fn reference(link: &Link) -> String {
    match &link.reference {
        None => text_or_none(""),
        Some(r) => {
            let value = match r.url() {
                Some(u) => format!(
                    "<a href=\"{u}\" rel=\"noopener noreferrer\" target=\"_blank\">{u}</a>",
                    u = esc(u)
                ),
                None => esc(&r.value),
            };
            format!("<span class=\"reftype\">{}</span> {value}", r.kind.as_str())
        }
    }
}

/// The link's URL with a copy button, or why it cannot be shown.
fn url_box(d: &Detail) -> String {
    if d.link.state == crate::store::LinkState::Draft {
        return String::new();
    }
    match d.url {
        Some(url) => format!(
            "<p><label for=\"url\">Link</label><input id=\"url\" value=\"{url}\" readonly></p>\
             <p><button type=\"button\" data-copy=\"url\">Copy the link</button></p>",
            url = esc(url)
        ),
        None => "<p class=\"muted\">This link was made before links could be shown again: its URL \
                 cannot be shown. Regenerate it to get a URL you can copy (the old one stops working).</p>"
            .into(),
    }
}

/// Changing the rules: every field holds the current value; only what differs
/// is changed. An empty password field keeps the password.
fn edit_form(d: &Detail, csrf: &str) -> String {
    let link = d.link;
    let expiry_options: String = std::iter::once(("", "keep as it is"))
        .chain(d.presets.iter().copied())
        .map(|(v, l)| format!("<option value=\"{v}\">{l}</option>"))
        .collect();
    let password = if link.password_hash.is_some() {
        "<label for=\"e-pw\">New password (empty: keep it)</label>\
         <input id=\"e-pw\" name=\"password\" type=\"password\" autocomplete=\"new-password\">\
         <p><input type=\"checkbox\" id=\"e-nopw\" name=\"no_password\" value=\"yes\" style=\"width:auto\"> \
         <label for=\"e-nopw\" style=\"display:inline\">Remove the password</label></p>"
    } else {
        "<label for=\"e-pw\">Password (empty: none)</label>\
         <input id=\"e-pw\" name=\"password\" type=\"password\" autocomplete=\"new-password\">"
    };
    let fields = format!(
        "<label for=\"e-title\">Title</label><input id=\"e-title\" name=\"title\" value=\"{title}\">\
         <label for=\"e-msg\">Message</label><textarea id=\"e-msg\" name=\"message\" rows=\"3\">{message}</textarea>\
         <label for=\"e-to\">Recipients (comma separated)</label><input id=\"e-to\" name=\"recipients\" value=\"{to}\">\
         {password}\
         <label for=\"e-allow\">Allowed e-mails (comma separated; empty: anyone with the link)</label>\
         <input id=\"e-allow\" name=\"allowed_emails\" value=\"{allow}\">\
         <label for=\"e-max\">Usage limit (empty: unlimited)</label>\
         <input id=\"e-max\" name=\"max_uses\" inputmode=\"numeric\" value=\"{max}\">\
         <label for=\"e-exp\">Expiry</label><select id=\"e-exp\" name=\"expires\">{expiry_options}</select>\
         <label for=\"e-client\">Client</label><select id=\"e-client\" name=\"client\">{clients}</select>\
         <label for=\"e-reftype\">Reference</label><select id=\"e-reftype\" name=\"ref_type\">{types}</select>\
         <input id=\"e-ref\" name=\"ref_value\" maxlength=\"500\" aria-label=\"Reference id or URL\" value=\"{refv}\"><p></p>",
        clients = {
            let mut o = super::tags::client_options(d.book, link.client_id, "none");
            if let (Some(id), None) = (link.client_id, d.client) {
                o.push_str(&format!("<option value=\"{id}\" selected>another user's client</option>"));
            }
            o
        },
        types = super::tags::ref_type_options(link.reference.as_ref().map(|r| r.kind.as_str()), "none"),
        refv = esc(link.reference.as_ref().map(|r| r.value.as_str()).unwrap_or("")),
        title = esc(&link.title),
        message = esc(&link.message),
        to = esc(&link.recipients.join(", ")),
        allow = esc(&link.allowed_emails.join(", ")),
        max = link.max_uses.map(|m| m.to_string()).unwrap_or_default(),
    );
    form(
        &format!("/app/links/{}/edit", link.public_id),
        csrf,
        &fields,
        "Save changes",
        "",
    )
}

fn facts(d: &Detail) -> String {
    let (link, now) = (d.link, d.now);
    let mut dl = vec![
        ("Id", esc(&link.public_id)),
        ("Owner", esc(&link.owner)),
        ("Name", text_or_none(&link.name)),
        ("Title", text_or_none(&link.title)),
        ("Kind", link.kind.as_str().to_string()),
        ("Status", badge(status(&rules_of(link), now))),
        ("Created", when(link.created_at)),
        ("Expires", expiry(link, now)),
        ("Uses", uses(link)),
        ("Recipients", list(&link.recipients)),
        (
            "Password",
            if link.password_hash.is_some() {
                "yes"
            } else {
                "no"
            }
            .to_string(),
        ),
        ("Allowed e-mails", list(&link.allowed_emails)),
        (
            "Client",
            match (link.client_id, d.client) {
                (Some(_), Some(c)) => {
                    format!("<a href=\"/app?client={}\">{}</a>", c.id, esc(&c.name))
                }
                // A client the viewer does not see (another user's, unshared).
                (Some(_), None) => "<span class=\"muted\">another user's client</span>".into(),
                (None, _) => text_or_none(""),
            },
        ),
        ("Reference", reference(link)),
    ];
    if !link.message.is_empty() {
        dl.push((
            "Message",
            format!(
                "<span style=\"white-space:pre-wrap\">{}</span>",
                esc(&link.message)
            ),
        ));
    }
    if let Some(t) = link.last_used_at {
        dl.push(("Last used", when(t)));
    }
    if let Some(t) = link.ended_at {
        dl.push(("Revoked", when(t)));
    }
    let items: String = dl
        .into_iter()
        .map(|(k, v)| format!("<dt>{k}</dt><dd>{v}</dd>"))
        .collect();
    format!("<dl>{items}</dl>")
}

fn files_table(link: &Link, files: &[LinkFile]) -> String {
    if files.is_empty() {
        return "<p class=\"muted\">No files (the copies may have been purged).</p>".into();
    }
    let rows: String = files
        .iter()
        .map(|f| {
            let size = if f.is_dir {
                "folder".to_string()
            } else {
                human_size(f.size)
            };
            // Files (not folders) of send and share links: the staff member
            // downloads them through their own session.
            let name = if f.is_dir || link.kind == crate::store::LinkKind::Request {
                esc(&f.name)
            } else {
                format!(
                    "<a href=\"/app/links/{id}/files/{fid}\" download>{name}</a>",
                    id = esc(&link.public_id),
                    fid = f.id,
                    name = esc(&f.name)
                )
            };
            format!(
                "<tr><td>{name}</td><td>{size}</td><td class=\"sha\">{sha}</td></tr>",
                sha = f.sha256.as_deref().map(esc).unwrap_or_default(),
            )
        })
        .collect();
    format!("<table><thead><tr><th>Name</th><th>Size</th><th>SHA-256</th></tr></thead><tbody>{rows}</tbody></table>")
}

fn trail_table(trail: &[AuditRecord]) -> String {
    if trail.is_empty() {
        return "<p class=\"muted\">Nothing recorded yet.</p>".into();
    }
    let opt = |s: &Option<String>| s.as_deref().map(esc).unwrap_or_default();
    let rows: String = trail
        .iter()
        .map(|r| {
            let e = &r.event;
            format!(
                "<tr class=\"small\"><td>{time}</td><td>{remote}</td><td>{actor}</td><td>{action}</td>\
                 <td>{outcome}</td><td>{bytes}</td><td>{detail}</td></tr>",
                time = when(e.ts),
                remote = opt(&e.remote),
                actor = opt(&e.actor),
                action = esc(&e.action),
                outcome = e.outcome.as_str(),
                bytes = e.bytes.map(human_size).unwrap_or_default(),
                detail = opt(&e.detail),
            )
        })
        .collect();
    format!(
        "<div class=\"scroll\"><table><thead><tr><th>Time</th><th>Address</th><th>By</th><th>Action</th><th>Outcome</th>\
         <th>Bytes</th><th>Detail</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )
}

fn actions(d: &Detail, csrf: &str) -> String {
    let link = d.link;
    let base = format!("/app/links/{}", link.public_id);
    let revoked = status(&rules_of(link), d.now) == Status::Revoked;
    let mut out = String::new();
    if revoked && d.admin {
        out.push_str(&form(&format!("{base}/restore"), csrf, "", "Restore", ""));
    }
    if !revoked && !d.presets.is_empty() {
        let options: String = d
            .presets
            .iter()
            .map(|(v, l)| {
                // The usual lifetime of a new link is the likely choice.
                let selected = if *v == "1w" { " selected" } else { "" };
                format!("<option value=\"{v}\"{selected}>{l}</option>")
            })
            .collect();
        let fields = format!(
            "<label for=\"expires\">New expiry</label> <select id=\"expires\" name=\"expires\">{options}</select> "
        );
        out.push_str(&form(
            &format!("{base}/extend"),
            csrf,
            &fields,
            "Extend",
            "",
        ));
        out.push_str(&form(
            &format!("{base}/revoke"),
            csrf,
            "",
            "Cancel (revoke)",
            "danger",
        ));
    }
    out.push_str(&form(
        &format!("{base}/regenerate"),
        csrf,
        "",
        "Regenerate URL",
        "",
    ));
    // Only a working link is mailed again (the service refuses the others too).
    let resend = !link.recipients.is_empty() && status(&rules_of(link), d.now) == Status::Active;
    if resend {
        out.push_str(&form(
            &format!("{base}/resend"),
            csrf,
            "",
            "Resend to recipients",
            "",
        ));
    }
    if d.admin {
        out.push_str(&form(
            &format!("{base}/delete"),
            csrf,
            "<input type=\"checkbox\" id=\"confirm\" name=\"confirm\" value=\"yes\" required> \
             <label for=\"confirm\">Delete this link and its copies</label> ",
            "Delete",
            "danger",
        ));
    }
    // The note explains only the actions shown.
    let mut notes = Vec::new();
    if resend {
        notes.push("Resending mails the same link again.");
    }
    notes.push("Regenerating makes the current URL stop working.");
    if revoked {
        notes.push(if d.admin {
            "This link is cancelled: it keeps its files until retention removes them, and you \
             can restore it until then."
        } else {
            "This link is cancelled: it keeps its files until retention removes them; an \
             administrator can restore it until then."
        });
    } else if !d.presets.is_empty() {
        notes.push(
            "A cancelled link keeps its files until retention removes them; an administrator \
             can restore it until then.",
        );
    }
    format!(
        "<div class=\"actions\">{out}</div><p class=\"muted small\">{}</p>",
        notes.join(" ")
    )
}

pub fn detail(brand: &Brand, staff: &Staff, flash: Option<&Flash>, d: &Detail) -> String {
    let body = format!(
        "<h1>{title}</h1>{url}{facts}<h2>Actions</h2>{actions}{edit}<h2>Files</h2>{files}\
         <h2>Activity</h2><p class=\"muted small\">Newest first, at most 200 entries.</p>{trail}{script}{copy}",
        title = esc(label(d.link)),
        url = url_box(d),
        facts = facts(d),
        actions = actions(d, &staff.csrf),
        edit = if status(&rules_of(d.link), d.now) == Status::Revoked {
            String::new()
        } else {
            format!("<h2>Edit</h2>{}", edit_form(d, &staff.csrf))
        },
        files = files_table(d.link, d.files),
        trail = trail_table(d.trail),
        script = [script("countdown.js"), script("localtime.js")].concat(),
        copy = script("copy.js"),
    );
    frame(brand, staff, label(d.link), flash, &body)
}

/// The answer to an action that made a new URL (it stays on the link's page).
pub fn new_url(brand: &Brand, staff: &Staff, link: &Link, text: &str, url: &str) -> String {
    let body = format!(
        "<h1>{title}</h1><p>{text}</p>\
         <p><label for=\"url\">New URL</label><input id=\"url\" value=\"{url}\" readonly></p>\
         <p><button type=\"button\" data-copy=\"url\">Copy</button></p>\
         <p class=\"muted\">You can copy it again from the link's page.</p>\
         <p><a href=\"/app/links/{id}\">Back to the link</a></p>{script}",
        title = esc(label(link)),
        text = esc(text),
        url = esc(url),
        id = esc(&link.public_id),
        script = script("copy.js"),
    );
    frame(brand, staff, label(link), None, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdowns_read_like_the_script() {
        let now = 1_000_000;
        assert_eq!(remaining(now, now), "expired");
        assert_eq!(remaining(now + 61_000, now), "in 1 min 1 s");
        assert_eq!(
            remaining(now + 3 * 3_600_000 + 120_000, now),
            "in 3 h 2 min"
        );
        assert_eq!(
            remaining(now + 2 * 86_400_000 + 3_600_000, now),
            "in 2 d 1 h"
        );
    }
}
