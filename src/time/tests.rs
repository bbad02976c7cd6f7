use super::*;

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_iso(s).unwrap()
}

#[test]
fn parses_every_accepted_shape() {
    let base = ts("2026-11-26T10:00:00Z");
    assert_eq!(base, Timestamp::from_secs(1_795_687_200));
    assert_eq!(ts("2026-11-26T10:00:00"), base, "no zone means UTC");
    assert_eq!(ts("2026-11-26t10:00:00z"), base);
    assert_eq!(ts("2026-11-26 10:00:00Z"), base);
    assert_eq!(ts("2026-11-26T12:00:00+02:00"), base);
    assert_eq!(ts("2026-11-26T04:30:00-05:30"), base);
    assert_eq!(ts("2026-11-26T10:00:00.250Z").as_micros() - base.as_micros(), 250_000);
    assert_eq!(ts("2026-11-26T10:00:00.1234567Z").as_micros() - base.as_micros(), 123_456);
}

#[test]
fn rejects_what_the_spec_rejects() {
    for bad in [
        "garbage",
        "not-a-time",
        "yesterday",
        "2026-11-26",
        "2026-11-26T10:00",
        "2026-11-26T10:00:00.",
        "2026-11-26T10:00:00+0200",
        "2026-11-26T10:00:00 Z",
        "2026-11-26X10:00:00",
        "2026-11-26T10:00:00Z\n",
        " 2026-11-26T10:00:00Z",
        "2026-11-26T10:00:00+02",
    ] {
        assert_eq!(Timestamp::parse_iso(bad), Err(TimeError::Format), "{bad:?}");
    }
    for bad in [
        "2026-13-40T10:00:00Z",
        "2026-02-29T10:00:00Z",
        "2026-04-31T10:00:00Z",
        "2026-11-26T24:00:00Z",
        "2026-11-26T10:60:00Z",
        "2026-11-26T10:00:60Z",
        "0000-01-01T00:00:00Z",
        "2026-11-26T10:00:00+24:00",
    ] {
        assert_eq!(Timestamp::parse_iso(bad), Err(TimeError::Calendar), "{bad:?}");
    }
    assert!(Timestamp::parse_iso("2024-02-29T00:00:00Z").is_ok(), "leap day");
    assert!(Timestamp::parse_iso("2000-02-29T00:00:00Z").is_ok(), "leap century");
    assert!(Timestamp::parse_iso("1900-02-29T00:00:00Z").is_err(), "not a leap century");
}

#[test]
fn prints_whole_seconds_or_truncated_millis() {
    assert_eq!(ts("2026-11-26T10:15:00Z").to_rfc3339(), "2026-11-26T10:15:00Z");
    assert_eq!(ts("2026-11-26T10:15:00.250Z").to_rfc3339(), "2026-11-26T10:15:00.250Z");
    assert_eq!(ts("2026-11-26T10:15:00.2509Z").to_rfc3339(), "2026-11-26T10:15:00.250Z");
    assert_eq!(ts("2026-11-26T10:15:00.0004Z").to_rfc3339(), "2026-11-26T10:15:00.000Z");
    assert_eq!(Timestamp::EPOCH.to_rfc3339(), "1970-01-01T00:00:00Z");
    assert_eq!(ts("1969-12-31T23:59:59.5Z").to_rfc3339(), "1969-12-31T23:59:59.500Z");
    for s in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-02-29T12:34:56Z"] {
        assert_eq!(ts(s).to_rfc3339(), s);
    }
}

#[test]
fn epoch_seconds_round_to_the_microsecond() {
    assert_eq!(Timestamp::from_epoch_seconds(1_795_687_200.5).unwrap().to_rfc3339(), "2026-11-26T10:00:00.500Z");
    assert_eq!(Timestamp::from_epoch_seconds(1_795_687_200.123).unwrap().as_micros(), 1_795_687_200_123_000);
    assert!(Timestamp::from_epoch_seconds(f64::NAN).is_none());
    assert!(Timestamp::from_epoch_seconds(1e300).is_none());
}

#[test]
fn policy_spans() {
    assert_eq!(Span::parse_policy("90s"), Ok(Span::from_secs(90)));
    assert_eq!(Span::parse_policy("15m"), Ok(Span::from_mins(15)));
    assert_eq!(Span::parse_policy("4h"), Ok(Span::from_hours(4)));
    assert_eq!(Span::parse_policy("1h30m"), Ok(Span::from_mins(90)));
    assert_eq!(Span::parse_policy("1h2m3s"), Ok(Span::from_secs(3723)));
    assert_eq!(Span::parse_policy("0s"), Ok(Span::ZERO));
    for bad in ["", "15", "15 minutes", "m", "1m1h", "1h1h", "1.5m", "-1m", "1d", " 1m", "1m "] {
        assert_eq!(Span::parse_policy(bad), Err(TimeError::SpanFormat), "{bad:?}");
    }
    assert_eq!(Span::parse_policy("99999999999999999999h"), Err(TimeError::SpanOverflow));
    assert_eq!(Span::parse_policy("9999999999999h"), Err(TimeError::SpanOverflow));
}

#[test]
fn spans_print_compactly() {
    assert_eq!(Span::from_mins(90).to_string(), "1h30m");
    assert_eq!(Span::from_secs(90).to_string(), "1m30s");
    assert_eq!(Span::ZERO.to_string(), "0s");
    assert_eq!(Span::from_micros(1_500_000).to_string(), "1.5s");
    assert_eq!(Span::from_micros(5_915).to_string(), "5.915ms");
    assert_eq!(Span::from_micros(250_000).to_string(), "250ms");
    assert_eq!(Span::from_micros(7).to_string(), "0.007ms");
    assert_eq!(Span::from_secs(-5).to_string(), "-5s");
}

#[test]
fn serde_is_text_for_people_and_numbers_for_storage() {
    let t = ts("2026-11-26T10:15:00.250Z");
    assert_eq!(serde_json::to_string(&t).unwrap(), "\"2026-11-26T10:15:00.250Z\"");
    assert_eq!(serde_json::from_str::<Timestamp>("\"2026-11-26T10:15:00.250Z\"").unwrap(), t);
    assert_eq!(serde_json::from_str::<Timestamp>(&t.as_micros().to_string()).unwrap(), t);
    let bytes = postcard::to_allocvec(&t).unwrap();
    assert!(bytes.len() <= 10, "a varint, not text: {bytes:?}");
    assert_eq!(postcard::from_bytes::<Timestamp>(&bytes).unwrap(), t);
    let d = Span::from_secs(330);
    assert_eq!(serde_json::to_string(&d).unwrap(), "\"5m30s\"");
    assert_eq!(serde_json::from_str::<Span>("330000000").unwrap(), d);
    assert_eq!(postcard::from_bytes::<Span>(&postcard::to_allocvec(&d).unwrap()).unwrap(), d);
}

#[test]
fn arithmetic_saturates() {
    assert_eq!(Timestamp::MAX.saturating_add(Span::from_hours(1)), Timestamp::MAX);
    assert_eq!(Span::from_minutes_f64(1e300), Some(Span::from_micros(i64::MAX)));
    assert_eq!(Span::from_minutes_f64(7.5), Some(Span::from_secs(450)));
    assert_eq!(Span::from_minutes_f64(f64::INFINITY), None);
}
