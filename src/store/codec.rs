//! How values the rules care about are written into a database's text
//! columns, shared by every SQL backend.
//!
//! An effect's parts are kept as JSON so that an operator can read them with
//! the database's own tools, but JSON is where the model's human-readable
//! serialisation would round instants to the millisecond (the output rule).
//! Stored parts must come back exactly as they were queued — the write-back
//! writes `terminated_at` as the meeting's `show` prints it — so instants are
//! stored here as integer microseconds. Rows written before this encoding (RFC
//! 3339 text, from migration 0005) still decode.

use serde::{Deserialize, Serialize};

use crate::meeting::{Effect, InstanceId, Reason};
use crate::time::Timestamp;

use super::StoreError;

#[derive(Serialize)]
enum PartOut<'a> {
    Terminate { instances: &'a [InstanceId] },
    WriteBack { reason: Reason, terminated_at: i64 },
}

#[derive(Deserialize)]
enum PartIn {
    Terminate { instances: Vec<InstanceId> },
    WriteBack { reason: Reason, terminated_at: Instant },
}

/// An instant as stored: microseconds, or RFC 3339 text from older rows.
#[derive(Deserialize)]
#[serde(untagged)]
enum Instant {
    Micros(i64),
    Text(Timestamp),
}

/// Effect parts as a JSON array, exactly.
pub(crate) fn encode_parts(parts: &[Effect]) -> String {
    let out: Vec<PartOut<'_>> = parts
        .iter()
        .map(|p| match p {
            Effect::Terminate { instances } => PartOut::Terminate { instances },
            Effect::WriteBack { reason, terminated_at } => {
                PartOut::WriteBack { reason: *reason, terminated_at: terminated_at.as_micros() }
            }
        })
        .collect();
    serde_json::to_string(&out).expect("effect parts serialize")
}

/// The parts [`encode_parts`] wrote (or an older row held).
pub(crate) fn decode_parts(text: &str) -> Result<Vec<Effect>, StoreError> {
    let parts: Vec<PartIn> =
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("effect parts {text:?}: {e}")))?;
    Ok(parts
        .into_iter()
        .map(|p| match p {
            PartIn::Terminate { instances } => Effect::Terminate { instances },
            PartIn::WriteBack { reason, terminated_at } => Effect::WriteBack {
                reason,
                terminated_at: match terminated_at {
                    Instant::Micros(us) => Timestamp::from_micros(us),
                    Instant::Text(t) => t,
                },
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_come_back_to_the_microsecond() {
        let parts = vec![
            Effect::Terminate { instances: vec![InstanceId::parse("i-0123456789abcdef0").unwrap()] },
            Effect::WriteBack {
                reason: Reason::NoShowTimeout,
                terminated_at: Timestamp::from_micros(1_764_152_100_000_400),
            },
        ];
        let text = encode_parts(&parts);
        assert_eq!(decode_parts(&text).unwrap(), parts);
    }

    #[test]
    fn older_rows_with_text_instants_still_decode() {
        let old = r#"[{"WriteBack":{"reason":"MAX_LIFETIME","terminated_at":"2026-11-26T10:15:00.250Z"}}]"#;
        assert_eq!(
            decode_parts(old).unwrap(),
            vec![Effect::WriteBack {
                reason: Reason::MaxLifetime,
                terminated_at: "2026-11-26T10:15:00.250Z".parse().unwrap()
            }]
        );
    }

    #[test]
    fn a_damaged_row_is_named() {
        let e = decode_parts(r#"[{"Explode":{}}]"#).unwrap_err().to_string();
        assert!(e.contains("effect parts") && e.contains("Explode"), "{e}");
    }
}
