//! Decisions without I/O: what a user may do. Link rules join this module later.
//! Everything here is pure and unit-tested; callers bring the facts.

pub mod permissions;

pub use permissions::{check, Op, Perm, PermSet, Protocol, ProtocolSet};
