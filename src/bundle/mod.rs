//! Run-scoped bundles: layout and `LATEST` ([`layout`]), `run_status.json` and the
//! artifact index ([`index`]), path rules ([`paths`]), verification ([`verify`]) and
//! path witnesses ([`witness`]).

pub mod index;
pub mod layout;
pub mod paths;
pub mod verify;
pub mod witness;
