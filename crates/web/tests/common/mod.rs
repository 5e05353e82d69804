//! What the board's web tests share: the board settings, a fixed clock and the routes'
//! shared state.

use std::sync::Arc;

use vigil_board::{Board, Settings};
use vigil_score::{Span, Timestamp};
use vigil_web::auth::{Sessions, Throttle, Users};
use vigil_web::server::{ActionSink, Shared};

/// Dismissal for one reason, watches up to 4 h, urgent escalating after 15 minutes and
/// emergency after 5, two tiers.
pub fn settings() -> Settings {
    Settings {
        dismiss_reasons: vec!["not sepsis".into()],
        max_watch_minutes: 240,
        escalate_after: [None, Some(Span::minutes(15)), Some(Span::minutes(5))],
        max_tier: 2,
    }
}

/// The tests' clock: 2026-11-23 10:10 UTC.
pub fn now() -> Timestamp {
    Timestamp::from_millis(1_795_428_600_000)
}

/// The routes' state: `board` and `users`, sessions of an hour, five sign-in failures per
/// quarter hour.
pub fn shared(
    board: Board,
    users: Users,
    sink: Arc<dyn ActionSink>,
    secure_cookie: bool,
) -> Arc<Shared> {
    Arc::new(Shared::new(
        board,
        settings(),
        users,
        Sessions::new(Span::minutes(60)),
        Throttle::new(5, Span::minutes(15)),
        sink,
        secure_cookie,
        now,
    ))
}

/// Folds `event` into the shared board as if read from its topic now (each call at the
/// next offset), and tells open streams.
#[allow(dead_code)] // Not every test binary folds events.
pub fn fold_in(shared: &Shared, event: vigil_board::Event) -> vigil_board::Folded {
    static OFFSET: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let topic = match event {
        vigil_board::Event::Alert(_) => vigil_board::Topic::Alerts,
        vigil_board::Event::Action(_) => vigil_board::Topic::Actions,
    };
    let at = vigil_board::Position {
        time_ms: now().as_millis(),
        topic,
        partition: 0,
        offset: OFFSET.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    };
    let folded = shared
        .fold
        .lock()
        .expect("the board")
        .apply(at, event, &shared.settings);
    shared.changed();
    folded
}
