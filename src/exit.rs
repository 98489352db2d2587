//! The exit codes of SPEC §1, shared by every command.

/// PROVEN / verified / ok.
pub const OK: i32 = 0;
/// Something was checked and falls short.
pub const PARTIAL: i32 = 2;
/// Declared, but no evidence of execution yet (DoD semantics).
pub const DESIGNED: i32 = 3;
/// A file lith must parse is unreadable or corrupt, an output can't be written, or an
/// internal error.
pub const RUNTIME_ERROR: i32 = 4;
/// Bad flags.
pub const USAGE: i32 = 64;
/// A lock is held by someone else.
pub const LOCKED: i32 = 75;

/// A mistake in how lith was called (a flag, an argument, a file given that is not
/// what the command reads): exit 64. The message says what to do instead.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The one place that maps an error to an exit code: a usage mistake is 64 (a
/// [`Usage`], or partial reports that cannot make one build), a lock held by someone
/// else 75, anything else (an input lith must read is unreadable, an output cannot
/// be written) 4.
pub fn of_error(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if cause.is::<Usage>() {
            return USAGE;
        }
        if let Some(e) = cause.downcast_ref::<crate::pipeline::Error>()
            && e.is_usage()
        {
            return USAGE;
        }
        if let Some(crate::bundle::lock::LockError::Held { .. }) = cause.downcast_ref() {
            return LOCKED;
        }
    }
    RUNTIME_ERROR
}

/// Diagnostics for tests and benchmarks: with `LITH_PEAK_RSS_FILE` set, lith writes
/// its peak resident memory in KiB (`VmHWM` of its own address space) there as it
/// exits. The parent's `ru_maxrss` cannot tell this: Linux folds the spawning
/// process's high-water mark into the child's at exec.
pub fn record_peak_rss() {
    let Some(path) = std::env::var_os("LITH_PEAK_RSS_FILE") else {
        return;
    };
    let kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    if let Some(kib) = kib {
        let _ = std::fs::write(path, format!("{kib}\n"));
    }
}

/// Combines two exit codes by priority: 4 > 3 > 2 > 0.
pub fn combine(a: i32, b: i32) -> i32 {
    fn rank(c: i32) -> i32 {
        match c {
            RUNTIME_ERROR => 4,
            DESIGNED => 3,
            PARTIAL => 2,
            OK => 0,
            _ => 5,
        }
    }
    if rank(a) >= rank(b) { a } else { b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_module_error_maps_to_its_exit_code_through_any_context() {
        use crate::bundle::lock::LockError;
        let held = || LockError::Held {
            path: "site.lith-lock".into(),
            holder: "pid 1".into(),
        };
        let wrapped = |e: anyhow::Error| e.context("cannot write the site to pub");
        let cases: Vec<(anyhow::Error, i32)> = vec![
            (wrapped(crate::site::Error::Lock(held()).into()), LOCKED),
            (held().into(), LOCKED),
            (
                wrapped(Usage("verify takes a run folder".into()).into()),
                USAGE,
            ),
            (
                crate::pipeline::Error::Missing {
                    missing: "2".into(),
                    count: 3,
                }
                .into(),
                USAGE,
            ),
            (crate::pipeline::Error::Empty.into(), USAGE),
            (
                crate::pipeline::Error::Unusable {
                    file: "p1.json".into(),
                    reason: "not JSON".into(),
                }
                .into(),
                RUNTIME_ERROR,
            ),
            (
                wrapped(
                    crate::site::Error::Write {
                        rel: "index.html".into(),
                        source: std::io::Error::other("disk full"),
                    }
                    .into(),
                ),
                RUNTIME_ERROR,
            ),
            (
                crate::dod::Error::Registry {
                    path: "reports/phase_status.yaml".into(),
                    error: crate::dod::registry::ReadError {
                        reason: "not YAML".into(),
                        position: None,
                    },
                }
                .into(),
                RUNTIME_ERROR,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(of_error(&e), want, "{e:#}");
        }
    }

    #[test]
    fn a_site_error_keeps_its_cause() {
        let e = anyhow::Error::new(crate::site::Error::Write {
            rel: "runs/r1/index.html".into(),
            source: std::io::Error::other("disk full"),
        });
        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        assert_eq!(
            chain,
            ["cannot write runs/r1/index.html in the site", "disk full"]
        );
    }

    #[test]
    fn priority_is_4_then_3_then_2_then_0() {
        for (a, b, want) in [
            (OK, PARTIAL, PARTIAL),
            (PARTIAL, DESIGNED, DESIGNED),
            (DESIGNED, RUNTIME_ERROR, RUNTIME_ERROR),
            (RUNTIME_ERROR, OK, RUNTIME_ERROR),
            (OK, OK, OK),
        ] {
            assert_eq!(combine(a, b), want, "combine({a}, {b})");
            assert_eq!(combine(b, a), want, "combine({b}, {a})");
        }
    }
}
