//! Retention in the style of restic's `forget`: which files of each series to keep. A file is kept
//! when any rule keeps it, and the newest file of each series always is.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDateTime};

use super::series::{BackupName, Series};

/// How many of each kind of period to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// The newest files.
    pub last: usize,
    /// Days.
    pub daily: usize,
    /// ISO weeks.
    pub weekly: usize,
    /// Calendar months.
    pub monthly: usize,
}

/// Which of `files` to keep under `policy`, in the same order.
pub fn plan(files: &[BackupName], policy: Policy) -> Vec<bool> {
    let mut keep = vec![false; files.len()];
    let mut series: BTreeMap<Series, Vec<usize>> = BTreeMap::new();
    for (i, file) in files.iter().enumerate() {
        series.entry(file.series).or_default().push(i);
    }
    for mut members in series.into_values() {
        // Newest first, the later `-N` of one second first too.
        members.sort_by_key(|&i| std::cmp::Reverse(files[i].order()));
        let newest_first: Vec<NaiveDateTime> = members.iter().map(|&i| files[i].taken_at).collect();
        for (position, kept) in keep_in_series(&newest_first, policy)
            .into_iter()
            .enumerate()
        {
            keep[members[position]] = kept;
        }
    }
    keep
}

/// Which of `times` (newest first) to keep under `policy`.
fn keep_in_series(times: &[NaiveDateTime], policy: Policy) -> Vec<bool> {
    type Period = fn(&NaiveDateTime) -> (i32, u32, u32);
    let rules: [(usize, Period); 3] = [
        (policy.daily, |t| (t.year(), t.month(), t.day())),
        (policy.weekly, |t| {
            let week = t.iso_week();
            (week.year(), week.week(), 0)
        }),
        (policy.monthly, |t| (t.year(), t.month(), 0)),
    ];
    let mut keep: Vec<bool> = (0..times.len()).map(|i| i < policy.last.max(1)).collect();
    for (count, period) in rules {
        let mut last_period = None;
        let mut periods_kept = 0;
        for (i, time) in times.iter().enumerate() {
            if periods_kept == count {
                break;
            }
            let this = period(time);
            if last_period != Some(this) {
                keep[i] = true;
                last_period = Some(this);
                periods_kept += 1;
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<BackupName> {
        names
            .iter()
            .map(|n| BackupName::parse(n).unwrap())
            .collect()
    }

    fn kept<'a>(names: &[&'a str], policy: Policy) -> Vec<&'a str> {
        let keep = plan(&files(names), policy);
        names
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(n, _)| *n)
            .collect()
    }

    const DAYS: &[&str] = &[
        "toefl_export_20260110_230000.json",
        "toefl_export_20260110_080000.json",
        "toefl_export_20260109_120000.json",
        "toefl_export_20260105_120000.json",
        "toefl_export_20260104_120000.json",
        "toefl_export_20251231_120000.json",
        "toefl_export_20251115_120000.json",
        "toefl_export_20251001_120000.json",
    ];

    #[test]
    fn rules_keep_what_restic_would() {
        let cases: [(Policy, &[&str]); 6] = [
            (
                Policy {
                    last: 2,
                    ..Policy::default()
                },
                &DAYS[..2],
            ),
            (
                // The newest file is always kept, even when no rule asks for it.
                Policy::default(),
                &DAYS[..1],
            ),
            (
                Policy {
                    last: 1,
                    daily: 3,
                    ..Policy::default()
                },
                &[DAYS[0], DAYS[2], DAYS[3]],
            ),
            (
                // 2026-01-10 and 2026-01-09 are ISO week 2, 2026-01-05 and 01-04 weeks 2 and 1,
                // 2025-12-31 is week 1 of 2026 too.
                Policy {
                    last: 1,
                    weekly: 2,
                    ..Policy::default()
                },
                &[DAYS[0], DAYS[4]],
            ),
            (
                Policy {
                    last: 1,
                    monthly: 3,
                    ..Policy::default()
                },
                &[DAYS[0], DAYS[5], DAYS[6]],
            ),
            (
                Policy {
                    last: 1,
                    daily: 100,
                    ..Policy::default()
                },
                &[
                    DAYS[0], DAYS[2], DAYS[3], DAYS[4], DAYS[5], DAYS[6], DAYS[7],
                ],
            ),
        ];
        for (policy, expected) in cases {
            assert_eq!(kept(DAYS, policy), expected, "{policy:?}");
        }
    }

    #[test]
    fn of_two_files_in_one_second_the_later_is_the_newer() {
        // Listed in directory order, which says nothing about which came first.
        let names = [
            "toefl_export_20260110_120000-2.json",
            "toefl_export_20260110_120000.json",
        ];
        let last = Policy {
            last: 1,
            ..Policy::default()
        };
        assert_eq!(kept(&names, last), ["toefl_export_20260110_120000-2.json"]);
        let reversed = [names[1], names[0]];
        assert_eq!(
            kept(&reversed, last),
            ["toefl_export_20260110_120000-2.json"]
        );
    }

    #[test]
    fn each_series_is_pruned_on_its_own() {
        let names = [
            "toefl_export_20260110_120000.json",
            "toefl_export_20260109_120000.json.gz",
            "toefl_backup_20260101_120000.db",
            "toefl_backup_20251201_120000.dump",
            "toefl_pre_import_20250101_120000.json",
        ];
        let policy = Policy {
            last: 1,
            ..Policy::default()
        };
        assert_eq!(
            kept(&names, policy),
            [names[0], names[2], names[4]],
            "the newest of each series stays"
        );
    }
}
