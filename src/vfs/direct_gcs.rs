//! Direct browser uploads to GCS (`direct_uploads = true` on a gcs
//! connector): the GCS counterpart of the S3 multipart calls in
//! `multipart_direct.rs`, which dispatches here.
//!
//! GCS offers browsers no presigned multipart part (its XML multipart API
//! takes V4-signed URLs, which fake-gcs-server neither serves nor checks).
//! What it does offer, emulator included, is the resumable upload session:
//! a session URI, started by an authorized call, is itself the capability to
//! write one object, and needs no signature of its own. So each part is an
//! object of its own, `<staging key>.parts/<part number, five digits>`, and
//! for each part the browser asks for, wharf starts a session for that one
//! object (authorized as OpenDAL authorizes, declaring the part's length) and
//! hands out the session URI; the browser PUTs the part's bytes to it in one
//! request. A URI cannot write another part, another upload's object or
//! anything outside the hidden staging folder: its object is fixed when
//! wharf starts it. Parts are listed as objects (resume, checks), composed in
//! order into the staging object (GCS `compose`, through OpenDAL, in rounds
//! of 32 kept inside the parts folder), then removed; the staging object is hashed and published as for S3.
//!
//! A session left open cannot be cancelled by wharf once handed out (wharf
//! keeps no list of them; GCS lets a session live a week), but it can only
//! ever create its one part object under `.wharf-partial/direct/`, which the
//! Vfs hides; one written after the sweep removed its upload's parts stays
//! there: operators who mind add a lifecycle rule deleting old objects under
//! that prefix.

use wharf_connectors::opendal::{self, Operator};
use wharf_connectors::{http as h, GcsBucket};

use super::direct_shared::{http, DonePart};
use super::sigv4::encode;
use crate::error::{Error, ErrorKind, Result};

/// `origin` of the bucket's endpoint (`scheme://host[:port]`): where
/// browsers send parts.
pub(super) fn origin(b: &GcsBucket) -> String {
    let (scheme, rest) = b
        .endpoint
        .split_once("://")
        .unwrap_or(("https", &b.endpoint));
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// The folder of upload `staged`'s part objects (below the operator's root).
fn parts_dir(staged: &str) -> String {
    format!("{staged}.parts/")
}

/// The object part `n` of upload `staged` is sent to.
fn part_object(staged: &str, n: u64) -> String {
    format!("{}{n:05}", parts_dir(staged))
}

/// The part number an object name in the parts folder stands for.
fn part_number(name: &str) -> Option<u64> {
    (name.len() == 5 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
        .filter(|n| *n > 0)
}

fn failed(what: &str, status: u16) -> Error {
    let kind = match status {
        404 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::PermissionDenied,
        400 => ErrorKind::InvalidInput,
        _ => ErrorKind::Unavailable,
    };
    Error::new(kind, format!("{what}: the bucket answered {status}"))
}

/// Starts a resumable upload session for part `n` (`len` bytes) of upload
/// `staged`: the session URI the browser PUTs the part to.
pub(super) async fn part_url(b: &GcsBucket, staged: &str, n: u64, len: u64) -> Result<String> {
    let name = format!("{}{}", b.root, part_object(staged, n));
    let url = format!(
        "{}/upload/storage/v1/b/{}/o?uploadType=resumable&name={}",
        b.endpoint,
        encode(&b.bucket, false),
        encode(&name, false)
    );
    let mut req = h::Request::post(url)
        .header("content-type", "application/json; charset=UTF-8")
        .header("x-upload-content-type", "application/octet-stream")
        .header("x-upload-content-length", len.to_string());
    if let Some(o) = &b.origin {
        req = req.header("origin", o);
    }
    let (mut parts, ()) = req
        .body(())
        .map_err(|_| Error::internal("a session request"))?
        .into_parts();
    b.authorize(&mut parts)
        .await
        .map_err(|e| Error::new(ErrorKind::Unavailable, e))?;
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .map_err(|_| Error::internal("bad method"))?;
    let mut send = http().request(method, parts.uri.to_string()).body("{}");
    for (k, v) in &parts.headers {
        send = send.header(k.as_str(), v.as_bytes());
    }
    let resp = send.send().await.map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("the bucket did not answer: {}", e.without_url()),
        )
    })?;
    let status = resp.status().as_u16();
    if status != 200 && status != 201 {
        return Err(failed("starting an upload session", status));
    }
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| Error::internal("the bucket gave no session URI"))?;
    // The page may reach the bucket's origin only (its content policy).
    if !location.starts_with(&format!("{}/", origin(b))) {
        return Err(Error::internal(
            "the bucket's session URI lies outside its endpoint",
        ));
    }
    Ok(location)
}

/// The parts of upload `staged` the bucket holds, by number (objects in the
/// parts folder whose names are no part number are left out).
pub(super) async fn parts(op: &Operator, staged: &str) -> Result<Vec<DonePart>> {
    let dir = parts_dir(staged);
    let entries = match op.list(&dir).await {
        Ok(e) => e,
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::from(e).context("listing the uploaded parts")),
    };
    let mut out: Vec<DonePart> = entries
        .into_iter()
        .filter(|e| e.metadata().is_file())
        .filter_map(|e| {
            let name = e.path().rsplit('/').next()?;
            Some(DonePart {
                number: part_number(name)?,
                size: e.metadata().content_length(),
                etag: e.path().to_string(),
            })
        })
        .collect();
    out.sort_by_key(|p| p.number);
    out.dedup_by_key(|p| p.number);
    Ok(out)
}

/// GCS composes at most this many objects in one call.
const COMPOSE_MAX: usize = 32;

/// Joins `parts` (as listed), in order, into the staging object, then
/// removes them. Above [`COMPOSE_MAX`] parts the join goes in rounds whose
/// intermediate objects lie in the upload's parts folder (hidden, and removed
/// with the parts even if the join fails): OpenDAL's own rounds would put
/// them under `__opendal/compose/` at the connector's root, in users' view,
/// and remove them with a batch call fake-gcs-server does not have.
pub(super) async fn complete(op: &Operator, staged: &str, parts: &[DonePart]) -> Result<()> {
    let dir = parts_dir(staged);
    let mut names: Vec<String> = parts.iter().map(|p| p.etag.clone()).collect();
    let mut round = 0;
    while names.len() > COMPOSE_MAX {
        round += 1;
        let mut next = Vec::with_capacity(names.len().div_ceil(COMPOSE_MAX));
        for (i, group) in names.chunks(COMPOSE_MAX).enumerate() {
            let to = format!("{dir}join-{round}-{i:04}");
            op.compose(group.to_vec(), &to)
                .await
                .map_err(|e| Error::from(e).context("joining the uploaded parts"))?;
            next.push(to);
        }
        names = next;
    }
    op.compose(names, staged)
        .await
        .map_err(|e| Error::from(e).context("joining the uploaded parts"))?;
    remove_parts(op, staged).await
}

/// Removes every object in the parts folder of upload `staged` (parts and
/// join intermediates; none is fine), one call each, some at a time:
/// fake-gcs-server has no batch endpoint.
pub(super) async fn remove_parts(op: &Operator, staged: &str) -> Result<()> {
    use futures::{StreamExt, TryStreamExt};
    let dir = parts_dir(staged);
    let entries = match op.list(&dir).await {
        Ok(e) => e,
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::from(e).context("listing the uploaded parts")),
    };
    futures::stream::iter(
        entries
            .into_iter()
            .filter(|e| e.metadata().is_file())
            .map(|e| e.path().to_string()),
    )
    .map(|path| async move { op.delete(&path).await })
    .buffer_unordered(16)
    .try_collect::<Vec<()>>()
    .await
    .map_err(|e| Error::from(e).context("removing the uploaded parts"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_objects_name_their_number() {
        let staged = ".wharf-partial/direct/k";
        assert_eq!(
            part_object(staged, 7),
            ".wharf-partial/direct/k.parts/00007"
        );
        assert_eq!(part_number("00007"), Some(7));
        assert_eq!(part_number("10000"), Some(10_000));
        assert_eq!(part_number("00000"), None);
        assert_eq!(part_number("7"), None);
        assert_eq!(part_number("0000x"), None);
    }

    fn bucket(options: &[(&str, &str)]) -> GcsBucket {
        let spec = wharf_connectors::ConnectorSpec {
            name: "g".into(),
            scheme: "gcs".into(),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        wharf_connectors::gcs_bucket(&spec).unwrap()
    }

    /// The session start carries what OpenDAL would send for the connector's
    /// credentials: a configured OAuth token as a bearer token; nothing when
    /// the connector skips signing (the emulator's case, the only one the
    /// integration tests can show).
    #[tokio::test]
    async fn the_session_start_is_authorized_as_opendal_does() {
        let b = bucket(&[
            ("bucket", "b"),
            ("token", "ya29.test-token"),
            ("disable_config_load", "true"),
            ("disable_vm_metadata", "true"),
        ]);
        let (mut parts, ()) = h::Request::post("https://storage.googleapis.com/upload")
            .body(())
            .unwrap()
            .into_parts();
        b.authorize(&mut parts).await.unwrap();
        assert_eq!(
            parts.headers["authorization"].to_str().unwrap(),
            "Bearer ya29.test-token"
        );
        assert_eq!(origin(&b), "https://storage.googleapis.com");

        let anonymous = bucket(&[("bucket", "b"), ("skip_signature", "true")]);
        let (mut parts, ()) = h::Request::post("http://127.0.0.1:1/upload")
            .body(())
            .unwrap()
            .into_parts();
        anonymous.authorize(&mut parts).await.unwrap();
        assert!(!parts.headers.contains_key("authorization"));
    }
}
