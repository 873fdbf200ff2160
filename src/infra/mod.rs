//! Infrastructure chosen once from configuration: Redis or in-process
//! equivalents, and the mail transport. The rest of the code never asks
//! which one it got.

pub mod bus;
pub mod lease;
pub mod login_guard;
pub mod mail;
pub mod ratelimit;
pub mod redis;
pub mod webhook;
