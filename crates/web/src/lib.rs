//! `vigil-web`: the rapid-response board's web application. So far: who may sign in and
//! how a signed-in browser is recognised ([`auth`]); the pages, the live updates and the
//! Kafka clients come next (DESIGN.md, "The rapid-response board").

pub mod auth;
