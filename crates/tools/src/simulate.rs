//! A synthetic ward feed, for demos and load: patients with plausible vital-sign
//! trajectories, a share of them deteriorating toward sepsis, monitor artefacts and
//! missing readings.
//!
//! [`Ward`] is deterministic for a seed (no clock, no I/O): each [`Ward::round`] is one
//! charting interval of simulated event time and yields the native observation events
//! of every patient. [`produce`] sends rounds to Kafka at a chosen pace.
//!
//! The trajectories are illustrations for software testing, not physiology: a
//! deteriorating patient's heart rate, respiratory rate and temperature rise, blood
//! pressure and SpO2 fall, confusion appears late, and lactate and white cells climb, over
//! `ramp_rounds` rounds from a random onset.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use vigil_score::{Span, Timestamp};
use vigil_testkit::Rng;

/// Simulation settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of patients.
    pub patients: usize,
    /// Share of patients who deteriorate (0-1).
    pub deteriorating: f64,
    /// Simulated time between two charting rounds.
    pub interval: Span,
    /// Rounds over which a deteriorating patient goes from well to septic shock.
    pub ramp_rounds: u32,
    /// Probability that a reading is an artefact (a single implausible spike).
    pub artefact_rate: f64,
    /// Probability that a reading is not taken.
    pub missing_rate: f64,
    /// Seed: the same seed gives the same feed.
    pub seed: u64,
    /// Event time of the first round.
    pub start: Timestamp,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            patients: 24,
            deteriorating: 0.25,
            interval: Span::minutes(15),
            ramp_rounds: 12,
            artefact_rate: 0.005,
            missing_rate: 0.03,
            seed: 7,
            start: Timestamp::from_millis(1_795_428_000_000),
        }
    }
}

/// The most rounds a live feed runs when none is given: four weeks of simulated time.
pub const MAX_LIVE_ROUNDS: u64 = 4 * 7 * 24 * 4;

/// For a feed sent live (demo, `vigil simulate`): simulated time runs far faster than the
/// wall clock, and Vigil rejects readings dated after their receive time, so the feed
/// starts in the past and its last round is dated no later than `now`. Returns the first
/// round's time (on a quarter hour) and the number of rounds (`rounds`, or at most
/// [`MAX_LIVE_ROUNDS`]).
pub fn live_start(rounds: Option<u64>, interval: Span, now: Timestamp) -> (Timestamp, u64) {
    let rounds = rounds.unwrap_or(MAX_LIVE_ROUNDS).min(MAX_LIVE_ROUNDS);
    let quarter = Span::minutes(15).as_millis();
    let end = now.as_millis().div_euclid(quarter) * quarter;
    let span = interval.as_millis().saturating_mul(rounds as i64);
    (Timestamp::from_millis(end - span), rounds)
}

#[derive(Clone, Debug)]
struct SimPatient {
    id: String,
    location: String,
    hr: f64,
    rr: f64,
    sbp: f64,
    temp: f64,
    spo2: f64,
    /// Round at which deterioration starts, if it does.
    onset: Option<u32>,
}

/// A simulated ward.
#[derive(Clone, Debug)]
pub struct Ward {
    config: SimConfig,
    patients: Vec<SimPatient>,
    rng: Rng,
    round: u32,
}

impl Ward {
    /// A ward of `config.patients` patients.
    pub fn new(config: SimConfig) -> Ward {
        let mut rng = Rng(config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let deteriorating =
            (config.patients as f64 * config.deteriorating.clamp(0.0, 1.0)).round() as usize;
        let patients = (0..config.patients)
            .map(|i| SimPatient {
                id: format!("SIM-{:05}", i + 1),
                location: format!("ward-{}/bed-{:02}", i / 24 + 1, i % 24 + 1),
                hr: 72.0 + rng.noise(8.0),
                rr: 15.0 + rng.noise(1.5),
                sbp: 126.0 + rng.noise(10.0),
                temp: 36.8 + rng.noise(0.25),
                spo2: 97.0 + rng.noise(1.0),
                onset: (i < deteriorating).then(|| 1 + (rng.next_u64() % 4) as u32),
            })
            .collect();
        Ward {
            config,
            patients,
            rng,
            round: 0,
        }
    }

    /// The ids of the patients who deteriorate.
    pub fn deteriorating(&self) -> Vec<&str> {
        self.patients
            .iter()
            .filter(|p| p.onset.is_some())
            .map(|p| p.id.as_str())
            .collect()
    }

    /// The next charting round as one message per patient: each patient's vital-sign set
    /// as a JSON array of its observation events (how a gateway that batches sends it).
    pub fn round_sets(&mut self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (key, event) in self.round() {
            match out.last_mut() {
                Some((k, set)) if *k == key => {
                    set.pop();
                    set.push(',');
                    set.push_str(&event);
                    set.push(']');
                }
                _ => out.push((key, format!("[{event}]"))),
            }
        }
        out
    }

    /// The next charting round: (patient id, observation JSON) for every reading taken.
    pub fn round(&mut self) -> Vec<(String, String)> {
        let round = self.round;
        self.round += 1;
        let base = self.config.start.plus(Span::millis(
            self.config.interval.as_millis() * i64::from(round),
        ));
        let mut out = Vec::with_capacity(self.patients.len() * 8);
        let n = self.patients.len().max(1) as i64;
        for (i, p) in self.patients.iter().enumerate() {
            // Patients are charted one after another through the interval.
            let t = base.plus(Span::millis(
                self.config.interval.as_millis() * i as i64 / n,
            ));
            let severity = p.onset.map_or(0.0, |onset| {
                (f64::from(round.saturating_sub(onset)) / f64::from(self.config.ramp_rounds.max(1)))
                    .min(1.0)
            });
            let rng = &mut self.rng;
            let mut readings: Vec<(&str, serde_json::Value, &str)> = Vec::with_capacity(10);
            let hr = (p.hr + 50.0 * severity + rng.noise(3.0)).round();
            let rr = (p.rr + 14.0 * severity + rng.noise(1.0)).round();
            let sbp = (p.sbp - 45.0 * severity + rng.noise(4.0)).round();
            let temp = ((p.temp + 2.4 * severity + rng.noise(0.1)) * 10.0).round() / 10.0;
            let spo2 = (p.spo2 - 8.0 * severity + rng.noise(0.8))
                .round()
                .min(100.0);
            readings.push(("heart_rate", hr.into(), "/min"));
            readings.push(("resp_rate", rr.max(4.0).into(), "/min"));
            readings.push(("sbp", sbp.into(), "mm[Hg]"));
            readings.push(("temperature", temp.into(), "Cel"));
            readings.push(("spo2", spo2.into(), "%"));
            readings.push(("on_oxygen", (spo2 < 92.0).into(), ""));
            readings.push((
                "consciousness",
                if severity > 0.75 { "C" } else { "A" }.into(),
                "",
            ));
            if round.is_multiple_of(4) {
                readings.push((
                    "lactate",
                    (((1.1 + 3.6 * severity + rng.noise(0.15)) * 10.0).round() / 10.0)
                        .max(0.3)
                        .into(),
                    "mmol/L",
                ));
                readings.push((
                    "wbc",
                    (((8.0 + 10.0 * severity + rng.noise(1.0)) * 10.0).round() / 10.0)
                        .max(0.5)
                        .into(),
                    "10*3/uL",
                ));
            }
            if severity >= 1.0 {
                readings.push(("norepinephrine", 0.12.into(), "ug/kg/min"));
            }
            for (code, mut value, unit) in readings {
                if rng.unit() < self.config.missing_rate {
                    continue;
                }
                if rng.unit() < self.config.artefact_rate {
                    value = match code {
                        "heart_rate" => 190.0.into(),
                        "spo2" => 72.0.into(),
                        _ => value,
                    };
                }
                let mut event = serde_json::json!({
                    "patient_id": p.id,
                    "encounter_id": format!("ENC-{}", &p.id[4..]),
                    "location": p.location,
                    "code": code,
                    "value": value,
                    "effective": t.to_string(),
                    "id": format!("{}-{code}-{round}", p.id),
                });
                if !unit.is_empty() {
                    event["unit"] = unit.into();
                }
                out.push((p.id.clone(), event.to_string()));
            }
        }
        out
    }
}

/// Checks that `brokers` answer (within 10 s) with the raw librdkafka `options`, so that
/// a feed sent nowhere says so at once, naming the brokers and `flag`, rather than after
/// librdkafka's five-minute message timeout.
///
/// # Errors
///
/// When the client cannot be made or no broker answers.
pub fn check_reachable(
    brokers: &str,
    options: &[(String, String)],
    flag: &str,
) -> Result<(), String> {
    use rdkafka::producer::{BaseProducer, Producer};
    let mut config = ClientConfig::new();
    for (key, value) in options {
        config.set(key, value);
    }
    let producer: BaseProducer = config
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| format!("{flag} {brokers}: {e}"))?;
    producer
        .client()
        .fetch_metadata(None, Duration::from_secs(10))
        .map(|_| ())
        .map_err(|e| format!("cannot reach the Kafka brokers {brokers} ({flag}): {e}"))
}

/// Sends `rounds` rounds of `ward` to `topic` (key: patient id), one round every
/// `round_every` of real time (`Duration::ZERO`: as fast as the broker takes them), and
/// waits for every acknowledgement. `options` are raw librdkafka settings (SASL, TLS).
/// Returns the number of messages sent.
///
/// # Errors
///
/// When the producer cannot be created or a message is not acknowledged.
pub async fn produce(
    (brokers, options): (&str, &[(String, String)]),
    topic: &str,
    ward: &mut Ward,
    rounds: Option<u64>,
    round_every: Duration,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<u64, KafkaError> {
    let mut config = ClientConfig::new();
    for (key, value) in options {
        config.set(key, value);
    }
    let producer: FutureProducer = config
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()?;
    let mut sent = 0u64;
    let mut next = tokio::time::Instant::now();
    let mut done = 0u64;
    while rounds.is_none_or(|r| done < r) && !stop.is_cancelled() {
        let messages = ward.round();
        let sends = messages.iter().map(|(key, payload)| {
            producer.send(
                FutureRecord::to(topic).key(key).payload(payload),
                Duration::from_secs(30),
            )
        });
        for result in futures_util::future::join_all(sends).await {
            result.map_err(|(e, _)| e)?;
            sent += 1;
        }
        done += 1;
        next += round_every;
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = stop.cancelled() => break,
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_score::{Config, Patient, Status};

    #[test]
    fn the_feed_is_deterministic_and_valid() {
        let config = SimConfig {
            patients: 10,
            ..SimConfig::default()
        };
        let a: Vec<_> = (0..3)
            .flat_map(|_| Ward::new(config.clone()).round())
            .collect();
        let b: Vec<_> = (0..3)
            .flat_map(|_| Ward::new(config.clone()).round())
            .collect();
        assert_eq!(a, b);
        let mut ward = Ward::new(config);
        for _ in 0..20 {
            for (key, json) in ward.round() {
                let d = vigil_wire::decode_json(json.as_bytes())
                    .unwrap_or_else(|e| panic!("{e}: {json}"));
                assert_eq!(d.patient_id, key);
                assert_eq!(d.observation.status(), Status::Final);
            }
        }
    }

    #[test]
    fn deteriorating_patients_deteriorate_and_stable_ones_do_not() {
        let config = SimConfig {
            patients: 8,
            deteriorating: 0.5,
            artefact_rate: 0.0,
            ..SimConfig::default()
        };
        let mut ward = Ward::new(config);
        let sick: Vec<String> = ward.deteriorating().iter().map(|s| s.to_string()).collect();
        assert_eq!(sick.len(), 4);
        let engine = Config::default();
        let mut patients: std::collections::HashMap<String, Patient> = Default::default();
        let mut last = Timestamp::from_millis(0);
        for _ in 0..20 {
            for (key, json) in ward.round() {
                let d = vigil_wire::decode_json(json.as_bytes()).expect("valid");
                last = last.max(d.observation.effective());
                patients
                    .entry(key)
                    .or_default()
                    .ingest(&d.observation, &engine);
            }
        }
        for (id, p) in &mut patients {
            let news2 = p.assess(last, &engine).news2.score;
            if sick.contains(id) {
                assert!(news2 >= 7, "{id} should be high risk, NEWS2 {news2}");
            } else {
                assert!(news2 <= 3, "{id} should be stable, NEWS2 {news2}");
            }
        }
    }

    #[test]
    fn a_round_of_sets_is_the_round_one_message_per_patient() {
        let config = SimConfig {
            patients: 5,
            ..SimConfig::default()
        };
        let readings = Ward::new(config.clone()).round();
        let sets = Ward::new(config).round_sets();
        assert_eq!(sets.len(), 5);
        let mut decoded = Vec::new();
        for (key, set) in &sets {
            for d in vigil_wire::Format::Json.decode(set.as_bytes()) {
                let d = d.unwrap_or_else(|e| panic!("{e}: {set}"));
                assert_eq!(&d.patient_id, key);
                decoded.push(d.to_native_json());
            }
        }
        let singles: Vec<String> = readings
            .iter()
            .map(|(_, r)| {
                vigil_wire::decode_json(r.as_bytes())
                    .expect("valid")
                    .to_native_json()
            })
            .collect();
        assert_eq!(decoded, singles);
    }
}
