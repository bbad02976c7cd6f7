//! One pass over a record's JSON, keeping only what the engine reads.
//!
//! Nothing here decides whether a record is well formed: every field the
//! engine reads is captured as it was found (absent, null, a string, another
//! kind of value), and `super::validate` applies the spec's rules in their
//! order. Strings are borrowed from the line where they have no escapes;
//! attributes the engine does not read are skipped without being built.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The DynamoDB JSON type keys.
pub(super) const TYPES: [&str; 10] = ["S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"];

/// The image attributes the engine reads.
pub(super) const ATTRS: [&str; 9] = [
    "id",
    "meet_time",
    "created_at",
    "status",
    "duration_minutes",
    "teacher_session_data",
    "student_session_data",
    "teacher_ec2_id",
    "student_ec2_id",
];

/// What kind of JSON value something is, in a reason's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Null,
    Bool,
    Number,
    String,
    List,
    Object,
}

impl Kind {
    pub fn words(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::List => "a list",
            Kind::Object => "an object",
        }
    }

    /// The kind of a JSON text (already known to be valid).
    pub fn of(raw: &RawValue) -> Kind {
        match raw.get().trim_start().as_bytes().first() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::List,
            Some(b'"') => Kind::String,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'n') => Kind::Null,
            _ => Kind::Number,
        }
    }
}

/// A DynamoDB attribute value as found.
#[derive(Debug, Default)]
pub(super) enum Attr<'a> {
    /// Not an object with exactly one type key.
    #[default]
    NotDynamo,
    Typed {
        ty: &'static str,
        /// The inner value of `S` or `N` when it is a string.
        text: Option<Cow<'a, str>>,
        /// The inner value's kind.
        kind: Kind,
    },
}

/// An image (or `Keys`) as found.
#[derive(Debug, Default)]
pub(super) enum Map<'a> {
    #[default]
    Absent,
    Null,
    WrongType(Kind),
    /// The read attributes, in [`ATTRS`] order (`Keys` uses only `id`).
    Attrs(Box<[Option<Attr<'a>>; 9]>),
}

/// The `dynamodb` object as found.
#[derive(Debug, Default)]
pub(super) struct Dynamodb<'a> {
    pub time: Option<&'a RawValue>,
    pub keys: Map<'a>,
    pub new_image: Map<'a>,
    pub old_image: Map<'a>,
}

/// The `dynamodb` field of a record.
#[derive(Debug, Default)]
pub(super) enum DynamodbField<'a> {
    #[default]
    Absent,
    NotObject(Kind),
    Object(Dynamodb<'a>),
}

/// A record as found.
#[derive(Debug, Default)]
pub(super) struct Record<'a> {
    pub event_id: Option<&'a RawValue>,
    pub event_name: Option<&'a RawValue>,
    pub dynamodb: DynamodbField<'a>,
    /// `Records` (the line is an envelope).
    pub records: Option<&'a RawValue>,
}

/// A top-level value as found: a record, or not an object at all.
#[derive(Debug)]
pub(super) enum Top<'a> {
    Object(Record<'a>),
    Other(Kind),
}

/// A value the engine does not read, skipped as a `serde_json::Value` would be
/// parsed (the same nesting limit, the same number checks), without building it.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Skip, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

struct KindVisitor;

/// Visitor methods for values that are not what a visitor wants: they report the kind.
macro_rules! other_kinds {
    ($out:ty, $wrap:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<$out, E> {
            Ok($wrap(Kind::Bool))
        }
        fn visit_i64<E>(self, _: i64) -> Result<$out, E> {
            Ok($wrap(Kind::Number))
        }
        fn visit_u64<E>(self, _: u64) -> Result<$out, E> {
            Ok($wrap(Kind::Number))
        }
        fn visit_f64<E>(self, _: f64) -> Result<$out, E> {
            Ok($wrap(Kind::Number))
        }
        fn visit_str<E>(self, _: &str) -> Result<$out, E> {
            Ok($wrap(Kind::String))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<$out, A::Error> {
            while seq.next_element::<Skip>()?.is_some() {}
            Ok($wrap(Kind::List))
        }
    };
}

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    other_kinds!(Kind, |k| k);
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Kind::Object)
    }
}

/// A string value, borrowed where it can be, or its kind.
struct StrOrKind;

impl<'de> DeserializeSeed<'de> for StrOrKind {
    type Value = Result<Cow<'de, str>, Kind>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrOrKind {
    type Value = Result<Cow<'de, str>, Kind>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Owned(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Owned(s)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(Kind::Bool))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(Kind::Number))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(Kind::Number))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(Kind::Number))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(Kind::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Err(Kind::List))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Err(Kind::Object))
    }
}

/// A map key, borrowed where it can be.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match StrOrKind.deserialize(d)? {
            Ok(s) => Ok(Key(s)),
            Err(_) => Err(serde::de::Error::custom("a map key must be a string")),
        }
    }
}

/// A DynamoDB attribute value.
struct AttrSeed;

impl<'de> DeserializeSeed<'de> for AttrSeed {
    type Value = Attr<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AttrSeed {
    type Value = Attr<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a DynamoDB JSON value")
    }
    other_kinds!(Attr<'de>, |_| Attr::NotDynamo);
    fn visit_unit<E>(self) -> Result<Attr<'de>, E> {
        Ok(Attr::NotDynamo)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attr<'de>, A::Error> {
        // Exactly one distinct key, a type key (a repeated key counts once; the last value wins).
        let mut first: Option<Cow<'de, str>> = None;
        let mut distinct = 0usize;
        let mut found: Option<(&'static str, Option<Cow<'de, str>>, Kind)> = None;
        while let Some(Key(k)) = map.next_key::<Key>()? {
            if first.as_deref() != Some(&*k) {
                distinct += 1;
                if first.is_none() {
                    first = Some(k.clone());
                }
            }
            match TYPES.iter().find(|t| **t == k) {
                Some(&ty) if ty == "S" || ty == "N" => {
                    let v = map.next_value_seed(StrOrKind)?;
                    found = Some(match v {
                        Ok(s) => (ty, Some(s), Kind::String),
                        Err(kind) => (ty, None, kind),
                    });
                }
                Some(&ty) => {
                    let kind = map.next_value_seed(KindSeed)?;
                    found = Some((ty, None, kind));
                }
                None => {
                    map.next_value::<Skip>()?;
                    found = None;
                }
            }
        }
        Ok(match found {
            Some((ty, text, kind)) if distinct == 1 => Attr::Typed { ty, text, kind },
            _ => Attr::NotDynamo,
        })
    }
}

struct KindSeed;

impl<'de> DeserializeSeed<'de> for KindSeed {
    type Value = Kind;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

/// An image or `Keys`.
struct MapSeed;

impl<'de> DeserializeSeed<'de> for MapSeed {
    type Value = Map<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MapSeed {
    type Value = Map<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }
    other_kinds!(Map<'de>, Map::WrongType);
    fn visit_unit<E>(self) -> Result<Map<'de>, E> {
        Ok(Map::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Map<'de>, A::Error> {
        let mut attrs: Box<[Option<Attr<'de>>; 9]> = Box::default();
        while let Some(Key(k)) = map.next_key::<Key>()? {
            match ATTRS.iter().position(|a| *a == k) {
                Some(i) => attrs[i] = Some(map.next_value_seed(AttrSeed)?),
                None => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(Map::Attrs(attrs))
    }
}

struct DynamodbSeed;

impl<'de> DeserializeSeed<'de> for DynamodbSeed {
    type Value = DynamodbField<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DynamodbSeed {
    type Value = DynamodbField<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the dynamodb object")
    }
    other_kinds!(DynamodbField<'de>, DynamodbField::NotObject);
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(DynamodbField::NotObject(Kind::Null))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut d = Dynamodb::default();
        while let Some(Key(k)) = map.next_key::<Key>()? {
            match &*k {
                "ApproximateCreationDateTime" => d.time = Some(map.next_value()?),
                "Keys" => d.keys = map.next_value_seed(MapSeed)?,
                "NewImage" => d.new_image = map.next_value_seed(MapSeed)?,
                "OldImage" => d.old_image = map.next_value_seed(MapSeed)?,
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(DynamodbField::Object(d))
    }
}

struct TopSeed;

impl<'de> DeserializeSeed<'de> for TopSeed {
    type Value = Top<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed {
    type Value = Top<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a stream record")
    }
    other_kinds!(Top<'de>, Top::Other);
    fn visit_unit<E>(self) -> Result<Top<'de>, E> {
        Ok(Top::Other(Kind::Null))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
        let mut r = Record::default();
        while let Some(Key(k)) = map.next_key::<Key>()? {
            match &*k {
                "eventID" => r.event_id = Some(map.next_value()?),
                "eventName" => r.event_name = Some(map.next_value()?),
                "dynamodb" => r.dynamodb = map.next_value_seed(DynamodbSeed)?,
                "Records" => r.records = Some(map.next_value()?),
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(Top::Object(r))
    }
}

/// Parse a record (or an envelope) in one pass.
///
/// # Errors
///
/// The text is not JSON.
pub(super) fn top(text: &str) -> Result<Top<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let top = TopSeed.deserialize(&mut de)?;
    de.end()?;
    Ok(top)
}

/// The elements of a `Records` list, or its kind when it is not one.
pub(super) fn elements(raw: &RawValue) -> Result<Vec<&RawValue>, Kind> {
    serde_json::from_str::<Vec<&RawValue>>(raw.get()).map_err(|_| Kind::of(raw))
}
