//! The `.lith` family: the S-expression reader ([`sexpr`]) and the `manifest.lith`
//! model ([`manifest`]).

pub mod manifest;
pub mod sexpr;

pub use manifest::Manifest;
