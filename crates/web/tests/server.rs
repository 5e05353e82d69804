//! The board's HTTP interface against users who may not do what they try: no session, no
//! or a wrong CSRF token, a role without the right, guessing passwords. Each request goes
//! over TCP to the real server.

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use vigil_board::{Action, AlertEvent, Board, Event, EventKind, Role};
use vigil_web::auth::{User, Users, hash_password};
use vigil_web::serve::{Limits, serve};
use vigil_web::server::{ActionSink, Proxy, Shared, router};

#[derive(Default)]
struct Recorded(Mutex<Vec<Action>>);

impl ActionSink for Recorded {
    fn publish(&self, action: &Action) -> Result<(), String> {
        self.0
            .lock()
            .map_err(|e| e.to_string())?
            .push(action.clone());
        Ok(())
    }
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    s.write_all(text.as_bytes()).expect("sent");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("a reply");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    Reply {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        headers: head.to_owned(),
        body: body.to_owned(),
    }
}

async fn serving(secure_cookie: bool) -> (u16, Arc<Shared>, Arc<Recorded>) {
    serve_with(secure_cookie, None).await
}

async fn serve_with(
    secure_cookie: bool,
    proxy: Option<Proxy>,
) -> (u16, Arc<Shared>, Arc<Recorded>) {
    serve_full(secure_cookie, proxy, Limits::new(64), None).await
}

async fn serve_full(
    secure_cookie: bool,
    proxy: Option<Proxy>,
    limits: Limits,
    public_origin: Option<&str>,
) -> (u16, Arc<Shared>, Arc<Recorded>) {
    let user = |name: &str, role| User {
        name: name.into(),
        role,
        password_hash: hash_password(&format!("{name}-pw")).expect("a hash"),
    };
    let mut board = Board::new();
    let event: AlertEvent = serde_json::from_value(serde_json::json!({
        "alert_id": "a1", "decision_id": "d1", "patient_id": "P1", "encounter_id": "E1",
        "location": "ward-7/bed-1", "rule": "news2", "kind": "raised", "level": "urgent",
        "score": 6, "message": "NEWS2 6 (medium)", "first_raised_at": "2026-11-23T10:00:00Z",
        "emitted_at": "2026-11-23T10:00:00Z"}))
    .expect("an event");
    assert_eq!(event.kind, EventKind::Raised);
    board.apply_alert(event);
    // A run-in's silent alert about another patient: for quality staff only.
    let silent: AlertEvent = serde_json::from_value(serde_json::json!({
        "alert_id": "s1", "decision_id": "ds1", "patient_id": "P9", "encounter_id": "E9",
        "location": "ward-3/bed-2", "rule": "risk", "kind": "raised", "level": "advisory",
        "score": 4, "message": "Vigil Risk 4 %", "first_raised_at": "2026-11-23T10:00:00Z",
        "emitted_at": "2026-11-23T10:00:00Z", "silent": true}))
    .expect("an event");
    board.apply_alert(silent);
    let sink = Arc::new(Recorded::default());
    let users = Users::new(vec![
        user("alice", Role::Nurse),
        user("carol", Role::ChargeNurse),
        user("quinn", Role::Quality),
    ])
    .expect("users");
    let mut shared = common::shared(board, users, sink.clone(), secure_cookie);
    let own = Arc::get_mut(&mut shared).expect("not shared yet");
    own.proxy = proxy;
    own.public_origin = public_origin.map(str::to_owned);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = listener.local_addr().expect("bound").port();
    let app = router(shared.clone());
    let served = shared.clone();
    tokio::spawn(async move {
        serve(listener, None, app, served, limits, std::future::pending()).await;
    });
    (port, shared, sink)
}

/// Signs in; returns the cookie header and the CSRF token.
fn sign_in(port: u16, user: &str) -> (String, String) {
    let r = request(
        port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("user={user}&password={user}-pw"),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let s = request(port, "GET", "/api/session", &[("Cookie", &cookie)], "");
    let v: serde_json::Value = serde_json::from_str(&s.body).expect("JSON");
    (cookie, v["csrf"].as_str().expect("a token").to_owned())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_sets_a_strict_http_only_cookie_and_wrong_passwords_are_refused() {
    let (port, _, _) = serving(true).await;
    blocking(move || {
        let wrong = request(
            port,
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            "user=alice&password=guess",
        );
        assert_eq!(wrong.status, 401);
        assert!(!wrong.headers.to_lowercase().contains("set-cookie"));
        let r = request(
            port,
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            "user=alice&password=alice-pw",
        );
        assert_eq!(r.status, 303);
        let cookie = r
            .headers
            .lines()
            .find(|l| l.starts_with("set-cookie: "))
            .expect("a cookie");
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
            assert!(cookie.contains(flag), "{flag} in {cookie}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_needs_a_session_and_guessing_is_stopped() {
    let (port, _, _) = serving(false).await;
    blocking(move || {
        assert_eq!(request(port, "GET", "/api/board", &[], "").status, 401);
        assert_eq!(
            request(
                port,
                "GET",
                "/api/board",
                &[("Cookie", "vigil_session=forged")],
                ""
            )
            .status,
            401
        );
        let (cookie, _) = sign_in(port, "quinn");
        let board = request(port, "GET", "/api/board", &[("Cookie", &cookie)], "");
        assert_eq!(board.status, 200);
        let v: serde_json::Value = serde_json::from_str(&board.body).expect("JSON");
        assert_eq!(v["cards"][0]["patient_id"], "P1");
        assert_eq!(v["cards"][0]["level"], "urgent");
        let form = [("Content-Type", "application/x-www-form-urlencoded")];
        for _ in 0..5 {
            assert_eq!(
                request(port, "POST", "/login", &form, "user=carol&password=guess").status,
                401
            );
        }
        // Past the limit the next attempt must wait (1 s, then longer): even the right
        // password is not checked meanwhile.
        assert_eq!(
            request(
                port,
                "POST",
                "/login",
                &form,
                "user=carol&password=carol-pw"
            )
            .status,
            429
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_csrf_token_and_a_role_that_may_take_them() {
    let (port, shared, sink) = serving(false).await;
    blocking(move || {
        let (nurse, csrf) = sign_in(port, "alice");
        let json = [("Content-Type", "application/json")];
        let stop = r#"{"patient_id": "P1", "kind": "stop"}"#;
        // No token, a wrong token: refused.
        let r = request(
            port,
            "POST",
            "/api/actions",
            &[json[0], ("Cookie", &nurse)],
            stop,
        );
        assert_eq!(r.status, 403);
        assert!(r.body.contains("x-csrf-token"), "{}", r.body);
        let r = request(
            port,
            "POST",
            "/api/actions",
            &[json[0], ("Cookie", &nurse), ("x-csrf-token", "0000")],
            stop,
        );
        assert_eq!(r.status, 403);
        // The right token, but a nurse may not stop alerts: refused by the server.
        let r = request(
            port,
            "POST",
            "/api/actions",
            &[json[0], ("Cookie", &nurse), ("x-csrf-token", &csrf)],
            stop,
        );
        assert_eq!(r.status, 403);
        assert_eq!(r.body, "a user in the role Nurse may not stop");
        // Quality staff may not even add a note.
        let (quality, qcsrf) = sign_in(port, "quinn");
        let note = r#"{"patient_id": "P1", "kind": "note", "text": "seen"}"#;
        let r = request(
            port,
            "POST",
            "/api/actions",
            &[json[0], ("Cookie", &quality), ("x-csrf-token", &qcsrf)],
            note,
        );
        assert_eq!(r.status, 403);
        // A dismissal reason outside the list names the allowed ones.
        let bad = r#"{"patient_id": "P1", "kind": "dismiss", "reason": "bored"}"#;
        let r = request(
            port,
            "POST",
            "/api/actions",
            &[json[0], ("Cookie", &nurse), ("x-csrf-token", &csrf)],
            bad,
        );
        assert_eq!(r.status, 403);
        assert!(r.body.contains("expected one of not sepsis"), "{}", r.body);
        assert!(
            sink.0.lock().expect("recorded").is_empty(),
            "nothing refused was published"
        );
        // Accept: published with the session's user and role, whatever the body claims.
        let accept =
            r#"{"patient_id": "P1", "kind": "accept", "user": "mallory", "role": "admin"}"#;
        let r = request(
            port,
            "POST",
            "/api/actions",
            &[json[0], ("Cookie", &nurse), ("x-csrf-token", &csrf)],
            accept,
        );
        assert_eq!(r.status, 202, "{}", r.body);
        let published = sink.0.lock().expect("recorded").clone();
        assert_eq!(published.len(), 1);
        assert_eq!(
            (published[0].user.as_str(), published[0].role),
            ("alice", Role::Nurse)
        );
        assert_eq!(published[0].encounter_id.as_deref(), Some("E1"));
        // When it comes back from the topic, the board shows the owner.
        let folded = common::fold_in(&shared, Event::Action(published[0].clone()));
        assert!(folded.outcome.is_ok(), "{folded:?}");
        let board = request(port, "GET", "/api/board", &[("Cookie", &nurse)], "");
        assert!(board.body.contains(r#""owner":"alice""#), "{}", board.body);
        // Signing out needs the token too, and ends the session.
        assert_eq!(
            request(port, "POST", "/logout", &[("Cookie", &nurse)], "").status,
            403
        );
        assert_eq!(
            request(
                port,
                "POST",
                "/logout",
                &[("Cookie", &nurse), ("x-csrf-token", &csrf)],
                ""
            )
            .status,
            200
        );
        assert_eq!(
            request(port, "GET", "/api/board", &[("Cookie", &nurse)], "").status,
            401
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_and_carry_a_strict_content_security_policy() {
    let (port, _, _) = serving(false).await;
    blocking(move || {
        let r = request(port, "GET", "/", &[], "");
        assert_eq!(r.status, 303);
        assert!(r.headers.contains("location: /login"), "{}", r.headers);
        let login = request(port, "GET", "/login", &[], "");
        assert_eq!(login.status, 200);
        assert!(login.body.contains(r#"<form id="login""#));
        for h in [
            "content-security-policy: default-src 'self'; script-src 'self'",
            "x-frame-options: DENY",
            "x-content-type-options: nosniff",
            "cache-control: no-store",
        ] {
            assert!(login.headers.contains(h), "{h} in {}", login.headers);
        }
        let (cookie, _) = sign_in(port, "alice");
        let page = request(port, "GET", "/", &[("Cookie", &cookie)], "");
        assert_eq!(page.status, 200);
        assert!(page.body.contains("/assets/board.js"));
        // Plain HTTP (a TLS proxy in front, or a local try) sets no HSTS.
        assert!(!page.headers.contains("strict-transport-security"));
        let js = request(port, "GET", "/assets/board.js", &[], "");
        assert_eq!(js.status, 200);
        assert!(js.headers.contains("content-type: text/javascript"));
        assert!(
            !js.body.contains("innerHTML"),
            "feed text is set as text only"
        );
        assert_eq!(
            request(port, "GET", "/assets/../Cargo.toml", &[], "").status,
            404
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_from_another_origin_is_refused() {
    let (port, _, sink) = serving(false).await;
    blocking(move || {
        let (cookie, csrf) = sign_in(port, "alice");
        let accept = r#"{"patient_id": "P1", "kind": "accept"}"#;
        let headers = |origin: &'static str| {
            [
                ("Content-Type", "application/json"),
                ("Cookie", cookie.clone().leak()),
                ("x-csrf-token", csrf.clone().leak()),
                ("Origin", origin),
            ]
        };
        let r = request(
            port,
            "POST",
            "/api/actions",
            &headers("http://evil.example"),
            accept,
        );
        assert_eq!(r.status, 403);
        assert_eq!(r.body, "request from another origin refused");
        let r = request(
            port,
            "POST",
            "/api/actions",
            &headers("http://localhost"),
            accept,
        );
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(sink.0.lock().expect("recorded").len(), 1);
        let form = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://evil.example"),
        ];
        assert_eq!(
            request(
                port,
                "POST",
                "/login",
                &form,
                "user=alice&password=alice-pw"
            )
            .status,
            403
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_page_is_asked_for_in_the_body_and_needs_a_session() {
    let (port, _, _) = serving(false).await;
    blocking(move || {
        let json = ("Content-Type", "application/json");
        let ask = r#"{"patient_id": "P1"}"#;
        assert_eq!(
            request(port, "POST", "/api/patient", &[json], ask).status,
            401
        );
        let (cookie, _) = sign_in(port, "quinn");
        let r = request(
            port,
            "POST",
            "/api/patient",
            &[json, ("Cookie", &cookie)],
            ask,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(v["location"], "ward-7/bed-1");
        assert_eq!(v["history"][0]["type"], "alert");
        assert_eq!(v["history"][0]["message"], "NEWS2 6 (medium)");
        assert_eq!(v["history"][0]["suppressed"], false);
        let other = r#"{"patient_id": "P2"}"#;
        assert_eq!(
            request(
                port,
                "POST",
                "/api/patient",
                &[json, ("Cookie", &cookie)],
                other
            )
            .status,
            404
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_sends_the_board_at_once_and_again_after_a_change() {
    use std::io::BufRead;
    let (port, shared, _) = serving(false).await;
    let (cookie, _) = blocking(move || sign_in(port, "alice")).await;
    assert_eq!(
        blocking(move || request(port, "GET", "/api/stream", &[], "").status).await,
        401
    );
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
        write!(
            s,
            "GET /api/stream HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n\r\n"
        )
        .expect("sent");
        let mut lines = std::io::BufReader::new(s).lines();
        let mut next_board = || loop {
            let line = lines.next().expect("a line").expect("text");
            if let Some(data) = line.strip_prefix("data: ") {
                return data.to_owned();
            }
        };
        let _ = first_tx.send(next_board());
        next_board()
    });
    // The board as it is, at once.
    let first = first_rx.await.expect("the first board");
    assert!(first.contains(r#""patient_id":"P1""#), "{first}");
    // The alert resolves: the stream sends the board without it.
    let event: AlertEvent = serde_json::from_value(serde_json::json!({
        "alert_id": "a2", "decision_id": "d2", "patient_id": "P1", "encounter_id": "E1",
        "location": "ward-7/bed-1", "rule": "news2", "kind": "resolved", "level": "urgent",
        "message": "NEWS2 2", "first_raised_at": "2026-11-23T10:00:00Z",
        "emitted_at": "2026-11-23T10:05:00Z"}))
    .expect("an event");
    common::fold_in(&shared, Event::Alert(Box::new(event)));
    let second = tokio::time::timeout(std::time::Duration::from_secs(10), reader)
        .await
        .expect("the change is sent")
        .expect("read");
    let second: serde_json::Value = serde_json::from_str(&second).expect("JSON");
    assert_eq!(second["cards"], serde_json::json!([]));
    // Nothing follows the topics in this test: the board says it is not live.
    assert_eq!(second["feed"], "connecting");
}

fn proxy() -> Proxy {
    Proxy {
        trusted: vec!["127.0.0.1".parse().expect("an address")],
        user_header: "x-forwarded-user".into(),
        groups_header: "x-forwarded-groups".into(),
        roles: [
            ("rrt".to_owned(), Role::Nurse),
            ("charge".to_owned(), Role::ChargeNurse),
        ]
        .into_iter()
        .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_signs_users_in_with_the_most_capable_role_of_their_groups() {
    let (port, _, _) = serve_with(false, Some(proxy())).await;
    blocking(move || {
        let headers = [
            ("X-Forwarded-User", "dana"),
            ("X-Forwarded-Groups", "staff, rrt,charge"),
        ];
        let r = request(port, "GET", "/api/session", &headers, "");
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(
            (v["user"].as_str(), v["role"].as_str()),
            (Some("dana"), Some("charge_nurse"))
        );
        assert!(
            r.headers.contains("set-cookie: vigil_session="),
            "{}",
            r.headers
        );
        // A group that gives no role: no session.
        let none = [
            ("X-Forwarded-User", "eve"),
            ("X-Forwarded-Groups", "visitors"),
        ];
        assert_eq!(request(port, "GET", "/api/session", &none, "").status, 401);
        assert_eq!(request(port, "GET", "/", &none, "").status, 303);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_from_an_address_that_is_not_a_trusted_proxy_are_ignored() {
    let mut p = proxy();
    p.trusted = vec!["10.1.2.3".parse().expect("an address")];
    let (port, _, _) = serve_with(false, Some(p)).await;
    blocking(move || {
        let forged = [
            ("X-Forwarded-User", "mallory"),
            ("X-Forwarded-Groups", "charge"),
        ];
        assert_eq!(
            request(port, "GET", "/api/session", &forged, "").status,
            401
        );
        assert_eq!(request(port, "GET", "/", &forged, "").status, 303);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_alerts_reach_quality_staff_and_never_a_nurse() {
    let (port, _, _) = serving(false).await;
    blocking(move || {
        let json = ("Content-Type", "application/json");
        let board = |user: &str| -> serde_json::Value {
            let (cookie, _) = sign_in(port, user);
            let r = request(port, "GET", "/api/board", &[("Cookie", &cookie)], "");
            assert_eq!(r.status, 200, "{}", r.body);
            serde_json::from_str(&r.body).expect("JSON")
        };
        // The nurse's board: the live card only, and no trace of the silent one.
        let nurse = board("alice");
        assert_eq!(nurse["cards"].as_array().map(Vec::len), Some(1));
        assert_eq!(nurse["cards"][0]["patient_id"], "P1");
        assert!(nurse.get("silent").is_none(), "{nurse}");
        assert!(!nurse.to_string().contains("P9"), "{nurse}");
        // Quality staff: the same live cards, and the run-in's silent ones.
        let quality = board("quinn");
        assert_eq!(quality["cards"], nurse["cards"]);
        assert_eq!(quality["silent"][0]["patient_id"], "P9");
        assert_eq!(quality["silent"][0]["alerts"][0]["rule"], "risk");
        // A silent-only patient's page: quality staff see it, a nurse does not.
        let ask = r#"{"patient_id": "P9"}"#;
        let page = |user: &str| {
            let (cookie, _) = sign_in(port, user);
            request(
                port,
                "POST",
                "/api/patient",
                &[json, ("Cookie", &cookie)],
                ask,
            )
        };
        assert_eq!(page("alice").status, 404);
        let r = page("quinn");
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(v["history"][0]["silent"], true);
    })
    .await;
}

/// Issue 31: an unauthenticated POST got 400, 415 or 422 messages listing the action
/// kinds: the body was read (and parsed) before the session was checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_body_is_read_before_the_session_is_checked() {
    let (port, _, sink) = serving(false).await;
    blocking(move || {
        for (path, content_type, body) in [
            (
                "/api/actions",
                "application/json",
                r#"{"patient_id":"P1","kind":"explode"}"#,
            ),
            ("/api/actions", "text/plain", "not json"),
            ("/api/actions", "application/json", "{"),
            ("/api/patient", "application/json", "{"),
            ("/api/patient", "text/plain", "x"),
        ] {
            let r = request(port, "POST", path, &[("Content-Type", content_type)], body);
            assert_eq!((path, r.status), (path, 401), "{}", r.body);
            assert!(!r.body.contains("accept"), "{}", r.body);
        }
        // Signed in, the same bodies get their reasons.
        let (cookie, csrf) = sign_in(port, "alice");
        let r = request(
            port,
            "POST",
            "/api/actions",
            &[
                ("Content-Type", "text/plain"),
                ("Cookie", &cookie),
                ("x-csrf-token", &csrf),
            ],
            "not json",
        );
        assert_eq!(r.status, 415, "{}", r.body);
        let big = format!(r#"{{"patient_id":"{}"}}"#, "x".repeat(100_000));
        let r = request(
            port,
            "POST",
            "/api/patient",
            &[("Content-Type", "application/json"), ("Cookie", &cookie)],
            &big,
        );
        assert_eq!(r.status, 413, "{}", r.body);
    })
    .await;
    assert!(sink.0.lock().expect("recorded").is_empty());
}

/// Issue 31: five wrong passwords locked a name for 15 minutes for everyone, and 40
/// parallel guesses got 6 password checks, not 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_get_the_free_checks_only_and_the_nurse_still_signs_in() {
    let (port, shared, _) = serving(false).await;
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    // Alice has signed in from her browser before: it holds a device cookie.
    let device = blocking(move || {
        let r = request(
            port,
            "POST",
            "/login",
            &form,
            "user=alice&password=alice-pw",
        );
        assert_eq!(r.status, 303);
        r.headers
            .lines()
            .filter_map(|l| l.strip_prefix("set-cookie: "))
            .find(|c| c.starts_with("vigil_device="))
            .and_then(|c| c.split(';').next())
            .expect("a device cookie")
            .to_owned()
    })
    .await;
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            std::thread::spawn(move || {
                request(
                    port,
                    "POST",
                    "/login",
                    &form,
                    &format!("user=alice&password=guess{i}"),
                )
                .status
            })
        })
        .collect();
    let mut statuses: Vec<u16> = guesses
        .into_iter()
        .map(|g| g.join().expect("a reply"))
        .collect();
    statuses.sort_unstable();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, throttled), (5, 35), "{statuses:?}");
    let metrics = shared.counters.render();
    assert!(
        metrics.contains("vigil_board_logins_total{outcome=\"failed\"} 5"),
        "{metrics}"
    );
    blocking(move || {
        // From this address and without her browser's cookie the name must wait ...
        let r = request(
            port,
            "POST",
            "/login",
            &form,
            "user=alice&password=alice-pw",
        );
        assert_eq!(r.status, 429, "{}", r.body);
        assert!(
            r.headers.to_lowercase().contains("retry-after: "),
            "{}",
            r.headers
        );
        // ... but from her own browser she signs in at once.
        let mine = [form[0], ("Cookie", device.as_str())];
        let r = request(
            port,
            "POST",
            "/login",
            &mine,
            "user=alice&password=alice-pw",
        );
        assert_eq!(r.status, 303, "{}", r.body);
    })
    .await;
}

/// Issue 31: the Origin check compared the host only, so a page on http:// could post to
/// the board served on https://; with `[board] public_origin`, only that origin passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_check_compares_scheme_and_host() {
    let (port, shared, _) = serving(false).await;
    let form = |origin: &'static str| {
        [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", origin),
        ]
    };
    let login = move |port, origin| {
        request(
            port,
            "POST",
            "/login",
            &form(origin),
            "user=alice&password=alice-pw",
        )
        .status
    };
    blocking(move || {
        let login = |origin| login(port, origin);
        assert_eq!(login("https://localhost"), 403, "another scheme");
        assert_eq!(login("http://localhost:81"), 403, "another port");
        assert_eq!(login("http://localhost"), 303);
    })
    .await;
    // Behind a proxy serving https://board.example.org, only that origin passes.
    let (port, _, _) = serve_full(
        false,
        None,
        Limits::new(64),
        Some("https://board.example.org"),
    )
    .await;
    blocking(move || {
        let login = |origin| login(port, origin);
        assert_eq!(
            login("http://localhost"),
            403,
            "the Host the proxy forwards"
        );
        assert_eq!(login("http://board.example.org"), 403, "another scheme");
        assert_eq!(login("https://board.example.org"), 303);
    })
    .await;
    let _ = shared;
}

/// Issue 31 (smaller holes): with two X-Forwarded-User headers the first won.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_identity_headers_sign_nobody_in() {
    let (port, _, _) = serve_with(false, Some(proxy())).await;
    blocking(move || {
        let twice = [
            ("X-Forwarded-User", "mallory"),
            ("X-Forwarded-User", "dana"),
            ("X-Forwarded-Groups", "charge"),
        ];
        assert_eq!(request(port, "GET", "/api/session", &twice, "").status, 401);
        let groups_twice = [
            ("X-Forwarded-User", "dana"),
            ("X-Forwarded-Groups", "rrt"),
            ("X-Forwarded-Groups", "charge"),
        ];
        assert_eq!(
            request(port, "GET", "/api/session", &groups_twice, "").status,
            401
        );
        let once = [("X-Forwarded-User", "dana"), ("X-Forwarded-Groups", "rrt")];
        assert_eq!(request(port, "GET", "/api/session", &once, "").status, 200);
    })
    .await;
}

/// Issue 31: an incomplete request stayed open 150 s, and 170 slow or idle connections
/// were all held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_and_idle_connections_are_closed_and_connections_are_capped() {
    use std::time::Duration;
    let limits = Limits {
        max_connections: 4,
        header_timeout: Duration::from_secs(1),
        handshake_timeout: Duration::from_secs(1),
    };
    let (port, shared, _) = serve_full(false, None, limits, None).await;
    let open = shared.clone();
    blocking(move || {
        let connect = || {
            let s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("a timeout");
            s
        };
        // Two idle connections and two that send half a request.
        let mut held: Vec<std::net::TcpStream> = (0..4).map(|_| connect()).collect();
        for s in &mut held[2..] {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
                .expect("sent");
        }
        let all_open = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            open.counters
                .connections_open
                .load(std::sync::atomic::Ordering::Relaxed)
                == 4
        });
        assert!(all_open, "four connections served");
        // A fifth is closed at once.
        let mut fifth = connect();
        let mut buf = [0u8; 64];
        let read = fifth.read(&mut buf);
        assert!(
            matches!(read, Ok(0))
                || read
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "{read:?}"
        );
        // The four are closed when their head does not arrive in time (1 s here).
        let started = std::time::Instant::now();
        let closed = |r: &std::io::Result<usize>| match r {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        for s in &mut held {
            let mut rest = Vec::new();
            let read = s.read_to_end(&mut rest);
            assert!(closed(&read), "{read:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
        // Then the board serves again.
        let r = request(port, "GET", "/healthz", &[], "");
        assert_eq!(r.status, 200);
    })
    .await;
    let metrics = shared.counters.render();
    assert!(
        metrics.contains("vigil_board_connections_refused_total 1"),
        "{metrics}"
    );
}
