//! `vigil-web`: the rapid-response board's web application. So far: who may sign in and
//! how a signed-in browser is recognised ([`auth`]), the board's HTTP interface with
//! every rule enforced by the server ([`server`]), and its Kafka side ([`kafka`]:
//! following the alert and action topics, publishing actions); the command that serves
//! them, the pages and the live updates come next (DESIGN.md, "The rapid-response
//! board").

pub mod auth;
pub mod kafka;
pub mod server;
