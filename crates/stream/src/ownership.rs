//! Partition ownership: the partitions this instance holds, each with its patients'
//! state, the changelog checkpoint it was restored at, and the input position its
//! changelog is sealed at; and the rule for each consumed message, whether it is
//! processed, was already applied by the restored state, or is skipped while its
//! partition is rewound to its checkpoint. Assignments and revocations arrive from the
//! intake in stream order (`crate::intake`).

use std::collections::HashMap;

use rdkafka::Offset;

use crate::changelog::Restored;
use crate::intake::Incoming;
use crate::processing::Partitions;

/// A map by partition number (few keys, looked up per message: a fast hash).
pub(crate) type ByPartition<V> = HashMap<i32, V, foldhash::fast::RandomState>;

/// The partitions this instance owns.
#[derive(Default)]
pub(crate) struct Owned {
    /// Each partition's patients.
    pub(crate) partitions: Partitions,
    /// Partitions restored from the changelog, each with its checkpoint: input below it
    /// was already processed by the restored state.
    restored: ByPartition<Option<i64>>,
    /// Restored partitions whose first message has not been seen yet: their checkpoint
    /// and whether unsealed records were skipped, to check the consumer's position
    /// against.
    first_check: ByPartition<(Option<i64>, bool)>,
    /// Each partition's next input offset after the last batch handed to delivery: where
    /// a transaction that consumed nothing from it seals its changelog.
    pub(crate) positions: ByPartition<i64>,
    /// Partitions rewound to their checkpoint, each with the offset of the message that
    /// showed the consumer was past it: messages above it were fetched before the seek.
    rewinding: ByPartition<i64>,
}

/// What to do with one consumed message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Process it.
    Process,
    /// Its input is already in the restored state: count its offset, do not process it.
    AlreadyApplied,
    /// Fetched before its partition was rewound: drop it, it will be read again.
    Skip,
    /// The consumer is past the partition's checkpoint: seek there and drop this message.
    Rewind(Offset),
}

impl Owned {
    /// Whether `partition` has not been restored yet.
    pub(crate) fn needs_restore(&self, partition: i32) -> bool {
        !self.restored.contains_key(&partition)
    }

    /// Installs a restored partition.
    pub(crate) fn install(&mut self, partition: i32, state: Restored) {
        tracing::info!(
            partition,
            patients = state.patients.len(),
            checkpoint = state.checkpoint,
            "Patient state restored"
        );
        self.partitions.insert(partition, state.patients);
        self.restored.insert(partition, state.checkpoint);
        if let Some(c) = state.checkpoint {
            self.positions.insert(partition, c);
        }
        self.rewinding.remove(&partition);
        self.first_check
            .insert(partition, (state.checkpoint, state.unsealed));
    }

    /// Drops revoked partitions: their patients now belong to another instance, or are
    /// restored afresh if they come back.
    pub(crate) fn release(&mut self, partitions: &[i32]) {
        for p in partitions {
            self.partitions.remove(p);
            self.restored.remove(p);
            self.first_check.remove(p);
            self.positions.remove(p);
            self.rewinding.remove(p);
        }
    }

    /// The active and overdue alerts of the patients held.
    pub(crate) fn alert_count(&self) -> crate::metrics::AlertCount {
        let mut count = crate::metrics::AlertCount::default();
        for state in self.partitions.values().flat_map(HashMap::values) {
            count.add(state.tracker.alerts());
        }
        count
    }

    /// Every held patient's ward, current inputs and latest Vigil Risk estimate.
    pub(crate) fn drift(
        &self,
        params: vigil_score::ParamSet,
        staleness: &vigil_score::Staleness,
        risk: bool,
    ) -> crate::drift::Drift {
        let mut drift = crate::drift::Drift::default();
        for state in self.partitions.values().flat_map(HashMap::values) {
            drift.add(state, params, staleness, risk);
        }
        drift
    }

    /// How many patients are held.
    pub(crate) fn patient_count(&self) -> usize {
        self.partitions.values().map(HashMap::len).sum()
    }

    /// Decides what to do with `m`. Under exactly-once the changelog decides where
    /// processing resumes: a consumer that starts past its partition's checkpoint
    /// (offsets that a broker stored for a transaction whose share restore found
    /// unsealed, e.g. a fenced one that a broker committed instead of aborting) would skip
    /// input the restored state lacks, so it goes back to the checkpoint. Without a
    /// checkpoint, only if the changelog shows exactly-once batches that never sealed (a
    /// deployment moving from at-least-once has none, and its group offset is right).
    pub(crate) fn admit(&mut self, m: &Incoming, exactly_once: bool) -> Admit {
        // Each map below is empty in the steady state; an empty map is not hashed into.
        if !self.rewinding.is_empty()
            && let Some(&seen) = self.rewinding.get(&m.partition)
        {
            // After the seek the partition starts again at or below the message that
            // showed it was ahead; anything above it was fetched before the seek.
            if m.offset > seen {
                return Admit::Skip;
            }
            self.rewinding.remove(&m.partition);
        }
        if !self.first_check.is_empty()
            && let Some((checkpoint, unsealed)) = self.first_check.remove(&m.partition)
        {
            let behind = match checkpoint {
                Some(c) => m.offset > c,
                None => unsealed && m.offset > 0,
            };
            if exactly_once && behind {
                tracing::warn!(
                    partition = m.partition,
                    position = m.offset,
                    checkpoint,
                    "Consumer position past the changelog checkpoint; rewinding"
                );
                self.rewinding.insert(m.partition, m.offset);
                return Admit::Rewind(checkpoint.map_or(Offset::Beginning, Offset::Offset));
            }
        }
        let applied = !self.restored.is_empty()
            && self
                .restored
                .get(&m.partition)
                .copied()
                .flatten()
                .is_some_and(|c| m.offset < c);
        if applied {
            // A broker that did not keep the transaction's offsets redelivers it.
            Admit::AlreadyApplied
        } else {
            Admit::Process
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_score::Timestamp;

    fn message(partition: i32, offset: i64) -> Incoming {
        Incoming::with_buffer(
            Vec::new(),
            partition,
            offset,
            Timestamp::from_millis(0),
            b"",
            None,
            &vigil_wire::Format::Json,
        )
    }

    fn restored(checkpoint: Option<i64>, unsealed: bool) -> Restored {
        Restored {
            patients: crate::processing::Patients::default(),
            checkpoint,
            unsealed,
        }
    }

    #[test]
    fn a_consumer_past_the_checkpoint_rewinds_and_skips_what_was_fetched_before_the_seek() {
        let mut owned = Owned::default();
        owned.install(3, restored(Some(10), false));
        assert_eq!(
            owned.admit(&message(3, 14), true),
            Admit::Rewind(Offset::Offset(10))
        );
        // Fetched before the seek took effect.
        assert_eq!(owned.admit(&message(3, 15), true), Admit::Skip);
        assert_eq!(owned.admit(&message(3, 16), true), Admit::Skip);
        // Read again from the checkpoint.
        assert_eq!(owned.admit(&message(3, 10), true), Admit::Process);
        assert_eq!(owned.admit(&message(3, 11), true), Admit::Process);
        // Other partitions are not affected.
        assert_eq!(owned.admit(&message(4, 99), true), Admit::Process);
    }

    #[test]
    fn input_below_the_checkpoint_is_already_applied_and_at_least_once_never_rewinds() {
        let mut owned = Owned::default();
        owned.install(1, restored(Some(10), false));
        assert_eq!(owned.admit(&message(1, 8), true), Admit::AlreadyApplied);
        assert_eq!(owned.admit(&message(1, 10), true), Admit::Process);
        let mut owned = Owned::default();
        owned.install(1, restored(Some(10), false));
        assert_eq!(owned.admit(&message(1, 12), false), Admit::Process);
        let mut owned = Owned::default();
        owned.install(2, restored(None, true));
        assert_eq!(
            owned.admit(&message(2, 5), true),
            Admit::Rewind(Offset::Beginning)
        );
        assert_eq!(owned.admit(&message(2, 0), true), Admit::Process);
    }

    #[test]
    fn a_released_partition_is_restored_afresh() {
        let mut owned = Owned::default();
        owned.install(1, restored(Some(10), false));
        assert!(!owned.needs_restore(1));
        owned.release(&[1]);
        assert!(owned.needs_restore(1));
        assert!(owned.positions.is_empty());
    }
}
