//! `.properties` files, as `java.util.Properties.load` reads them.

use std::fmt;

/// One `name=value` entry of a `.properties` text. Its `Debug` hides the value, which may be a
/// secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub value: String,
    /// The 1-based line where the entry starts (its first character).
    pub line: usize,
}

impl fmt::Debug for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Property({} = *** at line {})", self.name, self.line)
    }
}

/// `s` without what Java's `String.trim` removes (every character up to U+0020 at either end),
/// as Kafka's `ConfigDef` trims a value read from a properties file.
pub fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// A `.properties` text Java would refuse (only a malformed `\uXXXX` escape does that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertiesError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for PropertiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for PropertiesError {}

/// Reads `text` as `java.util.Properties.load(Reader)` does. Every entry is returned in order,
/// a name given twice included (Java keeps the last one): the caller decides. Values keep their
/// trailing whitespace, as in Java (Kafka's `ConfigDef` trims most values afterwards). Kafka's
/// own tools read a file with `load(InputStream)`, as ISO-8859-1: for ASCII files, the same.
pub fn parse_properties(text: &str) -> Result<Vec<Property>, PropertiesError> {
    let mut reader = LineReader::new(text);
    let mut out = Vec::new();
    while let Some((logical, line)) = reader.read_line() {
        let (name, value) = split_entry(&logical);
        let error = |part: &str, reason: &str| PropertiesError {
            line,
            reason: format!("{reason} in the {part}"),
        };
        // Java converts the name first: its error wins.
        let name = unescape(name).map_err(|reason| error("name", reason))?;
        let value = unescape(value).map_err(|reason| error("value", reason))?;
        out.push(Property { name, value, line });
    }
    Ok(out)
}

/// Java's `Properties.LineReader`: joins continued lines, drops comments, blank lines and the
/// leading whitespace of each natural line. Escapes stay as they are (`unescape` reads them).
struct LineReader<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    /// The physical line of the next character, 1-based.
    line: usize,
    /// The last character read was `\r`: a `\n` right after it ends no further line.
    after_cr: bool,
}

impl<'a> LineReader<'a> {
    fn new(text: &'a str) -> Self {
        LineReader {
            chars: text.chars().peekable(),
            line: 1,
            after_cr: false,
        }
    }

    /// The next character and the line it is on.
    fn next(&mut self) -> Option<(char, usize)> {
        let c = self.chars.next()?;
        let line = self.line;
        if c == '\r' || (c == '\n' && !self.after_cr) {
            self.line += 1;
        }
        self.after_cr = c == '\r';
        Some((c, line))
    }

    /// The next logical line and the line its first character is on; None at the end.
    fn read_line(&mut self) -> Option<(Vec<char>, usize)> {
        let mut buf: Vec<char> = Vec::new();
        let mut start = self.line;
        let mut skip_whitespace = true;
        // Right after a continuation: there a line break ends the logical line, where at the
        // start of one it is just a blank line.
        let mut appended_line_begin = false;
        let mut preceding_backslash = false;
        loop {
            let Some((c, line)) = self.next() else {
                if buf.is_empty() {
                    return None;
                }
                // A backslash at the very end continues nothing and is dropped. (A line of a
                // lone `\` thus gives an entry with an empty name and value, as in Java.)
                if preceding_backslash {
                    buf.pop();
                }
                return Some((buf, start));
            };
            if skip_whitespace {
                if matches!(c, ' ' | '\t' | '\x0c') {
                    continue;
                }
                if !appended_line_begin && matches!(c, '\r' | '\n') {
                    continue;
                }
                skip_whitespace = false;
                appended_line_begin = false;
            }
            // Java looks for a comment whenever nothing is buffered, so also on the line after
            // a continued lone `\` (whose buffer the continuation emptied).
            if buf.is_empty() && (c == '#' || c == '!') {
                loop {
                    match self.next() {
                        None => return None,
                        Some(('\r' | '\n', _)) => break,
                        Some(_) => {}
                    }
                }
                skip_whitespace = true;
                continue;
            }
            if c != '\n' && c != '\r' {
                if buf.is_empty() {
                    start = line;
                }
                buf.push(c);
                preceding_backslash = c == '\\' && !preceding_backslash;
                continue;
            }
            // A line break.
            if buf.is_empty() {
                skip_whitespace = true;
                continue;
            }
            if self.chars.peek().is_none() {
                if preceding_backslash {
                    buf.pop();
                }
                return Some((buf, start));
            }
            if !preceding_backslash {
                return Some((buf, start));
            }
            // An odd number of backslashes continues the line: drop the last one, skip the
            // next line's leading whitespace.
            buf.pop();
            skip_whitespace = true;
            appended_line_begin = true;
            preceding_backslash = false;
            if c == '\r' && self.chars.peek() == Some(&'\n') {
                self.next();
            }
        }
    }
}

/// Splits a logical line into its escaped name and value, as `Properties.load0`: the name ends
/// at the first unescaped `=`, `:`, space, tab or form feed; whitespace around the separator and
/// one `=` or `:` after whitespace are skipped.
fn split_entry(line: &[char]) -> (&[char], &[char]) {
    let mut name_len = 0;
    let mut value_start = line.len();
    let mut has_separator = false;
    let mut preceding_backslash = false;
    while let Some(&c) = line.get(name_len) {
        if !preceding_backslash {
            if c == '=' || c == ':' {
                value_start = name_len + 1;
                has_separator = true;
                break;
            }
            if matches!(c, ' ' | '\t' | '\x0c') {
                value_start = name_len + 1;
                break;
            }
        }
        preceding_backslash = c == '\\' && !preceding_backslash;
        name_len += 1;
    }
    while let Some(&c) = line.get(value_start) {
        if !matches!(c, ' ' | '\t' | '\x0c') {
            if !has_separator && (c == '=' || c == ':') {
                has_separator = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    (&line[..name_len], line.get(value_start..).unwrap_or(&[]))
}

/// Java's `Properties.loadConvert`: `\t \n \r \f`, `\uXXXX` (a UTF-16 unit: two of them may
/// make one character), and `\x` for any other x is x.
fn unescape(s: &[char]) -> Result<String, &'static str> {
    const MALFORMED: &str = "malformed \\uXXXX escape (expected four hex digits after \\u)";
    if !s.contains(&'\\') {
        return Ok(s.iter().collect());
    }
    let mut units: Vec<u16> = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        i += 1;
        if c != '\\' {
            let mut pair = [0; 2];
            units.extend_from_slice(c.encode_utf16(&mut pair));
            continue;
        }
        // The line reader never leaves an unpaired backslash at the end.
        let Some(&escaped) = s.get(i) else { break };
        i += 1;
        let c = match escaped {
            'u' => {
                let hex = s.get(i..i + 4).ok_or(MALFORMED)?;
                let mut unit: u16 = 0;
                for h in hex {
                    let digit = h.to_digit(16).ok_or(MALFORMED)?;
                    unit = (unit << 4) | digit as u16;
                }
                units.push(unit);
                i += 4;
                continue;
            }
            't' => '\t',
            'r' => '\r',
            'n' => '\n',
            'f' => '\x0c',
            other => other,
        };
        let mut pair = [0; 2];
        units.extend_from_slice(c.encode_utf16(&mut pair));
    }
    String::from_utf16(&units).map_err(|_| {
        "a \\uXXXX escape gives half of a UTF-16 surrogate pair without its other half \
         (Java keeps such a string; it is not text)"
    })
}
