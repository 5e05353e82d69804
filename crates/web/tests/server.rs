//! The board's HTTP interface against users who may not do what they try: no session, no
//! or a wrong CSRF token, a role without the right, guessing passwords. Each request goes
//! over TCP to the real server.

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use common::settings;
use vigil_board::{Action, AlertEvent, Board, EventKind, Role};
use vigil_web::auth::{User, Users, hash_password};
use vigil_web::server::{ActionSink, Shared, router};

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

async fn serve(secure_cookie: bool) -> (u16, Arc<Shared>, Arc<Recorded>) {
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
    let sink = Arc::new(Recorded::default());
    let users = Users::new(vec![
        user("alice", Role::Nurse),
        user("carol", Role::ChargeNurse),
        user("quinn", Role::Quality),
    ])
    .expect("users");
    let shared = common::shared(board, users, sink.clone(), secure_cookie);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = listener.local_addr().expect("bound").port();
    let app = router(shared.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
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
    let (port, _, _) = serve(true).await;
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
    let (port, _, _) = serve(false).await;
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
        // Past the limit, even the right password is refused.
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
    let (port, shared, sink) = serve(false).await;
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
        shared
            .board
            .lock()
            .expect("board")
            .apply_action(published[0].clone(), &settings())
            .expect("applied");
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
