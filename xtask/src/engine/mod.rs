//! The engines: the jobs that several commands share. An engine never knows which command called it;
//! commands turn their arguments into engine calls and the results into a [`crate::report::Report`].
//!
//! - [`archive`]: where backup files go, their names (the series), what a file is (known by its
//!   content), compression, and new files that appear only once complete.
//! - [`native`]: native backups (SQLite's backup API, pg_dump / pg_restore), checked and restored.
//! - [`json`]: the universal JSON export: writer, header reader, checked loader.
//! - [`copy`]: every row of one database into another, from one snapshot, with no file between.
//! - [`load`]: loading rows into a database in one checked transaction, from any [`load::RowSource`].
//! - [`rows`]: rows in batches from a reading thread to a writing one.
//! - [`crypto`]: age encryption of what is written, decryption of what is read, and private
//!   temporary directories for plaintext that must be a file.
//! - [`checks`]: what a loaded value and a restored or loaded database must satisfy, and the words
//!   for what breaks it.
//! - [`remote`]: off-site copies, in an S3-compatible bucket or another directory.
//! - [`safety`]: the copy of the current data taken before a command replaces it.
//! - [`scratch`]: throwaway databases that `verify` restores into.

pub mod archive;
pub mod checks;
pub mod copy;
pub mod crypto;
pub mod json;
pub mod load;
pub mod native;
pub mod remote;
pub mod rows;
pub mod safety;
pub mod scratch;
