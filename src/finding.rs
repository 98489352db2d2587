//! Findings and severities: the common currency of every check.
//!
//! A check never aborts the pipeline; it records a [`Finding`]. The worst severity of
//! all findings decides the exit code (SPEC §1): `error` → 4, `partial` → 2.
//! `info` and `warning` are shown but never change the exit code.

use serde::Serialize;

str_enum! {
    /// A finding's stable machine name (SPEC §1). The JSON spelling never changes
    /// once released; a new check gets a new code.
    pub enum Code {
        ArtifactsNotOk = "artifacts_not_ok",
        BuildNothingChecked = "build.nothing_checked",
        BundleInProgress = "bundle_in_progress",
        BundlesNoneFound = "bundles.none_found",
        BundlesRootIsRun = "bundles.root_is_run",
        CatalogPacketUnreadable = "catalog.packet_unreadable",
        CatalogRootMissing = "catalog.root_missing",
        DodFixtureNotProven = "dod.fixture_not_proven",
        DodInputMissing = "dod.input_missing",
        DodPhaseNotProven = "dod.phase_not_proven",
        DodUnreadable = "dod.unreadable",
        DriftFeedUnreadable = "drift.feed_unreadable",
        DriftHeartbeatStale = "drift.heartbeat.stale",
        DriftIdleSystemStale = "drift.idle.system.stale",
        DuplicateEntry = "duplicate_entry",
        GateGateInputUnreadable = "gate.gate-input-unreadable",
        GateMissingHostHandle = "gate.missing-host-handle",
        GateMissingIntentRef = "gate.missing-intent-ref",
        GateMissingProofHashes = "gate.missing-proof-hashes",
        GateMissingProofRefs = "gate.missing-proof-refs",
        GateOpenQuestionsUnresolved = "gate.open-questions-unresolved",
        GateReceiptsParseFailed = "gate.receipts-parse-failed",
        HistoryCut = "history.cut",
        HistoryFlaky = "history.flaky",
        IndexCorrupt = "index_corrupt",
        IndexListsMissing = "index_lists_missing",
        IndexMissing = "index_missing",
        IndexRunIdMismatch = "index_run_id_mismatch",
        IndexStatusNotOk = "index_status_not_ok",
        LatestInvalid = "latest_invalid",
        LatestUncommitted = "latest_uncommitted",
        PromotionInputCorrupt = "promotion_input_corrupt",
        QueueCorruptLine = "queue.corrupt_line",
        QueueDuplicateEnqueue = "queue.duplicate_enqueue",
        QueueInputMissing = "queue.input_missing",
        QueueLineTooLong = "queue.line_too_long",
        QueueLogUnreadable = "queue.log_unreadable",
        QueueOrphanDequeue = "queue.orphan_dequeue",
        QueueReceiptMissing = "queue.receipt_missing",
        QueueReceiptWithoutOp = "queue.receipt_without_op",
        QueueTornTail = "queue.torn_tail",
        ReceiptsBadTimestamp = "receipts.bad_timestamp",
        ReceiptsContractUnreadable = "receipts.contract_unreadable",
        ReceiptsDuplicateKey = "receipts.duplicate_key",
        ReceiptsInputMissing = "receipts.input_missing",
        ReceiptsInvalidUtf8 = "receipts.invalid_utf8",
        ReceiptsLogUnreadable = "receipts.log_unreadable",
        ReceiptsMalformedField = "receipts.malformed_field",
        ReceiptsMissingKey = "receipts.missing_key",
        ReceiptsUnknownKind = "receipts.unknown_kind",
        RootHasNoRuns = "root_has_no_runs",
        RootOutsideWorkspace = "root_outside_workspace",
        RootPatternInvalid = "root_pattern_invalid",
        RootPatternMatchedNothing = "root_pattern_matched_nothing",
        RootUnreadable = "root_unreadable",
        RunIdMismatch = "run_id_mismatch",
        RunNameNotUtf8 = "run_name_not_utf8",
        RunStatusCorrupt = "run_status_corrupt",
        RunStatusMissing = "run_status_missing",
        RunUnreadable = "run_unreadable",
        StateInvalid = "state_invalid",
        StateMissing = "state_missing",
        UnindexedTruncated = "unindexed_truncated",
        WalkError = "walk_error",
        WitnessWithoutNormalizedPath = "witness_without_normalized_path",
        WitnessesUnreadable = "witnesses_unreadable",
    }
}

/// How bad a finding is. Ordered from harmless to fatal.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Finding {
    /// A stable machine name such as `latest_invalid` or `index_corrupt`.
    pub code: Code,
    pub severity: Severity,
    /// A sentence for people: what is wrong and what to do.
    pub message: String,
    /// The workspace- or bundle-relative file the finding is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The 1-based line of `path` it points at, when it points at one (for a finding
    /// that counts many lines, the first of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The 1-based column on that line, when it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
}

impl Finding {
    pub fn new(code: Code, severity: Severity, message: impl Into<String>) -> Finding {
        Finding {
            code,
            severity,
            message: message.into(),
            path: None,
            line: None,
            column: None,
        }
    }

    pub fn at(mut self, path: impl Into<String>) -> Finding {
        self.path = Some(path.into());
        self
    }

    /// Points the finding at a line (and a column) of its file.
    pub fn at_line(mut self, line: u64, column: Option<u64>) -> Finding {
        self.line = Some(line).filter(|&l| l > 0);
        self.column = column.filter(|&c| c > 0 && self.line.is_some());
        self
    }

    /// Points the finding at a (line, column) of its file, when there is one.
    pub fn at_position(self, position: Option<(u64, u64)>) -> Finding {
        match position {
            Some((line, column)) => self.at_line(line, Some(column)),
            None => self,
        }
    }

    /// Where the finding is, as editors and compilers write it: `path`,
    /// `path:line` or `path:line:column`.
    pub fn place(&self) -> Option<String> {
        let path = self.path.as_deref().filter(|p| !p.is_empty())?;
        Some(place(path, self.line, self.column))
    }
}

/// `path`, `path:line` or `path:line:column`, as editors and compilers write a place.
pub fn place(path: &str, line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{path}:{l}:{c}"),
        (Some(l), None) => format!("{path}:{l}"),
        _ => path.to_string(),
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
