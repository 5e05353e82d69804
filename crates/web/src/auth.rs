//! Who may use the board, and how a signed-in browser is recognised.
//!
//! - **Users** are configured with an argon2id password hash in PHC form
//!   (`$argon2id$v=19$m=...`, made by [`hash_password`]); a password is never stored.
//!   Verification runs argon2 whether or not the user exists, so the time taken does not
//!   tell which names exist.
//! - **Sessions** are 256-bit random tokens (the session cookie) with an expiry; each
//!   carries its own 256-bit CSRF token, which every state-changing request must present
//!   (compared in constant time).
//! - **Sign-in attempts** are throttled with exponential backoff per client address and
//!   per name, or per browser for one that signed in as the name before ([`Throttle`]):
//!   guessing slows the guesser, never locks the user out, and every table an
//!   unauthenticated client can grow is bounded.
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

/// The most sessions one user holds at once (browsers, tabs signed in afresh).
pub const MAX_SESSIONS_PER_USER: usize = 32;

/// The open sessions, at most [`MAX_SESSIONS_PER_USER`] a user.
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
        // A user signing in again and again holds at most MAX_SESSIONS_PER_USER: the one
        // that ends first goes.
        let theirs: Vec<(&String, Timestamp)> = self
            .by_token
            .iter()
            .filter(|(_, s)| s.user == user.name)
            .map(|(t, s)| (t, s.expires))
            .collect();
        if theirs.len() >= MAX_SESSIONS_PER_USER
            && let Some(first) = theirs
                .iter()
                .min_by_key(|(_, e)| *e)
                .map(|(t, _)| (*t).clone())
        {
            self.by_token.remove(&first);
        }
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

/// Most names, and most client addresses, whose failures are kept at once: a client
/// without a session can make up names, so each table is bounded (expired entries are
/// dropped first, then the one whose latest failure is oldest).
pub const MAX_TRACKED_NAMES: usize = 10_000;

/// Most browsers remembered as having signed in (device cookies); only a successful
/// sign-in adds one, the oldest is forgotten first.
pub const MAX_DEVICES: usize = 10_000;

/// The longest a name's backoff grows, for browsers it has never signed in from: an
/// attacker spraying guesses at a name from many addresses gets at most one guess a
/// minute, and the nurse it belongs to waits at most this long on a new browser (none
/// on her own, [`Throttle`]).
pub const NAME_BACKOFF_CAP: Span = Span::seconds(60);

/// The failures of one client address, name or browser, and when it may try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Backoff {
    failures: u32,
    last: Timestamp,
    not_before: Timestamp,
}

/// What a sign-in attempt is counted against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// The client's address (the TCP peer).
    Client(std::net::IpAddr),
    /// The name tried, from a browser it has not signed in from.
    Name(String),
    /// A browser that has signed in as the name before (its device cookie).
    Device(String),
}

impl Key {
    /// Its table in [`Throttle`].
    fn kind(&self) -> usize {
        match self {
            Key::Client(_) => 0,
            Key::Name(_) => 1,
            Key::Device(_) => 2,
        }
    }
}

/// A sign-in attempt allowed by the [`Throttle`]: counted as a failure from the moment
/// it is allowed (so that parallel attempts cannot pass together), until
/// [`Throttle::succeeded`] says otherwise.
#[derive(Debug)]
pub struct Attempt {
    name: String,
    /// Each key with its state before this attempt.
    keys: Vec<(Key, Option<Backoff>)>,
}

/// Sign-in throttling with exponential backoff, so that guessing slows the guesser and
/// never locks the user out:
///
/// - every attempt counts against the **client address** and the **name**, or, from a
///   browser that has signed in as that name before (its device cookie), against **that
///   browser** alone;
/// - each key may fail `free` times within `window`; after that each further attempt
///   must wait 1 s, 2 s, 4 s, ... after the previous failure, up to `window` for a client
///   address or a browser and up to [`NAME_BACKOFF_CAP`] for a name; a key's failures
///   are forgotten `window` after its last one;
/// - an attempt that must wait is refused without a password check (429 with
///   `Retry-After`); an allowed one is counted before the password is checked, so that
///   parallel guesses get no more checks than sequential ones;
/// - a success forgets the name's and the browser's failures and takes back its own
///   from the client address (others' failures from that address stay).
///
/// So an attacker guessing from one address is slowed to one guess per `window`; one
/// spraying a name from many addresses gets at most one guess a minute at it, and the
/// nurse whose name it is still signs in from her own browser at once, or from a new one
/// within [`NAME_BACKOFF_CAP`].
#[derive(Debug)]
pub struct Throttle {
    /// Client addresses, names and browsers, each kind in its own table.
    keys: [HashMap<Key, Backoff>; 3],
    devices: HashMap<String, (String, Timestamp)>,
    free: u32,
    window: Span,
}

impl Throttle {
    /// `free` failures per key within `window`, then backoff.
    pub fn new(free: usize, window: Span) -> Throttle {
        Throttle {
            keys: Default::default(),
            devices: HashMap::new(),
            free: u32::try_from(free).unwrap_or(u32::MAX),
            window,
        }
    }

    fn cap(&self, key: &Key) -> Span {
        match key {
            Key::Name(_) => NAME_BACKOFF_CAP,
            _ => self.window,
        }
    }

    /// The state of `key` at `now`, forgotten once `window` has passed since its last
    /// failure.
    fn current(&self, key: &Key, now: Timestamp) -> Option<Backoff> {
        self.keys[key.kind()]
            .get(key)
            .copied()
            .filter(|b| now < b.last.plus(self.window))
    }

    /// Whether `device` (a device cookie) has signed in as `name`.
    pub fn knows(&self, device: &str, name: &str) -> bool {
        self.devices.get(device).is_some_and(|(n, _)| n == name)
    }

    /// Allows an attempt by `client` (with its device cookie, if any) to sign in as
    /// `name` at `now`, counting it as failed until [`Throttle::succeeded`]; or the time to
    /// wait.
    ///
    /// # Errors
    ///
    /// How long to wait before trying again: no password may be checked now.
    pub fn begin(
        &mut self,
        name: &str,
        client: std::net::IpAddr,
        device: Option<&str>,
        now: Timestamp,
    ) -> Result<Attempt, Span> {
        let keys = match device.filter(|d| self.knows(d, name)) {
            Some(d) => vec![Key::Device(d.to_owned())],
            None => vec![Key::Client(client), Key::Name(name.to_owned())],
        };
        let wait = keys
            .iter()
            .filter_map(|k| self.current(k, now))
            .map(|b| b.not_before.as_millis() - now.as_millis())
            .max()
            .unwrap_or(0);
        if wait > 0 {
            return Err(Span::millis(wait));
        }
        let mut attempt = Attempt {
            name: name.to_owned(),
            keys: Vec::with_capacity(keys.len()),
        };
        for key in keys {
            let before = self.current(&key, now);
            let failures = before.map_or(0, |b| b.failures).saturating_add(1);
            // The `free`-th failure makes the next attempt wait 1 s, then 2 s, 4 s, ...
            let over = (failures + 1).saturating_sub(self.free);
            let wait = if over == 0 {
                0
            } else {
                1000_i64.saturating_mul(1_i64 << (over - 1).min(40))
            };
            let not_before = now.plus(Span::millis(wait.min(self.cap(&key).as_millis())));
            self.make_room(&key, now);
            self.keys[key.kind()].insert(
                key.clone(),
                Backoff {
                    failures,
                    last: now,
                    not_before,
                },
            );
            attempt.keys.push((key, before));
        }
        Ok(attempt)
    }

    /// Drops expired entries, then the oldest, when the table of `key`'s kind is full.
    fn make_room(&mut self, key: &Key, now: Timestamp) {
        let window = self.window;
        let table = &mut self.keys[key.kind()];
        if table.contains_key(key) || table.len() < MAX_TRACKED_NAMES {
            return;
        }
        table.retain(|_, b| now < b.last.plus(window));
        if table.len() >= MAX_TRACKED_NAMES
            && let Some(oldest) = table
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(k, _)| k.clone())
        {
            table.remove(&oldest);
        }
    }

    /// The attempt's password was right: the name's and the browser's failures are
    /// forgotten, the client address's go back to what they were before it. Returns a
    /// device cookie that remembers this browser signed in as the name.
    ///
    /// # Errors
    ///
    /// When no random token can be drawn.
    pub fn succeeded(&mut self, attempt: Attempt, now: Timestamp) -> Result<String, String> {
        for (key, before) in attempt.keys {
            match (&key, before) {
                (Key::Client(_), Some(b)) => {
                    self.keys[key.kind()].insert(key, b);
                }
                _ => {
                    self.keys[key.kind()].remove(&key);
                }
            }
        }
        let name = Key::Name(attempt.name.clone());
        self.keys[name.kind()].remove(&name);
        let device = random_token()?;
        if self.devices.len() >= MAX_DEVICES
            && let Some(oldest) = self
                .devices
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(d, _)| d.clone())
        {
            self.devices.remove(&oldest);
        }
        self.devices.insert(device.clone(), (attempt.name, now));
        Ok(device)
    }

    /// The attempt was not checked (the check queue was full): every key goes back to
    /// what it was before it.
    pub fn cancel(&mut self, attempt: Attempt) {
        for (key, before) in attempt.keys {
            match before {
                Some(b) => {
                    self.keys[key.kind()].insert(key, b);
                }
                None => {
                    self.keys[key.kind()].remove(&key);
                }
            }
        }
    }

    /// How many client addresses, names and browsers have failures kept.
    pub fn tracked(&self) -> usize {
        self.keys.iter().map(HashMap::len).sum()
    }
}

/// Password checks, off the request threads: each runs on a blocking thread, at most
/// `workers` at once, with at most `queue` waiting; beyond that a sign-in is answered
/// "busy" at once. Argon2 is made to be slow (about 20-40 ms a check here), so a flood of
/// sign-ins must queue where it slows only other sign-ins, never the board's pages and
/// streams.
#[derive(Debug)]
pub struct Checker {
    users: std::sync::Arc<Users>,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    queue: usize,
}

/// The password-check queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

impl Checker {
    /// Checks for `users`, `workers` at once, `queue` waiting.
    pub fn new(users: Users, workers: usize, queue: usize) -> Checker {
        Checker {
            users: std::sync::Arc::new(users),
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(workers.max(1))),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            queue,
        }
    }

    /// The user, if `password` is theirs ([`Users::verify`]), checked off the caller's
    /// thread.
    ///
    /// # Errors
    ///
    /// [`Busy`] when `queue` checks are already waiting.
    pub async fn verify(&self, name: String, password: String) -> Result<Option<User>, Busy> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.waiting.fetch_add(1, SeqCst) >= self.queue {
            self.waiting.fetch_sub(1, SeqCst);
            return Err(Busy);
        }
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, SeqCst);
        let Ok(permit) = permit else {
            return Err(Busy);
        };
        let users = self.users.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let user = users.verify(&name, &password).cloned();
            drop(permit);
            user
        })
        .await;
        checked.map_err(|_| Busy)
    }
}

/// A new key for `[board] action_key_file`: 32 random bytes as hex, as `vigil action-key`
/// prints it.
///
/// # Errors
///
/// When no random bytes can be drawn.
pub fn new_action_key() -> Result<String, String> {
    random_token()
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

    use std::net::{IpAddr, Ipv4Addr};

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    /// Issue 31: every failed name was kept forever, and names could be megabytes.
    #[test]
    fn the_failure_table_is_bounded_per_kind() {
        let t0 = Timestamp::from_millis(1_800_000_000_000);
        let mut l = Throttle::new(5, Span::minutes(15));
        // Made-up names from made-up addresses beyond the cap: each kind stays at the cap.
        for i in 0..MAX_TRACKED_NAMES + 100 {
            let client = IpAddr::V4(Ipv4Addr::from(i as u32));
            let _ = l.begin(
                &format!("n{i}"),
                client,
                None,
                t0.plus(Span::millis(i as i64)),
            );
        }
        assert_eq!(l.tracked(), 2 * MAX_TRACKED_NAMES);
        // Once their window has passed, old entries make room before anyone is evicted.
        let later = t0.plus(Span::minutes(16));
        let _ = l.begin("someone", ip(1), None, later);
        assert_eq!(l.tracked(), 2);
    }

    /// Issue 31: five wrong passwords locked a name for 15 minutes against everyone,
    /// even with the right password, and 40 parallel guesses got 6 checks.
    #[test]
    fn guessing_backs_off_the_guesser_and_never_locks_the_user_out() {
        let mut l = Throttle::new(5, Span::minutes(15));
        let attacker = ip(66);
        // Five free attempts, counted before any check (so parallel ones cannot pass
        // together): the sixth at the same instant must wait a second.
        for _ in 0..5 {
            l.begin("alice", attacker, None, at(0))
                .expect("free attempts");
        }
        assert_eq!(
            l.begin("alice", attacker, None, at(0)).expect_err("waits"),
            Span::seconds(1)
        );
        // Then 2 s, 4 s, ... after each failure: 1 s after the fifth the sixth may try.
        l.begin("alice", attacker, None, at(1)).expect("after 1 s");
        assert_eq!(
            l.begin("alice", attacker, None, at(2)).expect_err("waits"),
            Span::seconds(1),
            "2 s after the sixth"
        );
        l.begin("alice", attacker, None, at(3)).expect("after 2 s");
        // Spraying other names from the same address is slowed as much.
        assert!(l.begin("bob", attacker, None, at(4)).is_err());
        // Alice on a new browser elsewhere waits for the name's backoff, at most a minute.
        let name_wait = l
            .begin("alice", ip(7), None, at(4))
            .expect_err("the name waits");
        assert!(name_wait <= NAME_BACKOFF_CAP, "{name_wait:?}");
        // Her own browser, which signed in as her before, is not slowed at all.
        let mut own = Throttle::new(5, Span::minutes(15));
        let first = own.begin("alice", ip(7), None, at(0)).expect("free");
        let device = own.succeeded(first, at(0)).expect("a device cookie");
        for s in 0..20 {
            let _ = own.begin("alice", attacker, None, at(1 + s));
        }
        assert!(
            own.begin("alice", ip(8), None, at(21)).is_err(),
            "the name backs off"
        );
        let mine = own
            .begin("alice", ip(7), Some(&device), at(21))
            .expect("her browser signs in at once");
        own.succeeded(mine, at(21)).expect("signed in");
        // A device cookie of another name gives nothing.
        assert!(own.begin("bob", attacker, Some(&device), at(22)).is_err());
    }

    #[test]
    fn the_name_backoff_stops_at_its_cap_and_failures_expire_after_the_window() {
        let mut l = Throttle::new(1, Span::minutes(15));
        let mut t = 0;
        for client in 0..20 {
            // A new address each time: only the name's backoff applies.
            match l.begin("alice", ip(client), None, at(t)) {
                Ok(_) => {}
                Err(wait) => {
                    assert!(wait <= NAME_BACKOFF_CAP);
                    t += wait.as_millis() / 1000;
                    l.begin("alice", ip(client), None, at(t))
                        .expect("after the wait");
                }
            }
        }
        assert_eq!(
            l.begin("alice", ip(200), None, at(t)).expect_err("capped"),
            NAME_BACKOFF_CAP
        );
        // 15 minutes after the last failure everything is forgotten.
        l.begin("alice", ip(200), None, at(t + 15 * 60))
            .expect("forgotten at the window's edge");
    }

    /// Issue 31: password hashing ran on the request threads, so eight sign-in floods
    /// slowed every page. Checks now run on blocking threads with a bounded queue.
    #[tokio::test(flavor = "current_thread")]
    async fn password_checks_queue_within_a_bound_and_the_rest_are_told_busy() {
        let checker = Checker::new(users(), 1, 1);
        // Polled in order: the first is checked, the second waits, the third finds the
        // queue full.
        let (first, second, third) = tokio::join!(
            checker.verify("alice".into(), "correct horse".into()),
            checker.verify("alice".into(), "wrong".into()),
            checker.verify("carol".into(), "battery staple".into()),
        );
        assert_eq!(first.map(|u| u.map(|u| u.name)), Ok(Some("alice".into())));
        assert_eq!(second, Ok(None));
        assert_eq!(third, Err(Busy));
        // Once the queue has drained, checks are taken again.
        let again = checker
            .verify("carol".into(), "battery staple".into())
            .await;
        assert_eq!(
            again.map(|u| u.map(|u| u.role)),
            Ok(Some(Role::ChargeNurse))
        );
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
    fn a_user_holds_a_bounded_number_of_sessions_the_oldest_going_first() {
        let u = users();
        let alice = u.verify("alice", "correct horse").expect("alice").clone();
        let carol = u.verify("carol", "battery staple").expect("carol").clone();
        let mut s = Sessions::new(Span::minutes(60));
        let carols = s.open(&carol, at(0)).expect("a session");
        let first = s.open(&alice, at(0)).expect("a session");
        for k in 1..MAX_SESSIONS_PER_USER as i64 {
            s.open(&alice, at(k)).expect("a session");
        }
        assert!(s.get(&first, at(100)).is_some(), "at the bound, all kept");
        let newest = s.open(&alice, at(100)).expect("one more");
        assert!(s.get(&first, at(101)).is_none(), "the oldest went");
        assert!(s.get(&newest, at(101)).is_some());
        assert!(
            s.get(&carols, at(101)).is_some(),
            "another user's are untouched"
        );
    }
}
