//! Reading the JSON lines of `whatif` and `tune`, and what replay ends: shared
//! by the what-if and the tune tests.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{fixture, outcomes, run_ok, spindown};

pub fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// Compare JSON objects key by key; numbers within `tol`, everything else exactly.
pub fn assert_close(got: &[Value], want: &[Value], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {} lines, want {}", got.len(), want.len());
    let mut diffs = Vec::new();
    for (n, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.as_object().unwrap(), w.as_object().unwrap());
        let keys: std::collections::BTreeSet<&String> = g.keys().chain(w.keys()).collect();
        for k in keys {
            let (a, b) = (g.get(k), w.get(k));
            let same = match (a, b) {
                (Some(Value::Number(x)), Some(Value::Number(y))) => {
                    (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= tol
                }
                _ => a == b,
            };
            if !same {
                diffs.push(format!("line {}: {k}: got {a:?}, want {b:?}", n + 1));
            }
        }
    }
    assert!(diffs.is_empty(), "{what}: {} differences:\n{}", diffs.len(), diffs.join("\n"));
}

/// Each meeting's (reason, terminated_at) in a policy model of `whatif --meetings`.
pub fn model_ends(meetings: &[Value], model: &str) -> BTreeMap<String, (Value, Value)> {
    meetings
        .iter()
        .filter(|m| m["model"] == model)
        .map(|m| (m["id"].as_str().unwrap().to_string(), (m["reason"].clone(), m["terminated_at"].clone())))
        .collect()
}

/// The same from `spindown replay --json`.
pub fn replay_ends(input: &Path, policy: Option<&str>) -> BTreeMap<String, (Value, Value)> {
    let mut cmd = spindown();
    cmd.arg("replay").arg(input).arg("--json");
    if let Some(p) = policy {
        cmd.arg("--policy").arg(p);
    }
    outcomes(&run_ok(&mut cmd))
        .into_iter()
        .map(|(id, v)| (id, (v["reason"].clone(), v["terminated_at"].clone())))
        .collect()
}

/// Every edge case of the fixtures (`edge/NN_name.jsonl`), in name order,
/// with its policy file when it has one.
pub fn edge_cases() -> Vec<(std::path::PathBuf, Option<std::path::PathBuf>)> {
    let mut edges: Vec<std::path::PathBuf> = std::fs::read_dir(fixture("edge"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl") && !p.to_string_lossy().ends_with(".expected.jsonl"))
        .collect();
    edges.sort();
    assert!(edges.len() >= 15, "every edge case is found");
    edges
        .into_iter()
        .map(|input| {
            let toml = input.with_extension("toml");
            let policy = toml.exists().then_some(toml);
            (input, policy)
        })
        .collect()
}
