//! `GET /metrics`, `/healthz`, `/readyz` (README, "Run it").

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Whether the service is consuming: partitions assigned and the consumer loop running.
#[derive(Debug, Default)]
pub struct Readiness {
    assigned: AtomicBool,
    consuming: AtomicBool,
}

impl Readiness {
    /// Records whether partitions are assigned.
    pub fn set_assigned(&self, assigned: bool) {
        self.assigned.store(assigned, Ordering::SeqCst);
    }

    /// Records whether the consumer loop runs.
    pub fn set_consuming(&self, consuming: bool) {
        self.consuming.store(consuming, Ordering::SeqCst);
    }

    /// Ready: assigned and consuming.
    pub fn is_ready(&self) -> bool {
        self.assigned.load(Ordering::SeqCst) && self.consuming.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    readiness: Arc<Readiness>,
}

/// A bind failure that names the address and the setting that chose it, for example
/// `cannot listen on 127.0.0.1:9898 (set by [http] listen (VIGIL_HTTP_LISTEN)): Address
/// already in use (os error 98)`.
pub fn bind_error(addr: SocketAddr, setting: &str, e: &std::io::Error) -> std::io::Error {
    std::io::Error::new(
        e.kind(),
        format!("cannot listen on {addr} (set by {setting}): {e}"),
    )
}

/// Binds `addr` and serves until `shutdown` is cancelled. Returns the bound address
/// (useful with port 0) once listening.
///
/// # Errors
///
/// When the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error(addr, "[http] listen (VIGIL_HTTP_LISTEN)", &e))?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .with_state(AppState { metrics, readiness });
    let handle = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    Ok((bound, handle))
}

async fn metrics_handler(State(s): State<AppState>) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(),
    )
}

async fn ready_handler(State(s): State<AppState>) -> (StatusCode, &'static str) {
    if s.readiness.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_busy_port_names_the_address_and_the_setting() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = taken.local_addr().expect("its address");
        let err = serve(
            addr,
            Metrics::new(),
            Arc::new(Readiness::default()),
            CancellationToken::new(),
        )
        .await
        .expect_err("the port is taken");
        let text = err.to_string();
        assert!(text.contains(&addr.to_string()), "{text}");
        assert!(text.contains("[http] listen"), "{text}");
        assert!(text.contains("VIGIL_HTTP_LISTEN"), "{text}");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    }
}
