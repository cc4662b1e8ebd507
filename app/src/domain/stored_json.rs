//! What a `jsonb` column can hold and give back unchanged: Postgres refuses NUL in strings,
//! and it prints numbers as plain decimals (no exponent), which serde_json cannot read back
//! once they pass f64's range. Values are checked before they are stored, so a read never fails.

use serde_json::Value;

/// The largest magnitude stored: every integer up to it is exact in an f64 (2^53 - 1).
pub const MAX_MAGNITUDE: f64 = 9_007_199_254_740_991.0;

/// Why `value` cannot be stored, naming the first offending place as a JSON path (`$.a[2]`).
pub fn check(value: &Value) -> Result<(), String> {
    walk(value, &mut String::from("$"))
}

fn walk(value: &Value, path: &mut String) -> Result<(), String> {
    match value {
        Value::String(s) if s.contains('\0') => Err(format!("{path} contains a NUL character")),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.abs() <= MAX_MAGNITUDE => Ok(()),
            _ => Err(format!(
                "{path} is {n}: numbers must lie within ±{MAX_MAGNITUDE:.0}"
            )),
        },
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let r = walk(item, path);
            path.truncate(len);
            r
        }),
        Value::Object(fields) => fields.iter().try_for_each(|(k, item)| {
            if k.contains('\0') {
                return Err(format!("{path} has a key containing a NUL character"));
            }
            let len = path.len();
            path.push('.');
            path.extend(k.chars().take(64));
            let r = walk(item, path);
            path.truncate(len);
            r
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ordinary_values_pass() {
        let v = json!({"a": [1, -2.5, "x", null, true], "b": {"c": 9_007_199_254_740_991_i64}});
        assert_eq!(check(&v), Ok(()));
    }

    #[test]
    fn huge_numbers_and_nul_are_named_by_path() {
        let huge = json!({"nodes": [{"position": {"y": 1.797_693_134_862_315_5e308}}]});
        let err = check(&huge).unwrap_err();
        assert!(err.starts_with("$.nodes[0].position.y is"), "{err}");
        assert!(check(&json!([1e16])).is_err());
        assert!(check(&json!(u64::MAX)).is_err());
        assert_eq!(
            check(&json!({"k": ["ok", "a\u{0}b"]})),
            Err("$.k[1] contains a NUL character".into())
        );
        assert!(check(&json!({"a\u{0}": 1})).is_err());
    }
}
