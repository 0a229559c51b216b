//! `POST /api/v1/links`: a new send, share or request link, from a JSON body or
//! (send only) a multipart form whose files are uploaded in the request. The
//! answer is the link and its URL — the only time, with regenerate, that a URL
//! is ever shown.

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::json;
use super::{record, upload, view};
use crate::http::{Body, HttpContext};
use crate::links::{Created, Draft, LinkOptions, Origin, RequestOptions, Source};
use crate::policy::Protocol;
use crate::store::{now_ms, RefType, Reference};

/// The JSON of a new link: its kind, where its files come from, and its rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    pub kind: String,
    /// Paths as the caller sees them: files to copy (send) or to share.
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub recipients: Vec<String>,
    pub expires: Option<String>,
    pub password: Option<String>,
    pub max_uses: Option<u32>,
    #[serde(default)]
    pub allowed_emails: Vec<String>,
    /// Request links: where uploads go, and their limits.
    pub folder: Option<String>,
    pub max_files: Option<u32>,
    pub max_size: Option<u64>,
    pub notify: Option<bool>,
    /// The client (address book) the link is for.
    pub client_id: Option<i64>,
    pub reference: Option<RefJson>,
}

/// A link's reference in JSON: `{"type": "ticket", "value": "OPS-42"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefJson {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

impl RefJson {
    pub fn checked(&self) -> Result<Reference, ApiError> {
        let kind = RefType::parse(&self.kind).ok_or_else(|| {
            ApiError::invalid(format!(
                "reference type {:?} is not one of project, ticket, resource, other",
                self.kind
            ))
        })?;
        Reference::new(kind, &self.value).map_err(ApiError::invalid)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Send,
    Share,
    Request,
}

impl NewLink {
    pub fn kind(&self) -> Result<Kind, ApiError> {
        match self.kind.as_str() {
            "send" => Ok(Kind::Send),
            "share" => Ok(Kind::Share),
            "request" => Ok(Kind::Request),
            other => Err(unsupported(format!(
                "kind {other:?} is not one of send, share, request"
            ))),
        }
    }

    /// Refuses fields that mean nothing for the link's kind, rather than
    /// ignoring what the caller thought they asked for.
    pub fn check_fields(&self, kind: Kind) -> Result<(), ApiError> {
        let request_fields = self.folder.is_some()
            || self.max_files.is_some()
            || self.max_size.is_some()
            || self.notify.is_some();
        match kind {
            Kind::Request if !self.paths.is_empty() => Err(ApiError::invalid(
                "paths are for send and share links; a request link takes a folder",
            )),
            Kind::Send | Kind::Share if request_fields => Err(ApiError::invalid(
                "folder, max_files, max_size and notify are for request links",
            )),
            _ => Ok(()),
        }
    }

    pub fn options(&self) -> Result<LinkOptions, ApiError> {
        Ok(LinkOptions {
            client: self.client_id,
            reference: self.reference.as_ref().map(RefJson::checked).transpose()?,
            name: self.name.clone(),
            title: self.title.clone(),
            message: self.message.clone(),
            recipients: self.recipients.clone(),
            expires: self.expires.clone(),
            password: self.password.clone(),
            max_uses: self.max_uses,
            allowed_emails: self.allowed_emails.clone(),
            recipient_names: Vec::new(),
        })
    }
}

pub fn unsupported(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "unsupported_kind", message)
}

/// Files read for an API caller are audited as theirs, over http, from their address.
pub fn origin(caller: &Caller) -> Origin {
    Origin {
        protocol: Protocol::Http,
        remote: Some(caller.remote),
    }
}

pub async fn create(
    ctx: &HttpContext,
    caller: &Caller,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let multipart = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("multipart/"));
    let res = if multipart {
        upload::create(ctx, caller, &parts.headers, body).await
    } else {
        from_json(ctx, caller, body).await
    };
    let (kind, created) = match res {
        Ok(r) => r,
        Err(e) => return record(ctx, caller, "link_create", None, "", Err(e)).await,
    };
    let id = created.link.public_id.clone();
    record(ctx, caller, "link_create", Some(&id), kind, Ok(())).await?;
    let files = ctx.service.files(&created.link).await?;
    let body = json!({
        "link": view::link_with_files(&created.link, &files, now_ms()),
        "url": created.url,
        "mail_error": created.mail_error,
    });
    let mut r = crate::http::json(StatusCode::CREATED, &body);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/links/{id}")) {
        r.headers_mut().insert(LOCATION, v);
    }
    Ok(r)
}

async fn from_json(
    ctx: &HttpContext,
    caller: &Caller,
    body: Incoming,
) -> Result<(&'static str, Created), ApiError> {
    let spec: NewLink = json::read_json(body).await?;
    let kind = spec.kind()?;
    spec.check_fields(kind)?;
    match kind {
        Kind::Share => {
            let created = ctx
                .service
                .share(caller.name(), &spec.paths, &spec.options()?)
                .await?;
            Ok(("share", created))
        }
        Kind::Send => {
            if spec.paths.is_empty() {
                return Err(ApiError::invalid(
                    "a send link needs paths (your files to copy), or files uploaded \
                     as multipart/form-data",
                ));
            }
            let mut draft = ctx
                .service
                .begin_send(caller.name(), &spec.options()?, origin(caller))
                .await?;
            if let Err(e) = add_paths(&mut draft, &spec.paths).await {
                draft.abandon().await;
                return Err(e);
            }
            Ok(("send", draft.finish().await?))
        }
        Kind::Request => {
            let folder = spec.folder.as_deref().ok_or_else(|| {
                ApiError::invalid("a request link needs the folder uploads go into")
            })?;
            let r = RequestOptions {
                max_files: spec.max_files,
                max_size: spec.max_size,
                notify: spec
                    .notify
                    .unwrap_or_else(|| ctx.service.notify_uploads_default()),
            };
            let created = ctx
                .service
                .request(caller.name(), folder, &r, &spec.options()?)
                .await?;
            Ok(("request", created))
        }
    }
}

/// Copies the caller's files at `paths` into a send link being made.
pub async fn add_paths(draft: &mut Draft<'_>, paths: &[String]) -> Result<(), ApiError> {
    for p in paths {
        draft.add(&Source::Stored(p.clone())).await?;
    }
    Ok(())
}
