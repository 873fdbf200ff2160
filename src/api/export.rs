//! `GET /api/v1/export`: the 台账 as CSV (streamed page by page) or XLSX.

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::domain::types::Role;
use crate::ledger::{COLUMNS, ExportQuery};

#[derive(Deserialize)]
pub struct ExportParams {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
    department: Option<String>,
    unmasked: Option<String>,
    reason: Option<String>,
}

fn csv_bytes(rows: &[Vec<String>]) -> Result<Bytes, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 512));
    for r in rows {
        w.write_record(r)?;
    }
    w.into_inner()
        .map(Bytes::from)
        .map_err(|e| csv::Error::from(e.into_error()))
}

pub async fn export(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<ExportParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require(super::stats::READERS)?;
    let q = q.into_inner();
    let mut errors = Vec::new();
    let period = match (q.from.as_deref(), q.to.as_deref()) {
        (Some(f), Some(t)) => super::stats::parse_period(f, t)
            .map_err(|e| errors.push(e))
            .ok(),
        _ => {
            errors.push("`from` and `to` (dates, YYYY-MM-DD) are required".into());
            None
        }
    };
    let format = q.format.as_deref().unwrap_or("csv").trim().to_owned();
    if format != "csv" && format != "xlsx" {
        errors.push("`format` must be csv or xlsx".into());
    }
    let unmasked = match q.unmasked.as_deref().map(str::trim) {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.push("`unmasked` must be true or false".into());
            false
        }
    };
    let reason = q.reason.as_deref().map(str::trim).unwrap_or_default();
    if unmasked && reason.is_empty() {
        errors.push("an unmasked export needs a `reason`".into());
    }
    for (name, text) in [("reason", &q.reason), ("department", &q.department)] {
        if text.as_deref().is_some_and(|t| t.contains('\0')) {
            errors.push(format!("`{name}`: {}", super::NUL_REFUSED));
        }
    }
    let Some(period) = period.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation_many(errors));
    };
    if unmasked && caller.role != Role::Admin {
        return Err(ApiError::forbidden(
            "only admins may export unmasked citizen data",
        ));
    }
    let asked = q
        .department
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    let department = super::stats::department_scope(&caller, asked)?;
    if unmasked {
        state
            .store
            .log_access(
                &caller.username,
                caller.role.as_str(),
                None,
                "export_unmasked",
                &format!("{reason} ({}..{})", period.from, period.to),
                crate::store::now(),
            )
            .await?;
    }
    let query = ExportQuery {
        period,
        department,
        unmasked,
    };
    let name = format!("hotline-{}-{}.{format}", period.from, period.to);
    let disposition = (
        "content-disposition",
        format!("attachment; filename=\"{name}\""),
    );

    if format == "xlsx" {
        let dir = state.settings.data_dir.join("exports");
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::new("internal", format!("cannot write the export: {e}")))?;
        let path = dir.join(format!("{}-{}.xlsx", caller.id, rand::random::<u64>()));
        let res = crate::ledger::export_xlsx(&state.store, &query, &path, |_| {}).await;
        let bytes = res.and_then(|_| {
            std::fs::read(&path).map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))
        });
        let _ = std::fs::remove_file(&path);
        return Ok(HttpResponse::Ok()
            .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
            .insert_header(disposition)
            .body(bytes?));
    }

    // CSV goes out page by page, so memory stays flat however long it is.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, actix_web::Error>>(4);
    let store = state.store.clone();
    actix_web::rt::spawn(async move {
        let header = vec![COLUMNS.iter().map(|c| c.to_string()).collect::<Vec<_>>()];
        if let Ok(b) = csv_bytes(&header)
            && tx.send(Ok(b)).await.is_err()
        {
            return;
        }
        let mut cursor = None;
        loop {
            let item = match query.page(&store, cursor).await {
                Ok(Some((rows, next))) => {
                    cursor = next;
                    csv_bytes(&rows).map_err(actix_web::error::ErrorInternalServerError)
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "export failed midway");
                    Err(actix_web::error::ErrorInternalServerError("export failed"))
                }
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(disposition)
        .streaming(body))
}
