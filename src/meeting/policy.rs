//! The meeting policy: `workflows/meeting.toml` and its validation.
//!
//! Keys live at the top level of a TOML file; an absent key takes its default,
//! and an unknown key (a table too) or a bad value is an error naming the key.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::time::Span;

/// How meetings end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Safety net, keep-alive re-checks, early success and a lifetime cap.
    Smart,
    /// One timer ends every meeting at `start + fixed_duration`.
    Fixed,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Smart => "smart",
            Mode::Fixed => "fixed",
        })
    }
}

/// The policy the state machine runs under. See `workflows/meeting.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub mode: Mode,
    pub safety_net_delay: Span,
    pub min_success_duration: Span,
    pub keepalive_recheck: Span,
    pub max_lifetime: Span,
    pub overrun_grace: Span,
    pub fixed_duration: Span,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Mode::Smart,
            safety_net_delay: Span::from_mins(15),
            min_success_duration: Span::from_mins(15),
            keepalive_recheck: Span::from_mins(15),
            max_lifetime: Span::from_hours(4),
            overrun_grace: Span::from_mins(15),
            fixed_duration: Span::from_mins(60),
        }
    }
}

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("policy is not valid TOML: {0}")]
    Syntax(String),
    #[error("unknown policy key `{key}` (known keys: {})", KEYS.join(", "))]
    UnknownKey { key: String },
    #[error("policy key `{key}`: {reason}")]
    BadValue { key: &'static str, reason: String },
}

/// The policy keys, in the order a policy file lists them.
pub const KEYS: [&str; 7] = [
    "mode",
    "safety_net_delay",
    "min_success_duration",
    "keepalive_recheck",
    "max_lifetime",
    "overrun_grace",
    "fixed_duration",
];

impl Policy {
    /// Read and validate a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| PolicyError::Read { path: path.display().to_string(), source })?;
        Policy::from_toml_str(&text)
    }

    /// Parse and validate policy text.
    pub fn from_toml_str(text: &str) -> Result<Policy, PolicyError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| PolicyError::Syntax(e.message().to_string() + &location(text, e.span())))?;
        let mut policy = Policy::default();
        for (key, value) in &table {
            policy.set(key, value)?;
        }
        Ok(policy)
    }

    /// Set the policy key `key` to `value`, as a policy file would.
    ///
    /// # Errors
    ///
    /// An unknown key, or a value that key does not take.
    pub fn set(&mut self, key: &str, value: &toml::Value) -> Result<(), PolicyError> {
        let policy = self;
        let Some(&known) = KEYS.iter().find(|k| **k == key) else {
            return Err(PolicyError::UnknownKey { key: key.to_string() });
        };
        if known == "mode" {
            policy.mode = match value.as_str() {
                Some("smart") => Mode::Smart,
                Some("fixed") => Mode::Fixed,
                Some(other) => {
                    return Err(PolicyError::BadValue {
                        key: known,
                        reason: format!("\"{other}\" is not \"smart\" or \"fixed\""),
                    })
                }
                None => {
                    return Err(PolicyError::BadValue {
                        key: known,
                        reason: format!("expected the string \"smart\" or \"fixed\", found {}", value.type_str()),
                    })
                }
            };
            return Ok(());
        }
        let span = match value.as_str() {
            Some(s) => Span::parse_policy(s)
                .map_err(|e| PolicyError::BadValue { key: known, reason: format!("\"{s}\": {e}") })?,
            None => {
                return Err(PolicyError::BadValue {
                    key: known,
                    reason: format!(
                        "expected a duration string such as \"15m\" or \"1h30m\", found {} `{value}`",
                        value.type_str()
                    ),
                })
            }
        };
        match known {
            "safety_net_delay" => policy.safety_net_delay = span,
            "min_success_duration" => policy.min_success_duration = span,
            "keepalive_recheck" => {
                if !span.is_positive() {
                    return Err(PolicyError::BadValue { key: known, reason: "must be more than zero".into() });
                }
                policy.keepalive_recheck = span
            }
            "max_lifetime" => policy.max_lifetime = span,
            "overrun_grace" => policy.overrun_grace = span,
            "fixed_duration" => policy.fixed_duration = span,
            _ => unreachable!("every key of KEYS is handled"),
        }
        Ok(())
    }

    /// The value of `key` as a policy file writes it (`None`: not a policy key).
    pub fn value(&self, key: &str) -> Option<String> {
        Some(match key {
            "mode" => self.mode.to_string(),
            "safety_net_delay" => self.safety_net_delay.to_string(),
            "min_success_duration" => self.min_success_duration.to_string(),
            "keepalive_recheck" => self.keepalive_recheck.to_string(),
            "max_lifetime" => self.max_lifetime.to_string(),
            "overrun_grace" => self.overrun_grace.to_string(),
            "fixed_duration" => self.fixed_duration.to_string(),
            _ => return None,
        })
    }

    /// The policy as TOML, every key spelled out (for `--help`-style output and history).
    pub fn to_toml(&self) -> String {
        format!(
            "mode = \"{}\"\nsafety_net_delay = \"{}\"\nmin_success_duration = \"{}\"\nkeepalive_recheck = \"{}\"\nmax_lifetime = \"{}\"\noverrun_grace = \"{}\"\nfixed_duration = \"{}\"\n",
            self.mode,
            self.safety_net_delay,
            self.min_success_duration,
            self.keepalive_recheck,
            self.max_lifetime,
            self.overrun_grace,
            self.fixed_duration
        )
    }
}

fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let line = text[..r.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(Policy::from_toml_str("").unwrap(), Policy::default());
        assert_eq!(Policy::from_toml_str("# only a comment\n").unwrap(), Policy::default());
    }

    #[test]
    fn every_key_is_read() {
        let p = Policy::from_toml_str(
            "mode = \"fixed\"\nsafety_net_delay = \"90s\"\nmin_success_duration = \"1h30m\"\nkeepalive_recheck = \"10m\"\nmax_lifetime = \"1h\"\noverrun_grace = \"5m\"\nfixed_duration = \"45m\"\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Fixed);
        assert_eq!(p.safety_net_delay, Span::from_secs(90));
        assert_eq!(p.min_success_duration, Span::from_mins(90));
        assert_eq!(p.keepalive_recheck, Span::from_mins(10));
        assert_eq!(p.max_lifetime, Span::from_hours(1));
        assert_eq!(p.overrun_grace, Span::from_mins(5));
        assert_eq!(p.fixed_duration, Span::from_mins(45));
        assert_eq!(Policy::from_toml_str(&p.to_toml()).unwrap(), p, "to_toml round-trips");
    }

    fn err(text: &str) -> String {
        Policy::from_toml_str(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err("bogus_key = \"1m\"").contains("`bogus_key`"));
        assert!(err("[meeting]\nmode = \"smart\"").contains("`meeting`"));
        assert!(err("safety_net_delay = \"15 minutes\"").contains("`safety_net_delay`"));
        assert!(err("mode = \"lazy\"").contains("`mode`"));
        assert!(err("mode = 1").contains("`mode`"));
        assert!(err("max_lifetime = 900").contains("`max_lifetime`"));
        assert!(err("keepalive_recheck = \"0s\"").contains("`keepalive_recheck`"));
        assert!(err("overrun_grace = \"\"").contains("`overrun_grace`"));
        assert!(err("fixed_duration = \"99999999999999h\"").contains("`fixed_duration`"));
        assert!(err("mode = ").contains("not valid TOML"));
    }

    #[test]
    fn zero_is_fine_except_for_the_recheck() {
        let p = Policy::from_toml_str("safety_net_delay = \"0s\"\nmax_lifetime = \"0m\"").unwrap();
        assert_eq!(p.safety_net_delay, Span::ZERO);
        assert_eq!(p.max_lifetime, Span::ZERO);
    }
}
