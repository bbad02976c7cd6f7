//! DynamoDB stream records (Lambda shape) → machine input. Pure decoding.
//!
//! A line of input holds one record, or `{"Records": [...]}`. Everything the
//! engine reads is validated (rule 1 of the spec); anything else is left alone.
//! A record that fails becomes a [`DeadLetter`] carrying the raw input and a
//! reason that names what is wrong — decoding never panics and never stops
//! the rest of the input.

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::Value;

use super::ids::MeetingId;
use super::input::{Change, Image, InstanceSource, Rejection, SeenInstance};
use super::model::EventName;
use crate::time::{Span, Timestamp};

/// The first instant the spec rejects: 10000-01-01T00:00:00Z.
const MAX_EVENT_SECS: f64 = 253_402_300_800.0;

/// The longest meeting id accepted, in bytes: DynamoDB's own limit for a
/// partition key, so no record of a real table is refused by it.
pub const MAX_MEETING_ID: usize = 2048;

/// The longest `eventID` accepted, in bytes (DynamoDB's are 32 hex digits).
pub const MAX_EVENT_ID: usize = 256;

/// The longest line decoded (a DynamoDB item is at most 400 KB; a stream
/// record with two images well under 1 MB). Longer lines are dead letters.
pub const MAX_LINE: usize = 8 << 20;

mod parse;

use parse::{Attr, DynamodbField, Kind, Map, Top};

/// Why a record (or a line) was dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("line is {0} bytes, longer than the {MAX_LINE} byte limit (first bytes kept)")]
    LineTooLong(usize),
    #[error("line is not valid UTF-8 (invalid byte at offset {0})")]
    NotUtf8(usize),
    #[error("line is not JSON: {0}")]
    NotJson(String),
    #[error("`Records` is not a list (found {0})")]
    RecordsNotList(&'static str),
    #[error("record is not a JSON object (found {0})")]
    NotObject(&'static str),
    #[error("eventID is not a string (found {0})")]
    EventIdNotString(&'static str),
    #[error("eventName is missing")]
    NoEventName,
    #[error("eventName {0} is not INSERT, MODIFY or REMOVE")]
    BadEventName(String),
    #[error("no `dynamodb` object (found {0})")]
    NoDynamodb(&'static str),
    #[error("dynamodb.ApproximateCreationDateTime is not a number (found {0})")]
    TimeNotNumber(&'static str),
    #[error("dynamodb.ApproximateCreationDateTime {0} is outside 0 <= t < 253402300800")]
    TimeOutOfRange(String),
    #[error("dynamodb.{0} is not a map (found {1})")]
    NotMap(&'static str, &'static str),
    #[error("no meeting id (Keys.id and the image's id are absent, null or empty)")]
    NoMeetingId,
    #[error("{0} is not DynamoDB JSON (an object with exactly one of S N B SS NS BS M L NULL BOOL)")]
    NotDynamoJson(String),
    #[error("{path} must be of type {expected}, found {found}")]
    WrongType { path: String, expected: &'static str, found: String },
    #[error("{path} is not a time: {value:?} ({why})")]
    BadTime { path: String, value: String, why: String },
    #[error("{path} is not a finite decimal number: {value:?}")]
    BadNumber { path: String, value: String },
    /// A value every backend must be able to store but cannot: text holding
    /// a NUL byte (PostgreSQL's text types refuse U+0000), an id longer
    /// than its stated limit. Refused here, before any store sees it, so
    /// every backend dead-letters the same records.
    #[error("{path} {why}")]
    Unstorable { path: String, why: String },
    /// Well-formed, but the machine cannot apply it (a new meeting without a start).
    #[error(transparent)]
    Rejected(#[from] Rejection),
}

impl RecordError {
    /// A short, stable name for counting dead letters by reason.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordError::LineTooLong(_) => "line_too_long",
            RecordError::NotUtf8(_) => "not_utf8",
            RecordError::NotJson(_) => "not_json",
            RecordError::RecordsNotList(_) => "records_not_list",
            RecordError::NotObject(_) => "not_an_object",
            RecordError::EventIdNotString(_) => "bad_event_id",
            RecordError::NoEventName | RecordError::BadEventName(_) => "bad_event_name",
            RecordError::NoDynamodb(_) => "no_dynamodb",
            RecordError::TimeNotNumber(_) | RecordError::TimeOutOfRange(_) => "bad_event_time",
            RecordError::NotMap(..) => "not_a_map",
            RecordError::NoMeetingId => "no_meeting_id",
            RecordError::NotDynamoJson(_) => "not_dynamodb_json",
            RecordError::WrongType { .. } => "wrong_type",
            RecordError::BadTime { .. } => "bad_time",
            RecordError::BadNumber { .. } => "bad_number",
            RecordError::Unstorable { .. } => "unstorable",
            RecordError::Rejected(Rejection::NoStart(_)) => "no_start",
            RecordError::Rejected(Rejection::UnknownMeeting) => "unknown_meeting",
            RecordError::Rejected(Rejection::Refused(_)) => "refused",
        }
    }
}

/// A record (or line) that could not be applied, with its raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub reason: RecordError,
    pub raw: Vec<u8>,
    /// The record's `eventID` when it had a readable one.
    pub event_id: Option<String>,
}

/// One record of a line: decoded, or dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Record(Box<Decoded>),
    Dead(DeadLetter),
}

/// A decoded record. `raw` keeps the record's bytes only when the engine may
/// still have to dead-letter it (its image gives no start, so it cannot
/// create a meeting); it is empty otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub change: Change,
    pub raw: Vec<u8>,
}

/// A value for a dead letter's reason: at most 80 characters (the raw record keeps it all).
fn shown(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_string()
    } else {
        let head: String = s.chars().take(80).collect();
        format!("{head}… ({} bytes)", s.len())
    }
}

fn is_json_space(c: &u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Decode one line of input. A blank line yields nothing; an envelope
/// `{"Records": [...]}` yields one item per element.
pub fn decode_line(line: &[u8]) -> Vec<Item> {
    let start = line.iter().position(|c| !is_json_space(c));
    let Some(start) = start else { return Vec::new() };
    let end = line.iter().rposition(|c| !is_json_space(c)).map_or(line.len(), |e| e + 1);
    let trimmed = &line[start..end];
    let dead = |reason| vec![Item::Dead(DeadLetter { reason, raw: line.to_vec(), event_id: None })];
    let text = match std::str::from_utf8(trimmed) {
        Ok(t) => t,
        Err(e) => return dead(RecordError::NotUtf8(start + e.valid_up_to())),
    };
    let top = match parse::top(text) {
        Ok(t) => t,
        Err(e) => return dead(RecordError::NotJson(e.to_string())),
    };
    match top {
        Top::Object(r) if r.records.is_some() => match parse::elements(r.records.expect("checked")) {
            Ok(items) => items.into_iter().map(|raw| decode_raw(raw.get())).collect(),
            Err(kind) => dead(RecordError::RecordsNotList(kind.words())),
        },
        top => vec![decided(top, trimmed)],
    }
}

/// Decode one record given as JSON text (the stream reader's records).
pub fn decode_text(text: &str) -> Item {
    decode_raw(text)
}

fn decode_raw(text: &str) -> Item {
    match parse::top(text) {
        Ok(top) => decided(top, text.as_bytes()),
        Err(e) => {
            Item::Dead(DeadLetter { reason: RecordError::NotJson(e.to_string()), raw: text.into(), event_id: None })
        }
    }
}

fn decided(top: Top<'_>, raw: &[u8]) -> Item {
    // A dead letter keeps the eventID it can store (the raw bytes keep it all).
    let event_id = match &top {
        Top::Object(r) => r.event_id.and_then(|e| serde_json::from_str::<String>(e.get()).ok()),
        Top::Other(_) => None,
    }
    .filter(|e| !e.contains('\0') && e.len() <= MAX_EVENT_ID);
    match validate(top) {
        Ok(change) => {
            // Only a record that cannot create a meeting may still be dead-lettered.
            let keep = change.image.as_ref().and_then(|i| i.start()).is_none();
            let raw = if keep { raw.to_vec() } else { Vec::new() };
            Item::Record(Box::new(Decoded { change, raw }))
        }
        Err(reason) => Item::Dead(DeadLetter { reason, raw: raw.to_vec(), event_id }),
    }
}

/// Decode a record already parsed as JSON.
pub fn decode_value(value: &Value, raw: Vec<u8>) -> Item {
    let text = value.to_string();
    match decode_raw(&text) {
        Item::Record(mut d) => {
            if !d.raw.is_empty() {
                d.raw = raw;
            }
            Item::Record(d)
        }
        Item::Dead(mut d) => {
            d.raw = raw;
            Item::Dead(d)
        }
    }
}

/// Validate and decode one stream record (rule 1 of the spec).
///
/// # Errors
///
/// The record's reason for being dead-lettered.
pub fn decode_record(value: &Value) -> Result<Change, RecordError> {
    let text = value.to_string();
    let top = parse::top(&text).map_err(|e| RecordError::NotJson(e.to_string()))?;
    validate(top)
}

/// A small JSON value in the words of a reason (`7`, `{"a":1}`).
fn compact(raw: &RawValue) -> String {
    serde_json::from_str::<Value>(raw.get()).map_or_else(|_| raw.get().to_string(), |v| v.to_string())
}

/// `None` for absent or JSON null; an error when present but not a map.
fn opt_map<'m, 'a>(m: &'m Map<'a>, key: &'static str) -> Result<Option<&'m [Option<Attr<'a>>; 9]>, RecordError> {
    match m {
        Map::Absent | Map::Null => Ok(None),
        Map::Attrs(a) => Ok(Some(a)),
        Map::WrongType(kind) => Err(RecordError::NotMap(key, kind.words())),
    }
}

/// The attribute `name` of a map, if present.
fn attr<'m, 'a>(m: &'m [Option<Attr<'a>>; 9], name: &str) -> Option<&'m Attr<'a>> {
    let i = parse::ATTRS.iter().position(|a| *a == name).expect("a read attribute");
    m[i].as_ref()
}

/// A validated DynamoDB JSON value: its type key, inner string (for S/N) and inner kind.
fn typed<'m, 'a>(
    value: &'m Attr<'a>,
    path: &dyn Fn() -> String,
) -> Result<(&'static str, Option<&'m Cow<'a, str>>, Kind), RecordError> {
    match value {
        Attr::Typed { ty, text, kind } => Ok((ty, text.as_ref(), *kind)),
        Attr::NotDynamo => Err(RecordError::NotDynamoJson(path())),
    }
}

/// Read an `S` attribute: `None` when absent or of type NULL.
fn read_s<'m, 'a>(value: Option<&'m Attr<'a>>, path: &dyn Fn() -> String) -> Result<Option<&'m str>, RecordError> {
    let Some(value) = value else { return Ok(None) };
    match typed(value, path)? {
        ("NULL", _, _) => Ok(None),
        ("S", Some(s), _) => Ok(Some(s)),
        ("S", None, kind) => {
            Err(RecordError::WrongType { path: path(), expected: "S", found: format!("S holding {}", kind.words()) })
        }
        (t, _, _) => Err(RecordError::WrongType { path: path(), expected: "S", found: t.to_string() }),
    }
}

fn read_time(img: &[Option<Attr>; 9], image: &str, name: &str) -> Result<Option<Timestamp>, RecordError> {
    let path = || format!("{image}.{name}");
    match read_s(attr(img, name), &path)? {
        None => Ok(None),
        Some(s) => Timestamp::parse_iso(s).map(Some).map_err(|e| RecordError::BadTime {
            path: path(),
            value: shown(s),
            why: e.to_string(),
        }),
    }
}

/// A finite decimal: digits with an optional fraction and exponent.
fn parse_decimal(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp_digits == 0 {
            return None;
        }
        i += exp_digits;
    }
    if i != b.len() {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn read_duration(img: &[Option<Attr>; 9], image: &str) -> Result<Option<Span>, RecordError> {
    let path = || format!("{image}.duration_minutes");
    let Some(value) = attr(img, "duration_minutes") else { return Ok(None) };
    match typed(value, &path)? {
        ("NULL", _, _) => Ok(None),
        ("N", Some(s), _) => parse_decimal(s)
            .and_then(Span::from_minutes_f64)
            .map(Some)
            .ok_or_else(|| RecordError::BadNumber { path: path(), value: shown(s) }),
        ("N", None, kind) => {
            Err(RecordError::WrongType { path: path(), expected: "N", found: format!("N holding {}", kind.words()) })
        }
        (t, _, _) => Err(RecordError::WrongType { path: path(), expected: "N", found: t.to_string() }),
    }
}

/// Session data: any type; present and not of type NULL means "has data".
fn read_data(img: &[Option<Attr>; 9], image: &str, name: &str) -> Result<bool, RecordError> {
    match attr(img, name) {
        None => Ok(false),
        Some(v) => Ok(typed(v, &|| format!("{image}.{name}"))?.0 != "NULL"),
    }
}

/// The image used, and its `id` (validated like every read attribute).
fn decode_image<'m>(img: &'m [Option<Attr>; 9], image: &'static str) -> Result<(Image, Option<&'m str>), RecordError> {
    let id = read_s(attr(img, "id"), &|| format!("{image}.id"))?;
    let decoded = Image {
        meet_time: read_time(img, image, "meet_time")?,
        created_at: read_time(img, image, "created_at")?,
        duration: read_duration(img, image)?,
        status: read_s(attr(img, "status"), &|| format!("{image}.status"))?.map(str::to_owned),
        teacher_data: read_data(img, image, "teacher_session_data")?,
        student_data: read_data(img, image, "student_session_data")?,
        teacher_attr: attr(img, "teacher_session_data").is_some(),
        student_attr: attr(img, "student_session_data").is_some(),
    };
    Ok((decoded, id))
}

fn instance_attrs(
    img: Option<&[Option<Attr>; 9]>,
    sources: [InstanceSource; 2],
    out: &mut Vec<SeenInstance>,
) -> Result<(), RecordError> {
    let Some(img) = img else { return Ok(()) };
    for (name, source) in ["teacher_ec2_id", "student_ec2_id"].into_iter().zip(sources) {
        if let Some(v) = read_s(attr(img, name), &|| source.as_str().to_string())? {
            out.push(SeenInstance { source, value: v.to_string() });
        }
    }
    Ok(())
}

/// The spec's rule 1, in its order, over what the parse found.
fn validate(top: Top<'_>) -> Result<Change, RecordError> {
    let r = match top {
        Top::Object(r) => r,
        Top::Other(kind) => return Err(RecordError::NotObject(kind.words())),
    };
    let event_id = match r.event_id {
        None => None,
        Some(raw) => match Kind::of(raw) {
            Kind::Null => None,
            Kind::String => {
                Some(serde_json::from_str::<String>(raw.get()).map_err(|e| RecordError::NotJson(e.to_string()))?)
            }
            kind => return Err(RecordError::EventIdNotString(kind.words())),
        },
    };
    let event_name = match r.event_name {
        None => return Err(RecordError::NoEventName),
        Some(raw) => match Kind::of(raw) {
            Kind::Null => return Err(RecordError::NoEventName),
            Kind::String => {
                let s: Cow<str> = serde_json::from_str(raw.get()).map_err(|e| RecordError::NotJson(e.to_string()))?;
                match &*s {
                    "INSERT" => EventName::Insert,
                    "MODIFY" => EventName::Modify,
                    "REMOVE" => EventName::Remove,
                    _ => return Err(RecordError::BadEventName(format!("{:?}", shown(&s)))),
                }
            }
            _ => return Err(RecordError::BadEventName(shown(&compact(raw)))),
        },
    };
    let ddb = match r.dynamodb {
        DynamodbField::Object(d) => d,
        DynamodbField::Absent => return Err(RecordError::NoDynamodb("nothing")),
        DynamodbField::NotObject(kind) => return Err(RecordError::NoDynamodb(kind.words())),
    };
    let event_time = match ddb.time {
        None => None,
        Some(raw) => match Kind::of(raw) {
            Kind::Null => None,
            Kind::Number => {
                let n: serde_json::Number =
                    serde_json::from_str(raw.get()).map_err(|e| RecordError::NotJson(e.to_string()))?;
                let secs = n.as_f64().filter(|s| (0.0..MAX_EVENT_SECS).contains(s));
                let t = secs.and_then(Timestamp::from_epoch_seconds);
                Some(t.ok_or_else(|| RecordError::TimeOutOfRange(shown(&n.to_string())))?)
            }
            kind => return Err(RecordError::TimeNotNumber(kind.words())),
        },
    };
    let keys = opt_map(&ddb.keys, "Keys")?;
    let new_image = opt_map(&ddb.new_image, "NewImage")?;
    let old_image = opt_map(&ddb.old_image, "OldImage")?;
    let (used, used_name) = match event_name {
        EventName::Remove => (old_image, "OldImage"),
        _ => (new_image, "NewImage"),
    };

    // The meeting id: Keys.id when present, else the image's id.
    let key_id = keys.map(|k| read_s(attr(k, "id"), &|| "Keys.id".to_string())).transpose()?.flatten();
    let (image, image_id) = match used.map(|img| decode_image(img, used_name)).transpose()? {
        Some((image, id)) => (Some(image), id),
        None => (None, None),
    };
    let meeting_id = MeetingId::new(key_id.or(image_id).unwrap_or_default()).ok_or(RecordError::NoMeetingId)?;

    let mut instance_ids = Vec::new();
    instance_attrs(new_image, [InstanceSource::NewTeacher, InstanceSource::NewStudent], &mut instance_ids)?;
    instance_attrs(old_image, [InstanceSource::OldTeacher, InstanceSource::OldStudent], &mut instance_ids)?;

    let change = Change { event_id, event_name, event_time, meeting_id, image, instance_ids };
    storable(&change)?;
    Ok(change)
}

/// The record's text as the store will keep it: no NUL byte anywhere, ids
/// within their limits. (Instance ids that are not valid are only noted in
/// the history; they may hold a NUL only there, so they are checked too: the
/// note is shown as text.)
fn storable(c: &Change) -> Result<(), RecordError> {
    const NUL: &str = "contains a NUL byte (U+0000), which the database cannot store as text";
    let nul = |path: &str| Err(RecordError::Unstorable { path: path.to_string(), why: NUL.to_string() });
    if let Some(e) = &c.event_id {
        if e.contains('\0') {
            return nul("eventID");
        }
        if e.len() > MAX_EVENT_ID {
            let why = format!("is {} bytes, longer than the {MAX_EVENT_ID}-byte limit", e.len());
            return Err(RecordError::Unstorable { path: "eventID".into(), why });
        }
    }
    let id = c.meeting_id.as_str();
    if id.contains('\0') {
        return nul("the meeting id");
    }
    if id.len() > MAX_MEETING_ID {
        let why = format!("is {} bytes, longer than the {MAX_MEETING_ID}-byte limit (DynamoDB's for a key)", id.len());
        return Err(RecordError::Unstorable { path: "the meeting id".into(), why });
    }
    if c.image.as_ref().and_then(|i| i.status.as_deref()).is_some_and(|s| s.contains('\0')) {
        let image = if c.event_name == EventName::Remove { "OldImage" } else { "NewImage" };
        return nul(&format!("{image}.status"));
    }
    if let Some(i) = c.instance_ids.iter().find(|i| i.value.contains('\0')) {
        return nul(i.source.as_str());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
