//! Serving the board's connections within bounds: what one client, or many, can hold.
//!
//! - **At most [`Limits::max_connections`] at once** (`[board] max_connections`): a
//!   connection beyond them is closed at once and counted; every open board page holds
//!   one (its live stream).
//! - **A request's head must arrive within [`Limits::header_timeout`]**, counted from when
//!   the server starts waiting for it, so that an incomplete request, and a kept-alive
//!   connection left idle, are closed after it (HTTP/1.1 only; a stream in progress is
//!   not idle).
//! - **A TLS handshake must finish within [`Limits::handshake_timeout`]**, in the
//!   connection's own task: a slow handshake holds nothing else up.
//! - Bodies are read by the routes themselves, only after the session is checked, with
//!   their own size and time bounds ([`crate::server`]).
//!
//! At shutdown the listener closes, open streams end ([`crate::server::Shared::closing`])
//! and the connections finish what they were sending.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tower::ServiceExt as _;

use crate::server::{Peer, Shared};

/// What one connection may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The most connections served at once.
    pub max_connections: usize,
    /// The longest wait for a request's head (and so for an idle kept-alive connection).
    pub header_timeout: Duration,
    /// The longest TLS handshake.
    pub handshake_timeout: Duration,
}

impl Limits {
    /// `max_connections`, heads within 10 s, handshakes within 10 s.
    pub fn new(max_connections: usize) -> Limits {
        Limits {
            max_connections,
            header_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `tcp` (over TLS with `tls`) within `limits` until `until` completes,
/// then waits for the open connections to finish.
pub async fn serve(
    tcp: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    app: Router,
    shared: Arc<Shared>,
    limits: Limits,
    until: impl Future<Output = ()>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::pin!(until);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut until => break,
            accepted = tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most often: wait rather than spin.
                    tracing::warn!(error = %e, "Board: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            shared.counters.connections_refused.fetch_add(1, Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            shared.counters.connections_open.fetch_add(1, Relaxed);
            match acceptor {
                None => connection(stream, peer, app, limits, watcher).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => connection(tls, peer, app, limits, watcher).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "Board: TLS handshake failed"),
                        Err(_) => tracing::debug!("Board: TLS handshake timed out"),
                    }
                }
            }
            shared.counters.connections_open.fetch_sub(1, Relaxed);
            drop(permit);
        });
    }
    drop(tcp);
    graceful.shutdown().await;
}

/// Serves one connection's requests until it closes, times out or shutdown ends it.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(Peer(peer)));
        app.clone().oneshot(request)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "Board: a connection ended with an error");
    }
}
