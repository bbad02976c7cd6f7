//! Meeting and instance ids: validated on construction.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A meeting id: the table key `id`, never empty. Cheap to clone (shared).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MeetingId(Arc<str>);

/// The empty string, which the spec treats as "no id".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a meeting id must not be empty")]
pub struct EmptyMeetingId;

impl MeetingId {
    /// `None` for the empty string, which the spec treats as "no id".
    pub fn new(id: impl Into<String>) -> Option<Self> {
        let id = id.into();
        (!id.is_empty()).then(|| MeetingId(id.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for MeetingId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for MeetingId {
    type Err = EmptyMeetingId;
    fn from_str(s: &str) -> Result<Self, EmptyMeetingId> {
        MeetingId::new(s).ok_or(EmptyMeetingId)
    }
}

impl TryFrom<String> for MeetingId {
    type Error = EmptyMeetingId;
    fn try_from(s: String) -> Result<Self, EmptyMeetingId> {
        MeetingId::new(s).ok_or(EmptyMeetingId)
    }
}

impl From<MeetingId> for String {
    fn from(id: MeetingId) -> String {
        id.0.to_string()
    }
}

impl fmt::Display for MeetingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An EC2 instance id the engine may terminate: `^i-[0-9a-f]{8}([0-9a-f]{9})?$`.
/// Cheap to clone (shared).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstanceId(Arc<str>);

/// A string that is not an instance id the engine may terminate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an EC2 instance id (i- followed by 8 or 17 lowercase hex digits)")]
pub struct BadInstanceId(pub String);

impl InstanceId {
    /// `None` unless the whole string matches the pattern (lowercase hex, 8 or 17 digits).
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("i-")?;
        let ok = (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| InstanceId(s.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for InstanceId {
    type Err = BadInstanceId;
    fn from_str(s: &str) -> Result<Self, BadInstanceId> {
        InstanceId::parse(s).ok_or_else(|| BadInstanceId(s.to_string()))
    }
}

impl TryFrom<String> for InstanceId {
    type Error = BadInstanceId;
    fn try_from(s: String) -> Result<Self, BadInstanceId> {
        InstanceId::parse(&s).ok_or(BadInstanceId(s))
    }
}

impl From<InstanceId> for String {
    fn from(i: InstanceId) -> String {
        i.0.to_string()
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
