#![recursion_limit = "512"]
//! 12345 Hotline Router: citizen appeals from every channel, dispatched to the
//! department that must handle them, on SLA clocks that know China's holidays.
//!
//! Layers: `domain` (pure), `store` (sea-orm), `api` (actix handlers),
//! `startup`/`config`/`telemetry` (wiring), `cli` (demo data and benchmarks).

pub mod api;
pub mod cli;
pub mod config;
pub mod domain;
pub mod infra;
pub mod jobs;
pub mod ledger;
pub mod report;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
