//! Whether the Kafka brokers can be reached, as an operator needs to hear it: once when
//! they become unreachable (naming the brokers and what the service was doing), at most
//! once a minute while they stay so, and once when they are back, instead of librdkafka's
//! line per failed connection attempt (hundreds in 30 s). `/readyz` says so meanwhile.
//!
//! The librdkafka clients report failures through their context ([`WatchedContext`]);
//! the service reports recovery when a message arrives or a batch commits. At start-up,
//! [`check_resolvable`] names the brokers whose host names do not resolve.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::http::Readiness;

/// How often a continuing outage is logged again.
pub const REPEAT: Duration = Duration::from_secs(60);

/// The brokers' reachability, shared by the service's clients.
#[derive(Debug)]
pub struct BrokerWatch {
    brokers: String,
    readiness: Option<Arc<Readiness>>,
    /// Whether an outage is under way: read on every message, so an atomic.
    down: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    down_since: Option<Instant>,
    last_logged: Option<Instant>,
    /// Failures reported since the last log line.
    since_logged: u64,
}

/// What the watch decided to say about one report (for the log, and for tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Said {
    /// The outage began.
    Began,
    /// The outage continues: for how long, and how many failures since the last line.
    Continues {
        /// Seconds since it began.
        seconds: u64,
        /// Failures reported since the previous line.
        failures: u64,
    },
    /// The brokers answer again after this many seconds.
    Ended {
        /// Seconds the outage lasted.
        seconds: u64,
    },
}

impl BrokerWatch {
    /// A watch of `brokers` (the `bootstrap.servers` list, named in every line), which
    /// marks `readiness` not ready while they are unreachable.
    pub fn new(brokers: &str, readiness: Option<Arc<Readiness>>) -> BrokerWatch {
        BrokerWatch {
            brokers: brokers.to_owned(),
            readiness,
            down: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }

    /// Whether the brokers are currently taken to be unreachable.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A client could not reach any broker while `operation`: logged when the outage
    /// begins and at most every [`REPEAT`] while it lasts.
    pub fn unreachable(&self, operation: &str, reason: &str) {
        match self.unreachable_at(Instant::now()) {
            Some(Said::Began) => tracing::warn!(
                brokers = %self.brokers,
                operation,
                reason,
                "Kafka brokers unreachable; retrying (logged again every minute while it lasts)"
            ),
            Some(Said::Continues { seconds, failures }) => tracing::warn!(
                brokers = %self.brokers,
                operation,
                seconds,
                failures,
                "Kafka brokers still unreachable"
            ),
            _ => {}
        }
    }

    /// A client reached the brokers again (a message arrived, a batch committed): logged
    /// once if an outage was under way.
    pub fn reachable(&self) {
        if !self.is_down() {
            return;
        }
        if let Some(Said::Ended { seconds }) = self.reachable_at(Instant::now()) {
            tracing::info!(brokers = %self.brokers, seconds, "Kafka brokers reachable again");
        }
    }

    /// [`BrokerWatch::unreachable`] at `now`: what to say, if anything.
    pub fn unreachable_at(&self, now: Instant) -> Option<Said> {
        let mut s = self.lock();
        s.since_logged += 1;
        let said = match (s.down_since, s.last_logged) {
            (None, _) => {
                s.down_since = Some(now);
                self.down.store(true, Ordering::Relaxed);
                if let Some(r) = &self.readiness {
                    r.set_brokers_down(true);
                }
                Said::Began
            }
            (Some(since), Some(last)) if now.duration_since(last) >= REPEAT => Said::Continues {
                seconds: now.duration_since(since).as_secs(),
                failures: s.since_logged,
            },
            _ => return None,
        };
        s.last_logged = Some(now);
        s.since_logged = 0;
        Some(said)
    }

    /// [`BrokerWatch::reachable`] at `now`: what to say, if anything.
    pub fn reachable_at(&self, now: Instant) -> Option<Said> {
        let mut s = self.lock();
        let since = s.down_since.take()?;
        *s = State::default();
        self.down.store(false, Ordering::Relaxed);
        if let Some(r) = &self.readiness {
            r.set_brokers_down(false);
        }
        Some(Said::Ended {
            seconds: now.duration_since(since).as_secs(),
        })
    }

    /// What a client context does with a librdkafka error: an unreachable cluster goes to
    /// the watch; anything else is logged as the error it is.
    pub fn client_error(&self, operation: &str, error: &KafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        ) {
            self.unreachable(operation, reason);
        } else if self.is_down()
            && matches!(
                error.rdkafka_error_code(),
                Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::Resolve)
            )
        {
            // One broker's connection failing again during an outage already reported.
            self.unreachable(operation, reason);
        } else {
            tracing::error!(brokers = %self.brokers, operation, error = %error, reason, "Kafka client error");
        }
    }

    /// What a client context does with a librdkafka log line: connection failures while
    /// an outage is already reported are counted, not logged; the rest keep their level.
    pub fn client_log(&self, operation: &str, level: RDKafkaLogLevel, facility: &str, line: &str) {
        let failure = matches!(facility, "FAIL" | "ERROR");
        if failure && self.is_down() {
            let mut s = self.lock();
            s.since_logged += 1;
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", operation, facility, "{line}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", operation, facility, "{line}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", operation, facility, "{line}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", operation, facility, "{line}")
            }
        }
    }
}

/// The service's producer.
pub type WatchedProducer = rdkafka::producer::FutureProducer<WatchedContext>;

/// A librdkafka client context that reports to a [`BrokerWatch`]; `operation` names what
/// the client does for the service (`publishing alerts and committing`).
#[derive(Clone, Debug)]
pub struct WatchedContext {
    /// The shared watch.
    pub watch: Arc<BrokerWatch>,
    /// What this client does.
    pub operation: &'static str,
}

impl ClientContext for WatchedContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.watch
            .client_log(self.operation, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // The end of a partition is news to a consumer that asked for it
        // (`enable.partition.eof`), not a fault of the cluster.
        if matches!(
            error.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        ) {
            return;
        }
        self.watch.client_error(self.operation, &error, reason);
    }
}

/// A consumer may report to the watch too (the board's follower).
impl rdkafka::consumer::ConsumerContext for WatchedContext {}

/// The setting that names the brokers, as start-up errors quote it.
pub const BROKERS_SETTING: &str = "[kafka] brokers (VIGIL_KAFKA_BROKERS)";

/// Checks at start-up that the brokers of `brokers` (a `bootstrap.servers` list:
/// `host:port`, optionally with a `PROTOCOL://` prefix) can be resolved. None resolving is
/// an error naming each broker, why, and `setting`; some not resolving is logged (the
/// others suffice to start, and the cluster names its brokers itself).
///
/// # Errors
///
/// When no broker's host name resolves.
pub async fn check_resolvable(brokers: &str, setting: &str) -> Result<(), String> {
    let mut failed = Vec::new();
    let mut resolved = 0;
    for broker in brokers.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let address = broker.rsplit_once("://").map_or(broker, |(_, a)| a);
        match tokio::net::lookup_host(address).await.map(|mut a| a.next()) {
            Ok(Some(_)) => resolved += 1,
            Ok(None) => failed.push(format!("{broker}: no address")),
            Err(e) => failed.push(format!("{broker}: {e}")),
        }
    }
    if resolved == 0 {
        return Err(format!(
            "no Kafka broker can be resolved (set by {setting} = {brokers:?}): {}",
            failed.join("; ")
        ));
    }
    if !failed.is_empty() {
        tracing::warn!(
            unresolved = %failed.join("; "),
            setting,
            "Some Kafka brokers cannot be resolved; starting with the others"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `.invalid` never resolves (RFC 6761).
    #[tokio::test]
    async fn unresolvable_brokers_are_named_with_the_setting() {
        let err = check_resolvable(
            "broker-1.invalid:9092,SSL://broker-2.invalid:9093",
            BROKERS_SETTING,
        )
        .await
        .expect_err("nothing resolves");
        for part in [
            "no Kafka broker can be resolved",
            "[kafka] brokers (VIGIL_KAFKA_BROKERS)",
            "broker-1.invalid:9092: ",
            "SSL://broker-2.invalid:9093: ",
        ] {
            assert!(err.contains(part), "{part} in {err}");
        }
        // One resolving broker suffices.
        assert_eq!(
            check_resolvable("broker-1.invalid:9092,127.0.0.1:9092", BROKERS_SETTING).await,
            Ok(())
        );
        assert_eq!(
            check_resolvable("localhost:9092", BROKERS_SETTING).await,
            Ok(())
        );
    }

    #[test]
    fn an_outage_is_said_once_when_it_begins_each_minute_while_it_lasts_and_once_when_it_ends() {
        let readiness = Arc::new(Readiness::default());
        readiness.set_consuming(true);
        readiness.set_assigned(true);
        let w = BrokerWatch::new("kafka-1:9092,kafka-2:9092", Some(readiness.clone()));
        let t0 = Instant::now();
        assert_eq!(w.reachable_at(t0), None, "nothing to end");
        assert_eq!(w.unreachable_at(t0), Some(Said::Began));
        assert!(
            readiness
                .status()
                .is_err_and(|why| why.contains("unreachable"))
        );
        for s in 1..60 {
            assert_eq!(w.unreachable_at(t0 + Duration::from_secs(s)), None, "{s}");
        }
        assert_eq!(
            w.unreachable_at(t0 + Duration::from_secs(61)),
            Some(Said::Continues {
                seconds: 61,
                failures: 60
            })
        );
        assert_eq!(w.unreachable_at(t0 + Duration::from_secs(62)), None);
        assert_eq!(
            w.reachable_at(t0 + Duration::from_secs(70)),
            Some(Said::Ended { seconds: 70 })
        );
        assert!(readiness.status().is_ok());
        assert_eq!(w.reachable_at(t0 + Duration::from_secs(71)), None, "once");
        assert_eq!(
            w.unreachable_at(t0 + Duration::from_secs(80)),
            Some(Said::Began),
            "a new outage is a new beginning"
        );
    }
}
