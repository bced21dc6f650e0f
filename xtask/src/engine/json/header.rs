//! Reads only the header of an export: the fields before `tables`, without reading a single row, so
//! that a file is checked (or listed) before anything else happens.

use std::fmt;

use serde::de::{self, Deserializer as _, MapAccess, Visitor};

use super::format::Header;
use super::open_export;
use crate::engine::archive::source::Source;

/// Reads the header of the export `source`, stopping where `tables` begins.
pub fn read_header(source: &Source) -> anyhow::Result<Header> {
    let path = source.path();
    let mut parser = serde_json::Deserializer::from_reader(open_export(source)?);
    let mut reader = HeaderReader {
        header: Header::default(),
        reached_tables: false,
    };
    // The reader stops at `tables` on purpose, so the parser then complains about the unread rest:
    // once `tables` was reached, that complaint is not an error.
    let parsed = parser.deserialize_map(&mut reader);
    match parsed {
        _ if reader.reached_tables => Ok(reader.header),
        Ok(()) => anyhow::bail!("{} has no \"tables\" field", path.display()),
        // A damaged compressed or encrypted stream is a damaged file, not another kind of file.
        Err(error) if error.is_io() => {
            Err(anyhow::Error::new(error).context(format!("cannot read {}", path.display())))
        }
        Err(error) => anyhow::bail!(
            "{} is not a TOEFL Dashboard export ({error}): to restore a native backup use `cargo xtask restore`",
            path.display()
        ),
    }
}

/// The file's top-level object, up to `tables`.
struct HeaderReader {
    header: Header,
    reached_tables: bool,
}

impl<'de> Visitor<'de> for &mut HeaderReader {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with the fields format, format_version, ..., tables")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let header = &mut self.header;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "tables" => {
                    self.reached_tables = true;
                    return Ok(());
                }
                "format" => header.format = Some(map.next_value()?),
                "format_version" => header.format_version = Some(map.next_value()?),
                "schema_version" => header.schema_version = Some(map.next_value()?),
                "row_counts" => header.row_counts = Some(map.next_value()?),
                "exported_at" => header.exported_at = Some(map.next_value()?),
                "source" => header.source = Some(map.next_value()?),
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown top-level field {other:?}"
                    )))
                }
            }
        }
        Ok(())
    }
}
