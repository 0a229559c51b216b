//! The one-line message a staff page shows after an action (POST, redirect,
//! GET): carried in a short-lived cookie of the staff pages and removed by the
//! page that shows it. It never holds a secret; a new link URL is shown on the
//! action's own answer instead.

use hyper::header::HeaderMap;
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};

use super::super::{forms, HttpContext};
use super::session::PATH;

const COOKIE: &str = "wharf_flash";
/// Long enough for the redirect that follows the action.
const MAX_AGE: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Done,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub kind: Kind,
    pub text: String,
}

pub fn set(ctx: &HttpContext, headers: &mut HeaderMap, kind: Kind, text: &str) {
    let tag = match kind {
        Kind::Done => "ok.",
        Kind::Error => "err.",
    };
    let value = format!("{tag}{}", utf8_percent_encode(text, NON_ALPHANUMERIC));
    forms::set_cookie(headers, COOKIE, &value, PATH, MAX_AGE, ctx.secure());
}

/// The request's message, if any; the cookie is removed on the response.
pub fn take(ctx: &HttpContext, request: &HeaderMap, response: &mut HeaderMap) -> Option<Flash> {
    let value = forms::cookie(request, COOKIE)?;
    forms::clear_cookie(response, COOKIE, PATH, ctx.secure());
    parse(value)
}

fn parse(value: &str) -> Option<Flash> {
    let (kind, text) = if let Some(t) = value.strip_prefix("ok.") {
        (Kind::Done, t)
    } else {
        (Kind::Error, value.strip_prefix("err.")?)
    };
    let text = percent_decode_str(text).decode_utf8().ok()?.into_owned();
    (!text.is_empty()).then_some(Flash { kind, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_the_cookie() {
        let text = "Link <x> extended; expires 2026-01-01 (é)";
        let value = format!("ok.{}", utf8_percent_encode(text, NON_ALPHANUMERIC));
        assert!(value.bytes().all(|b| b.is_ascii_graphic() && b != b';'));
        assert_eq!(
            parse(&value),
            Some(Flash {
                kind: Kind::Done,
                text: text.into()
            })
        );
        assert_eq!(parse("err.a%20b").unwrap().kind, Kind::Error);
        assert_eq!(parse("junk"), None);
        assert_eq!(parse("ok."), None);
    }
}
