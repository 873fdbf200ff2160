//! `GET /api/v1/events/stream`: server-sent events of ticket changes, live
//! across instances (Redis) and scoped like every read: department users
//! hear only of tickets their department leads, co-handles or acted on.

use actix_web::{HttpResponse, web};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::infra::bus::BusEvent;
use crate::store::tickets::Scope;

fn visible(payload: &str, scope: &Scope) -> bool {
    match scope {
        Scope::All => true,
        Scope::Department(d) => serde_json::from_str::<BusEvent>(payload)
            .map(|e| e.departments.iter().any(|x| x == d))
            .unwrap_or(false),
    }
}

pub async fn stream(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rx = state.bus.subscribe();
    let scope = caller.scope();
    let keepalive = tokio::time::interval(std::time::Duration::from_secs(15));
    let hello = futures_util::stream::once(async {
        Ok::<_, actix_web::Error>(web::Bytes::from_static(b": connected\n\n"))
    });
    let events = futures_util::stream::unfold(
        (rx, keepalive, scope),
        |(mut rx, mut keepalive, scope)| async move {
            loop {
                tokio::select! {
                    r = rx.recv() => match r {
                        Ok(payload) => {
                            if visible(&payload, &scope) {
                                let chunk = format!("event: ticket\ndata: {payload}\n\n");
                                return Some((Ok(web::Bytes::from(chunk)), (rx, keepalive, scope)));
                            }
                        }
                        Err(RecvError::Lagged(n)) => {
                            let chunk = format!(": {n} events dropped for a slow client\n\n");
                            return Some((Ok(web::Bytes::from(chunk)), (rx, keepalive, scope)));
                        }
                        Err(RecvError::Closed) => return None,
                    },
                    _ = keepalive.tick() => {
                        return Some((Ok(web::Bytes::from_static(b": keep-alive\n\n")), (rx, keepalive, scope)));
                    }
                }
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(futures_util::StreamExt::chain(hello, events)))
}
