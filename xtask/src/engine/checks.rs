//! What every value loaded into a database must satisfy, what the database must satisfy once rows
//! were loaded or restored into it, and the one way a broken row is named: `table T, row N (id I),
//! column C: ...`.

use std::fmt;

use app::schema::{Column, PRIMARY_KEY};
use app::{Backend, Database, DatabaseUrl, RowCounts, Table, Value, SCHEMA_VERSION, TABLES};

/// The years a date or timestamp may have: those the export format and SQLite's canonical text
/// forms (`YYYY-...`) hold.
const YEARS: std::ops::RangeInclusive<i32> = 0..=9999;

/// Says why `value` may not go into `column` of a database of the `target` backend (without naming
/// the column: the caller knows where it is): NOT NULL, the column's CHECK, and what an export and
/// both backends can hold (finite reals, years 0 to 9999, no NUL characters on PostgreSQL).
pub fn check_value(column: &Column, value: &Value, target: Backend) -> Result<(), String> {
    use chrono::Datelike as _;
    let representable = match value {
        Value::Null if column.nullable => return Ok(()),
        Value::Null => return Err("is null but the column is NOT NULL".into()),
        _ if !column.ty.admits(value) => Err(format!("holds {value:?}, which is not a {:?}", column.ty)),
        Value::Text(text) if target == Backend::Postgres && text.contains('\0') => {
            Err("holds a NUL character (\\u0000), which PostgreSQL cannot store in text".into())
        }
        Value::Real(real) if !real.is_finite() => Err(format!(
            "holds {real}, which an export cannot hold (JSON has no NaN or infinity)"
        )),
        Value::Date(date) if !YEARS.contains(&date.year()) => Err(format!(
            "holds the date {date}, outside the years 0000 to 9999 that exports and SQLite hold"
        )),
        Value::Timestamp(time) if !YEARS.contains(&time.year()) => Err(format!(
            "holds the timestamp {time}, outside the years 0000 to 9999 that exports and SQLite hold"
        )),
        _ => Ok(()),
    };
    representable?;
    match column.check {
        Some(check) if !check.allows(value) => Err(format!(
            "holds {value:?}, which the check {} rejects",
            check.sql(column.name)
        )),
        _ => Ok(()),
    }
}

/// Where a row is, as far as it is known: `table T, row N (id I), column C`. The row is its 1-based
/// position in its table, whose rows go by ascending id.
#[derive(Debug, Default, Clone)]
pub struct Place {
    /// The table, as named by the source (possibly not one of the schema's).
    pub table: Option<String>,
    /// The row's 1-based position in its table.
    pub row: Option<u64>,
    /// The row's id.
    pub id: Option<i64>,
    /// The column.
    pub column: Option<&'static str>,
}

impl Place {
    /// Row `row` of `table`, whose values are `values` (its id first).
    pub fn of_row(table: &Table, row: u64, values: &[Value]) -> Place {
        Place {
            table: Some(table.name.to_string()),
            row: Some(row),
            id: match values.first() {
                Some(Value::Integer(id)) => Some(*id),
                _ => None,
            },
            column: None,
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(table) = &self.table else {
            return Ok(());
        };
        write!(f, "table {table}")?;
        match (self.row, self.id) {
            (Some(row), Some(id)) => write!(f, ", row {row} (id {id})")?,
            (Some(row), None) => write!(f, ", row {row}")?,
            (None, _) => {}
        }
        match self.column {
            Some(column) => write!(f, ", column {column}"),
            None => Ok(()),
        }
    }
}

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
    let place = place_of(db, table, id, Some(column))?;
    anyhow::bail!("{place}: refers to {parent} id {missing}, which does not exist")
}

/// Fails on the first row of `table` whose value in a unique column an earlier row already has (on
/// PostgreSQL a bulk load rebuilds the unique keys only at its end, so this names the row first).
fn check_unique(db: &mut Database, table: &'static Table) -> anyhow::Result<()> {
    let Some((id, column, first)) = db.find_duplicate(table)? else {
        return Ok(());
    };
    let place = place_of(db, table, id, Some(column))?;
    anyhow::bail!("{place}: the same value as the row with id {first}, but {column} must be unique")
}

/// The place of the row with `id` in the database, at `column` (none when the whole row is at
/// fault).
fn place_of(
    db: &mut Database,
    table: &Table,
    id: i64,
    column: Option<&'static str>,
) -> anyhow::Result<Place> {
    // Rows are read and written by ascending id, so the row's position is the number of ids up to
    // its own.
    let position = db
        .query_i64(&format!(
            "SELECT count(*) FROM {} WHERE {PRIMARY_KEY} <= {id}",
            table.name
        ))?
        .unwrap_or(0);
    Ok(Place {
        table: Some(table.name.to_string()),
        row: Some(position as u64),
        id: Some(id),
        column,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::schema::GRADES;

    #[test]
    fn places_name_the_table_row_id_and_column() {
        let place = Place {
            table: Some(GRADES.name.into()),
            row: Some(5),
            id: Some(17),
            column: Some("kind"),
        };
        assert_eq!(
            place.to_string(),
            "table grades, row 5 (id 17), column kind"
        );
        assert_eq!(Place::default().to_string(), "");
    }

    #[test]
    fn values_that_do_not_fit_their_column_are_rejected() {
        let column = |name| GRADES.column(name).unwrap();
        let text = |s: &str| Value::Text(s.into());
        let check = |name, value: Value, target| check_value(column(name), &value, target);
        assert!(check("kind", text("bogus"), Backend::Sqlite)
            .unwrap_err()
            .contains("check"));
        assert!(check("kind", Value::Null, Backend::Sqlite)
            .unwrap_err()
            .contains("NOT NULL"));
        assert!(check("comments", Value::Null, Backend::Postgres).is_ok());
        assert!(check("comments", text("a\0b"), Backend::Postgres).is_err());
        assert!(check("comments", text("a\0b"), Backend::Sqlite).is_ok());
        assert!(check("percentile", Value::Real(f64::NAN), Backend::Sqlite).is_err());
        assert!(check("percentile", Value::Integer(3), Backend::Sqlite).is_err());
        let date = |y, m, d| Value::Date(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap());
        assert!(check("taken_on", date(2024, 2, 29), Backend::Sqlite).is_ok());
        assert!(check("taken_on", date(0, 1, 1), Backend::Sqlite).is_ok());
        assert!(check("taken_on", date(10_000, 1, 1), Backend::Postgres).is_err());
        assert!(check("taken_on", date(-1, 1, 1), Backend::Postgres).is_err());
    }
}
