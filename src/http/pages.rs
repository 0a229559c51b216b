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
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d1f23}\
main{max-width:42rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 4px #0002}\
h1{font-size:1.4rem;margin-top:0}.muted{color:#5b6270;font-size:.9rem}\
table{width:100%;border-collapse:collapse}td{padding:.5rem .25rem;border-top:1px solid #e3e5e9;vertical-align:top}\
.sha{font-family:monospace;font-size:.75rem;word-break:break-all;color:#5b6270}\
a.btn,button{display:inline-block;padding:.5rem 1rem;border-radius:.4rem;border:0;color:#fff;text-decoration:none;font-size:1rem;cursor:pointer}\
footer{text-align:center;font-size:.8rem;color:#5b6270;margin:1rem}";

pub fn layout(brand: &Brand, title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{title} · {product}</title>\
         <style>{STYLE}a.btn,button{{background:{accent}}}</style></head>\
         <body><main>{body}</main><footer>{product}</footer></body></html>",
        title = esc(title),
        product = esc(&brand.product),
        accent = esc(&brand.accent),
    )
}

pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The landing page of an open link: title, message, sender, files.
pub fn landing(brand: &Brand, link: &Link, files: &[LinkFile], base: &str) -> String {
    let title = if link.title.is_empty() {
        "Files for you"
    } else {
        &link.title
    };
    let mut rows = String::new();
    for f in files {
        let sha = f
            .sha256
            .as_deref()
            .map(|s| format!("<div class=\"sha\">SHA-256 {}</div>", esc(s)))
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td><strong>{name}</strong><div class=\"muted\">{size}</div>{sha}</td>\
             <td style=\"text-align:right\"><a class=\"btn\" href=\"{base}/f/{id}\" download>Download</a></td></tr>",
            name = esc(&f.name),
            size = if f.is_dir { "folder".to_string() } else { human_size(f.size) },
            id = f.id,
            base = esc(base),
        ));
    }
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
    let body = format!(
        "<h1>{title}</h1><p class=\"muted\">Shared by {owner}. {expiry}</p>{message}<table>{rows}</table>",
        title = esc(title),
        owner = esc(&link.owner),
    );
    layout(brand, title, &body)
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
