//! The one description of the database: tables, columns, types, keys and checks, in dependency order.
//!
//! Everything else derives from [`TABLES`]: the DDL of both backends, the migrations between schema
//! versions, the xtask's queries, the export format and the import's validation. Nothing outside this
//! module spells a table or column name.
//!
//! Every column and row check records the schema version that added it, so the schema of any earlier
//! version, and the statements that bring a database from one version to the next, are derived from
//! the same description:
//!
//! - version 1: users, teachers, classes, students and grades, with the 0–30 section scores and the
//!   0–120 total;
//! - version 2: students and grades gain the four section bands and the overall band of the scale
//!   ETS reports since 21 January 2026, and the row checks that keep a row's figures whole and
//!   consistent ([`RowCheck`]).

use crate::backend::Backend;
use crate::domain::{Band, CefrLevel, GradeKind, Role};
use crate::value::Value;

/// The schema version this build of the app creates and expects; recorded in `schema_migrations`.
pub const SCHEMA_VERSION: i64 = 2;

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
    /// A real between `min` and `max`, inclusive, that is a whole multiple of `step`.
    RealSteps {
        /// The smallest value allowed.
        min: f64,
        /// The largest value allowed.
        max: f64,
        /// The step every value is a whole multiple of.
        step: f64,
    },
}

impl Check {
    /// Whether `value` passes; NULL is left to the column's nullability.
    pub fn allows(&self, value: &Value) -> bool {
        match (self, value) {
            (_, Value::Null) => true,
            (Check::IntegerRange { min, max }, Value::Integer(v)) => (*min..=*max).contains(v),
            (Check::RealRange { min, max }, Value::Real(v)) => (*min..=*max).contains(v),
            (Check::RealSteps { min, max, step }, Value::Real(v)) => {
                (*min..=*max).contains(v) && (v / step).fract() == 0.0
            }
            (Check::OneOf(options), Value::Text(v)) => options.contains(&v.as_str()),
            _ => false,
        }
    }

    /// The SQL condition on column `column`, the same text on both backends.
    pub fn sql(&self, column: &str) -> String {
        match self {
            Check::IntegerRange { min, max } => format!("{column} BETWEEN {min} AND {max}"),
            Check::RealRange { min, max } => format!("{column} BETWEEN {min:?} AND {max:?}"),
            Check::RealSteps { min, max, step } => format!(
                "{column} BETWEEN {min:?} AND {max:?} AND round({column} / {step:?}) = {column} / {step:?}"
            ),
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
    /// The schema version that added the column.
    pub since: i64,
}

/// One table: its columns in order, the first of which is the integer primary key `id`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Table {
    /// The table name.
    pub name: &'static str,
    /// The columns in schema order, `id` first. A column added by a later schema version comes after
    /// every earlier one, as `ALTER TABLE ... ADD COLUMN` puts it, so that a migrated database and a
    /// new one have the same columns in the same order.
    pub columns: &'static [Column],
    /// The rules on several columns of a row.
    pub row_checks: &'static [RowCheck],
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
        self.column_list_at(SCHEMA_VERSION)
    }

    /// The columns the table had at schema version `version`, in schema order.
    pub fn columns_at(&self, version: i64) -> impl Iterator<Item = &'static Column> {
        self.columns.iter().filter(move |c| c.since <= version)
    }

    /// The comma-separated list of the columns the table had at schema version `version`.
    pub fn column_list_at(&self, version: i64) -> String {
        let names: Vec<&str> = self.columns_at(version).map(|c| c.name).collect();
        names.join(", ")
    }

    /// The row checks the table had at schema version `version`.
    pub fn row_checks_at(&self, version: i64) -> impl Iterator<Item = &'static RowCheck> {
        self.row_checks.iter().filter(move |c| c.since <= version)
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
        since: 1,
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

const fn added_in(version: i64, column: Column) -> Column {
    Column {
        since: version,
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
const BAND: Check = Check::RealSteps {
    min: Band::MIN.value(),
    max: Band::MAX.value(),
    step: Band::STEP,
};

/// A band column of the 2026 scale, added by schema version 2.
const fn band(name: &'static str) -> Column {
    added_in(2, checked(column(name, Real), BAND))
}

/// The figures of version 1 in `students` and `grades`: section scores, total, CEFR level.
const SCORES: [Column; 6] = [
    checked(column(SCALES.sections[0], Integer), SECTION),
    checked(column(SCALES.sections[1], Integer), SECTION),
    checked(column(SCALES.sections[2], Integer), SECTION),
    checked(column(SCALES.sections[3], Integer), SECTION),
    checked(column(SCALES.total, Integer), TOTAL),
    checked(column("cefr_level", Text), CEFR),
];

/// The figures of version 2 in `students` and `grades`: section bands and overall band.
const BANDS: [Column; 5] = [
    band(SCALES.section_bands[0]),
    band(SCALES.section_bands[1]),
    band(SCALES.section_bands[2]),
    band(SCALES.section_bands[3]),
    band(SCALES.overall_band),
];

/// The columns of `parts`, one after the other: `N` of them.
const fn concat<const N: usize>(parts: &[&[Column]]) -> [Column; N] {
    let mut columns = [ID; N];
    let (mut part, mut filled) = (0, 0);
    while part < parts.len() {
        let mut i = 0;
        while i < parts[part].len() {
            columns[filled] = parts[part][i];
            filled += 1;
            i += 1;
        }
        part += 1;
    }
    assert!(filled == N, "N is the number of columns");
    columns
}

/// Where a row of `students` or `grades` keeps its TOEFL figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scales {
    /// The 0–30 reading, listening, speaking and writing scores (the scale reported until 2026).
    pub sections: [&'static str; 4],
    /// The 0–120 total of the section scores, or the comparable total of a band report.
    pub total: &'static str,
    /// The 1–6 reading, listening, speaking and writing bands (the scale reported since 2026).
    pub section_bands: [&'static str; 4],
    /// The overall band.
    pub overall_band: &'static str,
}

/// The figures' columns, the same in `students` (the current figures) and `grades` (each test's).
pub const SCALES: Scales = Scales {
    sections: ["reading", "listening", "speaking", "writing"],
    total: "total_score",
    section_bands: [
        "reading_band",
        "listening_band",
        "speaking_band",
        "writing_band",
    ],
    overall_band: "overall_band",
};

/// A rule on several columns of a row. Both backends enforce it (a named CHECK constraint), and the
/// import checks each row against it before writing it, so that an error names the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCheck {
    /// The constraint's name, after the table's: `grades_complete_scales`.
    pub name: &'static str,
    /// What it demands.
    pub rule: RowRule,
    /// The schema version that added it.
    pub since: i64,
}

/// What a [`RowCheck`] demands of a row's TOEFL figures (the columns of [`SCALES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowRule {
    /// Figures come in complete scales. A row holds the four section scores with their total, or
    /// the four section bands with the overall band, or both; beside the bands, the total may stand
    /// without section scores (the comparable total of a 2026 report). A row without any figure (a
    /// student not tested yet, a test left unfinished) is allowed, as version 1 allowed it.
    CompleteScales,
    /// The overall band is the average of the four section bands rounded to the nearest half band.
    OverallBandAverage,
    /// A row that holds both a band report and a 0–120 total holds one report's figures: the overall
    /// band and the total give the same CEFR level.
    ScalesAgree,
}

/// The row checks of `students` and `grades`.
const FIGURE_CHECKS: &[RowCheck] = &[
    RowCheck {
        name: "complete_scales",
        rule: RowRule::CompleteScales,
        since: 2,
    },
    RowCheck {
        name: "overall_band_average",
        rule: RowRule::OverallBandAverage,
        since: 2,
    },
    RowCheck {
        name: "scales_agree",
        rule: RowRule::ScalesAgree,
        since: 2,
    },
];

impl RowCheck {
    /// The constraint's name in `table`.
    pub fn constraint_name(&self, table: &Table) -> String {
        format!("{}_{}", table.name, self.name)
    }

    /// What the check demands, in words, for error messages.
    pub fn description(&self) -> &'static str {
        match self.rule {
            RowRule::CompleteScales => {
                "figures come in complete scales: the four section scores with their total, and/or \
                 the four section bands with the overall band (a total without section scores only \
                 beside bands), or no figures at all"
            }
            RowRule::OverallBandAverage => {
                "the overall band is the average of the four section bands rounded to the nearest \
                 half band (5.125 gives 5.0, 5.25 gives 5.5)"
            }
            RowRule::ScalesAgree => {
                "a row's 0–120 total and its overall band are one report's figures: they give the \
                 same CEFR level"
            }
        }
    }

    /// Why a migration to `version` (which added this check) stops at the row of `table` with id
    /// `id`: one line that names the row and the fix. `id` is text, so that SQL can fill it in.
    pub fn refusal(&self, table: &Table, version: i64, id: &str) -> String {
        format!(
            "cannot migrate to schema version {version}: {} row id {id} breaks the rule of \
             version {version} that {}; correct or delete that row, then migrate again",
            table.name,
            self.description()
        )
    }

    /// The SQL condition, the same text on both backends. NULL passes, as in every CHECK: a missing
    /// figure is [`RowRule::CompleteScales`]'s business.
    pub fn sql(&self) -> String {
        let bands: Vec<&str> = SCALES
            .section_bands
            .iter()
            .copied()
            .chain([SCALES.overall_band])
            .collect();
        let total = SCALES.total;
        let overall = SCALES.overall_band;
        match self.rule {
            RowRule::CompleteScales => {
                let (sections_all, sections_none) = (
                    all_are(&SCALES.sections, "NOT NULL"),
                    all_are(&SCALES.sections, "NULL"),
                );
                let (bands_all, bands_none) =
                    (all_are(&bands, "NOT NULL"), all_are(&bands, "NULL"));
                format!(
                    "({bands_all} OR {bands_none}) AND ({sections_all} AND {total} IS NOT NULL \
                     OR {sections_none} AND ({total} IS NULL OR {bands_all}))"
                )
            }
            // In half bands, the average is sum / 4; adding 2 before the integer division rounds a
            // quarter band up. The sum of valid bands times 2 is a whole number on both backends.
            RowRule::OverallBandAverage => format!(
                "{overall} * 2 = (CAST(({}) * 2 AS INTEGER) + 2) / 4",
                SCALES.section_bands.join(" + ")
            ),
            RowRule::ScalesAgree => format!(
                "{total} IS NULL OR {overall} IS NULL OR {} = {}",
                cefr_level_sql(total, |level| level.lowest_toefl_total().to_string()),
                cefr_level_sql(overall, |level| format!(
                    "{:?}",
                    level.lowest_band().value()
                )),
            ),
        }
    }

    /// A query for the lowest id of a row of `table` that this check refuses (NULL if none), reading the table as
    /// it is stored at schema version `stored`: the columns added since read as NULL, as a migration
    /// adds them. It finds the row that would stop a migration, before the migration starts.
    pub fn first_refused_row_sql(&self, table: &Table, stored: i64, dialect: Backend) -> String {
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|c| match c.since <= stored {
                true => c.name.to_string(),
                false => format!("CAST(NULL AS {}) AS {}", c.ty.sql_type(dialect), c.name),
            })
            .collect();
        format!(
            "SELECT min({PRIMARY_KEY}) FROM (SELECT {} FROM {}) AS stored WHERE NOT ({})",
            columns.join(", "),
            table.name,
            self.sql()
        )
    }

    /// Whether a row's figures pass, exactly as the SQL condition decides for values that pass their
    /// columns' own checks.
    fn allows(&self, figures: &Figures) -> bool {
        match self.rule {
            RowRule::CompleteScales => {
                let sections_all = figures.sections.iter().all(Option::is_some);
                let sections_none = figures.sections.iter().all(Option::is_none);
                let bands = figures.section_bands.iter().chain([&figures.overall_band]);
                let bands_all = bands.clone().all(Option::is_some);
                let bands_none = bands.clone().all(Option::is_none);
                (bands_all || bands_none)
                    && (sections_all && figures.total.is_some()
                        || sections_none && (figures.total.is_none() || bands_all))
            }
            RowRule::OverallBandAverage => {
                let sections = figures.section_bands.map(|b| b.and_then(Band::new));
                match (sections, figures.overall_band.and_then(Band::new)) {
                    ([Some(r), Some(l), Some(s), Some(w)], Some(overall)) => {
                        Band::overall([r, l, s, w]) == overall
                    }
                    _ => true,
                }
            }
            RowRule::ScalesAgree => {
                match (figures.total, figures.overall_band.and_then(Band::new)) {
                    (Some(total), Some(overall)) => {
                        CefrLevel::from_toefl_total(total) == overall.cefr()
                    }
                    _ => true,
                }
            }
        }
    }
}

/// `(a IS NULL AND b IS NULL ...)`, with `test` after each column.
fn all_are(columns: &[&str], test: &str) -> String {
    let tests: Vec<String> = columns.iter().map(|c| format!("{c} IS {test}")).collect();
    format!("({})", tests.join(" AND "))
}

/// `CASE WHEN expr >= <lowest of C2> THEN 'C2' ... ELSE 'A1' END`: the CEFR level of `expr`.
fn cefr_level_sql(expr: &str, lowest: impl Fn(CefrLevel) -> String) -> String {
    let whens: Vec<String> = CefrLevel::ALL[1..]
        .iter()
        .rev()
        .map(|&level| format!("WHEN {expr} >= {} THEN '{}'", lowest(level), level.as_str()))
        .collect();
    format!(
        "CASE {} ELSE '{}' END",
        whens.join(" "),
        CefrLevel::A1.as_str()
    )
}

/// A row's figures, read from its values.
struct Figures {
    sections: [Option<i64>; 4],
    total: Option<i64>,
    section_bands: [Option<f64>; 4],
    overall_band: Option<f64>,
}

/// The row checks of one table, with the positions of the columns they read: what the import runs on
/// every row before it writes it.
pub struct RowChecker {
    checks: Vec<&'static RowCheck>,
    /// Positions of the figures in a row: sections, total, section bands, overall band.
    positions: Option<([usize; 4], usize, [usize; 4], usize)>,
}

impl RowChecker {
    /// The checker for rows of `table` at the current schema version.
    pub fn new(table: &'static Table) -> RowChecker {
        let checks: Vec<&'static RowCheck> = table.row_checks_at(SCHEMA_VERSION).collect();
        let position = |name: &str| {
            table
                .column_index(name)
                .expect("a table with row checks has every figure's column")
        };
        let positions = (!checks.is_empty()).then(|| {
            (
                SCALES.sections.map(position),
                position(SCALES.total),
                SCALES.section_bands.map(position),
                position(SCALES.overall_band),
            )
        });
        RowChecker { checks, positions }
    }

    /// The first check that `row` (a value for every column, in schema order) breaks.
    pub fn first_broken(&self, row: &[Value]) -> Option<&'static RowCheck> {
        let (sections, total, section_bands, overall_band) = self.positions?;
        let integer = |i: usize| match row[i] {
            Value::Integer(v) => Some(v),
            _ => None,
        };
        let real = |i: usize| match row[i] {
            Value::Real(v) => Some(v),
            _ => None,
        };
        let figures = Figures {
            sections: sections.map(integer),
            total: integer(total),
            section_bands: section_bands.map(real),
            overall_band: real(overall_band),
        };
        self.checks
            .iter()
            .copied()
            .find(|check| !check.allows(&figures))
    }
}

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
        row_checks: &[],
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
        row_checks: &[],
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
        row_checks: &[],
    },
    Table {
        name: "students",
        columns: &concat::<18>(&[
            &[
                ID,
                required("name", Text),
                column("email", Text),
                reference(column("class_id", Integer), "classes", OnDelete::SetNull),
            ],
            &SCORES,
            &[
                column("notes", Text),
                required("created_at", Timestamp),
                column("updated_at", Timestamp),
            ],
            &BANDS,
        ]),
        row_checks: FIGURE_CHECKS,
    },
    Table {
        name: "grades",
        columns: &concat::<18>(&[
            &[
                ID,
                reference(
                    required("student_id", Integer),
                    "students",
                    OnDelete::Cascade,
                ),
                required("taken_on", Date),
                checked(required("kind", Text), Check::OneOf(&GradeKind::NAMES)),
            ],
            &SCORES,
            &[
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
            &BANDS,
        ]),
        row_checks: FIGURE_CHECKS,
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

/// The statements that bring a database from schema version `version - 1` to `version`; version 1
/// creates the schema on a database without one. A new database goes through every version in turn,
/// so it ends exactly as a migrated one.
pub fn migration_statements(version: i64, dialect: Backend) -> Vec<String> {
    assert!(
        (1..=SCHEMA_VERSION).contains(&version),
        "no schema version {version}"
    );
    match (version, dialect) {
        (1, _) => create_statements(dialect),
        (_, Backend::Postgres) => postgres_upgrade(version),
        (_, Backend::Sqlite) => sqlite_rebuild(version),
    }
}

/// The SQL that brings a database from schema version `version - 1` to `version` and records it in
/// [`MIGRATIONS_TABLE`]: what [`crate::Database::migrate`] runs for that version, and what a restore
/// of an older backup runs after it, in the same transaction.
pub fn migration_script(version: i64, backend: Backend) -> String {
    let mut sql = migration_statements(version, backend).join(";\n");
    let now = match backend {
        Backend::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now')",
        Backend::Postgres => "now()",
    };
    sql.push_str(&format!(
        ";\nINSERT INTO {MIGRATIONS_TABLE} (version, applied_at) VALUES ({version}, {now})"
    ));
    sql
}

/// PostgreSQL statements that stop the transaction with [`RowCheck::refusal`] when a row stored at
/// `version - 1` breaks a row check that `version` adds: the check [`crate::Database::migrate`]
/// makes before it migrates, for a migration that runs in a script (a restore of an older dump).
pub fn postgres_refused_row_guards(version: i64) -> Vec<String> {
    let mut guards = Vec::new();
    for table in TABLES {
        for check in table.row_checks.iter().filter(|c| c.since == version) {
            let query = check.first_refused_row_sql(table, version - 1, Backend::Postgres);
            let message = check.refusal(table, version, "%").replace('\'', "''");
            guards.push(format!(
                "DO $guard$ DECLARE refused bigint; BEGIN refused := ({query}); \
                 IF refused IS NOT NULL THEN RAISE EXCEPTION '{message}', refused; END IF; \
                 END $guard$"
            ));
        }
    }
    guards
}

/// What schema version `version` changes, table by table, in words for people:
/// `students gains the columns a, b and the checks c, d`.
pub fn describe_changes(version: i64) -> Vec<String> {
    TABLES
        .iter()
        .filter_map(|table| {
            let columns: Vec<&str> = table
                .columns
                .iter()
                .filter(|c| c.since == version)
                .map(|c| c.name)
                .collect();
            let checks: Vec<&str> = table
                .row_checks
                .iter()
                .filter(|c| c.since == version)
                .map(|c| c.name)
                .collect();
            let gains: Vec<String> = [("columns", columns), ("checks", checks)]
                .into_iter()
                .filter(|(_, names)| !names.is_empty())
                .map(|(what, names)| format!("the {what} {}", names.join(", ")))
                .collect();
            (!gains.is_empty()).then(|| format!("{} gains {}", table.name, gains.join(" and ")))
        })
        .collect()
}

/// The statements that create every table, key and index of schema version 1 in `dialect`.
///
/// SQLite declares keys inside `CREATE TABLE` (it cannot add them later); PostgreSQL gets bare tables
/// and then [`Key::create_sql`] for each of [`keys`], the same statements a bulk load uses to rebuild
/// what it dropped.
fn create_statements(dialect: Backend) -> Vec<String> {
    let mut statements: Vec<String> = TABLES
        .iter()
        .map(|table| create_table(table, dialect, 1))
        .collect();
    statements.extend(
        keys()
            .into_iter()
            .filter(|key| dialect == Backend::Postgres || matches!(key, Key::Index(..)))
            .map(|key| key.create_sql()),
    );
    statements
}

/// PostgreSQL adds the version's columns (with their checks) and row checks to the tables in place;
/// adding a check validates the rows already there.
fn postgres_upgrade(version: i64) -> Vec<String> {
    let mut statements = Vec::new();
    for table in TABLES {
        for column in table.columns.iter().filter(|c| c.since == version) {
            statements.push(format!(
                "ALTER TABLE {} ADD COLUMN {}",
                table.name,
                column_definition(table, column, Backend::Postgres)
            ));
        }
        for check in table.row_checks.iter().filter(|c| c.since == version) {
            statements.push(format!(
                "ALTER TABLE {} ADD {}",
                table.name,
                row_check_definition(table, check)
            ));
        }
    }
    statements
}

/// SQLite cannot add a table constraint to a table: each table the version changes is rebuilt, with
/// every table that refers to it (whose references must move to the new table). The old tables are
/// renamed out of the way first, so that no table is dropped while another refers to it: with
/// foreign keys on, dropping `students` would first delete its rows and, by cascade, every grade.
fn sqlite_rebuild(version: i64) -> Vec<String> {
    let mut rebuilt: Vec<&'static Table> = Vec::new();
    for table in TABLES {
        let changed = table.columns.iter().any(|c| c.since == version)
            || table.row_checks.iter().any(|c| c.since == version);
        let refers_to_rebuilt = table
            .foreign_keys()
            .any(|(_, fk)| rebuilt.iter().any(|t| t.name == fk.table));
        if changed || refers_to_rebuilt {
            rebuilt.push(table);
        }
    }
    let old = |table: &Table| format!("{}_v{}", table.name, version - 1);
    let mut statements: Vec<String> = rebuilt
        .iter()
        .map(|table| format!("ALTER TABLE {} RENAME TO {}", table.name, old(table)))
        .collect();
    for table in &rebuilt {
        let columns = table.column_list_at(version - 1);
        statements.push(create_table(table, Backend::Sqlite, version));
        statements.push(format!(
            "INSERT INTO {} ({columns}) SELECT {columns} FROM {}",
            table.name,
            old(table)
        ));
    }
    // Children first: nothing refers to an old table when it goes.
    statements.extend(
        rebuilt
            .iter()
            .rev()
            .map(|table| format!("DROP TABLE {}", old(table))),
    );
    // The indexes went with the old tables.
    statements.extend(keys().into_iter().filter_map(|key| match key {
        Key::Index(table, _) if rebuilt.iter().any(|t| t.name == table.name) => {
            Some(key.create_sql())
        }
        _ => None,
    }));
    statements
}

/// `CREATE TABLE` for `table` as it is at schema version `version`.
fn create_table(table: &'static Table, dialect: Backend, version: i64) -> String {
    let mut definitions: Vec<String> = table
        .columns_at(version)
        .map(|column| column_definition(table, column, dialect))
        .collect();
    definitions.extend(
        table
            .row_checks_at(version)
            .map(|check| row_check_definition(table, check)),
    );
    let strict = match dialect {
        Backend::Sqlite => " STRICT",
        Backend::Postgres => "",
    };
    format!(
        "CREATE TABLE {} (\n    {}\n){strict}",
        table.name,
        definitions.join(",\n    ")
    )
}

/// `CONSTRAINT name CHECK (...)`, the same on both backends.
fn row_check_definition(table: &Table, check: &RowCheck) -> String {
    format!(
        "CONSTRAINT {} CHECK ({})",
        check.constraint_name(table),
        check.sql()
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
        assert!(SECTION.allows(&Value::Integer(30)));
        assert!(!SECTION.allows(&Value::Integer(31)));
        assert!(CEFR.allows(&Value::Text("C2".into())));
        assert!(!CEFR.allows(&Value::Text("C3".into())));
        assert!(CEFR.allows(&Value::Null));
        assert!(BAND.allows(&Value::Real(4.5)));
        assert!(BAND.allows(&Value::Real(1.0)));
        assert!(!BAND.allows(&Value::Real(4.25)));
        assert!(!BAND.allows(&Value::Real(0.5)));
        assert!(!BAND.allows(&Value::Real(6.5)));
    }

    #[test]
    fn later_columns_come_last_and_can_be_added_to_a_table_with_rows() {
        for table in TABLES {
            let versions: Vec<i64> = table.columns.iter().map(|c| c.since).collect();
            assert!(
                versions.is_sorted(),
                "{}: a later column comes after every earlier one",
                table.name
            );
            for column in table.columns.iter().filter(|c| c.since > 1) {
                // ALTER TABLE ... ADD COLUMN cannot fill a NOT NULL column or build a key.
                assert!(column.nullable, "{}.{}", table.name, column.name);
                assert!(!column.unique && column.references.is_none());
            }
        }
    }

    #[test]
    fn version_2_is_described_table_by_table() {
        let bands = "reading_band, listening_band, speaking_band, writing_band, overall_band";
        let checks = "complete_scales, overall_band_average, scales_agree";
        let gains = format!("gains the columns {bands} and the checks {checks}");
        assert_eq!(
            describe_changes(2),
            [format!("students {gains}"), format!("grades {gains}")]
        );
    }

    #[test]
    fn tables_with_row_checks_have_every_figure() {
        for table in TABLES.iter().filter(|t| !t.row_checks.is_empty()) {
            let figures = SCALES.sections.iter().chain(&SCALES.section_bands);
            for name in figures.chain([&SCALES.total, &SCALES.overall_band]) {
                assert!(table.column(name).is_some(), "{}.{name}", table.name);
            }
        }
    }

    /// A grades row (student 1, a mock test) with these figures.
    fn grade(
        id: i64,
        sections: [Option<i64>; 4],
        total: Option<i64>,
        bands: [Option<f64>; 4],
        overall: Option<f64>,
    ) -> Vec<Value> {
        let mut row = vec![
            Value::Integer(id),
            Value::Integer(1),
            Value::Date(chrono::NaiveDate::from_ymd_opt(2026, 2, 2).unwrap()),
            Value::Text("mock".into()),
        ];
        row.extend(sections.map(|s| s.map_or(Value::Null, Value::Integer)));
        row.push(total.map_or(Value::Null, Value::Integer));
        row.extend([Value::Null, Value::Null, Value::Null]);
        row.push(Value::Timestamp(chrono::DateTime::UNIX_EPOCH));
        row.extend(bands.map(|b| b.map_or(Value::Null, Value::Real)));
        row.push(overall.map_or(Value::Null, Value::Real));
        row
    }

    /// Every combination of whole, partial and missing figures, consistent or not.
    fn figure_combinations() -> Vec<Vec<Value>> {
        let sections = [[None; 4], [Some(20); 4], [Some(20), None, None, None]];
        let totals = [None, Some(80), Some(100), Some(30)];
        let bands: [([Option<f64>; 4], Option<f64>); 7] = [
            ([None; 4], None),
            ([Some(4.0), Some(4.0), Some(4.5), Some(4.5)], Some(4.5)),
            ([Some(4.0), Some(4.0), Some(4.5), Some(4.5)], Some(4.0)),
            ([Some(5.0), Some(5.0), Some(5.0), Some(5.5)], Some(5.0)),
            ([Some(5.0), Some(5.0), Some(5.5), Some(5.5)], Some(5.0)),
            ([Some(4.0), None, None, None], None),
            ([Some(4.0); 4], None),
        ];
        let mut rows = Vec::new();
        for s in sections {
            for t in totals {
                for (b, o) in bands {
                    rows.push(grade(rows.len() as i64 + 1, s, t, b, o));
                }
            }
        }
        rows
    }

    /// Whether SQLite stores `row` in `grades`.
    fn sqlite_accepts(db: &mut crate::Database, row: &[Value]) -> bool {
        let mut writer = db.insert_rows(GRADES).unwrap();
        let written = writer.write(row);
        writer.finish().unwrap();
        written.is_ok()
    }

    fn migrated_sqlite_with_a_student() -> crate::Database {
        let url = crate::DatabaseUrl::sqlite(":memory:");
        let mut db = crate::Database::open(&url, crate::Create::IfMissing).unwrap();
        db.migrate().unwrap();
        db.execute_batch(
            "INSERT INTO students (id, name, created_at) VALUES (1, 'Ana', '2024-01-01 00:00:00.000000')",
        )
        .unwrap();
        db
    }

    #[test]
    fn row_checks_decide_in_rust_as_in_sql() {
        let mut db = migrated_sqlite_with_a_student();
        let checker = RowChecker::new(GRADES);
        let rows = figure_combinations();
        let mut accepted = 0;
        for row in &rows {
            let in_rust = checker.first_broken(row).is_none();
            assert_eq!(sqlite_accepts(&mut db, row), in_rust, "{row:?}");
            accepted += usize::from(in_rust);
        }
        assert!(
            (10..rows.len() / 2).contains(&accepted),
            "the combinations test both outcomes: {accepted} of {}",
            rows.len()
        );
    }

    #[test]
    fn row_checks_refuse_partial_scales_and_inconsistent_bands() {
        let checker = RowChecker::new(GRADES);
        let broken = |row: Vec<Value>| checker.first_broken(&row).map(|c| c.rule);
        let s = [Some(20); 4];
        let no_sections = [None; 4];
        let bands = [Some(5.0), Some(5.0), Some(5.0), Some(5.5)];
        let no_bands = [None; 4];
        // Whole scales: old, new, new with the comparable total, both; and no figures at all.
        assert_eq!(broken(grade(1, s, Some(80), no_bands, None)), None);
        assert_eq!(broken(grade(1, no_sections, None, bands, Some(5.0))), None);
        assert_eq!(
            broken(grade(1, no_sections, Some(100), bands, Some(5.0))),
            None
        );
        assert_eq!(broken(grade(1, s, Some(100), bands, Some(5.0))), None);
        assert_eq!(broken(grade(1, no_sections, None, no_bands, None)), None);
        // No complete scale.
        let complete = Some(RowRule::CompleteScales);
        assert_eq!(broken(grade(1, s, None, no_bands, None)), complete);
        assert_eq!(
            broken(grade(1, no_sections, Some(80), no_bands, None)),
            complete
        );
        assert_eq!(broken(grade(1, no_sections, None, bands, None)), complete);
        let partial = [Some(5.0), None, Some(5.0), Some(5.0)];
        assert_eq!(broken(grade(1, s, Some(80), partial, Some(5.0))), complete);
        // 5.125 rounds to 5.0, not 5.5.
        assert_eq!(
            broken(grade(1, no_sections, None, bands, Some(5.5))),
            Some(RowRule::OverallBandAverage)
        );
        // Band 5.0 is C1; a total of 80 is B2.
        assert_eq!(
            broken(grade(1, no_sections, Some(80), bands, Some(5.0))),
            Some(RowRule::ScalesAgree)
        );
    }

    #[test]
    fn sqlite_refuses_a_band_of_4_25() {
        let mut db = migrated_sqlite_with_a_student();
        let quarter = [Some(4.25), Some(4.0), Some(4.0), Some(4.0)];
        assert!(!sqlite_accepts(
            &mut db,
            &grade(1, [None; 4], None, quarter, Some(4.0))
        ));
        let whole = [Some(4.5), Some(4.0), Some(4.0), Some(4.0)];
        assert!(sqlite_accepts(
            &mut db,
            &grade(2, [None; 4], None, whole, Some(4.0))
        ));
    }

    #[test]
    fn the_overall_band_check_rounds_every_combination_as_the_domain_does() {
        let check = FIGURE_CHECKS
            .iter()
            .find(|c| c.rule == RowRule::OverallBandAverage)
            .unwrap();
        let [r, l, s, w] = SCALES.section_bands;
        let sql = format!(
            "SELECT {} FROM (SELECT ?1 AS {r}, ?2 AS {l}, ?3 AS {s}, ?4 AS {w}, ?5 AS {})",
            check.sql(),
            SCALES.overall_band
        );
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut statement = conn.prepare(&sql).unwrap();
        let bands: Vec<Band> = (2..=12)
            .map(|h| Band::new(f64::from(h) / 2.0).unwrap())
            .collect();
        let mut passes = |sections: [Band; 4], overall: f64| -> bool {
            let values = sections.map(Band::value);
            let params = rusqlite::params![values[0], values[1], values[2], values[3], overall];
            statement.query_row(params, |row| row.get(0)).unwrap()
        };
        for &a in &bands {
            for &b in &bands {
                for &c in &bands {
                    for &d in &bands {
                        let overall = Band::overall([a, b, c, d]).value();
                        assert!(passes([a, b, c, d], overall), "{a:?} {b:?} {c:?} {d:?}");
                        assert!(!passes([a, b, c, d], overall + 0.5));
                        assert!(!passes([a, b, c, d], overall - 0.5));
                    }
                }
            }
        }
    }
}
