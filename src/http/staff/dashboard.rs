//! `GET /app`: the dashboard of links. Search (title, name, id, recipients,
//! reference, client, file names), filters (status, kind, client, reference,
//! and owner for administrators), sorting and paging are one query of the
//! store (`Store::link_search`), never a load of every link. Staff see their
//! own links; administrators see everyone's (an owner filter narrows it).

use hyper::header::HeaderMap;
use hyper::Response;

use super::super::pages::{esc, Brand};
use super::super::respond::brand;
use super::super::{Body, HttpContext};
use super::browse::{enc, first, query_pairs};
use super::flash::Flash;
use super::pages::{badge, create_menu, expiry, frame, label, list, reference, script, uses};
use super::session::Staff;
use super::views::shown;
use super::{failed, tags};
use crate::links::rules_of;
use crate::policy::links::status;
use crate::store::{now_ms, Client, Contact, LinkKind, LinkPage, LinkQuery, LinkSort, RefType};

/// Links on one page.
pub const PAGE: usize = 25;

const STATUSES: [&str; 5] = ["active", "draft", "expired", "exhausted", "revoked"];

/// The dashboard's query, as read from the address (unknown values are ignored).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub q: String,
    pub status: String,
    pub kind: String,
    pub client: Option<i64>,
    pub ref_type: String,
    pub reference: String,
    /// Administrators only: `""` is everyone.
    pub owner: String,
    pub sort: LinkSort,
    pub ascending: bool,
    /// 1-based.
    pub page: usize,
}

impl Filters {
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = query_pairs(query);
        let get = |k: &str| first(&pairs, k).unwrap_or("").trim().to_string();
        let pick = |k: &str, allowed: &[&str]| {
            let v = get(k);
            if allowed.contains(&v.as_str()) {
                v
            } else {
                String::new()
            }
        };
        let types: Vec<&str> = RefType::ALL.iter().map(|t| t.as_str()).collect();
        let sort = LinkSort::parse(&get("sort")).unwrap_or_default();
        Filters {
            q: get("q").chars().take(200).collect(),
            status: pick("status", &STATUSES),
            kind: pick("kind", &["send", "share", "request"]),
            client: get("client").parse().ok(),
            ref_type: pick("ref_type", &types),
            reference: get("ref").chars().take(200).collect(),
            owner: get("owner"),
            sort,
            // Names read A to Z by default, the rest newest (or soonest) first.
            ascending: match get("dir").as_str() {
                "asc" => true,
                "desc" => false,
                _ => sort == LinkSort::Title,
            },
            page: get("page").parse().ok().filter(|p| *p >= 1).unwrap_or(1),
        }
    }

    /// The store query of these filters, for `staff`.
    fn query(&self, staff: &Staff) -> LinkQuery {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        LinkQuery {
            owner: if staff.user.admin {
                some(&self.owner)
            } else {
                Some(staff.user.name.clone())
            },
            text: some(&self.q),
            status: some(&self.status),
            kind: LinkKind::parse(&self.kind),
            client_id: self.client,
            ref_type: RefType::parse(&self.ref_type),
            reference: some(&self.reference),
            sort: self.sort,
            ascending: self.ascending,
            offset: (self.page.min(100_000) - 1) * PAGE,
            limit: PAGE,
            now: now_ms(),
            before: None,
        }
    }

    /// The address of these filters with some values replaced.
    fn href(&self, sort: LinkSort, ascending: bool, page: usize) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                parts.push(format!("{k}={}", enc(v)));
            }
        };
        put("q", &self.q);
        put("status", &self.status);
        put("kind", &self.kind);
        put(
            "client",
            &self.client.map(|c| c.to_string()).unwrap_or_default(),
        );
        put("ref_type", &self.ref_type);
        put("ref", &self.reference);
        put("owner", &self.owner);
        if sort != LinkSort::Created {
            put("sort", sort.as_str());
        }
        put("dir", if ascending { "asc" } else { "desc" });
        if page > 1 {
            put("page", &page.to_string());
        }
        format!("/app?{}", parts.join("&"))
    }

    fn filtered(&self) -> bool {
        !(self.q.is_empty()
            && self.status.is_empty()
            && self.kind.is_empty()
            && self.client.is_none()
            && self.ref_type.is_empty()
            && self.reference.is_empty()
            && self.owner.is_empty())
    }
}

/// `GET /app`.
pub async fn dashboard(
    ctx: &HttpContext,
    staff: &Staff,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Response<Body> {
    let filters = Filters::parse(query);
    let q = filters.query(staff);
    let admin = staff.user.admin;
    let found = ctx
        .db
        .run(move |s| {
            let page = s.link_search(&q)?;
            let users = if admin {
                s.user_list()?.into_iter().map(|u| u.name).collect()
            } else {
                Vec::new()
            };
            Ok((page, users))
        })
        .await;
    let (page, users) = match found {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "searching links");
            return failed(ctx);
        }
    };
    let book = tags::book(ctx, staff).await;
    let view = View {
        filters: &filters,
        page: &page,
        users: &users,
        book: &book,
        may_create: crate::links::may_share(&staff.user),
    };
    shown(ctx, headers, |flash| {
        render(&brand(ctx), staff, flash, &view)
    })
}

struct View<'a> {
    filters: &'a Filters,
    page: &'a LinkPage,
    users: &'a [String],
    book: &'a [(Client, Vec<Contact>)],
    may_create: bool,
}

fn options(values: &[&str], chosen: &str, none: &str) -> String {
    let mut out = format!("<option value=\"\">{}</option>", esc(none));
    for v in values {
        out.push_str(&format!(
            "<option value=\"{v}\"{sel}>{v}</option>",
            v = esc(v),
            sel = if *v == chosen { " selected" } else { "" }
        ));
    }
    out
}

/// The search and filter form (a GET: the address keeps the view).
fn search_form(staff: &Staff, v: &View) -> String {
    let f = v.filters;
    let owner = if staff.user.admin {
        let names: Vec<&str> = v.users.iter().map(String::as_str).collect();
        format!(
            "<span class=\"narrow\"><label for=\"f-owner\">Owner</label><select id=\"f-owner\" name=\"owner\">{}</select></span>",
            options(&names, &f.owner, "everyone")
        )
    } else {
        String::new()
    };
    let types: Vec<&str> = RefType::ALL.iter().map(|t| t.as_str()).collect();
    format!(
        "<form class=\"search\" method=\"get\" action=\"/app\" role=\"search\">\
         <span class=\"wide\"><label for=\"f-q\">Search</label><input id=\"f-q\" name=\"q\" type=\"search\" value=\"{q}\" \
         placeholder=\"title, recipient, file name, id…\"></span>\
         <span><label for=\"f-status\">Status</label><select id=\"f-status\" name=\"status\">{status}</select></span>\
         <span><label for=\"f-kind\">Kind</label><select id=\"f-kind\" name=\"kind\">{kind}</select></span>\
         <span><label for=\"f-client\">Client</label><select id=\"f-client\" name=\"client\">{client}</select></span>\
         <span><label for=\"f-reftype\">Reference</label><select id=\"f-reftype\" name=\"ref_type\">{ref_types}</select></span>\
         <span><label for=\"f-ref\">Reference id</label><input id=\"f-ref\" name=\"ref\" value=\"{reference}\"></span>\
         {owner}\
         <span class=\"narrow\"><label for=\"f-sort\">Sort by</label><select id=\"f-sort\" name=\"sort\">{sort}</select></span>\
         <span class=\"narrow\"><label for=\"f-dir\">Order</label><select id=\"f-dir\" name=\"dir\">{dir}</select></span>\
         <span class=\"go\"><button type=\"submit\">Search</button>{clear}</span></form>",
        q = esc(&f.q),
        status = options(&STATUSES, &f.status, "any"),
        kind = options(&["send", "share", "request"], &f.kind, "any"),
        client = tags::client_options(v.book, f.client, "any"),
        ref_types = options(&types, &f.ref_type, "any"),
        reference = esc(&f.reference),
        sort = sort_options(f),
        dir = dir_options(f),
        clear = if f.filtered() {
            " <a href=\"/app\">Clear</a>"
        } else {
            ""
        },
    )
}

fn sort_options(f: &Filters) -> String {
    [
        (LinkSort::Created, "creation"),
        (LinkSort::Expires, "expiry"),
        (LinkSort::Title, "name"),
        (LinkSort::Uses, "uses"),
    ]
    .iter()
    .map(|(k, label)| {
        let sel = if *k == f.sort { " selected" } else { "" };
        format!("<option value=\"{}\"{sel}>{label}</option>", k.as_str())
    })
    .collect()
}

fn dir_options(f: &Filters) -> String {
    let (d, a) = if f.ascending {
        ("", " selected")
    } else {
        (" selected", "")
    };
    format!(
        "<option value=\"desc\"{d}>descending</option><option value=\"asc\"{a}>ascending</option>"
    )
}

/// A column heading that sorts by `sort` (again: the other way round).
fn heading(f: &Filters, text: &str, sort: LinkSort) -> String {
    let current = f.sort == sort;
    let ascending = if current {
        !f.ascending
    } else {
        sort == LinkSort::Title
    };
    let (mark, aria) = match (current, f.ascending) {
        (false, _) => ("", "none"),
        (true, true) => (" ▲", "ascending"),
        (true, false) => (" ▼", "descending"),
    };
    format!(
        "<th aria-sort=\"{aria}\"><a href=\"{href}\">{text}{mark}</a></th>",
        href = esc(&f.href(sort, ascending, 1)),
    )
}

fn pager(f: &Filters, total: usize) -> String {
    let pages = total.div_ceil(PAGE).max(1);
    let here = f.page.min(pages);
    let prev = if here > 1 {
        format!(
            "<a rel=\"prev\" href=\"{}\">← Previous</a>",
            esc(&f.href(f.sort, f.ascending, here - 1))
        )
    } else {
        String::new()
    };
    let next = if here < pages {
        format!(
            "<a rel=\"next\" href=\"{}\">Next →</a>",
            esc(&f.href(f.sort, f.ascending, here + 1))
        )
    } else {
        String::new()
    };
    format!(
        "<nav class=\"pager\" aria-label=\"Pages\">{prev}<span class=\"muted\">Page {here} of {pages} · {total} link{s}</span>{next}</nav>",
        s = if total == 1 { "" } else { "s" }
    )
}

fn render(brand: &Brand, staff: &Staff, flash: Option<&Flash>, v: &View) -> String {
    let f = v.filters;
    let now = now_ms();
    let admin = staff.user.admin;
    let mut t = String::new();
    for row in &v.page.rows {
        let link = &row.link;
        let sub = if !link.name.is_empty() && !link.title.is_empty() {
            format!("<div class=\"muted small\">{}</div>", esc(&link.title))
        } else {
            String::new()
        };
        let owner = if admin {
            format!("<td data-label=\"Owner\">{}</td>", esc(&link.owner))
        } else {
            String::new()
        };
        let client = match &row.client {
            Some(c) => esc(c),
            None => "<span class=\"muted\">none</span>".into(),
        };
        t.push_str(&format!(
            "<tr><td><a href=\"/app/links/{id}\">{label}</a>{sub}<div class=\"muted small\">{id}</div></td>{owner}\
             <td data-label=\"Kind\">{kind}</td><td data-label=\"Status\">{status}</td>\
             <td data-label=\"Expires\">{expiry}</td><td data-label=\"Recipients\">{recipients}</td>\
             <td data-label=\"Client\">{client}<div class=\"small\">{reference}</div></td>\
             <td data-label=\"Files\">{files}</td><td data-label=\"Uses\">{uses}</td></tr>",
            id = esc(&link.public_id),
            label = esc(label(link)),
            kind = link.kind.as_str(),
            status = badge(status(&rules_of(link), now)),
            expiry = expiry(link, now),
            recipients = list(&link.recipients),
            reference = if link.reference.is_some() {
                reference(link)
            } else {
                String::new()
            },
            files = row.files,
            uses = uses(link),
        ));
    }
    let table = if v.page.rows.is_empty() {
        if f.filtered() {
            "<p class=\"muted\">No link matches. <a href=\"/app\">Show all</a></p>".to_string()
        } else if admin {
            "<p class=\"muted\">There are no links yet.</p>".to_string()
        } else if !v.may_create {
            "<p class=\"muted\">You have no links.</p>".to_string()
        } else {
            "<p class=\"muted\">You have no links yet. Create one with “+ Create”, or with <code>wharf link send</code>, <code>share</code> or <code>request</code>.</p>".to_string()
        }
    } else {
        format!(
            "<table class=\"links\"><thead><tr>{h_link}{h_owner}<th>Kind</th><th>Status</th>{h_exp}\
             <th>Recipients</th><th>Client</th><th>Files</th>{h_uses}</tr></thead><tbody>{t}</tbody></table>{pager}",
            h_link = heading(f, "Link", LinkSort::Title),
            h_owner = if admin { "<th>Owner</th>" } else { "" },
            h_exp = heading(f, "Expires", LinkSort::Expires),
            h_uses = heading(f, "Uses", LinkSort::Uses),
            pager = pager(f, v.page.total),
        )
    };
    let title = if admin { "All links" } else { "Your links" };
    let body = format!(
        "{STYLE}<div class=\"head\"><h1>{title}</h1>{menu}</div>{search}{table}{scripts}",
        menu = if v.may_create {
            create_menu(&brand.accent)
        } else {
            // The menu's styles hold the table's phone layout too.
            create_menu(&brand.accent)
                .split_once("<details")
                .map(|(style, _)| style.to_string())
                .unwrap_or_default()
        },
        search = search_form(staff, v),
        scripts = [script("countdown.js"), script("localtime.js")].concat(),
    );
    frame(brand, staff, title, flash, &body)
}

const STYLE: &str = "<style>form.search{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;margin:1rem 0;\
padding:.75rem;border:1px solid #e3e5e9;border-radius:.5rem}form.search label{margin:0 0 .2rem;font-size:.85rem}\
form.search span{flex:1 1 8rem}form.search span.wide{flex:3 1 16rem}form.search span.go{flex:0 0 auto;white-space:nowrap}form.search span.narrow{flex:0 1 11rem}\
form.search select{width:100%}th a{color:inherit;text-decoration:none}th a:hover{text-decoration:underline}\
nav.pager{display:flex;justify-content:space-between;gap:1rem;margin:1rem 0;flex-wrap:wrap}\
th[aria-sort=none] a::after{content:\" ↕\";color:#9aa1ad}</style>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_and_write_the_address() {
        let f = Filters::parse(Some(
            "q=acme+q3&status=expired&kind=nope&client=4&sort=title&page=3&ref=OPS-1",
        ));
        assert_eq!(f.q, "acme q3");
        assert_eq!(f.status, "expired");
        assert_eq!(f.kind, "", "unknown values are ignored");
        assert_eq!(f.client, Some(4));
        assert!(f.ascending, "names sort A to Z first");
        assert_eq!(f.page, 3);
        let href = f.href(f.sort, f.ascending, 4);
        let again = Filters::parse(href.strip_prefix("/app?"));
        assert_eq!(
            (again.q.as_str(), again.page, again.reference.as_str()),
            ("acme q3", 4, "OPS-1")
        );
        assert_eq!(Filters::parse(Some("page=0")).page, 1);
    }
}
