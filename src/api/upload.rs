//! A send link from files uploaded in the request (`multipart/form-data`): a
//! `link` part with the link's JSON first, then one part per file. Each file
//! streams straight into the transfer store as it arrives; a failure, or a
//! client that goes away mid-upload, leaves neither the link nor any copy.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, TryStreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, CONTENT_TYPE};
use multer::{Constraints, Multipart, SizeLimit};

use super::auth::Caller;
use super::create::{add_paths, origin, Kind, NewLink};
use super::error::ApiError;
use super::json::{self, MAX_JSON};
use crate::error::Error;
use crate::http::HttpContext;
use crate::links::Created;

pub async fn create(
    ctx: &HttpContext,
    caller: &Caller,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<(&'static str, Created), ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| ApiError::invalid(format!("multipart/form-data: {e}")))?;
    let limits = SizeLimit::new().for_field("link", MAX_JSON as u64);
    let stream = Paced::new(body.into_data_stream());
    let mut form =
        Multipart::with_constraints(stream, boundary, Constraints::new().size_limit(limits));

    let first = form.next_field().await.map_err(multipart)?;
    let spec = match first {
        Some(f) if f.name() == Some("link") => {
            json::parse::<NewLink>(&f.bytes().await.map_err(multipart)?)?
        }
        _ => {
            return Err(ApiError::invalid(
                "the first part must be named \"link\" (the link as JSON), before the files",
            ))
        }
    };
    if spec.kind()? != Kind::Send {
        return Err(ApiError::invalid(
            "only send links take uploaded files; share and request links are created with JSON",
        ));
    }
    spec.check_fields(Kind::Send)?;

    let mut draft = ctx
        .service
        .begin_send(caller.name(), &spec.options()?, origin(caller))
        .await?;
    let copied = async {
        add_paths(&mut draft, &spec.paths).await?;
        while let Some(field) = form.next_field().await.map_err(multipart)? {
            let name = file_name(field.name(), field.file_name())?;
            let chunks =
                field.map_err(|e| Error::invalid(format!("reading the uploaded {name:?}: {e}")));
            draft.add_stream(&name, chunks).await?;
        }
        Ok::<_, ApiError>(())
    }
    .await;
    match copied {
        // `finish` refuses a link without files (and removes the draft).
        Ok(()) => Ok(("send", draft.finish().await?)),
        Err(e) => {
            draft.abandon().await;
            Err(e)
        }
    }
}

fn multipart(e: multer::Error) -> ApiError {
    match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            ApiError::too_large(MAX_JSON)
        }
        e => ApiError::invalid(format!("multipart/form-data: {e}")),
    }
}

/// The name a file part is stored under: the last segment of the name the
/// client sent (some send a whole local path), never `.` or `..`.
fn file_name(part: Option<&str>, sent: Option<&str>) -> Result<String, ApiError> {
    let Some(sent) = sent else {
        return Err(ApiError::invalid(format!(
            "part {:?} is not a file (it has no filename); only the first part, \"link\", holds JSON",
            part.unwrap_or_default()
        )));
    };
    let name = sent.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if !crate::vfs::is_plain_name(name) {
        return Err(ApiError::invalid(format!("{sent:?} is not a file name")));
    }
    Ok(name.to_string())
}

/// Hands the body over one chunk per poll. multer reads its source until it
/// would block; over a fast connection that is "forever", and the whole upload
/// would pile up in its buffer while storage is still writing the first chunk.
/// Yielding after each chunk keeps what is buffered to about one chunk.
struct Paced<S> {
    inner: S,
    just_yielded: bool,
}

impl<S> Paced<S> {
    fn new(inner: S) -> Self {
        Paced {
            inner,
            just_yielded: false,
        }
    }
}

impl<S: Stream + Unpin> Stream for Paced<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.just_yielded {
            self.just_yielded = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let next = Pin::new(&mut self.inner).poll_next(cx);
        self.just_yielded = matches!(next, Poll::Ready(Some(_)));
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_one_segment() {
        assert_eq!(file_name(None, Some("a.pdf")).unwrap(), "a.pdf");
        assert_eq!(
            file_name(None, Some("C:\\Users\\x\\b.txt")).unwrap(),
            "b.txt"
        );
        assert_eq!(file_name(None, Some("../../etc/passwd")).unwrap(), "passwd");
        for bad in ["", "..", "dir/", "/"] {
            assert!(file_name(None, Some(bad)).is_err(), "{bad:?}");
        }
        assert!(file_name(Some("x"), None).is_err());
    }

    #[tokio::test]
    async fn paced_streams_give_everything_one_chunk_per_poll() {
        let chunks = futures::stream::iter(vec![Ok::<_, ()>(1), Ok(2), Ok(3)]);
        let got: Vec<i32> = Paced::new(chunks).try_collect().await.unwrap();
        assert_eq!(got, [1, 2, 3]);
    }
}
