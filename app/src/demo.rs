//! Deterministic, realistic demo data: Brazilian students, teachers and classes, and TOEFL grades
//! whose figures and CEFR levels agree. Tests taken before 21 January 2026 have the 0–30 section
//! scores and their 0–120 total; later ones the 1–6 bands and the comparable 0–120 total, as ETS
//! reports them (see [`ScoreReport`]).
//!
//! Every row is derived from the seed and the row's id alone, so the same seed always gives the same
//! database, and a student's grade history can be generated twice (once to take the student's current
//! scores from the latest grade, once to write the grades) without holding it in memory.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};

use crate::db::Result;
use crate::domain::{Band, CefrLevel, GradeKind, Role, ScoreReport};
use crate::schema::{CLASSES, GRADES, STUDENTS, TEACHERS, USERS};
use crate::{Database, Table, Value};

const FIRST_NAMES: &[&str] = &[
    "João",
    "José",
    "Antônio",
    "Luís",
    "Sérgio",
    "Márcio",
    "Fábio",
    "Vinícius",
    "Caio",
    "Otávio",
    "Maria",
    "Ana",
    "Márcia",
    "Luíza",
    "Cecília",
    "Thaís",
    "Vitória",
    "Ângela",
    "Lúcia",
    "Júlia",
    "Letícia",
    "Mônica",
    "Patrícia",
    "Débora",
    "Bárbara",
    "Rafael",
    "Gustavo",
    "Heitor",
    "Íris",
    "Conceição",
];
const SURNAMES: &[&str] = &[
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Conceição",
    "Gonçalves",
    "Araújo",
    "Simões",
    "Magalhães",
    "Brandão",
    "Guimarães",
    "Assunção",
    "Pereira",
    "Fonseca",
    "Galvão",
    "Falcão",
    "Romão",
    "Leão",
    "Estêvão",
    "Nóbrega",
    "Cavalcânti",
    "Peçanha",
    "Gusmão",
    "Figueirêdo",
];
const SCHEDULES: &[&str] = &[
    "Seg/Qua 19:00–21:00",
    "Ter/Qui 18:30–20:30",
    "Sáb 09:00–12:00",
    "Seg/Qua/Sex 07:30–09:00",
];
const NOTES: &[&str] = &[
    "Precisa reforçar writing.",
    "Ótima evolução em listening.",
    "Vai prestar o TOEFL oficial em março.",
    "Bolsista — acompanhar frequência.",
    "Prefere aulas \"intensivas\" aos sábados.",
];
const COMMENTS: &[&str] = &[
    "Boa pronúncia; atenção à gramática.",
    "Melhorou bastante na leitura.",
    "Faltou tempo na seção de writing.",
    "Resultado consistente com o nível da turma.",
];

/// The demo data of one seed and size: how many rows of each kind, all derived from `seed`.
pub struct DemoData {
    seed: u64,
    students: u64,
    classes: u64,
    teachers: u64,
}

impl DemoData {
    /// The demo data for `students` students (and their grades, classes, teachers and users).
    pub fn new(students: u64, seed: u64) -> DemoData {
        let classes = students.div_ceil(25).max(1);
        DemoData {
            seed,
            students,
            classes,
            teachers: classes.div_ceil(3),
        }
    }

    fn rng(&self, stream: u64, id: u64) -> Rng {
        Rng::new(self.seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ id.rotate_left(32))
    }

    /// Inserts every row into `db`, whose tables must be empty; call inside a transaction.
    /// `progress` is told how many rows were written, now and then.
    pub fn write(&self, db: &mut Database, progress: &mut dyn FnMut(u64)) -> Result<()> {
        write_table(db, USERS, self.teachers + 3, |id| self.user(id), progress)?;
        write_table(db, TEACHERS, self.teachers, |id| self.teacher(id), progress)?;
        write_table(db, CLASSES, self.classes, |id| self.class(id), progress)?;
        write_table(db, STUDENTS, self.students, |id| self.student(id), progress)?;
        let mut writer = db.insert_rows(GRADES)?;
        let mut grade_id = 0;
        for student in 1..=self.students {
            let history = self.history(student);
            for grade in &history {
                grade_id += 1;
                writer.write(&grade.row(grade_id, student))?;
            }
            progress(history.len() as u64);
        }
        writer.finish()
    }

    /// Users 1..=3 are the admin and two staff; user `3 + n` is teacher `n`'s account.
    fn user(&self, id: u64) -> Vec<Value> {
        let mut rng = self.rng(1, id);
        let (role, name) = match id {
            1 => (Role::Admin, "Administração".to_string()),
            2 | 3 => (Role::Staff, person_name(&mut rng)),
            _ => (Role::Teacher, person_name(&mut self.rng(2, id - 3))),
        };
        let username = format!("{}.{id}", slug(&name));
        let last_login = rng.chance(0.8).then(|| timestamp(&mut rng, 400, 700));
        vec![
            Value::Integer(id as i64),
            Value::Text(username.clone()),
            Value::Text(format!("{username}@escola.example.com.br")),
            Value::Text(format!(
                "pbkdf2:sha256:600000${:016x}${:016x}{:016x}",
                rng.next(),
                rng.next(),
                rng.next()
            )),
            Value::Text(role.as_str().into()),
            Value::Boolean(!rng.chance(0.1)),
            Value::Timestamp(timestamp(&mut rng, 0, 60)),
            last_login.map_or(Value::Null, Value::Timestamp),
        ]
    }

    /// Teacher `n` has user account `3 + n`, except every fifth teacher, who has none.
    fn teacher(&self, id: u64) -> Vec<Value> {
        let mut rng = self.rng(2, id);
        let name = person_name(&mut rng);
        let user_id = (!id.is_multiple_of(5)).then(|| Value::Integer(id as i64 + 3));
        vec![
            Value::Integer(id as i64),
            user_id.unwrap_or(Value::Null),
            Value::Text(name.clone()),
            if rng.chance(0.9) {
                Value::Text(format!("{}@escola.example.com.br", slug(&name)))
            } else {
                Value::Null
            },
            if rng.chance(0.7) {
                Value::Text(format!(
                    "+55 11 9{:04}-{:04}",
                    rng.below(10_000),
                    rng.below(10_000)
                ))
            } else {
                Value::Null
            },
            Value::Timestamp(timestamp(&mut rng, 10, 60)),
        ]
    }

    fn class(&self, id: u64) -> Vec<Value> {
        let mut rng = self.rng(3, id);
        let target = CefrLevel::ALL[1 + rng.below(5) as usize];
        let starts = date(2024, 2, 1) + Duration::days(7 * rng.below(80) as i64);
        let ends = starts + Duration::days(7 * (12 + rng.below(30)) as i64);
        vec![
            Value::Integer(id as i64),
            Value::Text(format!("Turma {id:03} — TOEFL {}", target.as_str())),
            if rng.chance(0.95) {
                Value::Integer(1 + ((id - 1) % self.teachers) as i64)
            } else {
                Value::Null
            },
            Value::Text(target.as_str().into()),
            Value::Text(rng.pick(SCHEDULES).to_string()),
            Value::Date(starts),
            if rng.chance(0.9) {
                Value::Date(ends)
            } else {
                Value::Null
            },
            Value::Timestamp(timestamp(&mut rng, 20, 90)),
        ]
    }

    fn student(&self, id: u64) -> Vec<Value> {
        let mut rng = self.rng(4, id);
        let name = person_name(&mut rng);
        let history = self.history(id);
        let latest = history.last();
        // A student is registered before their first test.
        let created_at = match history.first() {
            Some(first) => first.created_at - Duration::microseconds(rng.below(30 * DAY) as i64),
            None => timestamp(&mut rng, 30, 400),
        };
        let mut row = vec![
            Value::Integer(id as i64),
            Value::Text(name.clone()),
            if rng.chance(0.85) {
                Value::Text(format!("{}.{id}@aluno.example.com.br", slug(&name)))
            } else {
                Value::Null
            },
            if rng.chance(0.97) {
                Value::Integer(1 + ((id - 1) % self.classes) as i64)
            } else {
                Value::Null
            },
        ];
        // The student's current figures are those of the latest grade that has any.
        let current = history.iter().rev().find_map(|g| g.report);
        row.extend(Report::score_values(current.as_ref()));
        row.push(if rng.chance(0.2) {
            Value::Text(rng.pick(NOTES).to_string())
        } else {
            Value::Null
        });
        row.push(Value::Timestamp(created_at));
        row.push(match latest {
            Some(grade) => Value::Timestamp(grade.created_at),
            None => Value::Null,
        });
        row.extend(Report::band_values(current.as_ref()));
        row
    }

    /// The grades of student `id`, oldest first: a placement test, mocks, and sometimes official
    /// results, with scores that improve over time, taken from March 2024 to October 2026. One
    /// student in twenty has none yet.
    fn history(&self, id: u64) -> Vec<Grade> {
        let mut rng = self.rng(5, id);
        if rng.chance(0.05) {
            return Vec::new();
        }
        let ability: [i64; 4] = std::array::from_fn(|_| 4 + rng.below(20) as i64);
        let mocks = 5 + rng.below(7);
        let officials = rng.below(3);
        let mut day = date(2024, 3, 1) + Duration::days(rng.below(900) as i64);
        let last_day = date(2026, 10, 31);
        let mut grades = Vec::new();
        for test in 0..1 + mocks + officials {
            if day > last_day {
                break;
            }
            let kind = match test {
                0 => GradeKind::Placement,
                t if t <= mocks => GradeKind::Mock,
                _ => GradeKind::Official,
            };
            let progress = test as i64 / 2;
            let scores = (kind != GradeKind::Mock || !rng.chance(0.1))
                .then(|| ability.map(|a| (a + progress + rng.below(5) as i64 - 2).clamp(0, 30)));
            let percentile = match (kind, scores) {
                (GradeKind::Official, Some(s)) => {
                    let total: i64 = s.iter().sum();
                    Some(((total as f64 / 120.0 * 1000.0).round() / 10.0).min(99.9))
                }
                (_, Some(_)) if rng.chance(0.5) => Some(rng.below(1000) as f64 / 10.0),
                _ => None,
            };
            let created_at = Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN))
                + Duration::hours(10)
                + Duration::microseconds(rng.below(8 * 3_600_000_000) as i64);
            grades.push(Grade {
                taken_on: day,
                kind,
                report: scores.map(|scores| Report::of_test(day, scores)),
                percentile,
                comment: rng.chance(0.3).then(|| rng.pick(COMMENTS)),
                created_at,
            });
            day += Duration::days(7 + rng.below(21) as i64);
        }
        grades
    }
}

fn write_table(
    db: &mut Database,
    table: &'static Table,
    rows: u64,
    row: impl Fn(u64) -> Vec<Value>,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let mut writer = db.insert_rows(table)?;
    for id in 1..=rows {
        writer.write(&row(id))?;
        progress(1);
    }
    writer.finish()
}

/// One generated grade.
struct Grade {
    taken_on: NaiveDate,
    kind: GradeKind,
    /// The score report; `None` for a mock test left unfinished.
    report: Option<Report>,
    percentile: Option<f64>,
    comment: Option<&'static str>,
    created_at: DateTime<Utc>,
}

impl Grade {
    fn row(&self, id: u64, student_id: u64) -> Vec<Value> {
        let mut row = vec![
            Value::Integer(id as i64),
            Value::Integer(student_id as i64),
            Value::Date(self.taken_on),
            Value::Text(self.kind.as_str().into()),
        ];
        row.extend(Report::score_values(self.report.as_ref()));
        row.push(self.percentile.map_or(Value::Null, Value::Real));
        row.push(self.comment.map_or(Value::Null, |c| Value::Text(c.into())));
        row.push(Value::Timestamp(self.created_at));
        row.extend(Report::band_values(self.report.as_ref()));
        row
    }
}

/// The figures of one score report, all consistent.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Report {
    /// The 0–30 reading, listening, speaking and writing scores.
    sections: Option<[i64; 4]>,
    /// The 0–120 total: the section scores' sum, or a band report's comparable total.
    total: Option<i64>,
    /// The four section bands and the overall band.
    bands: Option<([Band; 4], Band)>,
    level: CefrLevel,
}

impl Report {
    /// The report of a test taken on `day` by a student whose performance, on the 0–30 scale of each
    /// section, was `scores`: the scale that ETS reported on that day.
    fn of_test(day: NaiveDate, scores: [i64; 4]) -> Report {
        let sum: i64 = scores.iter().sum();
        let report = ScoreReport::of_test_taken_on(day);
        if report == ScoreReport::SectionScores {
            return Report {
                sections: Some(scores),
                total: Some(sum),
                bands: None,
                level: CefrLevel::from_toefl_total(sum),
            };
        }
        let sections = scores.map(section_band);
        let overall = Band::overall(sections);
        let level = overall.cefr();
        // The comparable total stays within the overall band's CEFR level, as one report's do.
        let totals = level.toefl_totals();
        Report {
            sections: None,
            total: (report == ScoreReport::BandsWithTotal)
                .then(|| sum.clamp(*totals.start(), *totals.end())),
            bands: Some((sections, overall)),
            level,
        }
    }

    /// The values of the section scores, the total and the CEFR level, in column order.
    fn score_values(report: Option<&Report>) -> Vec<Value> {
        let Some(report) = report else {
            return vec![Value::Null; 6];
        };
        let mut values: Vec<Value> = match report.sections {
            Some(sections) => sections.map(Value::Integer).to_vec(),
            None => vec![Value::Null; 4],
        };
        values.push(report.total.map_or(Value::Null, Value::Integer));
        values.push(Value::Text(report.level.as_str().into()));
        values
    }

    /// The values of the four section bands and the overall band, in column order.
    fn band_values(report: Option<&Report>) -> Vec<Value> {
        match report.and_then(|r| r.bands) {
            Some((sections, overall)) => sections
                .iter()
                .chain([&overall])
                .map(|band| Value::Real(band.value()))
                .collect(),
            None => vec![Value::Null; 5],
        }
    }
}

/// The band of a 0–30 section score, for the demo: four times the score, read as a 0–120 total, has
/// a CEFR level; the band is that level's, plus a half band in the upper half of the level's range.
fn section_band(score: i64) -> Band {
    let equivalent = 4 * score;
    let level = CefrLevel::from_toefl_total(equivalent);
    let totals = level.toefl_totals();
    let upper_half = level != CefrLevel::C2 && 2 * equivalent > totals.start() + totals.end();
    let half = if upper_half { Band::STEP } else { 0.0 };
    Band::new(level.lowest_band().value() + half).expect("a whole or half band below 6")
}

fn person_name(rng: &mut Rng) -> String {
    format!(
        "{} {} {}",
        rng.pick(FIRST_NAMES),
        rng.pick(SURNAMES),
        rng.pick(SURNAMES)
    )
}

/// `name` in lower-case ASCII, words joined by dots, for usernames and e-mail addresses.
fn slug(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'Á' | 'Â' | 'Ã' => 'a',
            'é' | 'ê' | 'É' | 'Ê' => 'e',
            'í' | 'Í' => 'i',
            'ó' | 'ô' | 'õ' | 'Ó' | 'Ô' => 'o',
            'ú' | 'ü' | 'Ú' => 'u',
            'ç' | 'Ç' => 'c',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    ascii
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid date")
}

/// A day in microseconds.
const DAY: u64 = 86_400_000_000;

/// A moment between `from_day` and `to_day` days after 2024-01-01, with microseconds.
fn timestamp(rng: &mut Rng, from_day: u64, to_day: u64) -> DateTime<Utc> {
    let start = Utc.from_utc_datetime(&date(2024, 1, 1).and_time(NaiveTime::MIN));
    start + Duration::microseconds((from_day * DAY + rng.below((to_day - from_day) * DAY)) as i64)
}

/// SplitMix64: small, fast and the same on every platform, which is all demo data needs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::RowChecker;

    #[test]
    fn slugs_are_ascii() {
        assert_eq!(slug("Ângela Conceição Simões"), "angela.conceicao.simoes");
    }

    #[test]
    fn every_row_passes_the_schemas_checks() {
        let demo = DemoData::new(200, 7);
        let mut rows: Vec<(&Table, Vec<Value>)> = vec![
            (USERS, demo.user(4)),
            (TEACHERS, demo.teacher(1)),
            (CLASSES, demo.class(2)),
        ];
        for student in 1..=demo.students {
            rows.push((STUDENTS, demo.student(student)));
            for (i, grade) in demo.history(student).iter().enumerate() {
                rows.push((GRADES, grade.row(i as u64 + 1, student)));
            }
        }
        for (table, row) in rows {
            assert_eq!(row.len(), table.columns.len(), "{}", table.name);
            for (value, column) in row.iter().zip(table.columns) {
                assert!(column.ty.admits(value), "{}.{}", table.name, column.name);
                let allowed = column.check.is_none_or(|check| check.allows(value));
                assert!(allowed, "{}.{} {value:?}", table.name, column.name);
            }
            let broken = RowChecker::new(table).first_broken(&row);
            assert_eq!(broken, None, "{} {row:?}", table.name);
        }
    }

    #[test]
    fn tests_from_21_january_2026_have_bands_and_earlier_ones_section_scores() {
        let demo = DemoData::new(200, 7);
        let mut reports = std::collections::HashMap::new();
        for student in 1..=demo.students {
            for grade in demo.history(student) {
                let Some(report) = grade.report else { continue };
                let kind = ScoreReport::of_test_taken_on(grade.taken_on);
                *reports.entry(kind).or_insert(0) += 1;
                let total = report.total.expect("every report until 2028 has a total");
                assert_eq!(CefrLevel::from_toefl_total(total), report.level);
                match kind {
                    ScoreReport::SectionScores => {
                        assert_eq!(report.bands, None);
                        let sections = report.sections.expect("section scores");
                        assert_eq!(sections.iter().sum::<i64>(), total);
                    }
                    _ => {
                        assert_eq!(report.sections, None, "{}", grade.taken_on);
                        let (sections, overall) = report.bands.expect("bands");
                        assert_eq!(Band::overall(sections), overall);
                        assert_eq!(overall.cefr(), report.level);
                    }
                }
            }
        }
        let all: i32 = reports.values().sum();
        assert!(
            reports[&ScoreReport::SectionScores] > all / 4,
            "{reports:?}"
        );
        assert!(
            reports[&ScoreReport::BandsWithTotal] > all / 4,
            "{reports:?}"
        );
    }

    #[test]
    fn reports_after_the_overlap_carry_bands_only() {
        let day = NaiveDate::from_ymd_opt(2028, 3, 1).unwrap();
        let report = Report::of_test(day, [20, 25, 12, 30]);
        assert_eq!(report.total, None);
        assert_eq!(report.sections, None);
        let (_, overall) = report.bands.expect("bands");
        assert_eq!(overall.cefr(), report.level);
    }
}
