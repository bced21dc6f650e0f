//! Rows handed from one thread to another in batches: one thread reads (a file, a database) while
//! the other writes (a database, a file), so that on two cores parsing or formatting overlaps with
//! the database's own work. The channel between them is bounded, so memory stays flat whatever the
//! size of the data.

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::{fmt, thread};

use app::{Table, Value};

/// Rows per batch: enough that handing a batch over costs nothing next to its rows.
const BATCH_ROWS: usize = 1024;

/// Batches that may wait between the two threads, besides the one each of them holds.
const BATCHES_WAITING: usize = 4;

/// Consecutive rows of one table. Once taken, it goes back to the reading side to be filled again,
/// its values overwritten in place: a text goes into the string already there, so that in the
/// steady state nothing is allocated (or freed by the other thread, which costs more).
pub struct Batch {
    table: &'static Table,
    /// The values of a row: one per column the rows have.
    width: usize,
    /// Row after row, each a value per column in schema order: the first `filled` values.
    values: Vec<Value>,
    filled: usize,
    back: Option<Sender<Vec<Value>>>,
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(back) = self.back.take() {
            // A reading side that has finished needs it no more.
            let _ = back.send(std::mem::take(&mut self.values));
        }
    }
}

impl Batch {
    /// The rows, each a value per column in schema order.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, Value> {
        self.values().chunks_exact(self.width)
    }

    /// The values of the rows, row after row.
    pub fn values(&self) -> &[Value] {
        &self.values[..self.filled]
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.filled / self.width
    }
}

enum Message {
    Rows(Batch),
    /// Every row was sent.
    End,
}

/// The reading side: gathers rows into batches and hands them over.
pub struct RowSender {
    channel: SyncSender<Message>,
    batch: Option<Batch>,
    /// Batches the writing side is done with, and where it sends them.
    returned: Receiver<Vec<Value>>,
    give_back: Sender<Vec<Value>>,
}

/// The writing side stopped taking rows (it failed, and its error is the one reported).
#[derive(Debug)]
pub struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the writing side stopped")
    }
}

impl std::error::Error for Stopped {}

impl RowSender {
    /// Hands over a copy of `row`, a row of `table` (a value for each column the rows have, all
    /// rows of a table alike). Rows must come table by table, in the order the writing side takes
    /// them.
    pub fn send(&mut self, table: &'static Table, row: &[Value]) -> Result<(), Stopped> {
        if self
            .batch
            .as_ref()
            .is_some_and(|batch| batch.table.name != table.name)
        {
            self.flush()?;
        }
        let batch = match &mut self.batch {
            Some(batch) => batch,
            None => self.batch.insert(Batch {
                table,
                width: row.len(),
                values: self.returned.try_recv().unwrap_or_default(),
                filled: 0,
                back: Some(self.give_back.clone()),
            }),
        };
        for value in row {
            match batch.values.get_mut(batch.filled) {
                Some(slot) => slot.set(value),
                None => batch.values.push(value.clone()),
            }
            batch.filled += 1;
        }
        if batch.filled >= BATCH_ROWS * batch.width {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Stopped> {
        match self.batch.take() {
            Some(batch) => self.channel.send(Message::Rows(batch)).map_err(|_| Stopped),
            None => Ok(()),
        }
    }
}

/// The writing side: the batches, in the order they were sent.
pub struct RowReceiver {
    channel: Receiver<Message>,
    /// A batch received but not yet taken: the first of the next table.
    pending: Option<Batch>,
    ended: bool,
}

/// The reading side failed; [`pipeline`] reports its error instead.
#[derive(Debug)]
struct ReaderFailed;

impl fmt::Display for ReaderFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the reading side failed")
    }
}

impl std::error::Error for ReaderFailed {}

impl RowReceiver {
    /// The next batch of rows of `table`, or `None` when the rows of `table` are over (the next
    /// batch, if any, is of a later table).
    pub fn next_of(&mut self, table: &Table) -> anyhow::Result<Option<Batch>> {
        let batch = match self.pending.take() {
            Some(batch) => batch,
            None if self.ended => return Ok(None),
            None => match self.channel.recv() {
                Ok(Message::Rows(batch)) => batch,
                Ok(Message::End) => {
                    self.ended = true;
                    return Ok(None);
                }
                Err(_) => return Err(ReaderFailed.into()),
            },
        };
        if batch.table.name == table.name {
            return Ok(Some(batch));
        }
        self.pending = Some(batch);
        Ok(None)
    }

    /// Fails unless every row sent was taken.
    pub fn end(&mut self) -> anyhow::Result<()> {
        match self.pending.take() {
            None if self.ended => Ok(()),
            None => match self.channel.recv() {
                Ok(Message::End) => Ok(()),
                Ok(Message::Rows(batch)) => {
                    anyhow::bail!("rows of table {} came out of order", batch.table.name)
                }
                Err(_) => Err(ReaderFailed.into()),
            },
            Some(batch) => anyhow::bail!("rows of table {} came out of order", batch.table.name),
        }
    }
}

/// Runs `read` on a thread of its own, handing rows over to `write` on this one, and returns what
/// both gave. The first error is the one returned: `write`'s if it failed on a row before the one
/// `read` failed on, since it takes the rows in order, else `read`'s. Either side failing stops the
/// other.
pub fn pipeline<R: Send, W>(
    read: impl FnOnce(&mut RowSender) -> anyhow::Result<R> + Send,
    write: impl FnOnce(&mut RowReceiver) -> anyhow::Result<W>,
) -> anyhow::Result<(R, W)> {
    let (handed_over, received) = sync_channel(BATCHES_WAITING);
    let (give_back, returned) = channel();
    thread::scope(|scope| {
        let reader =
            thread::Builder::new()
                .name("reader".into())
                .spawn_scoped(scope, move || {
                    let mut rows = RowSender {
                        channel: handed_over,
                        batch: None,
                        returned,
                        give_back,
                    };
                    let value = read(&mut rows)?;
                    rows.flush()?;
                    rows.channel.send(Message::End).map_err(|_| Stopped)?;
                    Ok::<_, anyhow::Error>(value)
                })?;
        let mut rows = RowReceiver {
            channel: received,
            pending: None,
            ended: false,
        };
        let written = write(&mut rows);
        // A reader waiting to hand over a batch stops now.
        drop(rows);
        let read = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match (read, written) {
            (Ok(read), Ok(written)) => Ok((read, written)),
            (Err(error), Err(failed)) if failed.is::<ReaderFailed>() => Err(error),
            (_, Err(error)) | (Err(error), Ok(_)) => Err(error),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::schema::{CLASSES, USERS};

    fn row(table: &Table, id: i64) -> Vec<Value> {
        let mut row = vec![Value::Null; table.columns.len()];
        row[0] = Value::Integer(id);
        row
    }

    /// The ids the writing side received, per table.
    fn ids(rows: &mut RowReceiver, table: &Table) -> anyhow::Result<Vec<i64>> {
        let mut ids = Vec::new();
        while let Some(batch) = rows.next_of(table)? {
            ids.extend(batch.rows().map(|row| match row[0] {
                Value::Integer(id) => id,
                _ => -1,
            }));
        }
        Ok(ids)
    }

    #[test]
    fn rows_arrive_in_order_table_by_table() {
        let users = BATCH_ROWS as i64 * 3 + 7;
        let (_, (first, second)) = pipeline(
            |rows| {
                for id in 1..=users {
                    rows.send(USERS, &row(USERS, id))?;
                }
                rows.send(CLASSES, &row(CLASSES, 1))?;
                Ok(())
            },
            |rows| {
                let first = ids(rows, USERS)?;
                let second = ids(rows, CLASSES)?;
                rows.end()?;
                Ok((first, second))
            },
        )
        .unwrap();
        assert_eq!(first, (1..=users).collect::<Vec<_>>());
        assert_eq!(second, vec![1]);
    }

    #[test]
    fn the_first_failure_is_the_one_reported() {
        let reader_fails = pipeline(
            |rows| -> anyhow::Result<()> {
                rows.send(USERS, &row(USERS, 1))?;
                anyhow::bail!("bad row 2")
            },
            |rows| ids(rows, USERS),
        );
        assert_eq!(reader_fails.unwrap_err().to_string(), "bad row 2");

        let writer_fails = pipeline(
            |rows| {
                // Far more rows than the channel holds: the reader must stop, not block.
                for id in 1.. {
                    rows.send(USERS, &row(USERS, id))?;
                }
                Ok(())
            },
            |rows| -> anyhow::Result<()> {
                rows.next_of(USERS)?;
                anyhow::bail!("cannot write row 1")
            },
        );
        assert_eq!(writer_fails.unwrap_err().to_string(), "cannot write row 1");
    }
}
