//! The `vigil` command line: wire decoding at the edge and the commands built on
//! [`vigil_score`].
//!
//! Decision support only; not a medical device.
//!
//! - [`vigil_wire`] turns messages (native JSON now) into validated observations;
//! - [`score`] is the `vigil score` command: observation JSONL in, one assessment per
//!   patient out.

pub mod score;
