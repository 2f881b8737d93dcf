//! Expected values, computed here without repliqate: varied and edge values for the columns of
//! the end-to-end tests (strings that exercise the JSON encoder, floats, dates, JSON documents)
//! and their published forms, and the check of published messages by an independent python3
//! (`json.dumps(data, sort_keys=True)` is the contract).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::env::TempDir;

/// The checker script (tests/e2e/check_messages.py).
pub fn checker_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/check_messages.py")
}

/// Has python3 check every message against its expected `data` (canonical forms compared with
/// `json.dumps(…, sort_keys=True)`, so `1` ≠ `1.0` and `-0.0` ≠ `0.0`), the key order of the
/// message and of `data`, `name`, `table`, `timestamp` within [`t0`, `t1`], and `hash` =
/// sha256 of `json.dumps(data, sort_keys=True)`. `pairs` are (expected data as JSON text with
/// keys in column order, the message value as consumed). Panics with python's report unless it
/// prints `ok`.
pub fn python_check(pairs: &[(String, &[u8])], name: &str, table: &str, t0: f64, t1: f64) {
    let dir = TempDir::new("pycheck");
    let path = dir.path().join("messages.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("temp file"));
    for (expected, value) in pairs {
        // One JSON document per line: the message as published, verbatim, beside its
        // expectation. JSON text holds no raw newline (it is escaped inside strings).
        f.write_all(b"{\"expected\": ").unwrap();
        f.write_all(expected.as_bytes()).unwrap();
        f.write_all(b", \"message\": ").unwrap();
        f.write_all(value).unwrap();
        f.write_all(b"}\n").unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let output = Command::new("python3")
        .arg(checker_script())
        .arg(&path)
        .args([name, table, &t0.to_string(), &t1.to_string()])
        .output()
        .unwrap_or_else(|e| {
            panic!("running python3: {e}; this test needs python3 (apt-get install python3)")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim() == format!("ok {}", pairs.len()),
        "python3 check of {} messages failed:\n{stdout}\n{}",
        pairs.len(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// splitmix64: deterministic, varied test values.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian; H. Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD`, `HH:MM:SS` of epoch seconds (UTC).
pub fn date_time(secs: i64) -> (String, String) {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
    )
}

/// `.ffffff`, or nothing for zero microseconds (Python's `isoformat()`).
pub fn micros_suffix(micros: u32) -> String {
    if micros == 0 {
        String::new()
    } else {
        format!(".{micros:06}")
    }
}

/// Strings that exercise the JSON encoder: escapes, control characters, non-ASCII, astral
/// characters (surrogate pairs), `/`, quotes and backslashes.
pub const TRICKY_STRINGS: &[&str] = &[
    "",
    "plain",
    "héllo wörld",
    "emoji 🎉 and 𝄞",
    "quote \" backslash \\ slash /",
    "new\nline\r\ttab\u{8}\u{c}",
    "ctrl \u{1}\u{1f}\u{7f}",
    "日本語テキスト",
    "\u{2028}\u{2029}\u{feff}",
    "' OR 1=1; --",
    "  spaces around  ",
    "{\"not\": \"json\"}",
];

/// A string for row `i`: one of the tricky ones, or a generated one of varying length.
pub fn text_value(i: u64, salt: u64) -> String {
    let r = mix(i ^ salt);
    if r.is_multiple_of(3) {
        TRICKY_STRINGS[(r >> 8) as usize % TRICKY_STRINGS.len()].to_string()
    } else {
        let len = (r >> 16) % 40;
        let pool: Vec<char> = "abcXYZ 0189_-é€🎉\"\\\n".chars().collect();
        (0..len)
            .map(|k| pool[(mix(r ^ k) % pool.len() as u64) as usize])
            .collect()
    }
}

/// Finite f64 edge values and random ones; `None` = use a non-finite value (published as null).
pub fn float_value(i: u64, salt: u64) -> f64 {
    const EDGES: &[f64] = &[
        0.0,
        -0.0,
        1.0,
        -1.5,
        0.1,
        1e16,
        1e-5,
        0.0001,
        123_456_789_012_345.6,
        1.5e300,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        -2.5e-10,
        9_007_199_254_740_993.0,
    ];
    let r = mix(i ^ salt);
    if r.is_multiple_of(4) {
        EDGES[(r >> 8) as usize % EDGES.len()]
    } else {
        let x = f64::from_bits(mix(r));
        if x.is_finite() {
            x
        } else {
            (r >> 11) as f64 / 1024.0
        }
    }
}

/// f32 edge values and random ones (finite).
pub fn float32_value(i: u64, salt: u64) -> f32 {
    const EDGES: &[f32] = &[
        0.0,
        -0.0,
        1.1,
        3.402_823_5e38,
        1e-45,
        -0.5,
        16_777_217.0,
        0.3,
    ];
    let r = mix(i ^ salt);
    if r.is_multiple_of(4) {
        EDGES[(r >> 8) as usize % EDGES.len()]
    } else {
        let x = f32::from_bits(mix(r) as u32);
        if x.is_finite() {
            x
        } else {
            (r >> 40) as f32 / 8.0
        }
    }
}

/// The value a consumer sees for an f32 column: the shortest decimal that round-trips the f32,
/// read as a double (what Python would get from `float(str(x))`).
pub fn f32_published(x: f32) -> f64 {
    format!("{x}").parse::<f64>().expect("f32 display parses")
}

/// serde_json value of an f64, with non-finite values as null (documented in src/message.rs).
pub fn json_f64(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// A nested JSON document for row `i`, keys deliberately not sorted.
pub fn json_doc(i: u64) -> serde_json::Value {
    let r = mix(i ^ 0x1234);
    match r % 5 {
        0 => {
            serde_json::json!({"zeta": i, "alpha": [1, 2.5, null, true], "m": {"y": "é🎉", "b": -3.75}})
        }
        1 => serde_json::json!([]),
        2 => serde_json::json!("just a string \"q\""),
        3 => {
            serde_json::json!({"n": (r >> 20) as i64 - (1 << 40), "list": [{"b": 1, "a": 0.1}], "s": text_value(i, 99)})
        }
        _ => serde_json::json!({}),
    }
}
