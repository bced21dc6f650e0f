//! `cargo xtask import`: replaces all the data of a database with an export file's, in one
//! transaction, streaming the file row by row so that memory stays flat.
//!
//! The file is read twice: first only its header, which is checked before the target is touched (or
//! the user asked), then in full inside the import transaction, each row converted, checked and
//! written as soon as it is read.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use app::schema::PRIMARY_KEY;
use app::{Backend, Database, DatabaseUrl, RowWriter, Table, Value, TABLES};
use serde::de::{
    self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use crate::compression::{open_decompressed, Compression};
use crate::confirm::{open_confirmed_target, ReplaceOptions};
use crate::export::export_to_file;
use crate::export_format::{column_value, Header, JsonValue};
use crate::files::{describe_counts, file_size, timestamped_path};
use crate::progress::Progress;
use crate::report::Report;

/// Options of `cargo xtask import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The export file to import (written by `cargo xtask export`)
    #[arg(long, value_name = "PATH")]
    file: PathBuf,
    #[command(flatten)]
    replace: ReplaceOptions,
}

/// Replaces all the data of `url` with the data of the chosen file.
pub fn run(url: &DatabaseUrl, args: &ImportArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("import");
    let path = &args.file;
    let header = read_header(path)?;
    header.check(path)?;
    let action = format!("the import of {}", path.display());
    let created = url
        .sqlite_path()
        .filter(|p| !p.exists())
        .map(Path::to_path_buf);
    let mut db = open_confirmed_target(url, &action, args.replace.yes)?;
    let mut safety_backup = None;
    let has_schema = db.schema_version()?.is_some();
    if has_schema {
        db.check_schema_version(url)?;
        let holds_data = db.row_counts()?.iter().any(|(_, rows)| *rows > 0);
        if holds_data && !args.replace.no_safety_backup {
            safety_backup = Some(save_current_data(url, &mut db)?);
        }
    }
    let loaded = db.transaction(|db| {
        // An empty target, such as a fresh production database, gets the schema first, in the same
        // transaction: if the load fails, it is left as empty as it was.
        if !has_schema {
            db.migrate_in_transaction()?;
        }
        load(db, path, &header)
    });
    let counts = match loaded {
        Ok(counts) => counts,
        Err(error) => {
            // A SQLite file that this import created goes too: the target is exactly as before.
            if let Some(file) = created {
                drop(db);
                let _ = std::fs::remove_file(file);
            }
            let message = format!(
                "cannot import {} into {url}; nothing was changed",
                path.display()
            );
            return Err(error.context(message));
        }
    };
    let rows = || TABLES.iter().map(|t| t.name).zip(counts.iter().copied());
    let line = format!(
        "imported {} into {url}: {} in {:.2} s",
        path.display(),
        describe_counts(rows()),
        report.seconds()
    );
    report
        .say(line)
        .backup_file(path, "json", url.backend().as_str(), file_size(path)?)
        .field("safety_backup", safety_backup)
        .rows(rows());
    Ok(report)
}

/// Loads the export at `path` into `db`, a database without data (such as a scratch database):
/// the header is checked, the schema created, and the rows loaded and checked in one transaction.
/// Returns the file's header and the rows per table.
pub fn load_into(db: &mut Database, path: &Path) -> anyhow::Result<(Header, Vec<u64>)> {
    let header = read_header(path)?;
    header.check(path)?;
    let counts = db.transaction(|db| {
        db.migrate_in_transaction()?;
        load(db, path, &header)
    })?;
    Ok((header, counts))
}

/// Exports what `db` holds now, so that importing the wrong file never loses anything.
/// Returns the safety export's path.
fn save_current_data(url: &DatabaseUrl, db: &mut Database) -> anyhow::Result<String> {
    let path = timestamped_path("toefl_pre_import", "json")?;
    export_to_file(db, &path, false, Compression::None).with_context(|| {
        format!(
            "cannot save the current data of {url} before the import (pass --no-safety-backup to \
             import without this safety export)"
        )
    })?;
    eprintln!(
        "saved the current data of {url} to {} before replacing it",
        path.display()
    );
    Ok(path.display().to_string())
}

/// Reads the header of the file at `path`, stopping where `tables` begins.
pub fn read_header(path: &Path) -> anyhow::Result<Header> {
    let mut header = Header::default();
    let mut reached_tables = false;
    let parsed = parse_file(
        path,
        ExportFile {
            header: &mut header,
            loader: None,
            reached_tables: &mut reached_tables,
        },
    )?;
    // Parsing stops at `tables` on purpose; the error it then gives about the rest is not one.
    match parsed {
        _ if reached_tables => Ok(header),
        Ok(()) => anyhow::bail!("{} has no \"tables\" field", path.display()),
        Err(error) => anyhow::bail!(
            "{} is not a TOEFL Dashboard export ({error}): to restore a native backup use `cargo xtask restore`",
            path.display()
        ),
    }
}

/// Deletes every row of `db` and writes the file's rows instead, checking every value, the row
/// counts and every reference; call inside a transaction. Returns the rows per table.
fn load(db: &mut Database, path: &Path, header: &Header) -> anyhow::Result<Vec<u64>> {
    db.start_bulk_load()?;
    let mut loader = Loader {
        postgres: db.backend() == Backend::Postgres,
        db,
        next_table: 0,
        counts: vec![0; TABLES.len()],
        place: Place::default(),
        progress: Progress::new(
            "importing",
            Some(TABLES.iter().map(|t| header.row_count(t.name)).sum()),
        ),
    };
    let mut ignored = Header::default();
    let mut reached_tables = false;
    parse_file(
        path,
        ExportFile {
            header: &mut ignored,
            loader: Some(&mut loader),
            reached_tables: &mut reached_tables,
        },
    )?
    .map_err(|error| match loader.place.to_string() {
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
    Ok(counts)
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
        name_the_broken_row(db)?;
        return Err(error.into());
    }
    name_the_broken_row(db)?;
    Ok(db.finish_bulk_load()?)
}

/// Fails with the first row that breaks a unique key or a reference, naming it.
fn name_the_broken_row(db: &mut Database) -> anyhow::Result<()> {
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
        "{}: refers to {parent} id {missing}, which is not in the file",
        place_of(db, table, id, column)?
    )
}

/// Fails on the first row of `table` whose value in a unique column an earlier row already has (on
/// PostgreSQL the unique keys are rebuilt only after the load, so this names the row first).
fn check_unique(db: &mut Database, table: &'static Table) -> anyhow::Result<()> {
    let Some((id, column, first)) = db.find_duplicate(table)? else {
        return Ok(());
    };
    anyhow::bail!(
        "{}: the same value as the row with id {first}, but {column} must be unique",
        place_of(db, table, id, column)?
    )
}

/// `table T, row N (id I), column C` for a loaded row.
fn place_of(db: &mut Database, table: &Table, id: i64, column: &str) -> anyhow::Result<String> {
    // Ids are ascending in the file, so the row's position is the number of ids up to its own.
    let position = db
        .query_i64(&format!(
            "SELECT count(*) FROM {} WHERE {PRIMARY_KEY} <= {id}",
            table.name
        ))?
        .unwrap_or(0);
    Ok(format!(
        "table {}, row {position} (id {id}), column {column}",
        table.name
    ))
}

/// Opens the file at `path` and drives `visitor` over its top-level object. The outer error is an I/O
/// error opening the file; the inner one is the parser's (with its line and column).
fn parse_file(
    path: &Path,
    visitor: ExportFile<'_, '_>,
) -> anyhow::Result<Result<(), serde_json::Error>> {
    // serde_json reads byte by byte: a concrete buffer in front of the boxed (maybe decompressing)
    // reader keeps that from being a dynamic call per byte, which halves the import's CPU time.
    let reader = std::io::BufReader::with_capacity(1 << 16, open_decompressed(path)?);
    let mut parser = serde_json::Deserializer::from_reader(reader);
    Ok(parser.deserialize_map(visitor).and_then(|()| parser.end()))
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
    /// The position in [`TABLES`] that the next table of the file may not precede.
    next_table: usize,
    /// The rows written to each table of [`TABLES`].
    counts: Vec<u64>,
    place: Place,
    progress: Progress,
}

/// The file's top-level object. Without a loader it reads the header and stops at `tables`; with
/// one, it skips the header and loads the tables.
struct ExportFile<'a, 'db> {
    header: &'a mut Header,
    loader: Option<&'a mut Loader<'db>>,
    reached_tables: &'a mut bool,
}

impl<'de> Visitor<'de> for ExportFile<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with the fields format, format_version, ..., tables")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let is_header = Header::FIELDS.contains(&key.as_str());
            if is_header && *self.reached_tables {
                return Err(de::Error::custom(format!(
                    "the header field {key:?} comes after \"tables\": the header must come first"
                )));
            }
            match (key.as_str(), &mut self.loader) {
                ("tables", None) => {
                    *self.reached_tables = true;
                    return Ok(());
                }
                ("tables", Some(loader)) => {
                    *self.reached_tables = true;
                    map.next_value_seed(TablesSeed { loader })?;
                }
                (_, Some(_)) if is_header => {
                    map.next_value::<IgnoredAny>()?;
                }
                ("format", None) => self.header.format = Some(map.next_value()?),
                ("format_version", None) => self.header.format_version = Some(map.next_value()?),
                ("schema_version", None) => self.header.schema_version = Some(map.next_value()?),
                ("row_counts", None) => self.header.row_counts = Some(map.next_value()?),
                ("exported_at", None) => self.header.exported_at = Some(map.next_value()?),
                ("source", None) => self.header.source = Some(map.next_value()?),
                (_, None) if is_header => {
                    map.next_value::<IgnoredAny>()?;
                }
                (other, _) => {
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
        let mut values = vec![Value::Null; self.table.columns.len()];
        let mut previous_id = None;
        let mut written = 0;
        loop {
            self.place.row = Some(written + 1);
            self.place.id = None;
            let row = RowSeed {
                table: self.table,
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
            let Some(index) = map.next_key_seed(ColumnName(self.table))? else {
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
        if let Some(missing) = seen.iter().position(|seen| !seen) {
            self.place.column = Some(columns[missing].name);
            return Err(de::Error::custom("the column is missing from the row"));
        }
        self.place.column = None;
        Ok(self.place.id.expect("the id column was read"))
    }
}

/// A key of a row object: the position of the column it names.
struct ColumnName(&'static Table);

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
        self.0.column_index(name).ok_or_else(|| {
            E::custom(format!(
                "unknown column {name:?}: {} has the columns {}",
                self.0.name,
                self.0.column_list()
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
