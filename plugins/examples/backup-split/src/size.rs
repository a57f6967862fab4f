//! Kubernetes quantities (`500Mi`, `1.5Ti`, `200G`) in bytes, to compare declared PVC sizes.

/// Bytes of a quantity with an optional binary (`Ki` … `Ei`) or decimal (`k` … `E`) suffix; `None` when it
/// is not a plain non-negative quantity.
pub fn bytes(quantity: &str) -> Option<f64> {
    let split = quantity
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let factor: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        _ => return None,
    };
    let value: f64 = number.parse().ok().filter(|v: &f64| v.is_finite())?;
    Some(value * factor)
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn binary_and_decimal_suffixes_scale_the_number() {
        let cases = [
            ("0", Some(0.0)),
            ("512", Some(512.0)),
            ("1Ki", Some(1024.0)),
            ("100Gi", Some(100.0 * 1024f64.powi(3))),
            ("1.5Ti", Some(1.5 * 1024f64.powi(4))),
            ("200G", Some(200e9)),
            ("3k", Some(3000.0)),
        ];
        for (text, expected) in cases {
            assert_eq!(bytes(text), expected, "{text}");
        }
    }

    #[test]
    fn anything_else_is_not_a_quantity() {
        for text in ["", "Gi", "10GB", "10 Gi", "-5Gi", "1e3", "ten", "1..2Gi"] {
            assert_eq!(bytes(text), None, "{text}");
        }
    }
}
