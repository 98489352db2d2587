//! Findings and severities: the common currency of every check.
//!
//! A check never aborts the pipeline; it records a [`Finding`]. The worst severity of
//! all findings decides the exit code (SPEC §1): `error` → 4, `partial` → 2.
//! `info` and `warning` are shown but never change the exit code.

use serde::Serialize;

/// How bad a finding is. Ordered from harmless to fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Information only (for example unindexed files).
    Info,
    /// Worth a look, never changes the exit code.
    Warning,
    /// A check that fell short: exit 2.
    Partial,
    /// Declared, but no evidence of execution yet (DoD semantics): exit 3.
    Designed,
    /// A file lith must parse is unreadable or corrupt: exit 4.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Partial => "partial",
            Severity::Designed => "designed",
            Severity::Error => "error",
        }
    }

    pub fn exit_code(self) -> i32 {
        match self {
            Severity::Info | Severity::Warning => crate::exit::OK,
            Severity::Partial => crate::exit::PARTIAL,
            Severity::Designed => crate::exit::DESIGNED,
            Severity::Error => crate::exit::RUNTIME_ERROR,
        }
    }
}

/// One problem (or remark) found while checking an input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// A stable machine name such as `latest_invalid` or `index_corrupt`.
    pub code: String,
    pub severity: Severity,
    /// A sentence for people: what is wrong and what to do.
    pub message: String,
    /// The workspace- or bundle-relative file the finding is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Finding {
    pub fn new(code: &str, severity: Severity, message: impl Into<String>) -> Finding {
        Finding {
            code: code.to_string(),
            severity,
            message: message.into(),
            path: None,
        }
    }

    pub fn at(mut self, path: impl Into<String>) -> Finding {
        self.path = Some(path.into());
        self
    }
}

/// The exit code that a set of findings deserves.
pub fn worst_exit<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> i32 {
    findings
        .into_iter()
        .map(|f| f.severity)
        .max()
        .map_or(crate::exit::OK, Severity::exit_code)
}
