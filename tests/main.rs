//! Integration tests: each runs the real `lith` binary in a temporary workspace.
// Tests print what they measured or found with the standard macros.
#![allow(clippy::disallowed_macros)]

mod attest;
mod build;
mod changes;
mod ci;
mod corpus;
mod dod;
mod gate;
mod queue;
mod reference;
mod snapshot;
mod support;
mod verify;
mod writers;
