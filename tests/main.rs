//! Integration tests: each runs the real `lith` binary in a temporary workspace.

mod build;
mod corpus;
mod gate;
mod queue;
mod support;
mod verify;
mod writers;
