//! The domain's closed vocabularies (CEFR levels, user roles, kinds of grade) and the rules of the two
//! TOEFL iBT score scales: the 0–30 section scores with their 0–120 total, reported until 20 January
//! 2026, and the 1–6 bands reported since 21 January 2026.

use chrono::NaiveDate;

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
        *Self::ALL
            .iter()
            .rev()
            .find(|level| total >= level.lowest_toefl_total())
            .unwrap_or(&CefrLevel::A1)
    }

    /// The lowest 0–120 total at this level (see [`CefrLevel::from_toefl_total`]).
    pub fn lowest_toefl_total(self) -> i64 {
        [0, 20, 42, 72, 95, 114][self as usize]
    }

    /// The 0–120 totals at this level.
    pub fn toefl_totals(self) -> std::ops::RangeInclusive<i64> {
        let next = Self::ALL.get(self as usize + 1);
        self.lowest_toefl_total()..=next.map_or(120, |next| next.lowest_toefl_total() - 1)
    }

    /// The level of a band: the band scale is aligned with CEFR, 1 = A1 ... 6 = C2, and a half band
    /// is at the level of the whole band below it (5.5 is C1).
    pub fn from_band(band: Band) -> CefrLevel {
        Self::ALL[usize::from(band.half_bands / 2) - 1]
    }

    /// The lowest band at this level: 1.0 for A1 ... 6.0 for C2.
    pub fn lowest_band(self) -> Band {
        Band {
            half_bands: 2 * (self as u8 + 1),
        }
    }
}

/// A TOEFL iBT band of the scale reported since 21 January 2026: 1.0 to 6.0 in half-band steps, for
/// each section and overall. Held as a whole number of half bands, so that arithmetic on it is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Band {
    /// 2 (band 1.0) to 12 (band 6.0).
    half_bands: u8,
}

impl Band {
    /// The lowest band, 1.0.
    pub const MIN: Band = Band { half_bands: 2 };
    /// The highest band, 6.0.
    pub const MAX: Band = Band { half_bands: 12 };
    /// The step between two bands, 0.5.
    pub const STEP: f64 = 0.5;

    /// The band `value`, if it is one: between 1.0 and 6.0 and a multiple of 0.5.
    pub fn new(value: f64) -> Option<Band> {
        let halves = value * 2.0;
        let in_range = (Self::MIN.value()..=Self::MAX.value()).contains(&value);
        (in_range && halves.fract() == 0.0).then_some(Band {
            half_bands: halves as u8,
        })
    }

    /// The band as a number, as the database stores it: 1.0, 1.5, ... 6.0.
    pub const fn value(self) -> f64 {
        self.half_bands as f64 / 2.0
    }

    /// The overall band of four section bands: their average rounded to the nearest half band, a
    /// quarter rounding up (an average of 5.125 gives 5.0, 5.25 gives 5.5), as ETS computes it.
    pub fn overall(sections: [Band; 4]) -> Band {
        // The average in half bands is sum / 4; adding 2 before the integer division rounds a
        // remainder of 2 (a quarter band) or more up.
        let sum: u8 = sections.iter().map(|band| band.half_bands).sum();
        Band {
            half_bands: (sum + 2) / 4,
        }
    }

    /// The CEFR level this band is aligned with.
    pub fn cefr(self) -> CefrLevel {
        CefrLevel::from_band(self)
    }
}

/// The first day whose TOEFL iBT results are reported in bands.
pub const BANDS_SINCE: NaiveDate = match NaiveDate::from_ymd_opt(2026, 1, 21) {
    Some(date) => date,
    None => panic!("a valid date"),
};

/// The first day whose score reports no longer carry the comparable 0–120 total: two years after
/// [`BANDS_SINCE`].
pub const BANDS_ONLY_SINCE: NaiveDate = match NaiveDate::from_ymd_opt(2028, 1, 21) {
    Some(date) => date,
    None => panic!("a valid date"),
};

/// Which figures a TOEFL iBT score report carries, by the day the test was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScoreReport {
    /// Before [`BANDS_SINCE`]: four 0–30 section scores and their 0–120 total.
    SectionScores,
    /// From [`BANDS_SINCE`], for two years: four section bands, the overall band, and the comparable
    /// 0–120 total.
    BandsWithTotal,
    /// From [`BANDS_ONLY_SINCE`]: four section bands and the overall band.
    Bands,
}

impl ScoreReport {
    /// The report of a test taken on `day`.
    pub fn of_test_taken_on(day: NaiveDate) -> ScoreReport {
        if day < BANDS_SINCE {
            ScoreReport::SectionScores
        } else if day < BANDS_ONLY_SINCE {
            ScoreReport::BandsWithTotal
        } else {
            ScoreReport::Bands
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
        assert_eq!(CefrLevel::A1.toefl_totals(), 0..=19);
        assert_eq!(CefrLevel::B2.toefl_totals(), 72..=94);
        assert_eq!(CefrLevel::C2.toefl_totals(), 114..=120);
    }

    fn band(value: f64) -> Band {
        Band::new(value).unwrap_or_else(|| panic!("{value} is a band"))
    }

    #[test]
    fn bands_are_whole_or_half_between_one_and_six() {
        for value in [1.0, 1.5, 4.5, 6.0] {
            assert_eq!(band(value).value(), value);
        }
        for value in [4.25, 0.5, 6.5, 0.0, 3.1, f64::NAN, f64::INFINITY] {
            assert_eq!(Band::new(value), None, "{value}");
        }
    }

    #[test]
    fn the_overall_band_is_the_average_rounded_to_the_nearest_half_band() {
        let cases = [
            // Averages of 5.125 and 5.25: the examples ETS gives.
            ([5.0, 5.0, 5.0, 5.5], 5.0),
            ([5.0, 5.0, 5.5, 5.5], 5.5),
            ([5.0, 5.5, 5.5, 5.5], 5.5),
            ([5.5, 5.5, 5.5, 6.0], 5.5),
            ([5.5, 5.5, 6.0, 6.0], 6.0),
            ([1.0, 1.0, 1.0, 1.0], 1.0),
            ([6.0, 6.0, 6.0, 6.0], 6.0),
            ([1.0, 6.0, 1.0, 6.0], 3.5),
            ([2.0, 3.0, 4.0, 4.5], 3.5),
        ];
        for (sections, overall) in cases {
            assert_eq!(
                Band::overall(sections.map(band)),
                band(overall),
                "{sections:?}"
            );
        }
    }

    #[test]
    fn bands_map_to_cefr_levels() {
        let cases = [
            (1.0, CefrLevel::A1),
            (1.5, CefrLevel::A1),
            (2.0, CefrLevel::A2),
            (3.5, CefrLevel::B1),
            (4.0, CefrLevel::B2),
            (5.5, CefrLevel::C1),
            (6.0, CefrLevel::C2),
        ];
        for (value, level) in cases {
            assert_eq!(band(value).cefr(), level, "band {value}");
        }
        for level in CefrLevel::ALL {
            assert_eq!(level.lowest_band().cefr(), level);
        }
    }

    #[test]
    fn reports_carry_bands_from_21_january_2026_and_the_total_for_two_years() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let cases = [
            (day(2026, 1, 20), ScoreReport::SectionScores),
            (day(2026, 1, 21), ScoreReport::BandsWithTotal),
            (day(2028, 1, 20), ScoreReport::BandsWithTotal),
            (day(2028, 1, 21), ScoreReport::Bands),
        ];
        for (taken_on, report) in cases {
            assert_eq!(
                ScoreReport::of_test_taken_on(taken_on),
                report,
                "{taken_on}"
            );
        }
    }
}
