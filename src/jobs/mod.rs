//! Background work every instance runs: the escalation sweeper and the
//! outbox delivery worker. Both stay exactly-once through the database.

pub mod bulletin;
pub mod hotspots;
pub mod outbox;
pub mod retrain;
pub mod sweeper;
