//! The record decoder as first written: the whole record parsed into a
//! `serde_json::Value`, then read field by field. Slow, but plainly the
//! spec's rule 1; the property tests check the product's one-pass decoder
//! against it.
#![allow(dead_code)]

use serde_json::{Map, Value};
use spindown::meeting::record::RecordError;
use spindown::meeting::{Change, EventName, Image, InstanceSource, MeetingId, SeenInstance};
use spindown::time::{Span, Timestamp};

/// The first instant the spec rejects: 10000-01-01T00:00:00Z.
const MAX_EVENT_SECS: f64 = 253_402_300_800.0;

/// The DynamoDB JSON type keys.
const TYPES: [&str; 10] = ["S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"];

/// A value for a dead letter's reason: at most 80 characters (the raw record keeps it all).
fn shown(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_string()
    } else {
        let head: String = s.chars().take(80).collect();
        format!("{head}… ({} bytes)", s.len())
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn is_json_space(c: &u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// `None` for absent or JSON null; an error when present but not an object.
fn opt_map<'a>(obj: &'a Map<String, Value>, key: &'static str) -> Result<Option<&'a Map<String, Value>>, RecordError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(RecordError::NotMap(key, json_kind(other))),
    }
}

/// A validated DynamoDB JSON value: its type key and inner value.
fn typed<'a>(value: &'a Value, path: &dyn Fn() -> String) -> Result<(&'a str, &'a Value), RecordError> {
    match value {
        Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("len is 1");
            if TYPES.contains(&k.as_str()) {
                return Ok((k.as_str(), v));
            }
            Err(RecordError::NotDynamoJson(path()))
        }
        _ => Err(RecordError::NotDynamoJson(path())),
    }
}

/// Read an `S` attribute: `None` when absent or of type NULL.
fn read_s<'a>(value: Option<&'a Value>, path: &dyn Fn() -> String) -> Result<Option<&'a str>, RecordError> {
    let Some(value) = value else { return Ok(None) };
    match typed(value, path)? {
        ("NULL", _) => Ok(None),
        ("S", Value::String(s)) => Ok(Some(s)),
        ("S", other) => Err(RecordError::WrongType {
            path: path(),
            expected: "S",
            found: format!("S holding {}", json_kind(other)),
        }),
        (t, _) => Err(RecordError::WrongType { path: path(), expected: "S", found: t.to_string() }),
    }
}

fn read_time(img: &Map<String, Value>, image: &str, attr: &str) -> Result<Option<Timestamp>, RecordError> {
    let path = || format!("{image}.{attr}");
    match read_s(img.get(attr), &path)? {
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

fn read_duration(img: &Map<String, Value>, image: &str) -> Result<Option<Span>, RecordError> {
    let path = || format!("{image}.duration_minutes");
    let Some(value) = img.get("duration_minutes") else { return Ok(None) };
    match typed(value, &path)? {
        ("NULL", _) => Ok(None),
        ("N", Value::String(s)) => parse_decimal(s)
            .and_then(Span::from_minutes_f64)
            .map(Some)
            .ok_or_else(|| RecordError::BadNumber { path: path(), value: shown(s) }),
        ("N", other) => Err(RecordError::WrongType {
            path: path(),
            expected: "N",
            found: format!("N holding {}", json_kind(other)),
        }),
        (t, _) => Err(RecordError::WrongType { path: path(), expected: "N", found: t.to_string() }),
    }
}

/// Session data: any type; present and not of type NULL means "has data".
fn read_data(img: &Map<String, Value>, image: &str, attr: &str) -> Result<bool, RecordError> {
    match img.get(attr) {
        None => Ok(false),
        Some(v) => Ok(typed(v, &|| format!("{image}.{attr}"))?.0 != "NULL"),
    }
}

fn decode_image(img: &Map<String, Value>, image: &'static str) -> Result<Image, RecordError> {
    read_s(img.get("id"), &|| format!("{image}.id"))?;
    Ok(Image {
        meet_time: read_time(img, image, "meet_time")?,
        created_at: read_time(img, image, "created_at")?,
        duration: read_duration(img, image)?,
        status: read_s(img.get("status"), &|| format!("{image}.status"))?.map(str::to_owned),
        teacher_data: read_data(img, image, "teacher_session_data")?,
        student_data: read_data(img, image, "student_session_data")?,
        teacher_attr: img.contains_key("teacher_session_data"),
        student_attr: img.contains_key("student_session_data"),
    })
}

fn instance_attrs(
    img: Option<&Map<String, Value>>,
    names: [InstanceSource; 2],
    out: &mut Vec<SeenInstance>,
) -> Result<(), RecordError> {
    let Some(img) = img else { return Ok(()) };
    for (attr, source) in ["teacher_ec2_id", "student_ec2_id"].into_iter().zip(names) {
        if let Some(v) = read_s(img.get(attr), &|| source.as_str().to_string())? {
            out.push(SeenInstance { source, value: v.to_string() });
        }
    }
    Ok(())
}

/// Validate and decode one stream record (rule 1 of the spec).
pub fn decode_record(value: &Value) -> Result<Change, RecordError> {
    let obj = value.as_object().ok_or_else(|| RecordError::NotObject(json_kind(value)))?;
    let event_id = match obj.get("eventID") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(RecordError::EventIdNotString(json_kind(other))),
    };
    let event_name = match obj.get("eventName") {
        None | Some(Value::Null) => return Err(RecordError::NoEventName),
        Some(Value::String(s)) => match s.as_str() {
            "INSERT" => EventName::Insert,
            "MODIFY" => EventName::Modify,
            "REMOVE" => EventName::Remove,
            _ => return Err(RecordError::BadEventName(format!("{:?}", shown(s)))),
        },
        Some(other) => return Err(RecordError::BadEventName(shown(&other.to_string()))),
    };
    let ddb = match obj.get("dynamodb") {
        Some(Value::Object(m)) => m,
        None => return Err(RecordError::NoDynamodb("nothing")),
        Some(other) => return Err(RecordError::NoDynamodb(json_kind(other))),
    };
    let event_time = match ddb.get("ApproximateCreationDateTime") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            let secs = n.as_f64().filter(|s| (0.0..MAX_EVENT_SECS).contains(s));
            let t = secs.and_then(Timestamp::from_epoch_seconds);
            Some(t.ok_or_else(|| RecordError::TimeOutOfRange(shown(&n.to_string())))?)
        }
        Some(other) => return Err(RecordError::TimeNotNumber(json_kind(other))),
    };
    let keys = opt_map(ddb, "Keys")?;
    let new_image = opt_map(ddb, "NewImage")?;
    let old_image = opt_map(ddb, "OldImage")?;
    let (used, used_name) = match event_name {
        EventName::Remove => (old_image, "OldImage"),
        _ => (new_image, "NewImage"),
    };

    // The meeting id: Keys.id when present, else the image's id.
    let key_id = keys.map(|k| read_s(k.get("id"), &|| "Keys.id".to_string())).transpose()?.flatten();
    let image = used.map(|img| decode_image(img, used_name)).transpose()?;
    let image_id = used.and_then(|img| img.get("id")).and_then(|v| v.get("S")).and_then(Value::as_str);
    let meeting_id = MeetingId::new(key_id.or(image_id).unwrap_or_default()).ok_or(RecordError::NoMeetingId)?;

    let mut instance_ids = Vec::new();
    instance_attrs(new_image, [InstanceSource::NewTeacher, InstanceSource::NewStudent], &mut instance_ids)?;
    instance_attrs(old_image, [InstanceSource::OldTeacher, InstanceSource::OldStudent], &mut instance_ids)?;

    Ok(Change { event_id, event_name, event_time, meeting_id, image, instance_ids })
}
