use super::*;
use serde_json::json;

fn rec(ddb: Value) -> Value {
    json!({"eventID": "e1", "eventName": "MODIFY", "dynamodb": ddb})
}

fn ok(v: Value) -> Change {
    decode_record(&v).unwrap_or_else(|e| panic!("{v} should decode: {e}"))
}

fn err(v: Value) -> RecordError {
    match decode_record(&v) {
        Ok(c) => panic!("{v} should be malformed, decoded {c:?}"),
        Err(e) => e,
    }
}

fn image(extra: Value) -> Value {
    let mut img = json!({"id": {"S": "m-1"}, "meet_time": {"S": "2026-11-26T10:00:00Z"}});
    for (k, v) in extra.as_object().unwrap() {
        img[k] = v.clone();
    }
    img
}

#[test]
fn decodes_a_plain_record() {
    let c = ok(json!({
        "eventID": "ev-1", "eventName": "INSERT",
        "dynamodb": {"ApproximateCreationDateTime": 1795687200, "Keys": {"id": {"S": "m-1"}},
            "NewImage": image(json!({"status": {"S": "IN_PROGRESS"}, "duration_minutes": {"N": "7.5"},
                "teacher_ec2_id": {"S": "i-0123456789abcdef0"}, "teacher_session_data": {"M": {}}}))}
    }));
    assert_eq!(c.event_id.as_deref(), Some("ev-1"));
    assert_eq!(c.event_name, EventName::Insert);
    assert_eq!(c.event_time, Some(Timestamp::from_secs(1_795_687_200)));
    assert_eq!(c.meeting_id.as_str(), "m-1");
    let img = c.image.unwrap();
    assert_eq!(img.meet_time, Some(Timestamp::from_secs(1_795_687_200)));
    assert_eq!(img.duration, Some(Span::from_secs(450)));
    assert_eq!(img.status.as_deref(), Some("IN_PROGRESS"));
    assert!(img.teacher_data && !img.student_data);
    assert_eq!(
        c.instance_ids,
        vec![SeenInstance { source: crate::meeting::InstanceSource::NewTeacher, value: "i-0123456789abcdef0".into() }]
    );
}

#[test]
fn each_malformed_case_has_its_reason() {
    let good_ddb = json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({}))});
    let cases: Vec<(Value, &str)> = vec![
        (json!(42), "not_an_object"),
        (json!([1, 2]), "not_an_object"),
        (json!("x"), "not_an_object"),
        (json!({"eventName": "UPDATE", "dynamodb": good_ddb}), "bad_event_name"),
        (json!({"eventName": 7, "dynamodb": good_ddb}), "bad_event_name"),
        (json!({"dynamodb": good_ddb}), "bad_event_name"),
        (json!({"eventName": "MODIFY", "eventID": 5, "dynamodb": good_ddb}), "bad_event_id"),
        (json!({"eventName": "MODIFY"}), "no_dynamodb"),
        (json!({"eventName": "MODIFY", "dynamodb": "string"}), "no_dynamodb"),
        (json!({"eventName": "MODIFY", "dynamodb": null}), "no_dynamodb"),
        (rec(json!({"ApproximateCreationDateTime": "1795689000", "Keys": {"id": {"S": "m-1"}}})), "bad_event_time"),
        (rec(json!({"ApproximateCreationDateTime": true, "Keys": {"id": {"S": "m-1"}}})), "bad_event_time"),
        (rec(json!({"ApproximateCreationDateTime": -1, "Keys": {"id": {"S": "m-1"}}})), "bad_event_time"),
        (rec(json!({"ApproximateCreationDateTime": 253402300800u64, "Keys": {"id": {"S": "m-1"}}})), "bad_event_time"),
        (rec(json!({"Keys": "m-1"})), "not_a_map"),
        (rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": [1]})), "not_a_map"),
        (rec(json!({"Keys": {"id": {"S": "m-1"}}, "OldImage": 3})), "not_a_map"),
        (rec(json!({"NewImage": {"meet_time": {"S": "2026-11-26T10:00:00Z"}}})), "no_meeting_id"),
        (rec(json!({"Keys": {"id": {"S": ""}}, "NewImage": image(json!({}))})), "no_meeting_id"),
        (rec(json!({"Keys": {"id": {"N": "1"}}})), "wrong_type"),
        (rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"meet_time": {"N": "5"}}))})), "wrong_type"),
        (rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"meet_time": {"S": 5}}))})), "wrong_type"),
        (
            rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"teacher_ec2_id": {"N": "1"}}))})),
            "wrong_type",
        ),
        (
            rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"status": {"BOOL": true}}))})),
            "wrong_type",
        ),
        (
            rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"duration_minutes": {"S": "5"}}))})),
            "wrong_type",
        ),
        (rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"id": {"N": "1"}}))})), "wrong_type"),
        (rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"meet_time": "x"}))})), "not_dynamodb_json"),
        (
            rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"status": {"S": "x", "N": "1"}}))})),
            "not_dynamodb_json",
        ),
        (
            rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"teacher_session_data": {"X": 1}}))})),
            "not_dynamodb_json",
        ),
        (
            rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"student_session_data": {}}))})),
            "not_dynamodb_json",
        ),
        (
            rec(
                json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"meet_time": {"S": "2026-13-40T10:00:00Z"}}))}),
            ),
            "bad_time",
        ),
        (
            rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"created_at": {"S": "yesterday"}}))})),
            "bad_time",
        ),
        (
            rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"duration_minutes": {"N": "abc"}}))})),
            "bad_number",
        ),
        (
            rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"duration_minutes": {"N": "inf"}}))})),
            "bad_number",
        ),
        (
            rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({"duration_minutes": {"N": "1e999"}}))})),
            "bad_number",
        ),
        (rec(json!({"Keys": {"id": {"S": "m-1"}}, "OldImage": {"student_ec2_id": {"BOOL": true}}})), "wrong_type"),
    ];
    for (v, kind) in cases {
        let e = err(v.clone());
        assert_eq!(e.kind(), kind, "{v} → {e}");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn null_is_absent() {
    // JSON null for the optional fields.
    let c = ok(json!({"eventID": null, "eventName": "MODIFY", "dynamodb": {
        "ApproximateCreationDateTime": null, "Keys": null, "NewImage": image(json!({})), "OldImage": null}}));
    assert_eq!(c.event_id, None);
    assert_eq!(c.event_time, None);
    assert_eq!(c.meeting_id.as_str(), "m-1", "falls back to the image's id");
    // Type NULL attributes.
    let c = ok(rec(json!({"Keys": {"id": {"NULL": true}}, "NewImage": image(json!({
        "status": {"NULL": true}, "teacher_ec2_id": {"NULL": true}, "duration_minutes": {"NULL": true},
        "teacher_session_data": {"NULL": true}, "student_session_data": {"NULL": false},
        "created_at": {"NULL": true}}))})));
    let img = c.image.unwrap();
    assert_eq!(img.status, None);
    assert_eq!(img.duration, None);
    assert_eq!(img.created_at, None);
    assert!(!img.teacher_data && !img.student_data, "NULL of any value is no data");
    assert!(c.instance_ids.is_empty());
    let c = ok(rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": null})));
    assert_eq!(c.image, None, "a null image is no image");
}

#[test]
fn only_what_is_read_is_validated() {
    // Attributes the engine does not read may be anything.
    let c = ok(rec(json!({"Keys": {"id": {"S": "m-1"}, "other": 5}, "SequenceNumber": [],
        "NewImage": image(json!({"foo": "bar", "baz": {"S": "x", "N": "1"}}))})));
    assert_eq!(c.meeting_id.as_str(), "m-1");
    // In the other image only the instance ids are read.
    let c = ok(rec(json!({"Keys": {"id": {"S": "m-1"}}, "NewImage": image(json!({})),
        "OldImage": {"meet_time": {"S": "not-a-time"}, "id": 5, "student_ec2_id": {"S": "i-89abcdef"}}})));
    assert_eq!(c.instance_ids[0].source, crate::meeting::InstanceSource::OldStudent);
    // A REMOVE uses its OldImage.
    let c = ok(json!({"eventName": "REMOVE", "dynamodb": {"Keys": {"id": {"S": "m-1"}},
        "NewImage": {"meet_time": {"S": "garbage"}}, "OldImage": image(json!({}))}}));
    assert_eq!(c.image.unwrap().meet_time, Some(Timestamp::from_secs(1_795_687_200)));
}

#[test]
fn keys_id_wins_over_the_image() {
    let c = ok(rec(json!({"Keys": {"id": {"S": "m-key"}}, "NewImage": image(json!({"id": {"S": "m-img"}}))})));
    assert_eq!(c.meeting_id.as_str(), "m-key");
}

#[test]
fn fractional_event_times() {
    let c = ok(rec(json!({"ApproximateCreationDateTime": 1795687200.5, "Keys": {"id": {"S": "m-1"}}})));
    assert_eq!(c.event_time.unwrap().to_rfc3339(), "2026-11-26T10:00:00.500Z");
    let c = ok(rec(json!({"ApproximateCreationDateTime": 0, "Keys": {"id": {"S": "m-1"}}})));
    assert_eq!(c.event_time, Some(Timestamp::EPOCH));
}

#[test]
fn decimal_numbers() {
    for (s, v) in [("30", 30.0), ("7.5", 7.5), ("-5", -5.0), ("1e2", 100.0), ("1.5E+1", 15.0), (".5", 0.5), ("5.", 5.0)]
    {
        assert_eq!(parse_decimal(s), Some(v), "{s}");
    }
    for s in ["", "abc", "1e", "--1", "1 ", " 1", "NaN", "inf", "infinity", "1e400", "0x10", "1_000", "."] {
        assert_eq!(parse_decimal(s), None, "{s:?}");
    }
}

#[test]
fn lines() {
    assert!(decode_line(b"").is_empty());
    assert!(decode_line(b"   \t\r").is_empty());
    let one = |l: &[u8]| {
        let mut items = decode_line(l);
        assert_eq!(items.len(), 1, "{:?}", String::from_utf8_lossy(l));
        items.remove(0)
    };
    let Item::Dead(d) = one(b"this is not json {") else { panic!() };
    assert_eq!(d.reason.kind(), "not_json");
    assert_eq!(d.raw, b"this is not json {");
    let Item::Dead(d) = one(b"{\"eventName\": \"\xff\xfe\"}") else { panic!() };
    assert_eq!(d.reason.kind(), "not_utf8");
    let Item::Dead(d) = one(br#"{"Records": {"a": 1}}"#) else { panic!() };
    assert_eq!(d.reason.kind(), "records_not_list");
    let Item::Dead(d) = one(br#"{"Records": null}"#) else { panic!() };
    assert_eq!(d.reason.kind(), "records_not_list");
    let deep = "[".repeat(100_000);
    let Item::Dead(d) = one(deep.as_bytes()) else { panic!() };
    assert_eq!(d.reason.kind(), "not_json");

    let env = br#"{"Records": [{"eventName": "DELETE", "eventID": "x", "dynamodb": {}}, {"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "m-2"}}}}, "not-an-object"]}"#;
    let items = decode_line(env);
    assert_eq!(items.len(), 3);
    assert!(
        matches!(&items[0], Item::Dead(d) if d.reason.kind() == "bad_event_name" && d.event_id.as_deref() == Some("x"))
    );
    assert!(matches!(&items[1], Item::Record(r) if r.change.meeting_id.as_str() == "m-2"));
    assert!(matches!(&items[2], Item::Dead(d) if d.reason.kind() == "not_an_object" && d.raw == b"\"not-an-object\""));
    assert!(decode_line(br#"{"Records": []}"#).is_empty());
}

#[test]
fn what_is_not_read_is_still_json_as_serde_json_reads_it() {
    // The one-pass decoder skips unread attributes, but keeps the parser's
    // limits: nesting deeper than it allows, and numbers out of range, are
    // not JSON wherever they are.
    let deep = format!(r#"{{"eventName":"INSERT","junk":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
    let items = decode_line(deep.as_bytes());
    assert!(matches!(&items[..], [Item::Dead(d)] if d.reason.kind() == "not_json"), "{items:?}");
    let huge = r#"{"eventName":"INSERT","SizeBytes":1e400,"dynamodb":{"Keys":{"id":{"S":"m"}}}}"#;
    let items = decode_line(huge.as_bytes());
    assert!(matches!(&items[..], [Item::Dead(d)] if d.reason.kind() == "not_json"), "{items:?}");
    // Escaped keys are the keys they spell; a repeated key's last value wins.
    let escaped = r#"{"event\u004eame":"MODIFY","eventName":"INSERT","dynamodb":{"Keys":{"id":{"S":"m-1"}},"NewImage":{"meet_time":{"S":"x","S":"2026-11-26T10:00:00Z"}}}}"#;
    let c = decode_record(&serde_json::from_str(escaped).unwrap()).unwrap();
    assert_eq!(c.event_name, EventName::Insert);
    assert!(c.image.unwrap().meet_time.is_some());
}
