//! Integer fields as JSON Schema reads them: `integer` admits integral numbers written as
//! floats (`4.0`), so the API takes them; `4.5` and out-of-range values are refused.

use serde::{Deserialize, Deserializer};

fn whole<E: serde::de::Error>(n: &serde_json::Number) -> Result<i64, E> {
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        // Beyond i64 the value is out of every range we take: saturate and let the caller refuse it.
        Some(f) if f.fract() == 0.0 => Ok(f.clamp(i64::MIN as f64, i64::MAX as f64) as i64),
        _ => Err(E::custom(format!("{n} is not an integer"))),
    }
}

/// An optional `i64`.
pub fn integral<'de, D: Deserializer<'de>>(de: D) -> Result<Option<i64>, D::Error> {
    Option::<serde_json::Number>::deserialize(de)?
        .map(|n| whole(&n))
        .transpose()
}

fn narrow<T: TryFrom<i64>, E: serde::de::Error>(i: i64) -> Result<T, E> {
    T::try_from(i).map_err(|_| E::custom(format!("{i} is out of range")))
}

/// A required `i32`.
pub fn integral_i32<'de, D: Deserializer<'de>>(de: D) -> Result<i32, D::Error> {
    let n = serde_json::Number::deserialize(de)?;
    narrow(whole(&n)?)
}

/// An optional `i32`.
pub fn integral_i32_opt<'de, D: Deserializer<'de>>(de: D) -> Result<Option<i32>, D::Error> {
    integral(de)?.map(narrow).transpose()
}

/// A required `u32`.
pub fn integral_u32<'de, D: Deserializer<'de>>(de: D) -> Result<u32, D::Error> {
    let n = serde_json::Number::deserialize(de)?;
    narrow(whole(&n)?)
}

/// An optional `u32`.
pub fn integral_u32_opt<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u32>, D::Error> {
    integral(de)?.map(narrow).transpose()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct T {
        #[serde(deserialize_with = "super::integral_i32")]
        n: i32,
    }

    #[test]
    fn integral_floats_are_integers_and_nothing_else_is() {
        let ok: T = serde_json::from_str(r#"{"n": 2286.0}"#).unwrap();
        assert_eq!(ok.n, 2286);
        assert!(serde_json::from_str::<T>(r#"{"n": 4.5}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"n": 3000000000}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"n": "4"}"#).is_err());
    }
}
