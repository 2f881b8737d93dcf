//! `sasl.jaas.config` values, as Kafka's `JaasConfig` reads them (over
//! `java.io.StreamTokenizer`).

use std::fmt;

/// The one login module of a `sasl.jaas.config` value. Its `Debug` hides the options' values,
/// which hold passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasEntry {
    /// The login module's class name, e.g. `org.apache.kafka.common.security.plain.PlainLoginModule`.
    pub module: String,
    /// `required`, `requisite`, `sufficient` or `optional` (written in any case).
    pub flag: String,
    /// In the order first given; a name given twice keeps its last value, as Kafka's map does.
    pub options: Vec<(String, String)>,
}

impl fmt::Debug for JaasEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        write!(
            f,
            "JaasEntry({} {} options {names:?}, values hidden)",
            self.module, self.flag
        )
    }
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
