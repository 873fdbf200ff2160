//! Command-line work beyond `serve`: demo data and benchmarks.

pub mod bench;
pub mod demo;
pub mod generate;
pub mod ledger;
