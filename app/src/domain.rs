//! The domain's closed vocabularies: CEFR levels, user roles and kinds of grade.

/// A level of the Common European Framework of Reference for languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CefrLevel {
    /// Beginner.
    A1,
    /// Elementary.
    A2,
    /// Intermediate.
    B1,
    /// Upper intermediate.
    B2,
    /// Advanced.
    C1,
    /// Proficient.
    C2,
}

impl CefrLevel {
    /// Every level, lowest first.
    pub const ALL: [CefrLevel; 6] = [
        CefrLevel::A1,
        CefrLevel::A2,
        CefrLevel::B1,
        CefrLevel::B2,
        CefrLevel::C1,
        CefrLevel::C2,
    ];

    /// The names as stored in the database, lowest first.
    pub const NAMES: [&'static str; 6] = ["A1", "A2", "B1", "B2", "C1", "C2"];

    /// The name as stored in the database.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The level that a TOEFL iBT total score (0..=120) corresponds to, after ETS's published
    /// mapping (C2 from 114, C1 from 95, B2 from 72, B1 from 42), with A2 from 20 below that.
    pub fn from_toefl_total(total: i64) -> CefrLevel {
        match total {
            114.. => CefrLevel::C2,
            95..=113 => CefrLevel::C1,
            72..=94 => CefrLevel::B2,
            42..=71 => CefrLevel::B1,
            20..=41 => CefrLevel::A2,
            _ => CefrLevel::A1,
        }
    }
}

/// What a user account may do in the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages everything, including users.
    Admin,
    /// Manages their own classes and students.
    Teacher,
    /// Office staff: reads and enters data.
    Staff,
}

impl Role {
    /// The names as stored in the database.
    pub const NAMES: [&'static str; 3] = ["admin", "teacher", "staff"];

    /// The name as stored in the database.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// The kind of test a grade records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GradeKind {
    /// The test taken on joining, to place the student in a class.
    Placement,
    /// A practice test in class.
    Mock,
    /// An official ETS result.
    Official,
}

impl GradeKind {
    /// The names as stored in the database.
    pub const NAMES: [&'static str; 3] = ["placement", "mock", "official"];

    /// The name as stored in the database.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_variants() {
        for level in CefrLevel::ALL {
            assert_eq!(format!("{level:?}"), level.as_str());
        }
        assert_eq!(Role::Staff.as_str(), "staff");
        assert_eq!(GradeKind::Official.as_str(), "official");
    }

    #[test]
    fn toefl_totals_map_to_levels() {
        let cases = [
            (0, CefrLevel::A1),
            (19, CefrLevel::A1),
            (20, CefrLevel::A2),
            (42, CefrLevel::B1),
            (71, CefrLevel::B1),
            (72, CefrLevel::B2),
            (95, CefrLevel::C1),
            (113, CefrLevel::C1),
            (114, CefrLevel::C2),
            (120, CefrLevel::C2),
        ];
        for (total, level) in cases {
            assert_eq!(CefrLevel::from_toefl_total(total), level, "total {total}");
        }
    }
}
