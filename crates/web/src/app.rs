//! `vigil board`: the board's web application put together. It follows the alert and
//! action topics into the board ([`crate::kafka::follow`]), publishes actions and the
//! escalations that fall due, and serves the pages and the HTTP interface
//! ([`crate::server`]) over HTTP or, when configured, HTTPS ([`crate::tls`]), until
//! shutdown.
//!
//! Escalation: every second the board is asked which alerts nobody accepted in time
//! ([`vigil_board::Board::escalations_due`]); each is published once to the action topic as
//! an `escalate` action of the role `system` with a deterministic id, so that several
//! instances publishing the same escalation write copies every reader drops. Pagers and
//! secure messaging read them from the action topic.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vigil_board::Board;
use vigil_score::Timestamp;
use vigil_stream::config::{BoardSettings, KafkaSettings};

use crate::auth::{Sessions, Throttle, User, Users};
use crate::kafka::KafkaSink;
use crate::serve::{Limits, serve};
use crate::server::{ActionSink, Proxy, Shared, router};

/// How often due escalations are looked for.
const ESCALATION_CHECK: Duration = Duration::from_secs(1);

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The wall clock.
pub fn wall_clock() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp::from_millis(ms)
}

/// The board's state for `board`, publishing to `sink`, on the wall clock; `brokers` is
/// what its broker watch names when they cannot be reached.
///
/// # Errors
///
/// When a configured user cannot be read.
pub fn shared(
    board: &BoardSettings,
    brokers: &str,
    sink: Arc<dyn ActionSink>,
) -> Result<Arc<Shared>, Error> {
    let users = Users::new(
        board
            .users
            .iter()
            .map(|(name, role, hash)| User {
                name: name.clone(),
                role: *role,
                password_hash: hash.clone(),
            })
            .collect(),
    )?;
    let mut shared = Shared::new(
        Board::new(),
        board.rules.clone(),
        users,
        Sessions::new(board.session),
        Throttle::new(board.login_attempts, board.login_window),
        sink,
        board.tls.is_some(),
        wall_clock,
    );
    shared.proxy = board.proxy.as_ref().map(|p| Proxy {
        trusted: p.trusted.clone(),
        user_header: p.user_header.clone(),
        groups_header: p.groups_header.clone(),
        roles: p.roles.clone(),
    });
    shared.public_origin.clone_from(&board.public_origin);
    shared.time_zone.clone_from(&board.time_zone);
    shared.ward_names.clone_from(&board.ward_names);
    shared.feed = Arc::new(vigil_stream::watch::BrokerWatch::new(brokers, None));
    Ok(Arc::new(shared))
}

/// A running board: its address, and the task serving it.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Ends when shutdown is requested and the server has stopped.
    pub task: tokio::task::JoinHandle<Result<(), Error>>,
}

/// Starts the board for `kafka` (brokers, client settings, the alert topic) and `board`
/// until `shutdown` is cancelled.
///
/// # Errors
///
/// When the address cannot be bound, the TLS files cannot be read, a user's hash cannot
/// be read or a Kafka client cannot be created.
pub async fn start(
    kafka: &KafkaSettings,
    board: &BoardSettings,
    shutdown: CancellationToken,
) -> Result<Running, Error> {
    let key_file = board.action_key_file.as_deref().ok_or(
        "board.action_key_file: not set; expected the file holding the key boards and the \
         service sign and check actions with (make one with `vigil action-key > FILE`)",
    )?;
    let key = vigil_stream::config::read_action_key(key_file, "board.action_key_file")?;
    let sink: Arc<dyn ActionSink> = Arc::new(KafkaSink::new(
        &kafka.brokers,
        &kafka.librdkafka,
        &board.actions_topic,
        key.clone(),
    )?);
    let shared = shared(board, &kafka.brokers, sink)?;
    let tls = match &board.tls {
        Some((cert, key)) => Some(crate::tls::server_config(cert, key)?),
        None => None,
    };
    let tcp = tokio::net::TcpListener::bind(board.listen)
        .await
        .map_err(|e| format!("board.listen: cannot listen on {}: {e}", board.listen))?;
    let addr = tcp.local_addr()?;

    let follower = {
        let shared = shared.clone();
        let (brokers, librdkafka) = (kafka.brokers.clone(), kafka.librdkafka.clone());
        let (alerts, actions) = (kafka.alerts_topic.clone(), board.actions_topic.clone());
        tokio::spawn(async move {
            let topics = (alerts.as_str(), actions.as_str());
            if let Err(e) = crate::kafka::follow(&brokers, &librdkafka, topics, key, shared).await {
                tracing::error!(error = %e, "Board: cannot follow the alert and action topics");
            }
        })
    };
    let escalator = tokio::spawn(escalate(shared.clone(), shutdown.clone()));

    let app = router(shared.clone());
    let closing = shared.closing.clone();
    let stop = shutdown.clone();
    let limits = Limits::new(board.max_connections);
    let task = tokio::spawn(async move {
        let until = async move {
            stop.cancelled().await;
            // Open streams end, so that the server can finish.
            closing.cancel();
        };
        serve(tcp, tls, app, shared, limits, until).await;
        follower.abort();
        escalator.abort();
        Ok(())
    });
    Ok(Running { addr, task })
}

/// Publishes each escalation once as it falls due, until shutdown.
async fn escalate(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut published: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(ESCALATION_CHECK);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = (shared.now)();
        let due = shared
            .fold
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .board()
            .escalations_due(now, &shared.settings);
        // Ids no longer due (applied, or the case changed) can be forgotten.
        published.retain(|id| due.iter().any(|d| &d.id == id));
        for d in due {
            if published.contains(&d.id) {
                continue;
            }
            match shared.sink.publish(&d.action()) {
                Ok(()) => {
                    tracing::info!(level = ?d.level, tier = d.tier, "Board: an alert nobody accepted escalated");
                    published.insert(d.id);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Board: cannot publish an escalation; retrying")
                }
            }
        }
    }
}
