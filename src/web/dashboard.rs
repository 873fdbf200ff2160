//! 领导驾驶舱 `GET /dashboard`: a period's headline figures with their
//! counts, departments ranked as the 通报 ranks them, SVG charts, the
//! escalated tickets and the hotspots. Figures come from the rollups through
//! the same store functions as `GET /api/v1/stats` (a dept_head sees their
//! own department only). `GET /dashboard/live` is the part below the form,
//! which `/static/dashboard.js` reloads when the event stream
//! (`GET /dashboard/events`) reports a ticket change; without script the
//! page is whole and a reload refreshes it.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

use super::charts::{self, HBar, pct};
use super::dashboard_model::{Bucket, backlog_points, channel_series, form_period, intake_columns};
use super::session::{PageError, PageUser, require};
use crate::api::AppState;
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::domain::calendar::city_tz;
use crate::domain::figures::{Figures, GroupBy, Period, Rate, city_day};
use crate::domain::types::Role;
use crate::store::dashboard::Escalated;
use crate::store::stats::FigureGroup;

/// How many tickets each escalated list shows.
pub const LISTED: u64 = 20;
/// How many hotspots the page shows.
const HOTSPOTS: usize = 8;

#[derive(Deserialize, Default)]
pub struct DashboardQuery {
    from: Option<String>,
    to: Option<String>,
}

/// A headline figure as a card shows it.
#[derive(Serialize)]
struct Kpi {
    id: &'static str,
    name: &'static str,
    value: String,
    /// "分子/分母" for a rate; empty for a count.
    parts: String,
    hint: &'static str,
}

fn rate_kpi(id: &'static str, name: &'static str, r: &Rate, hint: &'static str) -> Kpi {
    Kpi {
        id,
        name,
        value: pct(r.rate),
        parts: format!("{}/{}", r.numerator, r.denominator),
        hint,
    }
}

#[derive(Serialize)]
struct DeptRow {
    rank: usize,
    key: String,
    name: String,
    intake: i64,
    due: i64,
    replied: i64,
    on_time: i64,
    on_time_rate: String,
    closure_rate: String,
    reached: i64,
    satisfied: i64,
    satisfaction_rate: String,
    overdue: i64,
}

fn dept_row(rank: usize, g: &FigureGroup) -> DeptRow {
    let f = &g.figures;
    DeptRow {
        rank,
        key: g.key.clone(),
        name: g.name.clone(),
        intake: f.intake.numerator,
        due: f.on_time_rate.denominator,
        replied: f.closure_rate.numerator,
        on_time: f.on_time_rate.numerator,
        on_time_rate: pct(f.on_time_rate.rate),
        closure_rate: pct(f.closure_rate.rate),
        reached: f.satisfaction_rate.denominator,
        satisfied: f.satisfaction_rate.numerator,
        satisfaction_rate: pct(f.satisfaction_rate.rate),
        overdue: f.overdue_open.numerator,
    }
}

#[derive(Serialize)]
struct ListRow {
    id: i64,
    ticket_no: String,
    title: String,
    department: String,
    clock: &'static str,
    due: String,
    late_by: String,
    level: i16,
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&city_tz())
        .format("%m-%d %H:%M")
        .to_string()
}

/// How long past a deadline, in words: `3天5小时`, `40分钟`.
pub fn late_by(due: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let m = (now - due).num_minutes().max(0);
    let (d, h, min) = (m / 1440, m % 1440 / 60, m % 60);
    match (d, h) {
        (0, 0) => format!("{min}分钟"),
        (0, h) => format!("{h}小时{min}分钟"),
        (d, h) => format!("{d}天{h}小时"),
    }
}

fn list_rows(
    items: &[Escalated],
    names: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Vec<ListRow> {
    items
        .iter()
        .map(|t| {
            let dept = t.department.clone().unwrap_or_default();
            ListRow {
                id: t.id,
                ticket_no: t.ticket_no.clone(),
                title: t.title.clone(),
                department: names.get(&dept).cloned().unwrap_or(dept),
                clock: if t.state == "dispatched" {
                    "签收"
                } else {
                    "答复"
                },
                due: t.due.map(local).unwrap_or_default(),
                late_by: t.due.map(|d| late_by(d, now)).unwrap_or_default(),
                level: t.escalation_level,
            }
        })
        .collect()
}

#[derive(Serialize)]
struct HotspotRow {
    topic: String,
    place: String,
    count: i32,
    last_at: String,
}

/// Everything below the form, rendered by `dashboard_live.html`.
async fn live_context(
    state: &AppState,
    caller: &Caller,
    period: Period,
) -> Result<Value, ApiError> {
    let department = crate::api::stats::department_scope(caller, None)?;
    let dept = department.as_deref();
    let store = &state.store;
    let basically = state.settings.stats.basically_satisfied_counts;
    let bucket = Bucket::of(period);
    let hotspots_wanted = crate::api::hotspots::READERS.contains(&caller.role);
    let since = crate::store::now() - state.settings.hotspots.rules().window;
    let (city, by_dept, series, overdue, supervised, departments, hotspots) = tokio::try_join!(
        store.figures(period, None, dept, basically),
        store.figures(period, Some(GroupBy::Department), dept, basically),
        store.daily_by_channel(period, dept, bucket == Bucket::Month),
        store.escalated(2, dept, LISTED, None),
        store.escalated(3, dept, LISTED, None),
        store.list_departments(),
        async {
            if hotspots_wanted {
                store.latest_hotspots(since, HOTSPOTS as u64).await
            } else {
                Ok(Vec::new())
            }
        },
    )?;
    let now = crate::store::now();
    let today = city_day(now);
    let city: Figures = city
        .into_iter()
        .next()
        .map(|g| g.figures)
        .unwrap_or_else(|| Figures::from_counts(&Default::default(), 0, basically));
    let names: HashMap<String, String> =
        departments.into_iter().map(|d| (d.code, d.name)).collect();

    let mut ranked: Vec<FigureGroup> = by_dept.into_iter().filter(|g| !g.key.is_empty()).collect();
    crate::report::rank_departments(&mut ranked);
    let rows: Vec<DeptRow> = ranked
        .iter()
        .enumerate()
        .map(|(i, g)| dept_row(i + 1, g))
        .collect();

    let bars: Vec<HBar> = ranked
        .iter()
        .filter(|g| {
            g.figures.on_time_rate.rate.is_some() || g.figures.satisfaction_rate.rate.is_some()
        })
        .map(|g| HBar {
            label: g.name.clone(),
            values: vec![
                g.figures.on_time_rate.rate,
                g.figures.satisfaction_rate.rate,
            ],
        })
        .collect();
    let channels: Vec<&str> = channel_series().into_iter().map(|(_, zh)| zh).collect();
    let columns = intake_columns(&series, period, bucket);
    let (points, overdue_now) =
        backlog_points(&series, period, bucket, city.overdue_open.numerator, today);
    let safe = Value::from_safe_string;
    let chart_rates = safe(charts::hbar_chart(
        "各承办单位按期办结率与满意率",
        &["按期办结率", "满意率"],
        &bars,
    ));
    let chart_intake = safe(charts::stacked_columns(
        &format!("{}受理量（按渠道）", bucket.zh()),
        &channels,
        &columns,
    ));
    let chart_backlog = safe(charts::line_chart(
        &format!(
            "超期未办件数（{}末，截至今日）",
            bucket.zh().trim_start_matches('每')
        ),
        "超期未办",
        &points,
    ));

    let running = period.to > today;
    let kpis = vec![
        Kpi {
            id: "kpi-intake",
            name: "受理量",
            value: city.intake.numerator.to_string(),
            parts: String::new(),
            hint: "本期新登记工单",
        },
        rate_kpi("kpi-closure", "办结率", &city.closure_rate, "已答复/应办结"),
        rate_kpi(
            "kpi-on-time",
            "按期办结率",
            &city.on_time_rate,
            "按期答复/应办结",
        ),
        rate_kpi(
            "kpi-satisfaction",
            "满意率",
            &city.satisfaction_rate,
            "满意/回访接通",
        ),
        rate_kpi(
            "kpi-resolution",
            "解决率",
            &city.resolution_rate,
            "已解决/回访接通",
        ),
        Kpi {
            id: "kpi-overdue",
            name: "超期未办",
            value: overdue_now.to_string(),
            parts: String::new(),
            hint: if running {
                "截至今日"
            } else {
                "截至期末"
            },
        },
    ];
    let hotspots: Vec<HotspotRow> = hotspots
        .into_iter()
        .map(|h| HotspotRow {
            topic: h.topic_name,
            place: match h.district.as_ref().and_then(|d| names.get(d)) {
                Some(d) if !h.place.is_empty() => format!("{d} · {}", h.place),
                Some(d) => d.clone(),
                None => h.place,
            },
            count: h.ticket_count,
            last_at: local(h.last_at),
        })
        .collect();
    Ok(context! {
        kpis,
        departments => rows,
        chart_rates, chart_intake, chart_backlog,
        overdue => list_rows(&overdue.0, &names, now),
        overdue_total => overdue.1,
        supervised => list_rows(&supervised.0, &names, now),
        supervised_total => supervised.1,
        listed => LISTED,
        hotspots, hotspots_wanted,
        scope_name => dept.map(|d| names.get(d).cloned().unwrap_or_else(|| d.to_owned())),
        updated_at => now.with_timezone(&city_tz()).format("%H:%M:%S").to_string(),
    })
}

fn period_or_error(q: &DashboardQuery) -> (Period, Option<String>) {
    let today = city_day(crate::store::now());
    match form_period(q.from.as_deref(), q.to.as_deref(), today) {
        Ok(p) => (p, None),
        Err(e) => (
            form_period(None, None, today).unwrap_or(Period {
                from: today,
                to: today,
            }),
            Some(e),
        ),
    }
}

fn last_day(p: Period) -> chrono::NaiveDate {
    p.to.pred_opt().unwrap_or(p.to)
}

/// `GET /dashboard?from=YYYY-MM-DD&to=YYYY-MM-DD` (`to` included).
pub async fn dashboard(
    user: PageUser,
    state: web::Data<AppState>,
    q: web::Query<DashboardQuery>,
) -> Result<HttpResponse, PageError> {
    require(&user, crate::api::stats::READERS)?;
    let (period, error) = period_or_error(&q);
    let live = live_context(&state, &user.caller, period).await?;
    let from = period.from.to_string();
    let to = last_day(period).to_string();
    let live_url = format!("/dashboard/live?from={from}&to={to}");
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(super::page(
        status,
        "dashboard.html",
        context! {
            title => "领导驾驶舱",
            from, to, days => period.days(), error, live_url,
            is_dept_head => user.caller.role == Role::DeptHead,
            ..minijinja::value::merge_maps([live, user.base()])
        },
    ))
}

/// `GET /dashboard/live?from=&to=`: the figures fragment alone.
pub async fn live(
    user: PageUser,
    state: web::Data<AppState>,
    q: web::Query<DashboardQuery>,
) -> Result<HttpResponse, PageError> {
    require(&user, crate::api::stats::READERS)?;
    let (period, _) = period_or_error(&q);
    let ctx = live_context(&state, &user.caller, period).await?;
    Ok(super::page(StatusCode::OK, "dashboard_live.html", ctx))
}

/// `GET /dashboard/events`: the API's event stream for a logged-in page
/// (the session cookie, not a bearer header, authenticates it).
pub async fn events(user: PageUser, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    require(&user, crate::api::stats::READERS)?;
    Ok(crate::api::stream::stream(user.caller, state).await?)
}

/// `GET /static/dashboard.js`.
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(include_str!("../../templates/dashboard.js"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_reads_in_days_hours_or_minutes() {
        let due = DateTime::parse_from_rfc3339("2026-11-20T09:00:00+08:00")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(late_by(due, at("2026-11-20T09:40:00+08:00")), "40分钟");
        assert_eq!(late_by(due, at("2026-11-20T12:05:00+08:00")), "3小时5分钟");
        assert_eq!(late_by(due, at("2026-11-23T14:00:00+08:00")), "3天5小时");
        assert_eq!(late_by(due, at("2026-11-19T09:00:00+08:00")), "0分钟");
    }
}
