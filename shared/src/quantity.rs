//! Kubernetes resource quantities (`500m`, `0.5`, `1Gi`, `1e3`), compared by value, because the
//! API server rewrites them into canonical form: Git's `0.5` CPU is the cluster's `500m`.

use serde_json::Value;

/// A quantity's exact value in nano-units (10⁻⁹), or `None` when the text is not a quantity or
/// does not fit.
pub fn parse_quantity(text: &str) -> Option<i128> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let (negative, rest) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{whole}{fraction}");
    let mut mantissa: i128 = 0;
    for b in digits.bytes() {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(b - b'0'))?;
    }
    // value = mantissa × 10^(exp10) × 2^(exp2), then × 10^9 for nano-units.
    let mut exp10: i32 = 9 - i32::try_from(fraction.len()).ok()?;
    let mut exp2: u32 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        exponent if exponent.starts_with(['e', 'E']) => {
            exp10 += exponent[1..].parse::<i32>().ok()?;
        }
        _ => return None,
    }
    let mut value = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
    if exp10 >= 0 {
        value = value.checked_mul(10i128.checked_pow(u32::try_from(exp10).ok()?)?)?;
    } else {
        // Below a nano-unit the API server rounds up.
        let divisor = 10i128.checked_pow(u32::try_from(-exp10).ok()?)?;
        value = (value + divisor - 1) / divisor;
    }
    Some(if negative { -value } else { value })
}

/// The quantity a JSON value holds: a string (`"500m"`) or a number (`0.5`).
pub fn quantity_of(value: &Value) -> Option<i128> {
    match value {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => parse_quantity(&n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_in_different_forms() {
        assert_eq!(parse_quantity("0.5"), parse_quantity("500m"));
        assert_eq!(parse_quantity("1Gi"), parse_quantity("1024Mi"));
        assert_eq!(parse_quantity("1k"), parse_quantity("1000"));
        assert_eq!(parse_quantity("1e3"), parse_quantity("1k"));
        assert_eq!(parse_quantity("2"), Some(2_000_000_000));
        assert_eq!(quantity_of(&json!(0.5)), parse_quantity("500m"));
        assert_eq!(quantity_of(&json!(2)), parse_quantity("2000m"));
        assert_ne!(parse_quantity("1G"), parse_quantity("1Gi"));
        assert_eq!(
            parse_quantity("8Ei"),
            Some(8 * (1i128 << 60) * 1_000_000_000)
        );
    }

    #[test]
    fn rejects_what_is_not_a_quantity() {
        for bad in ["", "abc", "1.2.3", "5Xi", "m", ".", "1e", "--1"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }
}
