//! Service configuration: parsed raw from TOML, overridden by environment variables, then
//! validated with an explanation for every error.
//!
//! Every key is documented in `config/vigil.toml`. An environment variable
//! `VIGIL_<SECTION>_<KEY>` (upper case) overrides `[section] key`, for example
//! `VIGIL_KAFKA_BROKERS=broker-1:9092` or `VIGIL_HTTP_LISTEN=0.0.0.0:9898`; its text is read
//! as a TOML value when it parses as one (numbers, booleans) and as a string otherwise.
//! The `[kafka.librdkafka]` table passes raw client settings (TLS, SASL, timeouts) through
//! to both the consumer and the producer.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use vigil_score::alert::{Persistence, PolicyConfig};
use vigil_score::risk::RiskModel;
use vigil_score::rules::news2::Risk;
use vigil_score::{Config as EngineConfig, Level, RuleId, Span, Staleness};

/// `VIGIL_` environment variables that are not configuration keys: the fault harness's
/// broker (`VIGIL_TANSU`), the browser test's chromedriver (`VIGIL_CHROMEDRIVER`), the real
/// data the evaluation tests read (`VIGIL_PHYSIONET_SET_A`, `VIGIL_REQUIRE_DATA`). The
/// configuration ignores them; any other `VIGIL_` name must be a key.
pub const TOOL_VARIABLES: &[&str] = &[
    "VIGIL_TANSU",
    "VIGIL_CHROMEDRIVER",
    "VIGIL_PHYSIONET_SET_A",
    "VIGIL_REQUIRE_DATA",
];

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Kafka connection and topics.
    pub kafka: Kafka,
    /// The HTTP endpoints.
    pub http: Http,
    /// Logging.
    pub log: Log,
    /// Batching and shutdown.
    pub service: Service,
    /// Scoring engine settings.
    pub engine: Engine,
    /// Alert policy.
    pub alerts: Alerts,
    /// Decoder options.
    pub input: Input,
    /// The MLLP receiver (`vigil mllp`).
    pub mllp: Mllp,
    /// The rapid-response board (`vigil board`).
    pub board: BoardSection,
    /// Where each value came from (the file's lines, environment variables), so that an
    /// error points at it.
    #[serde(skip)]
    pub origin: Origin,
}

/// Where a configuration's values came from: a file (its name and text) and the keys
/// environment variables set. Errors name the file, line and column of a key, or the
/// variable that set it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Origin {
    file: Option<(String, String)>,
    /// `section.key` set by an environment variable: the variable's name.
    env: BTreeMap<String, String>,
}

impl Origin {
    /// `message` about the key it starts with (`service.batch_max_messages: ...`),
    /// prefixed with where that key was set: `VIGIL_SERVICE_BATCH_MAX_MESSAGES
    /// (environment): ...`, `vigil.toml:12:1: ...`, or the file alone when the key is not
    /// in it (a default, or a key it lacks).
    pub fn attribute(&self, message: &str) -> String {
        let path = message.split(": ").next().unwrap_or("");
        let (section, key) = split_key(path);
        if let Some(var) = self.env.get(&format!("{section}.{key}")) {
            return format!("{var} (environment variable): {message}");
        }
        match &self.file {
            Some((name, text)) => match locate(text, section, key) {
                Some((line, column)) => format!("{name}:{line}:{column}: {message}"),
                None => format!("{name}: {message}"),
            },
            None => message.to_owned(),
        }
    }
}

/// `section.key` (or `kafka.librdkafka.<setting>`, or `alerts.news2[1]`) as section and
/// key.
fn split_key(path: &str) -> (&str, &str) {
    let path = path.split('[').next().unwrap_or(path);
    if let Some(rest) = path.strip_prefix("kafka.librdkafka.") {
        return ("kafka.librdkafka", rest);
    }
    path.split_once('.').unwrap_or((path, ""))
}

/// A deserialization error as `section.key: what is wrong`, and the key.
fn explain(error: &str) -> (String, String) {
    let error = error.trim();
    let (what, place) = match error.rsplit_once("\nin `") {
        Some((what, place)) => (what.trim(), place.trim_end_matches('`')),
        None => (error, ""),
    };
    let what = what.replace('\n', " ");
    // An unknown key is named in the message; its section is the place.
    if let Some(rest) = what.strip_prefix("unknown field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        let key = if place.is_empty() {
            name.to_owned()
        } else {
            format!("{place}.{name}")
        };
        let expected = what.split_once(", expected ").map_or("", |(_, e)| e);
        return (
            key.clone(),
            format!("{key}: unknown key; expected {expected}"),
        );
    }
    (place.to_owned(), format!("{place}: {what}"))
}

/// The line and column (from 1) where `key` is set in `[section]` of a TOML `text`; the
/// section header itself when `key` is empty.
fn locate(text: &str, section: &str, key: &str) -> Option<(usize, usize)> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(header) = trimmed.strip_prefix('[') {
            current = header.split(']').next().unwrap_or("").trim().to_owned();
            if key.is_empty() && current == section {
                return Some((i + 1, line.len() - trimmed.len() + 1));
            }
            continue;
        }
        if current != section || key.is_empty() {
            continue;
        }
        let name = trimmed.split('=').next().unwrap_or("").trim();
        if name == key || name.trim_matches('"') == key {
            return Some((i + 1, line.len() - trimmed.len() + 1));
        }
    }
    None
}

/// librdkafka's default `message.max.bytes`.
const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// `[mllp]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Mllp {
    /// Address the MLLP listener binds.
    pub listen: String,
    /// Topic accepted HL7 v2 messages are forwarded to (empty: the observations topic,
    /// whose format should then be `hl7v2`).
    pub topic: String,
    /// How long a message may wait for Kafka before it is answered `AE` (send again).
    pub ack_timeout_ms: u64,
    /// Address `vigil mllp` serves `/metrics`, `/healthz` and `/readyz` on (apart from
    /// `[http] listen`, so that it can run beside the service).
    pub http_listen: String,
}

impl Default for Mllp {
    fn default() -> Self {
        Mllp {
            listen: "127.0.0.1:2575".into(),
            topic: String::new(),
            ack_timeout_ms: 10_000,
            http_listen: "127.0.0.1:9899".into(),
        }
    }
}

/// `[board]`: the rapid-response board (`vigil board`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BoardSection {
    /// Address the board's web server binds.
    pub listen: String,
    /// The topic actions (and escalations) are published to and the board is rebuilt from.
    pub actions_topic: String,
    /// PEM certificate chain: with `tls_key`, the board is served over HTTPS (rustls).
    pub tls_cert: String,
    /// PEM private key for `tls_cert`.
    pub tls_key: String,
    /// How long a sign-in lasts, in minutes.
    pub session_minutes: u64,
    /// Failed sign-ins allowed per user name within `login_window_minutes`.
    pub login_attempts: u32,
    /// The window of `login_attempts`, in minutes.
    pub login_window_minutes: u64,
    /// The reasons a dismissal may give.
    pub dismiss_reasons: Vec<String>,
    /// The longest watch, in minutes.
    pub max_watch_minutes: u32,
    /// Minutes an alert may wait for someone to accept it before it escalates, by level
    /// (advisory, urgent, emergency); 0 never escalates.
    pub escalate_minutes: [u64; 3],
    /// The highest escalation tier.
    pub max_tier: u8,
    /// Local users.
    pub users: Vec<BoardUser>,
    /// Addresses of reverse proxies whose identity headers are trusted.
    pub trusted_proxies: Vec<String>,
    /// The header a trusted proxy names the signed-in user in (empty: none trusted).
    pub proxy_user_header: String,
    /// The header a trusted proxy lists the user's groups in (comma-separated).
    pub proxy_groups_header: String,
    /// Which group gives which role (`group = "role"`).
    pub proxy_roles: BTreeMap<String, String>,
    /// The file holding the key actions are signed with (hex, from `vigil action-key`),
    /// shared by every board and by the service when `[alerts] board_actions` is on.
    pub action_key_file: String,
    /// The address pages are served from as browsers see it (`https://board.example.org`),
    /// when a proxy serves the board under another scheme or host; empty: this server's
    /// own scheme and the request's `Host`.
    pub public_origin: String,
    /// The most connections served at once; more are closed at once.
    pub max_connections: usize,
    /// The hospital's time zone (IANA name) the board shows times in, 24-hour.
    pub time_zone: String,
    /// Ward names as the hospital says them, by the ward part of a location
    /// (`"ward-7" = "Ward 7 (acute medicine)"`); others are shown as sent.
    pub ward_names: BTreeMap<String, String>,
}

/// One `[[board.users]]` entry.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BoardUser {
    /// The sign-in name.
    pub name: String,
    /// `nurse`, `charge_nurse`, `quality` or `admin`.
    pub role: String,
    /// An argon2id PHC string from `vigil hash-password`.
    pub password_hash: String,
}

impl Default for BoardSection {
    fn default() -> Self {
        BoardSection {
            listen: "127.0.0.1:8080".into(),
            actions_topic: "vigil.actions".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
            action_key_file: String::new(),
            public_origin: String::new(),
            max_connections: 2048,
            time_zone: "UTC".into(),
            ward_names: BTreeMap::new(),
            session_minutes: 720,
            login_attempts: 5,
            login_window_minutes: 15,
            dismiss_reasons: [
                "not sepsis",
                "known and being treated",
                "artefact or measurement error",
                "comfort care",
                "other (see note)",
            ]
            .map(String::from)
            .to_vec(),
            max_watch_minutes: 240,
            escalate_minutes: [60, 15, 5],
            max_tier: 3,
            users: Vec::new(),
            trusted_proxies: Vec::new(),
            proxy_user_header: String::new(),
            proxy_groups_header: String::new(),
            proxy_roles: BTreeMap::new(),
        }
    }
}

/// `[board]`, validated.
#[derive(Clone, Debug)]
pub struct BoardSettings {
    /// The web server's address.
    pub listen: SocketAddr,
    /// The action topic.
    pub actions_topic: String,
    /// Certificate chain and key files, when served over TLS.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// How long a sign-in lasts.
    pub session: Span,
    /// Failed sign-ins allowed per name within `login_window`.
    pub login_attempts: usize,
    /// The window of `login_attempts`.
    pub login_window: Span,
    /// The board's rules.
    pub rules: vigil_board::Settings,
    /// Local users: name, role, argon2id hash.
    pub users: Vec<(String, vigil_board::Role, String)>,
    /// Trusted proxies and their headers, if any.
    pub proxy: Option<ProxySettings>,
    /// The file holding the key actions are signed with (read at start).
    pub action_key_file: Option<std::path::PathBuf>,
    /// The only `Origin` state-changing requests may come from, when set (scheme, host
    /// and port, no path).
    pub public_origin: Option<String>,
    /// The most connections served at once.
    pub max_connections: usize,
    /// The time zone times are shown in (IANA name, checked).
    pub time_zone: String,
    /// Ward names as the hospital says them.
    pub ward_names: BTreeMap<String, String>,
}

/// Identity headers from a trusted reverse proxy (one that does OIDC).
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// The proxies' addresses: headers from anyone else are ignored.
    pub trusted: Vec<std::net::IpAddr>,
    /// The user header (lower case).
    pub user_header: String,
    /// The groups header (lower case).
    pub groups_header: String,
    /// Group to role.
    pub roles: BTreeMap<String, vigil_board::Role>,
}

/// A role named in the configuration (the `system` role is Vigil's own).
pub fn parse_role(name: &str) -> Option<vigil_board::Role> {
    use vigil_board::Role;
    match name {
        "nurse" => Some(Role::Nurse),
        "charge_nurse" => Some(Role::ChargeNurse),
        "quality" => Some(Role::Quality),
        "admin" => Some(Role::Admin),
        _ => None,
    }
}

impl BoardSection {
    /// Checks `[board]`, pushing one message per problem.
    fn validate(&self, errors: &mut Vec<String>) -> Option<BoardSettings> {
        let before = errors.len();
        let listen = self.listen.parse::<SocketAddr>();
        if listen.is_err() {
            errors.push(format!(
                "board.listen: {:?} is not an address; expected host:port such as 127.0.0.1:8080",
                self.listen
            ));
        }
        if self.actions_topic.trim().is_empty() {
            errors.push(
                "board.actions_topic: empty; expected a topic name such as vigil.actions".into(),
            );
        }
        let tls = match (self.tls_cert.is_empty(), self.tls_key.is_empty()) {
            (true, true) => None,
            (false, false) => Some((self.tls_cert.clone().into(), self.tls_key.clone().into())),
            _ => {
                errors.push(format!(
                    "board.tls_cert, board.tls_key: {:?} and {:?}; expected both (HTTPS) or neither (HTTP)",
                    self.tls_cert, self.tls_key
                ));
                None
            }
        };
        if !(5..=1440).contains(&self.session_minutes) {
            errors.push(format!(
                "board.session_minutes: {}; expected 5-1440",
                self.session_minutes
            ));
        }
        if !(1..=100).contains(&self.login_attempts) {
            errors.push(format!(
                "board.login_attempts: {}; expected 1-100",
                self.login_attempts
            ));
        }
        if !(1..=1440).contains(&self.login_window_minutes) {
            errors.push(format!(
                "board.login_window_minutes: {}; expected 1-1440",
                self.login_window_minutes
            ));
        }
        let reasons: Vec<String> = self
            .dismiss_reasons
            .iter()
            .map(|r| r.trim().to_owned())
            .collect();
        if reasons.is_empty() || reasons.iter().any(String::is_empty) {
            errors.push(format!(
                "board.dismiss_reasons: {:?}; expected at least one reason, none empty",
                self.dismiss_reasons
            ));
        }
        if !(1..=10_080).contains(&self.max_watch_minutes) {
            errors.push(format!(
                "board.max_watch_minutes: {}; expected 1-10080 (a week)",
                self.max_watch_minutes
            ));
        }
        if self.escalate_minutes.iter().any(|m| *m > 1440) {
            errors.push(format!(
                "board.escalate_minutes: {:?}; expected minutes for advisory, urgent and \
                 emergency, each 0 (never) to 1440",
                self.escalate_minutes
            ));
        }
        if !(1..=9).contains(&self.max_tier) {
            errors.push(format!("board.max_tier: {}; expected 1-9", self.max_tier));
        }
        if !(16..=65_536).contains(&self.max_connections) {
            errors.push(format!(
                "board.max_connections: {}; expected 16-65536 (each open board page holds one)",
                self.max_connections
            ));
        }
        let origin_ok = |o: &str| {
            o.split_once("://").is_some_and(|(scheme, rest)| {
                matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains('/')
            })
        };
        if let Err(why) = vigil_wire::LocalZone::named(&self.time_zone) {
            errors.push(format!("board.time_zone: {why}"));
        }
        for (ward, name) in &self.ward_names {
            if name.trim().is_empty() || name.chars().count() > 80 {
                errors.push(format!(
                    "board.ward_names.{ward}: {name:?}; expected a name of 1-80 characters"
                ));
            }
        }
        if !self.public_origin.is_empty() && !origin_ok(&self.public_origin) {
            errors.push(format!(
                "board.public_origin: {:?}; expected a scheme and host as browsers see the \
                 board, such as https://board.example.org (no path, no trailing slash)",
                self.public_origin
            ));
        }
        let mut users = Vec::new();
        for (i, u) in self.users.iter().enumerate() {
            let role = parse_role(&u.role);
            if role.is_none() {
                errors.push(format!(
                    "board.users[{i}].role: {:?}; expected nurse, charge_nurse, quality or admin",
                    u.role
                ));
            }
            if u.name.trim().is_empty() || u.name.len() > 64 {
                errors.push(format!(
                    "board.users[{i}].name: {:?}; expected 1-64 characters",
                    u.name
                ));
            }
            if !u.password_hash.starts_with("$argon2id$") {
                errors.push(format!(
                    "board.users[{i}].password_hash: not an argon2id hash; expected the \
                     output of `vigil hash-password` ($argon2id$...)"
                ));
            }
            if self.users[..i].iter().any(|o| o.name == u.name) {
                errors.push(format!(
                    "board.users[{i}].name: {:?} appears twice; expected unique names",
                    u.name
                ));
            }
            if let Some(role) = role {
                users.push((u.name.clone(), role, u.password_hash.clone()));
            }
        }
        let mut proxy = None;
        if self.proxy_user_header.is_empty() {
            if !self.trusted_proxies.is_empty() || !self.proxy_roles.is_empty() {
                errors.push(
                    "board.proxy_user_header: empty while board.trusted_proxies or \
                     board.proxy_roles is set; expected the header the proxy names the user in \
                     (for example X-Forwarded-User)"
                        .into(),
                );
            }
        } else {
            let mut trusted = Vec::new();
            for (i, p) in self.trusted_proxies.iter().enumerate() {
                match p.parse::<std::net::IpAddr>() {
                    Ok(ip) => trusted.push(ip),
                    Err(_) => errors.push(format!(
                        "board.trusted_proxies[{i}]: {p:?} is not an IP address; expected the \
                         proxy's address such as 127.0.0.1"
                    )),
                }
            }
            if self.trusted_proxies.is_empty() {
                errors.push(
                    "board.trusted_proxies: empty while board.proxy_user_header is set; \
                     expected the addresses of the proxies whose headers are trusted"
                        .into(),
                );
            }
            if self.proxy_groups_header.is_empty() {
                errors.push(
                    "board.proxy_groups_header: empty while board.proxy_user_header is set; \
                     expected the header the proxy lists the user's groups in (for example \
                     X-Forwarded-Groups)"
                        .into(),
                );
            }
            let mut roles = BTreeMap::new();
            for (group, role) in &self.proxy_roles {
                match parse_role(role) {
                    Some(r) => {
                        roles.insert(group.clone(), r);
                    }
                    None => errors.push(format!(
                        "board.proxy_roles.{group}: {role:?}; expected nurse, charge_nurse, \
                         quality or admin"
                    )),
                }
            }
            if self.proxy_roles.is_empty() {
                errors.push(
                    "board.proxy_roles: empty while board.proxy_user_header is set; expected \
                     group = \"role\" pairs"
                        .into(),
                );
            }
            proxy = Some(ProxySettings {
                trusted,
                user_header: self.proxy_user_header.to_ascii_lowercase(),
                groups_header: self.proxy_groups_header.to_ascii_lowercase(),
                roles,
            });
        }
        let listen = listen.ok()?;
        if errors.len() > before {
            return None;
        }
        let minutes = |m: u64| (m > 0).then(|| Span::minutes(m as i64));
        Some(BoardSettings {
            listen,
            actions_topic: self.actions_topic.clone(),
            tls,
            session: Span::minutes(self.session_minutes as i64),
            login_attempts: self.login_attempts as usize,
            login_window: Span::minutes(self.login_window_minutes as i64),
            rules: vigil_board::Settings {
                dismiss_reasons: reasons,
                max_watch_minutes: self.max_watch_minutes,
                escalate_after: self.escalate_minutes.map(minutes),
                max_tier: self.max_tier,
            },
            users,
            proxy,
            action_key_file: (!self.action_key_file.is_empty())
                .then(|| self.action_key_file.clone().into()),
            public_origin: (!self.public_origin.is_empty()).then(|| self.public_origin.clone()),
            max_connections: self.max_connections,
            time_zone: self.time_zone.clone(),
            ward_names: self.ward_names.clone(),
        })
    }
}

/// `[input]`: options of the decoders, and the clock guard.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Input {
    /// Accept FHIR `preliminary` observations as final.
    pub fhir_accept_preliminary: bool,
    /// Accept HL7 v2 preliminary results (OBX-11 P, R, S) as final.
    pub hl7_accept_preliminary: bool,
    /// PID-3.5 identifier type(s) the patient id is taken from, comma-separated in order
    /// of preference; a PID-3 with none of them is rejected.
    pub hl7_identifier_type: String,
    /// UTC offset (`+01:00`) assumed for HL7 times sent without one; empty rejects them.
    pub hl7_default_utc_offset: String,
    /// IANA time zone (`Europe/London`) in which HL7 times sent without an offset are
    /// local, following daylight saving time; empty: see `hl7_default_utc_offset`.
    pub hl7_time_zone: String,
    /// Extra IEEE 11073 MDC codes (numeric or `MDC_...`) mapped to canonical parameters.
    pub hl7_mdc_codes: BTreeMap<String, String>,
    /// Largest FHIR or HL7 v2 message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Most readings (Bundle entries, OBX segments) one message may carry.
    pub max_readings_per_message: usize,
    /// How far (seconds) a reading's `effective` time may lie after the message's receive
    /// time before it is rejected as dated in the future.
    pub clock_tolerance_seconds: u64,
    /// Dead-letter readings of valid LOINC or MDC codes Vigil does not score (sodium,
    /// body height) instead of counting them as ignored.
    pub reject_unscored_codes: bool,
}

impl Default for Input {
    fn default() -> Self {
        Input {
            fhir_accept_preliminary: false,
            hl7_accept_preliminary: false,
            hl7_identifier_type: "MR".into(),
            hl7_default_utc_offset: String::new(),
            hl7_time_zone: String::new(),
            hl7_mdc_codes: BTreeMap::new(),
            max_message_bytes: vigil_wire::MAX_DOCUMENT_BYTES,
            max_readings_per_message: vigil_wire::MAX_ENTRIES,
            clock_tolerance_seconds: 300,
            reject_unscored_codes: false,
        }
    }
}

/// `[kafka]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Kafka {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Consumer group.
    pub group_id: String,
    /// Input topic.
    pub observations_topic: String,
    /// Output topic.
    pub alerts_topic: String,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Wire format of the observations topic (`json`).
    pub format: String,
    /// Compacted changelog of patient state, co-partitioned with the observations topic
    /// (empty: state lives in memory only).
    pub state_topic: String,
    /// `exactly-once` (alerts, state records and input offsets in one Kafka transaction)
    /// or `at-least-once` (for clusters without transactions).
    pub delivery: String,
    /// The producer's `transactional.id` under exactly-once delivery: unique per running
    /// instance and stable across its restarts (empty: `<group_id>-<hostname>`).
    pub transactional_id: String,
    /// Raw librdkafka settings for both clients.
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for Kafka {
    fn default() -> Self {
        Kafka {
            brokers: "localhost:9092".into(),
            group_id: "vigil".into(),
            observations_topic: "vigil.observations".into(),
            alerts_topic: "vigil.alerts".into(),
            dlq_topic: "vigil.dlq".into(),
            format: "json".into(),
            state_topic: "vigil.state".into(),
            delivery: "exactly-once".into(),
            transactional_id: String::new(),
            librdkafka: BTreeMap::new(),
        }
    }
}

/// `[http]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub listen: String,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            listen: "127.0.0.1:9898".into(),
        }
    }
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `vigil_stream=debug,info`.
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// `[service]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Service {
    /// Most messages processed between two commits.
    pub batch_max_messages: usize,
    /// Longest a batch waits to fill, in milliseconds.
    pub batch_max_wait_ms: u64,
    /// How long shutdown may take before in-flight work is abandoned, in milliseconds.
    pub shutdown_deadline_ms: u64,
    /// How often (wall clock, milliseconds) patients with active alerts are checked for
    /// readings gone overdue while no message of theirs arrives.
    pub overdue_check_ms: u64,
    /// Milliseconds after which a batch whose delivery (exactly-once: its transaction)
    /// has not finished is reported as stalled: logged at once, shown by `/readyz` and
    /// `vigil_delivery_stalled`, and logged again when it ends.
    pub stall_warning_ms: u64,
    /// Fault injection only, set by the fault harness (`vigil faults`, RELIABILITY.md):
    /// milliseconds to pause after each phase of every transaction, so that kills land
    /// inside transactions. Deliberately not in `config/vigil.toml`; 0 (off) otherwise.
    #[doc(hidden)]
    pub fault_injection_txn_pause_ms: u64,
}

impl Default for Service {
    fn default() -> Self {
        Service {
            batch_max_messages: 100_000,
            batch_max_wait_ms: 2,
            shutdown_deadline_ms: 10_000,
            overdue_check_ms: 30_000,
            stall_warning_ms: 10_000,
            fault_injection_txn_pause_ms: 0,
        }
    }
}

/// `[engine]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Engine {
    /// Minutes a vital sign stays usable.
    pub stale_vital_minutes: u64,
    /// Minutes a laboratory or blood-gas value stays usable.
    pub stale_lab_minutes: u64,
    /// Minutes an infusion rate stays usable.
    pub stale_infusion_minutes: u64,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            stale_vital_minutes: 6 * 60,
            stale_lab_minutes: 24 * 60,
            stale_infusion_minutes: 2 * 60,
        }
    }
}

/// `[alerts]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Alerts {
    /// A level must hold for this many consecutive assessments (0: by minutes only)...
    pub persistence_readings: u32,
    /// ...or this many minutes of event time (0: readings only).
    pub persistence_minutes: u64,
    /// NEWS2 risk band for advisory, urgent, emergency (`low_medium`, `medium`, `high`,
    /// or `off`).
    pub news2: [String; 3],
    /// qSOFA positive: `advisory`, `urgent`, `emergency` or `off`.
    pub qsofa: String,
    /// SIRS positive.
    pub sirs: String,
    /// SOFA rise of 2 or more over baseline.
    pub sofa: String,
    /// Sepsis-3 septic shock.
    pub septic_shock: String,
    /// Minimum MEWS total for advisory, urgent, emergency (0: off).
    pub mews: [u8; 3],
    /// Minimum Vigil Risk estimate in percent for advisory, urgent, emergency (0: off;
    /// all off by default: CLINICAL.md, "Vigil Risk").
    pub risk: [u8; 3],
    /// Topic to also publish each alert to as a FHIR resource (empty: off).
    pub fhir_topic: String,
    /// The FHIR resource: `DetectedIssue`, `RiskAssessment` or `Communication`.
    pub fhir_resource: String,
    /// Minutes of event time between repeats of an `overdue` alert while its readings
    /// stay overdue (0: only when a further parameter becomes overdue).
    pub overdue_reminder_minutes: u64,
    /// Follow the board's action topic (`[board] actions_topic`) and mark the alerts of a
    /// watched or stopped patient suppressed.
    pub board_actions: bool,
    /// `live` (alert events page) or `silent` (every decision is computed and published
    /// marked `"silent": true`, and nobody is paged: a run-in).
    pub mode: String,
    /// Rules whose alerts are silent even when `mode` is `live` (a rule run in beside
    /// live ones).
    pub silent_rules: Vec<String>,
    /// The Vigil Risk model file (empty: the model shipped inside Vigil).
    pub risk_model: String,
    /// The sha256 of `risk_model`'s bytes, in hex: the model the configuration names.
    pub risk_model_sha256: String,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            persistence_readings: 0,
            persistence_minutes: 60,
            news2: ["off".into(), "off".into(), "off".into()],
            qsofa: "off".into(),
            sirs: "off".into(),
            sofa: "off".into(),
            septic_shock: "emergency".into(),
            mews: [0, 0, 0],
            risk: [3, 0, 0],
            fhir_topic: String::new(),
            fhir_resource: "DetectedIssue".into(),
            overdue_reminder_minutes: 60,
            board_actions: true,
            mode: "live".into(),
            silent_rules: Vec::new(),
            risk_model: String::new(),
            risk_model_sha256: String::new(),
        }
    }
}

impl Alerts {
    /// Every rule alerting at its published threshold, at once (the policy
    /// `vigil_score::PolicyConfig::every_rule`): the most alerts a feed can produce. The
    /// load benchmarks and the fault-injection harness run on it, since they measure the
    /// service rather than the clinical policy.
    pub fn every_rule() -> Alerts {
        Alerts {
            persistence_readings: 1,
            persistence_minutes: 0,
            news2: ["low_medium".into(), "medium".into(), "high".into()],
            qsofa: "urgent".into(),
            sirs: "advisory".into(),
            sofa: "urgent".into(),
            mews: [0, 0, 0],
            risk: [0, 0, 0],
            ..Alerts::default()
        }
    }

    /// [`Alerts::every_rule`] as the lines of an `[alerts]` section.
    pub fn every_rule_toml() -> &'static str {
        "[alerts]\npersistence_readings = 1\npersistence_minutes = 0\n\
         news2 = [\"low_medium\", \"medium\", \"high\"]\nqsofa = \"urgent\"\nsirs = \"advisory\"\nsofa = \"urgent\"\nmews = [0, 0, 0]\nrisk = [0, 0, 0]\n"
    }
}

/// Whether `topic` is a legal Kafka topic name.
/// `host:port` with a port from 1 to 65535, optionally after a `protocol://` prefix
/// (librdkafka's form); an IPv6 host is written in brackets.
fn valid_broker(broker: &str) -> bool {
    let address = broker.split_once("://").map_or(broker, |(_, rest)| rest);
    address.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && !host.contains(char::is_whitespace)
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    })
}

/// A tracing filter Vigil documents: a level, or comma-separated `module=level` directives
/// (a module path of letters, digits, `_` and `::`).
fn valid_log_level(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let level = |l: &str| LEVELS.contains(&l.to_ascii_lowercase().as_str());
    !filter.trim().is_empty()
        && filter
            .split(',')
            .map(str::trim)
            .all(|d| match d.split_once('=') {
                None => level(d),
                Some((module, l)) => {
                    !module.is_empty()
                        && module
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                        && level(l)
                }
            })
}

fn valid_topic(topic: &str) -> bool {
    (1..=249).contains(&topic.len())
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Everything wrong with a configuration, one problem per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for ConfigError {}

/// The checked form the service runs on.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Kafka: brokers, group, topics, raw client settings.
    pub kafka: KafkaSettings,
    /// How batches reach Kafka.
    pub delivery: DeliveryMode,
    /// The consumer loop's batching, deadlines and sweep.
    pub service: ServiceSettings,
    /// The HTTP address.
    pub listen: SocketAddr,
    /// Engine settings.
    pub engine: EngineConfig,
    /// Alert policy.
    pub policy: PolicyConfig,
    /// How far a reading may be dated after its message's receive time.
    pub clock_tolerance: Span,
    /// Dead-letter readings of valid codes Vigil does not score instead of ignoring them.
    pub reject_unscored_codes: bool,
    /// How logs are written.
    pub log_format: LogFormat,
    /// The log filter (`error`, `warn`, `info`, `debug`, `trace` or an `EnvFilter`
    /// directive).
    pub log_level: String,
    /// The observations topic's wire format.
    pub format: vigil_wire::Format,
    /// FHIR alert output: the resource and its topic, if configured.
    pub fhir_out: Option<(crate::fhir_out::FhirResource, String)>,
    /// The MLLP listener's address.
    pub mllp_listen: SocketAddr,
    /// Where `vigil mllp` serves its metrics and health endpoints.
    pub mllp_http_listen: SocketAddr,
    /// How long `vigil mllp` waits for Kafka before answering `AE`.
    pub mllp_ack_timeout: Duration,
    /// The topic `vigil mllp` forwards to (the observations topic unless `[mllp] topic`
    /// names another).
    pub mllp_topic: String,
    /// HL7 v2 decoder options from `[input]` (used by `vigil mllp` whatever the topic's
    /// format).
    pub hl7: vigil_wire::Hl7Options,
    /// FHIR decoder options from `[input]`, whatever the topic's format.
    pub fhir: vigil_wire::FhirOptions,
    /// The rapid-response board (`vigil board`).
    pub board: BoardSettings,
    /// The action topic whose watches and stops mark alerts suppressed (`[alerts]
    /// board_actions`), if followed.
    pub suppress_from: Option<String>,
    /// The rules whose alerts are published silent (`[alerts] mode` and `silent_rules`).
    pub silent: Vec<RuleId>,
}

/// The rules `[alerts]` makes silent: every rule in `mode = "silent"`, else those of
/// `silent_rules`.
fn silent_rules(a: &Alerts, errors: &mut Vec<String>) -> Vec<RuleId> {
    let mut silent: Vec<RuleId> = Vec::new();
    for name in &a.silent_rules {
        match RuleId::ALL.iter().find(|r| r.name() == name) {
            Some(r) if !silent.contains(r) => silent.push(*r),
            Some(_) => {}
            None => errors.push(format!(
                "alerts.silent_rules: {name:?} is not a rule; expected some of {}",
                RuleId::ALL.map(RuleId::name).join(", ")
            )),
        }
    }
    match a.mode.as_str() {
        "live" => silent,
        "silent" => RuleId::ALL.to_vec(),
        other => {
            errors.push(format!(
                "alerts.mode: {other:?}; expected live (alerts page) or silent (computed and \
                 published marked silent, nobody paged: a run-in)"
            ));
            silent
        }
    }
}

/// The Vigil Risk model `[alerts] risk_model` names, read and checked against
/// `risk_model_sha256`; `None` for the shipped model (or after an error, recorded).
fn risk_model(a: &Alerts, errors: &mut Vec<String>) -> Option<std::sync::Arc<RiskModel>> {
    if a.risk_model.is_empty() {
        if !a.risk_model_sha256.is_empty() {
            errors.push(
                "alerts.risk_model_sha256 is set but alerts.risk_model is empty; expected both \
                 (a model file and its sha256) or neither (the shipped model)"
                    .into(),
            );
        }
        return None;
    }
    let bytes = match std::fs::read(&a.risk_model) {
        Ok(b) => b,
        Err(e) => {
            errors.push(format!(
                "alerts.risk_model: {:?} cannot be read: {e}",
                a.risk_model
            ));
            return None;
        }
    };
    let digest = sha256_hex(&bytes);
    let expected = a.risk_model_sha256.trim().to_ascii_lowercase();
    if expected.is_empty() {
        errors.push(format!(
            "alerts.risk_model_sha256 is empty; expected the sha256 of {:?} (`vigil train` and \
             `vigil recalibrate` print it; this file's is {digest}), so that only the model \
             the configuration names is ever run",
            a.risk_model
        ));
        return None;
    }
    if expected != digest {
        errors.push(format!(
            "alerts.risk_model: {:?} has sha256 {digest}, not the {expected} of \
             alerts.risk_model_sha256; expected the model file this configuration names \
             (replace the file, or set the sha256 of the one you mean to run)",
            a.risk_model
        ));
        return None;
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => {
            errors.push(format!(
                "alerts.risk_model: {:?} is not UTF-8 text; expected a model file written by \
                 `vigil train` or `vigil recalibrate`",
                a.risk_model
            ));
            return None;
        }
    };
    match RiskModel::parse(&text) {
        Ok(m) => Some(std::sync::Arc::new(m)),
        Err(e) => {
            errors.push(format!("alerts.risk_model: {:?}: {e}", a.risk_model));
            None
        }
    }
}

/// The sha256 of `bytes` in lower-case hex: how a configuration names a model file.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The key actions are signed with, from `path` (the setting `setting`).
///
/// # Errors
///
/// When the file cannot be read or holds no key, naming the setting and the file (never
/// quoting its content).
pub fn read_action_key(
    path: &std::path::Path,
    setting: &str,
) -> Result<vigil_board::ActionKey, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{setting}: {}: {e}", path.display()))?;
    vigil_board::ActionKey::from_hex(&text)
        .map_err(|e| format!("{setting}: {}: {e}", path.display()))
}

/// `[kafka]`, validated.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Consumer group.
    pub group_id: String,
    /// Input topic.
    pub observations_topic: String,
    /// Alert topic.
    pub alerts_topic: String,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// The patient-state changelog, if state is kept beyond memory.
    pub state_topic: Option<String>,
    /// Raw librdkafka settings for both clients (the keys Vigil owns refused).
    pub librdkafka: BTreeMap<String, String>,
}

/// The delivery guarantee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Output acknowledged, then input offsets committed.
    AtLeastOnce,
    /// Output, changelog, seals and input offsets in one Kafka transaction.
    ExactlyOnce {
        /// The producer's `transactional.id`: unique per instance, stable across its
        /// restarts.
        transactional_id: String,
    },
}

/// `[service]`, validated.
#[derive(Clone, Debug)]
pub struct ServiceSettings {
    /// Most messages processed between two commits.
    pub batch_max_messages: usize,
    /// Longest a batch waits to fill.
    pub batch_max_wait: Duration,
    /// How long shutdown may take before in-flight work is abandoned.
    pub shutdown_deadline: Duration,
    /// How often patients with active alerts are checked for overdue readings.
    pub overdue_check: Duration,
    /// How long a batch's delivery may take before it is reported as stalled.
    pub stall_warning: Duration,
    /// Fault injection only: a pause after each phase of every transaction.
    pub fault_injection_txn_pause: Option<Duration>,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Reads `path`, applies environment overrides from `env` and parses.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the file, the key and the problem.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(vec![format!("{}: cannot read: {e}", path.display())]))?;
        Config::parse_from(&text, env, Some(&path.display().to_string()))
    }

    /// Parses TOML text and applies environment overrides.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for TOML syntax, unknown keys, wrong types or bad overrides.
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Config::parse_from(text, env, None)
    }

    /// [`Config::parse`] of the text of the file named `file`: every error, of syntax,
    /// keys, types or overrides, at once, each with the file, line and column of its key
    /// or the environment variable that set it.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] with one line per problem.
    pub fn parse_from(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
        file: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let mut origin = Origin {
            file: file.map(|f| (f.to_owned(), text.to_owned())),
            env: BTreeMap::new(),
        };
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let message = e.to_string().trim().replace('\n', " ");
            ConfigError(vec![match file {
                Some(f) => format!("{f}: {message}"),
                None => message,
            }])
        })?;
        let mut errors = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("VIGIL_") else {
                continue;
            };
            if TOOL_VARIABLES.contains(&name.as_str()) {
                // Read by Vigil's tools and tests, not a configuration key: passed on to a
                // `vigil run` a tool starts, it must not stop it.
                continue;
            }
            let rest = rest.to_ascii_lowercase();
            let Some((section, key)) = [
                "kafka", "http", "log", "service", "engine", "alerts", "input", "mllp", "board",
            ]
            .iter()
            .find_map(|s| {
                rest.strip_prefix(s)
                    .and_then(|k| k.strip_prefix('_'))
                    .map(|k| (*s, k))
            }) else {
                errors.push(format!(
                    "environment variable {name}: not a configuration key \
                     (expected VIGIL_<SECTION>_<KEY>, sections kafka, http, log, service, engine, alerts, input, mllp, board)"
                ));
                continue;
            };
            origin.env.insert(format!("{section}.{key}"), name.clone());
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            let section = table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = section {
                t.insert(key.to_owned(), parsed);
            }
        }
        // Deserialization stops at the first bad key: note it, take the key out and try
        // again, so that one run reports every key that is unknown or of the wrong type.
        for _ in 0..1000 {
            match Config::deserialize(toml::Value::Table(table.clone())) {
                Ok(mut config) if errors.is_empty() => {
                    config.origin = origin;
                    return Ok(config);
                }
                Ok(mut config) => {
                    // The keys left are well-typed: check their values too, so that one
                    // run reports everything.
                    config.origin = origin.clone();
                    if let Err(ConfigError(more)) = config.validate() {
                        errors.extend(more);
                    }
                    break;
                }
                Err(e) => {
                    let (key, message) = explain(&e.to_string());
                    errors.push(origin.attribute(&message));
                    let (section, name) = split_key(&key);
                    let removed = match (table.get_mut(section), name) {
                        (Some(toml::Value::Table(t)), n) if !n.is_empty() => t.remove(n),
                        _ => table.remove(section),
                    };
                    if removed.is_none() {
                        break;
                    }
                }
            }
        }
        Err(ConfigError(errors))
    }

    /// Checks every value and cross-field rule.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] with one line per problem, each naming the key, the value and
    /// what was expected.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let mut errors = Vec::new();
        let mut need = |ok: bool, msg: String| {
            if !ok {
                errors.push(msg);
            }
        };
        let k = &self.kafka;
        need(
            !k.brokers.trim().is_empty(),
            "kafka.brokers: empty; expected host:port[,host:port...]".into(),
        );
        for broker in k
            .brokers
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
        {
            need(
                valid_broker(broker),
                format!(
                    "kafka.brokers: {broker:?} is not host:port; expected host:port[,host:port...] \
                     with a port from 1 to 65535 (for example \"localhost:9092\"): the port is \
                     never assumed"
                ),
            );
        }
        need(
            !k.group_id.is_empty(),
            "kafka.group_id: empty; expected a consumer group name".into(),
        );
        for (key, topic) in [
            ("kafka.observations_topic", &k.observations_topic),
            ("kafka.alerts_topic", &k.alerts_topic),
            ("kafka.dlq_topic", &k.dlq_topic),
            ("kafka.state_topic", &k.state_topic),
        ] {
            if key == "kafka.state_topic" && topic.is_empty() {
                continue;
            }
            need(
                valid_topic(topic),
                format!(
                    "{key}: {topic:?} is not a Kafka topic name; expected 1-249 of A-Z a-z 0-9 . _ -"
                ),
            );
        }
        let input = &self.input;
        let time_zone = match input.hl7_time_zone.as_str() {
            "" => None,
            name => {
                let zone = vigil_wire::LocalZone::named(name);
                if let Err(why) = &zone {
                    need(false, format!("input.hl7_time_zone: {why}"));
                }
                need(
                    input.hl7_default_utc_offset.is_empty(),
                    format!(
                        "input.hl7_time_zone: {name:?} and input.hl7_default_utc_offset: {:?} are \
                         both set; expected one of them (the zone follows daylight saving time, \
                         the offset does not)",
                        input.hl7_default_utc_offset
                    ),
                );
                zone.ok()
            }
        };
        let offset = match input.hl7_default_utc_offset.as_str() {
            "" => None,
            text => {
                let parsed = text.is_ascii()
                    && text.len() == 6
                    && matches!(&text[..1], "+" | "-")
                    && &text[3..4] == ":"
                    && text[1..3].parse::<i32>().is_ok_and(|h| h <= 23)
                    && text[4..6].parse::<i32>().is_ok_and(|m| m <= 59);
                need(
                    parsed,
                    format!(
                        "input.hl7_default_utc_offset: {text:?}; expected empty or an offset such as +01:00"
                    ),
                );
                parsed.then(|| {
                    let minutes = text[1..3].parse::<i32>().unwrap_or(0) * 60
                        + text[4..6].parse::<i32>().unwrap_or(0);
                    if text.starts_with('-') {
                        -minutes
                    } else {
                        minutes
                    }
                })
            }
        };
        let identifier_types: Vec<String> = input
            .hl7_identifier_type
            .split(',')
            .map(|t| t.trim().to_owned())
            .collect();
        need(
            identifier_types.iter().all(|t| {
                !t.is_empty() && t.len() <= 10 && t.bytes().all(|b| b.is_ascii_alphanumeric())
            }),
            format!(
                "input.hl7_identifier_type: {:?}; expected identifier type codes such as MR, comma-separated",
                input.hl7_identifier_type
            ),
        );
        need(
            (1..=7 * 24 * 3600).contains(&input.clock_tolerance_seconds),
            format!(
                "input.clock_tolerance_seconds: {}; expected 1-604800",
                input.clock_tolerance_seconds
            ),
        );
        let mut extra_mdc = Vec::new();
        let mut ignored_mdc = Vec::new();
        for (code, param) in &input.hl7_mdc_codes {
            if param == "unscored" {
                ignored_mdc.push(code.clone());
                continue;
            }
            match vigil_score::Param::from_code(param).filter(|p| p.code() == param) {
                Some(p) => extra_mdc.push((code.clone(), p)),
                None => need(
                    false,
                    format!(
                        "input.hl7_mdc_codes.{code}: {param:?} is not a canonical parameter code (heart_rate, sbp, ...) or \"unscored\""
                    ),
                ),
            }
        }
        need(
            (1024..=64 * 1024 * 1024).contains(&input.max_message_bytes),
            format!(
                "input.max_message_bytes: {}; expected 1024-67108864",
                input.max_message_bytes
            ),
        );
        need(
            (1..=100_000).contains(&input.max_readings_per_message),
            format!(
                "input.max_readings_per_message: {}; expected 1-100000",
                input.max_readings_per_message
            ),
        );
        let limits = vigil_wire::Limits {
            max_bytes: input.max_message_bytes,
            max_readings: input.max_readings_per_message,
        };
        let hl7 = vigil_wire::Hl7Options {
            identifier_types: identifier_types.clone(),
            accept_preliminary: input.hl7_accept_preliminary,
            default_offset_minutes: offset,
            time_zone,
            limits,
            extra_mdc: extra_mdc.clone(),
            ignored_mdc,
        };
        let fhir = vigil_wire::FhirOptions {
            accept_preliminary: input.fhir_accept_preliminary,
            limits,
        };
        let format = match k.format.as_str() {
            "json" => Some(vigil_wire::Format::Json),
            "fhir" => Some(vigil_wire::Format::Fhir(fhir)),
            "hl7v2" => Some(vigil_wire::Format::Hl7v2(hl7.clone())),
            _ => None,
        };
        need(
            format.is_some(),
            format!(
                "kafka.format: {:?}; expected one of {}",
                k.format,
                vigil_wire::Format::NAMES.join(", ")
            ),
        );
        need(
            k.observations_topic != k.alerts_topic && k.observations_topic != k.dlq_topic,
            "kafka: the observations topic must differ from the alerts and dead-letter topics"
                .into(),
        );
        for (key, value) in &k.librdkafka {
            let owned = matches!(
                key.as_str(),
                "group.id"
                    | "bootstrap.servers"
                    | "enable.auto.commit"
                    | "enable.auto.offset.store"
                    | "transactional.id"
                    | "isolation.level"
            );
            need(
                !owned,
                format!(
                    "kafka.librdkafka.{key}: set by Vigil itself; use the [kafka] keys instead"
                ),
            );
            if !owned {
                // librdkafka judges its own settings; ask it now rather than at start-up.
                let checked = rdkafka::ClientConfig::new()
                    .set(key, value)
                    .create_native_config();
                if let Err(e) = checked {
                    need(
                        false,
                        format!("kafka.librdkafka.{key}: {value:?} refused by librdkafka: {e}"),
                    );
                }
            }
        }
        // A message Vigil takes must fit a Kafka message beside its key and dead-letter
        // headers, or `vigil mllp` would answer "send again" for ever and the service
        // could not dead-letter it.
        let producer_max = k
            .librdkafka
            .get("message.max.bytes")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(LIBRDKAFKA_MESSAGE_MAX_BYTES);
        need(
            self.input.max_message_bytes + vigil_wire::KAFKA_HEADROOM <= producer_max,
            format!(
                "input.max_message_bytes: {} does not fit in a Kafka message: the producer's \
                 message.max.bytes is {producer_max} ([kafka.librdkafka] \"message.max.bytes\"; \
                 librdkafka's default is {LIBRDKAFKA_MESSAGE_MAX_BYTES}) and a message needs {} \
                 bytes beside its payload (key, dead-letter headers, framing); set \
                 max_message_bytes to at most {} or raise message.max.bytes (and the topics' \
                 max.message.bytes with it)",
                self.input.max_message_bytes,
                vigil_wire::KAFKA_HEADROOM,
                producer_max.saturating_sub(vigil_wire::KAFKA_HEADROOM),
            ),
        );
        need(
            matches!(k.delivery.as_str(), "exactly-once" | "at-least-once"),
            format!(
                "kafka.delivery: {:?} unknown; expected \"exactly-once\" or \"at-least-once\"",
                k.delivery
            ),
        );
        let delivery = if k.delivery == "exactly-once" {
            DeliveryMode::ExactlyOnce {
                transactional_id: if k.transactional_id.is_empty() {
                    format!("{}-{}", k.group_id, hostname())
                } else {
                    k.transactional_id.clone()
                },
            }
        } else {
            DeliveryMode::AtLeastOnce
        };
        let listen = self.http.listen.parse::<SocketAddr>();
        need(
            (100..=300_000).contains(&self.mllp.ack_timeout_ms),
            format!(
                "mllp.ack_timeout_ms: {}; expected 100-300000 (a gateway waits this long for \
                 an ACK when Kafka cannot take a message)",
                self.mllp.ack_timeout_ms
            ),
        );
        let mllp_listen = self.mllp.listen.parse::<SocketAddr>();
        need(
            mllp_listen.is_ok(),
            format!(
                "mllp.listen: {:?} is not an address; expected host:port such as 127.0.0.1:2575",
                self.mllp.listen
            ),
        );
        let mllp_http_listen = self.mllp.http_listen.parse::<SocketAddr>();
        need(
            mllp_http_listen.is_ok(),
            format!(
                "mllp.http_listen: {:?} is not an address; expected host:port such as 127.0.0.1:9899",
                self.mllp.http_listen
            ),
        );
        need(
            listen.is_ok(),
            format!(
                "http.listen: {:?} is not an address; expected host:port such as 127.0.0.1:9898",
                self.http.listen
            ),
        );
        need(
            matches!(self.log.format.as_str(), "text" | "json"),
            format!("log.format: {:?}; expected text or json", self.log.format),
        );
        need(
            valid_log_level(&self.log.level),
            format!(
                "log.level: {:?}; expected a level (error, warn, info, debug, trace or off) or \
                 comma-separated module=level directives such as \"vigil_stream=debug,info\"",
                self.log.level
            ),
        );
        let s = &self.service;
        need(
            (1..=100_000).contains(&s.batch_max_messages),
            format!(
                "service.batch_max_messages: {}; expected 1-100000",
                s.batch_max_messages
            ),
        );
        need(
            (1..=10_000).contains(&s.batch_max_wait_ms),
            format!(
                "service.batch_max_wait_ms: {}; expected 1-10000",
                s.batch_max_wait_ms
            ),
        );
        need(
            (100..=600_000).contains(&s.shutdown_deadline_ms),
            format!(
                "service.shutdown_deadline_ms: {}; expected 100-600000",
                s.shutdown_deadline_ms
            ),
        );
        need(
            (100..=3_600_000).contains(&s.overdue_check_ms),
            format!(
                "service.overdue_check_ms: {}; expected 100-3600000",
                s.overdue_check_ms
            ),
        );
        need(
            (100..=600_000).contains(&s.stall_warning_ms),
            format!(
                "service.stall_warning_ms: {}; expected 100-600000 (a batch whose delivery takes \
                 longer is reported as stalled)",
                s.stall_warning_ms
            ),
        );
        let e = &self.engine;
        for (key, v) in [
            ("engine.stale_vital_minutes", e.stale_vital_minutes),
            ("engine.stale_lab_minutes", e.stale_lab_minutes),
            ("engine.stale_infusion_minutes", e.stale_infusion_minutes),
        ] {
            need(
                (1..=7 * 24 * 60).contains(&v),
                format!("{key}: {v}; expected 1-10080 minutes"),
            );
        }
        let a = &self.alerts;
        let a_board_actions = a.board_actions;
        need(
            a.persistence_readings >= 1 || a.persistence_minutes >= 1,
            "alerts.persistence_readings and alerts.persistence_minutes are both 0; expected \
             readings 1 or more (1: act at once), or minutes 1 or more"
                .into(),
        );
        let fhir_resource = crate::fhir_out::FhirResource::from_name(&a.fhir_resource);
        need(
            fhir_resource.is_some(),
            format!(
                "alerts.fhir_resource: {:?}; expected DetectedIssue, RiskAssessment or Communication",
                a.fhir_resource
            ),
        );
        let topic_ok = a.fhir_topic.is_empty() || valid_topic(&a.fhir_topic);
        need(
            topic_ok,
            format!(
                "alerts.fhir_topic: {:?} is not a Kafka topic name; expected empty (off) or 1-249 of A-Z a-z 0-9 . _ -",
                a.fhir_topic
            ),
        );
        let fhir_out = fhir_resource
            .filter(|_| !a.fhir_topic.is_empty())
            .map(|r| (r, a.fhir_topic.clone()));
        let level = |key: &str, v: &str, errors: &mut Vec<String>| match v {
            "off" => None,
            "advisory" => Some(Level::Advisory),
            "urgent" => Some(Level::Urgent),
            "emergency" => Some(Level::Emergency),
            other => {
                errors.push(format!(
                    "alerts.{key}: {other:?}; expected advisory, urgent, emergency or off"
                ));
                None
            }
        };
        let mut policy = PolicyConfig {
            persistence: Persistence {
                readings: a.persistence_readings,
                duration: (a.persistence_minutes > 0)
                    .then(|| Span::minutes(a.persistence_minutes as i64)),
            },
            reminder: (a.overdue_reminder_minutes > 0)
                .then(|| Span::minutes(a.overdue_reminder_minutes.min(100_000) as i64)),
            ..PolicyConfig::default()
        };
        for (i, risk) in a.news2.iter().enumerate() {
            policy.thresholds.news2[i] = match risk.as_str() {
                "off" => None,
                "low_medium" => Some(Risk::LowMedium),
                "medium" => Some(Risk::Medium),
                "high" => Some(Risk::High),
                other => {
                    errors.push(format!(
                        "alerts.news2[{i}]: {other:?}; expected low_medium, medium, high or off"
                    ));
                    None
                }
            };
        }
        policy.thresholds.qsofa = level("qsofa", &a.qsofa, &mut errors);
        policy.thresholds.sirs = level("sirs", &a.sirs, &mut errors);
        policy.thresholds.sofa = level("sofa", &a.sofa, &mut errors);
        policy.thresholds.septic_shock = level("septic_shock", &a.septic_shock, &mut errors);
        policy.thresholds.mews = a.mews.map(|m| (m > 0).then_some(m));
        // A higher level must need a higher score: a level that is off is skipped.
        let rising = |levels: &[Option<u8>]| {
            let on: Vec<u8> = levels.iter().flatten().copied().collect();
            on.windows(2).all(|w| w[0] < w[1])
        };
        policy.thresholds.risk = a.risk.map(|m| (m > 0).then_some(m));
        if !rising(&policy.thresholds.risk) || a.risk.iter().any(|m| *m > 100) {
            errors.push(format!(
                "alerts.risk: {:?}; expected minimum estimates in percent (1-100) that rise from \
                 advisory to urgent to emergency (0 turns a level off), for example [8, 0, 0]",
                a.risk
            ));
        }
        let silent = silent_rules(a, &mut errors);
        let risk_model = risk_model(a, &mut errors);
        if !rising(&policy.thresholds.mews) {
            errors.push(format!(
                "alerts.mews: {:?}; expected minimum totals that rise from advisory to urgent \
                 to emergency (0 turns a level off), for example [3, 5, 7]",
                a.mews
            ));
        }
        let news2_ranks: Vec<Option<u8>> = policy
            .thresholds
            .news2
            .iter()
            .map(|r| r.map(|r| r as u8))
            .collect();
        if !rising(&news2_ranks) {
            errors.push(format!(
                "alerts.news2: {:?}; expected risk bands that rise from advisory to urgent to \
                 emergency (low_medium, medium, high; off turns a level off)",
                a.news2
            ));
        }
        let board = self.board.validate(&mut errors);
        let origin = &self.origin;
        let (Ok(listen), true, Some(board)) = (listen, errors.is_empty(), board) else {
            return Err(ConfigError(
                errors.iter().map(|e| origin.attribute(e)).collect(),
            ));
        };
        let engine = EngineConfig {
            staleness: Staleness {
                vital: Span::minutes(e.stale_vital_minutes as i64),
                lab: Span::minutes(e.stale_lab_minutes as i64),
                infusion: Span::minutes(e.stale_infusion_minutes as i64),
                ..Staleness::default()
            },
            // Nothing in the service shows Vigil Risk but its own alerts: without an alert
            // level it is not computed (it costs about three times the other rules together).
            score_risk: policy.thresholds.risk.iter().any(Option::is_some),
            risk: risk_model.unwrap_or_else(vigil_score::risk::RiskModel::shipped_shared),
            ..EngineConfig::default()
        };
        let (Ok(mllp_listen), Ok(mllp_http_listen)) = (mllp_listen, mllp_http_listen) else {
            return Err(ConfigError(
                errors.iter().map(|e| origin.attribute(e)).collect(),
            ));
        };
        let k = self.kafka;
        let sv = self.service;
        Ok(Settings {
            mllp_topic: if self.mllp.topic.is_empty() {
                k.observations_topic.clone()
            } else {
                self.mllp.topic
            },
            kafka: KafkaSettings {
                brokers: k.brokers,
                group_id: k.group_id,
                observations_topic: k.observations_topic,
                alerts_topic: k.alerts_topic,
                dlq_topic: k.dlq_topic,
                state_topic: (!k.state_topic.is_empty()).then_some(k.state_topic),
                librdkafka: k.librdkafka,
            },
            delivery,
            service: ServiceSettings {
                batch_max_messages: sv.batch_max_messages,
                batch_max_wait: Duration::from_millis(sv.batch_max_wait_ms),
                shutdown_deadline: Duration::from_millis(sv.shutdown_deadline_ms),
                overdue_check: Duration::from_millis(sv.overdue_check_ms),
                stall_warning: Duration::from_millis(sv.stall_warning_ms),
                fault_injection_txn_pause: (sv.fault_injection_txn_pause_ms > 0)
                    .then(|| Duration::from_millis(sv.fault_injection_txn_pause_ms.min(10_000))),
            },
            clock_tolerance: Span::seconds(input.clock_tolerance_seconds as i64),
            reject_unscored_codes: input.reject_unscored_codes,
            mllp_listen,
            mllp_http_listen,
            mllp_ack_timeout: Duration::from_millis(self.mllp.ack_timeout_ms),
            hl7,
            fhir,
            fhir_out,
            format: format.unwrap_or_default(),
            log_format: if self.log.format == "json" {
                LogFormat::Json
            } else {
                LogFormat::Text
            },
            log_level: self.log.level,
            listen,
            engine,
            policy,
            suppress_from: a_board_actions.then(|| board.actions_topic.clone()),
            board,
            silent,
        })
    }
}

impl Settings {
    /// The format `name` (`json`, `fhir`, `hl7v2`) with this configuration's `[input]`
    /// options, as `vigil decode` and `vigil score` read a sample: exactly as the service
    /// would read it from a topic of that format.
    pub fn format_named(&self, name: &str) -> Option<vigil_wire::Format> {
        match name {
            "json" => Some(vigil_wire::Format::Json),
            "fhir" => Some(vigil_wire::Format::Fhir(self.fhir)),
            "hl7v2" => Some(vigil_wire::Format::Hl7v2(self.hl7.clone())),
            _ => None,
        }
    }
}

/// This machine's host name (stable for a Kubernetes StatefulSet pod), for the default
/// `transactional.id`.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "vigil".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_shipped_file_is_valid_and_documents_every_key() {
        let text = include_str!("../../../config/vigil.toml");
        let config = Config::parse(text, []).expect("config/vigil.toml parses");
        assert_eq!(
            config,
            Config::default(),
            "the shipped file states the defaults"
        );
        config.validate().expect("and they are valid");
        // Every key of every section appears in the shipped file.
        let defaults = toml::Value::try_from(DefaultsView::default()).expect("serialisable");
        for (section, keys) in defaults.as_table().expect("a table") {
            for key in keys.as_table().expect("a table").keys() {
                assert!(
                    text.contains(&format!("\n{key} =")) || text.contains(&format!("\n# {key} =")),
                    "config/vigil.toml does not document {section}.{key}"
                );
            }
        }
    }

    /// The key names of every section, for the documentation check.
    #[derive(Default, serde::Serialize)]
    struct DefaultsView {
        kafka: KafkaKeys,
        http: HttpKeys,
        log: LogKeys,
        service: ServiceKeys,
        engine: EngineKeys,
        alerts: AlertsKeys,
        input: InputKeys,
        mllp: MllpKeys,
        board: BoardKeys,
    }
    /// `users` and `proxy_roles` are tables, documented as `[[board.users]]` and
    /// `[board.proxy_roles]`.
    #[derive(Default, serde::Serialize)]
    struct BoardKeys {
        listen: u8,
        actions_topic: u8,
        tls_cert: u8,
        tls_key: u8,
        session_minutes: u8,
        login_attempts: u8,
        login_window_minutes: u8,
        dismiss_reasons: u8,
        max_watch_minutes: u8,
        escalate_minutes: u8,
        max_tier: u8,
        trusted_proxies: u8,
        proxy_user_header: u8,
        proxy_groups_header: u8,
    }
    #[derive(Default, serde::Serialize)]
    struct KafkaKeys {
        brokers: u8,
        group_id: u8,
        observations_topic: u8,
        alerts_topic: u8,
        dlq_topic: u8,
        format: u8,
        state_topic: u8,
        delivery: u8,
        transactional_id: u8,
    }
    #[derive(Default, serde::Serialize)]
    struct HttpKeys {
        listen: u8,
    }
    #[derive(Default, serde::Serialize)]
    struct LogKeys {
        format: u8,
        level: u8,
    }
    #[derive(Default, serde::Serialize)]
    struct ServiceKeys {
        batch_max_messages: u8,
        batch_max_wait_ms: u8,
        shutdown_deadline_ms: u8,
        overdue_check_ms: u8,
        stall_warning_ms: u8,
    }
    #[derive(Default, serde::Serialize)]
    struct EngineKeys {
        stale_vital_minutes: u8,
        stale_lab_minutes: u8,
        stale_infusion_minutes: u8,
    }
    #[derive(Default, serde::Serialize)]
    struct AlertsKeys {
        persistence_readings: u8,
        persistence_minutes: u8,
        news2: u8,
        qsofa: u8,
        sirs: u8,
        sofa: u8,
        septic_shock: u8,
        mews: u8,
        fhir_topic: u8,
        fhir_resource: u8,
        overdue_reminder_minutes: u8,
        board_actions: u8,
        mode: u8,
        silent_rules: u8,
        risk_model: u8,
        risk_model_sha256: u8,
    }
    #[derive(Default, serde::Serialize)]
    struct InputKeys {
        fhir_accept_preliminary: u8,
        hl7_accept_preliminary: u8,
        hl7_identifier_type: u8,
        hl7_default_utc_offset: u8,
        hl7_time_zone: u8,
        hl7_mdc_codes: u8,
        max_message_bytes: u8,
        max_readings_per_message: u8,
        clock_tolerance_seconds: u8,
        reject_unscored_codes: u8,
    }
    #[derive(Default, serde::Serialize)]
    struct MllpKeys {
        listen: u8,
        topic: u8,
        ack_timeout_ms: u8,
        http_listen: u8,
    }

    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";

    #[test]
    fn the_run_in_mode_and_silent_rules_are_read_and_checked() {
        let silent = |text: &str| Config::parse(text, []).expect("parses").validate();
        let s = silent("[alerts]\nmode = \"silent\"\n").expect("valid");
        assert_eq!(s.silent, vigil_score::RuleId::ALL.to_vec());
        let s = silent("[alerts]\nsilent_rules = [\"risk\", \"news2\"]\n").expect("valid");
        assert_eq!(s.silent, vec![RuleId::Risk, RuleId::News2]);
        assert!(
            Config::default()
                .validate()
                .expect("valid")
                .silent
                .is_empty()
        );
        let e = silent("[alerts]\nmode = \"quiet\"\n").expect_err("refused");
        assert!(
            e.to_string()
                .contains("alerts.mode: \"quiet\"; expected live"),
            "{e}"
        );
        let e = silent("[alerts]\nsilent_rules = [\"news\"]\n").expect_err("refused");
        assert!(
            e.to_string()
                .contains("\"news\" is not a rule; expected some of qsofa, sirs, news2"),
            "{e}"
        );
    }

    #[test]
    fn a_risk_model_runs_only_when_it_is_the_file_the_configuration_names() {
        let dir = std::env::temp_dir().join(format!("vigil-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let path = dir.join("local.model");
        let mut model = RiskModel::shipped().clone();
        model.threshold_percent = 7;
        let text = model.to_text();
        std::fs::write(&path, &text).expect("written");
        let digest = sha256_hex(text.as_bytes());
        let with = |sha: &str| {
            let toml = format!(
                "[alerts]\nrisk_model = {:?}\nrisk_model_sha256 = {sha:?}\n",
                path.display().to_string()
            );
            Config::parse(&toml, []).expect("parses").validate()
        };
        // The named file: read and used.
        let s = with(&digest).expect("valid");
        assert_eq!(s.engine.risk.threshold_percent, 7);
        // Its hash in capitals is the same hash.
        assert!(with(&digest.to_uppercase()).is_ok());
        // Another file under the same name: refused, saying both hashes.
        let other = "0".repeat(64);
        let e = with(&other).expect_err("refused").to_string();
        assert!(e.contains(&digest) && e.contains(&other), "{e}");
        // No hash: refused, saying the file's hash.
        let e = with("").expect_err("refused").to_string();
        assert!(
            e.contains("risk_model_sha256 is empty") && e.contains(&digest),
            "{e}"
        );
        // A malformed model with its right hash: refused, saying why.
        std::fs::write(&path, "vigil-risk 1\nintercept x\n").expect("written");
        let bad = sha256_hex(b"vigil-risk 1\nintercept x\n");
        let e = with(&bad).expect_err("refused").to_string();
        assert!(
            e.contains("alerts.risk_model") && e.contains("line 2"),
            "{e}"
        );
        // A file that is not there.
        std::fs::remove_file(&path).expect("removed");
        let e = with(&digest).expect_err("refused").to_string();
        assert!(e.contains("cannot be read"), "{e}");
        let _ = std::fs::remove_dir(&dir);
        // A hash without a file.
        let e = Config::parse("[alerts]\nrisk_model_sha256 = \"ab\"\n", [])
            .expect("parses")
            .validate()
            .expect_err("refused")
            .to_string();
        assert!(e.contains("alerts.risk_model is empty"), "{e}");
    }

    #[test]
    fn the_board_section_reads_users_proxy_roles_and_escalation_times() {
        let text = format!(
            "[board]\nescalate_minutes = [0, 15, 5]\ntrusted_proxies = [\"10.0.0.5\"]\n\
             proxy_user_header = \"X-Forwarded-User\"\nproxy_groups_header = \"X-Forwarded-Groups\"\n\
             [board.proxy_roles]\nrrt = \"nurse\"\n\
             [[board.users]]\nname = \"alice\"\nrole = \"charge_nurse\"\npassword_hash = \"{HASH}\"\n"
        );
        let s = Config::parse(&text, [])
            .expect("parses")
            .validate()
            .expect("valid");
        let b = &s.board;
        assert_eq!(
            b.rules.escalate_after,
            [None, Some(Span::minutes(15)), Some(Span::minutes(5))]
        );
        assert_eq!(b.users[0].0, "alice");
        assert_eq!(b.users[0].1, vigil_board::Role::ChargeNurse);
        let proxy = b.proxy.as_ref().expect("a proxy");
        assert_eq!(proxy.user_header, "x-forwarded-user");
        assert_eq!(proxy.roles["rrt"], vigil_board::Role::Nurse);
        assert_eq!(b.tls, None);
        assert_eq!(b.rules.dismiss_reasons.len(), 5);
    }

    #[test]
    fn board_mistakes_are_each_named_with_what_was_expected() {
        let text = "[board]\ntls_cert = \"cert.pem\"\nescalate_minutes = [60, 15, 2000]\n\
                    max_tier = 0\ndismiss_reasons = []\nproxy_user_header = \"X-User\"\n\
                    time_zone = \"Mars/Olympus\"\nmax_connections = 3\n\
                    public_origin = \"board.example.org/\"\n\
                    [board.ward_names]\n\"ward-1\" = \"\"\n\
                    [[board.users]]\nname = \"bob\"\nrole = \"system\"\npassword_hash = \"secret\"\n";
        let e = Config::parse(text, [])
            .expect("parses")
            .validate()
            .expect_err("invalid")
            .to_string();
        for expected in [
            "board.tls_cert, board.tls_key: \"cert.pem\" and \"\"; expected both (HTTPS) or neither",
            "board.escalate_minutes: [60, 15, 2000]; expected minutes for advisory, urgent and emergency, each 0 (never) to 1440",
            "board.max_tier: 0; expected 1-9",
            "board.dismiss_reasons: []; expected at least one reason",
            "board.users[0].role: \"system\"; expected nurse, charge_nurse, quality or admin",
            "board.users[0].password_hash: not an argon2id hash; expected the output of `vigil hash-password`",
            "board.trusted_proxies: empty while board.proxy_user_header is set",
            "board.proxy_groups_header: empty while board.proxy_user_header is set",
            "board.proxy_roles: empty while board.proxy_user_header is set",
            "board.time_zone: ",
            "board.max_connections: 3; expected 16-65536",
            "board.public_origin: \"board.example.org/\"; expected a scheme and host",
            "board.ward_names.ward-1: \"\"; expected a name of 1-80 characters",
        ] {
            assert!(e.contains(expected), "{expected:?} not in:\n{e}");
        }
        assert!(
            !e.contains("secret"),
            "a password hash is never quoted: {e}"
        );
        // Each edge of the escalation time.
        for (minutes, ok) in [(0, true), (1440, true), (1441, false)] {
            let t = format!("[board]\nescalate_minutes = [{minutes}, 15, 5]\n");
            let r = Config::parse(&t, []).expect("parses").validate();
            assert_eq!(r.is_ok(), ok, "{minutes}");
        }
    }

    #[test]
    fn environment_overrides_keys() {
        let c = Config::parse(
            "[kafka]\nbrokers = \"a:1\"\n",
            env(&[
                ("VIGIL_KAFKA_BROKERS", "b:2"),
                ("VIGIL_KAFKA_GROUP_ID", "g2"),
                ("VIGIL_SERVICE_BATCH_MAX_MESSAGES", "50"),
                ("VIGIL_MLLP_LISTEN", "0.0.0.0:2575"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        // [mllp] is overridable like every other section (it was refused before).
        assert_eq!(c.mllp.listen, "0.0.0.0:2575");
        assert_eq!(c.kafka.brokers, "b:2");
        assert_eq!(c.kafka.group_id, "g2");
        assert_eq!(c.service.batch_max_messages, 50);
        let err = Config::parse("", env(&[("VIGIL_KAFKAA_X", "1")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("VIGIL_KAFKAA_X: not a configuration key"),
            "{err}"
        );
        // Issue 32: `vigil faults` passed its own VIGIL_TANSU on to the `vigil run` it
        // started, which refused it and was restarted without end. The tools' variables
        // are not keys, and no error.
        let tools: Vec<(&str, &str)> = TOOL_VARIABLES.iter().map(|v| (*v, "/x")).collect();
        assert!(Config::parse("", env(&tools)).is_ok());
    }

    #[test]
    fn errors_name_key_value_and_expectation() {
        let err = Config::parse("[kafka]\nbrokerz = \"x\"\n", [])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("kafka.brokerz: unknown key; expected one of `brokers`"),
            "{err}"
        );
        let err = Config::parse("[service]\nbatch_max_messages = \"many\"\n", [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("batch_max_messages"), "{err}");
        // Every error of a file at once, each with its line and column; a key an
        // environment variable set is blamed on the variable, not on the file.
        let text = "[kafka]\nbrokerz = \"x\"\nbrokers = \"localhost\"\n[service]\n  batch_max_messages = \"many\"\n[log]\nlevle = \"info\"\n";
        let lines = Config::parse_from(
            text,
            env(&[
                ("VIGIL_HTTP_LISTEN", "nowhere"),
                ("VIGIL_SERVICE_SHUTDOWN_DEADLINE_MS", "soon"),
            ]),
            Some("vigil.toml"),
        )
        .unwrap_err()
        .0;
        for expected in [
            "vigil.toml:2:1: kafka.brokerz: unknown key",
            "vigil.toml:5:3: service.batch_max_messages: invalid type: string \"many\"",
            "vigil.toml:7:1: log.levle: unknown key; expected `format` or `level`",
            "VIGIL_SERVICE_SHUTDOWN_DEADLINE_MS (environment variable): service.shutdown_deadline_ms: invalid type",
            "vigil.toml:3:1: kafka.brokers: \"localhost\" is not host:port",
            "VIGIL_HTTP_LISTEN (environment variable): http.listen: \"nowhere\" is not an address",
        ] {
            assert!(
                lines.iter().any(|l| l.starts_with(expected)),
                "{expected}\n{lines:#?}"
            );
        }
        assert_eq!(lines.len(), 6, "{lines:#?}");
        let c = Config::parse(
            "[http]\nlisten = \"nowhere\"\n[log]\nformat = \"xml\"\n[alerts]\nqsofa = \"loud\"\n[kafka]\nalerts_topic = \"bad topic\"\n[kafka.librdkafka]\n\"group.id\" = \"x\"\n",
            [],
        )
        .unwrap();
        let err = c.validate().unwrap_err();
        let lines = err.0;
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("http.listen: \"nowhere\" is not an address")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("log.format: \"xml\"; expected text or json")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("alerts.qsofa: \"loud\"")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("kafka.alerts_topic: \"bad topic\"")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("kafka.librdkafka.group.id: set by Vigil")),
            "{lines:?}"
        );
        assert_eq!(lines.len(), 5, "{lines:?}");
        let c = Config::parse(
            "[kafka.librdkafka]\n\"no.such.setting\" = \"1\"\n\"security.protocol\" = \"SSL\"\n",
            [],
        )
        .unwrap();
        let lines = c.validate().unwrap_err().0;
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("kafka.librdkafka.no.such.setting: \"1\" refused by librdkafka"),
            "{lines:?}"
        );
    }

    /// The validation errors of a TOML text (none if it is valid).
    fn validation_errors(toml: &str) -> Vec<String> {
        Config::parse(toml, [])
            .unwrap()
            .validate()
            .err()
            .map(|e| e.0)
            .unwrap_or_default()
    }

    /// Values a hospital's file could plausibly hold that Vigil would otherwise guess at
    /// or silently misread.
    #[test]
    fn brokers_log_levels_and_alert_thresholds_are_checked() {
        let lines = validation_errors;
        let l = lines("[kafka]\nbrokers = \"localhost\"\n");
        assert_eq!(l.len(), 1, "{l:?}");
        assert!(
            l[0].starts_with("kafka.brokers: \"localhost\" is not host:port"),
            "{l:?}"
        );
        let l = lines("[kafka]\nbrokers = \"a:9092, b:0,c:x\"\n");
        assert_eq!(l.len(), 2, "{l:?}");
        for ok in [
            "a:9092",
            "a:9092,b:9093",
            "SSL://kafka-1.example.org:9093",
            "[::1]:9092",
        ] {
            assert!(
                lines(&format!("[kafka]\nbrokers = \"{ok}\"\n")).is_empty(),
                "{ok}"
            );
        }
        let l = lines("[log]\nlevel = \"verbose\"\n");
        assert_eq!(l.len(), 1, "{l:?}");
        assert!(
            l[0].starts_with("log.level: \"verbose\"; expected a level"),
            "{l:?}"
        );
        for ok in [
            "info",
            "DEBUG",
            "vigil_stream=debug,info",
            "rdkafka::x=warn",
        ] {
            assert!(
                lines(&format!("[log]\nlevel = \"{ok}\"\n")).is_empty(),
                "{ok}"
            );
        }
        let l = lines("[alerts]\nmews = [5, 3, 0]\n");
        assert_eq!(l.len(), 1, "{l:?}");
        assert!(
            l[0].starts_with("alerts.mews: [5, 3, 0]; expected minimum totals that rise"),
            "{l:?}"
        );
        assert_eq!(
            lines("[alerts]\nmews = [3, 3, 0]\n").len(),
            1,
            "equal is not rising"
        );
        assert!(
            lines("[alerts]\nmews = [3, 0, 7]\n").is_empty(),
            "an off level is skipped"
        );
        let l = lines("[alerts]\nnews2 = [\"high\", \"medium\", \"off\"]\n");
        assert_eq!(l.len(), 1, "{l:?}");
        assert!(l[0].starts_with("alerts.news2: "), "{l:?}");
    }

    #[test]
    fn an_hl7_time_zone_is_an_iana_name_and_excludes_a_fixed_offset() {
        let lines = validation_errors;
        let l = lines("[input]\nhl7_time_zone = \"Europe/Londn\"\n");
        assert_eq!(l.len(), 1, "{l:?}");
        assert!(
            l[0].starts_with("input.hl7_time_zone: \"Europe/Londn\" is not an IANA time zone"),
            "{l:?}"
        );
        let l = lines(
            "[input]\nhl7_time_zone = \"Europe/London\"\nhl7_default_utc_offset = \"+01:00\"\n",
        );
        assert_eq!(l.len(), 1, "{l:?}");
        assert!(l[0].contains("both set"), "{l:?}");
        let s = Config::parse("[input]\nhl7_time_zone = \"America/New_York\"\n", [])
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(
            s.hl7.time_zone.as_ref().map(vigil_wire::LocalZone::name),
            Some("America/New_York")
        );
    }

    #[test]
    fn input_options_reach_the_decoders() {
        let c = Config::parse(
            "[kafka]\nformat = \"hl7v2\"\n[input]\nhl7_identifier_type = \"PI, MR\"\nhl7_default_utc_offset = \"-05:00\"\nhl7_mdc_codes = { \"150037\" = \"sbp\" }\n",
            [],
        )
        .unwrap();
        let s = c.validate().unwrap();
        let vigil_wire::Format::Hl7v2(o) = s.format else {
            panic!("{:?}", s.format)
        };
        assert_eq!(o.identifier_types, ["PI", "MR"]);
        assert_eq!(o.default_offset_minutes, Some(-300));
        assert_eq!(
            o.extra_mdc,
            vec![("150037".to_owned(), vigil_score::Param::Sbp)]
        );
        let bad = Config::parse(
            "[input]\nhl7_default_utc_offset = \"CET\"\nhl7_mdc_codes = { \"1\" = \"pressure\" }\n",
            [],
        )
        .unwrap();
        let lines = bad.validate().unwrap_err().0;
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("input.hl7_default_utc_offset: \"CET\"")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("input.hl7_mdc_codes.1: \"pressure\"")),
            "{lines:?}"
        );
    }

    #[test]
    fn every_rule_is_the_scoring_crates_every_rule_policy() {
        let from_toml: Config = Config::parse(
            Alerts::every_rule_toml(),
            std::iter::empty::<(String, String)>(),
        )
        .expect("parses");
        assert_eq!(from_toml.alerts, Alerts::every_rule());
        let s = Config {
            alerts: Alerts::every_rule(),
            ..Config::default()
        }
        .validate()
        .expect("valid");
        assert_eq!(s.policy, PolicyConfig::every_rule());
        // And the defaults are the scoring crate's defaults.
        assert_eq!(
            Config::default().validate().expect("valid").policy,
            PolicyConfig::default()
        );
    }

    #[test]
    fn settings_carry_engine_and_policy() {
        let c = Config::parse(
            "[engine]\nstale_vital_minutes = 60\n[alerts]\npersistence_readings = 2\npersistence_minutes = 5\nsirs = \"off\"\nmews = [3, 5, 0]\n",
            [],
        )
        .unwrap();
        let s = c.validate().unwrap();
        assert_eq!(s.engine.staleness.vital, Span::hours(1));
        assert_eq!(s.policy.persistence.readings, 2);
        assert_eq!(s.policy.persistence.duration, Some(Span::minutes(5)));
        assert_eq!(s.policy.thresholds.sirs, None);
        assert_eq!(s.policy.thresholds.mews, [Some(3), Some(5), None]);
    }

    /// Issue 29, item 4: 1,048,576-byte messages were taken although the producer's
    /// message.max.bytes is 1,000,000, so `vigil mllp` answered "send again" for ever.
    #[test]
    fn the_message_limit_must_fit_a_kafka_message() {
        assert!(Config::default().validate().is_ok(), "the defaults fit");
        let c = Config::parse("[input]\nmax_message_bytes = 1048576\n", []).unwrap();
        let lines = c.validate().unwrap_err().0;
        assert_eq!(
            lines,
            [
                "input.max_message_bytes: 1048576 does not fit in a Kafka message: the producer's \
              message.max.bytes is 1000000 ([kafka.librdkafka] \"message.max.bytes\"; \
              librdkafka's default is 1000000) and a message needs 32768 bytes beside its \
              payload (key, dead-letter headers, framing); set max_message_bytes to at most \
              967232 or raise message.max.bytes (and the topics' max.message.bytes with it)"
            ]
        );
        let c = Config::parse(
            "[input]\nmax_message_bytes = 1048576\n[kafka.librdkafka]\n\"message.max.bytes\" = \"2000000\"\n",
            [],
        )
        .unwrap();
        assert!(c.validate().is_ok());
    }
}
