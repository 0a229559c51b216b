//! Validators of a link download (`ETag`, `Last-Modified`) and the evaluation
//! of the conditional headers a client sends with it (RFC 9110 §13):
//! `If-None-Match` and `If-Modified-Since` answer 304, `If-Range` decides
//! whether a `Range` is honoured. Pure: callers bring the entry and headers.
//!
//! The `ETag` is the storage's own entity tag where the connector reports one
//! (S3, GCS, Azure Blob, WebDAV); elsewhere (fs) it is a strong validator made
//! of the size and the modification time in nanoseconds, so a file rewritten
//! in place gets a new one. An entry with neither gets no `ETag`.

use std::time::{SystemTime, UNIX_EPOCH};

use hyper::header::{
    HeaderMap, HeaderValue, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED,
};

use crate::vfs::Entry;

/// What a response tells the client to validate its copy with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The quoted entity tag (`"…"` or `W/"…"`).
    pub etag: Option<String>,
    /// Whole seconds: HTTP dates have no finer resolution.
    pub modified: Option<SystemTime>,
}

impl Validators {
    pub fn of(entry: &Entry) -> Validators {
        let modified = entry.modified.and_then(whole_seconds);
        let etag = match (&entry.etag, entry.modified) {
            (Some(tag), _) => Some(quoted(tag)),
            (None, Some(m)) => m
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|d| format!("\"{:x}-{:x}\"", entry.size, d.as_nanos())),
            (None, None) => None,
        };
        Validators { etag, modified }
    }

    /// The `Last-Modified` value.
    pub fn last_modified(&self) -> Option<String> {
        self.modified.map(httpdate::fmt_http_date)
    }

    /// Sets `ETag` and `Last-Modified` on a response.
    pub fn apply(&self, h: &mut HeaderMap) {
        if let Some(v) = self
            .etag
            .as_deref()
            .and_then(|t| HeaderValue::from_str(t).ok())
        {
            h.insert(ETAG, v);
        }
        if let Some(v) = self
            .last_modified()
            .and_then(|t| HeaderValue::from_str(&t).ok())
        {
            h.insert(LAST_MODIFIED, v);
        }
    }

    fn strong_etag(&self) -> Option<&str> {
        self.etag.as_deref().filter(|t| !t.starts_with("W/"))
    }
}

/// What the conditional headers of a GET or HEAD ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// The client's copy is current: 304, no body, nothing used.
    NotModified,
    /// Send the file; `range_allowed` is false when an `If-Range` did not match
    /// (then the whole file goes out with 200).
    Send { range_allowed: bool },
}

/// Evaluates `If-None-Match` (weak comparison; it overrides
/// `If-Modified-Since`, as RFC 9110 §13.2.2 orders) and `If-Range` (strong
/// comparison, or an exact `Last-Modified` date).
pub fn evaluate(headers: &HeaderMap, v: &Validators) -> Precondition {
    let header = |name| headers.get(name).and_then(|h| h.to_str().ok());
    if let Some(inm) = header(IF_NONE_MATCH) {
        if none_match_hits(inm, v) {
            return Precondition::NotModified;
        }
    } else if let (Some(ims), Some(modified)) = (header(IF_MODIFIED_SINCE), v.modified) {
        if httpdate::parse_http_date(ims.trim()).is_ok_and(|since| modified <= since) {
            return Precondition::NotModified;
        }
    }
    let range_allowed = match header(IF_RANGE) {
        None => true,
        Some(cond) => if_range_matches(cond.trim(), v),
    };
    Precondition::Send { range_allowed }
}

fn none_match_hits(list: &str, v: &Validators) -> bool {
    let list = list.trim();
    if list == "*" {
        // The file exists (the caller stat-ed it).
        return true;
    }
    let Some(ours) = v.etag.as_deref() else {
        return false;
    };
    let ours = opaque(ours);
    list.split(',').any(|t| opaque(t.trim()) == ours)
}

fn if_range_matches(cond: &str, v: &Validators) -> bool {
    if cond.starts_with('"') || cond.starts_with("W/") {
        return !cond.starts_with("W/") && v.strong_etag() == Some(cond);
    }
    match (httpdate::parse_http_date(cond), v.modified) {
        (Ok(date), Some(modified)) => date == modified,
        _ => false,
    }
}

/// The tag without its weakness prefix (weak comparison).
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// A storage tag as an HTTP entity tag: already quoted ones stay as they are.
fn quoted(tag: &str) -> String {
    let tag = tag.trim();
    if tag.starts_with('"') || tag.starts_with("W/\"") {
        tag.to_string()
    } else {
        format!("\"{}\"", tag.replace('"', ""))
    }
}

fn whole_seconds(t: SystemTime) -> Option<SystemTime> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{EntryKind, VPath};
    use std::time::Duration;

    fn file(size: u64, nanos: u64, etag: Option<&str>) -> Entry {
        Entry {
            path: VPath::parse("/a").unwrap(),
            kind: EntryKind::File,
            size,
            modified: Some(UNIX_EPOCH + Duration::from_nanos(nanos)),
            mode: None,
            link: None,
            etag: etag.map(str::to_string),
        }
    }

    fn ask(pairs: &[(hyper::header::HeaderName, &str)], v: &Validators) -> Precondition {
        let mut h = HeaderMap::new();
        for (k, val) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(val).unwrap());
        }
        evaluate(&h, v)
    }

    #[test]
    fn derived_tags_change_with_size_and_time() {
        let a = Validators::of(&file(10, 1_700_000_000_123_456_789, None));
        let b = Validators::of(&file(10, 1_700_000_000_123_456_790, None));
        let c = Validators::of(&file(11, 1_700_000_000_123_456_789, None));
        assert_ne!(a.etag, b.etag);
        assert_ne!(a.etag, c.etag);
        assert!(a.etag.as_deref().unwrap().starts_with('"'));
        assert_eq!(a.last_modified().unwrap(), "Tue, 14 Nov 2023 22:13:20 GMT");
        let s3 = Validators::of(&file(10, 0, Some("\"abc-2\"")));
        assert_eq!(s3.etag.as_deref(), Some("\"abc-2\""));
        let bare = Validators::of(&file(10, 0, Some("0x8D")));
        assert_eq!(bare.etag.as_deref(), Some("\"0x8D\""));
    }

    #[test]
    fn if_none_match_and_if_modified_since() {
        let v = Validators::of(&file(10, 1_700_000_000_500_000_000, Some("\"t1\"")));
        let send = Precondition::Send {
            range_allowed: true,
        };
        assert_eq!(
            ask(&[(IF_NONE_MATCH, "\"t1\"")], &v),
            Precondition::NotModified
        );
        assert_eq!(
            ask(&[(IF_NONE_MATCH, "\"x\", W/\"t1\"")], &v),
            Precondition::NotModified
        );
        assert_eq!(ask(&[(IF_NONE_MATCH, "*")], &v), Precondition::NotModified);
        assert_eq!(ask(&[(IF_NONE_MATCH, "\"t2\"")], &v), send);
        let lm = v.last_modified().unwrap();
        assert_eq!(
            ask(&[(IF_MODIFIED_SINCE, &lm)], &v),
            Precondition::NotModified
        );
        assert_eq!(
            ask(&[(IF_MODIFIED_SINCE, "Tue, 14 Nov 2023 22:13:19 GMT")], &v),
            send
        );
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            ask(&[(IF_NONE_MATCH, "\"t2\""), (IF_MODIFIED_SINCE, &lm)], &v),
            send
        );
        assert_eq!(ask(&[(IF_MODIFIED_SINCE, "nonsense")], &v), send);
    }

    #[test]
    fn if_range_needs_a_strong_match() {
        let v = Validators::of(&file(10, 1_700_000_000_000_000_000, Some("\"t1\"")));
        let yes = Precondition::Send {
            range_allowed: true,
        };
        let no = Precondition::Send {
            range_allowed: false,
        };
        assert_eq!(ask(&[(IF_RANGE, "\"t1\"")], &v), yes);
        assert_eq!(ask(&[(IF_RANGE, "W/\"t1\"")], &v), no);
        assert_eq!(ask(&[(IF_RANGE, "\"t2\"")], &v), no);
        let lm = v.last_modified().unwrap();
        assert_eq!(ask(&[(IF_RANGE, &lm)], &v), yes);
        assert_eq!(ask(&[(IF_RANGE, "Mon, 13 Nov 2023 22:13:20 GMT")], &v), no);
        assert_eq!(ask(&[(IF_RANGE, "garbage")], &v), no);
        let none = Validators::default();
        assert_eq!(ask(&[(IF_RANGE, "\"t1\"")], &none), no);
    }
}
