//! Who may use the board, and how a signed-in browser is recognised.
//!
//! - **Users** are configured with an argon2id password hash in PHC form
//!   (`$argon2id$v=19$m=...`, made by [`hash_password`]); a password is never stored.
//!   Verification runs argon2 whether or not the user exists, so the time taken does not
//!   tell which names exist.
//! - **Sessions** are 256-bit random tokens (the session cookie) with an expiry; each
//!   carries its own 256-bit CSRF token, which every state-changing request must present
//!   (compared in constant time).
//! - **Login attempts** are limited per user name: a failure counts for `window` after
//!   it, and while `limit` failures count, further attempts are refused, even with the
//!   right password.
//!
//! Every instant is an argument, so the rules are tested at both edges of each limit.

use std::collections::HashMap;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use vigil_board::Role;
use vigil_score::{Span, Timestamp};

/// A configured user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The name they sign in with.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// The argon2id hash of their password, PHC form.
    pub password_hash: String,
}

/// The configured users.
#[derive(Clone, Debug, Default)]
pub struct Users {
    by_name: HashMap<String, User>,
    /// A hash to verify against when the name is unknown (same cost as a real one).
    decoy: String,
}

impl Users {
    /// The users, each checked: a unique name and a password hash argon2 can read.
    ///
    /// # Errors
    ///
    /// The first user whose name repeats or whose hash cannot be read, by name (never
    /// quoting the hash).
    pub fn new(users: Vec<User>) -> Result<Users, String> {
        let mut by_name = HashMap::new();
        for u in users {
            if argon2::password_hash::phc::PasswordHash::new(&u.password_hash).is_err() {
                return Err(format!(
                    "user {:?}: password_hash is not an argon2 PHC string (make one with \
                     `vigil hash-password`)",
                    u.name
                ));
            }
            if u.name.is_empty() || u.role == Role::System {
                return Err(format!(
                    "user {:?}: expected a non-empty name and a role of nurse, charge_nurse, \
                     quality or admin",
                    u.name
                ));
            }
            let name = u.name.clone();
            if by_name.insert(name.clone(), u).is_some() {
                return Err(format!("user {name:?} is configured twice"));
            }
        }
        let decoy = hash_password("decoy password, never used").unwrap_or_default();
        Ok(Users { by_name, decoy })
    }

    /// The user, if `password` is theirs.
    pub fn verify(&self, name: &str, password: &str) -> Option<&User> {
        let user = self.by_name.get(name);
        let hash = user.map_or(self.decoy.as_str(), |u| u.password_hash.as_str());
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok();
        user.filter(|_| ok)
    }
}

/// The argon2id hash (PHC form, random salt) of `password`, for the configuration.
///
/// # Errors
///
/// When no random salt can be drawn.
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// A signed-in browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Who.
    pub user: String,
    /// In which role.
    pub role: Role,
    /// The token state-changing requests must present.
    pub csrf: String,
    /// When it ends.
    pub expires: Timestamp,
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), presented.as_bytes())
    }
}

/// The open sessions.
#[derive(Debug)]
pub struct Sessions {
    by_token: HashMap<String, Session>,
    ttl: Span,
}

impl Sessions {
    /// No sessions; each lasts `ttl`.
    pub fn new(ttl: Span) -> Sessions {
        Sessions {
            by_token: HashMap::new(),
            ttl,
        }
    }

    /// Opens a session for `user` at `now`; returns its token (for the cookie).
    ///
    /// # Errors
    ///
    /// When no random token can be drawn.
    pub fn open(&mut self, user: &User, now: Timestamp) -> Result<String, String> {
        let token = random_token()?;
        let csrf = random_token()?;
        self.by_token.retain(|_, s| s.expires > now);
        self.by_token.insert(
            token.clone(),
            Session {
                user: user.name.clone(),
                role: user.role,
                csrf,
                expires: now.plus(self.ttl),
            },
        );
        Ok(token)
    }

    /// The session of `token`, if it is open at `now`.
    pub fn get(&self, token: &str, now: Timestamp) -> Option<&Session> {
        self.by_token.get(token).filter(|s| now < s.expires)
    }

    /// Ends the session of `token`.
    pub fn close(&mut self, token: &str) {
        self.by_token.remove(token);
    }
}

/// The longest user name a configuration accepts (`[[board.users]] name`), in bytes: a
/// longer one cannot be a user, and is refused before anything is recorded or hashed.
pub const MAX_NAME_BYTES: usize = 64;

/// Most names whose failures are kept at once: a client without a session can make up
/// names, so the table is bounded (expired names are dropped first, then the name whose
/// latest failure is oldest).
pub const MAX_TRACKED_NAMES: usize = 10_000;

/// Failed sign-ins per user name, to refuse guessing. Bounded: names of at most
/// [`MAX_NAME_BYTES`], at most `limit` failures each, at most [`MAX_TRACKED_NAMES`] names.
#[derive(Debug)]
pub struct LoginLimiter {
    failures: HashMap<String, Vec<Timestamp>>,
    limit: usize,
    window: Span,
}

impl LoginLimiter {
    /// At most `limit` failures per name within `window`.
    pub fn new(limit: usize, window: Span) -> LoginLimiter {
        LoginLimiter {
            failures: HashMap::new(),
            limit,
            window,
        }
    }

    fn recent(&self, name: &str, now: Timestamp) -> usize {
        let since = now.minus(self.window);
        self.failures
            .get(name)
            .map_or(0, |f| f.iter().filter(|t| **t > since).count())
    }

    /// Whether `name` may try to sign in at `now`.
    pub fn allowed(&self, name: &str, now: Timestamp) -> bool {
        self.recent(name, now) < self.limit
    }

    /// Records a failed attempt (not for a name longer than [`MAX_NAME_BYTES`], which no
    /// user has).
    pub fn failed(&mut self, name: &str, now: Timestamp) {
        if name.len() > MAX_NAME_BYTES {
            return;
        }
        let since = now.minus(self.window);
        if !self.failures.contains_key(name) && self.failures.len() >= MAX_TRACKED_NAMES {
            self.failures
                .retain(|_, f| f.last().is_some_and(|t| *t > since));
            if self.failures.len() >= MAX_TRACKED_NAMES
                && let Some(oldest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, f)| f.last().copied())
                    .map(|(n, _)| n.clone())
            {
                self.failures.remove(&oldest);
            }
        }
        let f = self.failures.entry(name.to_owned()).or_default();
        f.retain(|t| *t > since);
        f.push(now);
        // Only the latest `limit` failures decide anything.
        let keep = self.limit.max(1);
        if f.len() > keep {
            f.drain(..f.len() - keep);
        }
    }

    /// Records a successful sign-in: the name's failures are forgotten.
    pub fn succeeded(&mut self, name: &str) {
        self.failures.remove(name);
    }

    /// How many names have failures kept.
    pub fn tracked(&self) -> usize {
        self.failures.len()
    }
}

/// 256 random bits as hex.
pub(crate) fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 31: every failed name was kept forever, and names could be megabytes.
    #[test]
    fn the_failure_table_is_bounded_in_names_length_and_entries() {
        let t0 = Timestamp::from_millis(1_800_000_000_000);
        let mut l = LoginLimiter::new(5, Span::minutes(15));
        // A name no user can have is not recorded.
        l.failed(&"x".repeat(MAX_NAME_BYTES + 1), t0);
        assert_eq!(l.tracked(), 0);
        // Made-up names beyond the cap: the table stays at the cap, the newest kept.
        for i in 0..MAX_TRACKED_NAMES + 100 {
            l.failed(&format!("n{i}"), t0.plus(Span::millis(i as i64)));
        }
        assert_eq!(l.tracked(), MAX_TRACKED_NAMES);
        // The oldest were evicted to make room.
        assert_eq!(l.recent("n0", t0.plus(Span::minutes(1))), 0);
        assert_eq!(l.recent("n100", t0.plus(Span::minutes(1))), 1);
        let newest = format!("n{}", MAX_TRACKED_NAMES + 99);
        assert_eq!(l.recent(&newest, t0.plus(Span::minutes(1))), 1);
        // Once their window has passed, old names make room before anyone is evicted.
        let later = t0.plus(Span::minutes(16));
        l.failed("someone", later);
        assert_eq!(l.tracked(), 1);
        // One name keeps at most `limit` failures, and is still refused at the limit.
        for k in 0..50 {
            l.failed("nina", later.plus(Span::millis(k)));
        }
        assert_eq!(l.failures["nina"].len(), 5);
        assert!(!l.allowed("nina", later.plus(Span::seconds(1))));
    }

    const T0: i64 = 1_795_428_000_000;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_millis(T0 + seconds * 1000)
    }

    fn users() -> Users {
        Users::new(vec![
            User {
                name: "alice".into(),
                role: Role::Nurse,
                password_hash: hash_password("correct horse").expect("a hash"),
            },
            User {
                name: "carol".into(),
                role: Role::ChargeNurse,
                password_hash: hash_password("battery staple").expect("a hash"),
            },
        ])
        .expect("valid users")
    }

    #[test]
    fn only_the_right_password_signs_a_user_in() {
        let u = users();
        assert_eq!(
            u.verify("alice", "correct horse").map(|u| u.role),
            Some(Role::Nurse)
        );
        assert_eq!(u.verify("alice", "battery staple"), None);
        assert_eq!(u.verify("mallory", "correct horse"), None);
        assert_eq!(u.verify("alice", ""), None);
    }

    #[test]
    fn misconfigured_users_are_refused_by_name_without_quoting_the_hash() {
        let bad = Users::new(vec![User {
            name: "bob".into(),
            role: Role::Nurse,
            password_hash: "plain-text-password".into(),
        }])
        .expect_err("not a hash");
        assert!(bad.contains("user \"bob\""), "{bad}");
        assert!(!bad.contains("plain-text-password"), "{bad}");
        let hash = hash_password("x").expect("a hash");
        let twice = Users::new(vec![
            User {
                name: "bob".into(),
                role: Role::Nurse,
                password_hash: hash.clone(),
            },
            User {
                name: "bob".into(),
                role: Role::Admin,
                password_hash: hash.clone(),
            },
        ])
        .expect_err("twice");
        assert!(twice.contains("configured twice"), "{twice}");
        let system = Users::new(vec![User {
            name: "vigil".into(),
            role: Role::System,
            password_hash: hash,
        }])
        .expect_err("no one signs in as Vigil itself");
        assert!(system.contains("role"), "{system}");
    }

    #[test]
    fn a_session_lasts_its_time_and_carries_its_own_csrf_token() {
        let u = users();
        let alice = u.verify("alice", "correct horse").expect("alice").clone();
        let mut s = Sessions::new(Span::minutes(60));
        let token = s.open(&alice, at(0)).expect("a session");
        let other = s.open(&alice, at(0)).expect("another");
        assert_ne!(token, other);
        assert_eq!(token.len(), 64);
        let session = s.get(&token, at(3599)).expect("open until the hour ends");
        assert_eq!(session.user, "alice");
        let csrf = session.csrf.clone();
        assert!(session.csrf_matches(&csrf));
        assert!(!session.csrf_matches(&s.get(&other, at(0)).expect("open").csrf));
        assert!(!session.csrf_matches(""));
        assert!(s.get(&token, at(3600)).is_none(), "expired at the hour");
        assert!(s.get("guess", at(0)).is_none());
        s.close(&other);
        assert!(s.get(&other, at(1)).is_none());
    }

    #[test]
    fn guessing_is_refused_after_the_limit_until_the_window_passes() {
        let mut l = LoginLimiter::new(3, Span::minutes(15));
        for second in 0..3 {
            assert!(l.allowed("alice", at(second)));
            l.failed("alice", at(second));
        }
        assert!(!l.allowed("alice", at(3)), "the fourth attempt is refused");
        assert!(l.allowed("carol", at(3)), "per name");
        // A failure counts for 15 minutes: the first one (at 0 s) until 899 s.
        assert!(!l.allowed("alice", at(15 * 60 - 1)));
        assert!(l.allowed("alice", at(15 * 60)));
        l.failed("alice", at(15 * 60));
        assert!(
            !l.allowed("alice", at(15 * 60)),
            "three again within the window"
        );
        l.succeeded("alice");
        assert!(l.allowed("alice", at(15 * 60 + 1)));
    }
}
