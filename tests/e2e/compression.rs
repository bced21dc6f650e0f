//! Compressed exports: written by name or by `--compress`, smaller than plain JSON, and imported,
//! whatever their name, by their content.

use testkit::TestDb;

use crate::scripting::json_line;
use crate::{xtask_ok, xtask_on};

#[test]
fn compressed_exports_round_trip_and_are_smaller() {
    let source = TestDb::sqlite();
    xtask_ok(&source, &["seed", "--students", "200"]);
    let dir = source.dir.path();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let plain = path("export.json");
    xtask_ok(&source, &["export", "--file", &plain]);
    let plain_size = std::fs::metadata(&plain).unwrap().len();

    for (name, flags, compression) in [
        ("export.json.gz", &[][..], "gzip"),
        ("export.json.zst", &["--compress"][..], "zstd"),
    ] {
        let file = path(name);
        let mut args = vec!["export", "--file", &file, "--json"];
        args.extend(flags);
        let line = json_line(&xtask_ok(&source, &args));
        assert_eq!(line["compression"], compression);
        let size = std::fs::metadata(&file).unwrap().len();
        assert!(
            size * 3 < plain_size,
            "{name}: {size} bytes against {plain_size} plain"
        );

        // Known by content: the name says nothing here.
        let renamed = path(&format!("{compression}.data"));
        std::fs::rename(&file, &renamed).unwrap();
        let target = TestDb::postgres();
        xtask_ok(&target, &["import", "--file", &renamed, "--yes"]);
        assert_eq!(
            target.rows_as_text(app::schema::GRADES).len(),
            source.rows_as_text(app::schema::GRADES).len()
        );
        let back = path(&format!("back-{compression}.json"));
        xtask_ok(&target, &["export", "--file", &back]);
        let tables = |file: &str| {
            let text = std::fs::read_to_string(file).unwrap();
            text[text.find("\"tables\"").unwrap()..].to_string()
        };
        assert_eq!(tables(&back), tables(&plain), "{compression} round trip");
    }
}

#[test]
fn compress_with_a_plain_file_name_is_refused() {
    let db = TestDb::sqlite();
    xtask_ok(&db, &["seed", "--students", "5"]);
    let file = db.dir.path().join("export.json");
    let outcome = xtask_on(
        &db,
        &["export", "--compress", "--file", file.to_str().unwrap()],
    );
    assert_eq!(outcome.code, Some(1), "{outcome:#?}");
    assert!(outcome.stderr.contains(".json.zst"), "{}", outcome.stderr);
    assert!(!file.exists());
}
