//! Reads a JSON file through a window of bytes that moves forward: the structure around the rows
//! (objects, arrays, keys) is read token by token here, and each whole value, a row for one, is
//! handed out as one piece of text for serde_json to parse, which it does several times faster from
//! a string than byte by byte from a reader. Only the current value needs to be in memory.

use std::io::{self, Read};

/// How much is read from the file at a time.
const READ_SIZE: usize = 1 << 17;

/// How far a value is looked for as the rest of its line; a longer value is delimited byte by byte.
const LONGEST_LINE: usize = 1 << 20;

/// A JSON text being read; positions in errors are lines and columns (of bytes) from 1, as
/// serde_json gives them.
pub struct Scanner<R> {
    reader: R,
    buffer: Vec<u8>,
    /// The bytes not consumed yet are `buffer[start..end]`.
    start: usize,
    end: usize,
    at_eof: bool,
    /// The line of `buffer[start]`, and the offsets in the file of that line's start and of
    /// `buffer[start]`.
    line: u64,
    line_start: u64,
    offset: u64,
}

/// Why the text could not be read: a message that ends with where in the file.
pub type ScanError = String;

impl<R: Read> Scanner<R> {
    /// Starts at the beginning of `reader`.
    pub fn new(reader: R) -> Scanner<R> {
        Scanner {
            reader,
            buffer: Vec::new(),
            start: 0,
            end: 0,
            at_eof: false,
            line: 1,
            line_start: 0,
            offset: 0,
        }
    }

    /// `message`, at the current position.
    pub fn error(&self, message: impl std::fmt::Display) -> ScanError {
        let (line, column) = self.position();
        format!("{message} at line {line} column {column}")
    }

    /// The line and column of the next byte.
    pub fn position(&self) -> (u64, u64) {
        (self.line, self.offset - self.line_start + 1)
    }

    /// The next byte that is not whitespace (whitespace before it is consumed); `None` at the end.
    pub fn peek(&mut self) -> Result<Option<u8>, ScanError> {
        loop {
            while self.start < self.end {
                match self.buffer[self.start] {
                    b' ' | b'\t' | b'\r' | b'\n' => self.consume(1),
                    byte => return Ok(Some(byte)),
                }
            }
            if !self.fill(1)? {
                return Ok(None);
            }
        }
    }

    /// Consumes `byte`, the next one that is not whitespace, or fails saying that `what` was
    /// expected.
    pub fn expect(&mut self, byte: u8, what: &str) -> Result<(), ScanError> {
        match self.peek()? {
            Some(found) if found == byte => {
                self.consume(1);
                Ok(())
            }
            Some(_) => Err(self.error(format!("expected {what}"))),
            None => Err(self.error(format!("EOF while parsing: expected {what}"))),
        }
    }

    /// Consumes `,` before a member or element other than the first, then tells whether one
    /// follows, consuming `close` if not.
    pub fn next_item(&mut self, first: bool, close: u8) -> Result<bool, ScanError> {
        let close = close as char;
        match self.peek()? {
            Some(byte) if byte as char == close => {
                self.consume(1);
                return Ok(false);
            }
            Some(b',') if !first => self.consume(1),
            Some(_) if !first => return Err(self.error(format!("expected `,` or `{close}`"))),
            _ => {}
        }
        match self.peek()? {
            Some(_) => Ok(true),
            None => Err(self.error(format!("EOF while parsing: expected `{close}`"))),
        }
    }

    /// The whole JSON value that comes next, not consumed: its bytes stay in the window until
    /// [`Scanner::consume`]. `what` names it in errors.
    pub fn value(&mut self, what: &str) -> Result<&[u8], ScanError> {
        if self.peek()?.is_none() {
            return Err(self.error(format!("EOF while parsing: expected {what}")));
        }
        let mut extent = Extent::default();
        loop {
            if let Some(length) = extent.scan(&self.buffer[self.start..self.end]) {
                return Ok(&self.buffer[self.start..self.start + length]);
            }
            let available = self.end - self.start;
            if !self.fill(available + 1)? {
                if extent.is_scalar() {
                    return Ok(&self.buffer[self.start..self.end]);
                }
                return Err(self.error(format!("EOF while parsing {what} that starts")));
            }
        }
    }

    /// Parses the next value with `parse`, given its text, and consumes it. The value is tried first
    /// as the rest of its line, up to a comma, as every row of an export is: then only a newline
    /// has to be looked for. Only if that text does not parse is the value's extent found byte by
    /// byte, and parsed again, for the error to be the value's own.
    pub fn parse_next<T>(
        &mut self,
        what: &str,
        mut parse: impl FnMut(&str) -> Result<T, serde_json::Error>,
    ) -> Result<T, ScanError> {
        if let Some(length) = self.rest_of_line()? {
            let line = &self.buffer[self.start..self.start + length];
            if let Some(value) = std::str::from_utf8(line).ok().and_then(|t| parse(t).ok()) {
                // Within one line: no newline to count.
                self.start += length;
                self.offset += length as u64;
                return Ok(value);
            }
        }
        let bytes = self.value(what)?;
        let length = bytes.len();
        let parsed = match std::str::from_utf8(bytes) {
            Ok(text) => parse(text),
            Err(error) => return Err(self.error(format!("{what} is not valid UTF-8 ({error})"))),
        };
        match parsed {
            Ok(value) => {
                self.consume(length);
                Ok(value)
            }
            Err(error) => Err(self.error_within(&error)),
        }
    }

    /// Parses the next value (a key, a header field) as a `T`, and consumes it.
    pub fn parse<T: serde::de::DeserializeOwned>(&mut self, what: &str) -> Result<T, ScanError> {
        self.parse_next(what, |text| serde_json::from_str(text))
    }

    /// The length of what is left of the current line, without the whitespace and the one comma it
    /// ends with; `None` when the line is longer than [`LONGEST_LINE`].
    fn rest_of_line(&mut self) -> Result<Option<usize>, ScanError> {
        let mut searched = 0;
        let end = loop {
            let window = &self.buffer[self.start..self.end];
            if let Some(at) = memchr::memchr(b'\n', &window[searched..]) {
                break searched + at;
            }
            searched = window.len();
            if searched > LONGEST_LINE {
                return Ok(None);
            }
            if !self.fill(searched + 1)? {
                break searched;
            }
        };
        let line = &self.buffer[self.start..self.start + end];
        let line = line.trim_ascii_end();
        Ok(Some(line.strip_suffix(b",").unwrap_or(line).len()))
    }

    /// serde_json's `error`, met in the value that starts at the current position, at its place in
    /// the file.
    pub fn error_within(&self, error: &serde_json::Error) -> ScanError {
        let text = error.to_string();
        let message = match text.rsplit_once(" at line ") {
            Some((message, _)) if error.line() > 0 => message,
            _ => &text,
        };
        let (line, column) = self.position();
        let (line, column) = match error.line() as u64 {
            0 | 1 => (line, column + (error.column() as u64).saturating_sub(1)),
            more => (line + more - 1, error.column() as u64),
        };
        format!("{message} at line {line} column {column}")
    }

    /// Consumes `length` bytes of the window.
    pub fn consume(&mut self, length: usize) {
        let consumed = &self.buffer[self.start..self.start + length];
        let newlines = consumed.iter().filter(|&&b| b == b'\n').count();
        if newlines > 0 {
            let last = consumed.iter().rposition(|&b| b == b'\n').unwrap_or(0);
            self.line += newlines as u64;
            self.line_start = self.offset + last as u64 + 1;
        }
        self.start += length;
        self.offset += length as u64;
    }

    /// Makes at least `wanted` bytes available in the window, reading more of the file as needed;
    /// `false` when the file ends first.
    fn fill(&mut self, wanted: usize) -> Result<bool, ScanError> {
        while self.end - self.start < wanted && !self.at_eof {
            if self.start > 0 {
                self.buffer.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let room = wanted.max(self.end + READ_SIZE);
            if self.buffer.len() < room {
                self.buffer.resize(room, 0);
            }
            match self.reader.read(&mut self.buffer[self.end..]) {
                Ok(0) => self.at_eof = true,
                Ok(read) => self.end += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(self.error(format!("cannot read the file ({error})"))),
            }
        }
        Ok(self.end - self.start >= wanted)
    }
}

/// How far a value's scan got: enough to go on where it stopped once more bytes are there.
#[derive(Default)]
struct Extent {
    scanned: usize,
    depth: usize,
    in_string: bool,
    kind: Option<u8>,
}

impl Extent {
    fn is_scalar(&self) -> bool {
        !matches!(self.kind, Some(b'{' | b'[' | b'"'))
    }

    /// The length of the value at the start of `bytes`, if it ends in them. Strings are skipped
    /// whole (escapes included); nesting is counted; anything else ends at a delimiter. What the
    /// bytes mean is left to serde_json.
    fn scan(&mut self, bytes: &[u8]) -> Option<usize> {
        let kind = *self.kind.get_or_insert(bytes[0]);
        let mut i = self.scanned;
        let found = loop {
            if self.in_string {
                match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                    None => {
                        i = bytes.len();
                        break None;
                    }
                    Some(at) if bytes[i + at] == b'\\' => {
                        if i + at + 1 >= bytes.len() {
                            i += at;
                            break None;
                        }
                        i += at + 2;
                    }
                    Some(at) => {
                        i += at + 1;
                        self.in_string = false;
                        if self.depth == 0 {
                            break Some(i);
                        }
                    }
                }
                continue;
            }
            let Some(&byte) = bytes.get(i) else {
                break None;
            };
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' if kind == b'{' || kind == b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        break Some(i + 1);
                    }
                }
                b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n' if self.depth == 0 => {
                    break Some(i);
                }
                _ => {}
            }
            i += 1;
        };
        self.scanned = i;
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of a JSON array, as the scanner hands them out, read through a reader that gives
    /// `step` bytes at a time.
    fn values(text: &str, step: usize) -> Vec<String> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.1.min(self.0.len()).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut scanner = Scanner::new(Trickle(text.as_bytes(), step));
        scanner.expect(b'[', "`[`").unwrap();
        let mut values = Vec::new();
        let mut first = true;
        while scanner.next_item(first, b']').unwrap() {
            first = false;
            let value = scanner.value("a value").unwrap();
            let length = value.len();
            values.push(String::from_utf8(value.to_vec()).unwrap());
            scanner.consume(length);
        }
        values
    }

    #[test]
    fn values_are_handed_out_whole_however_the_file_is_read() {
        let text = r#"[ {"a":"}\"{","b":[1,{"c":2}]}, "x\\", 12.5e3 ,null,
            [], {}, true]"#;
        let expected = [
            r#"{"a":"}\"{","b":[1,{"c":2}]}"#,
            r#""x\\""#,
            "12.5e3",
            "null",
            "[]",
            "{}",
            "true",
        ];
        for step in [1, 2, 3, 7, 1000] {
            assert_eq!(values(text, step), expected, "read {step} bytes at a time");
        }
    }

    #[test]
    fn errors_say_where_in_the_file() {
        let mut scanner = Scanner::new("[\n  {\"a\": 1}\n  ;".as_bytes());
        scanner.expect(b'[', "`[`").unwrap();
        assert!(scanner.next_item(true, b']').unwrap());
        let length = scanner.value("a row").unwrap().len();
        scanner.consume(length);
        let error = scanner.next_item(false, b']').unwrap_err();
        assert_eq!(error, "expected `,` or `]` at line 3 column 3");

        let mut truncated = Scanner::new("[{\"a\": \"b".as_bytes());
        truncated.expect(b'[', "`[`").unwrap();
        let error = truncated.value("a row").unwrap_err();
        assert_eq!(
            error,
            "EOF while parsing a row that starts at line 1 column 2"
        );

        let bad: Result<serde_json::Value, _> = serde_json::from_slice(b"{\n\"a\" 1}");
        let mut scanner = Scanner::new("\n  x".as_bytes());
        scanner.peek().unwrap();
        let error = scanner.error_within(&bad.unwrap_err());
        assert_eq!(error, "expected `:` at line 3 column 5");
    }
}
