//! `resource.Quantity` syntax and exact comparison (no floating point):
//! `<sign>? (<digits> | <digits>.<digits> | <digits>. | .<digits>) (Ki|Mi|Gi|Ti|Pi|Ei | m||k|M|G|T|P|E | [eE]<signed int>)`.

use std::cmp::Ordering;

/// The message upstream gives for an unparsable quantity.
pub const FORMAT_MSG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// An exact decimal: `(-1)^neg × digits × 10^exp10`, digits big-endian without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    neg: bool,
    digits: Vec<u8>,
    exp10: i64,
}

/// Parses a quantity string; `None` when it does not follow the grammar.
pub fn parse(s: &str) -> Option<Quantity> {
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
        return None;
    }
    let suffix = s.get(i..)?;
    let (exp10, pow1024): (i64, u32) = match suffix {
        "" => (0, 0),
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
            let rest = other.strip_prefix('e').or_else(|| other.strip_prefix('E'))?;
            let body = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if body.is_empty() || body.len() > 9 || !body.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            (rest.parse::<i64>().ok()?, 0)
        }
    };
    for _ in 0..pow1024 {
        mul_small(&mut digits, 1024);
    }
    let mut q = Quantity { neg, digits, exp10: exp10 - frac_len };
    q.normalize();
    Some(q)
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

    #[test]
    fn grammar() {
        for ok in ["1", "0.5", "500m", "1Gi", "128974848", "+1", "-1", ".5", "5.", "1e3", "1E-3", "1E", "2Ei", "0"] {
            assert!(parse(ok).is_some(), "{ok}");
        }
        for bad in ["", "abc", "1 Gi", "1gi", "1e", "1.2.3", "--1", "1Kii", "m", "1e1.5", "Gi", "."] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn ordering() {
        let q = |s: &str| parse(s).unwrap_or_else(|| panic!("{s}"));
        assert_eq!(q("0.5"), q("500m"));
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("1k"), q("1e3"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("-1") < q("0"));
        assert!(q("-2") < q("-1"));
        assert!(q("999m") < q("1"));
        assert!(!q("1.5").is_integer() && !q("1500m").is_integer() && q("2000m").is_integer());
    }
}
