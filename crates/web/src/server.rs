//! The board's HTTP interface, without its Kafka clients: the pages, sign-in and
//! sign-out, the signed-in user's session, the board as JSON and as a live stream
//! (server-sent events), a patient's history, and actions. Every rule is enforced by the
//! server, whatever a page shows:
//!
//! - every route but sign-in and the static files needs a session cookie
//!   (`vigil_session`: `HttpOnly`, `SameSite=Strict`, `Path=/`, and `Secure` when the board
//!   is served over TLS); a trusted reverse proxy's identity headers open one (only from
//!   the configured proxy addresses);
//! - every state-changing request needs the session's CSRF token in `x-csrf-token`, and a
//!   request from another origin is refused;
//! - an action the user's role may not take, or a value outside the configured ones, is
//!   refused with 403 and the reason, and is never published;
//! - no request body is read before the session (and for actions the CSRF token) is
//!   checked, and every body is bounded in size and in the time it may take;
//! - sign-in is throttled with backoff per client and per name, 429 with `Retry-After`,
//!   and passwords are checked off the request threads ([`crate::auth`]).
//!
//! Patient identifiers travel only in request and response bodies, never in a URL (the
//! patient page is asked for by `POST /api/patient`). Accepted actions go to an
//! [`ActionSink`] (the action topic in the service); the board changes when the action
//! comes back from it, so every instance shows the same state. Whoever changes the board
//! calls [`Shared::changed`]; every open stream then sends the new board, at most four
//! times a second, rendered once for all of them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use vigil_board::{Action, ActionKind, Board, CardView, Entry, Fold, Role, Settings};
use vigil_score::Timestamp;

use crate::auth::{Busy, Checker, Session, Sessions, Throttle, User, Users};

/// Where accepted actions go: the action topic in the service (tests apply them).
pub trait ActionSink: Send + Sync {
    /// Publishes one action.
    ///
    /// # Errors
    ///
    /// When it could not be published; the user is told to try again.
    fn publish(&self, action: &Action) -> Result<(), String>;
}

/// Identity headers from a reverse proxy that signs users in (OIDC), trusted only from
/// the listed addresses.
#[derive(Clone, Debug, Default)]
pub struct Proxy {
    /// The proxies' addresses.
    pub trusted: Vec<IpAddr>,
    /// The header naming the user (lower case).
    pub user_header: String,
    /// The header listing the user's groups, comma-separated (lower case).
    pub groups_header: String,
    /// Which group gives which role.
    pub roles: BTreeMap<String, Role>,
}

/// The address a request came from (the TCP peer, whatever headers say), put in each
/// request's extensions by [`crate::serve`].
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// What the routes share.
pub struct Shared {
    /// The board, folded from the alert and action topics by the caller.
    pub fold: Mutex<Fold>,
    /// What was refused, reordered and throttled (`GET /metrics`).
    pub counters: crate::counters::Counters,
    /// The board's settings.
    pub settings: Settings,
    /// Who may sign in, and their password checks off the request threads.
    pub checker: Checker,
    /// Open sessions.
    pub sessions: Mutex<Sessions>,
    /// Sign-in throttling.
    pub throttle: Mutex<Throttle>,
    /// Where accepted actions go.
    pub sink: Arc<dyn ActionSink>,
    /// Served over TLS: the session cookie is `Secure`.
    pub secure_cookie: bool,
    /// The clock (the wall clock in service; fixed in tests).
    pub now: fn() -> Timestamp,
    /// A trusted reverse proxy's identity headers, if configured.
    pub proxy: Option<Proxy>,
    /// The only `Origin` state-changing requests may come from, if set; otherwise this
    /// server's scheme and the request's `Host`.
    pub public_origin: Option<String>,
    /// The time zone (IANA name) pages show times in.
    pub time_zone: String,
    /// Ward names as the hospital says them, by ward id.
    pub ward_names: BTreeMap<String, String>,
    /// Cancelled at shutdown: open streams end.
    pub closing: CancellationToken,
    /// Whether the alert and action topics can be reached (the board's consumer reports
    /// to it).
    pub feed: Arc<vigil_stream::watch::BrokerWatch>,
    /// Whether the consumer has been assigned the topics' partitions (false: the board
    /// is still connecting, and shows so).
    pub following: std::sync::atomic::AtomicBool,
    /// Bumped at every change of the board.
    changes: watch::Sender<u64>,
    /// The board's JSON, rendered once per change and minute for every stream: without
    /// and with the silent cards.
    rendered: Mutex<[Option<Rendered>; 2]>,
}

impl Shared {
    /// The routes' state, with no proxy and a board nobody has changed yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        board: Board,
        settings: Settings,
        users: Users,
        sessions: Sessions,
        throttle: Throttle,
        sink: Arc<dyn ActionSink>,
        secure_cookie: bool,
        now: fn() -> Timestamp,
    ) -> Shared {
        Shared {
            fold: Mutex::new(Fold::from_board(board, REORDER_HORIZON_MS)),
            counters: crate::counters::Counters::default(),
            settings,
            checker: Checker::new(users, CHECK_WORKERS, CHECK_QUEUE),
            sessions: Mutex::new(sessions),
            throttle: Mutex::new(throttle),
            sink,
            secure_cookie,
            now,
            proxy: None,
            public_origin: None,
            time_zone: "UTC".into(),
            ward_names: BTreeMap::new(),
            closing: CancellationToken::new(),
            feed: Arc::new(vigil_stream::watch::BrokerWatch::new("", None)),
            following: std::sync::atomic::AtomicBool::new(false),
            changes: watch::Sender::new(0),
            rendered: Mutex::new([None, None]),
        }
    }

    /// Whether the board is receiving the topics: `connecting` until the consumer has
    /// the topics' partitions, `unreachable` while no broker can be reached (the board
    /// may be out of date and says so), `live` otherwise.
    pub fn feed_state(&self) -> &'static str {
        if self.feed.is_down() {
            "unreachable"
        } else if self.following.load(std::sync::atomic::Ordering::Relaxed) {
            "live"
        } else {
            "connecting"
        }
    }

    /// Tells every open stream that the board changed.
    pub fn changed(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// The board at `now` as JSON (`{"feed": ..., "cards": [...]}`, and for a role that
    /// sees a run-in's silent alerts ([`sees_silent`]) `"silent": [...]`), rendered at
    /// most once per change and minute (waiting times are in minutes).
    pub fn board_json(&self, now: Timestamp, role: Role) -> Arc<str> {
        let silent = sees_silent(role);
        let feed = self.feed_state();
        let key = (
            *self.changes.borrow(),
            now.as_millis().div_euclid(60_000),
            feed,
        );
        let mut cached = lock(&self.rendered);
        let slot = &mut cached[usize::from(silent)];
        if let Some((k, json)) = slot.as_ref()
            && *k == key
        {
            return json.clone();
        }
        let fold = lock(&self.fold);
        let board = fold.board();
        let views = |cards: Vec<vigil_board::Card<'_>>| -> Vec<CardView> {
            cards.iter().map(|c| CardView::of(c, now)).collect()
        };
        let cards = views(board.cards(now, &self.settings));
        let mut value = serde_json::json!({ "feed": feed, "cards": cards });
        if silent {
            value["silent"] = serde_json::json!(views(board.silent_cards(now, &self.settings)));
        }
        drop(fold);
        let json: Arc<str> = value.to_string().into();
        *slot = Some((key, json.clone()));
        json
    }
}

/// Whether `role` sees a run-in's silent alerts: quality staff and administrators, who
/// measure the run-in; never the nurses it must not page.
pub fn sees_silent(role: Role) -> bool {
    matches!(role, Role::Quality | Role::Admin)
}

/// The board's JSON and what it was rendered for: the change count, the minute and the
/// feed's state.
type Rendered = ((u64, i64, &'static str), Arc<str>);

const COOKIE: &str = "vigil_session";

/// The cookie that remembers a browser signed in as a name (sent to `/login` only).
const DEVICE_COOKIE: &str = "vigil_device";

/// Password checks at once (each on a blocking thread).
const CHECK_WORKERS: usize = 2;

/// Password checks waiting at most; more sign-ins are answered 503 at once.
const CHECK_QUEUE: usize = 32;

/// The largest sign-in form.
const LOGIN_BODY_LIMIT: usize = 4 * 1024;

/// The largest action or patient request (a note of 2,000 characters fits many times).
const API_BODY_LIMIT: usize = 64 * 1024;

/// The longest a request body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How far back in message time the board puts an event that arrives out of order in its
/// place (a transaction committed late, one topic read ahead of the other).
pub const REORDER_HORIZON_MS: i64 = 10 * 60_000;

/// The shortest time between two updates of one stream.
const STREAM_MIN_INTERVAL: Duration = Duration::from_millis(250);

/// How often a stream is refreshed with no change (waiting times move on).
const STREAM_REFRESH: Duration = Duration::from_secs(30);

/// The routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(page_board))
        .route("/login", get(page_login).post(login))
        .route("/assets/{file}", get(asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/logout", post(logout))
        .route("/api/session", get(session))
        .route("/api/board", get(board))
        .route("/api/stream", get(stream))
        .route("/api/patient", post(patient))
        .route("/api/actions", post(act))
        .layer(axum::middleware::map_response_with_state(
            shared.clone(),
            security_headers,
        ))
        .with_state(shared)
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.counters.render(),
    )
        .into_response()
}

async fn security_headers(State(s): State<Arc<Shared>>, mut response: Response) -> Response {
    let h = response.headers_mut();
    if s.secure_cookie {
        // Served over TLS: browsers are to use nothing else for a year.
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The guard of `m`, also after a panic elsewhere poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, why.to_owned()).into_response()
}

/// The session cookie's token, if the request carries one.
fn token(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE)
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

/// Refuses a request whose `Origin` is not this board: `[board] public_origin` when set,
/// else this server's own scheme (https with TLS) and the request's `Host`, compared
/// whole (a page on `http://` cannot post to the board on `https://`).
fn same_origin(s: &Shared, headers: &HeaderMap) -> Result<(), Denied> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let refused = Denied(StatusCode::FORBIDDEN, "request from another origin refused");
    let origin = origin
        .to_str()
        .map_err(|_| Denied(StatusCode::FORBIDDEN, "unreadable Origin"))?;
    let expected = match &s.public_origin {
        Some(o) => o.clone(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .ok_or(Denied(
                    StatusCode::FORBIDDEN,
                    "request from another origin refused",
                ))?;
            let scheme = if s.secure_cookie { "https" } else { "http" };
            format!("{scheme}://{host}")
        }
    };
    if origin.eq_ignore_ascii_case(&expected) {
        Ok(())
    } else {
        Err(refused)
    }
}

/// The signed-in session whose CSRF token the request presents, or 401/403.
fn with_csrf(s: &Shared, headers: &HeaderMap) -> Result<(String, Session), Denied> {
    same_origin(s, headers)?;
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

/// The user a trusted proxy names, with the most capable role their groups give; `None`
/// without a proxy, from an address that is not a trusted proxy, or with no group that
/// gives a role.
fn proxy_user(s: &Shared, headers: &HeaderMap, ext: &Extensions) -> Option<User> {
    let proxy = s.proxy.as_ref()?;
    let peer = ext.get::<ConnectInfo<Peer>>()?.0.0.ip();
    if !proxy.trusted.contains(&peer) {
        return None;
    }
    // One identity, or none: a second user or groups header means a client's header got
    // past the proxy, which is to strip them (SECURITY.md).
    let one = |name: &str| -> Option<Option<&HeaderValue>> {
        let mut all = headers.get_all(name).iter();
        let first = all.next();
        if all.next().is_some() {
            tracing::warn!(
                header = name,
                "Board: a proxy request carries an identity header twice; not signed in \
                 (the proxy must remove identity headers clients send)"
            );
            return None;
        }
        Some(first)
    };
    let name = one(&proxy.user_header)??.to_str().ok()?.trim();
    let groups = one(&proxy.groups_header)?;
    if name.is_empty() || name.len() > 128 {
        return None;
    }
    let rank = |r: &Role| match r {
        Role::Quality => 0,
        Role::Nurse => 1,
        Role::ChargeNurse => 2,
        Role::Admin => 3,
        Role::System => -1,
    };
    let role = groups
        .and_then(|g| g.to_str().ok())
        .unwrap_or("")
        .split(',')
        .filter_map(|g| proxy.roles.get(g.trim()))
        .filter(|r| **r != Role::System)
        .max_by_key(|r| rank(r))?;
    Some(User {
        name: name.to_owned(),
        role: *role,
        password_hash: String::new(),
    })
}

/// The session of the request, or one opened for the user a trusted proxy names (with
/// its cookie to set), or 401.
fn session_or_proxy(
    s: &Shared,
    headers: &HeaderMap,
    ext: &Extensions,
) -> Result<(Session, Option<HeaderValue>), Denied> {
    let proxied = proxy_user(s, headers, ext);
    if let Ok((token, session)) = signed_in(s, headers) {
        match &proxied {
            Some(u) if u.name != session.user || u.role != session.role => {
                // The proxy now names someone else: their session, not this one.
                lock(&s.sessions).close(&token);
            }
            _ => return Ok((session, None)),
        }
    }
    let user = proxied.ok_or(Denied(StatusCode::UNAUTHORIZED, "sign in first"))?;
    let now = (s.now)();
    let mut sessions = lock(&s.sessions);
    let token = sessions
        .open(&user, now)
        .map_err(|_| Denied(StatusCode::SERVICE_UNAVAILABLE, "cannot open a session"))?;
    let session = sessions.get(&token, now).cloned().ok_or(Denied(
        StatusCode::SERVICE_UNAVAILABLE,
        "cannot open a session",
    ))?;
    Ok((session, Some(cookie(s, &token))))
}

fn cookie(s: &Shared, token: &str) -> HeaderValue {
    let secure = if s.secure_cookie { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}"
    ))
    .unwrap_or(HeaderValue::from_static("vigil_session=; Max-Age=0"))
}

#[derive(Deserialize)]
struct Credentials {
    user: String,
    password: String,
}

/// The request's body, once whoever sent it has been checked: at most `limit` bytes,
/// arriving within [`BODY_TIMEOUT`].
async fn body_of(body: axum::body::Body, limit: usize) -> Result<axum::body::Bytes, Denied> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(Denied(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large or cut short",
        )),
        Err(_) => Err(Denied(
            StatusCode::REQUEST_TIMEOUT,
            "request body not sent in time",
        )),
    }
}

/// A JSON request body, read only after the sender was checked.
async fn json_of<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<T, Response> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json",
        ));
    }
    let bytes = body_of(body, API_BODY_LIMIT)
        .await
        .map_err(IntoResponse::into_response)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| refuse(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()))
}

/// A cookie's value, if the request carries it.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
                .map(str::to_owned)
        })
}

fn too_soon(wait: vigil_score::Span, why: &str) -> Response {
    let seconds = (wait.as_millis() + 999) / 1000;
    let mut r = refuse(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("{why}; try again in {seconds} s"),
    );
    if let Ok(v) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Sign-in: throttled per client and name ([`Throttle`]) before any password is checked,
/// the check itself queued off the request threads ([`Checker`]).
async fn login(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    ext: Extensions,
    body: axum::body::Body,
) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    if let Err(d) = same_origin(&s, &headers) {
        return d.into_response();
    }
    let bytes = match body_of(body, LOGIN_BODY_LIMIT).await {
        Ok(b) => b,
        Err(d) => return d.into_response(),
    };
    let Ok(c) = serde_urlencoded::from_bytes::<Credentials>(&bytes) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected a form with user and password",
        );
    };
    // No user has a longer name: refused before anything is recorded or hashed.
    if c.user.len() > crate::auth::MAX_NAME_BYTES {
        return refuse(StatusCode::UNAUTHORIZED, "wrong user name or password");
    }
    let now = (s.now)();
    let client = ext
        .get::<ConnectInfo<Peer>>()
        .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| c.0.0.ip());
    let device = cookie_value(&headers, DEVICE_COOKIE);
    let begun = lock(&s.throttle).begin(&c.user, client, device.as_deref(), now);
    let attempt = match begun {
        Ok(a) => a,
        Err(wait) => {
            s.counters.logins_throttled.fetch_add(1, Relaxed);
            return too_soon(wait, "too many failed sign-ins");
        }
    };
    let user = match s.checker.verify(c.user, c.password).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            s.counters.logins_failed.fetch_add(1, Relaxed);
            return refuse(StatusCode::UNAUTHORIZED, "wrong user name or password");
        }
        Err(Busy) => {
            lock(&s.throttle).cancel(attempt);
            s.counters.logins_busy.fetch_add(1, Relaxed);
            let mut r = refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many sign-ins at once; try again in a second",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
    };
    let device = lock(&s.throttle).succeeded(attempt, now);
    let opened = lock(&s.sessions).open(&user, now);
    let Ok(token) = opened else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "cannot open a session");
    };
    let mut response = (StatusCode::SEE_OTHER, "signed in").into_response();
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, cookie(&s, &token));
    if let Ok(device) = device {
        let secure = if s.secure_cookie { "; Secure" } else { "" };
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{DEVICE_COOKIE}={device}; HttpOnly; SameSite=Strict; Path=/login; \
             Max-Age=31536000{secure}"
        )) {
            h.append(header::SET_COOKIE, v);
        }
    }
    h.insert(header::LOCATION, HeaderValue::from_static("/"));
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

fn with_cookie(mut response: Response, set: Option<HeaderValue>) -> Response {
    if let Some(v) = set {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn session(State(s): State<Arc<Shared>>, headers: HeaderMap, ext: Extensions) -> Response {
    match session_or_proxy(&s, &headers, &ext) {
        Ok((session, set)) => {
            let may: Vec<&str> = ["accept", "dismiss", "watch", "stop", "escalate", "note"]
                .into_iter()
                .filter(|k| session.role.may(&kind_named(k)))
                .collect();
            with_cookie(
                Json(serde_json::json!({
                    "user": session.user,
                    "role": session.role,
                    "csrf": session.csrf,
                    "dismiss_reasons": s.settings.dismiss_reasons,
                    "max_watch_minutes": s.settings.max_watch_minutes,
                    "time_zone": s.time_zone,
                    "ward_names": s.ward_names,
                    "may": may,
                }))
                .into_response(),
                set,
            )
        }
        Err(d) => d.into_response(),
    }
}

/// An action of the kind `name`, to ask what a role may do.
fn kind_named(name: &str) -> ActionKind {
    match name {
        "accept" => ActionKind::Accept,
        "dismiss" => ActionKind::Dismiss {
            reason: String::new(),
        },
        "watch" => ActionKind::Watch { minutes: 1 },
        "stop" => ActionKind::Stop,
        "escalate" => ActionKind::Escalate,
        _ => ActionKind::Note {
            text: String::new(),
        },
    }
}

async fn board(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let role = match signed_in(&s, &headers) {
        Ok((_, session)) => session.role,
        Err(d) => return d.into_response(),
    };
    let json = s.board_json((s.now)(), role);
    (
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
        .into_response()
}

/// The live board: a `board` event with the whole board at once, then after every change
/// (at most four a second) and every 30 s, until the session ends or the server stops.
async fn stream(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let (token, role) = match signed_in(&s, &headers) {
        Ok((token, session)) => (token, session.role),
        Err(d) => return d.into_response(),
    };
    let changes = s.changes.subscribe();
    let state = (s, token, changes, None::<tokio::time::Instant>);
    let events =
        futures_util::stream::unfold(state, move |(s, token, mut changes, sent)| async move {
            if let Some(sent) = sent {
                // At most one update per interval: changes meanwhile are sent together, as
                // the board after the last of them.
                tokio::select! {
                    () = s.closing.cancelled() => return None,
                    () = tokio::time::sleep_until(sent + STREAM_MIN_INTERVAL) => {}
                }
                tokio::select! {
                    () = s.closing.cancelled() => return None,
                    r = changes.changed() => r.ok()?,
                    () = tokio::time::sleep(STREAM_REFRESH) => {}
                }
            }
            // A session that ended (signed out, expired) ends its stream.
            lock(&s.sessions).get(&token, (s.now)())?;
            changes.borrow_and_update();
            let json = s.board_json((s.now)(), role);
            let event = Event::default().event("board").data(json.as_ref());
            let sent = Some(tokio::time::Instant::now());
            Some((
                Ok::<_, std::convert::Infallible>(event),
                (s, token, changes, sent),
            ))
        });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[derive(Deserialize)]
struct PatientAsked {
    patient_id: String,
}

/// A patient's page: where they are, their case, and every alert event and action of the
/// history the board keeps (newest last).
async fn patient(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let role = match signed_in(&s, &headers) {
        Ok((_, session)) => session.role,
        Err(d) => return d.into_response(),
    };
    let asked: PatientAsked = match json_of(&headers, body).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let fold = lock(&s.fold);
    let board = fold.board();
    // A patient with only silent alerts is there only for those who see the run-in.
    let live = board.case(&asked.patient_id);
    let silent = board
        .silent_case(&asked.patient_id)
        .filter(|_| sees_silent(role));
    let Some(case) = live.or(silent) else {
        return refuse(StatusCode::NOT_FOUND, "no such patient on the board");
    };
    let history: Vec<serde_json::Value> = case
        .history
        .iter()
        .map(|entry| match entry {
            Entry::Alert { event, suppressed } => serde_json::json!({
                "type": "alert",
                "at": event.emitted_at.to_string(),
                "rule": event.rule,
                "kind": event.kind,
                "level": event.level,
                "score": event.score,
                "message": event.message,
                "criteria": event.criteria,
                "overdue": event.overdue,
                "suppressed": suppressed,
                "silent": event.silent,
            }),
            Entry::Action(a) => {
                // The action event as on the topic (its `at` already RFC 3339).
                let mut v = serde_json::to_value(a).unwrap_or_default();
                v["type"] = "action".into();
                v
            }
        })
        .collect();
    Json(serde_json::json!({
        "patient_id": case.patient_id,
        "encounter_id": case.encounter_id,
        "location": case.location,
        "level": case.level,
        "owner": case.owner,
        "dismissed": case.dismissed,
        "stopped": case.stopped,
        "tier": case.tier,
        "history": history,
    }))
    .into_response()
}

/// An action as a page sends it: the patient and what to do; who, in which role and when
/// come from the session and the clock, never from the page.
#[derive(Deserialize)]
struct Requested {
    patient_id: String,
    #[serde(flatten)]
    kind: ActionKind,
}

async fn act(State(s): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Body) -> Response {
    let session = match with_csrf(&s, &headers) {
        Ok((_, session)) => session,
        Err(d) => return d.into_response(),
    };
    let r: Requested = match json_of(&headers, body).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Ok(action_id) = crate::auth::random_token() else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "cannot make an action id");
    };
    let encounter_id = lock(&s.fold)
        .board()
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
    if let Err(refusal) = lock(&s.fold).board().check(&action, &s.settings) {
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

async fn page_board(State(s): State<Arc<Shared>>, headers: HeaderMap, ext: Extensions) -> Response {
    match session_or_proxy(&s, &headers, &ext) {
        Ok((_, set)) => with_cookie(html(crate::pages::BOARD_HTML), set),
        Err(_) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/login"));
            r
        }
    }
}

async fn page_login() -> Response {
    html(crate::pages::LOGIN_HTML)
}

fn html(text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], text).into_response()
}

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    match crate::pages::asset(&file) {
        Some((kind, body)) => ([(header::CONTENT_TYPE, kind)], body).into_response(),
        None => refuse(StatusCode::NOT_FOUND, "no such file"),
    }
}
