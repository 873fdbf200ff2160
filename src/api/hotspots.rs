//! `GET /api/v1/hotspots`: the current hotspots — clusters of similar
//! appeals from one place whose latest appeal is within `hotspots.window` —
//! most recent activity first, for the leader dashboard.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::views::ts;
use crate::domain::types::Role;

/// Who reads hotspots: the office, not the departments.
pub const READERS: &[Role] = &[
    Role::Leader,
    Role::Supervisor,
    Role::Dispatcher,
    Role::Admin,
];

pub async fn list(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let since = crate::store::now() - state.settings.hotspots.rules().window;
    let spots = state.store.current_hotspots(since).await?;
    let names: HashMap<String, String> = state
        .store
        .list_departments()
        .await?
        .into_iter()
        .map(|d| (d.code, d.name))
        .collect();
    let items: Vec<_> = spots
        .into_iter()
        .map(|(h, ticket_nos)| {
            let district_name = h.district.as_ref().and_then(|d| names.get(d));
            json!({
                "id": h.id,
                "topic": h.topic,
                "topic_name": h.topic_name,
                "district": h.district,
                "district_name": district_name,
                "place": h.place,
                "latitude": h.latitude,
                "longitude": h.longitude,
                "count": h.ticket_count,
                "first_at": ts(h.first_at),
                "last_at": ts(h.last_at),
                "detected_at": ts(h.detected_at),
                "ticket_nos": ticket_nos,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}
