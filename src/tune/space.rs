//! A space of policies (`spec/tune.md`, "Candidates"): `[[space]]` tables
//! whose keys are policy keys and whose values are arrays of values, each
//! table the Cartesian product of its arrays over the base policy.

use std::fmt;

use crate::meeting::{Policy, PolicyError};

/// The space `spindown tune` searches when `--space` is not given.
pub const DEFAULT_SPACE: &str = r#"[[space]]
mode = ["smart"]
max_lifetime = ["1h", "90m", "2h", "3h", "4h"]
keepalive_recheck = ["5m", "10m", "15m"]
safety_net_delay = ["10m", "15m", "20m"]

[[space]]
mode = ["fixed"]
fixed_duration = ["30m", "45m", "60m", "75m", "90m", "2h"]
"#;

/// A space file: its tables in file order, each key with its values in the
/// order written.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    tables: Vec<Vec<(String, Vec<toml::Value>)>>,
}

/// A space that cannot be used; the message names the key and the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpaceError {
    #[error("not valid TOML: {0}")]
    Syntax(String),
    #[error("no [[space]] table (a space file holds one or more [[space]] tables of policy keys)")]
    NoTables,
    #[error("unknown top-level key `{0}` (a space file holds only [[space]] tables)")]
    TopLevel(String),
    #[error("`space` must be [[space]] tables, found {0}")]
    NotTables(&'static str),
    #[error("[[space]] table {table}, key `{key}`: {reason}")]
    Key { table: usize, key: String, reason: String },
}

impl Space {
    /// The default space ([`DEFAULT_SPACE`]).
    pub fn default_space() -> Space {
        Space::parse(DEFAULT_SPACE).expect("the default space is valid")
    }

    /// Parse and check a space file: every key a policy key, every array
    /// non-empty, every value valid for its key.
    ///
    /// # Errors
    ///
    /// The first problem found, naming the key and the table (counted from 1).
    pub fn parse(text: &str) -> Result<Space, SpaceError> {
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map(|r| text[..r.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            SpaceError::Syntax(match line {
                Some(l) => format!("{msg} (line {l})"),
                None => msg,
            })
        })?;
        if let Some(other) = doc.keys().find(|k| *k != "space") {
            return Err(SpaceError::TopLevel(other.clone()));
        }
        let tables = match doc.get("space") {
            None => return Err(SpaceError::NoTables),
            Some(toml::Value::Array(a)) => a,
            Some(other) => return Err(SpaceError::NotTables(other.type_str())),
        };
        if tables.is_empty() {
            return Err(SpaceError::NoTables);
        }
        let mut out = Vec::with_capacity(tables.len());
        for (n, t) in tables.iter().enumerate() {
            let table = n + 1;
            let toml::Value::Table(t) = t else { return Err(SpaceError::NotTables(t.type_str())) };
            let mut keys = Vec::with_capacity(t.len());
            for (key, values) in t {
                let bad = |reason: String| SpaceError::Key { table, key: key.clone(), reason };
                let toml::Value::Array(values) = values else {
                    return Err(bad(format!("expected an array of values, found {} `{values}`", values.type_str())));
                };
                if values.is_empty() {
                    return Err(bad("the array is empty (list one or more values)".into()));
                }
                let mut probe = Policy::default();
                for v in values {
                    probe.set(key, v).map_err(|e| match e {
                        PolicyError::UnknownKey { .. } => bad(format!("not a policy key ({e})")),
                        PolicyError::BadValue { reason, .. } => bad(reason),
                        other => bad(other.to_string()),
                    })?;
                }
                keys.push((key.clone(), values.clone()));
            }
            out.push(keys);
        }
        Ok(Space { tables: out })
    }

    /// The candidates over `base`, in the spec's order (tables in file order,
    /// the last key varying fastest), each policy once: a candidate equal to
    /// an earlier one is dropped (the base is not a candidate, so one equal
    /// to it is kept).
    pub fn candidates(&self, base: &Policy) -> Vec<Policy> {
        let mut out: Vec<Policy> = Vec::new();
        for table in &self.tables {
            let mut digits = vec![0usize; table.len()];
            'combinations: loop {
                let mut p = base.clone();
                for ((key, values), &d) in table.iter().zip(&digits) {
                    p.set(key, &values[d]).expect("checked by parse");
                }
                if !out.contains(&p) {
                    out.push(p);
                }
                // The odometer: the last key turns fastest.
                let mut k = table.len();
                loop {
                    if k == 0 {
                        break 'combinations;
                    }
                    k -= 1;
                    digits[k] += 1;
                    if digits[k] < table[k].1.len() {
                        break;
                    }
                    digits[k] = 0;
                }
            }
        }
        out
    }

    /// How many combinations the tables stand for, before duplicates are dropped.
    pub fn combinations(&self) -> usize {
        self.tables.iter().map(|t| t.iter().map(|(_, v)| v.len()).product::<usize>()).sum()
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tables {
            writeln!(f, "[[space]]")?;
            for (k, v) in t {
                let vs: Vec<String> = v.iter().map(ToString::to_string).collect();
                writeln!(f, "{k} = [{}]", vs.join(", "))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meeting::Mode;
    use crate::time::Span;

    #[test]
    fn the_default_space_has_51_candidates_in_order() {
        let c = Space::default_space().candidates(&Policy::default());
        assert_eq!(c.len(), 45 + 6);
        // smart, 1h, 5m, then safety_net_delay turning fastest.
        assert_eq!(
            (c[0].max_lifetime, c[0].keepalive_recheck, c[0].safety_net_delay),
            (Span::from_hours(1), Span::from_mins(5), Span::from_mins(10))
        );
        assert_eq!(c[1].safety_net_delay, Span::from_mins(15));
        assert_eq!(c[3].keepalive_recheck, Span::from_mins(10));
        assert_eq!(c[9].max_lifetime, Span::from_mins(90));
        assert_eq!(c[45].mode, Mode::Fixed);
        assert_eq!(c[45].fixed_duration, Span::from_mins(30));
        assert_eq!(c[50].fixed_duration, Span::from_hours(2));
    }

    #[test]
    fn duplicates_are_dropped_by_value_and_an_empty_table_is_the_base() {
        let s = Space::parse(
            "[[space]]\nmax_lifetime = [\"2h\", \"120m\", \"1h\"]\n[[space]]\n[[space]]\nmax_lifetime = [\"60m\"]\n",
        )
        .unwrap();
        let c = s.candidates(&Policy::default());
        assert_eq!(s.combinations(), 5);
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(c[2], Policy::default());
    }

    #[test]
    fn errors_name_the_key_and_the_table() {
        let e = |t: &str| Space::parse(t).unwrap_err().to_string();
        assert!(e("[[space]]\nmode = [\"smart\"]\n[[space]]\nmax_lifetim = [\"1h\"]\n")
            .contains("table 2, key `max_lifetim`"));
        assert!(e("[[space]]\nmax_lifetime = []\n").contains("table 1, key `max_lifetime`: the array is empty"));
        assert!(e("[[space]]\nkeepalive_recheck = [\"5m\", \"0s\"]\n")
            .contains("table 1, key `keepalive_recheck`: must be more than zero"));
        assert!(e("[[space]]\nmax_lifetime = \"1h\"\n").contains("expected an array"));
        assert!(e("mode = [\"smart\"]\n").contains("unknown top-level key `mode`"));
        assert!(e("").contains("no [[space]] table"));
        assert!(e("[[space]\n").contains("not valid TOML"));
    }
}
