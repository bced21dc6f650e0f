//! How many rows each table holds: what backups, exports and restores report.

use std::fmt;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::schema::{Table, TABLES};

/// The number of rows in each table of [`TABLES`], in dependency order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowCounts(Vec<u64>);

impl RowCounts {
    /// Counts given in [`TABLES`] order, one per table.
    pub fn new(counts: Vec<u64>) -> RowCounts {
        assert_eq!(counts.len(), TABLES.len(), "one count per table");
        RowCounts(counts)
    }

    /// Counts from a function of each table.
    pub fn from_fn(count: impl FnMut(&'static Table) -> u64) -> RowCounts {
        RowCounts(TABLES.iter().map(count).collect())
    }

    /// Each table with its count, in dependency order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Table, u64)> + '_ {
        TABLES.iter().zip(self.0.iter().copied())
    }

    /// The rows of `table`.
    pub fn get(&self, table: &Table) -> u64 {
        self.iter()
            .find(|(t, _)| t.name == table.name)
            .map_or(0, |(_, n)| n)
    }

    /// The rows of all tables together.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Whether there are no rows at all.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}

/// `users 3, teachers 2, classes 1, students 10, grades 95`.
impl fmt::Display for RowCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (table, rows)) in self.iter().enumerate() {
            let comma = if i == 0 { "" } else { ", " };
            write!(f, "{comma}{} {rows}", table.name)?;
        }
        Ok(())
    }
}

/// `{"users": 3, "teachers": 2, ...}`, tables in dependency order.
impl Serialize for RowCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (table, rows) in self.iter() {
            map.serialize_entry(table.name, &rows)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_tables_and_rows() {
        let counts = RowCounts::new(vec![3, 2, 1, 10, 95]);
        assert_eq!(
            counts.to_string(),
            "users 3, teachers 2, classes 1, students 10, grades 95"
        );
        assert_eq!(counts.total(), 111);
        assert_eq!(counts.get(crate::schema::STUDENTS), 10);
        assert!(!counts.is_empty());
        assert!(RowCounts::from_fn(|_| 0).is_empty());
    }
}
