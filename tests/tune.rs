//! `spindown tune`, through the real binary: the three tune fixtures
//! reproduced; every line equal to the spec's arithmetic over `whatif
//! --meetings` on generated days; each candidate ending every meeting as
//! `replay --policy` of that candidate does (fixtures, every edge case,
//! generated days); `--out` that `whatif` prices the same; the errors a user
//! meets; the page in a real headless browser.

mod common;

#[allow(dead_code)]
#[path = "../bench/src/day.rs"]
mod day;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::browser::{assert_self_contained, open_report, Browser};
use common::figures::*;
use common::web::{artifacts, on_a_terminal};
use common::*;
use serde_json::Value;
use spindown::time::Span;

fn tune_fixture(name: &str) -> PathBuf {
    fixture("tune").join(name)
}

fn tune(input: &Path, args: &[&str]) -> Vec<Value> {
    lines(&run_ok(spindown().arg("tune").arg(input).args(args).arg("--json")))
}

/// A `policy` object's value as a length (durations) or text (mode).
fn policy_value(v: &Value) -> String {
    let s = v.as_str().expect("policy values are strings");
    match Span::parse_policy(s) {
        Ok(span) => format!("{}us", span.as_micros()),
        Err(_) => s.to_string(),
    }
}

/// Compare tune lines as the fixtures' README says: durations by length,
/// instance-seconds within 0.01, everything else exactly (rounded figures
/// within their rounding).
fn assert_tune_lines(got: &[Value], want: &[Value], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {} lines, want {}", got.len(), want.len());
    let mut diffs = Vec::new();
    for (n, (g, w)) in got.iter().zip(want).enumerate() {
        let keys: BTreeSet<&String> = g.as_object().unwrap().keys().chain(w.as_object().unwrap().keys()).collect();
        for k in keys {
            let (a, b) = (&g[k.as_str()], &w[k.as_str()]);
            let same = match k.as_str() {
                "policy" => {
                    let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
                    a.len() == 7
                        && a.len() == b.len()
                        && a.iter().all(|(key, v)| b.get(key).is_some_and(|w| policy_value(v) == policy_value(w)))
                }
                "instance_seconds" | "cost_usd" => (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= 0.01 + 1e-9,
                "instance_hours" => (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= 0.0015,
                "holdout" => {
                    let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
                    a.len() == 3
                        && a.len() == b.len()
                        && (a["instance_seconds"].as_f64().unwrap() - b["instance_seconds"].as_f64().unwrap()).abs()
                            <= 0.01
                        && a["activity_after_end"] == b["activity_after_end"]
                        && a["running_at_horizon"] == b["running_at_horizon"]
                }
                _ => a == b,
            };
            if !same {
                diffs.push(format!("line {}: {k}: got {a}, want {b}", n + 1));
            }
        }
    }
    assert!(diffs.is_empty(), "{what}: {} differences:\n{}", diffs.len(), diffs.join("\n"));
}

// ------------------------------------------------------------ the fixtures

#[test]
fn the_three_tune_fixtures_are_reproduced_exactly() {
    let day = fixture("day.jsonl");
    let (space, base) = (tune_fixture("space.toml"), tune_fixture("base.toml"));
    let (space, base) = (space.to_str().unwrap(), base.to_str().unwrap());
    for (expected, args) in [
        ("day.expected.jsonl", vec![]),
        ("day-space-holdout.expected.jsonl", vec!["--space", space, "--base", base, "--holdout", "0.25"]),
        ("day-holdout-budget.expected.jsonl", vec!["--holdout", "0.3", "--max-cut-short", "20"]),
    ] {
        let want = lines(&std::fs::read_to_string(tune_fixture(expected)).unwrap());
        let got = tune(&day, &args);
        assert_tune_lines(&got, &want, expected);
        assert_eq!(got.iter().filter(|l| l["recommended"] == true).count(), 1, "{expected}: one recommendation");
    }
}

// ------------------------------------------------------------ the spec's arithmetic, from whatif

/// Each meeting's (start, id) as `whatif` reads them — the spec's start.
fn starts(input: &Path) -> BTreeMap<String, spindown::time::Timestamp> {
    let f = std::fs::File::open(input).unwrap();
    let w = spindown::whatif::run(spindown::source::feed::LineFeed::new(f, "input"), &[]).unwrap();
    w.meetings.iter().map(|m| (m.id.as_str().to_string(), m.start())).collect()
}

/// Write each line's policy as a policy file `c<N>.toml` (the base: `base.toml`).
fn policy_files(lines: &[Value], dir: &Path) -> Vec<(String, PathBuf)> {
    lines
        .iter()
        .map(|l| {
            let name = match &l["candidate"] {
                Value::Number(n) => format!("c{n}"),
                other => other.as_str().unwrap().to_string(),
            };
            let text: String = l["policy"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k} = \"{}\"\n", v.as_str().unwrap()))
                .collect();
            let path = dir.join(format!("{name}.toml"));
            std::fs::write(&path, text).unwrap();
            (name, path)
        })
        .collect()
}

/// `spec/tune.md` read directly: from `whatif --meetings` of every
/// candidate and the base, the sets, the frontier, the budget and the
/// recommendation — then compared with `tune --json`, line by line.
fn assert_tune_is_the_spec_over_whatif(input: &Path, holdout: &str, max_cut_short: Option<u64>) {
    let mut args = vec!["--holdout", holdout];
    let budget_arg = max_cut_short.map(|n| n.to_string());
    if let Some(b) = &budget_arg {
        args.extend(["--max-cut-short", b.as_str()]);
    }
    let got = tune(input, &args);
    assert_eq!(got.len(), 52, "51 candidates and the base");
    let dir = tempfile::tempdir().unwrap();
    let files = policy_files(&got, dir.path());
    let meetings_file = dir.path().join("meetings.jsonl");
    let mut cmd = spindown();
    cmd.arg("whatif").arg(input).arg("--json").arg("--meetings").arg(&meetings_file);
    for (_, p) in &files {
        cmd.arg("--policy").arg(p);
    }
    run_ok(&mut cmd);
    let per_meeting = lines(&std::fs::read_to_string(&meetings_file).unwrap());

    // Held out: the last floor(F × N) by (start, id), F exact as written.
    let starts = starts(input);
    let mut order: Vec<(&spindown::time::Timestamp, &String)> = starts.iter().map(|(id, s)| (s, id)).collect();
    order.sort();
    let (digits, scale) = {
        let frac = holdout.split_once('.').map_or("", |(_, f)| f);
        (frac.parse::<u64>().unwrap_or(0), 10u64.pow(frac.len() as u32))
    };
    let held = (digits * order.len() as u64 / scale) as usize;
    let held_out: BTreeSet<&String> = order[order.len() - held..].iter().map(|(_, id)| *id).collect();

    // Per model and set: (instance-µs rounded to ms, cut short, running).
    let horizon = spindown::time::Timestamp::parse_iso(
        lines(&run_ok(spindown().arg("whatif").arg(input).arg("--json")))[0]["horizon"].as_str().unwrap(),
    )
    .unwrap();
    let mut sets: BTreeMap<(String, bool), (f64, u64, u64)> = BTreeMap::new();
    for m in &per_meeting {
        let id = m["id"].as_str().unwrap().to_string();
        let s = sets.entry((m["model"].as_str().unwrap().to_string(), held_out.contains(&id))).or_default();
        s.0 += m["instance_seconds"].as_f64().unwrap();
        s.1 += u64::from(m["activity_after_end"] == true);
        let running = match m["terminated_at"].as_str() {
            None => true,
            Some(t) => spindown::time::Timestamp::parse_iso(t).unwrap() > horizon,
        };
        s.2 += u64::from(running);
    }
    let set = |name: &str, held: bool| sets.get(&(name.to_string(), held)).copied().unwrap_or_default();
    let ms = |x: f64| (x * 1000.0).round() as i64;
    let names: Vec<&String> = files.iter().map(|(n, _)| n).collect();
    let base = set("base", false);
    let budget = max_cut_short.unwrap_or(base.1);
    let recommended = names[..names.len() - 1]
        .iter()
        .enumerate()
        .filter(|(_, n)| set(n, false).1 <= budget)
        .min_by_key(|(i, n)| (ms(set(n, false).0), set(n, false).1, *i))
        .map(|(i, _)| i);
    for (i, (line, name)) in got.iter().zip(&names).enumerate() {
        let (secs, cut, running) = set(name, false);
        let dominated = names.iter().any(|o| {
            let (s2, c2, _) = set(o, false);
            ms(s2) <= ms(secs) && c2 <= cut && (ms(s2) < ms(secs) || c2 < cut)
        });
        let (h_secs, h_cut, h_running) = set(name, true);
        let price = 0.0416;
        let want = serde_json::json!({
            "candidate": line["candidate"],
            "policy": line["policy"],
            "instance_seconds": secs,
            "instance_hours": secs / 3600.0,
            "cost_usd": ((secs / 3600.0 * price) * 100.0).round() / 100.0,
            "activity_after_end": cut,
            "running_at_horizon": running,
            "frontier": !dominated,
            "recommended": Some(i) == recommended,
            "holdout": {"instance_seconds": h_secs, "activity_after_end": h_cut, "running_at_horizon": h_running},
        });
        assert_tune_lines(
            std::slice::from_ref(line),
            std::slice::from_ref(&want),
            &format!("{} {name}", input.display()),
        );
    }
    assert!(held == 0 || held_out.len() == held);
}

#[test]
fn every_line_is_the_spec_read_from_whatif_meetings_on_generated_days() {
    let dir = tempfile::tempdir().unwrap();
    for (seed, holdout, budget) in [(5u64, "0.3", None), (99, "0.25", Some(40)), (2026, "0", None)] {
        let input = dir.path().join(format!("day-{seed}.jsonl"));
        let stats = day::write_day(&mut std::fs::File::create(&input).unwrap(), 12_000, 1, seed).unwrap();
        assert!(stats.meetings > 3_000, "a day of meetings");
        assert_tune_is_the_spec_over_whatif(&input, holdout, budget);
    }
    assert_tune_is_the_spec_over_whatif(&fixture("day.jsonl"), "0.3", Some(20));
}

// ------------------------------------------------------------ one set of rules

/// Each candidate of a small space ends every meeting as `replay --policy`
/// of that candidate does.
fn assert_candidates_agree_with_replay(input: &Path, base: Option<&Path>) {
    let dir = tempfile::tempdir().unwrap();
    let space = dir.path().join("space.toml");
    std::fs::write(
        &space,
        "[[space]]\nmax_lifetime = [\"90m\"]\nkeepalive_recheck = [\"7m\"]\nsafety_net_delay = [\"10m\"]\n\n[[space]]\nmode = [\"fixed\"]\nfixed_duration = [\"45m\"]\n\n[[space]]\nmin_success_duration = [\"5m\"]\noverrun_grace = [\"2m\"]\n",
    )
    .unwrap();
    let meetings = dir.path().join("meetings.jsonl");
    let mut cmd = spindown();
    cmd.arg("tune").arg(input).arg("--json").arg("--space").arg(&space).arg("--meetings").arg(&meetings);
    if let Some(b) = base {
        cmd.arg("--base").arg(b);
    }
    let got = lines(&run_ok(&mut cmd));
    let per_meeting = lines(&std::fs::read_to_string(&meetings).unwrap());
    for (name, policy) in policy_files(&got, dir.path()) {
        let model = name.trim_start_matches('c');
        let ends = model_ends(&per_meeting, model);
        let want = replay_ends(input, Some(policy.to_str().unwrap()));
        assert!(!want.is_empty(), "{}: replay ended no meeting", input.display());
        assert_eq!(ends.len(), want.len(), "{} ({name}): the same meetings", input.display());
        let diffs: Vec<String> = want
            .iter()
            .filter(|(id, w)| ends.get(*id) != Some(w))
            .map(|(id, w)| format!("{id}: tune {:?}, replay {w:?}", ends.get(id)))
            .collect();
        assert!(
            diffs.is_empty(),
            "{} ({name}): {} meetings differ:\n{}",
            input.display(),
            diffs.len(),
            diffs.join("\n")
        );
    }
}

#[test]
fn each_candidate_ends_every_meeting_as_replay_of_it_on_the_fixtures_and_every_edge_case() {
    assert_candidates_agree_with_replay(&fixture("day.jsonl"), None);
    assert_candidates_agree_with_replay(&fixture("whatif/legacy-edge.jsonl"), None);
    for (input, policy) in edge_cases() {
        assert_candidates_agree_with_replay(&input, policy.as_deref());
    }
}

#[test]
fn each_candidate_ends_every_meeting_as_replay_of_it_on_generated_days() {
    let dir = tempfile::tempdir().unwrap();
    for seed in [8u64, 31337] {
        let input = dir.path().join(format!("day-{seed}.jsonl"));
        day::write_day(&mut std::fs::File::create(&input).unwrap(), 12_000, 1, seed).unwrap();
        assert_candidates_agree_with_replay(&input, None);
    }
}

// ------------------------------------------------------------ --out, the table, no recommendation

#[test]
fn the_recommended_policy_written_with_out_is_priced_the_same_by_whatif() {
    let dir = tempfile::tempdir().unwrap();
    let best = dir.path().join("best.toml");
    let got = lines(&run_ok(spindown().arg("tune").arg(fixture("day.jsonl")).arg("--json").arg("--out").arg(&best)));
    let rec = got.iter().find(|l| l["recommended"] == true).expect("a recommendation");
    let text = std::fs::read_to_string(&best).unwrap();
    for key in spindown::meeting::POLICY_KEYS {
        assert!(text.contains(&format!("\n{key} = ")), "{key} is written: {text}");
    }
    let priced =
        lines(&run_ok(spindown().arg("whatif").arg(fixture("day.jsonl")).arg("--json").arg("--policy").arg(&best)));
    let p = &priced[0];
    assert_eq!(p["model"], "best");
    for k in ["instance_seconds", "cost_usd", "instance_hours"] {
        assert!(
            (p[k].as_f64().unwrap() - rec[k].as_f64().unwrap()).abs() <= 0.0015,
            "{k}: whatif {}, tune {}",
            p[k],
            rec[k]
        );
    }
    assert_eq!(p["activity_after_end"], rec["activity_after_end"]);
    assert_eq!(p["running_at_horizon"], rec["running_at_horizon"]);
    // It is the spec's example: the default with max_lifetime = 2h, 23 cut short, like the default.
    assert_eq!(policy_value(&rec["policy"]["max_lifetime"]), policy_value(&Value::from("2h")));
}

#[test]
fn the_table_shows_the_frontier_and_says_what_the_recommendation_saves() {
    let out = run_ok(spindown().arg("tune").arg(fixture("day.jsonl")).args(["--holdout", "0.3"]));
    let json = tune(&fixture("day.jsonl"), &["--holdout", "0.3"]);
    let rows: Vec<&str> = out.lines().skip(1).take_while(|l| !l.starts_with("the frontier of")).collect();
    let frontier: Vec<&Value> = json.iter().filter(|l| l["frontier"] == true).collect();
    let extra = json
        .iter()
        .filter(|l| l["frontier"] == false && (l["recommended"] == true || l["candidate"] == "base"))
        .count();
    assert_eq!(rows.len(), frontier.len() + extra, "the frontier plus the base and the recommendation:\n{out}");
    assert!(out.starts_with("CANDIDATE"), "{out}");
    assert!(out.contains("base") && out.contains(" *"), "the base and the recommendation are marked:\n{out}");
    let hours: Vec<f64> = rows
        .iter()
        .map(|r| r.split_whitespace().find_map(|w| w.parse::<f64>().ok().filter(|_| w.contains('.'))).unwrap())
        .collect();
    assert!(hours.windows(2).all(|w| w[0] <= w[1]), "ordered by instance-hours: {hours:?}\n{out}");
    assert!(out.contains("Recommended: candidate ") && out.contains("saves "), "{out}");
    assert!(out.contains("held-out meetings"), "the held-out comparison: {out}");
}

#[test]
fn no_candidate_within_the_budget_is_said_in_one_line_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let best = dir.path().join("best.toml");
    let out = run(spindown()
        .arg("tune")
        .arg(fixture("day.jsonl"))
        .args(["--max-cut-short", "0", "--json", "--out"])
        .arg(&best));
    assert!(out.status.success(), "{out:?}");
    let got = lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(got.len(), 52, "every line is printed");
    assert!(got.iter().all(|l| l["recommended"] == false));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains("no recommendation")).collect();
    assert_eq!(said.len(), 1, "{stderr}");
    // It names the candidate with the fewest cut short (ties: fewer seconds, then the lower number).
    let fewest = got[..51]
        .iter()
        .min_by(|a, b| {
            let k = |l: &Value| {
                (
                    l["activity_after_end"].as_u64().unwrap(),
                    (l["instance_seconds"].as_f64().unwrap() * 1000.0).round() as i64,
                )
            };
            k(a).cmp(&k(b))
        })
        .unwrap();
    assert!(said[0].contains(&format!("candidate {} ", fewest["candidate"])), "{}", said[0]);
    assert!(!best.exists(), "nothing is written without a recommendation");
    let table = run_ok(spindown().arg("tune").arg(fixture("day.jsonl")).args(["--max-cut-short", "0"]));
    assert!(table.lines().last().unwrap().contains("no recommendation"), "{table}");
}

// ------------------------------------------------------------ errors

fn fails(args: &[&str]) -> String {
    let out = run(spindown().arg("tune").args(args));
    assert_eq!(out.status.code(), Some(2), "tune {args:?} must exit 2: {out:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout when it fails");
    let stderr = String::from_utf8(out.stderr).unwrap();
    // One line (clap adds its pointer to --help under the errors it finds itself).
    let said: Vec<&str> =
        stderr.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("For more information")).collect();
    assert_eq!(said.len(), 1, "one line: {stderr}");
    assert!(said[0].starts_with("error: "), "{stderr}");
    stderr
}

#[test]
fn clear_errors_name_what_is_wrong_and_exit_2() {
    let day = fixture("day.jsonl").display().to_string();
    let dir = tempfile::tempdir().unwrap();
    for (n, (text, wants)) in [
        ("[[space]\n", vec!["not valid TOML"]),
        ("", vec!["no [[space]] table"]),
        ("max_lifetime = [\"1h\"]\n", vec!["unknown top-level key `max_lifetime`"]),
        ("[[space]]\nmode = [\"smart\"]\n[[space]]\nmax_lifetim = [\"1h\"]\n", vec!["table 2", "max_lifetim"]),
        ("[[space]]\nmax_lifetime = []\n", vec!["table 1", "max_lifetime", "empty"]),
        ("[[space]]\nmax_lifetime = [\"1h\", \"forever\"]\n", vec!["table 1", "max_lifetime", "forever"]),
        ("[[space]]\nmode = [\"clever\"]\n", vec!["table 1", "mode", "clever"]),
        ("[[space]]\nkeepalive_recheck = \"5m\"\n", vec!["table 1", "keepalive_recheck", "array"]),
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("space-{n}.toml"));
        std::fs::write(&path, text).unwrap();
        let err = fails(&[&day, "--space", path.to_str().unwrap()]);
        assert!(err.contains(&format!("space-{n}.toml")), "names the file: {err}");
        for w in wants {
            assert!(err.contains(w), "{text:?}: {w:?} in {err}");
        }
    }
    let bad_base = fixture("edge").join("bad-policy-0.toml");
    let err = fails(&[&day, "--base", bad_base.to_str().unwrap()]);
    assert!(err.contains("--base") && err.contains("bogus_key"), "{err}");
    for bad in ["1", "1.5", "-0.1", "half", "0.3.1"] {
        let err = fails(&[&day, "--holdout", bad]);
        assert!(err.contains("--holdout") && err.contains(bad), "{bad}: {err}");
    }
    for bad in ["-1", "1.5", "many"] {
        let err = fails(&[&day, "--max-cut-short", bad]);
        assert!(err.contains("--max-cut-short") && err.contains(bad), "{bad}: {err}");
    }
    let err = fails(&["/nonexistent/day.jsonl"]);
    assert!(err.contains("cannot open /nonexistent/day.jsonl"), "{err}");
    let err = fails(&[&day, "--horizon", "tomorrow"]);
    assert!(err.contains("--horizon") && err.contains("tomorrow"), "{err}");
    let err = fails(&[&day, "--price=-1"]);
    assert!(err.contains("--price"), "{err}");
}

// ------------------------------------------------------------ the page

#[test]
fn the_html_page_shows_the_frontier_in_a_real_browser_and_requests_nothing() {
    let browser = Browser::start(1200, 2600);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("tune.html");
    let json = lines(&run_ok(
        spindown().arg("tune").arg(fixture("day.jsonl")).args(["--holdout", "0.3", "--json", "--html"]).arg(&page),
    ));
    let (_, url, dom) = open_report(&browser, &page);
    assert!(dom.contains("The cheapest policy"), "the page rendered: {}", &dom[..dom.len().min(400)]);
    assert_eq!(browser.count("#frontier svg"), 1, "the frontier chart is drawn");
    let rec = json.iter().find(|l| l["recommended"] == true).unwrap();
    let base = json.last().unwrap();
    let section = |id: &str| -> String {
        let start = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
        dom[start..].split("</section>").next().unwrap().to_string()
    };
    let svg = section("frontier");
    assert!(svg.contains(&format!("recommended #{}", rec["candidate"])), "the recommendation is labelled in the chart");
    assert!(svg.contains("base: "), "the base is labelled in the chart");
    // Every frontier point, and the base and the recommendation, is a row of the table.
    let rows = browser.count("#tune-table tbody tr");
    let shown =
        json.iter().filter(|l| l["frontier"] == true || l["recommended"] == true || l["candidate"] == "base").count();
    assert_eq!(rows, shown);
    let table = section("table");
    let grouped = spindown::whatif::table::grouped;
    assert!(
        table.contains(&grouped(rec["instance_seconds"].as_f64().unwrap() / 3600.0, 2)),
        "the recommendation's hours"
    );
    assert!(table.contains(&grouped(base["instance_seconds"].as_f64().unwrap() / 3600.0, 2)), "the base's hours");
    assert_eq!(browser.count("#holdout-table tbody tr"), 2, "the held-out comparison: the recommendation and the base");

    // On screen, and what the page itself asked for (its DevTools network events): itself only.
    assert_self_contained(&browser, &url, &artifacts().join("tune-report.png"), 30_000);
}

#[test]
fn a_progress_bar_on_a_terminal_and_nothing_otherwise() {
    let out = run(spindown().arg("tune").arg(fixture("day.jsonl")).arg("--json"));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("tune: reading"), "no progress without a terminal: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let seen = on_a_terminal(&format!("tune {}", fixture("day.jsonl").display()));
    assert!(seen.contains("tune: reading ["), "a bar over the file's bytes: {seen}");
    assert!(seen.contains("CANDIDATE") && seen.contains("Recommended"), "then the table: {seen}");
}
