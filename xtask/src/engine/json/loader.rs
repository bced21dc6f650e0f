//! Loads an export into a database in one transaction, streaming the file row by row: every value is
//! checked against its column and every row against its table's row checks as it is read, then the
//! row counts against the header, then every unique key and reference. The header is read (and
//! checked) separately, by [`super::header`].
//!
//! A file of an earlier schema version is brought forward as it is loaded, exactly as `migrate`
//! brings a database of that version forward: its rows have that version's columns, the columns
//! added since are NULL, and every check of the current version applies.

use std::fmt;

use app::schema::{RowChecker, PRIMARY_KEY};
use app::{Backend, Database, DatabaseUrl, RowCounts, RowWriter, Table, Value, TABLES};
use serde::de::{
    self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use super::format::{column_value, Header, JsonValue};
use super::header::read_header;
use super::open_export;
use crate::engine::archive::source::Source;
use crate::engine::checks::find_broken_row;
use crate::progress::Progress;

/// Replaces all the data of `db` with the rows of the export `source` (whose `header` was read and
/// checked, and says the rows are of `schema_version`), in one transaction; a database without a
/// schema gets it in the same transaction, so that a failed load leaves it exactly as empty as it
/// was. Returns the rows per table.
pub fn replace_data(
    db: &mut Database,
    url: &DatabaseUrl,
    source: &Source,
    header: &Header,
    schema_version: i64,
) -> anyhow::Result<RowCounts> {
    let has_schema = db.schema_version()?.is_some();
    if has_schema {
        db.check_schema_version(url)?;
    }
    db.transaction(|db| {
        if !has_schema {
            db.migrate_in_transaction()?;
        }
        load(db, source, header, schema_version)
    })
}

/// Loads the export `source` into `db`, a database without data (such as a scratch database),
/// checking its header first. Returns the file's header and the rows per table.
pub fn load_into_empty(
    db: &mut Database,
    url: &DatabaseUrl,
    source: &Source,
) -> anyhow::Result<(Header, RowCounts)> {
    let header = read_header(source)?;
    let schema_version = header.check(source.path())?;
    let counts = replace_data(db, url, source, &header, schema_version)?;
    Ok((header, counts))
}

/// Deletes every row of `db` and writes the file's rows (of `schema_version`) instead, checking
/// every value, row, the row counts and every reference; call inside a transaction. Returns the rows
/// per table.
fn load(
    db: &mut Database,
    source: &Source,
    header: &Header,
    schema_version: i64,
) -> anyhow::Result<RowCounts> {
    db.start_bulk_load()?;
    let mut loader = Loader {
        postgres: db.backend() == Backend::Postgres,
        schema_version,
        db,
        next_table: 0,
        counts: vec![0; TABLES.len()],
        place: Place::default(),
        progress: Progress::new(
            "importing",
            Some(TABLES.iter().map(|t| header.row_count(t.name)).sum()),
        ),
    };
    let mut parser = serde_json::Deserializer::from_reader(open_export(source)?);
    let parsed = parser
        .deserialize_map(RowsOfFile {
            loader: &mut loader,
            reached_tables: false,
        })
        .and_then(|()| parser.end());
    parsed.map_err(|error| match loader.place.to_string() {
        place if place.is_empty() => anyhow::anyhow!("{error}"),
        place => anyhow::anyhow!("{place}: {error}"),
    })?;
    let Loader { db, counts, .. } = loader;
    for (table, found) in TABLES.iter().zip(&counts) {
        let expected = header.row_count(table.name);
        anyhow::ensure!(
            *found == expected,
            "table {}: the file holds {found} rows but its row_counts says {expected}",
            table.name
        );
    }
    finish_checked(db)?;
    Ok(RowCounts::new(counts))
}

/// Ends the bulk load, checking every unique value and every reference of the loaded rows. On
/// PostgreSQL, rebuilding the keys does it in one pass each; only if that fails are the rows searched
/// for the one to name. SQLite checked unique values on insert and defers references to the commit,
/// so they are looked for now.
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

/// Where the parser is in the file, to name it in errors.
#[derive(Default)]
struct Place {
    table: Option<String>,
    /// The row's 1-based position in its table.
    row: Option<u64>,
    id: Option<i64>,
    column: Option<&'static str>,
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

/// What the import transaction writes to, and what it has written so far.
struct Loader<'db> {
    db: &'db mut Database,
    /// PostgreSQL cannot store NUL characters in text.
    postgres: bool,
    /// The schema version of the file's rows.
    schema_version: i64,
    /// The position in [`TABLES`] that the next table of the file may not precede.
    next_table: usize,
    /// The rows written to each table of [`TABLES`].
    counts: Vec<u64>,
    place: Place,
    progress: Progress,
}

/// The file's top-level object: the header fields (read before, by [`read_header`]) are skipped,
/// the tables loaded.
struct RowsOfFile<'a, 'db> {
    loader: &'a mut Loader<'db>,
    reached_tables: bool,
}

impl<'de> Visitor<'de> for RowsOfFile<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with the fields format, format_version, ..., tables")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let is_header = Header::FIELDS.contains(&key.as_str());
            if is_header && self.reached_tables {
                return Err(de::Error::custom(format!(
                    "the header field {key:?} comes after \"tables\": the header must come first"
                )));
            }
            match key.as_str() {
                "tables" => {
                    self.reached_tables = true;
                    map.next_value_seed(TablesSeed {
                        loader: self.loader,
                    })?;
                }
                _ if is_header => {
                    map.next_value::<IgnoredAny>()?;
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown top-level field {other:?}"
                    )))
                }
            }
        }
        Ok(())
    }
}

/// The `tables` object: each table's rows, tables in dependency order.
struct TablesSeed<'a, 'db> {
    loader: &'a mut Loader<'db>,
}

impl<'de> DeserializeSeed<'de> for TablesSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TablesSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of tables")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let loader = self.loader;
        while let Some(name) = map.next_key::<String>()? {
            loader.place = Place {
                table: Some(name.clone()),
                ..Place::default()
            };
            let Some(index) = TABLES.iter().position(|t| t.name == name) else {
                return Err(de::Error::custom("no such table in the schema"));
            };
            if index < loader.next_table {
                let order: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
                return Err(de::Error::custom(format!(
                    "tables must come once each, in dependency order: {}",
                    order.join(", ")
                )));
            }
            loader.next_table = index + 1;
            let table = &TABLES[index];
            let mut writer = loader.db.insert_rows(table).map_err(de::Error::custom)?;
            loader.counts[index] = map.next_value_seed(RowsSeed {
                table,
                schema_version: loader.schema_version,
                checker: RowChecker::new(table),
                writer: &mut writer,
                postgres: loader.postgres,
                place: &mut loader.place,
                progress: &mut loader.progress,
            })?;
            loader.place.row = None;
            loader.place.id = None;
            // PostgreSQL checks what COPY sent (unique keys, for one) only now.
            writer.finish().map_err(de::Error::custom)?;
        }
        loader.place = Place::default();
        Ok(())
    }
}

/// One table's array of rows; gives the number of rows written.
struct RowsSeed<'a, 'w> {
    table: &'static Table,
    /// The schema version of the file's rows.
    schema_version: i64,
    checker: RowChecker,
    writer: &'a mut RowWriter<'w>,
    postgres: bool,
    place: &'a mut Place,
    progress: &'a mut Progress,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_> {
    type Value = u64;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        // The columns added after the file's schema version are never read, so they stay NULL.
        let mut values = vec![Value::Null; self.table.columns.len()];
        let mut previous_id = None;
        let mut written = 0;
        loop {
            self.place.row = Some(written + 1);
            self.place.id = None;
            let row = RowSeed {
                table: self.table,
                schema_version: self.schema_version,
                values: &mut values,
                postgres: self.postgres,
                place: &mut *self.place,
            };
            let Some(id) = seq.next_element_seed(row)? else {
                break;
            };
            if let Some(previous) = previous_id.filter(|p| *p >= id) {
                return Err(de::Error::custom(format!(
                    "ids must be strictly ascending, but the previous row's id is {previous}"
                )));
            }
            previous_id = Some(id);
            if let Some(check) = self.checker.first_broken(&values) {
                return Err(de::Error::custom(format!(
                    "the row breaks the check {}: {}",
                    check.constraint_name(self.table),
                    check.description()
                )));
            }
            self.writer.write(&values).map_err(de::Error::custom)?;
            self.progress.add(1);
            written += 1;
        }
        Ok(written)
    }
}

/// One row object, converted into `values` in schema column order; gives the row's id.
struct RowSeed<'a> {
    table: &'static Table,
    /// The schema version of the row: it has that version's columns.
    schema_version: i64,
    values: &'a mut [Value],
    postgres: bool,
    place: &'a mut Place,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = i64;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<i64, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<i64, A::Error> {
        let columns = self.table.columns;
        let mut seen = vec![false; columns.len()];
        loop {
            // A bad key is not in the column before it.
            self.place.column = None;
            let Some(index) = map.next_key_seed(ColumnName(self.table, self.schema_version))?
            else {
                break;
            };
            let column = &columns[index];
            self.place.column = Some(column.name);
            if std::mem::replace(&mut seen[index], true) {
                return Err(de::Error::custom("the column appears twice in the row"));
            }
            let json: JsonValue = map.next_value()?;
            let value = column_value(column, json, self.postgres).map_err(de::Error::custom)?;
            if let (Value::Integer(id), PRIMARY_KEY) = (&value, column.name) {
                self.place.id = Some(*id);
            }
            self.values[index] = value;
        }
        let expected = |i: &usize| columns[*i].since <= self.schema_version;
        if let Some(missing) = (0..columns.len()).filter(expected).find(|i| !seen[*i]) {
            self.place.column = Some(columns[missing].name);
            return Err(de::Error::custom("the column is missing from the row"));
        }
        self.place.column = None;
        Ok(self.place.id.expect("the id column was read"))
    }
}

/// A key of a row object: the position of the column it names, which the table has at the schema
/// version.
struct ColumnName(&'static Table, i64);

impl<'de> DeserializeSeed<'de> for ColumnName {
    type Value = usize;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ColumnName {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a column name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<usize, E> {
        let ColumnName(table, version) = self;
        let index = table.column_index(name);
        index
            .filter(|i| table.columns[*i].since <= version)
            .ok_or_else(|| {
                E::custom(format!(
                    "unknown column {name:?}: at schema version {version}, {} has the columns {}",
                    table.name,
                    table.column_list_at(version)
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_name_the_table_row_id_and_column() {
        let place = Place {
            table: Some(app::schema::GRADES.name.into()),
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
}
