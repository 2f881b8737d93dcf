//! src/javaprops.rs against the Java code it ports: Kafka's own `sasl.jaas.config` reader
//! (`JaasContext.loadClientContext`, from the stack's kafka-clients jar) and the JDK's
//! `java.util.Properties.load`, both run by tests/java/JaasProbe.java on the same texts. The
//! texts are hand-written cases plus seeded random ones (a fixed seed, so a failure reproduces).
//!
//! Comparison rules (the differences src/javaprops.rs documents as deliberate):
//! - Java accepts and we accept: the same module, flag and options (sorted by name; an option
//!   whose name Java read as `null` is left out, as we leave it out), or the same properties
//!   entries in order, repeated names included.
//! - Java refuses: we refuse.
//! - Java accepts a string holding half of a UTF-16 surrogate pair (`unpaired_surrogate`): we
//!   refuse (a Rust `String` cannot hold it).
//!
//! Needs `java` from a JDK (the single-file launcher compiles JaasProbe.java) and the stack's
//! Kafka jars (`REPLIQATE_KAFKA_LIBS` from `scripts/stack env`).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::env::stack_var;
use repliqate::javaprops::{parse_jaas, parse_properties};
use serde_json::{json, Value};

/// The seed of the random cases: fixed, so that a failure reproduces.
const SEED: u64 = 0x2545_f491_4f6c_dd1d;
/// Random JAAS texts of each generator (random pieces, and structured entries).
const RANDOM_JAAS: usize = 1_500;
/// Random `.properties` texts.
const RANDOM_PROPERTIES: usize = 2_000;
/// At most this many differences are listed in a failure.
const SHOWN_DIFFERENCES: usize = 10;

const M: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

/// The `sasl.jaas.config` line of Confluent Cloud's `client.properties`, single quotes and all.
fn confluent_cloud_line() -> String {
    format!("{M} required username='KEY' password='SECRET';")
}

// ---------------------------------------------------------------------------------------------
// The Java side
// ---------------------------------------------------------------------------------------------

/// kafka-clients and slf4j-api from the stack's Kafka jars directory.
fn kafka_classpath() -> String {
    let libs = stack_var("REPLIQATE_KAFKA_LIBS");
    let mut names: Vec<String> = std::fs::read_dir(&libs)
        .unwrap_or_else(|e| {
            panic!(
                "reading REPLIQATE_KAFKA_LIBS={libs}: {e}; run `scripts/stack up` and \
                 `eval \"$(scripts/stack env)\"`"
            )
        })
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    let jar = |prefix: &str| -> String {
        let name = names
            .iter()
            .find(|n| n.starts_with(prefix) && n.ends_with(".jar"))
            .unwrap_or_else(|| {
                panic!(
                    "no {prefix}*.jar in REPLIQATE_KAFKA_LIBS={libs}; run `scripts/stack up` and \
                     `eval \"$(scripts/stack env)\"`"
                )
            });
        format!("{libs}/{name}")
    };
    format!("{}:{}", jar("kafka-clients-"), jar("slf4j-api-"))
}

const JDK_FIX: &str = "install a JDK (Debian: openjdk-17-jdk-headless; .ci/run installs it)";

/// JaasProbe's answer to one case: the line it wrote (ASCII, every other character escaped, so
/// shown in failures as it is) and that line read as JSON.
struct Answer {
    line: String,
    json: Value,
}

/// Runs JaasProbe.java on `cases` (kind, text) and returns its answer for each, in order.
fn java_probe(cases: &[(&str, &str)]) -> Vec<Answer> {
    let classpath = kafka_classpath();
    let probe = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/java/JaasProbe.java");
    let mut input = String::new();
    for (kind, text) in cases {
        input.push_str(&json!({"kind": kind, "text": text}).to_string());
        input.push('\n');
    }
    let mut child = Command::new("java")
        .args(["-Xmx64m", "-cp", &classpath, probe])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start `java` ({e}): this test runs tests/java/JaasProbe.java; {JDK_FIX}")
        });
    let mut stdin = child.stdin.take().expect("java's stdin");
    // Written from a thread of its own: java answers while it reads, and both pipes are bounded.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("waiting for java");
    let written = writer.join().expect("the writer thread");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let no_compiler = stderr.contains("compiler");
        panic!(
            "`java -Xmx64m -cp {classpath} {probe}` failed ({}){}\n--- stderr:\n{stderr}",
            out.status,
            if no_compiler {
                format!(": the single-file launcher found no compiler (a JRE only); {JDK_FIX}")
            } else {
                format!(
                    "; if it says a compiler or jdk.compiler is missing (a JRE only): {JDK_FIX}"
                )
            },
        );
    }
    written.expect("writing the cases to java");
    let stdout = String::from_utf8(out.stdout).expect("JaasProbe writes ASCII");
    let answers: Vec<Answer> = stdout
        .lines()
        .map(|line| Answer {
            line: line.to_string(),
            json: serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("JaasProbe wrote {line:?}: {e}")),
        })
        .collect();
    assert_eq!(
        answers.len(),
        cases.len(),
        "JaasProbe answered {} of {} cases\n--- stderr:\n{stderr}",
        answers.len(),
        cases.len()
    );
    for (answer, (kind, text)) in answers.iter().zip(cases) {
        assert!(
            answer.json.get("bad_input").is_none(),
            "JaasProbe could not read the {kind} case {text:?}: {}",
            answer.line
        );
    }
    answers
}

/// `[[name, value], ...]` of a JaasProbe answer, Java's `null` names left out.
fn pairs(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list of pairs: {list}"))
        .iter()
        .filter(|p| !p[0].is_null())
        .map(|p| {
            let s = |v: &Value| {
                v.as_str()
                    .unwrap_or_else(|| panic!("not a string: {v}"))
                    .to_string()
            };
            (s(&p[0]), s(&p[1]))
        })
        .collect()
}

/// Java's answer is ok and not a string Rust cannot hold.
fn java_accepted(java: &Value) -> bool {
    java["ok"] == true && java["unpaired_surrogate"] != true
}

// ---------------------------------------------------------------------------------------------
// The comparison
// ---------------------------------------------------------------------------------------------

/// Counts and the first differences of one comparison.
#[derive(Default)]
struct Tally {
    cases: usize,
    hand_written: usize,
    accepted_by_java: usize,
    refused_by_java: usize,
    unpaired_surrogates: usize,
    differences: usize,
    shown: Vec<String>,
}

impl Tally {
    fn record(&mut self, agree: bool, text: &str, answer: &Answer, ours: &dyn std::fmt::Debug) {
        let java = &answer.json;
        self.cases += 1;
        if java["unpaired_surrogate"] == true {
            self.unpaired_surrogates += 1;
        } else if java["ok"] == true {
            self.accepted_by_java += 1;
        } else {
            self.refused_by_java += 1;
        }
        if !agree {
            self.differences += 1;
            if self.shown.len() < SHOWN_DIFFERENCES {
                self.shown.push(format!(
                    "input: {text:?}\n  java: {}\n  ours: {ours:?}",
                    answer.line
                ));
            }
        }
    }

    fn summary(&self, what: &str) -> String {
        format!(
            "{what}: {} cases ({} hand-written, {} random, seed {SEED:#x}); Java accepted {}, \
             refused {}, accepted with an unpaired surrogate (we refuse) {}; differences: {}",
            self.cases,
            self.hand_written,
            self.cases - self.hand_written,
            self.accepted_by_java,
            self.refused_by_java,
            self.unpaired_surrogates,
            self.differences,
        )
    }

    fn assert_no_differences(&self, what: &str) {
        assert!(
            self.differences == 0,
            "{}\nfirst {} differences:\n{}",
            self.summary(what),
            self.shown.len(),
            self.shown.join("\n"),
        );
    }
}

/// Compares our parser with Java's on `texts` (the first `hand_written` of them written by
/// hand), by the rules above: JaasProbe reads each as `kind`, `parse` is ours, and `same` says
/// whether what we read is what Java read where both accept. Prints the counts; fails listing
/// the first differences, or when Java accepted fewer than `min_accepted` (the comparison would
/// say little). Returns Java's answers, in order.
fn compare_with_java<T: std::fmt::Debug, E: std::fmt::Debug>(
    kind: &str,
    texts: &[String],
    hand_written: usize,
    min_accepted: usize,
    parse: impl Fn(&str) -> Result<T, E>,
    same: impl Fn(&T, &Value) -> bool,
) -> Vec<Answer> {
    let cases: Vec<(&str, &str)> = texts.iter().map(|t| (kind, t.as_str())).collect();
    let answers = java_probe(&cases);
    let mut tally = Tally {
        hand_written,
        ..Tally::default()
    };
    for (text, answer) in texts.iter().zip(&answers) {
        let java = &answer.json;
        let ours = parse(text);
        let agree = match &ours {
            _ if java["unpaired_surrogate"] == true => ours.is_err(),
            Ok(read) if java_accepted(java) => same(read, java),
            Err(_) => java["ok"] == false,
            Ok(_) => false,
        };
        tally.record(agree, text, answer, &ours);
    }
    println!("{}", tally.summary(kind));
    tally.assert_no_differences(kind);
    assert!(
        tally.accepted_by_java >= min_accepted,
        "only {} {kind} cases were accepted by Java: the comparison says little\n{}",
        tally.accepted_by_java,
        tally.summary(kind)
    );
    answers
}

#[test]
fn jaas_lines_parse_as_kafkas_own_parser_reads_them() {
    let mut texts = jaas_cases();
    let hand_written = texts.len();
    let mut rng = Rng(SEED);
    texts.extend(random_cases(
        &mut rng,
        RANDOM_JAAS,
        JAAS_STARTS,
        JAAS_PIECES,
    ));
    texts.extend(structured_jaas(&mut rng, RANDOM_JAAS));

    let answers = compare_with_java(
        "jaas",
        &texts,
        hand_written,
        200,
        parse_jaas,
        |entry, java| {
            let mut want = pairs(&java["options"]);
            want.sort();
            let mut got = entry.options.clone();
            got.sort();
            java["module"] == entry.module.as_str()
                && java["flag"] == entry.flag.as_str()
                && want == got
        },
    );

    // Confluent Cloud's line, single quotes and all, reads the same on both sides.
    let line = confluent_cloud_line();
    assert_eq!(texts[0], line);
    let want = vec![
        ("password".to_string(), "SECRET".to_string()),
        ("username".to_string(), "KEY".to_string()),
    ];
    let java = &answers[0].json;
    assert!(java_accepted(java), "Java refused {line:?}: {java}");
    assert_eq!(
        (&java["module"], &java["flag"]),
        (&json!(M), &json!("required"))
    );
    assert_eq!(pairs(&java["options"]), want, "Java's options of {line:?}");
    let ours = parse_jaas(&line).unwrap_or_else(|e| panic!("we refused {line:?}: {e}"));
    assert_eq!((ours.module.as_str(), ours.flag.as_str()), (M, "required"));
    let mut got = ours.options;
    got.sort();
    assert_eq!(got, want, "our options of {line:?}");
}

#[test]
fn properties_files_parse_as_javas_properties_load_reads_them() {
    let mut texts = props_cases();
    let hand_written = texts.len();
    let mut rng = Rng(SEED);
    texts.extend(random_cases(
        &mut rng,
        RANDOM_PROPERTIES,
        PROPS_STARTS,
        PROPS_PIECES,
    ));

    compare_with_java(
        "properties",
        &texts,
        hand_written,
        500,
        parse_properties,
        |entries, java| {
            let got: Vec<(String, String)> = entries
                .iter()
                .map(|p| (p.name.clone(), p.value.clone()))
                .collect();
            pairs(&java["entries"]) == got
        },
    );
}

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

fn jaas_cases() -> Vec<String> {
    vec![
        confluent_cloud_line(),
        format!("{M} required username=\"KEY\" password=\"SECRET\";"),
        format!(r#"{M} required username="u\"s'er" password='p\'w\\d';"#),
        format!("{M} required username='u' password='p'"),
        format!("{M} required username='u' password='p';;"),
        format!("{M} required a=1;"),
        format!("{M} required a=abc;"),
        format!("{M} required a=abc123 b=a.b-c_d$e;"),
        format!("{M} required a=p@ss;"),
        format!("{M} required a={{x}};"),
        format!("{M} required a=-x;"),
        format!("{M} required a=-1;"),
        format!("{M} required a=.5;"),
        format!("{M} required a='x;y=z' b=\"c;d\";"),
        format!("// c\n{M} /* b\n */ required // f\n a=b /**/ c='d//e';/* t */"),
        format!("{M} required a=b / c=d\n;"),
        format!("{M} required a=b /\n;"),
        format!("{M} required a=b/c d=e\n;"),
        format!("{M} required /*/ a=b;"),
        format!("{M} required /*/ */ a=b;"),
        format!("{M} required a=b; {M} optional c=d;"),
        format!("{M} bogus a=b;"),
        format!("{M} REQUIRED;"),
        format!("{M} Requisite;"),
        format!("{M} sufficient;"),
        format!("{M} OPTIONAL;"),
        format!("{M} requıred;"),
        format!("{M} ſufficient;"),
        format!("{M} suﬃcient;"),
        format!("{M} ﬆ;"),
        format!("{M} 'required';"),
        format!("'{M}' \"optional\" 'user name'=v;"),
        format!("{M};"),
        M.to_string(),
        String::new(),
        "   ".into(),
        "// x".into(),
        "/* x */".into(),
        "'' required;".into(),
        "= required;".into(),
        "1.2 required;".into(),
        "-x required;".into(),
        "com.sun.security.auth.module.JndiLoginModule required;".into(),
        "' com.sun.security.auth.module.LdapLoginModule ' required;".into(),
        format!("{M} required a='x y\n;"),
        format!("{M} required a='x y\r;"),
        format!("{M} required a='x\\\ny';"),
        format!("{M} required a='\\101\\60\\477\\8\\a\\b\\f\\n\\r\\t\\v\\q\\'';"),
        format!("{M} required a='\\"),
        format!("{M} required a='abc"),
        format!("{M} required 1=x ==y u=v;"),
        format!("{M} required a=x b='2' a=\"3\";"),
        format!("{M} required a=;"),
        format!("{M} required a=="),
        format!("{M} required a"),
        format!("{M} required a b;"),
        format!("{M} required a=\u{85}x;"),
        format!("{M} required a=x\u{85};"),
        format!("{M} required a=x\u{a0}y;"),
        format!("{M} required a=é😀;"),
        format!("{M} required a=x\u{7f}y;"),
        format!("{M}\trequired\r\na='b'\x0c;\0"),
        format!("{M} required a=$x_y;"),
        format!("{M} required _a=b;"),
        format!("{M} required $=b;"),
        format!("{M} required a='';"),
        format!("{M} required a = 'b' ;"),
        format!("{M} required a='b'c=d;"),
        format!("{M} required a=b,c=d;"),
        format!("{M} required a:b;"),
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" \
         password=\"p\\\"w;x\";"
            .into(),
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
         unsecuredLoginStringClaim_sub=\"alice\" unsecuredLoginLifetimeSeconds=3600;"
            .into(),
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
         unsecuredLoginStringClaim_sub=\"alice\" unsecuredLoginLifetimeSeconds=\"3600\";"
            .into(),
        format!("{M} required a='b' /* c"),
        format!("{M} required a='b'; //"),
        format!("{M} required a='b'; /"),
        format!("{M} required a='b'; x"),
    ]
}

fn props_cases() -> Vec<String> {
    [
        "a=1\nb:2\nc 3\nd = 4\ne : 5\nf\t6\ng \t = \t 7\nh\x0c8\n",
        "a==b\nc::d\ne =:f\n",
        "k  =  v w  ",
        "k\n=\n:v\n",
        "k=\n",
        "# a comment\n  ! another\n\n   \n\t\x0c\nk=v # not a comment\n#k2=v2\n  #\n",
        "# c \\\nk=v",
        "k=v\n# end",
        "a=1\r\nb=2\rc=3\n\n# x\r\n  d=4",
        "k=a\\\n   b\\\n\tc\nx=y",
        "k=a\\\r\n  b\\\r  c",
        "k=a\\\\\nb=c",
        "k=a\\\\\\\n b",
        "k=a\\\n\nb=c",
        "k=a\\",
        "k=a\\\n#b",
        "ke\\\n  y=v",
        "\\",
        "\\\n# c\nk=v",
        "\\\n",
        "\\\n\\\n",
        "k=\\t\\n\\r\\f\\\\\\a\\b\\=\\:\\ \\#\\!\\\"\\'",
        "k=caf\\u00e9 \\u00E9 \\u20ac",
        "k=\\ud83d\\ude00",
        "clé=été",
        "a\\=b=1\nc\\:d:2\ne\\ f 3\n\\#g=4\n\\!h=5\ni\\u003dj=6",
        "k=\\  v",
        "k=1\nk=2",
        "k=\\u12",
        "a=b\nk=\\u12g4",
        "k=\\u",
        "\n\nk\\u00=v",
        "k=\\u 123",
        "k=\\ud800",
        "k=\\udc00x",
        "k\\u00=\\u12",
        "\\u00=41",
        "k=\\u00411",
        "k=\\U0041",
        "k=\\u004",
        "k=\\u004\\\n1",
        "  \t\x0ck = v",
        "k=v\r\n\r\n\r\nj=w",
        "\u{feff}k=v",
        "k=v\\\n   \n",
        "k=v\\\n   ",
        "a b c",
        "a\\ b c",
        ":=",
        "=:",
        " = ",
        "\\ ",
        "k\\\\=v",
        "k=\\\\u0041",
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\\n    \
         username='K' \\\n    password='S';",
        "k=\u{85}v\u{2028}w",
        "k\u{a0}=v",
        "#\\\nk=v",
        "!x\r\nk=v",
        "k=v\r",
        "\r\n\r\n",
        "\n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// xorshift64: the same sequence everywhere, from a fixed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const JAAS_STARTS: &[&str] = &[
    "",
    "M required ",
    "M ",
    "'M' optional a=b ",
    "M REQUIRED a='b'",
];
const JAAS_PIECES: &[&str] = &[
    "a", "b1", "=", "'", "\"", "\\", ";", "/", "*", "\n", "\r", "1", ".", "-", "@", "é", "\u{85}",
    " ", "x=", "'v'", "//", "/*", "*/", "\\0", "\\377", "\\4", "required", "$", "_", "{", "😀",
    "\t", "\0", "ſ",
];
const PROPS_STARTS: &[&str] = &["", "k=", "k ", " ", "#"];
const PROPS_PIECES: &[&str] = &[
    "\\", "u", "0", "0041", "d83d", "de00", "'", "\"", "/", "\n", "\r", "\r\n", "=", ":", ";", "#",
    "!", " ", "\t", "\x0c", "a", "é", "😀", "\u{85}", "t", "n", "f", "r", "F",
];

/// `n` texts of a start and up to 19 random pieces.
fn random_cases(rng: &mut Rng, n: usize, starts: &[&str], pieces: &[&str]) -> Vec<String> {
    (0..n)
        .map(|_| {
            let mut s = rng.pick(starts).to_string();
            let len = rng.next() % 20;
            for _ in 0..len {
                s.push_str(rng.pick(pieces));
            }
            s
        })
        .collect()
}

/// Mostly well-formed entries with a perturbation or two, so that the option grammar is reached.
fn structured_jaas(rng: &mut Rng, n: usize) -> Vec<String> {
    let modules = [
        "M",
        "org.x.Y",
        "'q M'",
        "\"M\"",
        "$m",
        "_m",
        "m-1",
        "1m",
        "-m",
        "'com.sun.security.auth.module.JndiLoginModule'",
    ];
    let flags = [
        "required",
        "REQUIRED",
        "Optional",
        "sufficient",
        "requisite",
        "'required'",
        "requıred",
        "req",
        "1",
        "",
    ];
    let names = [
        "a",
        "user_name",
        "$x",
        "a.b",
        "a-b",
        "'n m'",
        "\"q\"",
        "1",
        "-",
        "@",
        "",
        "é",
        "a1",
        "=",
        "ſ",
    ];
    let values = [
        "v",
        "'v'",
        "\"v\"",
        "''",
        "1",
        "1a",
        "-1",
        "-x",
        ".x",
        "a.b-c",
        "p@ss",
        "'p@ss;=x'",
        "'a\\'b'",
        "\"a\\\"b\"",
        "'\\101\\477\\0'",
        "'x\ny'",
        "'unterminated",
        "\"a//b\"",
        "a/b",
        "'a/*b*/'",
        "{x}",
        "é😀",
        "'\\\\'",
        "\"\\",
        "\u{85}",
        "x\u{85}",
        "$",
        "_",
        "a$b",
    ];
    let gaps = [
        " ",
        " ",
        " ",
        "\n",
        "\t",
        " /* c */ ",
        " // c\n",
        "\r\n",
        "",
        " / x\n",
    ];
    let ends = [
        ";",
        ";",
        ";",
        "",
        ";;",
        "; M required;",
        ";\n// end",
        " ;",
        ";x",
        "; /* x",
    ];
    (0..n)
        .map(|_| {
            let mut s = String::new();
            s.push_str(rng.pick(&gaps));
            s.push_str(rng.pick(&modules));
            s.push(' ');
            s.push_str(rng.pick(&flags));
            for _ in 0..rng.next() % 4 {
                s.push_str(rng.pick(&gaps));
                s.push(' ');
                s.push_str(rng.pick(&names));
                s.push_str(rng.pick(&["=", "=", "=", " = ", " ", "=="]));
                s.push_str(rng.pick(&values));
            }
            s.push_str(rng.pick(&gaps));
            s.push_str(rng.pick(&ends));
            s
        })
        .collect()
}
