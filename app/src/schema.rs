//! The one description of the database: tables, columns, types, keys and checks, in dependency order.
//!
//! Everything else derives from [`TABLES`]: the DDL of both backends, the xtask's queries, the export
//! format and the import's validation. Nothing outside this module spells a table or column name.

use crate::backend::Backend;
use crate::domain::{CefrLevel, GradeKind, Role};
use crate::value::Value;

/// The schema version this build of the app creates and expects; recorded in `schema_migrations`.
pub const SCHEMA_VERSION: i64 = 1;

/// The table that records which schema versions have been applied. It is bookkeeping, not data:
/// exports and row counts leave it out.
pub const MIGRATIONS_TABLE: &str = "schema_migrations";

/// The name of the integer primary key that every table has.
pub const PRIMARY_KEY: &str = "id";

/// A column's value type, the same on every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// A signed 64-bit integer.
    Integer,
    /// A 64-bit float.
    Real,
    /// Unicode text.
    Text,
    /// `true` or `false` (0 or 1 on SQLite).
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A UTC instant with microsecond precision.
    Timestamp,
}

impl ColumnType {
    /// The column type in `dialect`: SQLite's STRICT type, or PostgreSQL's as
    /// `information_schema.columns.data_type` spells it.
    pub fn sql_type(self, dialect: Backend) -> &'static str {
        use ColumnType::*;
        match (dialect, self) {
            (Backend::Sqlite, Integer | Boolean) => "INTEGER",
            (Backend::Sqlite, Real) => "REAL",
            (Backend::Sqlite, Text | Date | Timestamp) => "TEXT",
            (Backend::Postgres, Integer) => "bigint",
            (Backend::Postgres, Real) => "double precision",
            (Backend::Postgres, Text) => "text",
            (Backend::Postgres, Boolean) => "boolean",
            (Backend::Postgres, Date) => "date",
            (Backend::Postgres, Timestamp) => "timestamp with time zone",
        }
    }

    /// Whether `value` can be stored in a column of this type (NULL fits any type).
    pub fn admits(self, value: &Value) -> bool {
        matches!(
            (value, self),
            (Value::Null, _)
                | (Value::Integer(_), ColumnType::Integer)
                | (Value::Real(_), ColumnType::Real)
                | (Value::Text(_), ColumnType::Text)
                | (Value::Boolean(_), ColumnType::Boolean)
                | (Value::Date(_), ColumnType::Date)
                | (Value::Timestamp(_), ColumnType::Timestamp)
        )
    }
}

/// A constraint on the values of one column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// An integer between `min` and `max`, inclusive.
    IntegerRange {
        /// The smallest value allowed.
        min: i64,
        /// The largest value allowed.
        max: i64,
    },
    /// A real between `min` and `max`, inclusive.
    RealRange {
        /// The smallest value allowed.
        min: f64,
        /// The largest value allowed.
        max: f64,
    },
    /// One of these strings.
    OneOf(&'static [&'static str]),
}

impl Check {
    /// Whether `value` passes; NULL is left to the column's nullability.
    pub fn allows(&self, value: &Value) -> bool {
        match (self, value) {
            (_, Value::Null) => true,
            (Check::IntegerRange { min, max }, Value::Integer(v)) => (*min..=*max).contains(v),
            (Check::RealRange { min, max }, Value::Real(v)) => (*min..=*max).contains(v),
            (Check::OneOf(options), Value::Text(v)) => options.contains(&v.as_str()),
            _ => false,
        }
    }

    /// The SQL condition on column `column`, the same text on both backends.
    pub fn sql(&self, column: &str) -> String {
        match self {
            Check::IntegerRange { min, max } => format!("{column} BETWEEN {min} AND {max}"),
            Check::RealRange { min, max } => format!("{column} BETWEEN {min:?} AND {max:?}"),
            Check::OneOf(options) => {
                let quoted: Vec<String> = options.iter().map(|o| format!("'{o}'")).collect();
                format!("{column} IN ({})", quoted.join(", "))
            }
        }
    }
}

/// What a foreign key does when the row it points to is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    /// The referencing row is deleted too.
    Cascade,
    /// The reference becomes NULL.
    SetNull,
}

/// A reference from a column to the primary key of another table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForeignKey {
    /// The referenced table (always by its primary key).
    pub table: &'static str,
    /// The action when the referenced row goes.
    pub on_delete: OnDelete,
}

/// One column of a table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    /// The column name.
    pub name: &'static str,
    /// The value type.
    pub ty: ColumnType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Whether values are unique across the table.
    pub unique: bool,
    /// The table this column refers to, if any; such columns are also indexed.
    pub references: Option<ForeignKey>,
    /// A constraint on the values.
    pub check: Option<Check>,
}

/// One table: its columns in order, the first of which is the integer primary key `id`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Table {
    /// The table name.
    pub name: &'static str,
    /// The columns in schema order, `id` first.
    pub columns: &'static [Column],
}

impl Table {
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The position of column `name` in [`Table::columns`].
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The columns that refer to other tables.
    pub fn foreign_keys(&self) -> impl Iterator<Item = (&'static Column, ForeignKey)> {
        self.columns
            .iter()
            .filter_map(|c| c.references.map(|fk| (c, fk)))
    }

    /// The comma-separated column list, in schema order.
    pub fn column_list(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        names.join(", ")
    }

    /// The name of the foreign key constraint on `column`, PostgreSQL's default spelling.
    pub fn foreign_key_name(&self, column: &Column) -> String {
        format!("{}_{}_fkey", self.name, column.name)
    }
}

/// The table called `name`.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

const fn column(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        nullable: true,
        unique: false,
        references: None,
        check: None,
    }
}

const fn required(name: &'static str, ty: ColumnType) -> Column {
    Column {
        nullable: false,
        ..column(name, ty)
    }
}

const fn checked(column: Column, check: Check) -> Column {
    Column {
        check: Some(check),
        ..column
    }
}

const fn unique(column: Column) -> Column {
    Column {
        unique: true,
        ..column
    }
}

const fn reference(column: Column, table: &'static str, on_delete: OnDelete) -> Column {
    Column {
        references: Some(ForeignKey { table, on_delete }),
        ..column
    }
}

use ColumnType::{Boolean, Date, Integer, Real, Text, Timestamp};

const ID: Column = required(PRIMARY_KEY, Integer);
const SECTION: Check = Check::IntegerRange { min: 0, max: 30 };
const TOTAL: Check = Check::IntegerRange { min: 0, max: 120 };
const CEFR: Check = Check::OneOf(&CefrLevel::NAMES);

/// Every data table, parents before the tables that refer to them.
pub const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ID,
            unique(required("username", Text)),
            unique(required("email", Text)),
            required("password_hash", Text),
            checked(required("role", Text), Check::OneOf(&Role::NAMES)),
            required("is_active", Boolean),
            required("created_at", Timestamp),
            column("last_login_at", Timestamp),
        ],
    },
    Table {
        name: "teachers",
        columns: &[
            ID,
            unique(reference(
                column("user_id", Integer),
                "users",
                OnDelete::SetNull,
            )),
            required("name", Text),
            column("email", Text),
            column("phone", Text),
            required("created_at", Timestamp),
        ],
    },
    Table {
        name: "classes",
        columns: &[
            ID,
            required("name", Text),
            reference(column("teacher_id", Integer), "teachers", OnDelete::SetNull),
            checked(column("cefr_target", Text), CEFR),
            column("schedule", Text),
            column("starts_on", Date),
            column("ends_on", Date),
            required("created_at", Timestamp),
        ],
    },
    Table {
        name: "students",
        columns: &[
            ID,
            required("name", Text),
            column("email", Text),
            reference(column("class_id", Integer), "classes", OnDelete::SetNull),
            checked(column("reading", Integer), SECTION),
            checked(column("listening", Integer), SECTION),
            checked(column("speaking", Integer), SECTION),
            checked(column("writing", Integer), SECTION),
            checked(column("total_score", Integer), TOTAL),
            checked(column("cefr_level", Text), CEFR),
            column("notes", Text),
            required("created_at", Timestamp),
            column("updated_at", Timestamp),
        ],
    },
    Table {
        name: "grades",
        columns: &[
            ID,
            reference(
                required("student_id", Integer),
                "students",
                OnDelete::Cascade,
            ),
            required("taken_on", Date),
            checked(required("kind", Text), Check::OneOf(&GradeKind::NAMES)),
            checked(column("reading", Integer), SECTION),
            checked(column("listening", Integer), SECTION),
            checked(column("speaking", Integer), SECTION),
            checked(column("writing", Integer), SECTION),
            checked(column("total_score", Integer), TOTAL),
            checked(column("cefr_level", Text), CEFR),
            checked(
                column("percentile", Real),
                Check::RealRange {
                    min: 0.0,
                    max: 100.0,
                },
            ),
            column("comments", Text),
            required("created_at", Timestamp),
        ],
    },
];

/// The `users` table: accounts that log in to the dashboard.
pub const USERS: &Table = &TABLES[0];
/// The `teachers` table.
pub const TEACHERS: &Table = &TABLES[1];
/// The `classes` table.
pub const CLASSES: &Table = &TABLES[2];
/// The `students` table, with each student's current scores.
pub const STUDENTS: &Table = &TABLES[3];
/// The `grades` table: every test result, over time.
pub const GRADES: &Table = &TABLES[4];

/// The statements that create every table, key and index of [`TABLES`] in `dialect`.
///
/// SQLite declares keys inside `CREATE TABLE` (it cannot add them later); PostgreSQL gets bare tables
/// and then [`Key::create_sql`] for each of [`keys`], the same statements a bulk load uses to rebuild
/// what it dropped.
pub fn create_statements(dialect: Backend) -> Vec<String> {
    let mut statements: Vec<String> = TABLES
        .iter()
        .map(|table| create_table(table, dialect))
        .collect();
    statements.extend(
        keys()
            .into_iter()
            .filter(|key| dialect == Backend::Postgres || matches!(key, Key::Index(..)))
            .map(|key| key.create_sql()),
    );
    statements
}

fn create_table(table: &'static Table, dialect: Backend) -> String {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|column| column_definition(table, column, dialect))
        .collect();
    let strict = match dialect {
        Backend::Sqlite => " STRICT",
        Backend::Postgres => "",
    };
    format!(
        "CREATE TABLE {} (\n    {}\n){strict}",
        table.name,
        columns.join(",\n    ")
    )
}

fn column_definition(table: &'static Table, column: &'static Column, dialect: Backend) -> String {
    let name = column.name;
    let mut sql = format!("{name} {}", column.ty.sql_type(dialect));
    if name == PRIMARY_KEY {
        sql.push_str(match dialect {
            // INTEGER PRIMARY KEY is SQLite's rowid: new rows get max(id) + 1.
            Backend::Sqlite => " PRIMARY KEY",
            Backend::Postgres => " GENERATED BY DEFAULT AS IDENTITY",
        });
        return sql;
    }
    if !column.nullable {
        sql.push_str(" NOT NULL");
    }
    let mut checks: Vec<String> = column.check.iter().map(|c| c.sql(name)).collect();
    if dialect == Backend::Sqlite {
        checks.extend(sqlite_format_check(column));
        if column.unique {
            sql.push_str(" UNIQUE");
        }
        if let Some(fk) = column.references {
            let key = Key::Foreign(table, column, fk);
            sql.push_str(&format!(
                " CONSTRAINT {} {}",
                key.name(),
                key.references_sql()
            ));
        }
    }
    for check in checks {
        sql.push_str(&format!(" CHECK ({check})"));
    }
    sql
}

/// A key or index of the schema: what makes lookups fast and references sound.
#[derive(Debug, Clone, Copy)]
pub enum Key {
    /// A table's primary key, `id`.
    Primary(&'static Table),
    /// A unique column.
    Unique(&'static Table, &'static Column),
    /// The index on a column that refers to another table (unless it is unique, hence indexed).
    Index(&'static Table, &'static Column),
    /// A reference from a column to another table's primary key.
    Foreign(&'static Table, &'static Column, ForeignKey),
}

/// Every key and index of [`TABLES`], in an order they can be created in: foreign keys last.
pub fn keys() -> Vec<Key> {
    let mut keys = Vec::new();
    for table in TABLES {
        keys.push(Key::Primary(table));
        for column in table.columns.iter().filter(|c| c.unique) {
            keys.push(Key::Unique(table, column));
        }
        for (column, _) in table.foreign_keys().filter(|(c, _)| !c.unique) {
            keys.push(Key::Index(table, column));
        }
    }
    for table in TABLES {
        keys.extend(
            table
                .foreign_keys()
                .map(|(column, fk)| Key::Foreign(table, column, fk)),
        );
    }
    keys
}

impl Key {
    /// The constraint or index name, as PostgreSQL would choose it.
    pub fn name(&self) -> String {
        match self {
            Key::Primary(table) => format!("{}_pkey", table.name),
            Key::Unique(table, column) => format!("{}_{}_key", table.name, column.name),
            Key::Index(table, column) => format!("{}_{}_idx", table.name, column.name),
            Key::Foreign(table, column, _) => table.foreign_key_name(column),
        }
    }

    /// The statement that creates this key (in PostgreSQL's dialect; indexes in SQLite's too).
    pub fn create_sql(&self) -> String {
        let name = self.name();
        match self {
            Key::Primary(table) => {
                format!(
                    "ALTER TABLE {} ADD CONSTRAINT {name} PRIMARY KEY ({PRIMARY_KEY})",
                    table.name
                )
            }
            Key::Unique(table, column) => format!(
                "ALTER TABLE {} ADD CONSTRAINT {name} UNIQUE ({})",
                table.name, column.name
            ),
            Key::Index(table, column) => {
                format!("CREATE INDEX {name} ON {} ({})", table.name, column.name)
            }
            Key::Foreign(table, column, _) => format!(
                "ALTER TABLE {} ADD CONSTRAINT {name} FOREIGN KEY ({}) {}",
                table.name,
                column.name,
                self.references_sql()
            ),
        }
    }

    /// The statement that drops this key (PostgreSQL).
    pub fn drop_sql(&self) -> String {
        match self {
            Key::Index(..) => format!("DROP INDEX {}", self.name()),
            Key::Primary(table) | Key::Unique(table, _) | Key::Foreign(table, _, _) => {
                format!("ALTER TABLE {} DROP CONSTRAINT {}", table.name, self.name())
            }
        }
    }

    /// `REFERENCES parent (id) ON DELETE ...`, for a foreign key; empty otherwise.
    fn references_sql(&self) -> String {
        let Key::Foreign(_, _, fk) = self else {
            return String::new();
        };
        let action = match fk.on_delete {
            OnDelete::Cascade => "CASCADE",
            OnDelete::SetNull => "SET NULL",
        };
        format!("REFERENCES {} ({PRIMARY_KEY}) ON DELETE {action}", fk.table)
    }
}

/// SQLite stores booleans, dates and timestamps in INTEGER and TEXT columns; these checks keep them in
/// the one canonical form that every reader can rely on, as PostgreSQL's own types do.
fn sqlite_format_check(column: &Column) -> Option<String> {
    let name = column.name;
    match column.ty {
        ColumnType::Boolean => Some(format!("{name} IN (0, 1)")),
        ColumnType::Date => Some(format!("{name} = date({name})")),
        ColumnType::Timestamp => Some(format!(
            "length({name}) = 26 AND strftime('%Y-%m-%d %H:%M:%S', {name}) = substr({name}, 1, 19) \
             AND substr({name}, 20, 1) = '.' AND substr({name}, 21) NOT GLOB '*[^0-9]*'"
        )),
        ColumnType::Integer | ColumnType::Real | ColumnType::Text => None,
    }
}

/// The statement that creates the migrations table in `dialect`.
pub fn create_migrations_table(dialect: Backend) -> String {
    let strict = match dialect {
        Backend::Sqlite => " STRICT",
        Backend::Postgres => "",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (\n    version {} PRIMARY KEY,\n    \
         applied_at {} NOT NULL\n){strict}",
        Integer.sql_type(dialect),
        Timestamp.sql_type(dialect),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_come_after_the_tables_they_refer_to() {
        for (position, table) in TABLES.iter().enumerate() {
            assert_eq!(table.columns[0].name, PRIMARY_KEY, "{}", table.name);
            for (column, fk) in table.foreign_keys() {
                let parent = TABLES.iter().position(|t| t.name == fk.table);
                assert!(
                    parent.is_some_and(|p| p < position),
                    "{}.{} refers to {}, which must come earlier",
                    table.name,
                    column.name,
                    fk.table
                );
            }
        }
    }

    #[test]
    fn checks_accept_and_reject() {
        use crate::Value;
        assert!(SECTION.allows(&Value::Integer(30)));
        assert!(!SECTION.allows(&Value::Integer(31)));
        assert!(CEFR.allows(&Value::Text("C2".into())));
        assert!(!CEFR.allows(&Value::Text("C3".into())));
        assert!(CEFR.allows(&Value::Null));
    }
}
