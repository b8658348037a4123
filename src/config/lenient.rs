//! A serde deserializer over a `toml::Value` tree that also takes a string wherever the
//! target wants another type, parsed as that type: environment variables and flags are
//! strings, and the field's type (not a table of names) says what they mean.
//!
//! For a string value: a number is parsed (surrounding blanks allowed); a flag is one of
//! `1 true yes on` / `0 false no off`; an optional value is none when the string is empty;
//! a list is the string's comma-separated items, blanks trimmed and empty items dropped; an
//! enum variant is the string. Every other value goes to `toml`'s own deserializer. Errors
//! carry the path of keys to the value at fault.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;

/// Why a value does not fit, and where it is.
#[derive(Debug)]
pub struct Error {
    /// Keys from the value at fault outwards (innermost first).
    path: Vec<String>,
    pub message: String,
    /// The key itself is not a setting (`deny_unknown_fields`).
    pub unknown_key: bool,
}

impl Error {
    /// The top-level key the error is under, if any.
    pub fn top_key(&self) -> Option<&str> {
        self.path.last().map(String::as_str)
    }

    /// The keys from the top down, joined with dots (`namespaces.chat.history_ttl`).
    pub fn dotted_path(&self) -> String {
        let keys: Vec<&str> = self.path.iter().rev().map(String::as_str).collect();
        keys.join(".")
    }

    fn under(mut self, key: &str) -> Error {
        self.path.push(key.to_string());
        self
    }

    fn from_toml(e: toml::de::Error) -> Error {
        de::Error::custom(e.message().replace('\n', " "))
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Error {
        Error {
            path: Vec::new(),
            message: message.to_string(),
            unknown_key: false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.is_empty() {
            true => f.write_str(&self.message),
            false => write!(f, "{}: {}", self.dotted_path(), self.message),
        }
    }
}

impl std::error::Error for Error {}

/// One value of the tree; deserialize a type from it with `T::deserialize(Value(v))`.
pub struct Value(pub toml::Value);

/// `deserialize_<number>` methods: a string is parsed, anything else is deserialized as is.
macro_rules! numbers {
    ($($method:ident $visit:ident $ty:ty;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                toml::Value::String(s) => {
                    visitor.$visit(s.trim().parse::<$ty>().map_err(de::Error::custom)?)
                }
                other => Value(other).deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            toml::Value::String(s) => visitor.visit_string(s),
            toml::Value::Table(t) => visitor.visit_map(Entries {
                entries: t.into_iter(),
                next: None,
            }),
            toml::Value::Array(a) => visitor.visit_seq(Items(a.into_iter().enumerate())),
            other => other.deserialize_any(visitor).map_err(Error::from_toml),
        }
    }

    numbers! {
        deserialize_i8 visit_i8 i8;
        deserialize_i16 visit_i16 i16;
        deserialize_i32 visit_i32 i32;
        deserialize_i64 visit_i64 i64;
        deserialize_u8 visit_u8 u8;
        deserialize_u16 visit_u16 u16;
        deserialize_u32 visit_u32 u32;
        deserialize_u64 visit_u64 u64;
        deserialize_f32 visit_f32 f32;
        deserialize_f64 visit_f64 f64;
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            toml::Value::String(s) => match s.trim() {
                "1" | "true" | "yes" | "on" => visitor.visit_bool(true),
                "0" | "false" | "no" | "off" => visitor.visit_bool(false),
                _ => Err(de::Error::custom("expected true or false")),
            },
            other => Value(other).deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0 {
            toml::Value::String(s) if s.is_empty() => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            toml::Value::String(s) => {
                let items: Vec<toml::Value> = s
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| toml::Value::String(item.to_string()))
                    .collect();
                visitor.visit_seq(Items(items.into_iter().enumerate()))
            }
            other => Value(other).deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            toml::Value::String(s) => visitor.visit_enum(s.trim().into_deserializer()),
            other => other
                .deserialize_enum(name, variants, visitor)
                .map_err(Error::from_toml),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct tuple tuple_struct map
        struct identifier ignored_any
    }
}

/// A table's entries; an error in a key or value is put under that key.
struct Entries {
    entries: toml::map::IntoIter<String, toml::Value>,
    next: Option<(String, toml::Value)>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        // A key is a string, so the only way it fails is by not being a field.
        let field = seed
            .deserialize(key.clone().into_deserializer())
            .map_err(|e: Error| Error {
                unknown_key: true,
                ..e.under(&key)
            })?;
        self.next = Some((key, value));
        Ok(Some(field))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        let (key, value) = self
            .next
            .take()
            .ok_or_else(|| de::Error::custom("a value asked for before its key"))?;
        seed.deserialize(Value(value)).map_err(|e| e.under(&key))
    }
}

/// A list's items; an error in an item is put under its index.
struct Items<I>(I);

impl<'de, I: Iterator<Item = (usize, toml::Value)>> SeqAccess<'de> for Items<I> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.0.next() {
            Some((i, value)) => seed
                .deserialize(Value(value))
                .map(Some)
                .map_err(|e| e.under(&i.to_string())),
            None => Ok(None),
        }
    }
}
