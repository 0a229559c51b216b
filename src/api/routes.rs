//! The API's routes as one table: the router answers exactly these, and the
//! OpenAPI document is checked against the same table, so neither can drift.

use hyper::Method;

use super::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    ListLinks,
    CreateLink,
    GetLink,
    DeleteLink,
    ExtendLink,
    RevokeLink,
    RegenerateLink,
    ResendLink,
    EditLink,
    RestoreLink,
    Audit,
    Users,
    EditUser,
    OpenApi,
}

/// Method, path pattern (`{id}` is one path segment), route.
pub const ROUTES: &[(&str, &str, Route)] = &[
    ("GET", "/api/v1/links", Route::ListLinks),
    ("POST", "/api/v1/links", Route::CreateLink),
    ("GET", "/api/v1/links/{id}", Route::GetLink),
    ("PATCH", "/api/v1/links/{id}", Route::EditLink),
    ("DELETE", "/api/v1/links/{id}", Route::DeleteLink),
    ("POST", "/api/v1/links/{id}/extend", Route::ExtendLink),
    ("POST", "/api/v1/links/{id}/revoke", Route::RevokeLink),
    (
        "POST",
        "/api/v1/links/{id}/regenerate",
        Route::RegenerateLink,
    ),
    ("POST", "/api/v1/links/{id}/resend", Route::ResendLink),
    ("POST", "/api/v1/links/{id}/restore", Route::RestoreLink),
    ("GET", "/api/v1/audit", Route::Audit),
    ("GET", "/api/v1/users", Route::Users),
    ("PATCH", "/api/v1/users/{id}", Route::EditUser),
    ("GET", "/api/v1/openapi.json", Route::OpenApi),
];

/// A request's route and the link id in its path, if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Matched {
    pub route: Route,
    pub id: Option<String>,
}

/// The route for `method` and `path`: 404 if no pattern fits the path, 405 (with
/// the methods it does answer) if one fits but not for this method.
pub fn find(method: &Method, path: &str) -> Result<Matched, ApiError> {
    let mut allowed = Vec::new();
    for (m, pattern, route) in ROUTES {
        let Some(id) = fit(pattern, path) else {
            continue;
        };
        if method.as_str() == *m {
            return Ok(Matched { route: *route, id });
        }
        allowed.push(*m);
    }
    if allowed.is_empty() {
        Err(ApiError::not_found(format!("no such endpoint: {path}")))
    } else {
        Err(ApiError::method_not_allowed(&allowed))
    }
}

/// `Some(id)` when `path` fits `pattern` (`Some(None)` without an `{id}`).
fn fit(pattern: &str, path: &str) -> Option<Option<String>> {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    let mut id = None;
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(id),
            (Some("{id}"), Some(seg)) if !seg.is_empty() => id = Some(seg.to_string()),
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_routes_ids_and_refuses_the_rest() {
        let get = Method::GET;
        assert_eq!(
            find(&get, "/api/v1/links/abc").unwrap(),
            Matched {
                route: Route::GetLink,
                id: Some("abc".into())
            }
        );
        assert_eq!(
            find(&Method::POST, "/api/v1/links/abc/extend")
                .unwrap()
                .route,
            Route::ExtendLink
        );
        assert_eq!(find(&get, "/api/v1/links").unwrap().id, None);
        for missing in [
            "/api/v1/links/",
            "/api/v1/links/a/b",
            "/api/v1",
            "/api/v1/nope",
            "/api/v1/links//extend",
        ] {
            assert_eq!(
                find(&get, missing).unwrap_err().code,
                "not_found",
                "{missing}"
            );
        }
        let e = find(&Method::PUT, "/api/v1/links/abc").unwrap_err();
        assert_eq!(e.code, "method_not_allowed");
        assert!(e.message.contains("GET, PATCH, DELETE"), "{}", e.message);
    }
}
