//! `--html`: one self-contained page.

use super::{Summary, WhatIf};
use crate::time::Timestamp;

pub fn report(_w: &WhatIf, _s: &[Summary], _h: Option<Timestamp>, _name: &str) -> String {
    String::new()
}
