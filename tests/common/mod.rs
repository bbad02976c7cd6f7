//! Helpers shared by the integration tests, each written once.
#![allow(dead_code)]

pub mod aws;
pub mod browser;
pub mod conformance;
pub mod fake_stream;
pub mod figures;
pub mod moto;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod records;
pub mod scenario;
pub mod shards;
pub mod tcp;
pub mod web;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixtures directory (a copy of `../shared/fixtures`, kept in the repo).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// The `spindown` binary built for these tests.
pub fn spindown() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spindown"));
    c.env_remove("SPINDOWN_DB").env_remove("RUST_LOG");
    c
}

/// Run and require success, returning stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn spindown");
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn spindown")
}

/// Parse `--json` replay output (or an expected file) into id → line.
pub fn outcomes(text: &str) -> BTreeMap<String, serde_json::Value> {
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}"));
            (v["id"].as_str().expect("id").to_string(), v)
        })
        .collect()
}

/// Compare outcomes meeting by meeting, reporting every difference.
pub fn assert_same_outcomes(got: &BTreeMap<String, serde_json::Value>, want: &BTreeMap<String, serde_json::Value>) {
    let mut diffs = Vec::new();
    for (id, w) in want {
        match got.get(id) {
            None => diffs.push(format!("{id}: missing, want {w}")),
            Some(g) if g != w => diffs.push(format!("{id}:\n   got  {g}\n   want {w}")),
            _ => {}
        }
    }
    for id in got.keys().filter(|id| !want.contains_key(*id)) {
        diffs.push(format!("{id}: unexpected {}", got[id]));
    }
    assert!(diffs.is_empty(), "{} of {} meetings differ:\n{}", diffs.len(), want.len(), diffs.join("\n"));
}
