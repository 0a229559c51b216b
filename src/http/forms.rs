//! Cookies, form bodies and the CSRF check of the link server's forms.
//!
//! CSRF is a double-submit token: a random value in a `SameSite=Strict`, HttpOnly
//! cookie and the same value in a hidden field; a POST whose two values differ
//! (compared in constant time) is refused. Another site can neither read the
//! cookie nor make the browser send it.

use std::collections::HashMap;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};
use subtle::ConstantTimeEq;

pub const GRANT_COOKIE: &str = "wharf_grant";
pub const CSRF_COOKIE: &str = "wharf_csrf";
/// Forms hold a password, an address or a code: a few KiB is plenty.
const MAX_FORM: usize = 16 * 1024;

/// The value of cookie `name` in the request. With several (paths differ), the
/// browser sends the most specific path first.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Adds a `Set-Cookie`: HttpOnly, SameSite=Strict, `Secure` when the public
/// address is HTTPS.
pub fn set_cookie(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
    secure: bool,
) {
    let v = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        headers.append(SET_COOKIE, v);
    }
}

/// Why a form was not read.
#[derive(Debug)]
pub enum FormError {
    TooLarge,
    Unreadable,
}

/// Reads an `application/x-www-form-urlencoded` body of at most [`MAX_FORM`] bytes.
pub async fn read_form(body: Incoming) -> Result<HashMap<String, String>, FormError> {
    let bytes = Limited::new(body, MAX_FORM)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                FormError::TooLarge
            } else {
                FormError::Unreadable
            }
        })?
        .to_bytes();
    Ok(parse_urlencoded(&bytes))
}

pub fn parse_urlencoded(body: &[u8]) -> HashMap<String, String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// The CSRF token for a form page: the visitor's, or a new one to set.
pub fn csrf_token(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, CSRF_COOKIE) {
        Some(v) if v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (v.to_string(), false)
        }
        _ => (hex::encode(crate::secret::random_bytes::<16>()), true),
    }
}

/// Whether a POST carries the same CSRF token in its cookie and its form.
pub fn csrf_ok(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    match (cookie(headers, CSRF_COOKIE), form.get("csrf")) {
        (Some(c), Some(f)) => same_secret(c, f),
        _ => false,
    }
}

/// Compares a secret with what a request brought, in constant time; an empty
/// secret never matches.
pub fn same_secret(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// Removes a cookie set by [`set_cookie`] with the same name and path.
pub fn clear_cookie(headers: &mut HeaderMap, name: &str, path: &str, secure: bool) {
    set_cookie(headers, name, "", path, 0, secure);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_forms_and_csrf() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; wharf_csrf=00112233445566778899aabbccddeeff; b=2"),
        );
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        let form = parse_urlencoded(b"csrf=00112233445566778899aabbccddeeff&password=a+b%26c%3D&x");
        assert_eq!(form["password"], "a b&c=");
        assert_eq!(form["x"], "");
        assert!(csrf_ok(&h, &form));
        let other = parse_urlencoded(b"csrf=ffffffffffffffffffffffffffffffff");
        assert!(!csrf_ok(&h, &other));
        assert!(!csrf_ok(&HeaderMap::new(), &form), "no cookie, no pass");
        assert_eq!(
            csrf_token(&h),
            ("00112233445566778899aabbccddeeff".into(), false)
        );
        let (fresh, set) = csrf_token(&HeaderMap::new());
        assert!(set && fresh.len() == 32);
    }
}
