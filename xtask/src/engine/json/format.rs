//! The universal JSON export format, version 1 (documented in `docs/export-format.md`): its header,
//! and each column value's JSON form, written by `export` and read back by `import`. A file holds
//! the columns of the schema version its header names; files of every earlier schema version are
//! read too, and brought forward as they are loaded.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::path::Path;

use app::schema::{Column, ColumnType};
use app::value::{parse_date, parse_timestamp, write_date, write_timestamp};
use app::{Backend, RowCounts, Value, SCHEMA_VERSION, TABLES};

/// The value of the header's `format` field.
pub const FORMAT: &str = "toefl-dashboard-export";

/// The format version this tool writes and reads.
pub const FORMAT_VERSION: i64 = 1;

/// The fields that precede `tables` in a file.
#[derive(Debug, Default)]
pub struct Header {
    /// Always [`FORMAT`] in an export.
    pub format: Option<String>,
    /// Always [`FORMAT_VERSION`] in a file this tool can read.
    pub format_version: Option<i64>,
    /// The schema version of the database the file was exported from: its rows have that version's
    /// columns.
    pub schema_version: Option<i64>,
    /// The rows of each table, by table name.
    pub row_counts: Option<BTreeMap<String, u64>>,
    /// When the export was taken, as the file says.
    pub exported_at: Option<String>,
    /// Where it came from: `{"backend": "sqlite" | "postgres"}`.
    pub source: Option<serde_json::Value>,
}

impl Header {
    /// The backend the export came from, as its `source` says.
    pub fn source_backend(&self) -> Option<&str> {
        self.source.as_ref()?.get("backend")?.as_str()
    }

    /// The field names of a header, in the order an export writes them.
    pub const FIELDS: [&'static str; 6] = [
        "format",
        "format_version",
        "schema_version",
        "exported_at",
        "source",
        "row_counts",
    ];

    /// Fails unless the file at `path` is an export this tool can import into the current schema: of
    /// the current schema version or an earlier one. Returns that version.
    pub fn check(&self, path: &Path) -> anyhow::Result<i64> {
        let file = path.display();
        match self.format.as_deref() {
            Some(FORMAT) => {}
            found => anyhow::bail!(
                "{file} is not a TOEFL Dashboard export ({}): to restore a native backup use `cargo xtask restore`",
                found.map_or("it has no \"format\" field".to_string(), |f| format!(
                    "its format is {f:?}, not {FORMAT:?}"
                ))
            ),
        }
        match self.format_version {
            Some(FORMAT_VERSION) => {}
            Some(found) => anyhow::bail!(
                "{file} has export format version {found} but this tool reads version {FORMAT_VERSION}: \
                 import it with the version of this tool that wrote it"
            ),
            None => anyhow::bail!("{file} has no \"format_version\" field before \"tables\""),
        }
        let schema_version = match self.schema_version {
            Some(found @ 1..=SCHEMA_VERSION) => found,
            Some(found) if found > SCHEMA_VERSION => anyhow::bail!(
                "{file} has schema version {found}, newer than this tool's {SCHEMA_VERSION}: it \
                 was exported by a newer version of this tool; update your checkout"
            ),
            Some(found) => anyhow::bail!(
                "{file} has schema version {found}, which never existed: schema versions run from \
                 1 to {SCHEMA_VERSION}"
            ),
            None => anyhow::bail!("{file} has no \"schema_version\" field before \"tables\""),
        };
        let counts = self.row_counts.as_ref().ok_or_else(|| {
            anyhow::anyhow!("{file} has no \"row_counts\" field before \"tables\"")
        })?;
        if let Some(unknown) = counts
            .keys()
            .find(|name| app::schema::table(name).is_none())
        {
            anyhow::bail!("{file}: row_counts names table {unknown:?}, which is not in the schema");
        }
        if let Some(missing) = TABLES.iter().find(|t| !counts.contains_key(t.name)) {
            anyhow::bail!("{file}: row_counts has no entry for table {}", missing.name);
        }
        Ok(schema_version)
    }

    /// The rows the header announces for each table.
    pub fn counts(&self) -> RowCounts {
        RowCounts::from_fn(|table| self.row_count(table.name))
    }

    /// The number of rows the header announces for `table` (checked to be there by [`Header::check`]).
    pub fn row_count(&self, table: &str) -> u64 {
        self.row_counts
            .as_ref()
            .and_then(|counts| counts.get(table).copied())
            .unwrap_or(0)
    }
}

/// Writes the header and the opening of `tables` for rows of schema version `schema_version`;
/// `exported_at` is now, in UTC.
pub fn write_header(
    out: &mut impl Write,
    backend: Backend,
    schema_version: i64,
    counts: &RowCounts,
) -> io::Result<()> {
    let mut exported_at = String::new();
    write_timestamp(&mut exported_at, &chrono::Utc::now(), 'T');
    let counts: Vec<String> = counts
        .iter()
        .map(|(table, rows)| format!("\"{}\": {rows}", table.name))
        .collect();
    write!(
        out,
        "{{\"format\": \"{FORMAT}\", \"format_version\": {FORMAT_VERSION}, \"schema_version\": {schema_version},\n \
         \"exported_at\": \"{exported_at}Z\", \"source\": {{\"backend\": \"{backend}\"}},\n \
         \"row_counts\": {{{}}},\n \"tables\": {{",
        counts.join(", ")
    )
}

/// Encodes rows as JSON objects, reusing its buffers from row to row.
pub struct RowEncoder {
    /// `{"id":`, then `,"name":` for each further column: the text before each value.
    keys: Vec<Vec<u8>>,
    text: String,
}

impl RowEncoder {
    /// An encoder for the rows of `table` at schema version `schema_version`.
    pub fn new(table: &'static app::Table, schema_version: i64) -> RowEncoder {
        let keys = table
            .columns_at(schema_version)
            .enumerate()
            .map(|(i, column)| {
                let lead = if i == 0 { "{" } else { "," };
                format!("{lead}\"{}\":", column.name).into_bytes()
            })
            .collect();
        RowEncoder {
            keys,
            text: String::new(),
        }
    }

    /// Appends `row` (values in schema column order) to `out` as one JSON object.
    pub fn encode_row(&mut self, out: &mut Vec<u8>, row: &[Value]) -> io::Result<()> {
        for (key, value) in self.keys.iter().zip(row) {
            out.extend_from_slice(key);
            write_value(out, value, &mut self.text)?;
        }
        out.push(b'}');
        Ok(())
    }
}

/// Appends `value` in its JSON form; `text` is scratch space for dates and timestamps.
fn write_value(out: &mut Vec<u8>, value: &Value, text: &mut String) -> io::Result<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Integer(i) => serde_json::to_writer(out, i)?,
        // JSON has no NaN or infinity; writing them as null would change the data.
        Value::Real(r) if !r.is_finite() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the real {r} cannot be written in JSON"),
            ))
        }
        // The shortest text that reads back as the same f64: 0.1, 33.333333333333336, 1e-300.
        Value::Real(r) => serde_json::to_writer(out, r)?,
        Value::Text(t) => serde_json::to_writer(out, t)?,
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Date(d) => {
            text.clear();
            text.push('"');
            write_date(text, *d);
            text.push('"');
            out.extend_from_slice(text.as_bytes());
        }
        Value::Timestamp(t) => {
            text.clear();
            text.push('"');
            write_timestamp(text, t, 'T');
            text.push_str("Z\"");
            out.extend_from_slice(text.as_bytes());
        }
    }
    Ok(())
}

/// A JSON value as it was read, before it is checked against its column; a string is borrowed from
/// the text when it has no escapes.
#[derive(Debug)]
pub enum JsonValue<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits in an i64.
    Integer(i64),
    /// An integer above `i64::MAX`.
    BigInteger(u64),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// A string.
    String(Cow<'a, str>),
}

impl fmt::Display for JsonValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonValue::Null => f.write_str("null"),
            JsonValue::Bool(b) => write!(f, "{b}"),
            JsonValue::Integer(i) => write!(f, "the integer {i}"),
            JsonValue::BigInteger(u) => write!(f, "the integer {u}"),
            JsonValue::Float(r) => write!(f, "the number {r:?}"),
            JsonValue::String(s) if s.chars().count() > 40 => {
                let start: String = s.chars().take(40).collect();
                write!(f, "the string {start:?}...")
            }
            JsonValue::String(s) => write!(f, "the string {s:?}"),
        }
    }
}

/// Sets `value` to `json` read as a value of the type of `column` (a text into the string `value`
/// holds, if it holds one), or says why `json` is not one (without naming the column: the caller
/// knows where it is). Whether the value then fits the column (NOT NULL, its CHECK) is for the load
/// to check, as for rows from any source.
pub fn set_column_value(
    value: &mut Value,
    column: &Column,
    json: JsonValue<'_>,
) -> Result<(), String> {
    *value = match (column.ty, json) {
        (_, JsonValue::Null) => Value::Null,
        (ColumnType::Integer, JsonValue::Integer(i)) => Value::Integer(i),
        (ColumnType::Real, JsonValue::Float(r)) => Value::Real(r),
        // An integral real may be written without a fraction; below 2^53 it is exact.
        (ColumnType::Real, JsonValue::Integer(i)) if i.unsigned_abs() <= 1 << 53 => {
            Value::Real(i as f64)
        }
        (ColumnType::Boolean, JsonValue::Bool(b)) => Value::Boolean(b),
        (ColumnType::Text, JsonValue::String(s)) => {
            value.set_text(&s);
            return Ok(());
        }
        (ColumnType::Date, JsonValue::String(s)) => match parse_date(&s) {
            Some(date) => Value::Date(date),
            None => {
                return Err(format!(
                    "holds {}, which is not a date YYYY-MM-DD",
                    JsonValue::String(s)
                ))
            }
        },
        (ColumnType::Timestamp, JsonValue::String(s)) => {
            match s.ends_with('Z').then(|| parse_timestamp(&s)).flatten() {
                Some(time) => Value::Timestamp(time),
                None => {
                    return Err(format!(
                        "holds {}, which is not a timestamp YYYY-MM-DDTHH:MM:SS.ffffffZ",
                        JsonValue::String(s)
                    ))
                }
            }
        }
        (ty, json) => return Err(format!("holds {json}, which is not {}", describe(ty))),
    };
    Ok(())
}

fn describe(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Integer => "an integer (i64)",
        ColumnType::Real => "a number",
        ColumnType::Text => "a string",
        ColumnType::Boolean => "true or false",
        ColumnType::Date => "a date string",
        ColumnType::Timestamp => "a timestamp string",
    }
}

impl<'de> serde::Deserialize<'de> for JsonValue<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<JsonValue<'de>, D::Error> {
        deserializer.deserialize_any(JsonValueVisitor)
    }
}

struct JsonValueVisitor;

impl<'de> serde::de::Visitor<'de> for JsonValueVisitor {
    type Value = JsonValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a column value: null, true, false, a number or a string")
    }

    fn visit_unit<E>(self) -> Result<JsonValue<'de>, E> {
        Ok(JsonValue::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<JsonValue<'de>, E> {
        Ok(JsonValue::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<JsonValue<'de>, E> {
        Ok(JsonValue::Integer(i))
    }

    fn visit_u64<E>(self, u: u64) -> Result<JsonValue<'de>, E> {
        Ok(i64::try_from(u).map_or(JsonValue::BigInteger(u), JsonValue::Integer))
    }

    fn visit_f64<E>(self, r: f64) -> Result<JsonValue<'de>, E> {
        Ok(JsonValue::Float(r))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<JsonValue<'de>, E> {
        Ok(JsonValue::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<JsonValue<'de>, E> {
        Ok(JsonValue::String(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<JsonValue<'de>, E> {
        Ok(JsonValue::String(Cow::Owned(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column_value(column: &Column, json: JsonValue<'_>) -> Result<Value, String> {
        let mut value = Value::Text("before".into());
        set_column_value(&mut value, column, json).map(|()| value)
    }

    fn header(schema_version: i64) -> Header {
        Header {
            format: Some(FORMAT.into()),
            format_version: Some(FORMAT_VERSION),
            schema_version: Some(schema_version),
            row_counts: Some(TABLES.iter().map(|t| (t.name.to_string(), 0)).collect()),
            ..Header::default()
        }
    }

    #[test]
    fn every_schema_version_up_to_this_one_is_read_and_no_other() {
        let path = Path::new("x.json");
        for version in 1..=SCHEMA_VERSION {
            assert_eq!(header(version).check(path).unwrap(), version);
        }
        let newer = header(SCHEMA_VERSION + 1).check(path).unwrap_err();
        let both = format!(
            "schema version {}, newer than this tool's {SCHEMA_VERSION}",
            SCHEMA_VERSION + 1
        );
        assert!(newer.to_string().contains(&both), "{newer}");
        assert!(header(0).check(path).is_err());
    }

    fn encode(value: Value) -> String {
        let mut out = Vec::new();
        write_value(&mut out, &value, &mut String::new()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn reals_are_written_shortest_and_read_back_exactly() {
        let percentile = app::schema::GRADES.column("percentile").unwrap();
        for r in [0.1, 33.333333333333336, 1e-300, 50.0, 99.99999999999999] {
            let text = encode(Value::Real(r));
            let read: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(read.to_bits(), r.to_bits(), "{text}");
            let json = JsonValue::Float(read);
            assert_eq!(column_value(percentile, json), Ok(Value::Real(r)));
        }
        assert_eq!(encode(Value::Real(0.1)), "0.1");
        assert_eq!(encode(Value::Real(50.0)), "50.0");
        assert_eq!(encode(Value::Real(1e-300)), "1e-300");
        assert!(write_value(&mut Vec::new(), &Value::Real(f64::NAN), &mut String::new()).is_err());
    }

    #[test]
    fn values_of_another_type_are_rejected() {
        let taken_on = app::schema::GRADES.column("taken_on").unwrap();
        let text = |s: &'static str| JsonValue::String(s.into());
        assert!(column_value(taken_on, text("2023-02-29")).is_err());
        assert!(column_value(taken_on, JsonValue::Integer(3)).is_err());
        assert_eq!(column_value(taken_on, JsonValue::Null), Ok(Value::Null));
    }
}
