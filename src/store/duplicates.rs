//! Finding the earlier ticket a new appeal may repeat, at registration: one
//! indexed query per intake batch (phone index, address index, last 72 h),
//! then the domain's comparison against those rows and against the appeals
//! earlier in the same batch.

use crate::domain::appeal::NewAppeal;
use crate::domain::duplicates::{Appeal, Probe, first_repeated};

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
