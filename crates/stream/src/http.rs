//! `GET /metrics`, `/healthz`, `/readyz` (REFERENCE.md, "HTTP").

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Whether the service is consuming (partitions assigned and the consumer loop running),
/// and if not, why: `/readyz` answers with the reason.
#[derive(Debug, Default)]
pub struct Readiness {
    assigned: AtomicBool,
    consuming: AtomicBool,
    /// Partitions being restored from the state changelog (0: none).
    restoring: AtomicUsize,
    /// Set once the consumer loop has run: "not consuming" then means stopping.
    started: AtomicBool,
    /// No broker can be reached ([`crate::watch::BrokerWatch`]).
    brokers_down: AtomicBool,
    /// A batch's delivery has stalled: what it waits for, and since when.
    stalled: std::sync::Mutex<Option<String>>,
}

impl Readiness {
    /// For a process that consumes nothing (`vigil mllp`): ready once it serves.
    pub fn not_consuming() -> Readiness {
        let r = Readiness::default();
        r.set_consuming(true);
        r.set_assigned(true);
        r
    }

    /// Records whether partitions are assigned.
    pub fn set_assigned(&self, assigned: bool) {
        self.assigned.store(assigned, Ordering::SeqCst);
    }

    /// Records whether the consumer loop runs.
    pub fn set_consuming(&self, consuming: bool) {
        if consuming {
            self.started.store(true, Ordering::SeqCst);
        }
        self.consuming.store(consuming, Ordering::SeqCst);
    }

    /// Records whether the Kafka brokers are unreachable.
    pub fn set_brokers_down(&self, down: bool) {
        self.brokers_down.store(down, Ordering::SeqCst);
    }

    /// Records that a batch's delivery has stalled (`Some`: what it waits for) or is no
    /// longer stalled (`None`).
    pub fn set_stalled(&self, why: Option<String>) {
        *self.stalled.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }

    /// Records that `partitions` partitions are being restored (0: done).
    pub fn set_restoring(&self, partitions: usize) {
        self.restoring.store(partitions, Ordering::SeqCst);
    }

    /// Ready: assigned and consuming.
    pub fn is_ready(&self) -> bool {
        self.status().is_ok()
    }

    /// `Ok` when ready; otherwise why not, in words an operator can act on.
    pub fn status(&self) -> Result<(), String> {
        if self.brokers_down.load(Ordering::SeqCst) {
            return Err("Kafka brokers unreachable (the log names them and since when)".to_owned());
        }
        if let Some(why) = &*self.stalled.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(format!("batch delivery stalled: {why}"));
        }
        let restoring = self.restoring.load(Ordering::SeqCst);
        if restoring > 0 {
            return Err(format!(
                "restoring {restoring} partition(s) from the state changelog"
            ));
        }
        if !self.consuming.load(Ordering::SeqCst) {
            return Err(if self.started.load(Ordering::SeqCst) {
                "not consuming: stopping".to_owned()
            } else {
                "not consuming yet: starting (connecting to the brokers, joining the consumer \
                 group)"
                    .to_owned()
            });
        }
        if !self.assigned.load(Ordering::SeqCst) {
            return Err(
                "no input partitions assigned: waiting for the consumer group to assign \
                        some (an instance beyond the topic's partition count stays idle)"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// What `/metrics` serves: the service's metrics, or `vigil mllp`'s.
pub trait Exposition: Clone + Send + Sync + 'static {
    /// The Prometheus text exposition.
    fn exposition(&self) -> String;
}

impl Exposition for Metrics {
    fn exposition(&self) -> String {
        self.render()
    }
}

impl Exposition for crate::mllp::MllpMetrics {
    fn exposition(&self) -> String {
        self.render()
    }
}

/// The setting of the service's HTTP address, as bind errors name it.
pub const HTTP_LISTEN: &str = "[http] listen (VIGIL_HTTP_LISTEN)";

/// The setting of `vigil mllp`'s HTTP address.
pub const MLLP_HTTP_LISTEN: &str = "[mllp] http_listen (VIGIL_MLLP_HTTP_LISTEN)";

#[derive(Clone)]
struct AppState<M> {
    metrics: M,
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

/// Binds `addr` (chosen by `setting`, named if it cannot be bound) and serves until
/// `shutdown` is cancelled. Returns the bound address
/// (useful with port 0) once listening.
///
/// # Errors
///
/// When the address cannot be bound.
pub async fn serve<M: Exposition>(
    addr: SocketAddr,
    setting: &str,
    metrics: M,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error(addr, setting, &e))?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler::<M>))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler::<M>))
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

async fn metrics_handler<M: Exposition>(
    State(s): State<AppState<M>>,
) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.exposition(),
    )
}

async fn ready_handler<M: Exposition>(State(s): State<AppState<M>>) -> (StatusCode, String) {
    match s.readiness.status() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/readyz` says why it is not ready, through every phase of a service's life.
    #[tokio::test]
    async fn readyz_says_why_it_is_not_ready() {
        let readiness = Arc::new(Readiness::default());
        let stop = CancellationToken::new();
        let (addr, task) = serve(
            "127.0.0.1:0".parse().expect("an address"),
            HTTP_LISTEN,
            Metrics::new(),
            readiness.clone(),
            stop.clone(),
        )
        .await
        .expect("serves");
        let get = || async move {
            tokio::task::spawn_blocking(move || vigil_testkit::http_get(addr.port(), "/readyz"))
                .await
                .expect("request runs")
        };
        let (code, body) = get().await;
        assert_eq!(code, 503);
        assert!(
            body.starts_with("not ready: not consuming yet: starting"),
            "{body}"
        );
        readiness.set_consuming(true);
        let (code, body) = get().await;
        assert_eq!(code, 503);
        assert!(
            body.starts_with("not ready: no input partitions assigned"),
            "{body}"
        );
        readiness.set_assigned(true);
        assert_eq!(get().await, (200, "ready\n".to_owned()));
        readiness.set_restoring(3);
        let (code, body) = get().await;
        assert_eq!(code, 503);
        assert_eq!(
            body,
            "not ready: restoring 3 partition(s) from the state changelog\n"
        );
        readiness.set_restoring(0);
        readiness.set_stalled(Some("12 s waiting for the transaction coordinator".into()));
        let (code, body) = get().await;
        assert_eq!(code, 503);
        assert_eq!(
            body,
            "not ready: batch delivery stalled: 12 s waiting for the transaction coordinator\n"
        );
        readiness.set_stalled(None);
        assert_eq!(get().await.0, 200);
        readiness.set_consuming(false);
        let (_, body) = get().await;
        assert_eq!(body, "not ready: not consuming: stopping\n");
        stop.cancel();
        task.await.expect("stops");
    }

    #[tokio::test]
    async fn a_busy_port_names_the_address_and_the_setting() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = taken.local_addr().expect("its address");
        let err = serve(
            addr,
            HTTP_LISTEN,
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
