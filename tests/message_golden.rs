//! Checks the message encoder and row hash against CPython's `json.dumps`, the reference the old
//! tool's consumers verify hashes with.
//!
//! Two sources of truth, both produced by `tests/golden/gen_hashes.py` (stdlib Python only):
//! the committed golden vectors (`rows.jsonl` → `hashes.jsonl`) for hand-picked tricky rows, and a
//! few thousand seeded random rows that this test writes out and runs through python3 itself.
//! Rows travel in a tagged format (see the script's docstring) so each value is read back as
//! exactly the same `Value` variant and the same f64 bits on both sides.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use repliqate::message::{row_hash, MessageEncoder, RowHasher};
use repliqate::value::Value;
use serde_json::{json, Value as J};

/// Must match NAME, TABLE and TIMESTAMP in gen_hashes.py.
const NAME: &str = "bench-\u{fc}/\"q\"";
const TABLE: &str = "events";
const TIMESTAMP: f64 = 1795465354.2384515;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

struct Row {
    columns: Vec<String>,
    values: Vec<Value>,
    timestamp: f64,
}

struct Expected {
    canonical: String,
    sha256: String,
    message: String,
}

fn text(tagged: &J, at: usize) -> &str {
    tagged
        .get(at)
        .and_then(J::as_str)
        .unwrap_or_else(|| panic!("expected a string at position {at} of {tagged}"))
}

fn float(s: &str) -> f64 {
    // Rust's float parsing is correctly rounded, like Python's float().
    s.parse()
        .unwrap_or_else(|e| panic!("bad float {s:?} in fixture: {e}"))
}

fn json_number_from_int(s: &str) -> serde_json::Number {
    if let Ok(i) = s.parse::<i64>() {
        i.into()
    } else {
        s.parse::<u64>()
            .unwrap_or_else(|e| panic!("bad integer {s:?} in fixture: {e}"))
            .into()
    }
}

fn decode_json(tagged: &J) -> J {
    match text(tagged, 0) {
        "null" => J::Null,
        "bool" => tagged[1].clone(),
        "str" => tagged[1].clone(),
        "int" => J::Number(json_number_from_int(text(tagged, 1))),
        "float" => serde_json::Number::from_f64(float(text(tagged, 1)))
            .map(J::Number)
            .unwrap_or(J::Null),
        "arr" => J::Array(
            tagged[1]
                .as_array()
                .expect("arr payload")
                .iter()
                .map(decode_json)
                .collect(),
        ),
        "obj" => {
            let mut map = serde_json::Map::new();
            for member in tagged[1].as_array().expect("obj payload") {
                map.insert(text(member, 0).to_string(), decode_json(&member[1]));
            }
            J::Object(map)
        }
        other => panic!("unknown json tag {other:?}"),
    }
}

fn decode_value(tagged: &J) -> Value {
    match text(tagged, 0) {
        "null" => Value::Null,
        "bool" => Value::Bool(tagged[1].as_bool().expect("bool payload")),
        "str" => Value::Str(text(tagged, 1).to_string()),
        "int" => Value::Int(text(tagged, 1).parse().expect("i64 payload")),
        "uint" => Value::UInt(text(tagged, 1).parse().expect("u64 payload")),
        "float" => Value::Float(float(text(tagged, 1))),
        "json" => Value::Json(Box::new(decode_json(&tagged[1]))),
        other => panic!("unknown value tag {other:?}"),
    }
}

fn decode_row(line: &str) -> Row {
    let row: J = serde_json::from_str(line).expect("fixture line is JSON");
    let columns = row["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c.as_str().expect("column name").to_string())
        .collect();
    let values = row["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(decode_value)
        .collect();
    let timestamp = row.get("timestamp").map_or(TIMESTAMP, |t| {
        float(t.as_str().expect("timestamp is a string"))
    });
    Row {
        columns,
        values,
        timestamp,
    }
}

fn decode_expected(line: &str) -> Expected {
    let e: J = serde_json::from_str(line).expect("hashes line is JSON");
    let field = |name: &str| e[name].as_str().expect(name).to_string();
    Expected {
        canonical: field("canonical"),
        sha256: field("sha256"),
        message: field("message"),
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Compares our encoding of every row with Python's; returns a description of each mismatch.
fn compare(rows: &[String], expected: &[String]) -> Vec<String> {
    assert_eq!(rows.len(), expected.len(), "one expected line per row");
    let mut failures = Vec::new();
    for (n, (row_line, expected_line)) in rows.iter().zip(expected).enumerate() {
        let row = decode_row(row_line);
        let want = decode_expected(expected_line);

        let mut hasher = RowHasher::new(&row.columns);
        let canonical = hasher.canonical(&row.values).expect("row fits its columns");
        let canonical = String::from_utf8_lossy(canonical).into_owned();
        let hash = row_hash(&row.columns, &row.values).expect("row fits its columns");
        let mut message = Vec::new();
        MessageEncoder::new(NAME, TABLE, &row.columns)
            .encode(row.timestamp, &row.values, &mut message)
            .expect("row fits its columns");
        let message = String::from_utf8_lossy(&message).into_owned();

        for (what, ours, python) in [
            ("canonical", &canonical, &want.canonical),
            ("sha256", &hash, &want.sha256),
            ("message", &message, &want.message),
        ] {
            if ours != python {
                failures.push(format!(
                    "row {n} {what} differs\n  row:    {row_line}\n  ours:   {ours}\n  python: {python}"
                ));
            }
        }
    }
    failures
}

#[test]
fn golden_vectors_match_python() {
    let dir = golden_dir();
    let rows = lines(&dir.join("rows.jsonl"));
    let expected = lines(&dir.join("hashes.jsonl"));
    assert!(rows.len() >= 20, "the fixture lost rows");
    let failures = compare(&rows, &expected);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// SplitMix64: a tiny deterministic PRNG, so failures reproduce without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn char(&mut self) -> char {
        let code = match self.below(20) {
            0..=9 => 0x20 + self.below(0x5f) as u32, // printable ASCII
            10 => self.below(0x20) as u32,           // controls
            11 => [0x7f, u32::from('"'), u32::from('\\'), u32::from('/')][self.below(4) as usize],
            12 | 13 => 0x80 + self.below(0x180) as u32, // Latin-1 and Latin Extended
            14 => 0x300 + self.below(0x70) as u32,      // combining marks
            15 | 16 => 0x800 + self.below(0xf800) as u32, // rest of the BMP (surrogates dropped)
            _ => 0x10000 + self.below(0x100000) as u32, // astral planes
        };
        char::from_u32(code).unwrap_or('\u{fffd}')
    }

    fn string(&mut self, max_len: u64) -> String {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.char()).collect()
    }

    fn i64(&mut self) -> i64 {
        let near = [0i64, 1 << 53, -(1 << 53), i64::MIN, i64::MAX];
        match self.below(4) {
            0 => self.next() as i64,
            1 => near[self.below(5) as usize].wrapping_add(self.below(5) as i64 - 2),
            _ => (self.below(2_000_000) as i64) - 1_000_000,
        }
    }

    fn f64(&mut self, finite_only: bool) -> f64 {
        let f = match self.below(6) {
            0 => f64::from_bits(self.next()), // anything, subnormals and NaN included
            1 => (self.below(1 << 60) as f64) * if self.below(2) == 0 { 1.0 } else { -1.0 },
            2 => self.below(1_000_000_000) as f64 / 10f64.powi(self.below(21) as i32),
            // Around the switches between positional and scientific notation.
            3 => self.unit() * 10f64.powi(self.below(26) as i32 - 7),
            4 => {
                let specials = [
                    0.0,
                    -0.0,
                    0.1,
                    1e16,
                    1e-5,
                    1e22,
                    5e-324,
                    f64::MAX,
                    f64::MIN_POSITIVE,
                    9999999999999998.0,
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                ];
                specials[self.below(specials.len() as u64) as usize]
            }
            _ => (self.unit() - 0.5) * 1e4,
        };
        if finite_only && !f.is_finite() {
            0.5
        } else {
            f
        }
    }

    /// A random value in the fixture's tagged form.
    fn tagged_value(&mut self) -> J {
        match self.below(9) {
            0 => json!(["null"]),
            1 => json!(["bool", self.below(2) == 0]),
            2 => json!(["int", self.i64().to_string()]),
            3 => json!(["uint", self.next().to_string()]),
            4 | 5 => json!(["float", format!("{:e}", self.f64(false))]),
            6 | 7 => json!(["str", self.string(16)]),
            _ => json!(["json", self.tagged_json(3)]),
        }
    }

    fn tagged_json(&mut self, depth: u32) -> J {
        let kinds = if depth == 0 { 5 } else { 7 };
        match self.below(kinds) {
            0 => json!(["null"]),
            1 => json!(["bool", self.below(2) == 0]),
            2 => json!(["int", self.i64().to_string()]),
            3 => json!(["float", format!("{:e}", self.f64(true))]),
            4 => json!(["str", self.string(8)]),
            5 => {
                let items: Vec<J> = (0..self.below(4))
                    .map(|_| self.tagged_json(depth - 1))
                    .collect();
                json!(["arr", items])
            }
            _ => {
                let members: Vec<J> = (0..self.below(5))
                    .map(|_| json!([self.key(), self.tagged_json(depth - 1)]))
                    .collect();
                json!(["obj", members])
            }
        }
    }

    /// Keys drawn so that collisions, case variants and non-ASCII ordering come up often.
    fn key(&mut self) -> String {
        let fixed = [
            "id",
            "a",
            "A",
            "b",
            "B",
            "",
            "\u{e9}",
            "\u{1f600}",
            "\u{ffff}",
            "\u{e000}",
        ];
        match self.below(3) {
            0 => fixed[self.below(fixed.len() as u64) as usize].to_string(),
            _ => self.string(6),
        }
    }

    fn row(&mut self) -> J {
        let n = self.below(9);
        let columns: Vec<String> = (0..n).map(|_| self.key()).collect();
        let values: Vec<J> = (0..n).map(|_| self.tagged_value()).collect();
        let timestamp = 1.5e9 + self.unit() * 5e8;
        json!({"columns": columns, "values": values, "timestamp": format!("{timestamp:e}")})
    }
}

#[test]
fn random_rows_match_python() {
    const ROWS: usize = 3000;
    let mut rng = Rng(0x5eed_2024_0001);
    let mut fixture = String::new();
    for _ in 0..ROWS {
        let line = serde_json::to_string(&rng.row()).expect("serialisable");
        writeln!(fixture, "{line}").expect("writing to a String");
    }

    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let rows_path = tmp.join(format!("message-random-rows-{}.jsonl", std::process::id()));
    let out_path = tmp.join(format!(
        "message-random-hashes-{}.jsonl",
        std::process::id()
    ));
    std::fs::write(&rows_path, &fixture).expect("writing the random rows");

    let script = golden_dir().join("gen_hashes.py");
    let output = match Command::new("python3")
        .arg(&script)
        .arg(&rows_path)
        .arg(&out_path)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "python3 is not on PATH: this test needs it as the reference json.dumps; \
             install python3 (e.g. `apt-get install python3`) and rerun"
        ),
        Err(e) => panic!("running python3 {}: {e}", script.display()),
    };
    assert!(
        output.status.success(),
        "python3 {} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );

    let rows = lines(&rows_path);
    let expected = lines(&out_path);
    let failures = compare(&rows, &expected);
    let _ = std::fs::remove_file(&rows_path);
    let _ = std::fs::remove_file(&out_path);
    assert!(
        failures.is_empty(),
        "{} of {ROWS} random rows differ from Python; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
