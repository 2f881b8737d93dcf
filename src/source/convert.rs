//! Conversions every backend shares when turning database values into `Value`s: base64 for
//! binary data, ISO-8601 spelling of dates and times, and single-precision floats. Kept in one
//! place so that the same stored value reads the same whichever database it came from.

// Each helper serves some backends only; builds without them would warn.
#![cfg_attr(not(all(feature = "postgres", feature = "mysql")), allow(dead_code))]

/// Standard base64 (RFC 4648 §4: alphabet `A–Z a–z 0–9 + /`, `=` padding), what Python's
/// `base64.b64encode` produces. Small enough that a crate would not pay for itself.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A single-precision float as the old tool saw it: drivers that read floats as text (psycopg2,
/// PyMySQL) got the server's shortest spelling of the f32 (`1.1`), which Python parsed into the
/// f64 1.1 — not the f64 widening of the f32 (1.100000023841858). The shortest round-trip
/// spelling of an f32 is what Rust's `Display` prints, so going through it gives the same f64.
pub fn f32_as_python(x: f32) -> f64 {
    if !x.is_finite() {
        return f64::from(x);
    }
    format!("{x}").parse().unwrap_or(f64::from(x))
}

/// A MySQL `DATE`, `DATETIME` or `TIMESTAMP` as Python's `isoformat()` spells the value the
/// old tool read: `2024-01-02`, or `2024-01-02T03:04:05` with `.ffffff` when there are
/// microseconds, and `Z` for `TIMESTAMP` (read in a UTC session). Written into `out` (cleared
/// first), so that a row's buffer is reused from row to row.
pub fn mysql_datetime(
    out: &mut String,
    (y, mo, d): (u16, u8, u8),
    time: Option<(u8, u8, u8, u32)>,
    utc: bool,
) {
    out.clear();
    let mut text = Ascii::default();
    text.padded(i64::from(y), 4);
    text.push(b'-');
    text.padded(i64::from(mo), 2);
    text.push(b'-');
    text.padded(i64::from(d), 2);
    if let Some((h, mi, s, us)) = time {
        text.push(b'T');
        text.clock(u64::from(h), mi, s, us);
        if utc {
            text.push(b'Z');
        }
    }
    out.push_str(text.as_str());
}

/// A MySQL `TIME` (-838:59:59 to 838:59:59, sent as days and hours) as MySQL writes it: hours
/// past 24 in the hours, `.ffffff` when there are microseconds. Written into `out`, cleared
/// first.
pub fn mysql_time(out: &mut String, negative: bool, (days, h, mi, s, us): (u32, u8, u8, u8, u32)) {
    out.clear();
    let mut text = Ascii::default();
    if negative {
        text.push(b'-');
    }
    text.clock(u64::from(days) * 24 + u64::from(h), mi, s, us);
    out.push_str(text.as_str());
}

/// Which kind of PostgreSQL date/time value a text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// `timestamp`, `date`, `time`: no offset.
    Naive,
    /// `timestamptz` read in a UTC session: `+00` is written `Z`.
    Utc,
}

/// Re-spells PostgreSQL's ISO text output of a date/time value in the form Python's
/// `isoformat()` uses: `T` between date and time, fractions padded to six digits, and for
/// `timestamptz` read in a UTC session, the `+00` offset written `Z`.
/// `2024-01-02 03:04:05.12+00` → `2024-01-02T03:04:05.120000Z`. Values with no time part
/// (`infinity`, `-infinity`) pass through unchanged.
pub fn pg_datetime_text(text: &str, zone: Zone) -> String {
    let utc = zone == Zone::Utc;
    let mut out = String::with_capacity(text.len() + 8);
    let mut in_fraction = false;
    let mut fraction_digits = 0;
    // BC dates end with " BC"; keep that suffix after the time.
    let (before_era, era) = match text.strip_suffix(" BC") {
        Some(b) => (b, " BC"),
        None => (text, ""),
    };
    let (body, zulu) = match before_era.strip_suffix("+00") {
        Some(b) if utc => (b, true),
        _ => (before_era, false),
    };
    let mut seen_space = false;
    for c in body.chars() {
        if in_fraction && !c.is_ascii_digit() {
            pad_fraction(&mut out, fraction_digits);
            in_fraction = false;
        }
        match c {
            ' ' if !seen_space => {
                seen_space = true;
                out.push('T');
            }
            '.' if seen_space => {
                in_fraction = true;
                fraction_digits = 0;
                out.push('.');
            }
            _ => {
                if in_fraction {
                    fraction_digits += 1;
                }
                out.push(c);
            }
        }
    }
    if in_fraction {
        pad_fraction(&mut out, fraction_digits);
    }
    if zulu {
        out.push('Z');
    }
    out.push_str(era);
    out
}

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;
/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i64 = 10_957;

/// A `timestamp` or `timestamptz` in PostgreSQL's binary format (microseconds since
/// 2000-01-01 00:00:00, UTC for `timestamptz`; `i64::MAX` and `i64::MIN` are ±infinity), written
/// into `out` as `pg_datetime_text` spells the server's ISO text of the same value: the
/// proleptic Gregorian date with at least four year digits, `T`, the time, six fractional
/// digits unless there are none, `Z` for `timestamptz`, and ` BC` for years before 1 (year 0
/// is 1 BC).
pub fn pg_timestamp(out: &mut String, micros: i64, zone: Zone) {
    out.clear();
    match micros {
        i64::MAX => return out.push_str("infinity"),
        i64::MIN => return out.push_str("-infinity"),
        _ => {}
    }
    let (days, time) = (micros.div_euclid(DAY_MICROS), micros.rem_euclid(DAY_MICROS));
    let (year, month, day) = civil_from_days(days + PG_EPOCH_DAYS);
    let (bc, year) = if year <= 0 {
        (true, 1 - year)
    } else {
        (false, year)
    };
    // Written on the stack and appended once: a push per character cost as much as the rest.
    let mut text = Ascii::default();
    text.padded(year, 4);
    text.push(b'-');
    text.padded(month, 2);
    text.push(b'-');
    text.padded(day, 2);
    text.push(b'T');
    // `time` is within one day: every part fits its type.
    let seconds = time / 1_000_000;
    text.clock(
        (seconds / 3600) as u64,
        (seconds / 60 % 60) as u8,
        (seconds % 60) as u8,
        (time % 1_000_000) as u32,
    );
    if zone == Zone::Utc {
        text.push(b'Z');
    }
    if bc {
        text.push_all(b" BC");
    }
    out.push_str(text.as_str());
}

/// A short ASCII text built on the stack: long enough for any timestamp (a year of at most
/// 19 digits, and 30 more bytes).
struct Ascii {
    bytes: [u8; 64],
    len: usize,
}

impl Default for Ascii {
    fn default() -> Ascii {
        Ascii {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl Ascii {
    fn push(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    fn push_all(&mut self, bytes: &[u8]) {
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// `hh:mm:ss`, and `.ffffff` when there are microseconds (as Python's `isoformat()`).
    fn clock(&mut self, hours: u64, minutes: u8, seconds: u8, micros: u32) {
        self.padded(i64::try_from(hours).unwrap_or(i64::MAX), 2);
        self.push(b':');
        self.padded(i64::from(minutes), 2);
        self.push(b':');
        self.padded(i64::from(seconds), 2);
        if micros != 0 {
            self.push(b'.');
            self.padded(i64::from(micros), 6);
        }
    }

    /// `value` (not negative) in decimal, zero-padded to at least `width` digits.
    fn padded(&mut self, value: i64, width: usize) {
        let mut digits = [0u8; 20];
        let mut n = value.unsigned_abs();
        let mut at = digits.len();
        while n > 0 || digits.len() - at < width {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.push_all(&digits[at..]);
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01; year 0 is 1 BC
/// (Howard Hinnant's `civil_from_days`, exact over all of i64's range divided by a day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Pads a time-of-day text (`03:04:05.1`, `03:04:05.1+02`) to six fractional digits.
pub fn pg_time_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 6);
    let mut in_fraction = false;
    let mut digits = 0;
    for c in text.chars() {
        if in_fraction && !c.is_ascii_digit() {
            pad_fraction(&mut out, digits);
            in_fraction = false;
        }
        if c == '.' {
            in_fraction = true;
            digits = 0;
        } else if in_fraction {
            digits += 1;
        }
        out.push(c);
    }
    if in_fraction {
        pad_fraction(&mut out, digits);
    }
    out
}

/// `inet::text` (always with a netmask) as `abbrev(inet)` and inet's output function write it:
/// without the netmask of a single host (`/32` for IPv4, `/128` for IPv6).
pub fn inet_abbrev(text: &str) -> &str {
    let host = if text.contains(':') { "/128" } else { "/32" };
    text.strip_suffix(host).unwrap_or(text)
}

fn pad_fraction(out: &mut String, digits: usize) {
    for _ in digits..6 {
        out.push('0');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        // RFC 4648 §10 test vectors.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        assert_eq!(base64(&[0, 0xff, 0xfe, 0]), "AP/+AA==");
    }

    #[test]
    fn f32_reads_like_its_decimal_spelling() {
        assert_eq!(f32_as_python(1.1), 1.1);
        assert_eq!(f32_as_python(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(f32_as_python(f32::MAX), 3.4028235e38);
        assert!(f32_as_python(f32::NAN).is_nan());
        assert_eq!(f32_as_python(f32::INFINITY), f64::INFINITY);
    }

    #[test]
    fn pg_datetimes_become_isoformat() {
        assert_eq!(
            pg_datetime_text("2024-01-02 03:04:05", Zone::Naive),
            "2024-01-02T03:04:05"
        );
        assert_eq!(
            pg_datetime_text("2024-01-02 03:04:05.12", Zone::Naive),
            "2024-01-02T03:04:05.120000"
        );
        assert_eq!(
            pg_datetime_text("2024-01-02 03:04:05.123456+00", Zone::Utc),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            pg_datetime_text("2024-01-02 03:04:05+00", Zone::Utc),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(pg_datetime_text("infinity", Zone::Utc), "infinity");
        assert_eq!(
            pg_datetime_text("0044-03-15 12:00:00+00 BC", Zone::Utc),
            "0044-03-15T12:00:00Z BC"
        );
        assert_eq!(pg_time_text("03:04:05.5"), "03:04:05.500000");
        assert_eq!(pg_time_text("03:04:05.5+02"), "03:04:05.500000+02");
        assert_eq!(pg_time_text("24:00:00"), "24:00:00");
    }

    /// The MySQL spellings, written on the stack into a reused buffer, against `format!` of the
    /// same parts (the way they were written before) over every field's range.
    #[test]
    fn mysql_dates_and_times_are_spelled_as_isoformat() {
        let mut out = String::from("left over from the previous row");
        for (y, mo, d) in [
            (0, 0, 0),
            (1, 1, 1),
            (999, 12, 31),
            (2024, 2, 29),
            (9999, 12, 31),
        ] {
            mysql_datetime(&mut out, (y, mo, d), None, false);
            assert_eq!(out, format!("{y:04}-{mo:02}-{d:02}"));
            for (h, mi, s) in [(0, 0, 0), (9, 5, 7), (23, 59, 59)] {
                for us in [0, 1, 120_000, 999_999] {
                    let fraction = if us == 0 {
                        String::new()
                    } else {
                        format!(".{us:06}")
                    };
                    let want = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{fraction}");
                    mysql_datetime(&mut out, (y, mo, d), Some((h, mi, s, us)), false);
                    assert_eq!(out, want);
                    mysql_datetime(&mut out, (y, mo, d), Some((h, mi, s, us)), true);
                    assert_eq!(out, format!("{want}Z"));
                }
            }
        }
        for negative in [false, true] {
            for (days, h) in [(0, 0), (0, 9), (1, 3), (34, 22)] {
                for us in [0, 7, 500_000] {
                    mysql_time(&mut out, negative, (days, h, 4, 59, us));
                    let hours = days * 24 + u32::from(h);
                    let fraction = if us == 0 {
                        String::new()
                    } else {
                        format!(".{us:06}")
                    };
                    let sign = if negative { "-" } else { "" };
                    assert_eq!(out, format!("{sign}{hours:02}:04:59{fraction}"));
                }
            }
        }
        // TIME's limits, as MySQL writes them.
        mysql_time(&mut out, true, (34, 22, 59, 59, 0));
        assert_eq!(out, "-838:59:59");
    }

    #[test]
    fn binary_timestamps_are_spelled_like_the_text_form() {
        let spell = |micros: i64, zone: Zone| {
            // A reused buffer holding something else first, as a slot would.
            let mut out = String::from("left over from the row before");
            pg_timestamp(&mut out, micros, zone);
            out
        };
        const SECOND: i64 = 1_000_000;
        const DAY: i64 = 86_400 * SECOND;
        assert_eq!(spell(0, Zone::Naive), "2000-01-01T00:00:00");
        assert_eq!(spell(0, Zone::Utc), "2000-01-01T00:00:00Z");
        assert_eq!(spell(-1, Zone::Naive), "1999-12-31T23:59:59.999999");
        assert_eq!(spell(SECOND / 2, Zone::Utc), "2000-01-01T00:00:00.500000Z");
        // 2000-02-29 (a leap day in a year divisible by 400) and the day after it.
        assert_eq!(spell(59 * DAY, Zone::Naive), "2000-02-29T00:00:00");
        assert_eq!(spell(60 * DAY, Zone::Naive), "2000-03-01T00:00:00");
        // 1970-01-01, PostgreSQL's epoch minus 10957 days.
        assert_eq!(spell(-10_957 * DAY, Zone::Naive), "1970-01-01T00:00:00");
        // 0001-01-01 is 730119 days before 2000-01-01; the day before is in year 0, 1 BC.
        assert_eq!(spell(-730_119 * DAY, Zone::Naive), "0001-01-01T00:00:00");
        assert_eq!(spell(-730_120 * DAY, Zone::Naive), "0001-12-31T00:00:00 BC");
        assert_eq!(spell(-730_120 * DAY, Zone::Utc), "0001-12-31T00:00:00Z BC");
        assert_eq!(spell(i64::MAX, Zone::Utc), "infinity");
        assert_eq!(spell(i64::MIN, Zone::Naive), "-infinity");
        // PostgreSQL's last instant, 294276-12-31 23:59:59.999999 (its END_TIMESTAMP - 1).
        assert_eq!(
            spell(9_223_371_331_200_000_000 - 1, Zone::Naive),
            "294276-12-31T23:59:59.999999"
        );
    }

    #[test]
    fn inet_text_loses_a_single_hosts_netmask() {
        assert_eq!(inet_abbrev("192.168.0.1/32"), "192.168.0.1");
        assert_eq!(inet_abbrev("192.168.0.1/24"), "192.168.0.1/24");
        assert_eq!(inet_abbrev("::1/128"), "::1");
        assert_eq!(inet_abbrev("::ffff:1.2.3.4/128"), "::ffff:1.2.3.4");
        assert_eq!(inet_abbrev("2001:db8::/32"), "2001:db8::/32");
    }
}
