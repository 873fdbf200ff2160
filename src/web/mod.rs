//! Server-rendered pages: zh-CN, usable on a phone, no JavaScript. Templates
//! live in `templates/`, are compiled into the binary, and are rendered by
//! minijinja with HTML autoescape; every page extends `base.html`.

pub mod agent;
pub mod charts;
pub mod common;
pub mod dashboard;
pub mod dashboard_model;
pub mod dispatch;
pub mod headers;
pub mod inbox;
pub mod public;
pub mod session;
pub mod ticket_page;

use std::sync::LazyLock;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use minijinja::Environment;

use crate::api::error::problem;

/// `(name, source)`: a name ending in `.html` is autoescaped.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("notice.html", include_str!("../../templates/notice.html")),
    ("mailbox.html", include_str!("../../templates/mailbox.html")),
    (
        "mailbox_done.html",
        include_str!("../../templates/mailbox_done.html"),
    ),
    ("track.html", include_str!("../../templates/track.html")),
    ("staff.html", include_str!("../../templates/staff.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("home.html", include_str!("../../templates/home.html")),
    ("ticket.html", include_str!("../../templates/ticket.html")),
    ("inbox.html", include_str!("../../templates/inbox.html")),
    (
        "dispatch.html",
        include_str!("../../templates/dispatch.html"),
    ),
    (
        "dispatch_row.html",
        include_str!("../../templates/dispatch_row.html"),
    ),
    ("agent.html", include_str!("../../templates/agent.html")),
    (
        "dashboard.html",
        include_str!("../../templates/dashboard.html"),
    ),
    (
        "dashboard_live.html",
        include_str!("../../templates/dashboard_live.html"),
    ),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        // A broken template is caught by the tests; here it makes its page
        // a 500 rather than taking the process down.
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "template does not compile");
        }
    }
    env
});

/// Renders `name` with `ctx`.
pub fn render(name: &str, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
    ENV.get_template(name)?.render(ctx)
}

/// An HTML page with `status`. Pages are never cached (they may show a
/// query code) and never framed; the only inline content is the stylesheet.
pub fn page(status: StatusCode, name: &str, ctx: minijinja::Value) -> HttpResponse {
    match render(name, ctx) {
        Ok(body) => {
            let mut resp = HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(body);
            let h = resp.headers_mut();
            for (k, v) in [
                (header::CACHE_CONTROL, "no-store"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    headers::CONTENT_SECURITY_POLICY,
                ),
            ] {
                h.insert(k, HeaderValue::from_static(v));
            }
            resp
        }
        Err(e) => {
            tracing::error!(template = name, error = %e, "page rendering failed");
            problem("internal", "an internal error occurred", &[])
        }
    }
}

/// True when the client prefers HTML to JSON (a browser submitting the
/// form); API clients (no `Accept`, `*/*`, `application/json`) get JSON.
pub fn wants_html(req: &HttpRequest) -> bool {
    let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (mut html, mut json) = (0.0_f32, 0.0_f32);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" | "application/xhtml+xml" => html = html.max(q),
            "application/json" | "application/problem+json" => json = json.max(q),
            _ => {}
        }
    }
    html > 0.0 && html > json
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use minijinja::context;

    #[test]
    fn every_template_compiles_and_values_are_escaped() {
        for (name, _) in TEMPLATES {
            assert!(ENV.get_template(name).is_ok(), "{name}");
        }
        let html = render(
            "notice.html",
            context! { title => "<b>t</b>", message => "a & \"b\"" },
        )
        .unwrap();
        assert!(html.contains("&lt;b&gt;t&lt;&#x2f;b&gt;"), "{html}");
        assert!(html.contains("a &amp; &quot;b&quot;"), "{html}");
        assert!(html.contains("lang=\"zh-CN\""));
        assert!(html.contains("name=\"viewport\""));
    }

    #[test]
    fn browsers_get_html_and_api_clients_json() {
        let req = |accept: Option<&str>| {
            let mut r = TestRequest::default();
            if let Some(a) = accept {
                r = r.insert_header((header::ACCEPT, a));
            }
            wants_html(&r.to_http_request())
        };
        assert!(req(Some(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!req(None));
        assert!(!req(Some("*/*")));
        assert!(!req(Some("application/json")));
        assert!(!req(Some("application/json, text/html;q=0.5")));
        assert!(!req(Some("text/html;q=0")));
    }
}
