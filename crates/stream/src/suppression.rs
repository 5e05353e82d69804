//! Watches and stops taken on the rapid-response board, honoured by the alert policy: the
//! service follows the board's action topic (every partition from the beginning,
//! `read_committed`, joining no group) and marks the decisions of a watched or stopped
//! patient suppressed. A suppressed decision is still published, with `suppressed`
//! saying by what, who and until when, so that the record is complete and pagers skip
//! it; a resolution is never suppressed.
//!
//! - A **watch** ("alert me again after N minutes") suppresses until `at + minutes` (wall
//!   clock, as on the board); a later watch replaces it.
//! - A **stop** ("no more alerts this encounter", charge nurses and administrators)
//!   suppresses while the patient's encounter is the one it was taken in. A stop taken in
//!   no encounter (the feed sends none for the patient) is not honoured: it would never
//!   end, and would silence the patient's next encounter.
//! - Either applies only within the encounter it was taken in: a new encounter ends it.
//! - An action is honoured only with a valid signature of a board holding the shared key
//!   ([`vigil_board::ActionKey`]): one written straight to the topic is refused, counted
//!   in `vigil_actions_refused_total{reason}` and logged without its content.
//! - An action is honoured only if its role may take it ([`vigil_board::Role::may`]): a
//!   nurse's stop forged onto the topic changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use vigil_board::{Action, ActionKey, ActionKind, SIGNATURE_HEADER};
use vigil_score::{Span, Timestamp};

/// What suppresses a patient's alerts, as the alert event's `suppressed` says it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Suppressed {
    /// `watch` or `stop`.
    pub by: &'static str,
    /// Until when (a watch), or `null` (a stop: for the rest of the encounter).
    pub until: Option<Timestamp>,
    /// Who took the action.
    pub user: String,
}

#[derive(Clone, Debug, Default)]
struct Patient {
    /// Until when, by whom, in which encounter.
    watch: Option<(Timestamp, String, Option<String>)>,
    /// By whom, in which encounter.
    stop: Option<(String, Option<String>)>,
}

/// The watches and stops in force, shared by the follower and the processing task.
#[derive(Clone, Debug, Default)]
pub struct Suppressions(Arc<RwLock<HashMap<String, Patient>>>);

fn same_encounter(taken_in: &Option<String>, now: Option<&str>) -> bool {
    taken_in.is_none() || taken_in.as_deref() == now
}

impl Suppressions {
    /// No watch and no stop.
    pub fn new() -> Suppressions {
        Suppressions::default()
    }

    /// Applies one action of the board; returns whether it changed what is suppressed.
    pub fn apply(&self, a: &Action) -> bool {
        if !a.role.may(&a.kind) {
            return false;
        }
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        match &a.kind {
            ActionKind::Watch { minutes } => {
                let until = a.at.plus(Span::minutes(i64::from(*minutes)));
                map.entry(a.patient_id.clone()).or_default().watch =
                    Some((until, a.user.clone(), a.encounter_id.clone()));
                true
            }
            // A stop lasts the encounter it was taken in: one taken in none would never
            // end, so it is not honoured (the board refuses it too).
            ActionKind::Stop if a.encounter_id.is_none() => false,
            ActionKind::Stop => {
                map.entry(a.patient_id.clone()).or_default().stop =
                    Some((a.user.clone(), a.encounter_id.clone()));
                true
            }
            _ => false,
        }
    }

    /// What suppresses the alerts of `patient_id` in `encounter_id` at `now`, if anything
    /// (a stop before a watch).
    pub fn lookup(
        &self,
        patient_id: &str,
        encounter_id: Option<&str>,
        now: Timestamp,
    ) -> Option<Suppressed> {
        let map = self.0.read().unwrap_or_else(|p| p.into_inner());
        let p = map.get(patient_id)?;
        if let Some((user, taken_in)) = &p.stop
            && same_encounter(taken_in, encounter_id)
        {
            return Some(Suppressed {
                by: "stop",
                until: None,
                user: user.clone(),
            });
        }
        match &p.watch {
            Some((until, user, taken_in))
                if now < *until && same_encounter(taken_in, encounter_id) =>
            {
                Some(Suppressed {
                    by: "watch",
                    until: Some(*until),
                    user: user.clone(),
                })
            }
            _ => None,
        }
    }
}

/// Follows `topic` into `suppressions` until the task is dropped. `caught_up` is sent
/// once everything on the topic when it started has been applied (at once when the
/// topic does not exist yet; its partitions are looked for again every 30 s). An event
/// that cannot be read is logged without its content and skipped.
///
/// # Errors
///
/// When the consumer cannot be created.
pub async fn follow(
    config: rdkafka::ClientConfig,
    topic: String,
    (key, refused): (ActionKey, prometheus::IntCounterVec),
    suppressions: Suppressions,
    caught_up: tokio::sync::oneshot::Sender<()>,
) -> Result<(), rdkafka::error::KafkaError> {
    let consumer: Arc<BaseConsumer> = Arc::new(
        config
            .clone()
            .set("group.id", "vigil-suppressions")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "100")
            .create()?,
    );
    let mut caught_up = Some(caught_up);
    let mut assigned: BTreeMap<i32, i64> = BTreeMap::new(); // partition -> end at start
    let mut next_lookup = std::time::Instant::now();
    loop {
        if std::time::Instant::now() >= next_lookup {
            next_lookup = std::time::Instant::now() + Duration::from_secs(30);
            let c = consumer.clone();
            let t = topic.clone();
            let known: Vec<i32> = assigned.keys().copied().collect();
            // Metadata and watermarks are blocking calls.
            let found = tokio::task::spawn_blocking(move || partitions(&c, &t, &known))
                .await
                .unwrap_or_default();
            if !found.is_empty() {
                assigned.extend(found);
                let mut tpl = TopicPartitionList::new();
                for p in assigned.keys() {
                    tpl.add_partition_offset(&topic, *p, Offset::Beginning)?;
                }
                consumer.assign(&tpl)?;
            }
        }
        let c = consumer.clone();
        let key = key.clone();
        let polled = tokio::task::spawn_blocking(move || {
            let mut got = Vec::new();
            if let Some(r) = c.poll(Duration::from_millis(200)) {
                match r {
                    Ok(m) => {
                        let payload = m.payload().unwrap_or_default();
                        let signature = m.headers().and_then(|h| {
                            h.iter()
                                .find(|h| h.key == SIGNATURE_HEADER)
                                .and_then(|h| h.value)
                        });
                        got.push((
                            m.partition(),
                            m.offset(),
                            key.verify(payload, signature).map(|()| payload.to_vec()),
                        ));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Board actions: consuming failed; retrying")
                    }
                }
            }
            got
        })
        .await
        .unwrap_or_default();
        for (partition, offset, payload) in polled {
            let payload = match payload {
                Ok(p) => p,
                Err(why) => {
                    refused.with_label_values(&[why.name()]).inc();
                    tracing::warn!(
                        partition,
                        offset,
                        reason = why.name(),
                        "Board actions: an action without a valid signature refused (not \
                         taken on a board holding the shared key); not honoured"
                    );
                    continue_after(&mut assigned, partition, offset);
                    continue;
                }
            };
            match Action::from_json(&payload) {
                Ok(a) => {
                    suppressions.apply(&a);
                }
                Err(_) => {
                    refused.with_label_values(&["unreadable"]).inc();
                    // The JSON error may quote the event's text: not logged.
                    tracing::warn!(
                        partition,
                        offset,
                        "Board actions: not an action event (unreadable JSON or a missing field); skipped"
                    )
                }
            }
            continue_after(&mut assigned, partition, offset);
        }
        if assigned.values().all(|end| *end == 0)
            && let Some(tx) = caught_up.take()
        {
            let _ = tx.send(());
        }
    }
}

/// Notes that `offset` of `partition` was read: a partition read to its end at start is
/// caught up.
fn continue_after(assigned: &mut BTreeMap<i32, i64>, partition: i32, offset: i64) {
    if let Some(end) = assigned.get_mut(&partition)
        && offset + 1 >= *end
    {
        *end = 0;
    }
}

/// The partitions of `topic` not in `known`, each with its end offset now (0 when empty).
fn partitions(consumer: &BaseConsumer, topic: &str, known: &[i32]) -> Vec<(i32, i64)> {
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for t in metadata.topics() {
        if t.error().is_some() {
            continue;
        }
        for p in t.partitions() {
            if known.contains(&p.id()) {
                continue;
            }
            let (low, high) = consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .unwrap_or((0, 0));
            found.push((p.id(), if high > low { high } else { 0 }));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_board::Role;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).expect("a time")
    }

    fn action(kind: ActionKind, role: Role, encounter: Option<&str>) -> Action {
        Action {
            action_id: "x".into(),
            patient_id: "P1".into(),
            encounter_id: encounter.map(str::to_owned),
            kind,
            user: "carol".into(),
            role,
            at: at("2026-11-23T10:00:00Z"),
        }
    }

    #[test]
    fn a_watch_suppresses_until_it_ends_and_only_in_its_encounter() {
        let s = Suppressions::new();
        assert!(s.apply(&action(
            ActionKind::Watch { minutes: 30 },
            Role::Nurse,
            Some("E1")
        )));
        let watched = s.lookup("P1", Some("E1"), at("2026-11-23T10:29:59.999Z"));
        assert_eq!(
            watched,
            Some(Suppressed {
                by: "watch",
                until: Some(at("2026-11-23T10:30:00Z")),
                user: "carol".into()
            })
        );
        // Both edges: suppressed up to the instant it ends, not at it.
        assert_eq!(s.lookup("P1", Some("E1"), at("2026-11-23T10:30:00Z")), None);
        assert_eq!(s.lookup("P1", Some("E2"), at("2026-11-23T10:10:00Z")), None);
        assert_eq!(s.lookup("P2", Some("E1"), at("2026-11-23T10:10:00Z")), None);
    }

    #[test]
    fn a_stop_lasts_the_encounter_and_is_honoured_only_from_a_role_that_may_stop() {
        let s = Suppressions::new();
        assert!(!s.apply(&action(ActionKind::Stop, Role::Nurse, Some("E1"))));
        assert_eq!(s.lookup("P1", Some("E1"), at("2026-11-23T10:10:00Z")), None);
        assert!(s.apply(&action(ActionKind::Stop, Role::ChargeNurse, Some("E1"))));
        let stopped = s.lookup("P1", Some("E1"), at("2030-01-01T00:00:00Z"));
        assert_eq!(stopped.map(|x| x.by), Some("stop"));
        assert_eq!(s.lookup("P1", Some("E2"), at("2026-11-23T10:10:00Z")), None);
        // Accepting, dismissing, noting suppress nothing.
        let t = Suppressions::new();
        for kind in [
            ActionKind::Accept,
            ActionKind::Dismiss {
                reason: "not sepsis".into(),
            },
            ActionKind::Note { text: "x".into() },
            ActionKind::Escalate,
        ] {
            assert!(!t.apply(&action(kind, Role::Admin, Some("E1"))));
        }
        assert_eq!(t.lookup("P1", Some("E1"), at("2026-11-23T10:10:00Z")), None);
    }

    /// Issue 31: a charge nurse's stop on a patient whose feed names no encounter never
    /// ended, so the emergency of the patient's next encounter was published suppressed.
    #[test]
    fn a_stop_taken_in_no_encounter_silences_nothing_then_or_later() {
        let s = Suppressions::new();
        assert!(!s.apply(&action(ActionKind::Stop, Role::ChargeNurse, None)));
        assert_eq!(s.lookup("P1", None, at("2026-11-23T10:10:00Z")), None);
        assert_eq!(
            s.lookup("P1", Some("ENC-NEW"), at("2026-11-23T12:00:00Z")),
            None
        );
        // A stop taken in an encounter still ends with it, whatever comes next.
        assert!(s.apply(&action(ActionKind::Stop, Role::ChargeNurse, Some("E1"))));
        assert_eq!(s.lookup("P1", None, at("2026-11-23T12:00:00Z")), None);
        assert_eq!(
            s.lookup("P1", Some("ENC-NEW"), at("2026-11-23T12:00:00Z")),
            None
        );
    }
}
