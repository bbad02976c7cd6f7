//! The settings file: defaults, every section, errors that name the key.

use super::*;

#[test]
fn empty_is_default() {
    let c = WorkerConfig::from_toml_str("").unwrap();
    assert_eq!(c, WorkerConfig::default());
    assert_eq!(c.reader().unwrap().idle_delay, Duration::from_millis(250));
    assert_eq!(c.retry().unwrap().max_attempts, 10);
}

#[test]
fn reads_every_section() {
    let c = WorkerConfig::from_toml_str(
        "[guard]\nrequire_tag = \"meeting_id\"\n[effects]\nmax_attempts = 3\nbase_delay = \"100ms\"\n[stream]\nstart = \"latest\"\nidle_poll = \"1s\"\n[housekeeping]\nseen_retention = \"72h\"\n",
    )
    .unwrap();
    assert_eq!(c.guard.require_tag.as_deref(), Some("meeting_id"));
    assert_eq!(c.retry().unwrap().base_delay, Duration::from_millis(100));
    assert_eq!(c.reader().unwrap().start, Start::Latest);
    assert_eq!(c.seen_retention().unwrap(), Duration::from_secs(72 * 3600));
}

#[test]
fn the_shipped_settings_file_is_the_defaults_with_the_guard_on() {
    let shipped = WorkerConfig::from_toml_str(include_str!("../../deploy/spindown.toml")).unwrap();
    let mut want = WorkerConfig::default();
    want.guard.require_tag = Some("meeting_id".into());
    assert_eq!(shipped, want, "deploy/spindown.toml documents the defaults");
    assert_eq!(shipped.retention().unwrap(), crate::retention::Retention::default());
    assert_eq!(shipped.pg_options("x").unwrap().lock_timeout, Duration::from_secs(10));
    assert_eq!(shipped.shutdown_timeout().unwrap(), Duration::from_secs(30));
}

#[test]
fn retention_takes_days_and_off() {
    let c = WorkerConfig::from_toml_str("[retention]\nmeetings = \"7d\"\nsweep_log = \"off\"").unwrap();
    let r = c.retention().unwrap();
    assert_eq!(r.meetings, Some(Span::from_hours(7 * 24)));
    assert_eq!(r.sweep_log, None);
    let e = WorkerConfig::from_toml_str("[retention]\nmeetings = \"10s\"").unwrap_err().to_string();
    assert!(e.contains("retention.meetings"), "{e}");
    let e = WorkerConfig::from_toml_str("[database]\nlock_timeout = \"soon\"").unwrap_err().to_string();
    assert!(e.contains("database.lock_timeout"), "{e}");
}

#[test]
fn errors_name_the_key() {
    let e = WorkerConfig::from_toml_str("[guard]\nrequire_tags = \"x\"").unwrap_err().to_string();
    assert!(e.contains("require_tags"), "{e}");
    let e = WorkerConfig::from_toml_str("[stream]\nstart = \"now\"").unwrap_err().to_string();
    assert!(e.contains("stream.start"), "{e}");
    let e = WorkerConfig::from_toml_str("[effects]\nbase_delay = \"soon\"").unwrap_err().to_string();
    assert!(e.contains("effects.base_delay"), "{e}");
    let e = WorkerConfig::from_toml_str("[effects]\nmax_attempts = 0").unwrap_err().to_string();
    assert!(e.contains("max_attempts"), "{e}");
    let e = WorkerConfig::from_toml_str("[nope]").unwrap_err().to_string();
    assert!(e.contains("nope"), "{e}");
}
