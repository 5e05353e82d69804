//! Partition ownership: which partitions this instance holds, as the consumer group's
//! rebalance callbacks report them, recorded for the consumer loop to apply between
//! batches (a revocation drops the partitions' patients and the batch's messages taken
//! from them; an assignment is restored at the next batch boundary).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};

use crate::http::Readiness;
use crate::metrics::Metrics;

/// Rebalance events recorded by the consumer context, applied between batches.
#[derive(Default)]
pub(crate) struct Rebalances {
    /// Partitions revoked, each with the epoch its revocation started.
    revoked: Vec<(i32, u64)>,
    /// Incremented by every revocation: a message received while the epoch was `e`
    /// arrived after every revocation numbered `e` or lower.
    epoch: u64,
    /// The partitions assigned now (the eager assignors revoke and assign everything).
    assigned: HashSet<i32>,
}

pub(crate) struct VigilContext {
    pub(crate) rebalances: Arc<Mutex<Rebalances>>,
    pub(crate) readiness: Arc<Readiness>,
    pub(crate) metrics: Metrics,
}

impl ClientContext for VigilContext {}

impl ConsumerContext for VigilContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut r = self.rebalances.lock().unwrap_or_else(|p| p.into_inner());
            r.epoch += 1;
            let epoch = r.epoch;
            r.revoked
                .extend(tpl.elements().iter().map(|e| (e.partition(), epoch)));
            for e in tpl.elements() {
                r.assigned.remove(&e.partition());
            }
            self.readiness.set_assigned(false);
            tracing::info!(partitions = tpl.count(), "Partitions revoked");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // The eager assignors give the whole assignment and revoke all of it. Asking the
        // consumer (`assignment()`) from inside this callback deadlocks when the callback
        // runs while the consumer is being closed: librdkafka's group thread waits for the
        // callback, the callback for the group thread.
        let count = match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = tpl.count(), "Partitions assigned");
                let mut r = self.rebalances.lock().unwrap_or_else(|p| p.into_inner());
                r.assigned
                    .extend(tpl.elements().iter().map(|e| e.partition()));
                tpl.count()
            }
            Rebalance::Revoke(_) => 0,
            Rebalance::Error(_) => return,
        };
        self.metrics
            .partitions
            .set(i64::try_from(count).unwrap_or(i64::MAX));
        self.readiness.set_assigned(count > 0);
    }
}

/// The current revocation epoch.
pub(crate) fn epoch(rebalances: &Mutex<Rebalances>) -> u64 {
    rebalances.lock().unwrap_or_else(|p| p.into_inner()).epoch
}

/// The partitions assigned now.
pub(crate) fn assigned(rebalances: &Mutex<Rebalances>) -> Vec<i32> {
    let r = rebalances.lock().unwrap_or_else(|p| p.into_inner());
    r.assigned.iter().copied().collect()
}

/// The revocations recorded since the last call.
pub(crate) fn take_revoked(rebalances: &Mutex<Rebalances>) -> Vec<(i32, u64)> {
    std::mem::take(&mut rebalances.lock().unwrap_or_else(|p| p.into_inner()).revoked)
}
