//! The board's HTTP interface, without its Kafka clients: sign-in and sign-out, the
//! signed-in user's session, the board as JSON, and actions. Every rule is enforced by
//! the server, whatever a page shows:
//!
//! - every route but sign-in needs a session cookie (`vigil_session`: `HttpOnly`,
//!   `SameSite=Strict`, `Path=/`, and `Secure` when the board is served over TLS);
//! - every state-changing request needs the session's CSRF token in `x-csrf-token`;
//! - an action the user's role may not take, or a value outside the configured ones, is
//!   refused with 403 and the reason, and is never published;
//! - sign-in is refused with 429 while a name has too many recent failures.
//!
//! Patient identifiers travel only in request and response bodies, never in a URL.
//! Accepted actions go to an [`ActionSink`] (the action topic in the service); the board
//! changes when the action comes back from it, so every instance shows the same state.

use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use vigil_board::{Action, ActionKind, Board, CardView, Settings};
use vigil_score::Timestamp;

use crate::auth::{LoginLimiter, Session, Sessions, Users};

/// Where accepted actions go: the action topic in the service (tests apply them).
pub trait ActionSink: Send + Sync {
    /// Publishes one action.
    ///
    /// # Errors
    ///
    /// When it could not be published; the user is told to try again.
    fn publish(&self, action: &Action) -> Result<(), String>;
}

/// What the routes share.
pub struct Shared {
    /// The board, rebuilt from the alert and action topics by the caller.
    pub board: Mutex<Board>,
    /// The board's settings.
    pub settings: Settings,
    /// Who may sign in.
    pub users: Users,
    /// Open sessions.
    pub sessions: Mutex<Sessions>,
    /// Failed sign-ins.
    pub limiter: Mutex<LoginLimiter>,
    /// Where accepted actions go.
    pub sink: Arc<dyn ActionSink>,
    /// Served over TLS: the session cookie is `Secure`.
    pub secure_cookie: bool,
    /// The clock (the wall clock in service; fixed in tests).
    pub now: fn() -> Timestamp,
}

const COOKIE: &str = "vigil_session";

/// The routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/api/session", get(session))
        .route("/api/board", get(board))
        .route("/api/actions", post(act))
        .with_state(shared)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, why.to_owned()).into_response()
}

/// The session cookie's token, if the request carries one.
fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_owned)
        })
}

/// A request the server turns away before looking at what it asks.
#[derive(Debug)]
struct Denied(StatusCode, &'static str);

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        refuse(self.0, self.1)
    }
}

/// The signed-in session, or 401.
fn signed_in(s: &Shared, headers: &HeaderMap) -> Result<(String, Session), Denied> {
    let signed_out = || Denied(StatusCode::UNAUTHORIZED, "sign in first");
    let token = token(headers).ok_or_else(signed_out)?;
    let session = lock(&s.sessions)
        .get(&token, (s.now)())
        .cloned()
        .ok_or_else(signed_out)?;
    Ok((token, session))
}

/// The signed-in session whose CSRF token the request presents, or 401/403.
fn with_csrf(s: &Shared, headers: &HeaderMap) -> Result<(String, Session), Denied> {
    let (token, session) = signed_in(s, headers)?;
    let presented = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if session.csrf_matches(presented) {
        Ok((token, session))
    } else {
        Err(Denied(
            StatusCode::FORBIDDEN,
            "missing or wrong x-csrf-token",
        ))
    }
}

#[derive(Deserialize)]
struct Credentials {
    user: String,
    password: String,
}

async fn login(State(s): State<Arc<Shared>>, Form(c): Form<Credentials>) -> Response {
    let now = (s.now)();
    if !lock(&s.limiter).allowed(&c.user, now) {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed sign-ins for this name; try again later",
        );
    }
    let Some(user) = s.users.verify(&c.user, &c.password) else {
        lock(&s.limiter).failed(&c.user, now);
        return refuse(StatusCode::UNAUTHORIZED, "wrong user name or password");
    };
    lock(&s.limiter).succeeded(&c.user);
    let opened = lock(&s.sessions).open(user, now);
    let Ok(token) = opened else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "cannot open a session");
    };
    let secure = if s.secure_cookie { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}");
    let mut response = (StatusCode::SEE_OTHER, "signed in").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/"));
    response
}

async fn logout(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match with_csrf(&s, &headers) {
        Ok((token, _)) => {
            lock(&s.sessions).close(&token);
            let mut response = (StatusCode::OK, "signed out").into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "vigil_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
                ),
            );
            response
        }
        Err(d) => d.into_response(),
    }
}

async fn session(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match signed_in(&s, &headers) {
        Ok((_, session)) => Json(serde_json::json!({
            "user": session.user,
            "role": session.role,
            "csrf": session.csrf,
        }))
        .into_response(),
        Err(d) => d.into_response(),
    }
}

async fn board(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(d) = signed_in(&s, &headers) {
        return d.into_response();
    }
    let now = (s.now)();
    let board = lock(&s.board);
    let cards: Vec<CardView> = board
        .cards(now, &s.settings)
        .iter()
        .map(|c| CardView::of(c, now))
        .collect();
    Json(serde_json::json!({ "cards": cards })).into_response()
}

/// An action as a page sends it: the patient and what to do; who, in which role and when
/// come from the session and the clock, never from the page.
#[derive(Deserialize)]
struct Requested {
    patient_id: String,
    #[serde(flatten)]
    kind: ActionKind,
}

async fn act(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(r): Json<Requested>,
) -> Response {
    let session = match with_csrf(&s, &headers) {
        Ok((_, session)) => session,
        Err(d) => return d.into_response(),
    };
    let Ok(action_id) = crate::auth::random_token() else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "cannot make an action id");
    };
    let encounter_id = lock(&s.board)
        .case(&r.patient_id)
        .and_then(|c| c.encounter_id.clone());
    let action = Action {
        action_id,
        patient_id: r.patient_id,
        encounter_id,
        kind: r.kind,
        user: session.user,
        role: session.role,
        at: (s.now)(),
    };
    if let Err(refusal) = lock(&s.board).check(&action, &s.settings) {
        return refuse(StatusCode::FORBIDDEN, &refusal.to_string());
    }
    match s.sink.publish(&action) {
        Ok(()) => (StatusCode::ACCEPTED, "accepted").into_response(),
        Err(e) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not recorded, try again: {e}"),
        ),
    }
}
