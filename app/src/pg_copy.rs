//! PostgreSQL's binary `COPY` format, encoded and decoded here rather than through the driver's
//! row-at-a-time helpers: rows are encoded into one large buffer that goes to the server in big
//! chunks, and read back from the raw stream, so that a load or a dump costs one driver call per
//! chunk (or per row received), not several per row.

use std::io::{self, BufRead, Read, Write};

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveDate, Utc};
use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::{CopyInWriter, CopyOutReader};

use crate::db::{Error, Result};
use crate::schema::{ColumnType, Table};
use crate::value::Value;

/// What every binary `COPY` stream starts with: the signature, no flags, no header extension.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The tuple count that ends the stream.
const TRAILER: i16 = -1;

/// How much encoded data is gathered before it goes to the server.
const CHUNK: usize = 256 * 1024;

/// The PostgreSQL type of a column type: what the binary format encodes.
pub(crate) fn postgres_type(ty: ColumnType) -> Type {
    match ty {
        ColumnType::Integer => Type::INT8,
        ColumnType::Real => Type::FLOAT8,
        ColumnType::Text => Type::TEXT,
        ColumnType::Boolean => Type::BOOL,
        ColumnType::Date => Type::DATE,
        ColumnType::Timestamp => Type::TIMESTAMPTZ,
    }
}

/// Rows going into `COPY ... FROM STDIN (FORMAT binary)`.
pub(crate) struct CopyIn<'a> {
    sink: CopyInWriter<'a>,
    types: Vec<Type>,
    buffer: BytesMut,
}

impl<'a> CopyIn<'a> {
    /// Starts the stream of rows of `table` into `sink`.
    pub(crate) fn new(sink: CopyInWriter<'a>, table: &Table) -> CopyIn<'a> {
        let mut buffer = BytesMut::with_capacity(CHUNK + CHUNK / 4);
        buffer.put_slice(HEADER);
        CopyIn {
            sink,
            types: table.columns.iter().map(|c| postgres_type(c.ty)).collect(),
            buffer,
        }
    }

    /// Encodes one row (a value for each column, in schema order); sends a chunk when one is full.
    pub(crate) fn write(&mut self, row: &[Value]) -> Result<()> {
        let buffer = &mut self.buffer;
        buffer.put_i16(row.len() as i16);
        for (value, ty) in row.iter().zip(&self.types) {
            let start = buffer.len();
            buffer.put_i32(0);
            let length = match value.to_sql(ty, buffer) {
                Ok(IsNull::Yes) => -1,
                Ok(IsNull::No) => (buffer.len() - start - 4) as i32,
                Err(error) => return Err(Error::Encode(format!("{value:?}: {error}"))),
            };
            buffer[start..start + 4].copy_from_slice(&length.to_be_bytes());
        }
        if buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(())
    }

    /// Ends the stream; the server has then checked every row it received.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.buffer.put_i16(TRAILER);
        self.send()?;
        self.sink.finish()?;
        Ok(())
    }

    fn send(&mut self) -> Result<()> {
        self.sink.write_all(&self.buffer).map_err(from_io)?;
        self.buffer.clear();
        Ok(())
    }
}

/// Rows coming out of `COPY ... TO STDOUT (FORMAT binary)`.
pub(crate) struct CopyOut<'a> {
    source: CopyOutReader<'a>,
    table: &'static Table,
    types: Vec<Type>,
    field: Vec<u8>,
}

impl<'a> CopyOut<'a> {
    /// Reads the stream's header; the rows of `table` follow.
    pub(crate) fn new(mut source: CopyOutReader<'a>, table: &'static Table) -> Result<CopyOut<'a>> {
        let mut header = [0u8; HEADER.len()];
        source.read_exact(&mut header).map_err(from_io)?;
        if header[..11] != HEADER[..11] {
            return Err(Error::Encode(
                "the server's COPY stream has no binary signature".into(),
            ));
        }
        let extension = u32::from_be_bytes([header[15], header[16], header[17], header[18]]);
        io::copy(
            &mut (&mut source).take(u64::from(extension)),
            &mut io::sink(),
        )
        .map_err(from_io)?;
        Ok(CopyOut {
            source,
            table,
            types: table.columns.iter().map(|c| postgres_type(c.ty)).collect(),
            field: Vec::new(),
        })
    }

    /// Reads the next row into `values` (one per column, in schema order); `false` at the end.
    pub(crate) fn read(&mut self, values: &mut [Value]) -> Result<bool> {
        // The server sends each row in a message of its own: it is nearly always whole in the
        // buffer, and decoded from there without a copy.
        let buffered = self.source.fill_buf().map_err(from_io)?;
        if let Some((length, more)) = decode_whole(self.table, &self.types, buffered, values)? {
            self.source.consume(length);
            return Ok(more);
        }
        let fields = i16::from_be_bytes(self.read_array()?);
        if fields == TRAILER {
            return Ok(false);
        }
        check_field_count(self.table, fields, values.len())?;
        for (i, value) in values.iter_mut().enumerate() {
            let length = i32::from_be_bytes(self.read_array()?);
            if length < 0 {
                *value = Value::Null;
                continue;
            }
            self.field.resize(length as usize, 0);
            self.source.read_exact(&mut self.field).map_err(from_io)?;
            *value = decode_column(self.table, &self.types, i, &self.field)?;
        }
        Ok(true)
    }

    fn read_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut bytes = [0u8; N];
        // Most reads are served from the message at hand.
        let available = self.source.fill_buf().map_err(from_io)?;
        if available.len() >= N {
            bytes.copy_from_slice(&available[..N]);
            self.source.consume(N);
        } else {
            self.source.read_exact(&mut bytes).map_err(from_io)?;
        }
        Ok(bytes)
    }
}

/// Decodes the row at the start of `bytes` into `values` if it is all there: gives the bytes it
/// took and whether it was a row (not the end of the stream).
fn decode_whole(
    table: &Table,
    types: &[Type],
    bytes: &[u8],
    values: &mut [Value],
) -> Result<Option<(usize, bool)>> {
    let Some(fields) = bytes.get(..2) else {
        return Ok(None);
    };
    let fields = i16::from_be_bytes([fields[0], fields[1]]);
    if fields == TRAILER {
        return Ok(Some((2, false)));
    }
    check_field_count(table, fields, values.len())?;
    let mut at = 2;
    for (i, value) in values.iter_mut().enumerate() {
        let Some(length) = bytes.get(at..at + 4) else {
            return Ok(None);
        };
        let length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
        at += 4;
        if length < 0 {
            *value = Value::Null;
            continue;
        }
        let Some(field) = bytes.get(at..at + length as usize) else {
            return Ok(None);
        };
        *value = decode_column(table, types, i, field)?;
        at += length as usize;
    }
    Ok(Some((at, true)))
}

fn check_field_count(table: &Table, fields: i16, columns: usize) -> Result<()> {
    if fields as usize == columns {
        return Ok(());
    }
    Err(Error::Encode(format!(
        "the server sent {fields} columns of {}, not {columns}",
        table.name
    )))
}

/// Decodes the value of column `i` of `table`, sent as `types[i]`.
fn decode_column(table: &Table, types: &[Type], i: usize, raw: &[u8]) -> Result<Value> {
    let column = &table.columns[i];
    decode(&types[i], column.ty, raw)
        .map_err(|error| Error::Encode(format!("{}.{}: {error}", table.name, column.name)))
}

type DecodeError = Box<dyn std::error::Error + Sync + Send>;

/// Days from 0001-01-01 (chrono's day 1) to 2000-01-01, PostgreSQL's day 0.
const POSTGRES_EPOCH_DAYS_FROM_CE: i32 = 730_120;

/// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

fn decode(ty: &Type, column: ColumnType, raw: &[u8]) -> Result<Value, DecodeError> {
    let too_large = || DecodeError::from("value too large to decode");
    Ok(match column {
        ColumnType::Integer => Value::Integer(i64::from_sql(ty, raw)?),
        ColumnType::Real => Value::Real(f64::from_sql(ty, raw)?),
        ColumnType::Text => Value::Text(std::str::from_utf8(raw)?.to_owned()),
        ColumnType::Boolean => Value::Boolean(bool::from_sql(ty, raw)?),
        // Counted straight from the epochs: chrono's own FromSql adds durations, several times
        // slower, and this runs for every date and timestamp of a dump.
        ColumnType::Date => {
            let days = i32::from_sql(&Type::INT4, raw)?;
            let date = days
                .checked_add(POSTGRES_EPOCH_DAYS_FROM_CE)
                .and_then(NaiveDate::from_num_days_from_ce_opt);
            Value::Date(date.ok_or_else(too_large)?)
        }
        ColumnType::Timestamp => {
            let micros = i64::from_sql(&Type::INT8, raw)?;
            let time = micros
                .checked_add(POSTGRES_EPOCH_UNIX_MICROS)
                .and_then(DateTime::<Utc>::from_timestamp_micros);
            Value::Timestamp(time.ok_or_else(too_large)?)
        }
    })
}

/// The driver's error inside an I/O error (its readers and writers speak `std::io`).
fn from_io(error: io::Error) -> Error {
    let kind = error.kind();
    match error
        .into_inner()
        .map(|inner| inner.downcast::<postgres::Error>())
    {
        Some(Ok(postgres)) => Error::Postgres(*postgres),
        Some(Err(other)) => Error::Encode(other.to_string()),
        None => Error::Encode(format!("the COPY stream broke off ({kind})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_timestamps_decode_as_the_driver_decodes_them() {
        for days in [0i32, 1, -1, 59, 366, -730_119, 2_914_000, -40_000] {
            let raw = days.to_be_bytes();
            let expected = NaiveDate::from_sql(&Type::DATE, &raw).unwrap();
            let decoded = decode(&Type::DATE, ColumnType::Date, &raw).unwrap();
            assert_eq!(decoded, Value::Date(expected), "{days} days");
        }
        let day = 86_400_000_000i64;
        for micros in [
            0i64,
            1,
            -1,
            day * 59 + 1,
            -day * 36_524 - 7,
            day * 9_000 + 999_999,
        ] {
            let raw = micros.to_be_bytes();
            let expected = DateTime::<Utc>::from_sql(&Type::TIMESTAMPTZ, &raw).unwrap();
            let decoded = decode(&Type::TIMESTAMPTZ, ColumnType::Timestamp, &raw).unwrap();
            assert_eq!(decoded, Value::Timestamp(expected), "{micros} microseconds");
        }
        let infinity = i64::MAX.to_be_bytes();
        assert!(decode(&Type::TIMESTAMPTZ, ColumnType::Timestamp, &infinity).is_err());
    }
}
