//! lith turns the evidence CI jobs leave on disk into verdicts and a static report
//! site. The binary in `main.rs` only parses arguments and maps the result to an exit
//! code; everything else lives here so that tests and benchmarks call the same code.
//!
//! Pipeline of `lith build`: [`lith::Manifest`] → [`bundle::layout`] discovery →
//! [`bundle::verify`] (parallel) → one [`report::Report`] → writers in [`report`] and
//! [`site`] that only read the model.

#[macro_use]
mod names;

pub mod activity;
pub mod attest;
pub mod beneath;
pub mod bundle;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod dod;
pub mod exit;
pub mod finding;
pub mod fsutil;
pub mod fuzzing;
pub mod gate;
pub mod held;
pub mod http;
pub mod json_budget;
pub mod json_text;
pub mod json_walk;
pub mod jsonl;
pub mod lith;
pub mod pipeline;
pub mod progress;
pub mod queue;
pub mod receipts;
pub mod report;
pub mod site;
pub mod term;
pub mod wire;

/// The system allocator, counting what a thread holds while it reads a document
/// back ([`held`]).
#[global_allocator]
static ALLOCATOR: held::Counting = held::Counting;
