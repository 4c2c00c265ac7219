//! Reading what callers send: a struct comes from a JSON object only. serde's derived
//! structs also take an array of their fields in order, which no schema of the API
//! allows; stored records keep the derived form, so this applies to input types alone.

use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A `T` read from a JSON object.
#[derive(Debug)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Object)
    }
}

/// For `#[serde(deserialize_with = "object")]`: a field's struct from an object only.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Object::deserialize(d).map(|Object(value)| value)
}

/// As [`object`], for an optional field (`null` or absent is `None`).
pub fn optional_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Object<T>>::deserialize(d).map(|value| value.map(|Object(value)| value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Inner {
        a: u8,
    }

    #[derive(Debug, Deserialize)]
    struct Outer {
        #[serde(deserialize_with = "object")]
        inner: Inner,
        #[serde(default, deserialize_with = "optional_object")]
        maybe: Option<Inner>,
    }

    fn read(json: &str) -> Result<Outer, String> {
        serde_json::from_str::<Object<Outer>>(json)
            .map(|Object(outer)| outer)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn structs_come_from_objects_only() {
        let outer = read(r#"{"inner": {"a": 1}, "maybe": {"a": 2}}"#).unwrap();
        assert_eq!(
            (outer.inner, outer.maybe),
            (Inner { a: 1 }, Some(Inner { a: 2 }))
        );
        assert_eq!(
            read(r#"{"inner": {"a": 1}, "maybe": null}"#).unwrap().maybe,
            None
        );
        assert_eq!(read(r#"{"inner": {"a": 1}}"#).unwrap().maybe, None);
        for array in [
            r#"[{"a": 1}]"#,
            r#"{"inner": [1]}"#,
            r#"{"inner": {"a": 1}, "maybe": [2]}"#,
        ] {
            let error = read(array).unwrap_err();
            assert!(error.contains("expected a JSON object"), "{array}: {error}");
        }
        // Without the adapter, serde takes the array.
        assert!(serde_json::from_str::<Inner>("[1]").is_ok());
    }
}
