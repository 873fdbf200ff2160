//! Finding the earlier ticket a new appeal may repeat, at registration: one
//! indexed query per intake batch (phone index, address index, last 72 h),
//! then the domain's comparison against those rows and against the appeals
//! earlier in the same batch.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};

use super::StoreResult;
use super::entities::ticket;
use crate::domain::appeal::NewAppeal;
use crate::domain::duplicates::{Appeal, Probe, first_repeated, window_start};
use crate::domain::types::TicketState;

/// Earlier tickets read per batch at most: a phone that filed more than this
/// in three days is flagged against the first ones anyway.
const MAX_EARLIER: u64 = 1000;

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

type Row = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
);

/// For each of `fresh` (in order), the earlier ticket it may repeat.
pub(super) async fn repeats<C: ConnectionTrait>(
    conn: &C,
    fresh: &[&NewAppeal],
    now: DateTime<Utc>,
) -> StoreResult<Vec<Option<Repeat>>> {
    let mut phones: Vec<&str> = fresh
        .iter()
        .filter_map(|i| i.citizen_phone.as_deref())
        .collect();
    let mut addresses: Vec<&str> = fresh.iter().filter_map(|i| i.address.as_deref()).collect();
    if phones.is_empty() && addresses.is_empty() {
        return Ok(vec![None; fresh.len()]);
    }
    phones.sort_unstable();
    phones.dedup();
    addresses.sort_unstable();
    addresses.dedup();
    let rows = if conn.get_database_backend() == DbBackend::Postgres {
        earlier_pg(conn, &phones, &addresses, now).await?
    } else {
        earlier(conn, phones, addresses, now).await?
    };
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
    let out = batch
        .iter()
        .enumerate()
        .map(|(k, probe)| {
            let earlier = stored
                .iter()
                .zip(rows.iter().map(|r| Repeat::Stored(r.0.clone())))
                .chain(batch[..k].iter().zip((0..k).map(Repeat::InBatch)));
            first_repeated(probe, earlier).map(|(r, _)| r)
        })
        .collect();
    Ok(out)
}

/// The earlier tickets by the query builder (SQLite): `IN (…)` lists.
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

/// Separates addresses in the one text parameter of [`earlier_pg`].
const UNIT_SEPARATOR: char = '\u{1f}';

/// The same on PostgreSQL, as one statement text whatever the batch: the
/// keys travel as two delimited strings, so the statement is prepared once
/// per connection and not planned again for every batch size (planning an
/// `IN` list of a new length cost more than running it).
async fn earlier_pg<C: ConnectionTrait>(
    conn: &C,
    phones: &[&str],
    addresses: &[&str],
    now: DateTime<Utc>,
) -> StoreResult<Vec<Row>> {
    // Phones are digits and `+`; an address with the separator in it is
    // left out rather than split.
    let addresses: Vec<&str> = addresses
        .iter()
        .copied()
        .filter(|a| !a.contains(UNIT_SEPARATOR))
        .collect();
    let sql = format!(
        "SELECT ticket_no, citizen_phone, address, category, title, content FROM tickets \
         WHERE created_at >= $1 AND state <> $2 \
         AND (citizen_phone = ANY(string_to_array($3, ',')) \
              OR address = ANY(string_to_array($4, chr({})))) \
         ORDER BY id LIMIT {MAX_EARLIER}",
        UNIT_SEPARATOR as u32
    );
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [
                window_start(now).into(),
                TicketState::Merged.as_str().into(),
                phones.join(",").into(),
                addresses.join(&UNIT_SEPARATOR.to_string()).into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get_by_index(0)?,
                r.try_get_by_index(1)?,
                r.try_get_by_index(2)?,
                r.try_get_by_index(3)?,
                r.try_get_by_index(4)?,
                r.try_get_by_index(5)?,
            ))
        })
        .collect()
}
