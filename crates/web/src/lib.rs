//! `vigil-web`: the rapid-response board's web application. So far: who may sign in and
//! how a signed-in browser is recognised ([`auth`]), and the board's HTTP interface with
//! every rule enforced by the server ([`server`]); the pages, the live updates and the
//! Kafka clients come next (DESIGN.md, "The rapid-response board").

pub mod auth;
pub mod server;
