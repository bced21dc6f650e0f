//! What a database must satisfy once rows were loaded or restored into it, and the one way a broken
//! row is named: `table T, row N (id I), column C: ...`.

use app::schema::PRIMARY_KEY;
use app::{Database, DatabaseUrl, RowCounts, Table, SCHEMA_VERSION, TABLES};

/// Checks a restored or loaded database: its schema version, every unique key, every reference and
/// every row check (a SQLite file's pages are restored as they are, never checked again by SQLite).
/// Returns its row counts.
pub fn check_restored(db: &mut Database, url: &DatabaseUrl) -> anyhow::Result<RowCounts> {
    db.check_schema_version(url)?;
    find_broken_row(db)?;
    for table in TABLES {
        for check in table.row_checks {
            if let Some(id) = db.first_refused_row(table, check, SCHEMA_VERSION)? {
                anyhow::bail!(
                    "{}: breaks the check {}: {}",
                    place_of(db, table, id, None)?,
                    check.constraint_name(table),
                    check.description()
                );
            }
        }
    }
    Ok(db.row_counts()?)
}

/// Fails with the first row that breaks a unique key or a reference, naming it.
pub fn find_broken_row(db: &mut Database) -> anyhow::Result<()> {
    for table in TABLES {
        check_unique(db, table)?;
        check_references(db, table)?;
    }
    Ok(())
}

/// Fails on the first row of `table` that refers to a row that is not there.
fn check_references(db: &mut Database, table: &'static Table) -> anyhow::Result<()> {
    let Some((id, column, missing)) = db.find_dangling_reference(table)? else {
        return Ok(());
    };
    let parent = table
        .column(column)
        .and_then(|c| c.references)
        .map_or("?", |fk| fk.table);
    anyhow::bail!(
        "{}: refers to {parent} id {missing}, which does not exist",
        place_of(db, table, id, Some(column))?
    )
}

/// Fails on the first row of `table` whose value in a unique column an earlier row already has (on
/// PostgreSQL a bulk load rebuilds the unique keys only at its end, so this names the row first).
fn check_unique(db: &mut Database, table: &'static Table) -> anyhow::Result<()> {
    let Some((id, column, first)) = db.find_duplicate(table)? else {
        return Ok(());
    };
    anyhow::bail!(
        "{}: the same value as the row with id {first}, but {column} must be unique",
        place_of(db, table, id, Some(column))?
    )
}

/// `table T, row N (id I), column C` for a row in the database (without the column when the whole
/// row is at fault).
fn place_of(
    db: &mut Database,
    table: &Table,
    id: i64,
    column: Option<&str>,
) -> anyhow::Result<String> {
    // Rows are read and written by ascending id, so the row's position is the number of ids up to
    // its own.
    let position = db
        .query_i64(&format!(
            "SELECT count(*) FROM {} WHERE {PRIMARY_KEY} <= {id}",
            table.name
        ))?
        .unwrap_or(0);
    let column = column.map_or(String::new(), |c| format!(", column {c}"));
    Ok(format!(
        "table {}, row {position} (id {id}){column}",
        table.name
    ))
}
