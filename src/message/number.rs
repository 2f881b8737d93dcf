//! Numbers as Python writes them: integers in decimal, floats as `repr(float)` (the shortest
//! digits that round-trip, CPython's tie rule and its choice between positional and scientific
//! notation).
//!
//! It stands at the bottom of the message encoder: the JSON writer (`json.rs`) and the message's
//! timestamp use it; it uses none of its neighbours.

use std::fmt;
use std::fmt::Write as _;

pub fn write_i64(out: &mut Vec<u8>, i: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
}

pub fn write_u64(out: &mut Vec<u8>, u: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
}

/// Appends a float as Python's `repr(float)` writes it; non-finite values as `null` (see the
/// `message` module documentation).
///
/// Rust's `{:e}` gives the shortest digits that round-trip plus the decimal exponent, as CPython's
/// `repr` (David Gay's dtoa, shortest mode) does, except for exact ties (see [`Shortest::fix_tie`]).
/// Python then writes scientific notation when the exponent is < -4 or >= 16 (`1e-05`, `1e+16`,
/// the exponent with a sign and at least two digits) and positional notation otherwise, always
/// with a fractional part (`1.0`, `0.0001`).
pub fn write_py_float(out: &mut Vec<u8>, f: f64) {
    if !f.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if f.is_sign_negative() {
        out.push(b'-');
    }
    if write_short_positional(out, f.abs()) {
        return;
    }
    let mut shortest = Shortest::of(f.abs());
    shortest.fix_tie(f.abs());
    shortest.write_python_layout(out);
}

/// Powers of ten that are exact doubles.
const POW10: [f64; 20] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19,
];

/// Fast path for the common case, a non-negative float in [1e-4, 1e15) that is a decimal of at
/// most 15 significant digits (prices, measurements, whole numbers); returns false, having
/// written nothing, for anything else. It avoids the formatting machinery (~100 ns).
///
/// Why it is exact: `n / 10^k` with `n < 10^15 < 2^53` and `k <= 19` divides two exact doubles,
/// so IEEE division rounds it correctly, exactly as parsing the decimal would; equality with `f`
/// therefore means the decimal round-trips. Two distinct decimals of at most 15 significant
/// digits never round to the same double (DBL_DIG = 15), so the first (fewest-digit) `k` that
/// round-trips yields the one shortest representation, which is what Python prints. The range
/// keeps Python in positional notation (decimal exponent in -4..16).
fn write_short_positional(out: &mut Vec<u8>, f: f64) -> bool {
    const LIMIT: f64 = 1e15;
    if !(1e-4..LIMIT).contains(&f) && f != 0.0 {
        return false;
    }
    for (k, &scale) in POW10.iter().enumerate() {
        let scaled = f * scale;
        if scaled >= LIMIT {
            return false;
        }
        let n = scaled.round();
        if n / scale == f {
            let n = n as u64; // exact: an integer below 10^15
            let divisor = 10u64.pow(k as u32);
            write_u64(out, n / divisor);
            out.push(b'.');
            if k == 0 {
                out.push(b'0');
            } else {
                // The fraction's k digits, zero-padded on the left; the last one is non-zero
                // because a smaller k would have matched otherwise.
                let mut digits = [b'0'; 19];
                let mut fraction = n % divisor;
                for slot in digits[..k].iter_mut().rev() {
                    *slot = b'0' + (fraction % 10) as u8;
                    fraction /= 10;
                }
                out.extend_from_slice(&digits[..k]);
            }
            return true;
        }
    }
    false
}

/// A stack buffer for formatter output, so formatting a float does not allocate.
struct StackBuf {
    bytes: [u8; 40],
    len: usize,
}

impl StackBuf {
    fn new() -> StackBuf {
        StackBuf {
            bytes: [0; 40],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dest = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The shortest round-trip decimal digits of a non-negative finite float: the value is
/// `0.d1d2…dn × 10^(exp + 1)`, i.e. `d1.d2…dn × 10^exp`.
struct Shortest {
    digits: [u8; 17], // ASCII; a double never needs more than 17 significant digits
    len: usize,
    exp: i32,
}

impl Shortest {
    fn of(f: f64) -> Shortest {
        let mut buf = StackBuf::new();
        // `d[.ddd]e[-]x` is at most 17 digits, '.', 'e', '-' and 3 exponent digits: 40 bytes
        // always suffice, so the `Err` arm (which would leave "0") is unreachable.
        let _ = write!(buf, "{:e}", f);
        Shortest::parse(buf.as_bytes())
    }

    fn parse(sci: &[u8]) -> Shortest {
        let mut s = Shortest {
            digits: [b'0'; 17],
            len: 0,
            exp: 0,
        };
        let e = sci.iter().position(|&b| b == b'e').unwrap_or(sci.len());
        for &b in sci[..e].iter().filter(|b| b.is_ascii_digit()) {
            if let Some(slot) = s.digits.get_mut(s.len) {
                *slot = b;
                s.len += 1;
            }
        }
        s.len = s.len.max(1);
        let (negative, exp_digits) = match sci.get(e + 1..).unwrap_or_default() {
            [b'-', rest @ ..] => (true, rest),
            rest => (false, rest),
        };
        let magnitude = exp_digits
            .iter()
            .fold(0i32, |n, d| n * 10 + i32::from(d.wrapping_sub(b'0')));
        s.exp = if negative { -magnitude } else { magnitude };
        s
    }

    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }

    fn as_integer(&self) -> u64 {
        self.digits()
            .iter()
            .fold(0, |n, d| n * 10 + u64::from(d - b'0'))
    }

    /// Makes exact ties come out as CPython's: when the float lies exactly halfway between two
    /// shortest candidates (e.g. 1490583350571086.25 between …086.2 and …086.3), Gay's dtoa
    /// takes the one with the even last digit while Rust may take the other.
    ///
    /// Only a candidate with an odd last digit can be the wrong one. Whether the float is exactly
    /// halfway is decided with integer arithmetic; the neighbour is then used if it round-trips.
    fn fix_tie(&mut self, f: f64) {
        if self.digits()[self.len - 1].is_multiple_of(2) {
            return;
        }
        let d = self.as_integer();
        // Both candidates are `len`-digit integers times 10^(exp - len + 1); a tie point between
        // two of them is (10·d ± 5) × 10^(exp - len).
        let scale = self.exp - self.len as i32;
        for (tie, neighbour) in [(10 * d - 5, d - 1), (10 * d + 5, d + 1)] {
            if is_exactly(f, tie, scale) {
                if let Some(other) = self.with_digits(neighbour) {
                    if other.parse_f64() == Some(f) {
                        *self = other;
                    }
                }
                return;
            }
        }
    }

    /// The same scale with other digits (trailing zeros dropped, a carry into a new digit moves
    /// the exponent).
    fn with_digits(&self, n: u64) -> Option<Shortest> {
        if n == 0 {
            return None;
        }
        let mut text = Vec::with_capacity(20);
        write_u64(&mut text, n);
        let exp = self.exp + (text.len() as i32 - self.len as i32);
        while text.len() > 1 && text.last() == Some(&b'0') {
            text.pop();
        }
        let mut s = Shortest {
            digits: [b'0'; 17],
            len: text.len(),
            exp,
        };
        s.digits.get_mut(..text.len())?.copy_from_slice(&text);
        Some(s)
    }

    fn parse_f64(&self) -> Option<f64> {
        let mut buf = StackBuf::new();
        let (first, rest) = self.digits().split_first()?;
        buf.bytes[0] = *first;
        buf.len = 1;
        write!(buf, ".{}e{}", std::str::from_utf8(rest).ok()?, self.exp).ok()?;
        std::str::from_utf8(buf.as_bytes()).ok()?.parse().ok()
    }

    fn write_python_layout(&self, out: &mut Vec<u8>) {
        let (first, rest) = self.digits().split_first().unwrap_or((&b'0', &[]));
        let exp = self.exp;
        if !(-4..16).contains(&exp) {
            out.push(*first);
            if !rest.is_empty() {
                out.push(b'.');
                out.extend_from_slice(rest);
            }
            out.push(b'e');
            out.push(if exp < 0 { b'-' } else { b'+' });
            if exp.abs() < 10 {
                out.push(b'0');
            }
            write_u64(out, u64::from(exp.unsigned_abs()));
        } else if exp < 0 {
            out.extend_from_slice(b"0.");
            for _ in 0..(-exp - 1) {
                out.push(b'0');
            }
            out.push(*first);
            out.extend_from_slice(rest);
        } else {
            // `exp` digits after `first` belong to the integer part.
            let int_rest = exp as usize;
            out.push(*first);
            if rest.len() > int_rest {
                out.extend_from_slice(&rest[..int_rest]);
                out.push(b'.');
                out.extend_from_slice(&rest[int_rest..]);
            } else {
                out.extend_from_slice(rest);
                for _ in rest.len()..int_rest {
                    out.push(b'0');
                }
                out.extend_from_slice(b".0");
            }
        }
    }
}

/// Whether the non-negative finite `f` equals `t × 10^scale` exactly, for an odd `t`.
///
/// Write `f = m·2^p` with `m` odd. As `t` and 5 are odd, `t·10^scale = (t·5^scale)·2^scale` for
/// `scale >= 0` and `t / (5^-scale · 2^-scale)` otherwise, so equality means `p == scale` and
/// `m == t·5^scale` (resp. `m·5^-scale == t`).
fn is_exactly(f: f64, t: u64, scale: i32) -> bool {
    let bits = f.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, exp2) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    if mantissa == 0 {
        return false;
    }
    let zeros = mantissa.trailing_zeros();
    let (m, p) = (u128::from(mantissa >> zeros), exp2 + zeros as i32);
    if p != scale {
        return false;
    }
    let Some(five) = 5u128.checked_pow(scale.unsigned_abs()) else {
        return false;
    };
    if scale >= 0 {
        u128::from(t).checked_mul(five) == Some(m)
    } else {
        m.checked_mul(five) == Some(u128::from(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(f: f64) -> String {
        let mut out = Vec::new();
        write_py_float(&mut out, f);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn floats_match_python_repr() {
        // Right-hand sides printed by CPython 3.11 `repr(float)`.
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-1.0, "-1.0"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (1234567.0, "1234567.0"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (1e-5, "1e-05"),
            (1e-7, "1e-07"),
            (-1.2345e-7, "-1.2345e-07"),
            (1e16, "1e+16"),
            (1e22, "1e+22"),
            (1.5e300, "1.5e+300"),
            (9999999999999998.0, "9999999999999998.0"),
            (123456789012345.6, "123456789012345.6"),
            (0.30000000000000004, "0.30000000000000004"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (12345678901234567890.0, "1.2345678901234567e+19"),
            (1795465354.2384515, "1795465354.2384515"),
            (394.12, "394.12"),
            // Exact ties between two shortest candidates: CPython takes the even last digit.
            (1490583350571086.0 + 0.25, "1490583350571086.2"),
            (1490583350571086.0 + 0.75, "1490583350571086.8"),
            // Around the edges of the short positional fast path.
            (0.001, "0.001"),
            (0.000123456789012345, "0.000123456789012345"),
            (99999.99999999999, "99999.99999999999"),
            (999999999999999.9, "999999999999999.9"),
            (999999999999999.0, "999999999999999.0"),
            (1e15, "1000000000000000.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (2.675, "2.675"),
            (0.00009999999999999999, "9.999999999999999e-05"),
        ];
        for &(f, python) in cases {
            assert_eq!(float(f), python, "repr of {f:e}");
        }
    }

    #[test]
    fn non_finite_floats_are_null() {
        assert_eq!(float(f64::NAN), "null");
        assert_eq!(float(f64::INFINITY), "null");
        assert_eq!(float(f64::NEG_INFINITY), "null");
    }

    #[test]
    fn integers_are_decimal() {
        let mut out = Vec::new();
        write_i64(&mut out, i64::MIN);
        out.push(b' ');
        write_i64(&mut out, 0);
        out.push(b' ');
        write_u64(&mut out, u64::MAX);
        assert_eq!(out, b"-9223372036854775808 0 18446744073709551615");
    }
}
