//! Finding the earlier ticket a new appeal may repeat, at registration: one
//! indexed query per intake batch (phone index, address index, last 72 h),
//! then the domain's comparison against those rows and against the appeals
//! earlier in the same batch.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::StoreResult;
use super::entities::ticket;
use crate::domain::appeal::NewAppeal;
use crate::domain::duplicates::{Appeal, Probe, first_repeated, window_start};
use crate::domain::types::TicketState;

/// Earlier tickets read per batch at most: a phone that filed more than this
/// in three days is flagged against the first ones anyway.
pub(super) const MAX_EARLIER: u64 = 1000;

/// What a fresh appeal repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Repeat {
    /// A stored ticket, by number.
    Stored(String),
    /// An appeal earlier in the same batch, by its position in `fresh`.
    InBatch(usize),
}

fn appeal_of(i: &NewAppeal) -> Appeal<'_> {
    Appeal {
        phone: i.citizen_phone.as_deref(),
        address: i.address.as_deref(),
        category: i.category.as_str(),
        title: &i.title,
        content: &i.content,
    }
}

pub(super) type Row = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
);

/// For each of `fresh` (in order), the earlier ticket it may repeat
/// (SQLite; PostgreSQL reads the earlier tickets in `intake_pg`).
pub(super) async fn repeats<C: ConnectionTrait>(
    conn: &C,
    fresh: &[&NewAppeal],
    now: DateTime<Utc>,
) -> StoreResult<Vec<Option<Repeat>>> {
    let (phones, addresses) = lookup_keys(fresh);
    if phones.is_empty() && addresses.is_empty() {
        return Ok(vec![None; fresh.len()]);
    }
    let rows = earlier(conn, phones, addresses, now).await?;
    Ok(match_earlier(fresh, &rows))
}

/// The distinct phones and addresses of `fresh`, sorted: what the earlier
/// tickets are looked up by.
pub(super) fn lookup_keys<'a>(fresh: &[&'a NewAppeal]) -> (Vec<&'a str>, Vec<&'a str>) {
    let distinct = |key: fn(&'a NewAppeal) -> Option<&'a str>| {
        let mut v: Vec<&'a str> = fresh.iter().filter_map(|i| key(i)).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    (
        distinct(|i| i.citizen_phone.as_deref()),
        distinct(|i| i.address.as_deref()),
    )
}

/// For each of `fresh` (in order), the first of the earlier stored `rows`
/// (ticket number, phone, address, category, title, content; oldest first)
/// or of the appeals before it in the batch that it may repeat.
pub(super) fn match_earlier(fresh: &[&NewAppeal], rows: &[Row]) -> Vec<Option<Repeat>> {
    let stored: Vec<Probe<'_>> = rows
        .iter()
        .map(|(_, phone, address, category, title, content)| {
            Probe::new(Appeal {
                phone: phone.as_deref(),
                address: address.as_deref(),
                category,
                title,
                content,
            })
        })
        .collect();
    let batch: Vec<Probe<'_>> = fresh.iter().map(|i| Probe::new(appeal_of(i))).collect();
    batch
        .iter()
        .enumerate()
        .map(|(k, probe)| {
            let earlier = stored
                .iter()
                .zip(rows.iter().map(|r| Repeat::Stored(r.0.clone())))
                .chain(batch[..k].iter().zip((0..k).map(Repeat::InBatch)));
            first_repeated(probe, earlier).map(|(r, _)| r)
        })
        .collect()
}

/// The earlier tickets by the query builder: `IN (…)` lists.
async fn earlier<C: ConnectionTrait>(
    conn: &C,
    phones: Vec<&str>,
    addresses: Vec<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Row>> {
    use ticket::Column as C;
    let mut keys = Condition::any();
    if !phones.is_empty() {
        keys = keys.add(C::CitizenPhone.is_in(phones));
    }
    if !addresses.is_empty() {
        keys = keys.add(C::Address.is_in(addresses));
    }
    Ok(ticket::Entity::find()
        .select_only()
        .columns([
            C::TicketNo,
            C::CitizenPhone,
            C::Address,
            C::Category,
            C::Title,
            C::Content,
        ])
        .filter(C::CreatedAt.gte(window_start(now)))
        .filter(C::State.ne(TicketState::Merged.as_str()))
        .filter(keys)
        .order_by_asc(C::Id)
        .limit(MAX_EARLIER)
        .into_tuple()
        .all(conn)
        .await?)
}
