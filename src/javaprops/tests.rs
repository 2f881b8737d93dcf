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
        "\\", "u", "0", "'", "\"", "/", "*", "\n", "\r", "=", ":", ";", "#", "!", " ", "\t", "a",
        "-", ".", "é", "😀", "\u{85}", "7", "\x0c", "\0",
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
