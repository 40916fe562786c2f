//! Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`) as integers: CPU in millicores and
//! everything else in units, rounded up as upstream's `MilliValue`/`Value` do.

/// `q` scaled by `scale` (1000 for millicores, 1 for plain units) and rounded up; `None` if `q`
/// is not a quantity. Values beyond `i64` saturate.
pub fn parse_scaled(q: &str, scale: i64) -> Option<i64> {
    let q = q.trim();
    let (negative, rest) = match q.as_bytes().first()? {
        b'-' => (true, &q[1..]),
        b'+' => (false, &q[1..]),
        _ => (false, q),
    };
    let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if frac_part.contains('.') {
        return None;
    }
    // Digits beyond 30 cannot change an i64 result meaningfully; refuse rather than overflow.
    let digits = int_part.len() + frac_part.len();
    if digits > 30 {
        return None;
    }
    let mut mantissa: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa * 10 + i128::from(b - b'0');
    }
    let (binary_shift, mut exp10) = suffix_multiplier(suffix)?;
    exp10 -= frac_part.len() as i32;
    let mut value = mantissa.saturating_mul(i128::from(scale)).saturating_mul(1i128 << binary_shift);
    if exp10 >= 0 {
        for _ in 0..exp10 {
            value = value.saturating_mul(10);
        }
    } else {
        let mut divisor: i128 = 1;
        for _ in 0..(-exp10) {
            divisor = divisor.saturating_mul(10);
        }
        // Round away from zero for positive values (ceil); negative values round toward zero,
        // which is also a ceiling once the sign is applied.
        value = if negative { value / divisor } else { (value + divisor - 1) / divisor };
    }
    let value = if negative { -value } else { value };
    Some(value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// (power of two, power of ten) of a quantity suffix.
fn suffix_multiplier(suffix: &str) -> Option<(u32, i32)> {
    Some(match suffix {
        "" => (0, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        s if s.starts_with(['e', 'E']) => {
            let exp: i32 = s[1..].parse().ok()?;
            if !(-40..=40).contains(&exp) {
                return None;
            }
            (0, exp)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_scaled;

    #[test]
    fn quantities() {
        let cases: &[(&str, i64, Option<i64>)] = &[
            ("1", 1000, Some(1000)),
            ("500m", 1000, Some(500)),
            ("0.5", 1000, Some(500)),
            ("1.5", 1000, Some(1500)),
            ("100u", 1000, Some(1)), // rounds up
            ("2", 1, Some(2)),
            ("1Ki", 1, Some(1024)),
            ("1.5Gi", 1, Some(1_610_612_736)),
            ("128Mi", 1, Some(134_217_728)),
            ("1G", 1, Some(1_000_000_000)),
            ("1e3", 1, Some(1000)),
            ("1E-3", 1000, Some(1)),
            ("12k", 1, Some(12_000)),
            ("100m", 1, Some(1)), // plain units round up
            ("+3", 1, Some(3)),
            ("-1", 1, Some(-1)),
            (".5", 1000, Some(500)),
            ("8Ei", 1000, Some(i64::MAX)),
            ("", 1, None),
            ("abc", 1, None),
            ("1.2.3", 1, None),
            ("5Xi", 1, None),
            ("m", 1, None),
        ];
        for (q, scale, want) in cases {
            assert_eq!(parse_scaled(q, *scale), *want, "{q} scaled by {scale}");
        }
    }
}
