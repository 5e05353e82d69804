//! `vigil-tools`: the tools around Vigil's service, built only on the public interfaces of
//! [`vigil_stream`] (and its documented changelog contract), [`vigil_web`] and
//! [`vigil_testkit`].
//!
//! - [`demo`]: `vigil demo`, everything on one machine with an in-process broker, printing
//!   each alert decision as one line;
//! - [`simulate`]: a synthetic ward feed for demos, load and the harness;
//! - [`load`]: `vigil load`, the service under load (throughput, latency, restore);
//! - [`boardload`]: `vigil load board`, the rapid-response board under load (alerts to
//!   many open boards; a board with many active alerts);
//! - [`boardattack`]: `vigil load board-attack`, the board under attack (live streams,
//!   slow clients, sign-in floods, oversized names), its memory and answer time measured;
//! - [`faults`]: `vigil faults`, the fault-injection harness (RELIABILITY.md);
//! - [`tail`]: `vigil tail`, a topic of the service shown as one readable line per record.
//!
//! Decision support only; not a medical device.

pub mod boardattack;
pub mod boardload;
pub mod demo;
pub mod faults;
pub mod load;
pub mod simulate;
pub mod tail;
