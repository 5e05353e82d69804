//! The board's semantics: cards from alert events, actions and who may take them,
//! dismissal, watch and stop, escalation of unaccepted alerts at both edges of its time,
//! and that boards applying the same events agree.

use proptest::prelude::*;
use vigil_board::{
    Action, ActionKind, AlertEvent, Applied, Board, Event, EventKind, Fold, Level, Position,
    Refusal, Role, Settings, Topic,
};
use vigil_score::{Span, Timestamp};

const T0: i64 = 1_795_428_000_000;

fn at(minute: i64) -> Timestamp {
    Timestamp::from_millis(T0 + minute * 60_000)
}

fn settings() -> Settings {
    Settings {
        dismiss_reasons: vec!["not sepsis".into(), "artefact".into()],
        max_watch_minutes: 240,
        escalate_after: [
            Some(Span::minutes(60)),
            Some(Span::minutes(15)),
            Some(Span::minutes(5)),
        ],
        max_tier: 2,
    }
}

fn event(
    id: &str,
    patient: &str,
    rule: &str,
    kind: EventKind,
    level: Level,
    minute: i64,
) -> AlertEvent {
    AlertEvent {
        alert_id: id.into(),
        decision_id: format!("d-{id}"),
        patient_id: patient.into(),
        encounter_id: Some(format!("E-{patient}")),
        location: Some("ward-7/bed-1".into()),
        rule: rule.into(),
        kind,
        level,
        score: Some(7.0),
        previous_score: None,
        previous_level: None,
        criteria: vec![],
        overdue: vec![],
        message: format!("{rule} {level:?}"),
        first_raised_at: at(minute),
        emitted_at: at(minute),
        suppressed: None,
        silent: false,
    }
}

fn action(
    id: &str,
    patient: &str,
    kind: ActionKind,
    user: &str,
    role: Role,
    minute: i64,
) -> Action {
    Action {
        action_id: id.into(),
        patient_id: patient.into(),
        encounter_id: Some(format!("E-{patient}")),
        kind,
        user: user.into(),
        role,
        at: at(minute),
    }
}

fn shown(b: &Board, minute: i64) -> Vec<(String, Level)> {
    b.cards(at(minute), &settings())
        .iter()
        .map(|c| (c.case.patient_id.clone(), c.level))
        .collect()
}

#[test]
fn cards_are_ordered_by_level_then_by_how_long_they_waited() {
    let mut b = Board::new();
    b.apply_alert(event(
        "1",
        "P1",
        "mews",
        EventKind::Raised,
        Level::Advisory,
        0,
    ));
    b.apply_alert(event(
        "2",
        "P2",
        "news2",
        EventKind::Raised,
        Level::Urgent,
        5,
    ));
    b.apply_alert(event(
        "3",
        "P3",
        "news2",
        EventKind::Raised,
        Level::Urgent,
        3,
    ));
    b.apply_alert(event(
        "4",
        "P4",
        "septic_shock",
        EventKind::Raised,
        Level::Emergency,
        9,
    ));
    assert_eq!(
        shown(&b, 10),
        vec![
            ("P4".into(), Level::Emergency),
            ("P3".into(), Level::Urgent),
            ("P2".into(), Level::Urgent),
            ("P1".into(), Level::Advisory)
        ]
    );
    // A redelivered event changes nothing; an escalation raises the card; resolution of
    // every active alert takes it off.
    assert_eq!(
        b.apply_alert(event(
            "1",
            "P1",
            "mews",
            EventKind::Raised,
            Level::Advisory,
            0
        )),
        Applied::Duplicate
    );
    b.apply_alert(event(
        "5",
        "P1",
        "mews",
        EventKind::Escalated,
        Level::Emergency,
        11,
    ));
    assert_eq!(shown(&b, 12)[1], ("P1".into(), Level::Emergency));
    b.apply_alert(event(
        "6",
        "P4",
        "septic_shock",
        EventKind::Resolved,
        Level::Emergency,
        12,
    ));
    assert!(!shown(&b, 13).iter().any(|(p, _)| p == "P4"));
    assert!(b.case("P4").expect("kept").history.len() == 2);
}

#[test]
fn a_case_stays_while_any_rule_is_active_at_the_highest_level() {
    let mut b = Board::new();
    b.apply_alert(event(
        "1",
        "P1",
        "news2",
        EventKind::Raised,
        Level::Urgent,
        0,
    ));
    b.apply_alert(event(
        "2",
        "P1",
        "mews",
        EventKind::Raised,
        Level::Advisory,
        1,
    ));
    b.apply_alert(event(
        "3",
        "P1",
        "news2",
        EventKind::Resolved,
        Level::Urgent,
        2,
    ));
    assert_eq!(shown(&b, 3), vec![("P1".into(), Level::Advisory)]);
    let case = b.case("P1").expect("a case");
    assert_eq!(
        case.level_since,
        Some(at(2)),
        "the level changed at minute 2"
    );
}

#[test]
fn who_may_act_is_checked_by_the_board_not_only_by_the_page() {
    let s = settings();
    let mut b = Board::new();
    b.apply_alert(event(
        "1",
        "P1",
        "news2",
        EventKind::Raised,
        Level::Urgent,
        0,
    ));
    let stop = |role, id: &str| action(id, "P1", ActionKind::Stop, "u", role, 1);
    assert_eq!(
        b.apply_action(stop(Role::Nurse, "a1"), &s),
        Err(Refusal::NotAllowed {
            role: Role::Nurse,
            action: "stop"
        })
    );
    assert!(!b.case("P1").expect("a case").stopped);
    let watch = action(
        "a2",
        "P1",
        ActionKind::Watch { minutes: 30 },
        "q",
        Role::Quality,
        1,
    );
    assert!(matches!(
        b.apply_action(watch, &s),
        Err(Refusal::NotAllowed { .. })
    ));
    assert_eq!(
        b.apply_action(stop(Role::ChargeNurse, "a3"), &s),
        Ok(Applied::Applied)
    );
    assert!(b.case("P1").expect("a case").stopped);
    // A refused action is not recorded, an applied one is, once.
    assert_eq!(b.case("P1").expect("a case").history.len(), 2);
    assert_eq!(
        b.apply_action(stop(Role::ChargeNurse, "a3"), &s),
        Ok(Applied::Duplicate)
    );
}

#[test]
fn one_owner_at_a_time_and_only_a_charge_nurse_takes_over() {
    let s = settings();
    let mut b = Board::new();
    b.apply_alert(event(
        "1",
        "P1",
        "news2",
        EventKind::Raised,
        Level::Urgent,
        0,
    ));
    let accept = |id: &str, user: &str, role| action(id, "P1", ActionKind::Accept, user, role, 1);
    assert_eq!(
        b.apply_action(accept("a1", "alice", Role::Nurse), &s),
        Ok(Applied::Applied)
    );
    assert_eq!(
        b.apply_action(accept("a2", "bob", Role::Nurse), &s),
        Err(Refusal::OwnedByAnother {
            owner: "alice".into()
        })
    );
    assert_eq!(
        b.apply_action(accept("a3", "carol", Role::ChargeNurse), &s),
        Ok(Applied::Applied)
    );
    assert_eq!(
        b.case("P1").expect("a case").owner.as_deref(),
        Some("carol")
    );
}

#[test]
fn values_outside_the_configured_ones_are_refused_with_what_is_allowed() {
    let s = settings();
    let mut b = Board::new();
    b.apply_alert(event(
        "1",
        "P1",
        "news2",
        EventKind::Raised,
        Level::Urgent,
        0,
    ));
    let dismiss = action(
        "a1",
        "P1",
        ActionKind::Dismiss {
            reason: "bored".into(),
        },
        "alice",
        Role::Nurse,
        1,
    );
    let refused = b
        .apply_action(dismiss, &s)
        .expect_err("not a configured reason");
    assert_eq!(
        refused.to_string(),
        "reason: \"bored\" is not allowed; expected one of not sepsis, artefact"
    );
    for minutes in [0, 241] {
        let watch = action(
            "a2",
            "P1",
            ActionKind::Watch { minutes },
            "alice",
            Role::Nurse,
            1,
        );
        assert!(
            matches!(
                b.apply_action(watch, &s),
                Err(Refusal::Invalid {
                    field: "minutes",
                    ..
                })
            ),
            "{minutes}"
        );
    }
    let watch = action(
        "a3",
        "P1",
        ActionKind::Watch { minutes: 240 },
        "alice",
        Role::Nurse,
        1,
    );
    assert_eq!(b.apply_action(watch, &s), Ok(Applied::Applied));
    let note = action(
        "a4",
        "P9",
        ActionKind::Note { text: "x".into() },
        "alice",
        Role::Nurse,
        1,
    );
    assert_eq!(b.apply_action(note, &s), Err(Refusal::NoCase));
}

#[test]
fn a_dismissed_case_returns_on_a_new_alert_unless_watched_or_stopped() {
    let s = settings();
    let mut b = Board::new();
    b.apply_alert(event(
        "1",
        "P1",
        "news2",
        EventKind::Raised,
        Level::Urgent,
        0,
    ));
    let dismiss = |id: &str, minute| {
        action(
            id,
            "P1",
            ActionKind::Dismiss {
                reason: "artefact".into(),
            },
            "alice",
            Role::Nurse,
            minute,
        )
    };
    b.apply_action(dismiss("a1", 1), &s).expect("dismissed");
    assert!(shown(&b, 2).is_empty());
    // Escalated: back on the board.
    b.apply_alert(event(
        "2",
        "P1",
        "news2",
        EventKind::Escalated,
        Level::Emergency,
        3,
    ));
    assert_eq!(shown(&b, 4), vec![("P1".into(), Level::Emergency)]);
    // Dismissed and watched for 30 minutes: a new alert at minute 34 (inside) is
    // suppressed; at minute 35 (the watch's end) it shows again.
    b.apply_action(dismiss("a2", 5), &s).expect("dismissed");
    b.apply_action(
        action(
            "a3",
            "P1",
            ActionKind::Watch { minutes: 30 },
            "alice",
            Role::Nurse,
            5,
        ),
        &s,
    )
    .expect("watched");
    assert_eq!(
        b.apply_alert(event(
            "3",
            "P1",
            "mews",
            EventKind::Raised,
            Level::Urgent,
            34
        )),
        Applied::Suppressed
    );
    assert!(shown(&b, 34).is_empty());
    assert_eq!(
        b.apply_alert(event(
            "4",
            "P1",
            "sofa",
            EventKind::Raised,
            Level::Urgent,
            35
        )),
        Applied::Applied
    );
    assert_eq!(shown(&b, 35).len(), 1);
    // Stopped for the encounter: suppressed however late; a new encounter starts over.
    b.apply_action(dismiss("a4", 36), &s).expect("dismissed");
    b.apply_action(
        action("a5", "P1", ActionKind::Stop, "carol", Role::ChargeNurse, 36),
        &s,
    )
    .expect("stopped");
    assert_eq!(
        b.apply_alert(event(
            "5",
            "P1",
            "qsofa",
            EventKind::Raised,
            Level::Urgent,
            600
        )),
        Applied::Suppressed
    );
    let mut next = event("6", "P1", "news2", EventKind::Raised, Level::Urgent, 700);
    next.encounter_id = Some("E-next".into());
    assert_eq!(b.apply_alert(next), Applied::Applied);
    let case = b.case("P1").expect("a case");
    assert!(!case.stopped && case.owner.is_none() && case.dismissed.is_none());
    assert_eq!(shown(&b, 700), vec![("P1".into(), Level::Urgent)]);
}

#[test]
fn an_unaccepted_alert_escalates_when_its_level_allows_no_more_waiting() {
    let s = settings();
    let mut b = Board::new();
    // Urgent: 15 minutes. Due at minute 15, not a millisecond before.
    b.apply_alert(event(
        "1",
        "P1",
        "news2",
        EventKind::Raised,
        Level::Urgent,
        0,
    ));
    let just_before = Timestamp::from_millis(at(15).as_millis() - 1);
    assert!(b.escalations_due(just_before, &s).is_empty());
    let due = b.escalations_due(at(15), &s);
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].tier, due[0].level, due[0].due_at),
        (1, Level::Urgent, at(15))
    );
    assert!(b.cards(at(15), &s)[0].overdue_escalation);
    // Every instance computes the same escalation; applying it twice changes nothing.
    let again = b.escalations_due(at(16), &s);
    assert_eq!(again[0].id, due[0].id);
    assert_eq!(b.apply_action(due[0].action(), &s), Ok(Applied::Applied));
    assert_eq!(
        b.apply_action(again[0].action(), &s),
        Ok(Applied::Duplicate)
    );
    // Tier 2 at twice the time; then no further tier.
    assert!(b.escalations_due(at(29), &s).is_empty());
    let second = b.escalations_due(at(30), &s);
    assert_eq!(second[0].tier, 2);
    b.apply_action(second[0].action(), &s).expect("applied");
    assert!(b.escalations_due(at(600), &s).is_empty());
    // Emergency: 5 minutes; accepted in time, never escalated.
    b.apply_alert(event(
        "2",
        "P2",
        "septic_shock",
        EventKind::Raised,
        Level::Emergency,
        100,
    ));
    b.apply_action(
        action("a1", "P2", ActionKind::Accept, "alice", Role::Nurse, 104),
        &s,
    )
    .expect("accepted");
    assert!(
        b.escalations_due(at(200), &s)
            .iter()
            .all(|e| e.patient_id != "P2")
    );
    // A system action other than escalation is refused.
    let forged = action("a2", "P2", ActionKind::Stop, "vigil", Role::System, 105);
    assert!(matches!(
        b.apply_action(forged, &s),
        Err(Refusal::NotAllowed { .. })
    ));
}

fn arb_event() -> impl Strategy<Value = (u8, u8, u8, u8, i64)> {
    (0u8..4, 0u8..3, 0u8..4, 0u8..3, 0i64..120)
}

proptest! {
    /// Boards that apply the same events show the same cards, whatever the order in which
    /// different patients' events arrive (each topic keeps one patient's events in
    /// order), and redelivering every event changes nothing.
    #[test]
    fn boards_applying_the_same_events_agree(events in prop::collection::vec(arb_event(), 1..60)) {
        let kinds = [EventKind::Raised, EventKind::Escalated, EventKind::Overdue, EventKind::Resolved];
        let rules = ["news2", "mews", "septic_shock"];
        let made: Vec<AlertEvent> = events
            .iter()
            .enumerate()
            .map(|(i, &(p, r, k, l, m))| {
                event(&i.to_string(), &format!("P{p}"), rules[r as usize], kinds[k as usize], Level::ALL[l as usize], m + i as i64)
            })
            .collect();
        let mut a = Board::new();
        for e in &made {
            a.apply_alert(e.clone());
        }
        // The same events grouped by patient (another interleaving), each twice.
        let mut b = Board::new();
        for p in 0..4 {
            for e in made.iter().filter(|e| e.patient_id == format!("P{p}")) {
                b.apply_alert(e.clone());
                prop_assert_eq!(b.apply_alert(e.clone()), Applied::Duplicate);
            }
        }
        let now = at(1000);
        let s = settings();
        let view = |board: &Board| -> Vec<(String, Level, Timestamp)> {
            board.cards(now, &s).iter().map(|c| (c.case.patient_id.clone(), c.level, c.since)).collect()
        };
        prop_assert_eq!(view(&a), view(&b));
        prop_assert_eq!(a.escalations_due(now, &s), b.escalations_due(now, &s));
    }
}

/// What a page shows of a card: the ward, the level in words and symbol (never colour
/// alone), how long it waited, what changed since the previous decision, and the scores
/// of the last 24 hours.
#[test]
fn a_card_view_shows_what_changed_and_the_days_scores() {
    use vigil_board::CardView;
    let mut b = Board::new();
    let mut first = event("1", "P1", "news2", EventKind::Raised, Level::Urgent, 0);
    first.score = Some(5.0);
    first.previous_score = Some(3.0);
    b.apply_alert(first);
    let mut second = event(
        "2",
        "P1",
        "news2",
        EventKind::Escalated,
        Level::Emergency,
        30,
    );
    second.score = Some(8.0);
    second.previous_score = Some(5.0);
    second.previous_level = Some(Level::Urgent);
    b.apply_alert(second);
    let now = at(45);
    let cards = b.cards(now, &settings());
    let view = CardView::of(&cards[0], now);
    assert_eq!(view.ward, "ward-7");
    assert_eq!(view.level_text, "!!! emergency (high priority)");
    assert_eq!(view.waiting_minutes, 15, "at emergency since minute 30");
    assert_eq!(view.alerts.len(), 1);
    assert_eq!(view.alerts[0].changed, "urgent → emergency, score 5 → 8");
    assert_eq!(view.trend.len(), 1);
    assert_eq!(view.trend[0].points, vec![(45, 5.0), (15, 8.0)]);
    assert!(
        view.escalation_due,
        "emergency waits 5 minutes; nobody accepted it"
    );
    // Scores older than 24 hours leave the trend.
    let later = at(24 * 60 + 10);
    let cards = b.cards(later, &settings());
    let view = CardView::of(&cards[0], later);
    assert_eq!(view.trend[0].points, vec![(24 * 60 - 20, 8.0)]);
    let json = serde_json::to_value(&view).expect("serialises");
    assert_eq!(json["level"], "emergency");
}

#[test]
fn an_alert_the_service_marked_suppressed_does_not_bring_back_a_dismissed_case() {
    let mut b = Board::new();
    let s = settings();
    b.apply_alert(event(
        "a1",
        "P1",
        "news2",
        EventKind::Raised,
        Level::Urgent,
        0,
    ));
    let dismiss = action(
        "x1",
        "P1",
        ActionKind::Dismiss {
            reason: "not sepsis".into(),
        },
        "nina",
        Role::Nurse,
        1,
    );
    b.apply_action(dismiss, &s).expect("dismissed");
    let mut marked = event(
        "a2",
        "P1",
        "news2",
        EventKind::Escalated,
        Level::Emergency,
        2,
    );
    marked.suppressed = Some(serde_json::json!({"by": "watch", "user": "nina"}));
    assert_eq!(b.apply_alert(marked), Applied::Suppressed);
    assert!(
        shown(&b, 3).is_empty(),
        "a suppressed alert re-showed the case"
    );
    // The same escalation unmarked would have brought it back.
    let plain = event(
        "a3",
        "P1",
        "news2",
        EventKind::Escalated,
        Level::Emergency,
        4,
    );
    assert_eq!(b.apply_alert(plain), Applied::Applied);
    assert_eq!(shown(&b, 5), vec![("P1".to_owned(), Level::Emergency)]);
}

#[test]
fn a_silent_alert_is_on_the_silent_board_only_and_never_escalates_or_takes_actions() {
    let mut b = Board::new();
    let silent = |id: &str, patient: &str, kind, level, minute| AlertEvent {
        silent: true,
        ..event(id, patient, "risk", kind, level, minute)
    };
    b.apply_alert(silent("s1", "P1", EventKind::Raised, Level::Urgent, 0));
    b.apply_alert(event(
        "l1",
        "P2",
        "news2",
        EventKind::Raised,
        Level::Urgent,
        0,
    ));
    // The live board shows only the live alert, and only it can fall due.
    assert_eq!(shown(&b, 600), vec![("P2".into(), Level::Urgent)]);
    let due: Vec<String> = b
        .escalations_due(at(600), &settings())
        .into_iter()
        .map(|e| e.patient_id)
        .collect();
    assert_eq!(due, vec!["P2".to_owned()]);
    // The silent board shows the run-in's alert, never due to escalate.
    let silent_cards = b.silent_cards(at(600), &settings());
    assert_eq!(silent_cards.len(), 1);
    assert_eq!(silent_cards[0].case.patient_id, "P1");
    assert!(!silent_cards[0].overdue_escalation);
    // Nobody acts on a silent alert: the patient has no live case.
    let accept = action("a1", "P1", ActionKind::Accept, "nina", Role::Nurse, 601);
    assert_eq!(b.apply_action(accept, &settings()), Err(Refusal::NoCase));
    // A silent alert on a patient with a live case leaves the live case as it was.
    b.apply_alert(silent("s2", "P2", EventKind::Raised, Level::Emergency, 602));
    assert_eq!(shown(&b, 603), vec![("P2".into(), Level::Urgent)]);
    assert_eq!(b.silent_cards(at(603), &settings()).len(), 2);
    // Measured recovery resolves it on the silent board too.
    b.apply_alert(silent("s3", "P1", EventKind::Resolved, Level::Urgent, 604));
    assert_eq!(b.silent_cards(at(605), &settings()).len(), 1);
}

/// Issue 31: a stop on a case whose feed names no encounter would never end.
#[test]
fn a_stop_needs_an_encounter_to_end_with() {
    let s = settings();
    let mut b = Board::new();
    b.apply_alert(AlertEvent {
        encounter_id: None,
        ..event("1", "P1", "news2", EventKind::Raised, Level::Emergency, 0)
    });
    let stop = action("s1", "P1", ActionKind::Stop, "carl", Role::ChargeNurse, 1);
    let refused = b.apply_action(stop, &s).expect_err("no encounter");
    assert!(
        matches!(
            refused,
            Refusal::Invalid {
                field: "encounter_id",
                ..
            }
        ),
        "{refused}"
    );
    assert!(!b.case("P1").expect("a case").stopped);
    // With an encounter, the same stop is taken.
    b.apply_alert(event(
        "2",
        "P2",
        "news2",
        EventKind::Raised,
        Level::Emergency,
        0,
    ));
    let stop = action("s2", "P2", ActionKind::Stop, "carl", Role::ChargeNurse, 1);
    assert_eq!(b.apply_action(stop, &s), Ok(Applied::Applied));
}

/// Issue 31: a nurse escalated by hand to tier 8 of 3; a note carried NUL, escape and a
/// bidirectional override.
#[test]
fn escalation_stops_at_the_highest_tier_and_notes_carry_no_hidden_characters() {
    let s = settings();
    let mut b = Board::new();
    b.apply_alert(event(
        "1",
        "P1",
        "news2",
        EventKind::Raised,
        Level::Urgent,
        0,
    ));
    for tier in 1..=s.max_tier {
        let up = action(
            &format!("e{tier}"),
            "P1",
            ActionKind::Escalate,
            "nina",
            Role::Nurse,
            i64::from(tier),
        );
        assert_eq!(b.apply_action(up, &s), Ok(Applied::Applied), "{tier}");
    }
    let beyond = action("e9", "P1", ActionKind::Escalate, "nina", Role::Nurse, 9);
    assert!(matches!(
        b.apply_action(beyond, &s),
        Err(Refusal::Invalid { field: "tier", .. })
    ));
    assert_eq!(b.case("P1").expect("a case").tier, s.max_tier);
    for (i, text) in [
        "a\u{0}b",
        "\u{1b}[2Jcleared",
        "ok \u{202E}etaD",
        "x\u{2066}y",
    ]
    .iter()
    .enumerate()
    {
        let note = action(
            &format!("n{i}"),
            "P1",
            ActionKind::Note {
                text: (*text).into(),
            },
            "nina",
            Role::Nurse,
            10,
        );
        assert!(
            matches!(
                b.apply_action(note, &s),
                Err(Refusal::Invalid { field: "text", .. })
            ),
            "{text:?}"
        );
    }
    // Line breaks and ordinary text are a note.
    let fine = action(
        "n9",
        "P1",
        ActionKind::Note {
            text: "seen at 10:05,\nfluids started".into(),
        },
        "nina",
        Role::Nurse,
        10,
    );
    assert_eq!(b.apply_action(fine, &s), Ok(Applied::Applied));
}

fn pos(minute: i64, topic: Topic, offset: i64) -> Position {
    Position {
        time_ms: T0 + minute * 60_000,
        topic,
        partition: 0,
        offset,
    }
}

/// Issue 31: an action read before its patient's alert was refused ("no case") and lost,
/// so a board that read the topics in another interleaving showed another state.
#[test]
fn an_action_read_before_its_alert_is_applied_once_the_alert_arrives() {
    let s = settings();
    let raised = event("e1", "P1", "news2", EventKind::Raised, Level::Emergency, 0);
    let accept = action("a1", "P1", ActionKind::Accept, "alice", Role::Nurse, 1);
    let mut f = Fold::new(10 * 60_000);
    let early = f.apply(pos(1, Topic::Actions, 0), Event::Action(accept.clone()), &s);
    assert_eq!(early.outcome, Err(Refusal::NoCase));
    let late = f.apply(
        pos(0, Topic::Alerts, 0),
        Event::Alert(Box::new(raised.clone())),
        &s,
    );
    assert!(late.reordered, "{late:?}");
    assert_eq!(late.outcome, Ok(Applied::Applied));
    assert_eq!(
        f.board().case("P1").and_then(|c| c.owner.as_deref()),
        Some("alice")
    );
    // The same board as one that read them in order.
    let mut ordered = Board::new();
    ordered.apply_alert(raised);
    ordered.apply_action(accept, &s).expect("accepted");
    assert_eq!(f.board(), &ordered);
}

/// Events older than the horizon are no longer reordered: they are applied after what
/// is already there and said to be late, never dropped.
#[test]
fn an_event_older_than_the_horizon_is_applied_late_not_dropped() {
    let s = settings();
    let mut f = Fold::new(10 * 60_000);
    let first = event("e1", "P1", "news2", EventKind::Raised, Level::Urgent, 0);
    let second = event("e2", "P1", "mews", EventKind::Raised, Level::Emergency, 30);
    f.apply(
        pos(30, Topic::Alerts, 1),
        Event::Alert(Box::new(second)),
        &s,
    );
    // Exactly at the horizon's edge an event is still put in its place ...
    let edge = event("e0", "P1", "qsofa", EventKind::Raised, Level::Advisory, 20);
    let folded = f.apply(pos(20, Topic::Alerts, 0), Event::Alert(Box::new(edge)), &s);
    assert!(folded.reordered && !folded.late, "{folded:?}");
    // ... one millisecond older is late.
    let mut older = pos(20, Topic::Alerts, 2);
    older.time_ms -= 1;
    let folded = f.apply(older, Event::Alert(Box::new(first)), &s);
    assert!(folded.late && !folded.reordered, "{folded:?}");
    assert_eq!(folded.outcome, Ok(Applied::Applied));
    let case = f.board().case("P1").expect("a case");
    assert_eq!(case.alerts.len(), 3, "nothing dropped");
}

fn arb_message() -> impl Strategy<Value = (u8, u8, u8, i64, i64)> {
    // patient, what (alert kinds then action kinds), level, minute, arrival delay (s)
    (0u8..3, 0u8..9, 0u8..3, 0i64..90, 0i64..540)
}

proptest! {
    /// Whatever the interleaving in which the two topics arrive (each message at most
    /// nine minutes late, within the ten-minute horizon), the fold ends in the state of
    /// the same messages applied in their defined order, and so does a board that read
    /// all of them at once in that order (a restart).
    #[test]
    fn any_arrival_order_folds_into_the_defined_order(msgs in prop::collection::vec(arb_message(), 1..50)) {
        let s = settings();
        let kinds = [EventKind::Raised, EventKind::Escalated, EventKind::Overdue, EventKind::Resolved];
        let rules = ["news2", "mews", "septic_shock"];
        let mut made: Vec<(Position, Event, i64)> = Vec::new();
        for (i, &(p, what, l, minute, delay)) in msgs.iter().enumerate() {
            let patient = format!("P{p}");
            let i64i = i as i64;
            let (topic, ev) = if what < 4 {
                let rule = rules[usize::from(l)];
                (Topic::Alerts, Event::Alert(Box::new(event(&format!("e{i}"), &patient, rule, kinds[usize::from(what)], Level::ALL[usize::from(l)], minute))))
            } else {
                let kind = match what {
                    4 => ActionKind::Accept,
                    5 => ActionKind::Dismiss { reason: "artefact".into() },
                    6 => ActionKind::Watch { minutes: 30 },
                    7 => ActionKind::Stop,
                    _ => ActionKind::Escalate,
                };
                (Topic::Actions, Event::Action(action(&format!("a{i}"), &patient, kind, "carol", Role::ChargeNurse, minute)))
            };
            let at = Position { time_ms: T0 + minute * 60_000, topic, partition: i32::from(p), offset: i64i };
            made.push((at, ev, at.time_ms + delay * 1000));
        }
        let mut sorted = made.clone();
        sorted.sort_by_key(|(at, _, _)| *at);
        let mut reference = Board::new();
        for (_, e, _) in &sorted {
            let _ = match e.clone() {
                Event::Alert(a) => Ok(reference.apply_alert(*a)),
                Event::Action(a) => reference.apply_action(a, &s),
            };
        }
        let mut arrival = made.clone();
        arrival.sort_by_key(|(at, _, arrives)| (*arrives, *at));
        let mut live = Fold::new(10 * 60_000);
        for (at, e, _) in arrival {
            let folded = live.apply(at, e, &s);
            prop_assert!(!folded.late);
        }
        prop_assert_eq!(live.board(), &reference);
        let mut restarted = Fold::new(10 * 60_000);
        for (at, e, _) in sorted {
            let folded = restarted.apply(at, e, &s);
            prop_assert!(!folded.reordered && !folded.late);
        }
        prop_assert_eq!(restarted.board(), &reference);
    }
}
