//! Resource quantities (`500m`, `1.5Gi`, `2e3`): the one parser every component uses, so a value
//! admission accepts is the value the scheduler and the kubelet read.
//!
//! Grammar (upstream `resource.ParseQuantity`):
//! `<sign>? (<digits> | <digits>.<digits> | <digits>. | .<digits>) <suffix>` where the suffix is a
//! decimal SI one (`n u m "" k M G T P E`), a binary one (`Ki Mi Gi Ti Pi Ei`) or a decimal exponent
//! (`e`/`E` and a signed integer). No whitespace anywhere.
//!
//! Values are exact decimals (no floating point). As upstream does on parsing, a non-zero value is
//! rounded up (away from zero) to a whole number of nanos, and its magnitude is capped at
//! `i64::MAX` units. [`Quantity::value`] and [`Quantity::milli_value`] round up (away from zero)
//! as upstream's `Value` and `MilliValue` do, saturating at the `i64` bounds.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The message upstream gives for an unparsable quantity.
pub const FORMAT_MSG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A string that is not a quantity; displays as upstream's [`FORMAT_MSG`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantityError;

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(FORMAT_MSG)
    }
}

impl std::error::Error for QuantityError {}

/// An exact decimal: `(-1)^neg × digits × 10^exp10`, digits big-endian, without leading or
/// trailing zeros (zero is no digits, `exp10` 0, not negative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    neg: bool,
    digits: Vec<u8>,
    exp10: i64,
}

/// The finest precision a quantity keeps (upstream rounds up to nanos).
const NANO_EXP: i64 = -9;

/// Parses a quantity string.
pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut neg = false;
    if let Some(&c) = b.first() {
        if c == b'+' || c == b'-' {
            neg = c == b'-';
            i = 1;
        }
    }
    let mut digits = Vec::new();
    let mut frac_len: i64 = 0;
    let mut seen_digit = false;
    let mut seen_dot = false;
    while let Some(&c) = b.get(i) {
        if c.is_ascii_digit() {
            seen_digit = true;
            digits.push(c - b'0');
            if seen_dot {
                frac_len += 1;
            }
        } else if c == b'.' && !seen_dot {
            seen_dot = true;
        } else {
            break;
        }
        i += 1;
    }
    if !seen_digit {
        return Err(QuantityError);
    }
    let suffix = s.get(i..).ok_or(QuantityError)?;
    let (exp10, pow1024): (i64, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 1),
        "Mi" => (0, 2),
        "Gi" => (0, 3),
        "Ti" => (0, 4),
        "Pi" => (0, 5),
        "Ei" => (0, 6),
        other => {
            let rest = other.strip_prefix(['e', 'E']).ok_or(QuantityError)?;
            let body = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            // Upstream keeps the exponent in an int32; nine digits always fit.
            if body.is_empty() || body.len() > 9 || !body.bytes().all(|c| c.is_ascii_digit()) {
                return Err(QuantityError);
            }
            (rest.parse::<i64>().map_err(|_| QuantityError)?, 0)
        }
    };
    for _ in 0..pow1024 {
        mul_small(&mut digits, 1024);
    }
    let mut q = Quantity { neg, digits, exp10: exp10 - frac_len };
    q.normalize();
    q.round_to_nanos();
    q.cap();
    Ok(q)
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

fn mul_small(digits: &mut Vec<u8>, m: u32) {
    let mut carry: u32 = 0;
    for d in digits.iter_mut().rev() {
        let v = u32::from(*d) * m + carry;
        *d = (v % 10) as u8;
        carry = v / 10;
    }
    while carry > 0 {
        digits.insert(0, (carry % 10) as u8);
        carry /= 10;
    }
}

/// Adds one unit in the last place of `digits` (big-endian), growing it on carry.
fn increment(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == 9 {
            *d = 0;
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, 1);
}

impl Quantity {
    fn normalize(&mut self) {
        let lead = self.digits.iter().take_while(|&&d| d == 0).count();
        self.digits.drain(..lead);
        while self.digits.last() == Some(&0) {
            self.digits.pop();
            self.exp10 += 1;
        }
        if self.digits.is_empty() {
            self.neg = false;
            self.exp10 = 0;
        }
    }

    /// Rounds a non-zero value away from zero to a whole number of nanos (upstream
    /// `amount.Round(amount, Nano, inf.RoundUp)`): if you ask for some, you get some.
    fn round_to_nanos(&mut self) {
        if self.is_zero() || self.exp10 >= NANO_EXP {
            return;
        }
        let drop = NANO_EXP - self.exp10; // > 0 digits below a nano; all of them are not zero
        let keep = self.digits.len() as i64 - drop;
        if keep <= 0 {
            self.digits = vec![1];
        } else {
            self.digits.truncate(keep as usize);
            increment(&mut self.digits);
        }
        self.exp10 = NANO_EXP;
        self.normalize();
    }

    /// Caps the magnitude at `i64::MAX` units, as upstream does on parsing.
    fn cap(&mut self) {
        let max = Quantity::from_i64(i64::MAX);
        if self.cmp_magnitude(&max) == Ordering::Greater {
            self.digits = max.digits;
            self.exp10 = max.exp10;
        }
    }

    fn from_i64(v: i64) -> Quantity {
        let digits = v.unsigned_abs().to_string().bytes().map(|c| c - b'0').collect();
        let mut q = Quantity { neg: v < 0, digits, exp10: 0 };
        q.normalize();
        q
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    pub fn is_negative(&self) -> bool {
        self.neg && !self.is_zero()
    }

    /// True when the value has no fractional part.
    pub fn is_integer(&self) -> bool {
        self.is_zero() || self.exp10 >= 0
    }

    /// The value in units, rounded up (away from zero), saturating (upstream `Value`).
    pub fn value(&self) -> i64 {
        self.scaled_value(0)
    }

    /// The value in thousandths, rounded up (away from zero), saturating (upstream `MilliValue`).
    pub fn milli_value(&self) -> i64 {
        self.scaled_value(3)
    }

    /// The value × 10^`scale`, rounded up (away from zero), saturating at the `i64` bounds.
    pub fn scaled_value(&self, scale: i64) -> i64 {
        if self.is_zero() {
            return 0;
        }
        let exp = self.exp10.saturating_add(scale);
        let len = self.digits.len() as i64;
        // Digits above 10^0 after scaling; beyond 19 the magnitude exceeds i64.
        let int_len = len.saturating_add(exp);
        let magnitude: i128 = if int_len > 19 {
            i128::MAX
        } else if int_len <= 0 {
            1 // a non-zero fraction rounds up to one
        } else {
            let kept = int_len.min(len) as usize;
            let mut m: i128 = 0;
            for &d in &self.digits[..kept] {
                m = m * 10 + i128::from(d);
            }
            for _ in len..int_len {
                m *= 10;
            }
            // Dropped digits are never all zero (no trailing zeros): round up.
            if kept < self.digits.len() {
                m += 1;
            }
            m
        };
        let signed = if self.is_negative() { -magnitude } else { magnitude };
        signed.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    fn cmp_magnitude(&self, other: &Quantity) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let mag_a = self.digits.len() as i64 + self.exp10;
        let mag_b = other.digits.len() as i64 + other.exp10;
        mag_a.cmp(&mag_b).then_with(|| {
            let n = self.digits.len().max(other.digits.len());
            let get = |d: &[u8], i: usize| d.get(i).copied().unwrap_or(0);
            (0..n)
                .map(|i| get(&self.digits, i).cmp(&get(&other.digits, i)))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        })
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.is_negative(), other.is_negative()) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        parse(s).unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn grammar() {
        // (input, accepted). Comments mark inputs the old per-crate parsers disagreed on
        // (A = apiserver admission, S = scheduler, K = kubelet flags); the answer is upstream's.
        let cases: &[(&str, bool)] = &[
            ("1", true),
            ("0", true),
            ("0.5", true),
            ("500m", true),
            ("1Gi", true),
            ("128974848", true),
            ("2Ei", true),
            ("1E", true),   // exa, not an exponent
            ("1e3", true),  // K rejected
            ("1E-3", true), // K rejected
            ("1e+3", true),
            ("+1", true), // K rejected
            ("-1", true), // K rejected (the kubelet now rejects it as negative instead)
            (".5", true), // K rejected
            ("5.", true),
            ("100n", true), // A rejected
            ("100u", true), // A rejected
            ("1e41", true), // S rejected (exponent beyond ±40); the value caps at i64::MAX
            ("1e999999999", true),
            ("1234567890123456789012345678901", true), // S rejected (over 30 digits)
            ("", false),
            ("abc", false),
            (" 1", false), // S trimmed whitespace
            ("1 ", false), // S trimmed whitespace
            ("1 Gi", false),
            ("1gi", false),
            ("1e", false),
            ("1e+", false),
            ("1e1234567890", false),
            ("1.2.3", false),  // K accepted
            ("1..", false),    // K accepted
            ("4cores", false), // K accepted
            ("5Xi", false),    // K accepted
            ("1i", false),
            ("0.1mi", false),
            ("1+1.0M", false),
            ("-3.01e-", false),
            ("--1", false),
            ("+", false),
            ("1Kii", false),
            ("m", false),
            ("1e1.5", false),
            ("Gi", false),
            (".", false),
        ];
        for (input, ok) in cases {
            assert_eq!(parse(input).is_ok(), *ok, "{input:?}");
        }
        assert_eq!(parse("x").unwrap_err().to_string(), FORMAT_MSG);
    }

    #[test]
    fn ordering() {
        assert_eq!(q("0.5"), q("500m"));
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("1k"), q("1e3"));
        assert_eq!(q("1000u"), q("1m"));
        assert_eq!(q("-0"), q("0"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("-1") < q("0"));
        assert!(q("-2") < q("-1"));
        assert!(q("999m") < q("1"));
        assert!(q("1n") > q("0"));
        assert!(!q("1.5").is_integer() && !q("1500m").is_integer() && q("2000m").is_integer());
        assert!(q("-1").is_negative() && !q("-0").is_negative() && q("-0").is_zero());
    }

    #[test]
    fn rounds_to_nanos_and_caps_as_upstream() {
        // Below a nano rounds up (away from zero), so a request never becomes zero.
        assert_eq!(q("0.1n"), q("1n"));
        assert_eq!(q("1.5n"), q("2n"));
        assert_eq!(q("-1.5n"), q("-2n"));
        assert_eq!(q("1e-20"), q("1n"));
        assert_eq!(q("1.000000001"), q("1000000001n"));
        // Magnitudes beyond i64::MAX units cap.
        assert_eq!(q("8Ei"), q("9223372036854775807"));
        assert_eq!(q("1e30"), q("9223372036854775807"));
        assert_eq!(q("-1e30"), q("-9223372036854775807"));
        assert_eq!(q("7Ei"), q("8070450532247928832"));
    }

    #[test]
    fn values() {
        // (input, milli_value, value): rounded up away from zero, saturating.
        let cases: &[(&str, i64, i64)] = &[
            ("0", 0, 0),
            ("1", 1000, 1),
            ("500m", 500, 1),
            ("0.5", 500, 1),
            ("1.5", 1500, 2),
            ("100u", 1, 1),
            ("1n", 1, 1),
            ("100m", 100, 1),
            ("2", 2000, 2),
            ("1Ki", 1_024_000, 1024),
            ("1.5Gi", 1_610_612_736_000, 1_610_612_736),
            ("128Mi", 134_217_728_000, 134_217_728),
            ("1G", 1_000_000_000_000, 1_000_000_000),
            ("1e3", 1_000_000, 1000),
            ("1E-3", 1, 1),
            ("12k", 12_000_000, 12_000),
            ("+3", 3000, 3),
            ("-1", -1000, -1),
            ("-100m", -100, -1), // S rounded negatives toward zero (0); upstream away from zero
            ("-1.5", -1500, -2),
            (".5", 500, 1),
            ("8Ei", i64::MAX, i64::MAX),
            ("-8Ei", i64::MIN, -i64::MAX),
            ("9223372036854775", 9_223_372_036_854_775_000, 9_223_372_036_854_775),
            ("9223372036854776", i64::MAX, 9_223_372_036_854_776),
            ("1e41", i64::MAX, i64::MAX),
            ("1e-999999999", 1, 1),
        ];
        for (input, milli, value) in cases {
            let got = q(input);
            assert_eq!((got.milli_value(), got.value()), (*milli, *value), "{input}");
        }
    }
}
