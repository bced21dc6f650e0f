//! Reads the rows of an export for a load ([`crate::engine::load`]), streaming the file: each row is
//! parsed whole from the window the file is read through ([`super::scan`]), each value converted to
//! its column's type, and a row that does not fit is named by its place in the file. The header is
//! read (and checked) separately, by [`super::header`].
//!
//! A file of an earlier schema version is brought forward as it is loaded, exactly as `migrate`
//! brings a database of that version forward: its rows have that version's columns, the columns
//! added since are NULL, and every check of the current version applies.

use std::fmt;
use std::io::Read;

use app::schema::PRIMARY_KEY;
use app::{Database, DatabaseUrl, RowCounts, Table, Value, TABLES};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

use super::format::{set_column_value, Header, JsonValue};
use super::header::read_header;
use super::open_export;
use super::scan::{ScanError, Scanner};
use crate::engine::archive::source::Source;
use crate::engine::checks::Place;
use crate::engine::load::{self, CheckedRows, RowSource};

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
    let mut file = ExportRows {
        source,
        header,
        schema_version,
    };
    load::replace_data(db, url, "importing", &mut file)
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

/// The rows of an export file, of `schema_version`.
struct ExportRows<'a> {
    source: &'a Source,
    header: &'a Header,
    schema_version: i64,
}

impl RowSource for ExportRows<'_> {
    fn announced(&self) -> RowCounts {
        self.header.counts()
    }

    fn count_mismatch(&self, table: &Table, found: u64, announced: u64) -> String {
        format!(
            "table {}: the file holds {found} rows but its row_counts says {announced}",
            table.name
        )
    }

    fn send_rows(&mut self, rows: &mut CheckedRows<'_>) -> anyhow::Result<()> {
        let mut loader = Loader {
            rows,
            schema_version: self.schema_version,
            next_table: 0,
            place: Place::default(),
        };
        let read = loader.read_file(&mut Scanner::new(open_export(self.source)?));
        read.map_err(|error| match loader.place.to_string() {
            place if place.is_empty() => anyhow::anyhow!("{error}"),
            place => anyhow::anyhow!("{place}: {error}"),
        })
    }
}

/// Where the rows go, and where the reading is.
struct Loader<'a, 'r> {
    rows: &'a mut CheckedRows<'r>,
    /// The schema version of the file's rows.
    schema_version: i64,
    /// The position in [`TABLES`] that the next table of the file may not precede.
    next_table: usize,
    /// The row being read, to name it in errors.
    place: Place,
}

impl Loader<'_, '_> {
    /// The file's top-level object: the header fields (read before, by [`read_header`]) are
    /// skipped, the tables loaded.
    fn read_file(&mut self, file: &mut Scanner<impl Read>) -> Result<(), ScanError> {
        file.expect(
            b'{',
            "a JSON object with the fields format, format_version, ..., tables",
        )?;
        let mut reached_tables = false;
        let mut first = true;
        while file.next_item(first, b'}')? {
            first = false;
            let key: String = file.parse("a field name")?;
            file.expect(b':', "`:`")?;
            let is_header = Header::FIELDS.contains(&key.as_str());
            if is_header && reached_tables {
                return Err(file.error(format!(
                    "the header field {key:?} comes after \"tables\": the header must come first"
                )));
            }
            match key.as_str() {
                "tables" => {
                    reached_tables = true;
                    self.read_tables(file)?;
                }
                _ if is_header => {
                    let length = file.value("a header field")?.len();
                    file.consume(length);
                }
                other => return Err(file.error(format!("unknown top-level field {other:?}"))),
            }
        }
        match file.peek()? {
            None => Ok(()),
            Some(_) => Err(file.error("trailing characters")),
        }
    }

    /// The `tables` object: each table's rows, tables in dependency order.
    fn read_tables(&mut self, file: &mut Scanner<impl Read>) -> Result<(), ScanError> {
        file.expect(b'{', "an object of tables")?;
        let mut first = true;
        while file.next_item(first, b'}')? {
            first = false;
            let name: String = file.parse("a table name")?;
            self.place = Place {
                table: Some(name.clone()),
                ..Place::default()
            };
            let Some(index) = TABLES.iter().position(|t| t.name == name) else {
                return Err(file.error("no such table in the schema"));
            };
            if index < self.next_table {
                let order: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
                return Err(file.error(format!(
                    "tables must come once each, in dependency order: {}",
                    order.join(", ")
                )));
            }
            self.next_table = index + 1;
            file.expect(b':', "`:`")?;
            self.read_rows(file, &TABLES[index])?;
            self.place.row = None;
            self.place.id = None;
        }
        self.place = Place::default();
        Ok(())
    }

    /// One table's array of rows, each sent to the load as soon as it is read.
    fn read_rows(
        &mut self,
        file: &mut Scanner<impl Read>,
        table: &'static Table,
    ) -> Result<(), ScanError> {
        file.expect(b'[', "an array of rows")?;
        // The columns added after the file's schema version are never read, so they stay NULL.
        let mut values = vec![Value::Null; table.columns.len()];
        let mut position = 0;
        while file.next_item(position == 0, b']')? {
            position += 1;
            self.place.row = Some(position);
            self.place.id = None;
            file.parse_next("a row", |text| {
                let mut parser = serde_json::Deserializer::from_str(text);
                let seed = RowSeed {
                    table,
                    schema_version: self.schema_version,
                    values: &mut values,
                    place: &mut self.place,
                };
                seed.deserialize(&mut parser).and_then(|()| parser.end())
            })?;
            if let Err(refused) = self.rows.send(table, &values) {
                self.place = refused.place;
                return Err(file.error(refused.reason));
            }
        }
        Ok(())
    }
}

/// One row object, converted into `values` in schema column order.
struct RowSeed<'a> {
    table: &'static Table,
    /// The schema version of the row: it has that version's columns.
    schema_version: i64,
    values: &'a mut [Value],
    place: &'a mut Place,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let columns = self.table.columns;
        // One bit per column (the schema's tables have fewer than 64).
        let mut seen = 0u64;
        let mut expected = 0;
        loop {
            // A bad key is not in the column before it.
            self.place.column = None;
            let key = ColumnName {
                table: self.table,
                version: self.schema_version,
                expected,
            };
            let Some(index) = map.next_key_seed(key)? else {
                break;
            };
            expected = index + 1;
            let column = &columns[index];
            self.place.column = Some(column.name);
            if seen & (1 << index) != 0 {
                return Err(de::Error::custom("the column appears twice in the row"));
            }
            seen |= 1 << index;
            let json: JsonValue<'de> = map.next_value()?;
            let value = &mut self.values[index];
            set_column_value(value, column, json).map_err(de::Error::custom)?;
            if let (Value::Integer(id), PRIMARY_KEY) = (&*value, column.name) {
                self.place.id = Some(*id);
            }
        }
        let in_file = |i: &usize| columns[*i].since <= self.schema_version;
        if let Some(missing) = (0..columns.len())
            .filter(in_file)
            .find(|i| seen & (1 << i) == 0)
        {
            self.place.column = Some(columns[missing].name);
            return Err(de::Error::custom("the column is missing from the row"));
        }
        self.place.column = None;
        Ok(())
    }
}

/// A key of a row object: the position of the column it names, which the table has at the schema
/// version; looked for first where a row in schema order has it.
struct ColumnName {
    table: &'static Table,
    version: i64,
    expected: usize,
}

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
        let ColumnName {
            table,
            version,
            expected,
        } = self;
        let index = match table.columns.get(expected) {
            Some(column) if column.name == name => Some(expected),
            _ => table.column_index(name),
        };
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
