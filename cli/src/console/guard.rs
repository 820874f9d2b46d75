//! Who may use the console, and what every answer carries.
//!
//! - **Host**: on a loopback address only `localhost`, `127.0.0.1` and
//!   `[::1]` are answered (a DNS-rebinding page cannot reach it by name).
//! - **Token**: when `[console] token` is set (required off loopback), every
//!   request but `/login` and the stylesheet carries `Authorization: Bearer
//!   <token>` or the session cookie the login form sets (HttpOnly,
//!   SameSite=Strict); tokens are compared in constant time.
//! - **CSRF**: every POST but the login carries the console's CSRF token
//!   (form field `csrf` or header `X-Csrf-Token`), unless it has a valid
//!   Bearer token (which a browser never sends on its own).
//! - **Headers**: a strict Content-Security-Policy (no script at all,
//!   `frame-ancestors 'none'`), `X-Content-Type-Options: nosniff`,
//!   `Referrer-Policy: no-referrer`, `Cache-Control: no-store`.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Redirect, Response};
use subtle::ConstantTimeEq as _;

use super::Console;
use crate::error::{Error, Result};

/// The session cookie's name.
pub const COOKIE: &str = "hookline_console";
/// The CSRF header an API client may send instead of the form field.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Largest form body read (the CSRF field is looked for in it).
const MAX_FORM: usize = 256 * 1024;
/// The Content-Security-Policy of every answer.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// 32 random bytes as hex.
///
/// # Errors
/// The system has no randomness (1).
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Failed(format!("no randomness: {e}")))?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `given` equals `expected`, in time independent of where they differ.
pub fn same(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// The session cookie's value for a token: its SHA-256, so the cookie never
/// holds the token itself.
pub fn session_value(token: &str) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(
        format!("hookline-console-session:{token}").as_bytes(),
    ))
}

/// The guard: Host check, authentication, CSRF, then security headers on the answer.
pub async fn check(State(console): State<Arc<Console>>, request: Request, next: Next) -> Response {
    let mut response = match admit(&console, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal,
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn admit(console: &Console, request: Request) -> Result<Request, Response> {
    if console.listen.ip().is_loopback() && !loopback_host(request.headers()) {
        return Err((StatusCode::MISDIRECTED_REQUEST, "unknown Host\n").into_response());
    }
    let path = request.uri().path().to_owned();
    let api = path.starts_with("/api/");
    let bearer = console
        .token
        .as_ref()
        .is_some_and(|token| bearer(request.headers()).is_some_and(|b| same(b, token.expose())));
    if let Some(token) = &console.token
        && !bearer
        && path != "/login"
        && path != "/assets/console.css"
    {
        let session = session_value(token.expose());
        let cookie_ok = cookie(request.headers(), COOKIE).is_some_and(|c| same(&c, &session));
        if !cookie_ok {
            return Err(if api {
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    axum::Json(serde_json::json!({ "error": "a token is required" })),
                )
                    .into_response()
            } else {
                Redirect::to("/login").into_response()
            });
        }
    }
    if request.method() != Method::POST || path == "/login" || bearer {
        return Ok(request);
    }
    if request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| same(v, &console.csrf))
    {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM).await else {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "form too large\n").into_response());
    };
    let csrf_ok = form_urlencoded::parse(&bytes)
        .any(|(name, value)| name == "csrf" && same(&value, &console.csrf));
    if !csrf_ok {
        return Err((
            StatusCode::FORBIDDEN,
            "missing or stale CSRF token: reload the page and try again\n",
        )
            .into_response());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = if host.starts_with('[') {
        host.split(']').next().map(|h| format!("{h}]"))
    } else {
        host.split(':').next().map(str::to_owned)
    };
    matches!(name.as_deref(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole_and_hosts_must_be_loopback() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("ab", "abc"));
        let mut headers = HeaderMap::new();
        for (host, ok) in [
            ("127.0.0.1:8899", true),
            ("localhost:8899", true),
            ("[::1]:8899", true),
            ("evil.example:8899", false),
            ("127.0.0.1.evil.example", false),
        ] {
            headers.insert(header::HOST, HeaderValue::from_static(host));
            assert_eq!(loopback_host(&headers), ok, "{host}");
        }
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; hookline_console=xyz"),
        );
        assert_eq!(cookie(&headers, COOKIE).as_deref(), Some("xyz"));
        assert_ne!(session_value("t"), "t");
        assert_eq!(random_token().map(|t| t.len()).unwrap_or(0), 64);
    }
}
