//! Group commit for ticket registration: requests queue their appeal, a few
//! writer tasks take whatever is waiting and register it in one transaction.
//! One commit then serves many requests, which is what lets intake keep up
//! with a single-row `pgbench` on the same database.
//!
//! On PostgreSQL a batch takes two round trips: numbers and earlier tickets
//! (stage 1), then the durable insert (stage 2). The writers form a
//! pipeline: a writer takes its batch from the queue and runs stage 1 while
//! another runs stage 2, and it lets the next writer at the queue only once
//! it has the stage-2 turn ([`Handover`]). So at most one batch is in each
//! stage, the next batch gathers what arrives while this one waits for its
//! turn, and the queue is not split into slivers by writers idling at it
//! (two free writers made batches of 5 where one writer made 8, and were
//! slower than one). Side by side figures are in the README (Performance).

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard, mpsc, oneshot};

use super::tickets::Created;
use super::{Store, StoreError, StoreResult};
use crate::domain::appeal::NewAppeal;

const MAX_BATCH: usize = 128;

struct Job {
    appeal: NewAppeal,
    reply: oneshot::Sender<StoreResult<Created>>,
}

/// A writer's place in the intake pipeline while it registers a batch: the
/// queue it took the batch from, held until it is its turn at stage 2, and
/// the stage-2 turn (see the module comment). Outside a pipeline (the
/// default) it holds nothing and stage 2 is entered without waiting. SQLite
/// has no stage 2: a writer keeps the queue for its whole batch (there is
/// one writer by default, and writers take the write lock in turn anyway).
#[derive(Default)]
pub struct Handover {
    queue: Option<OwnedMutexGuard<mpsc::Receiver<Job>>>,
    turn: Option<Arc<Mutex<()>>>,
}

impl Handover {
    /// Waits for the stage-2 turn, then lets the next writer at the queue.
    /// Stage 2 runs while the returned guard lives.
    pub async fn enter_stage_two(&mut self) -> Option<OwnedMutexGuard<()>> {
        let turn = match &self.turn {
            Some(t) => Some(t.clone().lock_owned().await),
            None => None,
        };
        self.queue = None;
        turn
    }

    /// Leaves the pipeline: the queue is free and stage 2 no longer waited
    /// for.
    pub fn leave(&mut self) {
        self.queue = None;
        self.turn = None;
    }
}

#[derive(Clone)]
pub struct Intake {
    tx: mpsc::Sender<Job>,
}

impl Intake {
    /// Starts `writers` writer tasks on the current runtime.
    pub fn start(store: Store, writers: usize) -> Intake {
        let (tx, rx) = mpsc::channel::<Job>(8192);
        let rx = Arc::new(Mutex::new(rx));
        let turn = Arc::new(Mutex::new(()));
        for writer in 0..writers.max(1) {
            let rx = rx.clone();
            let turn = turn.clone();
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    let mut batch = Vec::new();
                    let mut queue = rx.clone().lock_owned().await;
                    match queue.recv().await {
                        Some(j) => batch.push(j),
                        None => return,
                    }
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(j) => batch.push(j),
                            Err(_) => break,
                        }
                    }
                    let mut handover = Handover {
                        queue: Some(queue),
                        turn: Some(turn.clone()),
                    };
                    let (appeals, replies): (Vec<_>, Vec<_>) =
                        batch.into_iter().map(|j| (j.appeal, j.reply)).unzip();
                    let results = store
                        .create_tickets_on(
                            &appeals,
                            crate::store::now(),
                            writer as i16 + 1,
                            &mut handover,
                        )
                        .await;
                    // Whatever stage the batch stopped at, the queue is free.
                    drop(handover);
                    for (r, reply) in results.into_iter().zip(replies) {
                        // The requester may have gone away; the ticket stands.
                        let _ = reply.send(r);
                    }
                }
            });
        }
        Intake { tx }
    }

    pub async fn submit(&self, appeal: NewAppeal) -> StoreResult<Created> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { appeal, reply })
            .await
            .map_err(|_| StoreError::Conflict("intake is shutting down".into()))?;
        rx.await
            .map_err(|_| StoreError::Conflict("intake writer stopped".into()))?
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn blocked<T>(f: impl std::future::Future<Output = T>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), f)
            .await
            .is_err()
    }

    /// The pipeline's two rules: the queue is free only once its holder has
    /// the stage-2 turn, and one writer at a time has that turn.
    #[tokio::test]
    async fn the_queue_passes_on_at_stage_two_and_stage_two_is_taken_in_turn() {
        let (_tx, rx) = mpsc::channel::<Job>(1);
        let rx = Arc::new(Mutex::new(rx));
        let turn = Arc::new(Mutex::new(()));

        // Writer A takes the queue; B cannot.
        let mut a = Handover {
            queue: Some(rx.clone().lock_owned().await),
            turn: Some(turn.clone()),
        };
        assert!(blocked(rx.clone().lock_owned()).await);
        // A reaches stage 2: B takes the queue and runs its stage 1 ...
        let a_turn = a.enter_stage_two().await;
        assert!(a_turn.is_some());
        let mut b = Handover {
            queue: Some(rx.clone().lock_owned().await),
            turn: Some(turn.clone()),
        };
        // ... but waits for stage 2, keeping the queue meanwhile.
        assert!(blocked(b.enter_stage_two()).await);
        assert!(blocked(rx.clone().lock_owned()).await);
        // A's statement is done: B's turn, and the queue is free again.
        drop(a_turn);
        let b_turn = b.enter_stage_two().await;
        assert!(b_turn.is_some());
        assert!(!blocked(rx.clone().lock_owned()).await);

        // Outside a pipeline nothing is waited for.
        let mut free = Handover::default();
        assert!(free.enter_stage_two().await.is_none());
        // A writer that leaves frees the queue and stops waiting for a turn.
        let mut c = Handover {
            queue: Some(rx.clone().lock_owned().await),
            turn: Some(turn.clone()),
        };
        c.leave();
        assert!(!blocked(rx.clone().lock_owned()).await);
        assert!(c.enter_stage_two().await.is_none());
    }
}
