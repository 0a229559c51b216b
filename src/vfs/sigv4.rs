//! AWS Signature Version 4 for the S3 calls wharf makes by hand (the multipart
//! calls of direct uploads, which OpenDAL does not presign): signed request
//! headers, and presigned URLs whose signature covers the path (bucket and
//! key) and every query parameter (so a part URL names one `uploadId` and
//! one `partNumber`, and changing either breaks it).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use wharf_connectors::S3Bucket;

/// The payload hash of a presigned request: the body is the browser's.
const UNSIGNED: &str = "UNSIGNED-PAYLOAD";

/// A request to sign: method, key (unencoded, without the bucket), query
/// pairs (unencoded) and extra headers to sign (lowercase names).
pub struct Req<'a> {
    pub method: &'a str,
    pub key: &'a str,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

/// S3's URI encoding: everything but `A-Za-z0-9-._~` (and `/` in paths).
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the epoch.
pub fn amz_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Where requests for `key` go: (host header, URL prefix up to the path, the
/// canonical path).
pub fn place(b: &S3Bucket, key: &str) -> (String, String, String) {
    let (scheme, host) = b
        .endpoint
        .split_once("://")
        .unwrap_or(("https", b.endpoint.as_str()));
    let full_key = format!("{}{key}", b.root);
    if b.virtual_host {
        let host = format!("{}.{host}", b.bucket);
        let path = format!("/{}", encode(&full_key, true));
        (host.clone(), format!("{scheme}://{host}"), path)
    } else {
        let path = format!("/{}/{}", encode(&b.bucket, false), encode(&full_key, true));
        (host.to_string(), format!("{scheme}://{host}"), path)
    }
}

fn canonical_query(q: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = q
        .iter()
        .map(|(k, v)| (encode(k, false), encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The signature of a canonical request.
fn signature(b: &S3Bucket, date: &str, canonical: &str) -> String {
    let day = &date[..8];
    let scope = format!("{day}/{}/s3/aws4_request", b.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k = hmac(format!("AWS4{}", b.secret_access_key).as_bytes(), day);
    let k = hmac(&k, &b.region);
    let k = hmac(&k, "s3");
    let k = hmac(&k, "aws4_request");
    hex::encode(hmac(&k, &to_sign))
}

fn canonical(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    payload: &str,
) -> (String, String) {
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    hs.sort();
    let signed = hs
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let lines: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    (
        format!("{method}\n{path}\n{query}\n{lines}\n{signed}\n{payload}"),
        signed,
    )
}

/// A presigned URL for `r`, valid `expires` seconds from `now` (seconds since
/// the epoch). `r.headers` (besides `host`) must then be sent as signed.
pub fn presign(b: &S3Bucket, r: &Req<'_>, now: u64, expires: u64) -> String {
    let date = amz_date(now);
    let (host, prefix, path) = place(b, r.key);
    let mut headers = r.headers.clone();
    headers.push(("host".into(), host));
    let signed: Vec<String> = {
        let mut n: Vec<String> = headers
            .iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .collect();
        n.sort();
        n
    };
    let mut query = r.query.clone();
    query.push(("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()));
    query.push((
        "X-Amz-Credential".into(),
        format!(
            "{}/{}/{}/s3/aws4_request",
            b.access_key_id,
            &date[..8],
            b.region
        ),
    ));
    query.push(("X-Amz-Date".into(), date.clone()));
    query.push(("X-Amz-Expires".into(), expires.to_string()));
    query.push(("X-Amz-SignedHeaders".into(), signed.join(";")));
    if let Some(t) = &b.session_token {
        query.push(("X-Amz-Security-Token".into(), t.clone()));
    }
    let q = canonical_query(&query);
    let (creq, _) = canonical(r.method, &path, &q, &headers, UNSIGNED);
    let sig = signature(b, &date, &creq);
    format!("{prefix}{path}?{q}&X-Amz-Signature={sig}")
}

/// The URL and headers (Authorization included) of `r` with `body`, signed at `now`.
pub fn sign(b: &S3Bucket, r: &Req<'_>, body: &[u8], now: u64) -> (String, Vec<(String, String)>) {
    let date = amz_date(now);
    let (host, prefix, path) = place(b, r.key);
    let payload = sha256_hex(body);
    let mut headers = r.headers.clone();
    headers.push(("host".into(), host));
    headers.push(("x-amz-content-sha256".into(), payload.clone()));
    headers.push(("x-amz-date".into(), date.clone()));
    if let Some(t) = &b.session_token {
        headers.push(("x-amz-security-token".into(), t.clone()));
    }
    let q = canonical_query(&r.query);
    let (creq, signed) = canonical(r.method, &path, &q, &headers, &payload);
    let sig = signature(b, &date, &creq);
    headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{}/s3/aws4_request, SignedHeaders={signed}, Signature={sig}",
            b.access_key_id,
            &date[..8],
            b.region
        ),
    ));
    // reqwest sets Host itself (from the URL).
    headers.retain(|(k, _)| k != "host");
    let url = if q.is_empty() {
        format!("{prefix}{path}")
    } else {
        format!("{prefix}{path}?{q}")
    };
    (url, headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> S3Bucket {
        S3Bucket {
            endpoint: "https://s3.amazonaws.com".into(),
            bucket: "examplebucket".into(),
            region: "us-east-1".into(),
            root: String::new(),
            virtual_host: true,
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    #[test]
    fn dates() {
        assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
        assert_eq!(amz_date(951_782_400 + 3_723), "20000229T010203Z");
    }

    /// AWS's published example of a presigned GET (S3 API reference,
    /// "Authenticating Requests: Using Query Parameters").
    #[test]
    fn presigned_get_matches_the_aws_example() {
        let r = Req {
            method: "GET",
            key: "test.txt",
            query: vec![],
            headers: vec![],
        };
        let url = presign(&example(), &r, 1_369_353_600, 86_400);
        assert!(
            url.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
        assert!(url.starts_with("https://examplebucket.s3.amazonaws.com/test.txt?"));
    }

    /// AWS's published example of a header-signed GET with a Range header.
    #[test]
    fn signed_get_matches_the_aws_example() {
        let r = Req {
            method: "GET",
            key: "test.txt",
            query: vec![],
            headers: vec![("range".into(), "bytes=0-9".into())],
        };
        let (_, headers) = sign(&example(), &r, b"", 1_369_353_600);
        let auth = &headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1;
        assert!(
            auth.ends_with(
                "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            ),
            "{auth}"
        );
    }

    #[test]
    fn the_part_and_upload_are_in_the_signature() {
        let b = example();
        let part = |id: &str, n: &str, key: &str| {
            let r = Req {
                method: "PUT",
                key,
                query: vec![
                    ("partNumber".into(), n.into()),
                    ("uploadId".into(), id.into()),
                ],
                headers: vec![("content-length".into(), "5242880".into())],
            };
            let url = presign(&b, &r, 1_369_353_600, 900);
            url.rsplit_once("X-Amz-Signature=").unwrap().1.to_string()
        };
        let a = part("A", "1", "k");
        assert_ne!(a, part("B", "1", "k"));
        assert_ne!(a, part("A", "2", "k"));
        assert_ne!(a, part("A", "1", "other"));
    }
}
