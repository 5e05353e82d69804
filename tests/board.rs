//! `vigil hash-password`: the hash a board user's configuration holds.

use crate::util::vigil;

#[test]
fn hash_password_prints_an_argon2id_hash_the_board_verifies() {
    let out = vigil(&["hash-password"], "correct horse\n");
    assert_eq!(out.status, 0, "{}", out.stderr);
    let hash = out.stdout.trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!out.stdout.contains("correct horse"));
    let users = vigil_web::auth::Users::new(vec![vigil_web::auth::User {
        name: "alice".into(),
        role: vigil_board::Role::Nurse,
        password_hash: hash,
    }])
    .expect("a valid user");
    assert!(users.verify("alice", "correct horse").is_some());
    assert!(users.verify("alice", "correct horse ").is_none());
    let empty = vigil(&["hash-password"], "\n");
    assert_eq!(empty.status, 2);
    assert!(
        empty.stderr.contains("expected the password"),
        "{}",
        empty.stderr
    );
}
