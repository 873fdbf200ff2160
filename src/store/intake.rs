//! Group commit for ticket registration: requests queue their appeal, a few
//! writer tasks take whatever is waiting and register it in one transaction.
//! One commit then serves many requests, which is what lets intake keep up
//! with a single-row `pgbench` on the same database.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::tickets::Created;
use super::{Store, StoreError, StoreResult};
use crate::domain::appeal::NewAppeal;

const MAX_BATCH: usize = 128;

struct Job {
    appeal: NewAppeal,
    reply: oneshot::Sender<StoreResult<Created>>,
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
        for writer in 0..writers.max(1) {
            let rx = rx.clone();
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    let mut batch = Vec::new();
                    {
                        let mut rx = rx.lock().await;
                        match rx.recv().await {
                            Some(j) => batch.push(j),
                            None => return,
                        }
                        while batch.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(j) => batch.push(j),
                                Err(_) => break,
                            }
                        }
                    }
                    let (appeals, replies): (Vec<_>, Vec<_>) =
                        batch.into_iter().map(|j| (j.appeal, j.reply)).unzip();
                    let results = store
                        .create_tickets_on(&appeals, crate::store::now(), writer as i16 + 1)
                        .await;
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
