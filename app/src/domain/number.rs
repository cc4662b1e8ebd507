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

/// A required `i64`.
pub fn integral_i64<'de, D: Deserializer<'de>>(de: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(de)?;
    whole(&n)
}

/// A struct read only from a JSON object: serde's derived structs also take an array of the
/// fields in order, which the API's documents do not allow.
pub fn object<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let map = serde_json::Map::<String, serde_json::Value>::deserialize(de)?;
    T::deserialize(serde_json::Value::Object(map)).map_err(serde::de::Error::custom)
}

/// A map of structs, each read only from a JSON object.
pub fn object_map<'de, D, T>(de: D) -> Result<std::collections::BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let map = serde_json::Map::<String, serde_json::Value>::deserialize(de)?;
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::Object(_) => T::deserialize(v)
                .map(|t| (k.clone(), t))
                .map_err(|e| serde::de::Error::custom(format!("{k}: {e}"))),
            _ => Err(serde::de::Error::custom(format!("{k}: expected an object"))),
        })
        .collect()
}

/// An optional [`object_map`].
pub fn object_map_opt<'de, D, T>(
    de: D,
) -> Result<Option<std::collections::BTreeMap<String, T>>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Ok(Some(object_map(de)?))
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
    fn structs_come_only_from_objects() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct P {
            a: i64,
        }
        #[derive(Deserialize, Debug)]
        struct W {
            #[serde(deserialize_with = "super::object")]
            p: P,
            #[serde(deserialize_with = "super::object_map")]
            m: std::collections::BTreeMap<String, P>,
        }
        let ok: W = serde_json::from_str(r#"{"p": {"a": 1}, "m": {"x": {"a": 2}}}"#).unwrap();
        assert_eq!((ok.p, &ok.m["x"]), (P { a: 1 }, &P { a: 2 }));
        assert!(serde_json::from_str::<W>(r#"{"p": [1], "m": {}}"#).is_err());
        assert!(serde_json::from_str::<W>(r#"{"p": {"a": 1}, "m": {"x": [2]}}"#).is_err());
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
