//! One file per command.

pub mod console;
pub mod dead_letters;
pub mod ingest;
pub mod keep;
pub mod list;
pub mod migrate;
pub mod prune;
pub mod replay;
pub mod retry;
pub mod run;
pub mod schedule;
pub mod show;
pub mod status;
pub mod sweep;
pub mod terminate;
pub mod timers;
pub mod tune;
pub mod whatif;

/// Peak resident set size of this process, MiB (Linux).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim();
    Some(kb.parse::<f64>().ok()? / 1024.0)
}
