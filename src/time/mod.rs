//! Instants and spans with microsecond precision, and the spec's time formats.
//!
//! [`Timestamp`] is microseconds since the Unix epoch (UTC) in an `i64`, which
//! covers every instant the spec accepts (years 1–9999) with room to spare.
//! Arithmetic saturates instead of panicking: a hostile `duration_minutes` of
//! `1e300` yields a far-future instant, never an overflow.

use std::fmt;

use serde::{Deserialize, Serialize};

const MICROS_PER_SEC: i64 = 1_000_000;
const MICROS_PER_MIN: i64 = 60 * MICROS_PER_SEC;
const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MIN;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// An instant, microseconds since 1970-01-01T00:00:00Z. Serialized as the
/// spec's RFC 3339 text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A signed length of time in microseconds. Serialized as text (`"1h30m"`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(i64);

impl Serialize for Timestamp {
    /// RFC 3339 text in a human-readable format (JSON), microseconds in a compact one.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    /// RFC 3339 text or microseconds (JSON), microseconds (compact).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Either<'a> {
                Micros(i64),
                #[serde(borrow)]
                Text(std::borrow::Cow<'a, str>),
            }
            match Either::deserialize(d)? {
                Either::Micros(us) => Ok(Timestamp(us)),
                Either::Text(s) => Timestamp::parse_iso(&s).map_err(serde::de::Error::custom),
            }
        } else {
            i64::deserialize(d).map(Timestamp)
        }
    }
}

impl Serialize for Span {
    /// Text (`1h30m`) in a human-readable format, microseconds in a compact one.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    /// Microseconds, or (JSON) a policy duration such as `"15m"`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Either<'a> {
                Micros(i64),
                #[serde(borrow)]
                Text(std::borrow::Cow<'a, str>),
            }
            match Either::deserialize(d)? {
                Either::Micros(us) => Ok(Span(us)),
                Either::Text(s) => Span::parse_policy(&s).map_err(serde::de::Error::custom),
            }
        } else {
            i64::deserialize(d).map(Span)
        }
    }
}

/// Why a time string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("expected YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]")]
    Format,
    #[error("not a calendar date or time of day")]
    Calendar,
    #[error("expected a duration such as \"90s\", \"15m\", \"4h\" or \"1h30m\"")]
    SpanFormat,
    #[error("duration is too large")]
    SpanOverflow,
}

impl Timestamp {
    /// 1970-01-01T00:00:00Z, where a replay's virtual clock starts.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The latest representable instant; arithmetic saturates here.
    pub const MAX: Timestamp = Timestamp(i64::MAX);
    /// The earliest representable instant; arithmetic saturates here.
    pub const MIN: Timestamp = Timestamp(i64::MIN);

    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(MICROS_PER_SEC))
    }

    /// Seconds since the epoch as a JSON number gives them (`1795687200.5`),
    /// rounded to the microsecond. `None` when not finite.
    pub fn from_epoch_seconds(secs: f64) -> Option<Self> {
        if !secs.is_finite() {
            return None;
        }
        let us = (secs * MICROS_PER_SEC as f64).round();
        if us >= i64::MAX as f64 || us <= i64::MIN as f64 {
            return None;
        }
        Some(Timestamp(us as i64))
    }

    pub fn saturating_add(self, span: Span) -> Self {
        Timestamp(self.0.saturating_add(span.0))
    }

    /// `self - earlier`, saturating.
    pub fn since(self, earlier: Timestamp) -> Span {
        Span(self.0.saturating_sub(earlier.0))
    }

    /// The wall clock, for the worker.
    pub fn now() -> Self {
        let now = chrono::Utc::now();
        Timestamp(now.timestamp_micros())
    }

    /// Parse the spec's `meet_time`/`created_at` format: `YYYY-MM-DD`, `T`
    /// (or `t` or a space), `HH:MM:SS`, an optional fraction, an optional
    /// `Z`/`z` or `±HH:MM` (no zone means UTC). Only real calendar values.
    pub fn parse_iso(s: &str) -> Result<Self, TimeError> {
        let b = s.as_bytes();
        if b.len() < 19 {
            return Err(TimeError::Format);
        }
        let year = digits(&b[0..4])?;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        let hour = digits(&b[11..13])?;
        let minute = digits(&b[14..16])?;
        let second = digits(&b[17..19])?;
        if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
            return Err(TimeError::Format);
        }
        let mut i = 19;
        let mut frac_us: i64 = 0;
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let start = i;
            let mut scale = 100_000;
            while i < b.len() && b[i].is_ascii_digit() {
                frac_us += (b[i] - b'0') as i64 * scale;
                scale /= 10;
                i += 1;
            }
            if i == start {
                return Err(TimeError::Format);
            }
        }
        let mut offset_us: i64 = 0;
        if i < b.len() {
            match b[i] {
                b'Z' | b'z' if i + 1 == b.len() => {}
                sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
                    let oh = digits(&b[i + 1..i + 3])?;
                    let om = digits(&b[i + 4..i + 6])?;
                    if oh > 23 || om > 59 {
                        return Err(TimeError::Calendar);
                    }
                    offset_us = oh * MICROS_PER_HOUR + om * MICROS_PER_MIN;
                    if sign == b'-' {
                        offset_us = -offset_us;
                    }
                }
                _ => return Err(TimeError::Format),
            }
        }
        if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(TimeError::Calendar);
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(TimeError::Calendar);
        }
        let days = days_from_civil(year, month, day);
        let local = days * MICROS_PER_DAY
            + hour * MICROS_PER_HOUR
            + minute * MICROS_PER_MIN
            + second * MICROS_PER_SEC
            + frac_us;
        Ok(Timestamp(local - offset_us))
    }

    /// RFC 3339 in UTC as the spec prints it: whole seconds as `…:SSZ`,
    /// otherwise milliseconds, truncated, as `…:SS.mmmZ`.
    pub fn to_rfc3339(self) -> String {
        let days = self.0.div_euclid(MICROS_PER_DAY);
        let in_day = self.0.rem_euclid(MICROS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let hh = in_day / MICROS_PER_HOUR;
        let mm = in_day % MICROS_PER_HOUR / MICROS_PER_MIN;
        let ss = in_day % MICROS_PER_MIN / MICROS_PER_SEC;
        let us = in_day % MICROS_PER_SEC;
        if !(0..=9999).contains(&y) {
            let frac = if us == 0 { String::new() } else { format!(".{:03}", us / 1000) };
            return format!("{y:+05}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{frac}Z");
        }
        // Hot path (history, write-backs): no formatting machinery.
        let mut b = [0u8; 24];
        let put = |b: &mut [u8], at: usize, v: i64, width: usize| {
            let mut v = v;
            for i in (0..width).rev() {
                b[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(&mut b, 0, y, 4);
        b[4] = b'-';
        put(&mut b, 5, m, 2);
        b[7] = b'-';
        put(&mut b, 8, d, 2);
        b[10] = b'T';
        put(&mut b, 11, hh, 2);
        b[13] = b':';
        put(&mut b, 14, mm, 2);
        b[16] = b':';
        put(&mut b, 17, ss, 2);
        let len = if us == 0 {
            b[19] = b'Z';
            20
        } else {
            b[19] = b'.';
            put(&mut b, 20, us / 1000, 3);
            b[23] = b'Z';
            24
        };
        String::from_utf8(b[..len].to_vec()).expect("ASCII digits")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_rfc3339())
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse_iso(s)
    }
}

impl Span {
    pub const ZERO: Span = Span(0);

    pub const fn from_micros(us: i64) -> Self {
        Span(us)
    }
    pub const fn as_micros(self) -> i64 {
        self.0
    }
    pub const fn from_secs(s: i64) -> Self {
        Span(s * MICROS_PER_SEC)
    }
    pub const fn from_millis(ms: i64) -> Self {
        Span(ms * 1000)
    }
    pub const fn from_mins(m: i64) -> Self {
        Span(m * MICROS_PER_MIN)
    }
    pub const fn from_hours(h: i64) -> Self {
        Span(h * MICROS_PER_HOUR)
    }

    /// Minutes as a finite decimal (`7.5` = 7 min 30 s), rounded to the
    /// microsecond and saturating at the representable range.
    pub fn from_minutes_f64(minutes: f64) -> Option<Self> {
        if !minutes.is_finite() {
            return None;
        }
        let us = (minutes * MICROS_PER_MIN as f64).round();
        // `as` saturates for out-of-range floats.
        Some(Span(us as i64))
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Parse the policy format `^(\d+h)?(\d+m)?(\d+s)?$`, not empty.
    pub fn parse_policy(s: &str) -> Result<Self, TimeError> {
        if s.is_empty() {
            return Err(TimeError::SpanFormat);
        }
        let mut total: i64 = 0;
        let mut rest = s.as_bytes();
        // Units must appear in this order, each at most once.
        for (unit, scale) in [(b'h', MICROS_PER_HOUR), (b'm', MICROS_PER_MIN), (b's', MICROS_PER_SEC)] {
            let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 || rest.get(n) != Some(&unit) {
                continue;
            }
            let mut value: i64 = 0;
            for &c in &rest[..n] {
                value = value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add((c - b'0') as i64))
                    .ok_or(TimeError::SpanOverflow)?;
            }
            let part = value.checked_mul(scale).ok_or(TimeError::SpanOverflow)?;
            total = total.checked_add(part).ok_or(TimeError::SpanOverflow)?;
            rest = &rest[n + 1..];
        }
        if !rest.is_empty() {
            return Err(TimeError::SpanFormat);
        }
        Ok(Span(total))
    }
}

impl fmt::Display for Span {
    /// `1h30m`, `90s` → `1m30s`, `0s`; sub-second parts as `1.5s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut us = self.0;
        if us < 0 {
            f.write_str("-")?;
            us = us.checked_neg().unwrap_or(i64::MAX);
        }
        if us == 0 {
            return f.write_str("0s");
        }
        if us < MICROS_PER_SEC {
            let text = format!("{}.{:03}", us / 1000, us % 1000);
            return write!(f, "{}ms", text.trim_end_matches('0').trim_end_matches('.'));
        }
        let h = us / MICROS_PER_HOUR;
        let m = us % MICROS_PER_HOUR / MICROS_PER_MIN;
        let s = us % MICROS_PER_MIN / MICROS_PER_SEC;
        let frac = us % MICROS_PER_SEC;
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if frac >= 1000 && h == 0 && m == 0 {
            let text = format!("{:03}", frac / 1000);
            write!(f, "{s}.{}s", text.trim_end_matches('0'))?;
        } else if frac > 0 && h == 0 && m == 0 {
            write!(f, "{s}.{frac:06}s")?;
        } else if s > 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn digits(b: &[u8]) -> Result<i64, TimeError> {
    let mut v: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return Err(TimeError::Format);
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Ok(v)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests;
