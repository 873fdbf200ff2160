//! The fold job: every [`FOLD_EVERY`], adds the rollup rows registration
//! appended to `stats_pending` into `stats_daily` (PostgreSQL). Figures
//! count pending rows as they are, so the job only keeps that table small;
//! instances fold one at a time (see [`Store::fold_live_pending`]).

use std::time::Duration;

use crate::store::Store;
pub use crate::store::stats::FOLD_EVERY;

pub async fn run(store: Store, every: Duration, mut stop: super::Stop) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    while stop.tick(&mut interval).await {
        match store.fold_live_pending().await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("the rollup fold works again");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "the rollup fold failed; pending rollup rows keep counting");
            }
            Err(_) => {}
        }
    }
}
