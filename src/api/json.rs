//! Reading and writing JSON: bodies with a size limit and serde's own message on
//! error, responses, query strings, and the opaque cursors of paginated lists.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::http::Body;
use crate::store::Millis;

/// JSON bodies hold link rules and a few names: 64 KiB is plenty.
pub const MAX_JSON: usize = 64 * 1024;

/// Lists answer this many items unless asked for fewer (or more, up to the max).
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

pub fn ok(value: serde_json::Value) -> Response<Body> {
    crate::http::json(StatusCode::OK, &value)
}

pub fn no_content() -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// Reads a whole body of at most `limit` bytes.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    Limited::new(body, limit)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::too_large(limit)
            } else {
                ApiError::invalid("the request body could not be read")
            }
        })
}

/// Parses JSON, answering with serde's message (which names line and column):
/// `bad_json` for text that is not JSON, `invalid_request` for JSON that does not
/// fit (unknown fields, wrong types).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::invalid(e.to_string()),
            Category::Syntax | Category::Eof | Category::Io => ApiError::bad_json(e.to_string()),
        }
    })
}

pub async fn read_json<T: DeserializeOwned>(body: Incoming) -> Result<T, ApiError> {
    parse(&read_body(body, MAX_JSON).await?)
}

/// Like [`read_json`], where an empty body means `{}` (actions without options).
pub async fn read_optional_json<T: DeserializeOwned>(body: Incoming) -> Result<T, ApiError> {
    let bytes = read_body(body, MAX_JSON).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        parse(b"{}")
    } else {
        parse(&bytes)
    }
}

/// The query string's parameters; any name not in `known` is refused, so a typo
/// does not silently widen or narrow what a list returns.
pub fn query(raw: Option<&str>, known: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let params = crate::http::forms::parse_urlencoded(raw.unwrap_or("").as_bytes());
    if let Some(bad) = params.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!(
            "unknown query parameter {bad:?}; this endpoint takes {}",
            known.join(", ")
        )));
    }
    Ok(params)
}

/// `limit` from the query: default, at least 1, at most [`MAX_LIMIT`].
pub fn limit(params: &HashMap<String, String>) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(format!(
                "limit must be a number from 1 to {MAX_LIMIT}"
            ))),
        },
    }
}

/// A position in a list ordered newest first: (time, id) of the last item seen.
pub fn cursor(at: Millis, id: i64) -> String {
    B64.encode(format!("{at}.{id}"))
}

pub fn parse_cursor(params: &HashMap<String, String>) -> Result<Option<(Millis, i64)>, ApiError> {
    let Some(c) = params.get("cursor") else {
        return Ok(None);
    };
    let bad = || ApiError::invalid("the cursor is not one this API returned");
    let text = String::from_utf8(B64.decode(c).map_err(|_| bad())?).map_err(|_| bad())?;
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    Ok(Some((
        at.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    )))
}

/// A boolean query flag: `true` or `false`.
pub fn flag(params: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match params.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::invalid(format!("{name} must be true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let mut p = HashMap::new();
        assert_eq!(parse_cursor(&p).unwrap(), None);
        p.insert("cursor".to_string(), cursor(1_800_000_000_123, 42));
        assert_eq!(parse_cursor(&p).unwrap(), Some((1_800_000_000_123, 42)));
        for bad in ["", "!!", "bm9wZQ"] {
            p.insert("cursor".to_string(), bad.to_string());
            assert!(parse_cursor(&p).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_errors_name_the_place() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        let e = parse::<T>(b"{\"a\": 1,").unwrap_err();
        assert_eq!(e.code, "bad_json");
        assert!(e.message.contains("line 1"), "{}", e.message);
        let e = parse::<T>(b"{\"a\": 1, \"b\": 2}").unwrap_err();
        assert_eq!(e.code, "invalid_request");
        assert!(e.message.contains("unknown field `b`"), "{}", e.message);
    }

    #[test]
    fn limits_and_unknown_parameters() {
        let q = query(Some("limit=5&cursor=x"), &["limit", "cursor"]).unwrap();
        assert_eq!(limit(&q).unwrap(), 5);
        assert!(query(Some("limt=5"), &["limit"]).is_err());
        for bad in ["0", "201", "x"] {
            let q = query(Some(&format!("limit={bad}")), &["limit"]).unwrap();
            assert!(limit(&q).is_err(), "{bad}");
        }
    }
}
