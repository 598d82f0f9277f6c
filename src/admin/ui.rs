//! The dashboard's static files, compiled into the binary (`ui/dist/`, built from `ui/src/` by
//! esbuild and committed, so building the proxy never needs Node), and the headers every admin
//! response carries.
//!
//! The shell is public (it holds no data; the browser cannot attach a bearer token to a page
//! load): everything it shows comes from `/api/v1/…` under the usual gates. The token the user
//! types is kept in `sessionStorage` of this origin and sent as `Authorization`, never as a
//! cookie, so a cross-site page can neither read it nor ride on it (no CSRF surface).

use hyper::header::{HeaderMap, HeaderValue};

/// No inline script or style, nothing from elsewhere, never framed (the Approve buttons must
/// not be clickjacked), no form posts, no plugins.
pub const CSP: &str = "default-src 'self'; base-uri 'none'; form-action 'none'; \
                       frame-ancestors 'none'; object-src 'none'";

/// `(content type, body)` of a dashboard file; `None` for any other path.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    match path {
        "/" | "/index.html" => Some((
            "text/html; charset=utf-8",
            include_bytes!("ui/dist/index.html"),
        )),
        "/ui/app.js" => Some((
            "text/javascript; charset=utf-8",
            include_bytes!("ui/dist/app.js"),
        )),
        "/ui/app.css" => Some(("text/css; charset=utf-8", include_bytes!("ui/dist/app.css"))),
        // Browsers ask for it on their own; an empty icon keeps the console free of 404s.
        "/favicon.ico" => Some(("image/x-icon", b"")),
        _ => None,
    }
}

/// Security headers on every admin response (JSON and probes too: they cost nothing there).
pub fn harden(h: &mut HeaderMap) {
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// A browser request is let through only from the dashboard itself: its `Origin` is exactly
/// `http://` + the `Host` it was sent to. Any other page (another origin, `null`, a sandboxed
/// frame) is refused; DNS rebinding is the Host gate's job (loopback binds) and the token's.
pub fn same_origin(origin: &str, host: Option<&str>) -> bool {
    host.is_some_and(|h| !h.is_empty() && origin.strip_prefix("http://") == Some(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_dashboard_itself_is_same_origin() {
        assert!(same_origin("http://127.0.0.1:9464", Some("127.0.0.1:9464")));
        for (origin, host) in [
            ("http://evil.example", Some("127.0.0.1:9464")),
            ("null", Some("127.0.0.1:9464")),
            ("http://127.0.0.1:9464", Some("127.0.0.1")),
            ("https://127.0.0.1:9464", Some("127.0.0.1:9464")),
            ("http://127.0.0.1:9464", None),
            ("http://", Some("")),
        ] {
            assert!(!same_origin(origin, host), "{origin} {host:?}");
        }
    }

    #[test]
    fn the_bundle_is_embedded() {
        let (ty, html) = asset("/").expect("index");
        assert!(ty.starts_with("text/html"));
        let html = String::from_utf8_lossy(html);
        assert!(
            html.contains("/ui/app.js") && !html.contains("<script>"),
            "no inline script"
        );
        assert!(asset("/ui/app.js").is_some_and(|(_, b)| !b.is_empty()));
        assert!(asset("/etc/passwd").is_none());
    }
}
