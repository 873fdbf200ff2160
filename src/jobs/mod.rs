//! Background work every instance runs: the escalation sweeper, the outbox
//! delivery workers, retraining, hotspots and the weekly bulletin. Each stays
//! exactly-once through the database, and each stops only between rounds
//! when the service shuts down ([`Stop`]), so no round is cut in half.

pub mod bulletin;
pub mod fold;
pub mod hotspots;
pub mod outbox;
pub mod retrain;
pub mod sweeper;

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Interval;

/// A background job's view of shutdown: the job checks it between rounds.
#[derive(Clone)]
pub struct Stop(Option<watch::Receiver<bool>>);

impl Stop {
    /// A job that runs until the process ends (command-line use, tests).
    pub fn never() -> Stop {
        Stop(None)
    }

    pub fn is_stopping(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Waits for the interval's next tick: `false` once the service is
    /// stopping (at once, without waiting for the tick). A signal whose
    /// sender is gone (the application value was dropped, as tests do)
    /// never stops.
    pub async fn tick(&mut self, interval: &mut Interval) -> bool {
        loop {
            let Some(rx) = &mut self.0 else {
                interval.tick().await;
                return true;
            };
            if *rx.borrow() {
                return false;
            }
            tokio::select! {
                _ = interval.tick() => return !*rx.borrow(),
                changed = rx.changed() => {
                    if changed.is_err() {
                        self.0 = None;
                    }
                }
            }
        }
    }

    /// Sleeps `d`, or less when `wake` fires: `false` once stopping.
    pub async fn sleep_or(&mut self, d: Duration, wake: &tokio::sync::Notify) -> bool {
        let until = tokio::time::Instant::now() + d;
        loop {
            let Some(rx) = &mut self.0 else {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = wake.notified() => {}
                }
                return true;
            };
            if *rx.borrow() {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return !*rx.borrow(),
                _ = wake.notified() => return !*rx.borrow(),
                changed = rx.changed() => {
                    if changed.is_err() {
                        self.0 = None;
                    }
                }
            }
        }
    }
}

/// The other end: tells every job to stop and waits for them to finish the
/// round they are in.
pub struct Stopper {
    tx: watch::Sender<bool>,
    handles: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

impl Default for Stopper {
    fn default() -> Self {
        Stopper {
            tx: watch::channel(false).0,
            handles: Vec::new(),
        }
    }
}

impl Stopper {
    pub fn stop_signal(&self) -> Stop {
        Stop(Some(self.tx.subscribe()))
    }

    pub fn add(&mut self, name: &'static str, handle: tokio::task::JoinHandle<()>) {
        self.handles.push((name, handle));
    }

    /// Signals stop and waits up to `grace` for the jobs; those still busy
    /// after that are abandoned (their open transactions roll back).
    pub async fn stop(self, grace: Duration) {
        self.tx.send_replace(true);
        let deadline = tokio::time::Instant::now() + grace;
        for (name, h) in self.handles {
            match tokio::time::timeout_at(deadline, h).await {
                Ok(_) => tracing::debug!(job = name, "stopped"),
                Err(_) => tracing::warn!(job = name, "did not stop in time; abandoned"),
            }
        }
    }
}
