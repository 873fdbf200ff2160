//! HTTP-level tests, one module per DESIGN.md section. Every test runs on
//! SQLite, and on PostgreSQL too when `TEST_DATABASE_URL` is set.

mod helpers;

mod auth_and_users;
mod bad_input;
mod calendar_and_public;
mod channels;
mod dashboard;
mod demo;
mod duplicates;
mod escalation;
mod faults;
mod hotspots;
mod intake;
mod ledger;
mod lifecycle;
mod log_privacy;
mod mail;
mod mailbox;
mod open311;
mod pages;
mod report;
mod role_matrix;
mod routing;
mod scoping_and_privacy;
mod security;
mod stats;
mod stream;
mod wenzheng_push;
