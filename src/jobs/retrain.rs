//! 智能派单 in the running service: the live router (the catalogue's rules
//! plus a trained model) that requests read, swapped whole behind an `Arc`
//! when the catalogue changes or a retraining finishes, and the loop that
//! retrains it from history. Training is CPU-bound and synchronous, so it
//! runs on a thread of its own: request handling never waits for it.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::domain::catalogue::Catalogue;
use crate::domain::router::{Example, Model, Params, Router};
use crate::store::Store;

/// History tickets read a query.
const PAGE: u64 = 5000;

/// One consistent catalogue and the router built from it.
pub struct Live {
    pub catalogue: Arc<Catalogue>,
    /// The stored version it came from; 0 = the configuration file.
    pub version: i64,
    /// When that version was stored (`None` for the file).
    pub updated_at: Option<DateTime<Utc>>,
    pub router: Router,
}

/// The live router and what keeps it fresh. Shared by the requests and the
/// retraining loop.
pub struct Routing {
    live: RwLock<Arc<Live>>,
    /// True once a trained model is live (until then the router has the
    /// catalogue's rules only).
    trained: watch::Sender<bool>,
    /// Asks the loop for a retraining now (a catalogue change).
    wake: Notify,
    corpus: Option<PathBuf>,
}

impl Routing {
    /// Routes by the catalogue's rules at once; [`run`] trains the model.
    pub fn new(
        catalogue: Catalogue,
        version: i64,
        updated_at: Option<DateTime<Utc>>,
        corpus: Option<PathBuf>,
    ) -> Routing {
        let untrained = Params {
            steps: 0,
            min_epochs: 0,
            max_epochs: 0,
            ..Params::default()
        };
        let router = Router::new(&catalogue, Model::train_with([], &catalogue, untrained));
        Routing {
            live: RwLock::new(Arc::new(Live {
                catalogue: Arc::new(catalogue),
                version,
                updated_at,
                router,
            })),
            trained: watch::Sender::new(false),
            wake: Notify::new(),
            corpus,
        }
    }

    /// The router and catalogue in force now.
    pub fn current(&self) -> Arc<Live> {
        self.live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The router once the first model is trained (at once afterwards).
    /// Awaiting does not hold a thread.
    pub async fn trained(&self) -> Arc<Live> {
        let mut rx = self.trained.subscribe();
        // The loop always ends its first round by setting the flag, even
        // when training fails; an error here means the loop is gone.
        let _ = rx.wait_for(|t| *t).await;
        self.current()
    }

    /// Puts stored catalogue `version` in force: its keywords and
    /// departments count at once (the current model is kept), and a
    /// retraining is asked for so that the model learns its words too.
    pub fn replace_catalogue(&self, catalogue: Catalogue, version: i64, at: DateTime<Utc>) {
        let mut live = self.live.write().unwrap_or_else(PoisonError::into_inner);
        // Two edits finishing out of order: the newer stays.
        if version <= live.version {
            return;
        }
        let router = Router::new(&catalogue, live.router.model().clone());
        *live = Arc::new(Live {
            catalogue: Arc::new(catalogue),
            version,
            updated_at: Some(at),
            router,
        });
        drop(live);
        self.wake.notify_one();
    }

    /// Makes `model` live with whatever catalogue is in force now.
    fn publish(&self, model: Model) {
        loop {
            let before = self.current();
            // Built outside the lock; redone if the catalogue changed meanwhile.
            let router = Router::new(&before.catalogue, model.clone());
            let mut live = self.live.write().unwrap_or_else(PoisonError::into_inner);
            if Arc::ptr_eq(&live.catalogue, &before.catalogue) {
                *live = Arc::new(Live {
                    catalogue: before.catalogue.clone(),
                    version: before.version,
                    updated_at: before.updated_at,
                    router,
                });
                break;
            }
        }
        self.trained.send_replace(true);
    }
}

/// Trains a first model from the catalogue (and the corpus) at once, then
/// from the history too, then again every `every` and after each catalogue
/// change. Picks up catalogue versions stored by other instances.
pub async fn run(routing: Arc<Routing>, store: Store, every: Duration, mut stop: super::Stop) {
    let first = train(&routing, None, false).await;
    if let Some(m) = first {
        routing.publish(m);
    } else {
        // Keep the rules-only router, but let waiting requests go on.
        routing.trained.send_replace(true);
    }
    let mut round = 0u64;
    loop {
        if round > 0 && !stop.sleep_or(every, &routing.wake).await {
            return;
        }
        round += 1;
        refresh_catalogue(&routing, &store).await;
        // On the first round an empty history would only repeat the model
        // just trained.
        if let Some(m) = train(&routing, Some(&store), round == 1).await {
            routing.publish(m);
        }
    }
}

/// A stored catalogue version's body, checked again as the API checks it.
pub fn stored_catalogue(body: &str) -> Result<Catalogue, Vec<String>> {
    serde_json::from_str(body)
        .map_err(|e| vec![e.to_string()])
        .and_then(Catalogue::from_json)
}

/// Adopts a newer stored catalogue (written by another instance).
async fn refresh_catalogue(routing: &Routing, store: &Store) {
    match store.latest_catalogue().await {
        Ok(Some(row)) if row.version > routing.current().version => {
            match stored_catalogue(&row.body) {
                Ok(c) => {
                    tracing::info!(version = row.version, "catalogue: newer version adopted");
                    routing.replace_catalogue(c, row.version, row.created_at);
                }
                Err(e) => {
                    tracing::error!(version = row.version, errors = ?e, "catalogue: stored version unusable; kept the current one");
                }
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "catalogue: cannot read the stored versions"),
    }
}

/// One training on its own thread: the catalogue, the corpus and, with a
/// store, the history streamed to it page by page. `None` when it failed or
/// (`skip_empty`) the history is empty.
async fn train(routing: &Routing, store: Option<&Store>, skip_empty: bool) -> Option<Model> {
    let live = routing.current();
    let catalogue = live.catalogue.clone();
    let corpus = routing.corpus.clone();
    let mut after = 0;
    let mut page = Vec::new();
    if let Some(store) = store {
        match store.routing_history(after, PAGE).await {
            Ok((rows, last)) => {
                page = rows;
                after = last.unwrap_or(0);
            }
            Err(e) => {
                tracing::warn!(error = %e, "router: cannot read the history; model not retrained");
                return None;
            }
        }
        if page.is_empty() && skip_empty {
            return None;
        }
    }
    let (tx, rx) = mpsc::channel::<Example>(4 * PAGE as usize);
    let (done_tx, done_rx) = oneshot::channel();
    let started = Instant::now();
    let spawned = std::thread::Builder::new()
        .name("router-train".into())
        .spawn(move || {
            let corpus = corpus.as_deref().map(read_corpus).unwrap_or_default();
            let mut rx = rx;
            let history = std::iter::from_fn(move || rx.blocking_recv());
            let model = Model::train(corpus.into_iter().chain(history), &catalogue);
            let _ = done_tx.send(model);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "router: cannot start the training thread");
        return None;
    }
    // Streamed, so the history is never held twice (rows and model corpus).
    let mut failed = false;
    if let Some(store) = store {
        let mut full = page.len() as u64 == PAGE;
        let mut batch = page;
        'pages: loop {
            for ex in batch.drain(..) {
                if tx.send(ex).await.is_err() {
                    // The thread is gone; its result says why.
                    break 'pages;
                }
            }
            if !full {
                break;
            }
            match store.routing_history(after, PAGE).await {
                Ok((rows, last)) => {
                    full = rows.len() as u64 == PAGE;
                    after = last.unwrap_or(after);
                    batch = rows;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "router: history read failed; model not retrained");
                    failed = true;
                    break;
                }
            }
        }
    }
    drop(tx);
    match done_rx.await {
        Ok(model) if !failed => {
            tracing::info!(
                examples = model.examples(),
                skipped = model.skipped(),
                catalogue_version = live.version,
                secs = started.elapsed().as_secs_f64(),
                "router: model trained"
            );
            Some(model)
        }
        Ok(_) => None,
        Err(_) => {
            tracing::error!("router: training failed (thread panicked); model kept");
            None
        }
    }
}

/// The initial corpus: one labelled appeal a line; unreadable lines are
/// skipped with a warning.
fn read_corpus(path: &std::path::Path) -> Vec<Example> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "router: corpus not read");
            return Vec::new();
        }
    };
    let mut bad = 0usize;
    let out: Vec<Example> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).map_err(|_| bad += 1).ok())
        .collect();
    if bad > 0 {
        tracing::warn!(path = %path.display(), bad, "router: corpus lines skipped");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        Catalogue::parse(include_str!("../../config/catalogue.toml")).expect("catalogue")
    }

    fn untrained(c: &Catalogue) -> Model {
        let p = Params {
            steps: 0,
            min_epochs: 0,
            max_epochs: 0,
            ..Params::default()
        };
        Model::train_with([], c, p)
    }

    #[test]
    fn an_older_catalogue_version_never_replaces_a_newer_one() {
        let r = Routing::new(catalogue(), 0, None, None);
        let mut small = catalogue();
        small.topics.truncate(1);
        r.replace_catalogue(small, 2, Utc::now());
        r.replace_catalogue(catalogue(), 1, Utc::now());
        let live = r.current();
        assert_eq!(live.version, 2);
        assert_eq!(live.catalogue.topics.len(), 1);
    }

    #[test]
    fn a_published_model_keeps_the_catalogue_in_force() {
        let r = Routing::new(catalogue(), 0, None, None);
        assert!(!*r.trained.borrow());
        let mut edited = catalogue();
        edited.topics.truncate(3);
        // Trained on the old catalogue, published after the edit.
        let model = untrained(&catalogue());
        r.replace_catalogue(edited, 1, Utc::now());
        r.publish(model);
        let live = r.current();
        assert_eq!(live.version, 1);
        assert_eq!(live.catalogue.topics.len(), 3);
        assert!(*r.trained.borrow());
    }
}
