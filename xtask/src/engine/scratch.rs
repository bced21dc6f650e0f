//! Scratch databases: a temporary SQLite file in a private temporary directory, or a temporary
//! PostgreSQL database created on the target's server; both gone when the scratch is dropped.

use anyhow::Context as _;
use app::{Backend, Create, Database, DatabaseUrl};

use super::crypto::PrivateDir;

/// A database that exists only while a verification runs.
pub struct Scratch {
    /// Where it is.
    pub url: DatabaseUrl,
    place: Place,
}

/// What holds the scratch database, and removes it.
enum Place {
    /// The directory of the SQLite file, with its `-wal` and `-journal` files: readable by its owner
    /// only (the data may come from an encrypted backup), and removed whole when dropped or on
    /// Ctrl-C.
    Directory { _dir: PrivateDir },
    /// The connection to the server that created the database, and which drops it.
    Server(Box<Database>, String),
}

impl Scratch {
    /// A SQLite file that does not exist yet, in a new private temporary directory.
    pub fn sqlite() -> anyhow::Result<Scratch> {
        let dir = PrivateDir::new()?;
        Ok(Scratch {
            url: DatabaseUrl::sqlite(dir.path().join("scratch.db")),
            place: Place::Directory { _dir: dir },
        })
    }

    /// A new database on the PostgreSQL server `url` names.
    pub fn postgres(url: &DatabaseUrl) -> anyhow::Result<Scratch> {
        if url.backend() != Backend::Postgres {
            anyhow::bail!(
                "verifying a PostgreSQL dump restores it into a scratch database on a PostgreSQL \
                 server: pass --database-url postgres://... (its user must be allowed to create \
                 databases)"
            );
        }
        let mut server = Database::open(url, Create::No)?;
        let name = format!(
            "toefl_verify_{}_{}",
            std::process::id(),
            chrono::Utc::now().format("%Y%m%d%H%M%S%6f")
        );
        // The URL first: once the database exists, only a Scratch drops it again.
        let scratch_url = url
            .with_postgres_database(&name)
            .context("a PostgreSQL URL")?;
        server
            .execute_batch(&format!("CREATE DATABASE {name}"))
            .with_context(|| {
                format!(
                    "cannot create a scratch database on {url}: verify needs a user with CREATEDB"
                )
            })?;
        Ok(Scratch {
            url: scratch_url,
            place: Place::Server(Box::new(server), name),
        })
    }

    /// Opens the scratch database.
    pub fn open(&self) -> anyhow::Result<Database> {
        Ok(Database::open(&self.url, Create::IfMissing)?)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a scratch database left behind holds a copy, never the only one. A PrivateDir
        // removes itself.
        if let Place::Server(server, name) = &mut self.place {
            let _ = server.execute_batch(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}
