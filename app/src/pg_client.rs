//! A blocking PostgreSQL connection over tokio-postgres, on a runtime of its own with one thread, as
//! the `postgres` crate makes one; but a `COPY ... TO STDOUT` streams through a single call here,
//! where that crate's reader enters its runtime once per row, which costs more CPU than the rows.

use std::future::Future;

use bytes::Bytes;
use futures_util::StreamExt as _;
use postgres_native_tls::MakeTlsConnector;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, CopyInSink, Error, Row};

/// A connection to a PostgreSQL server, opaque outside this crate. The connection's own task
/// (reading and writing the socket) runs whenever a call waits on the runtime.
pub struct PgClient {
    runtime: Runtime,
    /// Always there but while the connection closes, in [`Drop`].
    client: Option<Client>,
    connection: Option<JoinHandle<()>>,
}

impl PgClient {
    /// Connects as `config` says, through TLS when the server and `config` agree on it.
    pub(crate) fn connect(
        config: &Config,
        tls: MakeTlsConnector,
    ) -> Result<PgClient, ConnectError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ConnectError::Runtime)?;
        let (client, connection) = runtime
            .block_on(config.connect(tls))
            .map_err(ConnectError::Postgres)?;
        // The server's notices (NOTICE: ... does not exist, skipping) are of no interest here.
        let connection = runtime.spawn(async move {
            let _ = connection.await;
        });
        Ok(PgClient {
            runtime,
            client: Some(client),
            connection: Some(connection),
        })
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("open until dropped")
    }

    /// Runs `future` (a request on this connection) to its end.
    pub(crate) fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// Runs statements that return no rows.
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.block_on(self.client().batch_execute(sql))
    }

    /// Runs a query that returns exactly one row.
    pub(crate) fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error> {
        self.block_on(self.client().query_one(sql, params))
    }

    /// Runs a query that returns at most one row.
    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        self.block_on(self.client().query_opt(sql, params))
    }

    /// Starts `COPY ... FROM STDIN`: what is sent to the sink (through [`PgClient::block_on`])
    /// goes to the server.
    pub(crate) fn copy_in(&mut self, sql: &str) -> Result<CopyInSink<Bytes>, Error> {
        self.block_on(self.client().copy_in(sql))
    }

    /// Runs `COPY ... TO STDOUT` and gives `each` the data as it comes, message by message.
    pub(crate) fn copy_out<E: From<crate::db::Error>>(
        &mut self,
        sql: &str,
        mut each: impl FnMut(Bytes) -> Result<(), E>,
    ) -> Result<(), E> {
        let client = self.client.as_ref().expect("open until dropped");
        self.runtime.block_on(async {
            let stream = client.copy_out(sql).await.map_err(crate::db::Error::from)?;
            futures_util::pin_mut!(stream);
            while let Some(data) = stream.next().await {
                each(data.map_err(crate::db::Error::from)?)?;
            }
            Ok(())
        })
    }
}

impl Drop for PgClient {
    fn drop(&mut self) {
        // Without its client, the connection says goodbye to the server and ends.
        drop(self.client.take());
        if let Some(connection) = self.connection.take() {
            let _ = self.runtime.block_on(connection);
        }
    }
}

/// Why a connection could not be made.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// The runtime could not start (the system refused it threads or file descriptors).
    Runtime(std::io::Error),
    /// The server could not be reached, or refused the login.
    Postgres(Error),
}
