//! Decisions without I/O: what a user may do, and what a shared link allows.
//! Everything here is pure and unit-tested; callers bring the facts.

pub mod links;
pub mod permissions;

pub use permissions::{check, Op, Perm, PermSet, Protocol, ProtocolSet};
