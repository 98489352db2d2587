//! Run-scoped bundles: layout and `LATEST` ([`layout`]), `run_status.json` and the
//! artifact index ([`index`]), path rules ([`paths`]), verification ([`verify`]) and
//! path witnesses ([`witness`]); the writers: locks ([`lock`]), the commit barrier
//! ([`commit`]), repair ([`reindex`]) and promotion packets ([`promotion`]).

pub mod commit;
pub mod index;
pub mod layout;
pub mod lock;
pub mod paths;
pub mod promotion;
pub mod reindex;
pub mod reuse;
pub mod verify;
pub mod witness;

/// The default decision-stage artifacts, as owned strings.
pub fn manifest_defaults() -> Vec<String> {
    crate::lith::manifest::DEFAULT_DECISION_STAGE_ARTIFACTS
        .iter()
        .map(|s| s.to_string())
        .collect()
}
