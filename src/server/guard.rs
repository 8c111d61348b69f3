//! Who may talk to the server: the bearer token, the browser `Origin`, and the `Host` a loopback
//! server answers to.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ServerState;

/// Refuses requests from foreign origins, with the wrong token, or (on a loopback bind) for a
/// foreign host name; passes the rest on.
pub(super) async fn check_request(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(is_local_origin);
        if !allowed {
            tracing::warn!(origin = ?origin, path = %request.uri().path(), "refused a request from a foreign origin");
            return refuse(
                StatusCode::FORBIDDEN,
                "requests from web pages other than http://localhost are refused",
            );
        }
    }
    if !state.options.remote {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if host.is_some_and(|host| !is_loopback_host(host)) {
            tracing::warn!(host = ?host, "refused a request for a foreign host name");
            return refuse(
                StatusCode::FORBIDDEN,
                "this server only answers to localhost, 127.0.0.1 and [::1]",
            );
        }
    }
    if let Some(expected) = &state.options.token {
        let given = bearer_token(headers).or_else(|| query_token(request.uri().query()));
        let valid =
            given.is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes()));
        if !valid {
            tracing::warn!(path = %request.uri().path(), "refused a request without the right token");
            let mut response = refuse(
                StatusCode::UNAUTHORIZED,
                "a bearer token is required: send `Authorization: Bearer TOKEN` or `?token=TOKEN`",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    next.run(request).await
}

fn refuse(status: StatusCode, message: &'static str) -> Response {
    (status, format!("{message}\n")).into_response()
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The `token` parameter of a query string (percent-decoded; `+` stays `+`, as tokens are
/// often base64).
fn query_token(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "token").then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Compares in time that depends only on the lengths, so the token cannot be guessed byte by
/// byte from response times.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `http(s)://localhost`, `127.0.0.1` or `[::1]`, with any port.
fn is_local_origin(origin: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
        && !authority.contains('/')
        && is_loopback_authority(authority)
}

/// `localhost`, `127.0.0.1` or `[::1]`, with an optional port.
fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || valid_port(after) => {
                return inside == "::1";
            }
            _ => return false,
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) if valid_port(&format!(":{port}")) => host,
            Some(_) => return false,
            None => authority,
        }
    };
    host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1"
}

/// A `Host` header naming this machine by a loopback name or address (`localhost`, any
/// `127.x.x.x`, `[::1]`), with an optional port.
fn is_loopback_host(authority: &str) -> bool {
    if is_loopback_authority(authority) {
        return true;
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if valid_port(&format!(":{port}")) => host,
        Some(_) => return false,
        None => authority,
    };
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn valid_port(text: &str) -> bool {
    text.strip_prefix(':')
        .is_some_and(|port| port.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_origins_are_allowed() {
        for origin in [
            "http://localhost",
            "http://localhost:3000",
            "https://127.0.0.1:8443",
            "http://[::1]:7777",
            "HTTP://LOCALHOST",
        ] {
            assert!(is_local_origin(origin), "{origin}");
        }
    }

    #[test]
    fn foreign_origins_are_refused() {
        for origin in [
            "null",
            "https://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "http://localhost:3000/path",
            "file://",
            "ws://localhost",
            "http://[::2]",
            "http://localhost:notaport",
        ] {
            assert!(!is_local_origin(origin), "{origin}");
        }
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in ["localhost:7777", "127.0.0.1", "127.0.1.1:80", "[::1]:7777"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "10.0.0.1:7777",
            "127.0.0.1.evil.example",
            "[::2]",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn tokens_come_from_the_header_or_the_query() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert_eq!(bearer_token(&headers).as_deref(), Some("s3cret"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
        assert_eq!(
            query_token(Some("a=1&token=x%2By%3D")).as_deref(),
            Some("x+y=")
        );
        assert_eq!(query_token(Some("tokens=1")), None);
        assert_eq!(query_token(None), None);
    }

    #[test]
    fn comparison_needs_equal_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
