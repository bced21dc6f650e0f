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
        let fields = i16::from_be_bytes(self.read_array()?);
        if fields == TRAILER {
            return Ok(false);
        }
        if fields as usize != values.len() {
            return Err(Error::Encode(format!(
                "the server sent {fields} columns of {}, not {}",
                self.table.name,
                values.len()
            )));
        }
        for (i, column) in self.table.columns.iter().enumerate() {
            let length = i32::from_be_bytes(self.read_array()?);
            if length < 0 {
                values[i] = Value::Null;
                continue;
            }
            self.field.resize(length as usize, 0);
            self.source.read_exact(&mut self.field).map_err(from_io)?;
            values[i] = decode(&self.types[i], column.ty, &self.field).map_err(|error| {
                Error::Encode(format!("{}.{}: {error}", self.table.name, column.name))
            })?;
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

type DecodeError = Box<dyn std::error::Error + Sync + Send>;

fn decode(ty: &Type, column: ColumnType, raw: &[u8]) -> Result<Value, DecodeError> {
    Ok(match column {
        ColumnType::Integer => Value::Integer(i64::from_sql(ty, raw)?),
        ColumnType::Real => Value::Real(f64::from_sql(ty, raw)?),
        ColumnType::Text => Value::Text(std::str::from_utf8(raw)?.to_owned()),
        ColumnType::Boolean => Value::Boolean(bool::from_sql(ty, raw)?),
        ColumnType::Date => Value::Date(NaiveDate::from_sql(ty, raw)?),
        ColumnType::Timestamp => Value::Timestamp(DateTime::<Utc>::from_sql(ty, raw)?),
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
