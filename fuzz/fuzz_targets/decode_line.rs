//! Any bytes as one input line: the decoder must not panic, and every dead
//! letter must carry a reason and the raw input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spindown::meeting::record::{decode_line, Item};

fuzz_target!(|data: &[u8]| {
    for item in decode_line(data) {
        match item {
            Item::Dead(d) => {
                assert!(!d.reason.to_string().is_empty());
                assert!(!d.reason.kind().is_empty());
            }
            Item::Record(r) => {
                assert!(!r.change.meeting_id.as_str().is_empty());
            }
        }
    }
});
