//! One column value, typed as the schema says, and the canonical text forms of dates and timestamps.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use std::fmt::Write as _;

/// A value of one of the schema's column types, or NULL.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer column's value.
    Integer(i64),
    /// A real column's value.
    Real(f64),
    /// A text column's value.
    Text(String),
    /// A boolean column's value.
    Boolean(bool),
    /// A date column's value.
    Date(NaiveDate),
    /// A timestamp column's value, in UTC with microsecond precision.
    Timestamp(DateTime<Utc>),
}

impl Value {
    /// Makes this value `text`, written into the string it holds if it holds one: a buffer of rows
    /// filled again and again then allocates only while its strings grow.
    pub fn set_text(&mut self, text: &str) {
        match self {
            Value::Text(string) => {
                string.clear();
                string.push_str(text);
            }
            other => *other = Value::Text(text.to_owned()),
        }
    }

    /// Makes this value a copy of `source`, reusing the string it holds, as [`Value::set_text`].
    pub fn set(&mut self, source: &Value) {
        match source {
            Value::Text(text) => self.set_text(text),
            other => *self = other.clone(),
        }
    }
}

/// Appends `date` as `YYYY-MM-DD`.
pub fn write_date(out: &mut String, date: NaiveDate) {
    let year = date.year();
    if !(0..=9999).contains(&year) {
        // Beyond four digits (a PostgreSQL date can be): not a form this app stores or exports.
        let _ = write!(out, "{year:04}-{:02}-{:02}", date.month(), date.day());
        return;
    }
    // Digit by digit: this runs for every date of every export and import.
    push_digits(out, year as u32, 4);
    out.push('-');
    push_digits(out, date.month(), 2);
    out.push('-');
    push_digits(out, date.day(), 2);
}

/// Appends `time` as `YYYY-MM-DD<separator>HH:MM:SS.ffffff`: `' '` for SQLite's storage, `'T'` (and a
/// trailing `Z` added by the caller) for the export format.
pub fn write_timestamp(out: &mut String, time: &DateTime<Utc>, separator: char) {
    write_date(out, time.date_naive());
    out.push(separator);
    push_digits(out, time.hour(), 2);
    out.push(':');
    push_digits(out, time.minute(), 2);
    out.push(':');
    push_digits(out, time.second(), 2);
    out.push('.');
    match time.nanosecond() / 1000 {
        // A leap second, which chrono counts past 999,999 microseconds.
        leap @ 1_000_000.. => {
            let _ = write!(out, "{leap}");
        }
        micros => push_digits(out, micros, 6),
    }
}

/// Appends the last `width` decimal digits of `n`, with leading zeros.
fn push_digits(out: &mut String, n: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = n / 10u32.pow(place) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(
        i32::try_from(digits(&b[0..4])?).ok()?,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    )
}

/// Parses `YYYY-MM-DD HH:MM:SS.ffffff` (or with `T` between date and time), optionally followed by
/// `Z`, as a UTC instant. Exactly six fractional digits: the one form this app stores and exports.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let b = text.as_bytes();
    if b.len() != 26 || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[19] != b'.' {
        return None;
    }
    let date = parse_date(&text[..10])?;
    let time = NaiveTime::from_hms_micro_opt(
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
        digits(&b[20..26])?,
    )?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_with_microseconds() {
        let text = "2024-02-29T23:59:59.000001Z";
        let parsed = parse_timestamp(text).unwrap();
        let mut out = String::new();
        write_timestamp(&mut out, &parsed, 'T');
        out.push('Z');
        assert_eq!(out, text);
        assert_eq!(
            parse_timestamp("2024-02-29 23:59:59.000001"),
            Some(parsed),
            "SQLite's stored form"
        );
    }

    #[test]
    fn a_text_set_over_a_text_reuses_its_string() {
        let mut value = Value::Text(String::with_capacity(64));
        let Value::Text(before) = &value else {
            unreachable!()
        };
        let before = before.as_ptr();
        value.set(&Value::Text("B2".into()));
        assert_eq!(value, Value::Text("B2".into()));
        let Value::Text(after) = &value else {
            unreachable!()
        };
        assert_eq!(after.as_ptr(), before, "the same allocation");
        value.set(&Value::Integer(3));
        assert_eq!(value, Value::Integer(3));
        value.set_text("C1");
        assert_eq!(value, Value::Text("C1".into()));
    }

    #[test]
    fn dates_are_written_with_four_digit_years_when_they_have_them() {
        let mut out = String::new();
        write_date(&mut out, NaiveDate::from_ymd_opt(7, 3, 9).unwrap());
        out.push(' ');
        write_date(&mut out, NaiveDate::from_ymd_opt(12345, 12, 31).unwrap());
        assert_eq!(out, "0007-03-09 12345-12-31");
    }

    #[test]
    fn malformed_dates_and_timestamps_are_rejected() {
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "20240101",
            "2024-01-0x",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        for bad in [
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.123Z",
            "2024-01-01T24:00:00.000000Z",
            "2024-01-01X00:00:00.000000Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }
}
