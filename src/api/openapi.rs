//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of this API, written by
//! hand in `docs/openapi.json` and compiled in. Served without a key, so tools
//! can read it before they have one.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;

use crate::http::Body;

pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

pub fn serve() -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(DOCUMENT.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Every (method, path) the document describes, upper-case methods.
pub fn operations() -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON");
    let mut ops = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
                if item.get(method).is_some() {
                    ops.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    ops.sort();
    ops
}

#[cfg(test)]
mod tests {
    use super::super::routes::ROUTES;
    use super::*;

    #[test]
    fn the_document_describes_exactly_the_routes() {
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(operations(), routes);
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        assert_eq!(doc["openapi"].as_str().unwrap().get(..3), Some("3.1"));
    }
}
