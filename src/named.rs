//! Enums whose values are named by strings (the spec's, the store's, the
//! command line's): states, reasons, effect and history kinds, stored
//! statuses, faults, stream starts.
//!
//! [`names!`] declares an enum with `as_str`, `Display`, `FromStr` (an
//! [`UnknownName`] error listing the valid names) and serde: the string in a
//! human-readable format (JSON output), a one-byte index in a compact one (the
//! stored history).

use std::fmt;

/// A string that names none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} (expected one of: {})", expected.join(", "))]
pub struct UnknownName {
    /// What was being named (`state`, `reason`, …).
    pub what: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

/// Declare an enum of named values.
macro_rules! names {
    ($(#[$m:meta])* $vis:vis $name:ident ($what:literal) { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            const NAMES: &'static [&'static str] = &[$($text),+];

            /// The value's name, as the spec spells it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::named::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::named::UnknownName { what: $what, value: s.to_string(), expected: Self::NAMES }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(self.as_str())
                } else {
                    s.serialize_u8(Self::ALL.iter().position(|v| v == self).expect("listed") as u8)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                    s.parse().map_err(serde::de::Error::custom)
                } else {
                    let i = <u8 as serde::Deserialize>::deserialize(d)?;
                    Self::ALL.get(i as usize).copied().ok_or_else(|| {
                        serde::de::Error::custom(format!("{} index {i} out of range", $what))
                    })
                }
            }
        }
    };
}

pub(crate) use names;

/// Join displayable items with `", "`.
pub(crate) fn join<T: fmt::Display>(items: &[T]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        use fmt::Write;
        let _ = write!(out, "{item}");
    }
    out
}
