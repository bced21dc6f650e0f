//! A blocking PostgreSQL connection over tokio-postgres, on a runtime of its own with one thread, as
//! the `postgres` crate makes one; but a `COPY ... TO STDOUT` streams through a single call here,
//! where that crate's reader enters its runtime once per row, which costs more CPU than the rows.

use std::future::Future;

use bytes::Bytes;
use futures_util::StreamExt as _;
use postgres_native_tls::MakeTlsConnector;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_postgres::config::Host;
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

/// The same connection settings as `config` (the `postgres` crate's), for tokio-postgres.
pub(crate) fn driver_config(config: &postgres::Config) -> Config {
    let mut driver = Config::new();
    if let Some(user) = config.get_user() {
        driver.user(user);
    }
    if let Some(password) = config.get_password() {
        driver.password(password);
    }
    if let Some(dbname) = config.get_dbname() {
        driver.dbname(dbname);
    }
    if let Some(options) = config.get_options() {
        driver.options(options);
    }
    if let Some(name) = config.get_application_name() {
        driver.application_name(name);
    }
    driver
        .ssl_mode(config.get_ssl_mode())
        .ssl_negotiation(config.get_ssl_negotiation());
    for host in config.get_hosts() {
        match host {
            Host::Tcp(name) => driver.host(name),
            #[cfg(unix)]
            Host::Unix(dir) => driver.host_path(dir),
        };
    }
    for address in config.get_hostaddrs() {
        driver.hostaddr(*address);
    }
    for port in config.get_ports() {
        driver.port(*port);
    }
    if let Some(timeout) = config.get_connect_timeout() {
        driver.connect_timeout(*timeout);
    }
    if let Some(timeout) = config.get_tcp_user_timeout() {
        driver.tcp_user_timeout(*timeout);
    }
    driver
        .keepalives(config.get_keepalives())
        .keepalives_idle(config.get_keepalives_idle());
    if let Some(interval) = config.get_keepalives_interval() {
        driver.keepalives_interval(interval);
    }
    if let Some(retries) = config.get_keepalives_retries() {
        driver.keepalives_retries(retries);
    }
    driver
        .target_session_attrs(config.get_target_session_attrs())
        .channel_binding(config.get_channel_binding())
        .load_balance_hosts(config.get_load_balance_hosts());
    driver
}

/// Why a connection could not be made.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// The runtime could not start (the system refused it threads or file descriptors).
    Runtime(std::io::Error),
    /// The server could not be reached, or refused the login.
    Postgres(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_settings_carry_over_to_the_driver_whole() {
        for url in [
            "postgres://u:p%40ss@db.example:6432/toefl?sslmode=require&application_name=x",
            "postgresql://u@h1,h2:5433/d?connect_timeout=3&keepalives=0&keepalives_idle=7&\
             target_session_attrs=read-write&load_balance_hosts=random&channel_binding=disable&\
             options=-c%20a%3D1&hostaddr=127.0.0.1,127.0.0.2&tcp_user_timeout=5",
            "postgresql://postgres@localhost/x?host=/run/postgresql&port=5432",
        ] {
            let direct: Config = url.parse().unwrap();
            let converted = driver_config(&url.parse::<postgres::Config>().unwrap());
            assert_eq!(format!("{converted:?}"), format!("{direct:?}"), "{url}");
            assert_eq!(converted.get_password(), direct.get_password(), "{url}");
        }
    }
}
