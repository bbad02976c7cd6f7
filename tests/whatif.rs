//! `spindown whatif`, through the real binary: every what-if fixture
//! reproduced, policy models that agree with `spindown replay` on every
//! meeting (fixtures, edge cases, generated days), the errors a user meets,
//! and the HTML report in a real headless browser.

mod common;

#[allow(dead_code)]
#[path = "../bench/src/day.rs"]
mod day;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::browser::{assert_self_contained, open_report, Browser};
use common::figures::*;
use common::web::{artifacts, on_a_terminal};
use common::*;
use serde_json::Value;

fn whatif_dir() -> PathBuf {
    fixture("whatif")
}

/// Run `whatif` with `args`, also writing `--meetings`; (summary lines, meeting lines).
fn whatif(input: &Path, args: &[&str]) -> (Vec<Value>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let meetings = dir.path().join("meetings.jsonl");
    let out = run_ok(spindown().arg("whatif").arg(input).args(args).arg("--json").arg("--meetings").arg(&meetings));
    (lines(&out), lines(&std::fs::read_to_string(&meetings).unwrap()))
}

fn policy(name: &str) -> String {
    whatif_dir().join(name).display().to_string()
}

#[test]
fn the_fixture_day_under_legacy_smart_and_fixed() {
    let (smart, fixed) = (policy("smart.toml"), policy("fixed.toml"));
    let (summary, meetings) = whatif(&fixture("day.jsonl"), &["--legacy", "--policy", &smart, "--policy", &fixed]);
    let want = |f: &str| lines(&std::fs::read_to_string(whatif_dir().join(f)).unwrap());
    assert_close(&summary, &want("day.expected.jsonl"), 0.01, "day --json");
    assert_close(&meetings, &want("day.meetings.expected.jsonl"), 0.01, "day --meetings");
}

#[test]
fn the_fixture_day_at_a_given_horizon_and_price() {
    let smart = policy("smart.toml");
    let args = ["--legacy", "--policy", &smart, "--horizon", "2026-11-27T00:00:00Z", "--price", "0.0832"];
    let (summary, meetings) = whatif(&fixture("day.jsonl"), &args);
    let want = |f: &str| lines(&std::fs::read_to_string(whatif_dir().join(f)).unwrap());
    assert_close(&summary, &want("day-horizon.expected.jsonl"), 0.01, "day-horizon --json");
    assert_close(&meetings, &want("day-horizon.meetings.expected.jsonl"), 0.01, "day-horizon --meetings");
}

#[test]
fn the_lambdas_edge_cases() {
    let (smart, fixed) = (policy("smart.toml"), policy("fixed.toml"));
    let (summary, meetings) =
        whatif(&whatif_dir().join("legacy-edge.jsonl"), &["--legacy", "--policy", &smart, "--policy", &fixed]);
    let want = |f: &str| lines(&std::fs::read_to_string(whatif_dir().join(f)).unwrap());
    assert_close(&summary, &want("legacy-edge.expected.jsonl"), 0.01, "legacy-edge --json");
    assert_close(&meetings, &want("legacy-edge.meetings.expected.jsonl"), 0.01, "legacy-edge --meetings");
    // What the README says the leak looks like: the deleted row and the
    // IN_PROGRESS meeting without data keep their instances to the horizon.
    let legacy: BTreeMap<&str, &Value> =
        meetings.iter().filter(|m| m["model"] == "legacy").map(|m| (m["id"].as_str().unwrap(), m)).collect();
    for id in ["a-in-progress-no-data", "b-removed"] {
        assert_eq!(legacy[id]["reason"], Value::Null, "{id} is never ended by the Lambdas");
    }
}

fn assert_agree(input: &Path, policy_file: Option<&Path>, model: &str) {
    let mut args = Vec::new();
    let p = policy_file.map(|p| p.display().to_string());
    if let Some(p) = &p {
        args.extend(["--policy", p.as_str()]);
    }
    let (_, meetings) = whatif(input, &args);
    let got = model_ends(&meetings, model);
    let want = replay_ends(input, p.as_deref());
    assert!(!want.is_empty(), "{}: replay ended no meeting", input.display());
    let diffs: Vec<String> = want
        .iter()
        .filter(|(id, w)| got.get(*id) != Some(w))
        .map(|(id, w)| format!("{id}: whatif {:?}, replay {w:?}", got.get(id)))
        .collect();
    assert_eq!(got.len(), want.len(), "{}: the same meetings", input.display());
    assert!(diffs.is_empty(), "{} ({model}): {} meetings differ:\n{}", input.display(), diffs.len(), diffs.join("\n"));
}

#[test]
fn policy_models_agree_with_replay_on_the_fixtures_and_every_edge_case() {
    assert_agree(&fixture("day.jsonl"), None, "default");
    assert_agree(&fixture("day.jsonl"), Some(&whatif_dir().join("fixed.toml")), "fixed");
    assert_agree(&whatif_dir().join("legacy-edge.jsonl"), Some(&whatif_dir().join("smart.toml")), "smart");
    for (input, policy) in edge_cases() {
        if let Some(toml) = policy {
            let stem = toml.file_stem().unwrap().to_string_lossy().into_owned();
            assert_agree(&input, Some(&toml), &stem);
        } else {
            assert_agree(&input, None, "default");
        }
    }
}

#[test]
fn policy_models_agree_with_replay_on_generated_days() {
    let dir = tempfile::tempdir().unwrap();
    let custom = dir.path().join("custom.toml");
    std::fs::write(&custom, "safety_net_delay = \"10m\"\nkeepalive_recheck = \"7m\"\nmax_lifetime = \"2h\"\n").unwrap();
    for seed in [3u64, 17, 4242] {
        let input = dir.path().join(format!("day-{seed}.jsonl"));
        let mut f = std::fs::File::create(&input).unwrap();
        let stats = day::write_day(&mut f, 12_000, 1, seed).unwrap();
        assert!(stats.meetings > 3_000, "a day of meetings");
        assert_agree(&input, None, "default");
        assert_agree(&input, Some(&whatif_dir().join("fixed.toml")), "fixed");
        assert_agree(&input, Some(&custom), "custom");
        assert_same_fires(&input, &custom, "custom");
    }
}

/// A policy model runs on the engine's core, as replay runs the engine: the
/// same timers fire (a timer moved or cancelled before its instant does not).
fn assert_same_fires(input: &Path, policy_file: &Path, model: &str) {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.json");
    run_ok(spindown().arg("whatif").arg(input).arg("--policy").arg(policy_file).arg("--profile").arg(&profile));
    let profile: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    let whatif_fires = profile["models"][model][1].as_u64().expect("the model's timers fired");
    let out = run(spindown().arg("replay").arg(input).arg("--policy").arg(policy_file));
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let replay_fires: u64 = stderr
        .lines()
        .find_map(|l| l.split_once(" timers fired").and_then(|(n, _)| n.trim().parse().ok()))
        .unwrap_or_else(|| panic!("replay names the timers it fired: {stderr}"));
    assert!(replay_fires > 1_000, "a day fires timers");
    assert_eq!(whatif_fires, replay_fires, "{} ({model}): timers fired, whatif vs replay", input.display());
}

#[test]
fn the_table_names_every_model_with_its_differences_and_the_horizon() {
    let (smart, fixed) = (policy("smart.toml"), policy("fixed.toml"));
    let out = run_ok(
        spindown().arg("whatif").arg(fixture("day.jsonl")).args(["--legacy", "--policy", &smart, "--policy", &fixed]),
    );
    let rows: Vec<&str> = out.lines().collect();
    assert!(
        rows[0].starts_with("MODEL") && rows[0].contains("INSTANCE_HOURS") && rows[0].contains("COST_USD"),
        "{out}"
    );
    assert!(rows[1].starts_with("legacy") && rows[1].contains("6,022.241") && rows[1].contains("250.53"), "{out}");
    assert!(rows[2].starts_with("smart") && rows[2].contains("468.896 (-5,553.345)"), "{out}");
    assert!(rows[3].starts_with("fixed") && rows[3].contains("15.84 (-234.69)"), "{out}");
    assert!(out.contains("horizon 2026-11-28T06:22:21Z; price 0.0416"), "{out}");
}

#[test]
fn without_a_policy_the_model_is_default_and_dead_letters_are_counted_not_fatal() {
    let out = run(spindown().arg("whatif").arg(fixture("day.jsonl")).arg("--json"));
    assert!(out.status.success());
    let summary = lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["model"], "default");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("4 dead letters"), "{stderr}");
    // The default policy is the smart one.
    let smart = lines(&std::fs::read_to_string(whatif_dir().join("day.expected.jsonl")).unwrap())
        .into_iter()
        .find(|s| s["model"] == "smart")
        .unwrap();
    assert_eq!(summary[0]["instance_seconds"], smart["instance_seconds"]);
}

fn fails(args: &[&str]) -> String {
    let out = run(spindown().arg("whatif").args(args));
    assert!(!out.status.success(), "whatif {args:?} must fail");
    assert!(out.stdout.is_empty(), "nothing on stdout when it fails");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn clear_errors_for_bad_arguments() {
    let day = fixture("day.jsonl").display().to_string();
    for (file, key) in [
        ("bad-policy-0.toml", "bogus_key"),
        ("bad-policy-1.toml", "safety_net_delay"),
        ("bad-policy-2.toml", "mode"),
        ("bad-policy-3.toml", "max_lifetime"),
        ("bad-policy-4.toml", "meeting"),
    ] {
        let p = fixture("edge").join(file).display().to_string();
        let err = fails(&[&day, "--policy", &p]);
        assert!(err.contains(key) && err.contains(file), "{file}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("other")).unwrap();
    let twin = dir.path().join("other/smart.toml");
    std::fs::write(&twin, "mode = \"fixed\"\n").unwrap();
    let err = fails(&[&day, "--policy", &policy("smart.toml"), "--policy", &twin.display().to_string()]);
    assert!(err.contains("two policies are named `smart`"), "{err}");
    let err = fails(&["/nonexistent/day.jsonl"]);
    assert!(err.contains("cannot open /nonexistent/day.jsonl"), "{err}");
    let err = fails(&[&day, "--horizon", "tomorrow"]);
    assert!(err.contains("--horizon") && err.contains("\"tomorrow\" is not an RFC 3339 instant"), "{err}");
    for bad in ["-1", "cheap", "NaN", "inf"] {
        let err = fails(&[&day, &format!("--price={bad}")]);
        assert!(err.contains("--price") && err.contains(bad), "{bad}: {err}");
    }
}

// ------------------------------------------------------------ the HTML report

#[test]
fn the_html_report_renders_in_a_real_browser_and_requests_nothing() {
    let browser = Browser::start(1200, 4200);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let (smart, fixed) = (policy("smart.toml"), policy("fixed.toml"));
    let json = run_ok(
        spindown()
            .arg("whatif")
            .arg(fixture("day.jsonl"))
            .args(["--legacy", "--policy", &smart, "--policy", &fixed, "--json", "--html"])
            .arg(&page),
    );
    let (html, url, dom) = open_report(&browser, &page);
    assert!(dom.contains("What would it cost?"), "the page rendered: {}", &dom[..dom.len().min(400)]);
    // Every model's figures are on the page, as the table prints them.
    let row = |figure: &str| -> String {
        let start = dom.find(&format!("<th scope=\"row\">{figure}</th>")).unwrap_or_else(|| panic!("no {figure} row"));
        dom[start..].split("</tr>").next().unwrap().to_string()
    };
    for s in lines(&json) {
        let model = s["model"].as_str().unwrap();
        let grouped = spindown::whatif::table::grouped;
        for (figure, value) in [
            ("instance-hours", grouped(s["instance_hours"].as_f64().unwrap(), 3)),
            ("cost (USD)", grouped(s["cost_usd"].as_f64().unwrap(), 2)),
            ("running at horizon", s["running_at_horizon"].to_string()),
            ("activity after end", s["activity_after_end"].to_string()),
            ("meetings", s["meetings"].to_string()),
        ] {
            let cell = format!("data-model=\"{model}\">{value}");
            assert!(row(figure).contains(&cell), "{model}: {figure} {value} in {}", row(figure));
        }
        for (reason, n) in s["terminated"].as_object().unwrap() {
            assert!(row(reason).contains(&format!("data-model=\"{model}\">{n}")), "{model}: {reason} {n}");
        }
    }
    // Charts: hours, cost, reasons, then a histogram and the end shifts per model after the first.
    assert_eq!(dom.matches("<svg").count(), 3 + 2 * 2, "every chart is drawn");
    for section in ["Instance-hours per model", "Meetings by reason", "smart vs legacy", "fixed vs legacy"] {
        assert!(dom.contains(section), "section {section:?}");
    }

    // On screen, and what the page itself asked for (its DevTools network events): itself only.
    assert_self_contained(&browser, &url, &artifacts().join("whatif-report.png"), 50_000);

    // The check can fail: the same page with one image from elsewhere is caught.
    let canary = dir.path().join("canary.html");
    std::fs::write(&canary, html.replace("</body>", "<img src=\"http://canary.example/pixel.png\"></body>")).unwrap();
    browser.go(&format!("file://{}", canary.display()));
    let asked = browser.page_requests();
    assert!(
        asked.iter().any(|u| u.starts_with("http://canary.example/")),
        "the canary page's request to another host is seen: {asked:?}"
    );
}

#[test]
fn a_progress_bar_on_a_terminal_and_nothing_otherwise() {
    // Not a terminal (the tests' pipes): only the summary line on stderr.
    let out = run(spindown().arg("whatif").arg(fixture("day.jsonl")).arg("--json"));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("whatif: reading"), "no progress without a terminal: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // A terminal (util-linux `script` gives the command a pseudo-terminal).
    let seen = on_a_terminal(&format!("whatif {} --legacy", fixture("day.jsonl").display()));
    assert!(seen.contains("whatif: reading [") && seen.contains("582.09 KiB"), "a bar over the file's bytes: {seen}");
    assert!(seen.contains("MODEL") && seen.contains("legacy"), "then the table: {seen}");
}
