//! `cargo xtask seed`: fills the database with the app's deterministic demo data.

use app::demo::DemoData;
use app::schema::STUDENTS;
use app::{Create, Database, DatabaseUrl};

use crate::progress::Progress;
use crate::report::Report;

/// Options of `cargo xtask seed`.
#[derive(clap::Args)]
pub struct SeedArgs {
    /// How many students to create (about ten grades each)
    #[arg(long, default_value_t = 500)]
    students: u64,
    /// The random seed: the same seed always gives the same data
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Replace all the data of a database that already has students
    #[arg(long)]
    force: bool,
}

/// Migrates `url` if needed and fills it with demo data, in one transaction: a refused seed leaves
/// even an older schema version as it was.
pub fn run(url: &DatabaseUrl, args: &SeedArgs) -> anyhow::Result<Report> {
    let mut report = Report::start("seed");
    let mut db = Database::open(url, Create::IfMissing)?;
    db.transaction(|db| {
        db.migrate_in_transaction()?;
        let students = db
            .query_i64(&format!("SELECT count(*) FROM {}", STUDENTS.name))?
            .unwrap_or(0);
        if students > 0 && !args.force {
            anyhow::bail!(
                "{url} already has {students} students: pass --force to replace all its data with demo data"
            );
        }
        db.start_bulk_load()?;
        let mut progress = Progress::new("seeding", None);
        DemoData::new(args.students, args.seed).write(db, &mut |rows| progress.add(rows))?;
        drop(progress);
        db.finish_bulk_load()?;
        Ok(())
    })?;
    let counts = db.row_counts()?;
    let line = format!(
        "seeded {url} with seed {}: {} in {:.2} s",
        args.seed,
        counts,
        report.seconds()
    );
    report.say(line).backend(url.backend()).rows(&counts);
    Ok(report)
}
