//! `spindown replay` against the contract's fixtures, through the real binary.

mod common;

use common::*;

fn replay(file: &str, policy: Option<&str>) -> String {
    let mut cmd = spindown();
    cmd.arg("replay").arg(fixture(file)).arg("--json");
    if let Some(p) = policy {
        cmd.arg("--policy").arg(p);
    }
    run_ok(&mut cmd)
}

#[test]
fn the_day_under_the_default_policy() {
    let got = outcomes(&replay("day.jsonl", None));
    let want = outcomes(&std::fs::read_to_string(fixture("day.expected-smart.jsonl")).unwrap());
    assert_eq!(want.len(), 240);
    assert_same_outcomes(&got, &want);
}

#[test]
fn the_day_in_fixed_mode() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("fixed.toml");
    std::fs::write(&policy, "mode = \"fixed\"\n").unwrap();
    let got = outcomes(&replay("day.jsonl", Some(policy.to_str().unwrap())));
    let want = outcomes(&std::fs::read_to_string(fixture("day.expected-fixed.jsonl")).unwrap());
    assert_same_outcomes(&got, &want);
}

#[test]
fn the_shipped_policy_file_is_the_default() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/meeting.toml");
    let got = outcomes(&replay("day.jsonl", Some(shipped)));
    let want = outcomes(&std::fs::read_to_string(fixture("day.expected-smart.jsonl")).unwrap());
    assert_same_outcomes(&got, &want);
}

#[test]
fn every_edge_case() {
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(fixture("edge")).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.ends_with(".jsonl") || name.ends_with(".expected.jsonl") {
            continue;
        }
        let stem = name.trim_end_matches(".jsonl");
        let policy = path.with_file_name(format!("{stem}.toml"));
        let policy = policy.exists().then(|| policy.to_str().unwrap().to_string());
        let got = outcomes(&replay(&format!("edge/{name}"), policy.as_deref()));
        let want = outcomes(&std::fs::read_to_string(path.with_file_name(format!("{stem}.expected.jsonl"))).unwrap());
        assert!(!want.is_empty());
        assert_same_outcomes(&got, &want);
        checked += 1;
    }
    assert_eq!(checked, 15, "every edge fixture was replayed");
}

#[test]
fn bad_policies_are_rejected_naming_the_key() {
    let cases = [
        ("bad-policy-0.toml", "bogus_key"),
        ("bad-policy-1.toml", "safety_net_delay"),
        ("bad-policy-2.toml", "mode"),
        ("bad-policy-3.toml", "max_lifetime"),
        ("bad-policy-4.toml", "meeting"),
    ];
    for (file, key) in cases {
        let out = run(spindown()
            .arg("replay")
            .arg(fixture("edge/01_no_show.jsonl"))
            .arg("--policy")
            .arg(fixture(&format!("edge/{file}"))));
        assert!(!out.status.success(), "{file} must be rejected");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("`{key}`")), "{file}: error should name `{key}`: {err}");
        assert!(out.stdout.is_empty(), "{file}: no output on a bad policy");
    }
}

#[test]
fn summary_goes_to_stderr_and_dead_letters_do_not_fail_the_run() {
    let out = run(spindown().arg("replay").arg(fixture("edge/10_malformed.jsonl")).arg("--json"));
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dead letters"), "{err}");
    // 21 malformed records in that file (the envelope line holds two of them; attributes the engine does not read are not inspected).
    assert!(err.contains("21 dead letters"), "{err}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.lines().all(|l| l.starts_with('{')), "stdout is only JSON lines");
}

#[test]
fn until_stops_the_clock() {
    // m-1 is a no-show at 10:15; stopping at 10:10 leaves it Scheduled.
    let out = run_ok(spindown().arg("replay").arg(fixture("edge/01_no_show.jsonl")).args([
        "--json",
        "--until",
        "2026-11-26T10:10:00Z",
    ]));
    let got = outcomes(&out);
    assert_eq!(got["m-1"]["state"], "Scheduled");
    assert_eq!(got["m-1"]["reason"], serde_json::Value::Null);
    assert_eq!(got["m-1"]["terminated_at"], serde_json::Value::Null);
    assert_eq!(got["m-1"]["terminated_instances"], serde_json::json!([]));
    // Records after --until are not applied.
    let out = run_ok(spindown().arg("replay").arg(fixture("edge/02_timer_before_record.jsonl")).args([
        "--json",
        "--until",
        "2026-11-26T10:14:59Z",
    ]));
    let got = outcomes(&out);
    assert_eq!(got["m-2"]["state"], "InProgress");
}

#[test]
fn table_output_without_json() {
    let out = run_ok(spindown().arg("replay").arg(fixture("edge/11_instances_and_ends.jsonl")));
    assert!(out.starts_with("ID"), "{out}");
    assert!(out.contains("EXTERNAL") && out.contains("i-bbbbbbbb,i-fedcba9876543210f"), "{out}");
}
