//! The HTML part of every mail, made from its plain text: the white label
//! (logo, product name, accent colour), the text's paragraphs escaped, and the
//! mail's call to action as a button. Tables and inline styles only: that is
//! what mail clients render alike.

use super::{Mail, MailBrand};
use crate::http::pages::esc;

/// A colour safe to put in a style attribute (`#0b6e4f`, `teal`); anything
/// else falls back to the default accent.
fn colour(accent: &str) -> &str {
    let ok = !accent.is_empty()
        && accent.len() <= 32
        && accent
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '#');
    if ok {
        accent
    } else {
        "#0b6e4f"
    }
}

pub fn render(brand: &MailBrand, mail: &Mail) -> String {
    let accent = colour(&brand.accent);
    let mut paragraphs = String::new();
    let mut button_done = false;
    for para in mail.body.split("\n\n") {
        let para = para.trim_matches('\n');
        if para.is_empty() {
            continue;
        }
        // The line that carries the button's URL becomes the button.
        if let Some((label, url)) = &mail.button {
            if !button_done && para.contains(url.as_str()) {
                paragraphs.push_str(&button(label, url, accent));
                button_done = true;
                continue;
            }
        }
        let lines: Vec<String> = para.lines().map(esc).collect();
        paragraphs.push_str(&format!(
            "<p style=\"margin:0 0 16px;line-height:1.5\">{}</p>",
            lines.join("<br>")
        ));
    }
    if let (Some((label, url)), false) = (&mail.button, button_done) {
        paragraphs.push_str(&button(label, url, accent));
    }
    let logo = brand
        .logo_url
        .as_deref()
        .map(|u| {
            format!(
                "<img src=\"{}\" alt=\"{}\" style=\"max-height:48px;display:block;margin:0 0 8px\">",
                esc(u),
                esc(&brand.product)
            )
        })
        .unwrap_or_default();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{subject}</title></head>\
         <body style=\"margin:0;padding:0;background:#f5f6f8;font-family:Arial,Helvetica,sans-serif;color:#1d1f23\">\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" style=\"background:#f5f6f8\"><tr><td align=\"center\" style=\"padding:24px 12px\">\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" style=\"max-width:560px;background:#ffffff;border-radius:8px;border-top:4px solid {accent}\">\
         <tr><td style=\"padding:24px 28px 8px\">{logo}<div style=\"font-size:18px;font-weight:bold;color:{accent}\">{product}</div></td></tr>\
         <tr><td style=\"padding:8px 28px 16px;font-size:15px\">{paragraphs}</td></tr>\
         </table>\
         <p style=\"font-size:12px;color:#5b6270;margin:16px 0 0\">{product}</p>\
         </td></tr></table></body></html>",
        subject = esc(&mail.subject),
        product = esc(&brand.product),
    )
}

fn button(label: &str, url: &str, accent: &str) -> String {
    format!(
        "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" style=\"margin:8px 0 20px\"><tr>\
         <td style=\"border-radius:6px;background:{accent}\">\
         <a href=\"{url}\" style=\"display:inline-block;padding:12px 22px;color:#ffffff;text-decoration:none;font-weight:bold;font-size:15px\">{label}</a>\
         </td></tr></table>\
         <p style=\"margin:0 0 16px;font-size:12px;color:#5b6270;word-break:break-all\">Or open {url_text}</p>",
        url = esc(url),
        url_text = esc(url),
        label = esc(label),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_uses_a_safe_colour() {
        let mail = Mail {
            kind: "link",
            to: vec![],
            reply_to: None,
            subject: "s".into(),
            body: "Hello <b>,\n\nOpen: https://x/l/t?a=1&b=2\n\nBye".into(),
            button: Some(("Open".into(), "https://x/l/t?a=1&b=2".into())),
        };
        let brand = MailBrand {
            accent: "red;background:url(x)".into(),
            ..MailBrand::default()
        };
        let h = render(&brand, &mail);
        assert!(h.contains("Hello &lt;b&gt;,"), "{h}");
        assert!(h.contains("href=\"https://x/l/t?a=1&amp;b=2\""), "{h}");
        assert!(!h.contains("url(x)"), "{h}");
        assert_eq!(h.matches("href=").count(), 1);
    }
}
