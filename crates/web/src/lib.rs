//! `vigil-web`: the rapid-response board's web application (`vigil board`). Who may sign
//! in and how a signed-in browser is recognised ([`auth`]); the pages ([`pages`]) and the
//! HTTP interface, with every rule enforced by the server and the board live over
//! server-sent events ([`server`]); serving connections within bounds ([`serve`]); the
//! Kafka side ([`kafka`]: folding the alert and action topics in order, verifying and
//! signing actions); HTTPS ([`tls`]); the counters at `/metrics` ([`counters`]); and the
//! application that puts them together with the escalations ([`app`]). SECURITY.md says
//! what it promises and how each promise is tested. DESIGN.md, "The rapid-response board", says
//! why it is built this way.

pub mod app;
pub mod auth;
pub mod counters;
pub mod kafka;
pub mod pages;
pub mod serve;
pub mod server;
pub mod tls;
