//! The pages outside parties see: small, server-rendered, working without
//! JavaScript, readable on a phone. Every value from a link or a user goes through
//! [`esc`]; nothing is inserted raw.

use crate::store::{format_ms, Link, LinkFile};

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Branding from the config.
#[derive(Debug, Clone)]
pub struct Brand {
    pub product: String,
    pub accent: String,
    /// A logo is configured (served at `/static/logo`).
    pub logo: bool,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d1f23}\
main{max-width:42rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 4px #0002}\
h1{font-size:1.4rem;margin-top:0}.muted{color:#5b6270;font-size:.9rem}\
table{width:100%;border-collapse:collapse}td{padding:.5rem .25rem;border-top:1px solid #e3e5e9;vertical-align:top}\
.sha{font-family:monospace;font-size:.75rem;word-break:break-all;color:#5b6270}\
a.btn,button{display:inline-block;padding:.5rem 1rem;border-radius:.4rem;border:0;color:#fff;text-decoration:none;font-size:1rem;cursor:pointer}\
label{display:block;margin:.75rem 0 .25rem;font-weight:600}input,textarea{font:inherit;font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box;border:1px solid #9aa1ad;border-radius:.4rem}\
.scroll{overflow-x:auto}\
.err{color:#a4161a;font-weight:600}.logo{max-height:3rem;display:block;margin:0 auto 1rem}\
a:focus,button:focus,input:focus{outline:3px solid #f4b400;outline-offset:2px}\
footer{text-align:center;font-size:.8rem;color:#5b6270;margin:1rem}";

pub fn layout(brand: &Brand, title: &str, body: &str) -> String {
    layout_with_scripts(brand, title, body, &[])
}

/// A page that loads scripts from `/static/` (pages allow no inline script).
pub fn layout_with_scripts(brand: &Brand, title: &str, body: &str, scripts: &[&str]) -> String {
    let scripts: String = scripts
        .iter()
        .map(|s| format!("<script src=\"/static/{}\" defer></script>", esc(s)))
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><link rel=\"icon\" href=\"data:,\"><title>{title} · {product}</title>\
         <style>{STYLE}a.btn,button{{background:{accent}}}</style>{scripts}</head>\
         <body><main>{logo}{body}</main><footer>{product}</footer></body></html>",
        logo = if brand.logo {
            "<img class=\"logo\" src=\"/static/logo\" alt=\"\">"
        } else {
            ""
        },
        title = esc(title),
        product = esc(&brand.product),
        accent = esc(&brand.accent),
    )
}

pub use crate::units::human_size;

/// A deferred script served from `/static/` (the content policy allows only
/// scripts from this origin).
pub fn script(name: &str) -> String {
    format!("<script src=\"/static/{name}\" defer></script>")
}

fn heading(link: &Link) -> &str {
    if link.title.is_empty() {
        "Files for you"
    } else {
        &link.title
    }
}

fn intro(link: &Link) -> String {
    let message = if link.message.is_empty() {
        String::new()
    } else {
        format!(
            "<p style=\"white-space:pre-wrap\">{}</p>",
            esc(&link.message)
        )
    };
    let expiry = link
        .expires_at
        .map(|t| format!("Available until {}.", format_ms(t)))
        .unwrap_or_default();
    format!(
        "<h1>{title}</h1><p class=\"muted\">Shared by {owner}. {expiry}</p>{message}",
        title = esc(heading(link)),
        owner = esc(&link.owner),
    )
}

/// The landing page of an open link: title, message, sender, files.
pub fn landing(brand: &Brand, link: &Link, files: &[LinkFile], base: &str) -> String {
    let mut rows = String::new();
    for f in files {
        let sha = f
            .sha256
            .as_deref()
            .map(|s| format!("<div class=\"sha\">SHA-256 {}</div>", esc(s)))
            .unwrap_or_default();
        let (size, action) = if f.is_dir {
            ("folder".to_string(), "Open")
        } else {
            (human_size(f.size), "Download")
        };
        rows.push_str(&format!(
            "<tr><td><strong>{name}</strong><div class=\"muted\">{size}</div>{sha}</td>\
             <td style=\"text-align:right\"><a class=\"btn\" href=\"{base}/f/{id}\" aria-label=\"{action} {name}\">{action}</a></td></tr>",
            name = esc(&f.name),
            id = f.id,
            base = esc(base),
        ));
    }
    let all = if files.len() > 1 || files.iter().any(|f| f.is_dir) {
        format!(
            "<p><a class=\"btn\" href=\"{}/zip\">Download all (.zip)</a></p>",
            esc(base)
        )
    } else {
        String::new()
    };
    let body = format!("{}<table>{rows}</table>{all}", intro(link));
    layout(brand, heading(link), &body)
}

/// One entry of a shared folder's listing.
pub struct FolderRow {
    pub name: String,
    pub href: String,
    pub is_dir: bool,
    pub size: u64,
}

/// The inside of a shared folder.
pub fn folder(
    brand: &Brand,
    link: &Link,
    path: &str,
    up: Option<&str>,
    rows: &[FolderRow],
    truncated: bool,
) -> String {
    let mut t = String::new();
    if let Some(up) = up {
        t.push_str(&format!(
            "<tr><td><a href=\"{}\">.. (up)</a></td><td></td></tr>",
            esc(up)
        ));
    }
    for r in rows {
        let (label, size) = if r.is_dir {
            (format!("{}/", r.name), "folder".to_string())
        } else {
            (r.name.clone(), human_size(r.size))
        };
        t.push_str(&format!(
            "<tr><td><a href=\"{href}\">{label}</a></td><td class=\"muted\" style=\"text-align:right\">{size}</td></tr>",
            href = esc(&r.href),
            label = esc(&label),
        ));
    }
    let more = if truncated {
        "<p class=\"muted\">This folder has more entries than can be shown.</p>"
    } else {
        ""
    };
    let body = format!(
        "{}<h2 style=\"font-size:1.1rem\">{}</h2><table>{t}</table>{more}",
        intro(link),
        esc(path)
    );
    layout(brand, heading(link), &body)
}

fn form(action: &str, csrf: &str, fields: &str, button: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{fields}\
         <p><button type=\"submit\">{button}</button></p></form>",
        action = esc(action),
        csrf = esc(csrf),
    )
}

fn error_line(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"err\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default()
}

/// The heading of a link whose password has not been given yet.
const LOCKED: &str = "Protected files";

/// Asks for the link's password.
pub fn password_form(brand: &Brand, base: &str, csrf: &str, error: Option<&str>) -> String {
    let fields = "<label for=\"pw\">Password</label>\
                  <input id=\"pw\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required autofocus>";
    // Neither the title nor the message before the password: they are part of
    // what the password protects (a forwarded URL tells nothing).
    let body = format!(
        "<h1>{LOCKED}</h1><p>This link is protected by a password.</p>{}{}",
        error_line(error),
        form(&format!("{base}/password"), csrf, fields, "Open")
    );
    layout(brand, LOCKED, &body)
}

/// Asks for an e-mail address to send a code to.
pub fn email_form(
    brand: &Brand,
    link: &Link,
    base: &str,
    csrf: &str,
    error: Option<&str>,
) -> String {
    let fields = "<label for=\"em\">Your e-mail address</label>\
                  <input id=\"em\" name=\"email\" type=\"email\" autocomplete=\"email\" required autofocus>";
    let body = format!(
        "{}<p>This link is for certain e-mail addresses only. Enter yours and we will send you a code.</p>{}{}",
        intro(link),
        error_line(error),
        form(&format!("{base}/email"), csrf, fields, "Send me a code")
    );
    layout(brand, heading(link), &body)
}

/// Asks for the code; the same whether or not a code was sent.
pub fn code_form(
    brand: &Brand,
    link: &Link,
    base: &str,
    csrf: &str,
    email: &str,
    minutes: u64,
    error: Option<&str>,
) -> String {
    let fields = format!(
        "<input type=\"hidden\" name=\"email\" value=\"{email}\">\
         <label for=\"code\">Code</label>\
         <input id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9 ]*\" autocomplete=\"one-time-code\" maxlength=\"12\" required autofocus>",
        email = esc(email)
    );
    let body = format!(
        "{}<p>If <strong>{email}</strong> may open this link, a 6-digit code is on its way to it. \
         It is valid for {minutes} minutes.</p>{}{}<p class=\"muted\"><a href=\"{base}\">Use another address or ask for a new code</a></p>",
        intro(link),
        error_line(error),
        form(&format!("{base}/code"), csrf, &fields, "Open"),
        email = esc(email),
        base = esc(base),
    );
    layout(brand, heading(link), &body)
}

/// Reloads `url` at once (a same-site navigation, which carries the visitor's
/// SameSite=Strict cookies), with a link for browsers that do not.
pub fn reload(brand: &Brand, url: &str) -> String {
    let page = layout(
        brand,
        "Opening",
        &format!("<p><a href=\"{}\">Continue</a></p>", esc(url)),
    );
    page.replacen(
        "<meta charset=\"utf-8\">",
        &format!(
            "<meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={}\">",
            esc(url)
        ),
        1,
    )
}

/// A page that only explains (not found, ended, not available yet).
pub fn notice(brand: &Brand, title: &str, text: &str) -> String {
    layout(
        brand,
        title,
        &format!("<h1>{}</h1><p>{}</p>", esc(title), esc(text)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_matters() {
        assert_eq!(
            esc("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_500_000), "1.5 MB");
    }
}
