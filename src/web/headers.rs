//! Security headers on every response, pages and API alike: a
//! Content-Security-Policy that allows only this origin's scripts (the pages
//! have no inline script or event handler; their only inline content is
//! style), no framing, no MIME sniffing, no referrer, and HSTS when the
//! service is published over HTTPS. CORS stays off: no
//! `Access-Control-*` header is ever sent, so browsers keep other origins out.

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;

/// The policy of every response. `style-src 'unsafe-inline'`: the pages and
/// the API docs page carry their stylesheet inline (and one `style`
/// attribute); `img-src data:` for inline icons; `connect-src 'self'` for the
/// pages' `fetch` and `EventSource`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// HSTS for a service published over HTTPS: a year, this host only (other
/// hosts of a city's domain may not serve HTTPS yet).
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Adds the headers to every response that does not set them itself; with
/// `https` (the service's `server.base_url` is `https://…`), HSTS too.
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"));
    if https {
        headers.add((header::STRICT_TRANSPORT_SECURITY, STRICT_TRANSPORT_SECURITY))
    } else {
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, HttpResponse, test, web};

    #[actix_web::test]
    async fn every_response_gets_the_headers_and_a_handler_may_set_its_own() {
        let app = test::init_service(
            App::new()
                .wrap(security_headers(false))
                .route("/", web::get().to(HttpResponse::Ok))
                .route(
                    "/own",
                    web::get().to(|| async {
                        HttpResponse::Ok()
                            .insert_header((header::REFERRER_POLICY, "same-origin"))
                            .finish()
                    }),
                ),
        )
        .await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        let h = res.headers();
        assert_eq!(
            h.get(header::CONTENT_SECURITY_POLICY).unwrap(),
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(h.get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
        assert_eq!(h.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
        assert_eq!(h.get(header::REFERRER_POLICY).unwrap(), "no-referrer");
        let res = test::call_service(&app, test::TestRequest::get().uri("/own").to_request()).await;
        assert_eq!(
            res.headers().get(header::REFERRER_POLICY).unwrap(),
            "same-origin"
        );
        // 404s from the router get them too.
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/nope").to_request()).await;
        assert_eq!(res.headers().get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
        assert!(
            res.headers()
                .get(header::STRICT_TRANSPORT_SECURITY)
                .is_none()
        );
    }
}
