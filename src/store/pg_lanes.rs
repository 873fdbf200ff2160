//! PostgreSQL sessions owned by one intake writer each ("lanes"), used
//! without a pool.
//!
//! sqlx's pool sends a `Sync` to the server each time a connection comes
//! back to it, to check that the session is usable: a round trip per
//! statement that wakes a server process, and over TLS two more records to
//! seal and open. Intake runs two statements per batch, so half of its round
//! trips to the server were those checks. A writer holds its two sessions
//! (number allocation, ticket insert) in its lane instead and checks one only
//! when it has lain idle for a second or more, as the pools do before use.
//!
//! A session is taken out of its lane for the time of a statement and put
//! back when the statement is over: one dropped mid-statement is closed with
//! the future rather than reused in an unknown state. A statement that
//! failed because the session was lost (I/O, or the server shutting down or
//! terminating it) closes both of the lane's sessions, since a restarted
//! server has dropped the other one too; the next batch opens fresh ones. A
//! statement the server refused (a constraint) leaves its session in use.

use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::{PgArguments, PgConnectOptions, PgRow};
use sea_orm::sqlx::query::Query;
use sea_orm::sqlx::{self, Connection, PgConnection, PgPool, Postgres};
use tokio::sync::Mutex;

/// Lanes for writers 1..=`MAX_LANES` (a writer's rollup shard is its
/// number); other callers use the pools.
pub const MAX_LANES: usize = 8;

/// A session lying idle this long is checked with a round trip before use
/// (here and in the intake pools).
pub const IDLE_CHECK: Duration = Duration::from_secs(1);

/// How long opening a session may take, as the pools' acquire timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which of a lane's two sessions.
#[derive(Clone, Copy)]
pub enum Role {
    /// Asynchronous commit: number allocation and the repeat look-up.
    Alloc,
    /// Durable commit: the tickets.
    Intake,
}

#[derive(Default)]
struct Lane {
    alloc: Option<(PgConnection, Instant)>,
    intake: Option<(PgConnection, Instant)>,
}

pub struct Lanes {
    alloc_options: PgConnectOptions,
    intake_options: PgConnectOptions,
    lanes: Vec<Mutex<Lane>>,
}

impl Lanes {
    pub fn new(alloc_options: PgConnectOptions, intake_options: PgConnectOptions) -> Lanes {
        Lanes {
            alloc_options,
            intake_options,
            lanes: (0..MAX_LANES).map(|_| Mutex::default()).collect(),
        }
    }

    /// The lane of writer `shard` (1-based), if it has one.
    pub fn lane(&self, shard: i16) -> Option<LaneRef<'_>> {
        let k = usize::try_from(shard).ok()?.checked_sub(1)?;
        self.lanes.get(k).map(|lane| LaneRef { lanes: self, lane })
    }
}

pub struct LaneRef<'a> {
    lanes: &'a Lanes,
    lane: &'a Mutex<Lane>,
}

/// Where a batch's statements run: a writer's lane, or the pools.
pub enum Sessions<'a> {
    Lane(LaneRef<'a>),
    Pools {
        alloc: &'a PgPool,
        intake: &'a PgPool,
    },
}

impl Sessions<'_> {
    /// Runs `q` on the `role` session and collects its rows.
    pub async fn fetch_all<'q>(
        &self,
        role: Role,
        q: Query<'q, Postgres, PgArguments>,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        match self {
            Sessions::Pools { alloc, intake } => match role {
                Role::Alloc => q.fetch_all(*alloc).await,
                Role::Intake => q.fetch_all(*intake).await,
            },
            Sessions::Lane(l) => l.fetch_all(role, q).await,
        }
    }
}

impl LaneRef<'_> {
    async fn fetch_all<'q>(
        &self,
        role: Role,
        q: Query<'q, Postgres, PgArguments>,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        let mut lane = self.lane.lock().await;
        let (slot, options) = match role {
            Role::Alloc => (&mut lane.alloc, &self.lanes.alloc_options),
            Role::Intake => (&mut lane.intake, &self.lanes.intake_options),
        };
        let mut conn = match slot.take() {
            Some((conn, last)) if last.elapsed() < IDLE_CHECK => conn,
            Some((mut conn, _)) => match conn.ping().await {
                Ok(()) => conn,
                // The server dropped it meanwhile: open another.
                Err(_) => open(options).await?,
            },
            None => open(options).await?,
        };
        let out = q.fetch_all(&mut conn).await;
        match &out {
            Err(e) if session_lost(e) => {
                // The server most likely went away: its other session too.
                lane.alloc = None;
                lane.intake = None;
            }
            _ => *slot = Some((conn, Instant::now())),
        }
        out
    }
}

/// Whether `e` leaves the session unusable or suspect: anything but an error
/// the server reported about the statement (a constraint, say) while staying
/// up. PostgreSQL's classes 08 (connection), 53 (resources), 57 (operator
/// intervention: shutdown, termination) and 58 (system) count as lost.
fn session_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d
            .code()
            .is_none_or(|c| matches!(c.get(..2), Some("08" | "53" | "57" | "58"))),
        _ => true,
    }
}

async fn open(options: &PgConnectOptions) -> Result<PgConnection, sqlx::Error> {
    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options))
        .await
        .map_err(|_| {
            sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connecting to the database timed out",
            ))
        })?
}
