//! Pure domain: types, the ticket lifecycle, the working-time calendar and SLA
//! arithmetic. No IO, no async; imports nothing from the rest of the crate.

pub mod appeal;
pub mod calendar;
pub mod catalogue;
pub mod duplicates;
pub mod escalation;
pub mod figures;
pub mod hotspots;
pub mod lifecycle;
pub mod notify;
pub mod router;
pub mod simulate;
pub mod sla;
#[cfg(test)]
pub(crate) mod testkit;
pub mod types;
pub mod wenzheng;
