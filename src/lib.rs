//! The `vigil` command line: wire decoding at the edge and the commands built on
//! [`vigil_score`].
//!
//! Decision support only; not a medical device.
//!
//! - [`vigil_wire`] turns messages (native JSON, FHIR R4, HL7 v2) into validated observations;
//! - [`decode`] is the `vigil decode` command: messages in, native observation events out;
//! - [`score`] is the `vigil score` command: observation JSONL in, one assessment per
//!   patient out.

pub mod decode;
pub mod score;
