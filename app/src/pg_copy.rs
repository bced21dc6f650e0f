//! PostgreSQL's binary `COPY` format, encoded and decoded here rather than through the driver's
//! row-at-a-time helpers: rows are encoded into one large buffer that goes to the server in big
//! chunks, and read back from the raw stream, so that a load or a dump costs one driver call per
//! chunk (or per row received), not several per row.

use std::pin::Pin;

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::SinkExt as _;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use tokio_postgres::CopyInSink;

use crate::db::{Error, Result};
use crate::pg_client::PgClient;
use crate::schema::{Column, ColumnType, Table};
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
    client: &'a mut PgClient,
    sink: Pin<Box<CopyInSink<Bytes>>>,
    types: Vec<Type>,
    buffer: BytesMut,
}

impl<'a> CopyIn<'a> {
    /// Starts the stream of rows of `table` into `sink`, a COPY that `client` runs.
    pub(crate) fn new(
        client: &'a mut PgClient,
        sink: CopyInSink<Bytes>,
        table: &Table,
    ) -> CopyIn<'a> {
        let mut buffer = BytesMut::with_capacity(CHUNK + CHUNK / 4);
        buffer.put_slice(HEADER);
        CopyIn {
            client,
            sink: Box::pin(sink),
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
        self.client.block_on(self.sink.as_mut().finish())?;
        Ok(())
    }

    fn send(&mut self) -> Result<()> {
        let chunk = self.buffer.split().freeze();
        self.client.block_on(self.sink.send(chunk))?;
        Ok(())
    }
}

/// Rows coming out of `COPY ... TO STDOUT (FORMAT binary)`, decoded from the pieces of the stream
/// as they arrive.
pub(crate) struct CopyOut {
    table: &'static Table,
    /// The columns selected, and the types they come as.
    columns: Vec<&'static Column>,
    types: Vec<Type>,
    /// What is left of the last piece: the start of a row that the next piece ends.
    pending: Vec<u8>,
    read_header: bool,
    ended: bool,
}

impl CopyOut {
    /// A stream of the rows of `table`, each with the values of `columns`.
    pub(crate) fn new(table: &'static Table, columns: Vec<&'static Column>) -> CopyOut {
        CopyOut {
            table,
            types: columns.iter().map(|c| postgres_type(c.ty)).collect(),
            columns,
            pending: Vec::new(),
            read_header: false,
            ended: false,
        }
    }

    /// Decodes the rows that `data`, the next piece of the stream, completes, into `values` (one
    /// per column, in schema order), calling `each` with each of them.
    pub(crate) fn decode<E: From<Error>>(
        &mut self,
        data: Bytes,
        values: &mut [Value],
        mut each: impl FnMut(&[Value]) -> Result<(), E>,
    ) -> Result<(), E> {
        // The server sends each row in a message of its own: it is nearly always whole, and
        // decoded from there without a copy.
        let joined;
        let bytes: &[u8] = if self.pending.is_empty() {
            &data
        } else {
            self.pending.extend_from_slice(&data);
            joined = std::mem::take(&mut self.pending);
            &joined
        };
        let mut at = 0;
        if !self.read_header {
            let Some(length) = header_length(bytes)? else {
                self.pending = bytes.to_vec();
                return Ok(());
            };
            at = length;
            self.read_header = true;
        }
        while at < bytes.len() {
            if self.ended {
                return Err(Error::Encode("the COPY stream goes on after its end".into()).into());
            }
            let row = decode_whole(self.table, &self.columns, &self.types, &bytes[at..], values)?;
            match row {
                Some((length, true)) => {
                    at += length;
                    each(values)?;
                }
                Some((length, false)) => {
                    at += length;
                    self.ended = true;
                }
                None => break,
            }
        }
        self.pending = bytes[at..].to_vec();
        Ok(())
    }

    /// Fails unless the stream ended where it should.
    pub(crate) fn end(&self) -> Result<()> {
        if self.ended && self.pending.is_empty() {
            return Ok(());
        }
        Err(Error::Encode(format!(
            "the COPY stream of {} broke off",
            self.table.name
        )))
    }
}

/// The length of the header at the start of `bytes`, if it is all there.
fn header_length(bytes: &[u8]) -> Result<Option<usize>> {
    let Some(fixed) = bytes.get(..HEADER.len()) else {
        return Ok(None);
    };
    if fixed[..11] != HEADER[..11] {
        return Err(Error::Encode(
            "the server's COPY stream has no binary signature".into(),
        ));
    }
    let extension = u32::from_be_bytes([fixed[15], fixed[16], fixed[17], fixed[18]]) as usize;
    let length = HEADER.len() + extension;
    Ok((bytes.len() >= length).then_some(length))
}

/// Decodes the row at the start of `bytes` into `values` if it is all there: gives the bytes it
/// took and whether it was a row (not the end of the stream).
fn decode_whole(
    table: &Table,
    columns: &[&Column],
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
        decode_column(table, columns[i], &types[i], field, value)?;
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

/// Decodes the value of `column` of `table`, sent as `ty`, into `value`.
fn decode_column(
    table: &Table,
    column: &Column,
    ty: &Type,
    raw: &[u8],
    value: &mut Value,
) -> Result<()> {
    decode(ty, column.ty, raw, value)
        .map_err(|error| Error::Encode(format!("{}.{}: {error}", table.name, column.name)))
}

type DecodeError = Box<dyn std::error::Error + Sync + Send>;

/// Days from 0001-01-01 (chrono's day 1) to 2000-01-01, PostgreSQL's day 0.
const POSTGRES_EPOCH_DAYS_FROM_CE: i32 = 730_120;

/// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// Decodes `raw`, a value of `column`'s type sent as `ty`, into `value` (into the string it holds, for
/// a text).
fn decode(ty: &Type, column: ColumnType, raw: &[u8], value: &mut Value) -> Result<(), DecodeError> {
    let too_large = || DecodeError::from("value too large to decode");
    *value = match column {
        ColumnType::Integer => Value::Integer(i64::from_sql(ty, raw)?),
        ColumnType::Real => Value::Real(f64::from_sql(ty, raw)?),
        ColumnType::Text => {
            value.set_text(std::str::from_utf8(raw)?);
            return Ok(());
        }
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
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_timestamps_decode_as_the_driver_decodes_them() {
        for days in [0i32, 1, -1, 59, 366, -730_119, 2_914_000, -40_000] {
            let raw = days.to_be_bytes();
            let expected = NaiveDate::from_sql(&Type::DATE, &raw).unwrap();
            let mut decoded = Value::Null;
            decode(&Type::DATE, ColumnType::Date, &raw, &mut decoded).unwrap();
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
            let mut decoded = Value::Null;
            decode(
                &Type::TIMESTAMPTZ,
                ColumnType::Timestamp,
                &raw,
                &mut decoded,
            )
            .unwrap();
            assert_eq!(decoded, Value::Timestamp(expected), "{micros} microseconds");
        }
        let infinity = i64::MAX.to_be_bytes();
        let mut value = Value::Null;
        assert!(decode(
            &Type::TIMESTAMPTZ,
            ColumnType::Timestamp,
            &infinity,
            &mut value
        )
        .is_err());
    }
}
