//! Reads the rows of an export for a load ([`crate::engine::load`]), streaming the file: each value
//! is converted to its column's type as it is parsed, and a row that does not fit is named by its
//! place in the file. The header is read (and checked) separately, by [`super::header`].

use std::fmt;
use std::path::Path;

use app::schema::PRIMARY_KEY;
use app::{Database, DatabaseUrl, RowCounts, Table, Value, TABLES};
use serde::de::{
    self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use super::format::{column_value, Header, JsonValue};
use super::header::read_header;
use super::open_export;
use crate::engine::checks::Place;
use crate::engine::load::{self, CheckedRows, RowSource};

/// Replaces all the data of `db` with the rows of the export at `path` (whose `header` was read and
/// checked), in one transaction; a database without a schema gets it in the same transaction, so
/// that a failed load leaves it exactly as empty as it was. Returns the rows per table.
pub fn replace_data(
    db: &mut Database,
    url: &DatabaseUrl,
    path: &Path,
    header: &Header,
) -> anyhow::Result<RowCounts> {
    let mut file = ExportRows { path, header };
    load::replace_data(db, url, "importing", &mut file)
}

/// Loads the export at `path` into `db`, a database without data (such as a scratch database),
/// checking its header first. Returns the file's header and the rows per table.
pub fn load_into_empty(
    db: &mut Database,
    url: &DatabaseUrl,
    path: &Path,
) -> anyhow::Result<(Header, RowCounts)> {
    let header = read_header(path)?;
    header.check(path)?;
    let counts = replace_data(db, url, path, &header)?;
    Ok((header, counts))
}

/// The rows of an export file.
struct ExportRows<'a> {
    path: &'a Path,
    header: &'a Header,
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
            next_table: 0,
            place: Place::default(),
        };
        let mut parser = serde_json::Deserializer::from_reader(open_export(self.path)?);
        let parsed = parser
            .deserialize_map(RowsOfFile {
                loader: &mut loader,
                reached_tables: false,
            })
            .and_then(|()| parser.end());
        parsed.map_err(|error| match loader.place.to_string() {
            place if place.is_empty() => anyhow::anyhow!("{error}"),
            place => anyhow::anyhow!("{place}: {error}"),
        })
    }
}

/// Where the rows go, and where the parser is.
struct Loader<'a, 'r> {
    rows: &'a mut CheckedRows<'r>,
    /// The position in [`TABLES`] that the next table of the file may not precede.
    next_table: usize,
    /// Where the parser is in the file, to name it in errors.
    place: Place,
}

/// The file's top-level object: the header fields (read before, by [`read_header`]) are skipped,
/// the tables loaded.
struct RowsOfFile<'a, 'b, 'r> {
    loader: &'a mut Loader<'b, 'r>,
    reached_tables: bool,
}

impl<'de> Visitor<'de> for RowsOfFile<'_, '_, '_> {
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
struct TablesSeed<'a, 'b, 'r> {
    loader: &'a mut Loader<'b, 'r>,
}

impl<'de> DeserializeSeed<'de> for TablesSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TablesSeed<'_, '_, '_> {
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
            map.next_value_seed(RowsSeed {
                table: &TABLES[index],
                rows: &mut *loader.rows,
                place: &mut loader.place,
            })?;
            loader.place.row = None;
            loader.place.id = None;
        }
        loader.place = Place::default();
        Ok(())
    }
}

/// One table's array of rows, each sent to the load as soon as it is read.
struct RowsSeed<'a, 'r> {
    table: &'static Table,
    rows: &'a mut CheckedRows<'r>,
    place: &'a mut Place,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut values = vec![Value::Null; self.table.columns.len()];
        for position in 1.. {
            self.place.row = Some(position);
            self.place.id = None;
            let row = RowSeed {
                table: self.table,
                values: &mut values,
                place: &mut *self.place,
            };
            if seq.next_element_seed(row)?.is_none() {
                break;
            }
            if let Err(refused) = self.rows.send(self.table, &mut values) {
                *self.place = refused.place;
                return Err(de::Error::custom(refused.reason));
            }
        }
        Ok(())
    }
}

/// One row object, converted into `values` in schema column order.
struct RowSeed<'a> {
    table: &'static Table,
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
            let value = column_value(column, json).map_err(de::Error::custom)?;
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
        Ok(())
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
