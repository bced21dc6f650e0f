//! One module per command: its options, and `run`, which turns them into engine calls and the result
//! into a [`crate::report::Report`]. No command uses another command.

pub mod backup;
pub mod copy;
pub mod export;
pub mod import;
pub mod list;
pub mod migrate;
pub mod prune;
pub mod restore;
pub mod seed;
pub mod verify;
