//! `GET /api/v1/stats`: DESIGN.md's figures for a period, from the rollups.

use actix_web::{HttpResponse, web};
use chrono::Datelike;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::domain::figures::{GroupBy, Period};
use crate::domain::types::Role;

#[derive(Deserialize)]
pub struct StatsQuery {
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
    department: Option<String>,
}

/// Reads and checks the query: the period, the grouping, and the department
/// the caller may see (a dept_head only their own).
pub fn parse_query(
    caller: &Caller,
    q: &StatsQuery,
) -> Result<(Period, Option<GroupBy>, Option<String>), ApiError> {
    caller.require(READERS)?;
    let mut errors = Vec::new();
    let (from, to) = (q.from.as_deref(), q.to.as_deref());
    if from.is_none() {
        errors.push("`from` (a date, YYYY-MM-DD) is required".to_owned());
    }
    if to.is_none() {
        errors.push("`to` (a date, YYYY-MM-DD, exclusive) is required".to_owned());
    }
    let period = match (from, to) {
        (Some(f), Some(t)) => parse_period(f, t).map_err(|e| errors.push(e)).ok(),
        _ => None,
    };
    let group_by = match q.group_by.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(g) => g.parse::<GroupBy>().map_err(|e| errors.push(e)).ok(),
    };
    let asked = q
        .department
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if asked.is_some_and(|d| d.len() > 64) {
        errors.push("`department` is too long".into());
    }
    if asked.is_some_and(|d| d.contains('\0')) {
        errors.push(format!("`department`: {}", super::NUL_REFUSED));
    }
    let Some(period) = period.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation_many(errors));
    };
    Ok((period, group_by, department_scope(caller, asked)?))
}

/// [`Period::parse`], limited to the days the answer can write: dates go
/// out as `YYYY-MM-DD`, with four-digit years.
pub fn parse_period(from: &str, to: &str) -> Result<Period, String> {
    let p = Period::parse(from, to)?;
    if [p.from, p.to]
        .iter()
        .any(|d| !(1..=9999).contains(&d.year()))
    {
        return Err("`from` and `to` must fall in the years 0001–9999".to_owned());
    }
    Ok(p)
}

/// The roles that read figures and the 台账.
pub const READERS: &[Role] = &[
    Role::Leader,
    Role::Supervisor,
    Role::Dispatcher,
    Role::Admin,
    Role::DeptHead,
];

/// The department a figures reader is limited to: a dept_head's own (asking
/// for another is 403), else the one asked for, if any.
pub fn department_scope(caller: &Caller, asked: Option<&str>) -> Result<Option<String>, ApiError> {
    if caller.role != Role::DeptHead {
        return Ok(asked.map(str::to_owned));
    }
    let own = caller
        .department
        .clone()
        .ok_or_else(|| ApiError::forbidden("a dept_head without a department sees nothing here"))?;
    if asked.is_some_and(|d| d != own) {
        return Err(ApiError::forbidden(
            "a dept_head sees only their own department",
        ));
    }
    Ok(Some(own))
}

pub async fn stats(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (period, group_by, department) = parse_query(&caller, &q)?;
    let groups = state
        .store
        .figures(
            period,
            group_by,
            department.as_deref(),
            state.settings.stats.basically_satisfied_counts,
        )
        .await?;
    let mut body = json!({
        "from": period.from.to_string(),
        "to": period.to.to_string(),
    });
    if let Some(d) = &department {
        body["department"] = json!(d);
    }
    match group_by {
        None => {
            let figures = groups.into_iter().next().map(|g| g.figures);
            body["figures"] = json!(figures);
        }
        Some(g) => {
            body["group_by"] = json!(g.as_str());
            body["groups"] = json!(groups);
        }
    }
    Ok(HttpResponse::Ok().json(body))
}
