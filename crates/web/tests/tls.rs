//! The board over HTTPS (rustls): a client that trusts the board's certificate signs in,
//! and the session cookie is `Secure`; files that are not PEM are refused with the key
//! that names them.

mod common;

use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use vigil_board::{Action, Board, Role};
use vigil_web::auth::{User, Users, hash_password};
use vigil_web::serve::{Limits, serve};
use vigil_web::server::{ActionSink, router};
use vigil_web::tls::server_config;

struct Nowhere;

impl ActionSink for Nowhere {
    fn publish(&self, _: &Action) -> Result<(), String> {
        Err("not in this test".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_is_served_over_https_with_a_secure_cookie() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tls-test");
    std::fs::create_dir_all(&dir).expect("a directory");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a cert");
    let (cert_pem, key_pem) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).expect("written");
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).expect("written");

    let users = Users::new(vec![User {
        name: "alice".into(),
        role: Role::Nurse,
        password_hash: hash_password("alice-pw").expect("a hash"),
    }])
    .expect("users");
    let shared = common::shared(Board::new(), users, Arc::new(Nowhere), true);
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = tcp.local_addr().expect("bound").port();
    let config = server_config(&cert_pem, &key_pem).expect("TLS settings");
    let app = router(shared.clone());
    tokio::spawn(async move {
        serve(
            tcp,
            Some(config),
            app,
            shared,
            Limits::new(64),
            std::future::pending(),
        )
        .await
    });

    let mut roots = RootCertStore::empty();
    roots.add(cert.cert.der().clone()).expect("trusted");
    let client = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(client));
    // A plain-text request is not answered as HTTP.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    plain
        .write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("sent");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "served without TLS");

    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let mut tls = connector
        .connect(ServerName::try_from("localhost").expect("a name"), tcp)
        .await
        .expect("a TLS handshake");
    let body = "user=alice&password=alice-pw";
    tls.write_all(
        format!(
            "POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .expect("sent");
    let mut reply = String::new();
    let _ = tls.read_to_string(&mut reply).await;
    assert!(reply.starts_with("HTTP/1.1 303"), "{reply}");
    let cookie = reply
        .lines()
        .find(|l| l.starts_with("set-cookie: "))
        .expect("a cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    // Issue 31: no HSTS over TLS. Browsers are now told to use nothing but HTTPS.
    assert!(
        reply.contains("strict-transport-security: max-age=31536000"),
        "{reply}"
    );
}

#[test]
fn files_that_are_not_pem_are_refused_naming_the_key() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tls-bad");
    std::fs::create_dir_all(&dir).expect("a directory");
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate").expect("written");
    let e = server_config(&junk, &junk).expect_err("no certificate");
    assert!(e.starts_with("board.tls_cert: "), "{e}");
    let e = server_config(&dir.join("missing.pem"), &junk).expect_err("no file");
    assert!(e.starts_with("board.tls_cert: "), "{e}");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a cert");
    let cert_pem = dir.join("cert.pem");
    std::fs::write(&cert_pem, cert.cert.pem()).expect("written");
    let e = server_config(&cert_pem, &junk).expect_err("no key");
    assert!(e.starts_with("board.tls_key: "), "{e}");
}
