//! Loading rows into a database: the job that `import` (rows from an export file) and `copy` (rows
//! from another database) share. One transaction replaces all the data: every value is checked
//! against its column as it is read, the rows of each table are counted against what the source
//! announced, and every unique key and reference is checked before the commit. The first error
//! names table, row, id and column, and the target is left exactly as it was.
//!
//! The source is read on a thread of its own while this one writes ([`super::rows`]): parsing or
//! reading overlaps with the target database's work.

use std::fmt;

use anyhow::Context as _;
use app::schema::RowChecker;
use app::{Backend, Database, DatabaseUrl, RowCounts, Table, Value, TABLES};

use super::checks::{check_value, find_broken_row, Place};
use super::rows::{pipeline, RowReceiver, RowSender};
use crate::progress::Progress;

/// Where a load's rows come from.
pub trait RowSource: Send {
    /// The rows of each table the source says it holds: the total of the progress line, and what
    /// the rows it sends must come to.
    fn announced(&self) -> RowCounts;

    /// Says, in the source's words, that it sent `found` rows of `table` where it announced
    /// `announced`.
    fn count_mismatch(&self, table: &Table, found: u64, announced: u64) -> String;

    /// Sends every row to `rows`: tables in dependency order ([`TABLES`]), each table's rows by
    /// ascending id.
    fn send_rows(&mut self, rows: &mut CheckedRows<'_>) -> anyhow::Result<()>;
}

/// Replaces all the data of `db` (the database at `url`) with the rows of `source`, in one
/// transaction; a database without a schema gets it in the same transaction, so that a failed load
/// leaves it exactly as empty as it was. `label` names the work on the progress line. Returns the
/// rows per table.
pub fn replace_data(
    db: &mut Database,
    url: &DatabaseUrl,
    label: &str,
    source: &mut impl RowSource,
) -> anyhow::Result<RowCounts> {
    let has_schema = db.schema_version()?.is_some();
    if has_schema {
        db.check_schema_version(url)?;
    }
    db.bulk_load(|db| {
        if !has_schema {
            db.migrate_in_transaction()?;
        }
        db.start_bulk_load()?;
        let announced = source.announced();
        let mut progress = Progress::new(label, Some(announced.total()));
        let target = db.backend();
        let ((), counts) = pipeline(
            |rows| source.send_rows(&mut CheckedRows::new(rows, target)),
            |rows| write_rows(db, rows, &mut progress),
        )?;
        drop(progress);
        for (table, found) in counts.iter() {
            let expected = announced.get(table);
            anyhow::ensure!(
                found == expected,
                "{}",
                source.count_mismatch(table, found, expected)
            );
        }
        finish_checked(db)?;
        Ok(counts)
    })
}

/// Writes the rows received, table by table, and counts them.
fn write_rows(
    db: &mut Database,
    rows: &mut RowReceiver,
    progress: &mut Progress,
) -> anyhow::Result<RowCounts> {
    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let mut written = 0;
        let mut batch = rows.next_of(table)?;
        if batch.is_some() {
            let mut writer = db.insert_rows(table)?;
            while let Some(rows_of_table) = batch {
                let values = rows_of_table.values();
                let columns = table.columns.len();
                writer.write_rows(values, columns).map_err(|(i, error)| {
                    let row = &values[i * columns..(i + 1) * columns];
                    anyhow::Error::from(error).context(Place::of_row(
                        table,
                        written + i as u64 + 1,
                        row,
                    ))
                })?;
                written += rows_of_table.len() as u64;
                progress.add(rows_of_table.len() as u64);
                batch = rows.next_of(table)?;
            }
            // PostgreSQL checks what COPY sent only now.
            writer
                .finish()
                .with_context(|| format!("table {}", table.name))?;
        }
        counts.push(written);
    }
    rows.end()?;
    Ok(RowCounts::new(counts))
}

/// Ends the bulk load, checking every unique value and every reference of the loaded rows. On
/// PostgreSQL, rebuilding the keys does it in one pass each; only if that fails are the rows
/// searched for the one to name. SQLite checked unique values on insert and references are looked
/// for now, before the commit.
fn finish_checked(db: &mut Database) -> anyhow::Result<()> {
    if db.backend() == Backend::Postgres {
        db.execute_batch("SAVEPOINT rebuild_keys")?;
        let Err(error) = db.finish_bulk_load() else {
            return Ok(());
        };
        db.execute_batch("ROLLBACK TO SAVEPOINT rebuild_keys")?;
        find_broken_row(db)?;
        return Err(error.into());
    }
    find_broken_row(db)?;
    Ok(db.finish_bulk_load()?)
}

/// The rows a source sends, checked on the source's thread before they go to the writer: every
/// value against its column and the target, every row against its table's row checks, and ids
/// ascending within each table.
pub struct CheckedRows<'a> {
    rows: &'a mut RowSender,
    target: Backend,
    /// The table of the last row sent, its position in the table and its id.
    last: Option<(&'static Table, u64, i64)>,
    /// The row checks of that table.
    checker: Option<RowChecker>,
}

/// A row that may not be loaded: where it is, and why.
#[derive(Debug)]
pub struct Refused {
    /// The row, and the column when one is to blame.
    pub place: Place,
    /// Why, without the place.
    pub reason: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.reason)
    }
}

impl std::error::Error for Refused {}

impl<'a> CheckedRows<'a> {
    fn new(rows: &'a mut RowSender, target: Backend) -> CheckedRows<'a> {
        CheckedRows {
            rows,
            target,
            last: None,
            checker: None,
        }
    }

    /// Checks `row` of `table` (a value per column of the current schema, in schema order) and
    /// hands a copy to the writer.
    pub fn send(&mut self, table: &'static Table, row: &[Value]) -> Result<(), Refused> {
        let (position, previous_id) = match self.last {
            Some((last, position, id)) if last.name == table.name => (position + 1, Some(id)),
            _ => {
                self.checker = Some(RowChecker::new(table));
                (1, None)
            }
        };
        let refuse = |column, reason| Refused {
            place: Place {
                column,
                ..Place::of_row(table, position, row)
            },
            reason,
        };
        for (column, value) in table.columns.iter().zip(row.iter()) {
            check_value(column, value, self.target).map_err(|e| refuse(Some(column.name), e))?;
        }
        let id = match row.first() {
            Some(Value::Integer(id)) => *id,
            _ => return Err(refuse(None, "has no id".into())),
        };
        if let Some(previous) = previous_id.filter(|previous| *previous >= id) {
            return Err(refuse(
                None,
                format!("ids must be strictly ascending, but the previous row's id is {previous}"),
            ));
        }
        let broken = self.checker.as_ref().and_then(|c| c.first_broken(row));
        if let Some(check) = broken {
            return Err(refuse(
                None,
                format!(
                    "the row breaks the check {}: {}",
                    check.constraint_name(table),
                    check.description()
                ),
            ));
        }
        self.last = Some((table, position, id));
        self.rows.send(table, row).map_err(|stopped| Refused {
            place: Place::default(),
            reason: stopped.to_string(),
        })
    }
}
