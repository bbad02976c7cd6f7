//! Property tests of the record decoder: it never panics, accepts every
//! well-formed record with its facts intact, refuses every wrong type, and
//! agrees — record for record, reason for reason — with the decoder as first
//! written (the whole record as a `serde_json::Value`, `common/reference_decoder.rs`).

#[path = "common/reference_decoder.rs"]
mod reference;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use spindown::meeting::record::{decode_line, decode_record, Item};
use spindown::meeting::EventName;
use spindown::time::Timestamp;

/// Both decoders read the same text: the product's in one pass, the
/// reference through a `serde_json::Value`.
fn decode_text(text: &str) -> Result<spindown::meeting::Change, spindown::meeting::record::RecordError> {
    match spindown::meeting::record::decode_text(text) {
        Item::Record(d) => Ok(d.change),
        Item::Dead(d) => Err(d.reason),
    }
}

fn reference_text(text: &str) -> Result<spindown::meeting::Change, spindown::meeting::record::RecordError> {
    reference::decode_record(&serde_json::from_str::<Value>(text).unwrap())
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        "[a-zA-Z0-9_ :.+-]{0,24}".prop_map(Value::String),
        prop_oneof![
            Just("INSERT"),
            Just("MODIFY"),
            Just("REMOVE"),
            Just("S"),
            Just("N"),
            Just("NULL"),
            Just("M"),
            Just("meet_time"),
            Just("id"),
            Just("2026-11-26T10:00:00Z"),
            Just("i-0123456789abcdef0")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        let keys = prop_oneof![
            Just("eventName".to_string()),
            Just("eventID".to_string()),
            Just("dynamodb".to_string()),
            Just("Keys".to_string()),
            Just("NewImage".to_string()),
            Just("OldImage".to_string()),
            Just("id".to_string()),
            Just("S".to_string()),
            Just("N".to_string()),
            Just("NULL".to_string()),
            Just("meet_time".to_string()),
            Just("created_at".to_string()),
            Just("status".to_string()),
            Just("duration_minutes".to_string()),
            Just("teacher_ec2_id".to_string()),
            Just("teacher_session_data".to_string()),
            Just("ApproximateCreationDateTime".to_string()),
            Just("Records".to_string()),
            "[a-z]{1,6}".prop_map(|s| s),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An instant in years 1–9999, milliseconds.
fn arb_instant() -> impl Strategy<Value = Timestamp> {
    (-62_135_596_800_000i64..253_402_300_799_000).prop_map(|ms| Timestamp::from_micros(ms * 1000))
}

#[derive(Debug, Clone)]
struct Good {
    id: String,
    name: &'static str,
    time: Option<u32>,
    meet: Option<Timestamp>,
    created: Option<Timestamp>,
    status: Option<String>,
    duration: Option<i32>,
    teacher: Option<String>,
    data: (bool, bool),
}

fn arb_good() -> impl Strategy<Value = Good> {
    (
        "[a-zA-Z0-9-]{1,20}",
        prop_oneof![Just("INSERT"), Just("MODIFY"), Just("REMOVE")],
        prop::option::of(0u32..2_000_000_000),
        prop::option::of(arb_instant()),
        prop::option::of(arb_instant()),
        prop::option::of("[A-Z_]{0,12}"),
        prop::option::of(-1000i32..100_000),
        prop::option::of("i-[0-9a-f]{8}|i-[0-9a-f]{17}|[a-zA-Z0-9-]{0,12}"),
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(|(id, name, time, meet, created, status, duration, teacher, data)| Good {
            id,
            name,
            time,
            meet,
            created,
            status,
            duration,
            teacher,
            data,
        })
}

fn good_json(g: &Good) -> Value {
    let mut img = Map::new();
    img.insert("id".into(), json!({"S": g.id}));
    if let Some(m) = g.meet {
        img.insert("meet_time".into(), json!({"S": m.to_rfc3339()}));
    }
    if let Some(c) = g.created {
        img.insert("created_at".into(), json!({"S": c.to_rfc3339()}));
    }
    if let Some(s) = &g.status {
        img.insert("status".into(), json!({"S": s}));
    }
    if let Some(d) = g.duration {
        img.insert("duration_minutes".into(), json!({"N": d.to_string()}));
    }
    if let Some(t) = &g.teacher {
        img.insert("teacher_ec2_id".into(), json!({"S": t}));
    }
    if g.data.0 {
        img.insert("teacher_session_data".into(), json!({"M": {"k": {"S": "v"}}}));
    }
    if g.data.1 {
        img.insert("student_session_data".into(), json!({"S": "blob"}));
    }
    let image = if g.name == "REMOVE" { "OldImage" } else { "NewImage" };
    let mut ddb = json!({"Keys": {"id": {"S": g.id}}, image: Value::Object(img)});
    if let Some(t) = g.time {
        ddb["ApproximateCreationDateTime"] = json!(t);
    }
    json!({"eventID": "e", "eventName": g.name, "dynamodb": ddb})
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn any_bytes_decode_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for item in decode_line(&bytes) {
            if let Item::Dead(d) = item {
                prop_assert!(!d.reason.to_string().is_empty());
            }
        }
    }

    #[test]
    fn any_json_decodes_without_panic(v in arb_json()) {
        let text = serde_json::to_vec(&v).unwrap();
        let items = decode_line(&text);
        match &v {
            Value::Object(o) if o.contains_key("Records") => {}
            _ => prop_assert_eq!(items.len(), 1),
        }
    }

    #[test]
    fn well_formed_records_decode_with_their_facts(g in arb_good()) {
        let c = decode_record(&good_json(&g)).unwrap();
        prop_assert_eq!(c.meeting_id.as_str(), g.id.as_str());
        prop_assert_eq!(c.event_name, match g.name { "INSERT" => EventName::Insert, "MODIFY" => EventName::Modify, _ => EventName::Remove });
        prop_assert_eq!(c.event_time, g.time.map(|t| Timestamp::from_secs(t as i64)));
        let img = c.image.unwrap();
        prop_assert_eq!(img.meet_time, g.meet);
        prop_assert_eq!(img.created_at, g.created);
        prop_assert_eq!(img.status, g.status.clone());
        prop_assert_eq!(img.duration.map(|d| d.as_micros()), g.duration.map(|d| d as i64 * 60_000_000));
        prop_assert_eq!((img.teacher_data, img.student_data), g.data);
        prop_assert_eq!(c.instance_ids.iter().map(|s| s.value.clone()).collect::<Vec<_>>(), g.teacher.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn a_wrong_type_on_any_read_attribute_is_refused(g in arb_good(), which in 0usize..7, bad in 0usize..4) {
        let mut v = good_json(&g);
        let image = if g.name == "REMOVE" { "OldImage" } else { "NewImage" };
        let attr = ["meet_time", "created_at", "status", "duration_minutes", "teacher_ec2_id", "id", "student_ec2_id"][which];
        let wrong = match (attr, bad) {
            ("duration_minutes", 0) => json!({"S": "30"}),
            (_, 0) => json!({"N": "30"}),
            (_, 1) => json!({"BOOL": true}),
            (_, 2) => json!("plain"),
            _ => json!({"S": "a", "N": "1"}),
        };
        v["dynamodb"][image][attr] = wrong;
        let e = decode_record(&v).unwrap_err();
        prop_assert!(matches!(e.kind(), "wrong_type" | "not_dynamodb_json"), "{attr}: {e}");
    }

    #[test]
    fn the_one_pass_decoder_agrees_with_the_reference(v in arb_json()) {
        prop_assert_eq!(decode_text(&v.to_string()), reference_text(&v.to_string()), "{}", v);
    }

    #[test]
    fn the_one_pass_decoder_agrees_on_records_near_well_formed(g in arb_good(), which in 0usize..12, pick in any::<prop::sample::Index>(), junk in arb_json()) {
        // A well-formed record with one place replaced by arbitrary JSON.
        let mut v = good_json(&g);
        let image = if g.name == "REMOVE" { "OldImage" } else { "NewImage" };
        let places: [&[&str]; 12] = [
            &["eventID"], &["eventName"], &["dynamodb"], &["dynamodb", "ApproximateCreationDateTime"],
            &["dynamodb", "Keys"], &["dynamodb", "Keys", "id"], &["dynamodb", image],
            &["dynamodb", image, "meet_time"], &["dynamodb", image, "status"],
            &["dynamodb", image, "duration_minutes"], &["dynamodb", image, "teacher_session_data"],
            &["dynamodb", "OldImage", "student_ec2_id"],
        ];
        let path = places[which];
        let _ = pick;
        let mut at = &mut v;
        for key in &path[..path.len() - 1] {
            if !at.is_object() { break; }
            at = at.as_object_mut().unwrap().entry(key.to_string()).or_insert(json!({}));
        }
        if let Some(o) = at.as_object_mut() {
            o.insert(path[path.len() - 1].to_string(), junk);
        }
        prop_assert_eq!(decode_text(&v.to_string()), reference_text(&v.to_string()), "{}", v);
    }

    #[test]
    fn instants_print_and_parse_back(t in arb_instant()) {
        prop_assert_eq!(Timestamp::parse_iso(&t.to_rfc3339()).unwrap(), t);
    }
}
