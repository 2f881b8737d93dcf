//! Java's `.properties` files and Kafka's `sasl.jaas.config` values, read exactly as Apache
//! Kafka's Java client reads them.
//!
//! Users paste a provider's Java client config as it is (Confluent Cloud's `client.properties`
//! and its `sasl.jaas.config` line): what Kafka accepts must mean the same here, and what it
//! refuses must be refused. Both readers are therefore ports of the real code, quirks included:
//! `java.util.Properties.load(Reader)` (JDK 17), and Kafka's `JaasConfig` over
//! `java.io.StreamTokenizer` (the same from Kafka 2.0 to 4.4). `tests/java/JaasProbe.java` runs
//! the Java classes on the same texts, for comparison.
//!
//! Where Java's result cannot be a Rust value, we differ on purpose:
//! - `\uXXXX` escapes that leave half of a UTF-16 surrogate pair: Java keeps the broken string,
//!   we refuse it (a Rust `String` cannot hold it).
//! - a JAAS option whose name Java reads as `null` (a number such as `1=x`, or `==x`): Java
//!   stores it under the key `null`, where no login module looks; we leave it out.
//!
//! Error messages never quote an option value or a property value: they may be passwords.

use std::fmt;

// ---------------------------------------------------------------------------------------------
// .properties
// ---------------------------------------------------------------------------------------------

/// One `name=value` entry of a `.properties` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub value: String,
    /// The 1-based line where the entry starts (its first character).
    pub line: usize,
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

// ---------------------------------------------------------------------------------------------
// sasl.jaas.config
// ---------------------------------------------------------------------------------------------

/// The one login module of a `sasl.jaas.config` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasEntry {
    /// The login module's class name, e.g. `org.apache.kafka.common.security.plain.PlainLoginModule`.
    pub module: String,
    /// `required`, `requisite`, `sufficient` or `optional` (written in any case).
    pub flag: String,
    /// In the order first given; a name given twice keeps its last value, as Kafka's map does.
    pub options: Vec<(String, String)>,
}

/// A `sasl.jaas.config` value Kafka would refuse. The reason never quotes an option value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasError {
    pub reason: String,
}

impl fmt::Display for JaasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for JaasError {}

/// The grammar, for error messages.
const JAAS_FORM: &str = "`LoginModuleClass controlFlag name=value ... ;`";

/// What Kafka's `JaasContext` refuses by default (system property
/// `org.apache.kafka.disallowed.login.modules`, CVE-2023-25194).
const DISALLOWED_MODULES: &[&str] = &[
    "com.sun.security.auth.module.JndiLoginModule",
    "com.sun.security.auth.module.LdapLoginModule",
];

/// Reads a `sasl.jaas.config` value as Kafka's client does (`JaasContext.loadClientContext`):
/// `LoginModuleClass controlFlag (name=value)* ;`, exactly one such entry, `//` and `/* */`
/// comments. Unquoted names and values are StreamTokenizer words (letters, digits, `.`, `-`,
/// `_`, `$` and non-ASCII, not starting with a digit, `.` or `-`); anything else must be quoted
/// with `'` or `"`.
pub fn parse_jaas(text: &str) -> Result<JaasEntry, JaasError> {
    let mut tokens = Tokenizer::new(text);
    let mut entries = Vec::new();
    loop {
        let first = tokens.next_token();
        if first == Token::Eof {
            break;
        }
        let number = entries.len() + 1;
        let entry = parse_entry(first, &mut tokens).map_err(|reason| JaasError {
            reason: if number == 1 {
                reason
            } else {
                format!("login module {number}: {reason}")
            },
        })?;
        entries.push(entry);
    }
    if entries.len() != 1 {
        let found = match entries.len() {
            0 => "no login module".to_owned(),
            n => format!("{n} login modules"),
        };
        return Err(JaasError {
            reason: format!("found {found}; expected exactly one: {JAAS_FORM}"),
        });
    }
    let entry = entries.remove(0);
    let trimmed = entry.module.trim_matches(|c| c <= ' ');
    if DISALLOWED_MODULES.contains(&trimmed) {
        return Err(JaasError {
            reason: format!("login module {trimmed} is not allowed (Kafka refuses it)"),
        });
    }
    Ok(entry)
}

/// One entry of `JaasConfig.parseAppConfigurationEntry`, from its first token on.
fn parse_entry(first: Token, tokens: &mut Tokenizer) -> Result<JaasEntry, String> {
    // Java checks the class name last (when it builds the entry); first reads better, and any
    // of these errors refuses the whole value.
    let module = match first {
        Token::Word(s) | Token::Quoted(s) => s,
        other => {
            return Err(format!(
                "expected a login module class name, found {}: {JAAS_FORM}",
                other.describe()
            ))
        }
    };
    if module.is_empty() {
        return Err(format!("the login module class name is empty: {JAAS_FORM}"));
    }
    let flag = match tokens.next_token() {
        Token::Word(s) | Token::Quoted(s) => control_flag(&s)?,
        other => {
            return Err(format!(
                "expected a control flag (required, requisite, sufficient or optional) after \
                 the login module, found {}",
                other.describe()
            ))
        }
    };
    let mut options: Vec<(String, String)> = Vec::new();
    // Where we are, for messages: never a value, and a name only once `=` followed it.
    let mut after = "the control flag".to_owned();
    let mut token = tokens.next_token();
    while token != Token::Eof && token != Token::Char(';') {
        let unreadable_name = matches!(token, Token::Number | Token::Char(_));
        let name = match token {
            Token::Word(s) | Token::Quoted(s) => Some(s),
            _ => None,
        };
        if tokens.next_token() != Token::Char('=') {
            let hint = if unreadable_name {
                "; an unquoted value ends at the first character other than a letter, digit, \
                 `.`, `-`, `_` or `$`: quote values that have others ('...' or \"...\")"
            } else {
                ""
            };
            return Err(format!("expected `name=value` or `;` after {after}{hint}"));
        }
        let shown = match &name {
            Some(name) => format!("option `{name}`"),
            None => "an option whose name is not a word (quote it)".to_owned(),
        };
        let value = match tokens.next_token() {
            Token::Word(s) | Token::Quoted(s) => s,
            Token::Number => {
                return Err(format!(
                    "{shown}: an unquoted value that starts with a digit, `.` or `-` is read \
                     as a number, which Kafka refuses: quote it ('...' or \"...\")"
                ))
            }
            other => {
                return Err(format!(
                    "{shown}: expected a value after `=`, found {}",
                    other.describe()
                ))
            }
        };
        // Java puts a name it reads as null (a number, `=`, ...) into its map under null, where
        // no login module looks it up: the option is as good as absent.
        if let Some(name) = name {
            after = format!("option `{name}`");
            match options.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => options.push((name, value)),
            }
        }
        token = tokens.next_token();
    }
    if token != Token::Char(';') {
        return Err(format!(
            "expected `;` at the end of the login module's entry, after {after}: {JAAS_FORM}"
        ));
    }
    Ok(JaasEntry {
        module,
        flag: flag.to_owned(),
        options,
    })
}

/// `JaasConfig.loginModuleControlFlag`: Java's `toUpperCase(Locale.ROOT)`, whose full Unicode
/// mapping Rust's `to_uppercase` shares (`ſ` is `S` to both).
fn control_flag(word: &str) -> Result<&'static str, String> {
    match word.to_uppercase().as_str() {
        "REQUIRED" => Ok("required"),
        "REQUISITE" => Ok("requisite"),
        "SUFFICIENT" => Ok("sufficient"),
        "OPTIONAL" => Ok("optional"),
        _ => Err(format!(
            "unknown control flag `{}`: expected required, requisite, sufficient or optional \
             after the login module",
            word.escape_debug()
        )),
    }
}

/// A token of `java.io.StreamTokenizer` as Kafka sets it up.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Eof,
    /// `TT_WORD`.
    Word(String),
    /// A `'` or `"` string, escapes read.
    Quoted(String),
    /// `TT_NUMBER`: its value is of no use to Kafka (it has no `sval`).
    Number,
    /// Any other character, a token of its own (`;`, `=`, `@`, ...).
    Char(char),
}

impl Token {
    /// What was found, for errors: never the text of a word or string, nor the character (it
    /// may be part of a password).
    fn describe(&self) -> &'static str {
        match self {
            Token::Eof => "the end of the text",
            Token::Word(_) => "a word",
            Token::Quoted(_) => "a quoted string",
            Token::Number => "a number (unquoted text that starts with a digit, `.` or `-`)",
            Token::Char(';') => "`;`",
            Token::Char('=') => "`=`",
            Token::Char(_) => "a character that is allowed only inside quotes",
        }
    }
}

// StreamTokenizer's character classes (its CT_* bits).
const WHITESPACE: u8 = 1;
const DIGIT: u8 = 2;
const ALPHA: u8 = 4;
const QUOTE: u8 = 8;
const COMMENT: u8 = 16;

/// The class of `c`: StreamTokenizer's defaults (letters and U+00A0-U+00FF are word
/// characters, every character from U+0100 too; `0-9 . -` numeric; `'` `"` quotes; `/` a
/// comment; U+0000-U+0020 whitespace) plus Kafka's `wordChars` for `-`, `_` and `$`.
/// Everything else (`@ : { } + , ;` ..., DEL, U+0080-U+009F) is a token by itself.
fn class(c: char) -> u8 {
    match c {
        '\0'..=' ' => WHITESPACE,
        'a'..='z' | 'A'..='Z' | '_' | '$' | '\u{a0}'..=char::MAX => ALPHA,
        '0'..='9' | '.' => DIGIT,
        '-' => DIGIT | ALPHA,
        '"' | '\'' => QUOTE,
        '/' => COMMENT,
        _ => 0,
    }
}

/// A port of `StreamTokenizer.nextToken` for Kafka's syntax (slash-slash and slash-star
/// comments on, line ends not significant, no lower-casing).
struct Tokenizer {
    chars: Vec<char>,
    pos: usize,
}

impl Tokenizer {
    fn new(text: &str) -> Self {
        Tokenizer {
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    fn read(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Gives back the character just read (StreamTokenizer's `peekc`).
    fn unread(&mut self, c: Option<char>) {
        if c.is_some() {
            self.pos = self.pos.saturating_sub(1);
        }
    }

    fn next_token(&mut self) -> Token {
        loop {
            let Some(mut c) = self.read() else {
                return Token::Eof;
            };
            while class(c) & WHITESPACE != 0 {
                let Some(next) = self.read() else {
                    return Token::Eof;
                };
                c = next;
            }
            let class = class(c);
            // Numbers before words: `-` is both, and starts a number.
            if class & DIGIT != 0 {
                return self.number(c);
            }
            if class & ALPHA != 0 {
                return self.word(c);
            }
            if class & QUOTE != 0 {
                return self.quoted(c);
            }
            if c == '/' {
                match self.read() {
                    Some('*') => {
                        if !self.skip_block_comment() {
                            return Token::Eof;
                        }
                    }
                    // `//`, and a lone `/` (a comment character too) to the end of the line.
                    // The character after a lone `/` is skipped unseen: a line break there
                    // puts the next line in the comment as well.
                    _ => self.skip_line(),
                }
                continue;
            }
            // `/` is the only comment character, and was handled above.
            return Token::Char(c);
        }
    }

    /// After `-`, `.` or a digit: an optional `-`, digits and one `.`. A `-` not followed by a
    /// digit or `.` is a token by itself.
    fn number(&mut self, first: char) -> Token {
        let mut c = Some(first);
        if first == '-' {
            c = self.read();
            if !matches!(c, Some('.' | '0'..='9')) {
                self.unread(c);
                return Token::Char('-');
            }
        }
        let mut seen_dot = false;
        loop {
            match c {
                Some('.') if !seen_dot => seen_dot = true,
                Some('0'..='9') => {}
                _ => break,
            }
            c = self.read();
        }
        self.unread(c);
        Token::Number
    }

    /// A word goes on over word and numeric characters.
    fn word(&mut self, first: char) -> Token {
        let mut word = String::from(first);
        loop {
            let c = self.read();
            match c {
                Some(c) if class(c) & (ALPHA | DIGIT) != 0 => word.push(c),
                _ => {
                    self.unread(c);
                    return Token::Word(word);
                }
            }
        }
    }

    /// A quoted string: it ends at its quote, at a line break (unterminated, no error) or at
    /// the end. Escapes: `\a \b \f \n \r \t \v`, octal `\0`-`\377`, and `\x` for any other x
    /// (a backslash at the very end gives U+FFFF, Java's `(char) -1`).
    fn quoted(&mut self, quote: char) -> Token {
        let mut s = String::new();
        let mut d = self.read();
        while let Some(ch) = d.filter(|&ch| ch != quote && ch != '\n' && ch != '\r') {
            let value;
            if ch == '\\' {
                let c = self.read();
                match c {
                    Some(first @ '0'..='7') => {
                        let mut v = first as u32 - '0' as u32;
                        let c2 = self.read();
                        match c2 {
                            Some(c2 @ '0'..='7') => {
                                v = (v << 3) + (c2 as u32 - '0' as u32);
                                let c3 = self.read();
                                match c3 {
                                    // Three digits only up to \377.
                                    Some(c3 @ '0'..='7') if first <= '3' => {
                                        v = (v << 3) + (c3 as u32 - '0' as u32);
                                        d = self.read();
                                    }
                                    _ => d = c3,
                                }
                            }
                            _ => d = c2,
                        }
                        value = char::from_u32(v).unwrap_or('\u{fffd}');
                    }
                    _ => {
                        value = match c {
                            Some('a') => '\x07',
                            Some('b') => '\x08',
                            Some('f') => '\x0c',
                            Some('n') => '\n',
                            Some('r') => '\r',
                            Some('t') => '\t',
                            Some('v') => '\x0b',
                            Some(other) => other,
                            None => '\u{ffff}',
                        };
                        d = self.read();
                    }
                }
            } else {
                value = ch;
                d = self.read();
            }
            s.push(value);
        }
        if d != Some(quote) {
            self.unread(d);
        }
        Token::Quoted(s)
    }

    /// Skips a comment after its `/*`, up to the first `*/`; false if the text ends first.
    /// (Java's loop, which reads the character after a line break unchecked: harmless, a
    /// line break cannot be half of `*/`.)
    fn skip_block_comment(&mut self) -> bool {
        let mut prev = None;
        loop {
            let mut c = self.read();
            if c == Some('/') && prev == Some('*') {
                return true;
            }
            match c {
                Some('\r') => {
                    c = self.read();
                    if c == Some('\n') {
                        c = self.read();
                    }
                }
                Some('\n') => c = self.read(),
                _ => {}
            }
            if c.is_none() {
                return false;
            }
            prev = c;
        }
    }

    /// Skips to the next line break (left for the whitespace skip) or the end.
    fn skip_line(&mut self) {
        loop {
            let c = self.read();
            if matches!(c, None | Some('\n' | '\r')) {
                self.unread(c);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> Vec<(String, String)> {
        parse_properties(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.value))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn properties_separators() {
        assert_eq!(
            props("a=1\nb:2\nc 3\nd = 4\ne : 5\nf\t6\ng \t = \t 7\nh\x0c8\n"),
            pairs(&[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "4"),
                ("e", "5"),
                ("f", "6"),
                ("g", "7"),
                ("h", "8")
            ])
        );
        // Only one separator is skipped; a second is part of the value.
        assert_eq!(
            props("a==b\nc::d\ne =:f\n"),
            pairs(&[("a", "=b"), ("c", ":d"), ("e", ":f")])
        );
        // Whitespace then a separator, then text with spaces, and trailing spaces kept.
        assert_eq!(props("k  =  v w  "), pairs(&[("k", "v w  ")]));
        // A name alone, a separator alone.
        assert_eq!(
            props("k\n=\n:v\n"),
            pairs(&[("k", ""), ("", ""), ("", "v")])
        );
        assert_eq!(props("k=\n"), pairs(&[("k", "")]));
    }

    #[test]
    fn properties_comments_and_blank_lines() {
        let text = "# a comment\n  ! another\n\n   \n\t\x0c\nk=v # not a comment\n#k2=v2\n  #\n";
        assert_eq!(props(text), pairs(&[("k", "v # not a comment")]));
        // A comment does not continue with a trailing backslash.
        assert_eq!(props("# c \\\nk=v"), pairs(&[("k", "v")]));
        // A comment at the very end, without a line break.
        assert_eq!(props("k=v\n# end"), pairs(&[("k", "v")]));
    }

    #[test]
    fn properties_line_ends_and_numbers() {
        let got = parse_properties("a=1\r\nb=2\rc=3\n\n# x\r\n  d=4").unwrap();
        let lines: Vec<(&str, usize)> = got.iter().map(|p| (p.name.as_str(), p.line)).collect();
        assert_eq!(lines, [("a", 1), ("b", 2), ("c", 3), ("d", 6)]);
    }

    #[test]
    fn properties_continuations() {
        assert_eq!(
            props("k=a\\\n   b\\\n\tc\nx=y"),
            pairs(&[("k", "abc"), ("x", "y")])
        );
        // \r\n and \r line ends continue too.
        assert_eq!(props("k=a\\\r\n  b\\\r  c"), pairs(&[("k", "abc")]));
        // An even number of backslashes does not continue.
        assert_eq!(props("k=a\\\\\nb=c"), pairs(&[("k", "a\\"), ("b", "c")]));
        // Three do: one escaped backslash, then a continuation.
        assert_eq!(props("k=a\\\\\\\n b"), pairs(&[("k", "a\\b")]));
        // A continuation into an empty line ends the entry there.
        assert_eq!(props("k=a\\\n\nb=c"), pairs(&[("k", "a"), ("b", "c")]));
        // A trailing backslash at the end of the text is dropped.
        assert_eq!(props("k=a\\"), pairs(&[("k", "a")]));
        // The continued line's `#` is text, not a comment.
        assert_eq!(props("k=a\\\n#b"), pairs(&[("k", "a#b")]));
        // The name may continue too.
        assert_eq!(props("ke\\\n  y=v"), pairs(&[("key", "v")]));
        // Java's quirks: a lone backslash is an entry of empty name and value; a continued
        // lone backslash lets the next line be a comment.
        assert_eq!(props("\\"), pairs(&[("", "")]));
        assert_eq!(props("\\\n# c\nk=v"), pairs(&[("k", "v")]));
        let got = parse_properties("a=1\nlong=x\\\n  y\\\n  z\nb=2").unwrap();
        let lines: Vec<usize> = got.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 2, 5]);
    }

    #[test]
    fn properties_escapes() {
        assert_eq!(
            props("k=\\t\\n\\r\\f\\\\\\a\\b\\=\\:\\ \\#\\!\\\"\\'"),
            pairs(&[("k", "\t\n\r\x0c\\ab=: #!\"'")])
        );
        assert_eq!(
            props("k=caf\\u00e9 \\u00E9 \\u20ac"),
            pairs(&[("k", "café é €")])
        );
        // Two \u escapes make one supplementary character.
        assert_eq!(props("k=\\ud83d\\ude00"), pairs(&[("k", "😀")]));
        // Non-ASCII text as it is (the caller decoded it).
        assert_eq!(props("clé=été"), pairs(&[("clé", "été")]));
        // Escaped separators and spaces in names.
        assert_eq!(
            props("a\\=b=1\nc\\:d:2\ne\\ f 3\n\\#g=4\n\\!h=5\ni\\u003dj=6"),
            pairs(&[
                ("a=b", "1"),
                ("c:d", "2"),
                ("e f", "3"),
                ("#g", "4"),
                ("!h", "5"),
                ("i=j", "6")
            ])
        );
        // Leading whitespace of a value is kept when escaped.
        assert_eq!(props("k=\\  v"), pairs(&[("k", "  v")]));
    }

    #[test]
    fn properties_malformed_unicode_escapes() {
        for (text, line) in [
            ("k=\\u12", 1),
            ("a=b\nk=\\u12g4", 2),
            ("k=\\u", 1),
            ("\n\nk\\u00=v", 3),
            ("k=\\u 123", 1),
            ("k=\\ud800", 1),
            ("k=\\udc00x", 1),
        ] {
            let err = parse_properties(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(
                err.to_string().starts_with(&format!("line {line}: ")),
                "{err}"
            );
        }
        let err = parse_properties("k\\u00=\\u12").unwrap_err();
        assert!(err.reason.contains("in the name"), "{err}");
        // The escape of a name stops at the separator.
        assert!(parse_properties("\\u00=41").is_err());
    }

    #[test]
    fn properties_duplicates_in_order() {
        assert_eq!(props("k=1\nk=2"), pairs(&[("k", "1"), ("k", "2")]));
    }

    #[test]
    fn properties_error_never_shows_the_value() {
        let err = parse_properties("sasl.password=hunter2\\u00zz").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    fn jaas(text: &str) -> JaasEntry {
        parse_jaas(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn jaas_err(text: &str) -> String {
        match parse_jaas(text) {
            Ok(entry) => panic!("{text:?} parsed: {entry:?}"),
            Err(e) => e.reason,
        }
    }

    const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

    #[test]
    fn jaas_confluent_cloud_line() {
        let entry = jaas(
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username='KEY' password='SECRET';",
        );
        assert_eq!(entry.module, PLAIN);
        assert_eq!(entry.flag, "required");
        assert_eq!(
            entry.options,
            pairs(&[("username", "KEY"), ("password", "SECRET")])
        );
    }

    #[test]
    fn jaas_quotes_and_escapes() {
        let entry = jaas(&format!(
            r#"{PLAIN} REQUIRED username="u\"s'er" password='p\'w\\d' x="a;b=c" y='' z="\t\n\101\60\477\8";"#
        ));
        assert_eq!(entry.flag, "required");
        assert_eq!(
            entry.options,
            pairs(&[
                ("username", "u\"s'er"),
                ("password", "p'w\\d"),
                ("x", "a;b=c"),
                ("y", ""),
                ("z", "\t\nA0'78")
            ])
        );
        // An unterminated quote ends at the line break, without error.
        assert_eq!(
            jaas(&format!("{PLAIN} required a='x y\n;")).options,
            pairs(&[("a", "x y")])
        );
        // Quoted class name, flag and option names.
        let entry = jaas(&format!("'{PLAIN}' \"Optional\" 'user name'=v;"));
        assert_eq!(entry.module, PLAIN);
        assert_eq!(entry.flag, "optional");
        assert_eq!(entry.options, pairs(&[("user name", "v")]));
    }

    #[test]
    fn jaas_unquoted_values() {
        let entry = jaas(&format!(
            "{PLAIN} required username=abc password=a1.b-c_d$e;"
        ));
        assert_eq!(
            entry.options,
            pairs(&[("username", "abc"), ("password", "a1.b-c_d$e")])
        );
        // Non-ASCII letters are word characters.
        assert_eq!(
            jaas(&format!("{PLAIN} required u=été;")).options,
            pairs(&[("u", "été")])
        );
        // A value with other characters must be quoted...
        let err = jaas_err(&format!("{PLAIN} required username=u password=p@ss;"));
        assert!(err.contains("quote"), "{err}");
        assert!(!err.contains("p@ss") && !err.contains('@'), "{err}");
        // ... and so must one that starts like a number.
        let err = jaas_err(&format!("{PLAIN} required password=123abc;"));
        assert!(
            err.contains("number") && err.contains("`password`"),
            "{err}"
        );
        assert!(parse_jaas(&format!("{PLAIN} required password=-x;")).is_err());
        assert!(parse_jaas(&format!("{PLAIN} required password=.x;")).is_err());
        assert!(parse_jaas(&format!("{PLAIN} required password={{x}};")).is_err());
    }

    #[test]
    fn jaas_comments() {
        let entry = jaas(&format!(
            "// leading\n{PLAIN} /* block\n comment */ required // the flag\n  username=u /**/ \
             password=\"p//not a comment\"; /* trailing */"
        ));
        assert_eq!(
            entry.options,
            pairs(&[("username", "u"), ("password", "p//not a comment")])
        );
        // A lone `/` is a comment to the end of the line; the character after it is skipped,
        // so `/` at the end of a line comments out the next line too.
        assert_eq!(
            jaas(&format!("{PLAIN} required a=b / c=d\n;")).options,
            pairs(&[("a", "b")])
        );
        assert!(parse_jaas(&format!("{PLAIN} required a=b /\n;")).is_err());
        // A word ends at `/`: the rest of the line is a comment.
        assert_eq!(
            jaas(&format!("{PLAIN} required a=b/c d=e\n;")).options,
            pairs(&[("a", "b")])
        );
        // An unterminated block comment swallows the `;`.
        assert!(parse_jaas(&format!("{PLAIN} required a=b /* ;")).is_err());
        // `/*/` does not close.
        assert!(parse_jaas(&format!("{PLAIN} required /*/ a=b;")).is_err());
        assert_eq!(
            jaas(&format!("{PLAIN} required /*/ */ a=b;")).options,
            pairs(&[("a", "b")])
        );
    }

    #[test]
    fn jaas_semicolon_is_required() {
        let err = jaas_err(&format!("{PLAIN} required username='u' password='p'"));
        assert!(err.contains("`;`") && err.contains("`password`"), "{err}");
        assert!(!err.contains("'p'"), "{err}");
        let err = jaas_err(&format!("{PLAIN} required"));
        assert!(err.contains("`;`"), "{err}");
        assert!(jaas(&format!("{PLAIN} required;")).options.is_empty());
        assert!(jaas(&format!("{PLAIN}   required  ;  \n"))
            .options
            .is_empty());
    }

    #[test]
    fn jaas_exactly_one_entry() {
        let err = jaas_err(&format!("{PLAIN} required a=b; {PLAIN} optional c=d;"));
        assert!(err.contains("2 login modules"), "{err}");
        for empty in ["", "   \n", "// nothing", "/* nothing */"] {
            let err = jaas_err(empty);
            assert!(err.contains("no login module"), "{err}");
        }
        // An error in the second entry is reported as such.
        let err = jaas_err(&format!("{PLAIN} required; x"));
        assert!(err.starts_with("login module 2: "), "{err}");
    }

    #[test]
    fn jaas_control_flags() {
        for (flag, want) in [
            ("required", "required"),
            ("REQUISITE", "requisite"),
            ("Sufficient", "sufficient"),
            ("optional", "optional"),
            // Java's Unicode upper-casing: dotless i is I, long s is S.
            ("requıred", "required"),
            ("ſufficient", "sufficient"),
        ] {
            assert_eq!(jaas(&format!("{PLAIN} {flag};")).flag, want, "{flag}");
        }
        let err = jaas_err(&format!("{PLAIN} requried username=u;"));
        assert!(err.contains("unknown control flag `requried`"), "{err}");
        let err = jaas_err(&format!("{PLAIN} ;"));
        assert!(err.contains("control flag"), "{err}");
        let err = jaas_err(PLAIN);
        assert!(err.contains("control flag") && err.contains("end"), "{err}");
    }

    #[test]
    fn jaas_bad_names_and_modules() {
        // `=` without a value, a value without `=`.
        let err = jaas_err(&format!("{PLAIN} required password=;"));
        assert!(err.contains("`password`") && err.contains("`;`"), "{err}");
        let err = jaas_err(&format!("{PLAIN} required username 'u';"));
        assert!(err.contains("`name=value`"), "{err}");
        assert!(parse_jaas(&format!("{PLAIN} required password=")).is_err());
        // Class names Kafka cannot read, or refuses.
        assert!(parse_jaas("'' required;").is_err());
        assert!(parse_jaas("= required;").is_err());
        assert!(parse_jaas("1.2 required;").is_err());
        assert!(parse_jaas("com.sun.security.auth.module.JndiLoginModule required;").is_err());
        assert!(parse_jaas("' com.sun.security.auth.module.LdapLoginModule ' required;").is_err());
    }

    #[test]
    fn jaas_duplicates_and_unnamed_options() {
        let entry = jaas(&format!("{PLAIN} required a=x b='2' a=\"3\";"));
        assert_eq!(entry.options, pairs(&[("a", "3"), ("b", "2")]));
        // Java keeps `1=x` under a null name: no login module sees it.
        let entry = jaas(&format!("{PLAIN} required 1=x ==y u=v;"));
        assert_eq!(entry.options, pairs(&[("u", "v")]));
    }

    #[test]
    fn jaas_errors_never_show_values() {
        let secret = "S3cr3tValue";
        for text in [
            format!("{PLAIN} required password='{secret}'"),
            format!("{PLAIN} required password={secret}@x;"),
            format!("{PLAIN} required password={secret} extra;"),
            format!("{PLAIN} required password=\"{secret}\" = ;"),
            format!("{PLAIN} required password='{secret}'; {PLAIN} required;"),
            format!("{PLAIN} required password='{secret}' 5"),
        ] {
            let err = jaas_err(&text);
            assert!(!err.contains(secret), "{text:?}: {err}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let pieces = [
            "\\", "u", "0", "'", "\"", "/", "*", "\n", "\r", "=", ":", ";", "#", "!", " ", "\t",
            "a", "-", ".", "é", "😀", "\u{85}", "7", "\x0c", "\0",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut text = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let _ = parse_properties(&text);
            let _ = parse_jaas(&text);
        }
    }
}
