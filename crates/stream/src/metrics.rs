//! Every metric the service exports, in one place. Names start with `vigil_`; labels are
//! low-cardinality (outcome, rule, kind, level, reason kind) and never carry a patient
//! identifier.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use vigil_score::{Level, RuleId, Timestamp};

/// The service's metrics and their registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Observations by outcome: accepted, duplicate, stale, ignored, absent, rejected.
    pub observations: IntCounterVec,
    /// Alerts published, by rule, kind and level.
    pub alerts: IntCounterVec,
    /// Messages sent to the dead-letter topic, by reason kind.
    pub dead_letters: IntCounterVec,
    /// Board actions not honoured, by reason: unsigned, malformed_signature,
    /// wrong_signature, unreadable.
    pub actions_refused: IntCounterVec,
    /// Readings of valid codes Vigil does not score, ignored, by code system.
    pub ignored: IntCounterVec,
    /// Readings sent without a value and with the reason why (FHIR `dataAbsentReason`),
    /// by reason.
    pub absent: IntCounterVec,
    /// Patients with a window in memory.
    pub patients: IntGauge,
    /// Partitions assigned to this instance.
    pub partitions: IntGauge,
    /// Batches committed.
    pub commits: IntCounter,
    /// Seconds from a batch's first message to its commit.
    pub batch_seconds: Histogram,
    /// Seconds to restore one partition's patients from the state changelog.
    pub restore_seconds: Histogram,
    /// Bytes of patient state written to the changelog.
    pub state_bytes: IntCounter,
    /// Bytes of patient state read back from the changelog.
    pub state_bytes_restored: IntCounter,
    /// Next input offset committed, by input partition (the partition number is not a
    /// patient identifier).
    pub committed_offsets: prometheus::IntGaugeVec,
    /// Transactions aborted (exactly-once delivery): their batch is processed again.
    pub aborts: IntCounter,
    /// State records skipped on restore because they were written after the committed
    /// input offset (an aborted or unfinished batch).
    pub state_records_skipped: IntCounter,
    /// Seconds from the receipt of the reading that completed a decision to the commit of
    /// its alert events.
    pub alert_latency_seconds: Histogram,
    /// Seconds from the event time of the readings a decision was made on to the commit
    /// of its alert events (measurement to publication, feed delay included).
    pub alert_event_age_seconds: Histogram,
    /// How late readings arrive: seconds from a reading's event time to its receipt.
    pub reading_delay_seconds: Histogram,
    /// When this instance last accepted a reading (Unix seconds).
    pub last_reading: IntGauge,
    /// Active alerts, by rule and level (recounted by the overdue sweep and after every
    /// rebalance).
    pub active_alerts: IntGaugeVec,
    /// Active alerts whose readings are overdue, by rule.
    pub overdue_alerts: IntGaugeVec,
    /// Patients with an active alert whose readings are overdue.
    pub overdue_patients: IntGauge,
    /// Messages in an assigned input partition after the last one this instance consumed.
    pub consumer_lag: IntGaugeVec,
    /// 1 while the batch being delivered has taken longer than `[service]
    /// stall_warning_ms`.
    pub delivery_stalled: IntGauge,
    /// Batches whose delivery stalled.
    pub delivery_stalls: IntCounter,
    /// Per ward: patients, input coverage and the Vigil Risk distribution.
    pub drift: crate::drift::DriftMetrics,
}

/// Active and overdue alerts of a set of patients, counted for the gauges.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AlertCount {
    /// By rule (in [`RuleId::ALL`] order) and level (in [`Level::ALL`] order).
    pub active: [[i64; 3]; vigil_score::alert::RULES],
    /// Overdue, by rule.
    pub overdue: [i64; vigil_score::alert::RULES],
    /// Patients with at least one overdue alert.
    pub overdue_patients: i64,
}

impl AlertCount {
    /// Adds one patient's alerts.
    pub fn add(&mut self, alerts: &vigil_score::AlertState) {
        let mut any_overdue = false;
        for (i, active) in alerts.active_alerts().iter().enumerate() {
            let Some((level, overdue)) = active else {
                continue;
            };
            if let Some(l) = Level::ALL.iter().position(|x| x == level) {
                self.active[i][l] += 1;
            }
            if *overdue {
                self.overdue[i] += 1;
                any_overdue = true;
            }
        }
        self.overdue_patients += i64::from(any_overdue);
    }
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    ///
    /// # Panics
    ///
    /// Never in practice: registration fails only for duplicate or malformed names, which
    /// are fixed here and covered by the tests.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let register = |c: Box<dyn prometheus::core::Collector>| {
            registry.register(c).expect("unique metric");
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            register(Box::new(c.clone()));
            c
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            register(Box::new(c.clone()));
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            register(Box::new(g.clone()));
            g
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("valid metric");
            register(Box::new(h.clone()));
            h
        };
        let observations = counter_vec(
            "vigil_observations_total",
            "Readings consumed, by outcome (accepted, duplicate, stale, ignored, absent, rejected).",
            &["outcome"],
        );
        let alerts = counter_vec(
            "vigil_alerts_total",
            "Alert events published, by rule, kind, level and mode (live: pages; silent: a run-in's record).",
            &["rule", "kind", "level", "mode"],
        );
        let dead_letters = counter_vec(
            "vigil_dead_letters_total",
            "Messages sent to the dead-letter topic, by reason kind.",
            &["reason"],
        );
        let actions_refused = counter_vec(
            "vigil_actions_refused_total",
            "Actions on the board's action topic not honoured, by reason (unsigned, \
             malformed_signature, wrong_signature: not signed with the shared key; unreadable).",
            &["reason"],
        );
        let ignored = counter_vec(
            "vigil_ignored_total",
            "Readings of valid codes Vigil does not score (LOINC, MDC), ignored rather than \
             dead-lettered, by code system.",
            &["system"],
        );
        let absent = counter_vec(
            "vigil_absent_total",
            "Readings sent without a value and with the reason why (FHIR dataAbsentReason), never scored, by reason (its DataAbsentReason code, or other).",
            &["reason"],
        );
        let patients = gauge("vigil_patients", "Patients with a window in memory.");
        let partitions = gauge(
            "vigil_assigned_partitions",
            "Input partitions assigned to this instance.",
        );
        let commits = counter(
            "vigil_commits_total",
            "Batches whose offsets were committed (in one transaction with their output under exactly-once delivery).",
        );
        let committed_offsets =
            prometheus::IntGaugeVec::new(
                Opts::new(
                    "vigil_input_committed_offset",
                    "Next input offset committed by this instance, by input partition (kept after the partition moves: offsets only grow).",
                ),
                &["partition"],
            )
            .expect("valid metric");
        register(Box::new(committed_offsets.clone()));
        let aborts = counter(
            "vigil_transactions_aborted_total",
            "Transactions aborted; their batch is redelivered and processed again.",
        );
        let state_records_skipped = counter(
            "vigil_state_records_skipped_total",
            "Changelog records ignored on restore: written past the committed input offset, or undecodable.",
        );
        let batch_seconds = histogram(
            "vigil_batch_seconds",
            "Seconds from a batch's first message to the commit of its offsets.",
            vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ],
        );
        let restore_seconds = histogram(
            "vigil_state_restore_seconds",
            "Seconds to restore one partition's patients from the state changelog.",
            vec![0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0],
        );
        let state_bytes = counter(
            "vigil_state_bytes_written_total",
            "Bytes of patient state written to the changelog.",
        );
        let state_bytes_restored = counter(
            "vigil_state_bytes_restored_total",
            "Bytes of patient state read back from the changelog.",
        );
        let alert_latency_seconds = histogram(
            "vigil_alert_latency_seconds",
            "Seconds from the receipt of the reading that completed a decision to the commit of its alert events.",
            vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ],
        );
        let alert_event_age_seconds = histogram(
            "vigil_alert_event_age_seconds",
            "Seconds from the event time of the readings a decision was made on (the alert's observed_at) to the commit of its alert events.",
            vec![
                1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 86_400.0,
            ],
        );
        let reading_delay_seconds = histogram(
            "vigil_reading_delay_seconds",
            "Seconds from an accepted reading's event time to its receipt: how late the feed delivers.",
            vec![
                1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 86_400.0,
            ],
        );
        let last_reading = gauge(
            "vigil_last_reading_timestamp_seconds",
            "When this instance last accepted a reading, in Unix seconds (0: none since it started).",
        );
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            register(Box::new(g.clone()));
            g
        };
        let active_alerts = gauge_vec(
            "vigil_active_alerts",
            "Active alerts of this instance's patients, by rule and level.",
            &["rule", "level"],
        );
        let overdue_alerts = gauge_vec(
            "vigil_overdue_alerts",
            "Active alerts whose readings are overdue (re-measure), by rule.",
            &["rule"],
        );
        let overdue_patients = gauge(
            "vigil_overdue_patients",
            "Patients with an active alert whose readings are overdue (re-measure).",
        );
        let consumer_lag = gauge_vec(
            "vigil_consumer_lag_messages",
            "Messages in an assigned input partition after the last one this instance consumed (from the broker's end offset in the latest fetch).",
            &["partition"],
        );
        let delivery_stalled = gauge(
            "vigil_delivery_stalled",
            "1 while the batch being delivered (exactly-once: its transaction) has taken longer than [service] stall_warning_ms.",
        );
        let delivery_stalls = counter(
            "vigil_delivery_stalls_total",
            "Batches whose delivery took longer than [service] stall_warning_ms.",
        );
        for outcome in [
            "accepted",
            "duplicate",
            "stale",
            "ignored",
            "absent",
            "rejected",
        ] {
            observations.with_label_values(&[outcome]);
        }
        let drift = crate::drift::DriftMetrics::register(&registry);
        let metrics = Metrics {
            registry,
            observations,
            alerts,
            dead_letters,
            actions_refused,
            ignored,
            absent,
            patients,
            partitions,
            commits,
            batch_seconds,
            restore_seconds,
            state_bytes,
            state_bytes_restored,
            aborts,
            state_records_skipped,
            committed_offsets,
            alert_latency_seconds,
            alert_event_age_seconds,
            reading_delay_seconds,
            last_reading,
            active_alerts,
            overdue_alerts,
            overdue_patients,
            consumer_lag,
            delivery_stalled,
            delivery_stalls,
            drift,
        };
        // Every rule and level shown at 0 from the start.
        metrics.set_alert_count(&AlertCount::default());
        metrics
    }

    /// Sets the active- and overdue-alert gauges to `count`.
    pub fn set_alert_count(&self, count: &AlertCount) {
        for (i, rule) in RuleId::ALL.iter().enumerate() {
            for (l, level) in Level::ALL.iter().enumerate() {
                self.active_alerts
                    .with_label_values(&[rule.name(), level.name()])
                    .set(count.active[i][l]);
            }
            self.overdue_alerts
                .with_label_values(&[rule.name()])
                .set(count.overdue[i]);
        }
        self.overdue_patients.set(count.overdue_patients);
    }

    /// Records that readings were accepted at `at`.
    pub fn set_last_reading(&self, at: Timestamp) {
        self.last_reading.set(at.as_millis().div_euclid(1000));
    }

    /// Records a partition's committed input offset.
    pub fn set_committed_offset(&self, partition: i32, next: i64) {
        self.committed_offsets
            .with_label_values(&[&partition.to_string()])
            .set(next);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        render(&self.registry)
    }
}

/// The Prometheus text exposition of `registry` (empty if it cannot be encoded).
pub(crate) fn render(registry: &Registry) -> String {
    let mut out = String::new();
    let encoder = prometheus::TextEncoder::new();
    if encoder.encode_utf8(&registry.gather(), &mut out).is_err() {
        out.clear();
    }
    out
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_vigil_names_and_no_patient_labels() {
        let m = Metrics::new();
        m.observations.with_label_values(&["accepted"]).inc();
        m.alerts
            .with_label_values(&["news2", "raised", "urgent", "live"])
            .inc();
        let text = m.render();
        assert!(
            text.contains("vigil_observations_total{outcome=\"accepted\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vigil_alerts_total{kind=\"raised\",level=\"urgent\",mode=\"live\",rule=\"news2\"} 1"),
            "{text}"
        );
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            assert!(line.starts_with("vigil_"), "{line}");
            let labels = line.split_once('{').map_or("", |(_, rest)| rest);
            assert!(!labels.contains("patient"), "{line}");
        }
    }
}
