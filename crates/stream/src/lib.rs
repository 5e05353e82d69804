//! `vigil-stream`: Vigil's streaming service.
//!
//! Consumes observation events from Kafka, keeps a window per patient (owned by the
//! partition the patient's events arrive on), scores every patient with
//! [`vigil_score`] after each accepted observation, runs the alert policy and publishes
//! deduplicated alert events; rejected messages go to the dead-letter topic with their
//! reason. Serves `/metrics`, `/healthz` and `/readyz`. Decision support only; not a
//! medical device.
//!
//! - [`config`]: the TOML configuration, environment overrides and validation;
//! - [`service`]: the service as a pipeline: the processing stage's loop, batches, the
//!   state records and seals each batch writes;
//! - `intake`: the consumer thread: polls, decodes, and passes rebalances in stream order;
//! - `ownership`: the partitions this instance holds, their patients, checkpoints and
//!   positions, and what to do with each consumed message;
//! - [`processing`]: one message in, its patient updated, alerts and dead letters out;
//!   the overdue sweep; each patient's in-memory state;
//! - [`changelog`]: the state changelog's protocol (headers, seals) and restore;
//! - `delivery`: the delivery guarantee as a type (exactly once by default: each batch's
//!   output, state, seals and offsets in one transaction; at least once as a fallback),
//!   each mode with its own commit, and the delivery stage that commits one batch while
//!   the next is processed;
//! - [`mllp`]: HL7 v2 over MLLP in, acknowledged only once Kafka has the message;
//! - [`event`]: the alert event as published (JSON), with its deterministic ids;
//! - [`fhir_out`]: the same alerts as FHIR R4 resources for an EHR;
//! - [`suppression`]: watches and stops from the board, honoured only when signed;
//! - [`drift`]: per-ward input coverage and Vigil Risk bands, for quality staff;
//! - [`metrics`]: every metric the service exports; [`http`]: `/metrics`, `/healthz`,
//!   `/readyz` and readiness;
//! - [`watch`]: whether the brokers can be reached, logged and shown as readiness.
//!
//! The tools around the service (the demo, the simulator, the load tool and the
//! fault-injection harness) live in `vigil-tools`, and what tests share in
//! `vigil-testkit`: this crate holds no test tools.

pub mod changelog;
pub mod config;
mod delivery;
pub mod drift;
pub mod event;
pub mod fhir_out;
pub mod http;
mod intake;
pub mod metrics;
pub mod mllp;
mod ownership;
pub mod processing;
pub mod service;
pub mod suppression;
pub mod watch;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use config::{Config, ConfigError, Settings};
pub use metrics::Metrics;

/// Runs the HTTP endpoints and the consumer loop until `shutdown` is cancelled or the
/// loop fails; then stops both within the configured deadline.
///
/// # Errors
///
/// When the HTTP address cannot be bound or the service fails.
pub async fn run(
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    watch::check_resolvable(&settings.kafka.brokers, watch::BROKERS_SETTING).await?;
    let metrics = Metrics::new();
    let readiness = Arc::new(http::Readiness::default());
    let http_stop = CancellationToken::new();
    let (addr, http_task) = http::serve(
        settings.listen,
        http::HTTP_LISTEN,
        metrics.clone(),
        readiness.clone(),
        http_stop.clone(),
    )
    .await?;
    tracing::info!(%addr, "Serving /metrics, /healthz, /readyz");
    let deadline = settings.service.shutdown_deadline;
    let service = tokio::spawn(service::run(settings, metrics, readiness, shutdown.clone()));
    let abort = service.abort_handle();
    let result = tokio::select! {
        r = service => r,
        () = async { shutdown.cancelled().await; tokio::time::sleep(deadline).await } => {
            tracing::warn!("Shutdown deadline passed; abandoning in-flight work");
            abort.abort();
            http_stop.cancel();
            return Ok(());
        }
    };
    http_stop.cancel();
    let _ = http_task.await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(e.into()),
    }
}
