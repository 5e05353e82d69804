//! The per-patient window: what the engine remembers of one patient, on event time.
//!
//! Each parameter keeps a short history of readings sorted by `effective` time, so that
//! out-of-order arrivals land where they belong, an `amended` reading replaces the one
//! with its id, an `entered-in-error` reading withdraws it (leaving a tombstone, so that
//! the original arriving late is recognised as a duplicate), and a redelivered reading
//! with a known id changes nothing.
//!
//! # Memory: sized by what it holds
//!
//! A service holds one window per patient, for every patient of a hospital, so the window
//! is laid out for size: every reading of every parameter is one 24-byte entry in a
//! single buffer, grouped by parameter and sorted by time within each group, and a small
//! table says where each parameter's group starts. A parameter the patient has no reading
//! of costs nothing beyond its two-byte table slot; there are no per-parameter buffers,
//! caches or filters. The fixed part is about 120 bytes; a ward patient with vital signs
//! every four hours and a daily lab panel (47 readings) holds about 1.2 KiB in all.
//!
//! Every parameter keeps at most [`HISTORY_CAP`] (32) entries, so one patient's window
//! never holds more than `PARAM_COUNT x HISTORY_CAP x 24` bytes of readings (28 x 32 x
//! 24 = 21 KiB), whatever the input rate. Readings older than the retention horizon (the
//! larger of 24 h and the parameter's staleness limit, counted back from the newest event
//! seen for the patient) are dropped on the next write to that parameter.
//!
//! When a parameter receives more readings than fit, the window thins its history
//! without losing what scoring needs: the newest reading is always kept exactly (latest
//! value), and for parameters scored on their worst value over 24 h (SOFA) the two
//! adjacent older readings closest together in time are merged into the worse of them,
//! so the worst value of any 24 h span is kept, at a time resolution that coarsens
//! gracefully (about 45 minutes for one reading a minute). Other parameters drop their
//! oldest reading. A reading merged away loses its id: a redelivery of it is then
//! accepted again, which cannot change a score because the reading was neither the
//! newest nor the worst.
//!
//! An entry keeps its reading's id as the id digest ([`ObsId`]) with the two lowest bits
//! given over to the entry's flags (has an id, withdrawn): two ids are the same reading
//! when their digests agree in the other 62 bits.

use std::ops::Range;

use crate::config::Staleness;
use crate::observation::{ObsId, Observation, Status, Value};
use crate::param::{PARAM_COUNT, Param, ParamSet, Worse};
use crate::time::{MaybeTime, Span, Timestamp};

/// The most readings one parameter keeps per patient.
pub const HISTORY_CAP: usize = 32;

/// How far back SOFA looks for the worst value.
pub const SOFA_SPAN: Span = Span::hours(24);

const HAS_ID: u64 = 1;
const WITHDRAWN: u64 = 2;
const FLAGS: u64 = HAS_ID | WITHDRAWN;

/// The part of an id digest an entry keeps.
fn id_key(id: ObsId) -> u64 {
    id.get() & !FLAGS
}

/// One stored reading or tombstone: 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Entry {
    effective: Timestamp,
    value: f64,
    /// The id digest without its two lowest bits, which hold [`HAS_ID`] and [`WITHDRAWN`].
    tag: u64,
}

impl Entry {
    fn new(effective: Timestamp, value: f64, id: Option<ObsId>, withdrawn: bool) -> Entry {
        let id_bits = id.map_or(0, |id| id_key(id) | HAS_ID);
        Entry {
            effective,
            value,
            tag: id_bits | if withdrawn { WITHDRAWN } else { 0 },
        }
    }

    fn live(&self) -> bool {
        self.tag & WITHDRAWN == 0
    }

    fn has_any_id(&self) -> bool {
        self.tag & HAS_ID != 0
    }

    fn has_id(&self, key: u64) -> bool {
        self.has_any_id() && self.tag & !FLAGS == key
    }

    /// The order within a parameter: by time, then by id, so that readings at the same
    /// instant are ordered the same whatever order they arrived in.
    fn order(&self) -> (Timestamp, u64) {
        (self.effective, self.tag & !FLAGS)
    }

    fn reading(&self, param: Param) -> Reading {
        Reading {
            param,
            value: self.value,
            effective: self.effective,
        }
    }
}
/// One reading as the rules see it: a canonical value and when it was measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// The parameter.
    pub param: Param,
    /// The value in the canonical unit (flags 0/1, ACVPU 0-4, scale 1/2).
    pub value: f64,
    /// When it was measured.
    pub effective: Timestamp,
}

impl Reading {
    /// The typed value.
    pub fn value(&self) -> Value {
        Value::from_f64(self.param, self.value)
    }

    /// The value with its unit as a person reads it: `26/min`, `95 mm[Hg]`, `38.2 Cel`,
    /// `C` (for alert messages and FHIR evidence).
    pub fn display(&self) -> String {
        let unit = self.param.unit();
        match self.value() {
            Value::Number(n) => {
                let r = (n * 100.0).round() / 100.0;
                let sep = if unit.starts_with('/') { "" } else { " " };
                if r.fract() == 0.0 && r.abs() < 9.0e15 {
                    format!("{}{sep}{unit}", r as i64)
                } else {
                    format!("{r}{sep}{unit}")
                }
            }
            Value::Flag(b) => if b { "yes" } else { "no" }.to_owned(),
            Value::Consciousness(c) => format!("{c:?}"),
            Value::Scale(s) => format!("scale {s}"),
        }
    }
}

/// What an observation did to the window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ingested {
    /// A new reading was stored.
    Accepted,
    /// A stored reading was replaced (`amended`).
    Amended,
    /// A reading was withdrawn (`entered-in-error`).
    Withdrawn,
    /// The same id was already stored with the same content: nothing changed.
    Duplicate,
    /// The same id was already stored with different content, and the new one is
    /// `final` (only `amended` may replace a reading): nothing changed. `held` is the
    /// stored reading, for the rejection to show both.
    Conflict {
        /// The reading stored under the id.
        held: Reading,
    },
    /// Older than the retention horizon: it could not affect any score, nothing changed.
    Stale,
}

/// The worst PaO2/FiO2 of a 24 h span, each PaO2 paired with the FiO2 and ventilation in
/// force when it was drawn (see [`Window::worst_pf`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PfWorst {
    /// SOFA respiration points of the worst pair.
    pub points: u8,
    /// Its ratio.
    pub ratio: f64,
    /// The PaO2 reading of the worst pair.
    pub pao2: Option<Reading>,
    /// Whether any PaO2 was in the span.
    pub any_pao2: bool,
    /// Whether any PaO2 could be paired with an FiO2 (or explicit room air).
    pub any_fio2: bool,
}

/// Worst-of-24 h results computed at ingest for the span ending at the parameter's newest
/// reading. They stay valid for any later evaluation instant while the reading they were
/// taken from is still inside the span (the span then only loses readings that were not
/// worse), so the common evaluation needs no scan.
#[derive(Clone, Copy, Debug)]
struct Derived {
    pf: PfWorst,
    /// The newest PaO2 when `pf` was computed; `pf` holds for instants from here.
    pf_from: Timestamp,
    /// The oldest PaO2 `pf` considered; `pf` holds while it is inside the span.
    pf_oldest: Timestamp,
    /// The vital-sign staleness limit `pf` was paired with.
    pf_max_age: Span,
}

/// A Bloom filter (2,048 bits, two probes) of the ids a large window holds, so that the
/// search for an id across every parameter runs only for ids probably seen before. A
/// window gets one once it holds more than [`FILTER_FROM`] entries: below that a scan of
/// the contiguous entries is cheap, and 264 bytes would be a large share of a small
/// patient. Ids of
/// readings that have since left the window stay set until the next rebuild, which
/// happens once insertions reach twice what the window holds (at least 512): the false
/// positive rate stays near 3 % for a full window, and a false positive costs a scan.
#[derive(Clone, Debug)]
struct IdFilter {
    bits: [u64; 32],
    inserted: u32,
    rebuild_at: u32,
}

impl Default for IdFilter {
    fn default() -> Self {
        IdFilter {
            bits: [0; 32],
            inserted: 0,
            rebuild_at: 512,
        }
    }
}

impl IdFilter {
    fn probes(key: u64) -> [usize; 2] {
        let h = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        [(h >> 53) as usize, ((h >> 42) & 0x7ff) as usize]
    }

    fn may_contain(&self, key: u64) -> bool {
        Self::probes(key)
            .iter()
            .all(|&b| self.bits[b / 64] & (1 << (b % 64)) != 0)
    }

    /// Adds an id digest key; true when the filter is due for a rebuild.
    fn insert(&mut self, key: u64) -> bool {
        for b in Self::probes(key) {
            self.bits[b / 64] |= 1 << (b % 64);
        }
        self.inserted += 1;
        self.inserted >= self.rebuild_at
    }

    fn rebuild(&mut self, held: impl Iterator<Item = u64>) {
        self.bits = [0; 32];
        self.inserted = 0;
        for key in held {
            self.insert(key);
        }
        self.rebuild_at = (2 * self.inserted).max(512);
    }
}

/// How many entries a window holds before it keeps an [`IdFilter`].
const FILTER_FROM: usize = 64;

/// "Never", for horizons.
const FAR_FUTURE: Timestamp = Timestamp::from_millis(i64::MAX);

impl Default for Derived {
    fn default() -> Self {
        Derived {
            pf: PfWorst::default(),
            pf_from: Timestamp::from_millis(i64::MIN),
            pf_oldest: Timestamp::from_millis(i64::MAX),
            pf_max_age: Span::millis(0),
        }
    }
}

/// What changed in a window since the last [`Window::take_changes`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// The parameters whose readings changed.
    pub params: ParamSet,
    /// Set when the only change was one live reading of this parameter placed after all
    /// its others (entries dropped to make room aside).
    pub appended: Option<Param>,
}

/// The live readings a window dropped (to make room, or expired) while it was fed through
/// [`Window::ingest_noting`]: what [`Window::extremes_after_append`] needs to know that a
/// highest or lowest reading is still held without looking for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Dropped {
    /// The highest of their values (-infinity: none dropped).
    max: f64,
    /// The lowest of their values (+infinity: none dropped).
    min: f64,
}

impl Default for Dropped {
    fn default() -> Self {
        Dropped {
            max: f64::NEG_INFINITY,
            min: f64::INFINITY,
        }
    }
}

impl Dropped {
    fn note(&mut self, e: &Entry) {
        if e.live() {
            self.max = self.max.max(e.value);
            self.min = self.min.min(e.value);
        }
    }
}

/// What [`Window::extremes`] finds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Extremes {
    /// The current reading (as [`Window::latest`] finds it).
    pub(crate) latest: Option<Reading>,
    /// The highest value in the span (meaningful when `oldest` is some).
    pub(crate) max: f64,
    /// The lowest value in the span.
    pub(crate) min: f64,
    /// When the most recent reading with the highest value was measured.
    pub(crate) max_at: Timestamp,
    /// When the most recent reading with the lowest value was measured.
    pub(crate) min_at: Timestamp,
    /// When the oldest reading in the span was measured (`None`: no reading in it).
    pub(crate) oldest: Option<Timestamp>,
    /// Whether a reading measured after the span's end is held.
    pub(crate) later: bool,
}

/// One patient's readings.
#[derive(Clone, Debug, Default)]
pub struct Window {
    /// Every entry, grouped by parameter in index order, sorted by [`Entry::order`]
    /// within a group.
    entries: Vec<Entry>,
    /// Where each parameter's group starts in `entries`; it ends where the next begins.
    starts: [u16; PARAM_COUNT],
    /// The worst PaO2/FiO2 pairing, kept only for a patient with blood gases or oxygen.
    derived: Option<Box<Derived>>,
    /// The ids held, once the window holds more than [`FILTER_FROM`] entries.
    ids: Option<Box<IdFilter>>,
    changed: ParamSet,
    /// Set when the only change since the last [`Window::take_changes`] was one live
    /// reading of this parameter placed after all its others (entries dropped to make
    /// room aside): what lets Vigil Risk update a parameter's extremes without a pass
    /// over its history ([`Window::extremes_after_append`]).
    appended: Option<Param>,
    newest: MaybeTime,
    /// The earliest `effective` time of any reading applied, however long ago it left
    /// the window: how long the patient has been under observation.
    first: MaybeTime,
    sofa_baseline: u8,
}

impl Window {
    /// An empty window (SOFA baseline 0).
    pub fn new() -> Window {
        Window::default()
    }

    /// The known pre-existing SOFA score of this patient (Sepsis-3: a rise of 2 or more
    /// over baseline is organ dysfunction). Without one it is 0.
    pub fn set_sofa_baseline(&mut self, baseline: u8) {
        self.sofa_baseline = baseline.min(24);
    }

    /// The SOFA baseline.
    pub fn sofa_baseline(&self) -> u8 {
        self.sofa_baseline
    }

    /// The newest `effective` time seen for this patient.
    pub fn newest(&self) -> Option<Timestamp> {
        self.newest.get()
    }

    /// The earliest `effective` time of any reading applied to this window, kept after
    /// the reading itself has left it: since when the patient has been observed.
    pub fn first(&self) -> Option<Timestamp> {
        self.first.get()
    }

    /// Sets when observation began (a restored window of an older state version, which
    /// did not record it, uses its oldest reading).
    pub(crate) fn set_first(&mut self, first: Option<Timestamp>) {
        self.first = first.into();
    }

    /// The oldest reading held, of any parameter.
    pub(crate) fn oldest_held(&self) -> Option<Timestamp> {
        self.entries.iter().map(|e| e.effective).min()
    }

    /// Whether the window holds no reading.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where `param`'s entries are in `entries`.
    #[inline]
    fn span_of(&self, param: Param) -> Range<usize> {
        let i = param.index();
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.entries.len(), |&s| usize::from(s));
        usize::from(self.starts[i])..end
    }

    /// `param`'s entries, oldest first.
    #[inline]
    fn history(&self, param: Param) -> &[Entry] {
        &self.entries[self.span_of(param)]
    }

    /// The parameter whose group holds the entry at `index`.
    fn param_at(&self, index: usize) -> Param {
        // The last group starting at or before `index` (empty groups share a start).
        let i = self
            .starts
            .partition_point(|&s| usize::from(s) <= index)
            .saturating_sub(1);
        Param::ALL[i]
    }

    /// Inserts `entry` at `index`, inside `param`'s group.
    fn insert_at(&mut self, param: Param, index: usize, entry: Entry) {
        if self.entries.len() == self.entries.capacity() {
            // Grow by a quarter, not double: a window's size is its patient's memory.
            self.entries.reserve_exact((self.entries.len() / 4).max(4));
        }
        self.entries.insert(index, entry);
        for s in &mut self.starts[param.index() + 1..] {
            *s += 1;
        }
    }

    /// Removes the entries at `range`, all inside `param`'s group.
    fn remove_range(&mut self, param: Param, range: Range<usize>) {
        let n = u16::try_from(range.len()).unwrap_or(u16::MAX);
        self.entries.drain(range);
        for s in &mut self.starts[param.index() + 1..] {
            *s -= n;
        }
    }

    /// Applies one observation.
    pub fn ingest(&mut self, obs: &Observation, staleness: &Staleness) -> Ingested {
        self.apply(obs, staleness, None)
    }

    /// Applies one observation as [`Window::ingest`] does, noting in `dropped` the live
    /// readings it drops. Only a window fed this way marks a reading appended after its
    /// parameter's others ([`Changes::appended`]): a caller who notes the drops can update
    /// a parameter's extremes from that ([`Window::extremes_after_append`]).
    pub(crate) fn ingest_noting(
        &mut self,
        obs: &Observation,
        staleness: &Staleness,
        dropped: &mut Dropped,
    ) -> Ingested {
        self.apply(obs, staleness, Some(dropped))
    }

    fn apply(
        &mut self,
        obs: &Observation,
        staleness: &Staleness,
        dropped: Option<&mut Dropped>,
    ) -> Ingested {
        let mut sink = Dropped::default();
        let param = obs.param();
        let horizon = retention(param, staleness);
        let effective = obs.effective();
        if let Some(newest) = self.newest.get()
            && effective < newest.minus(horizon)
        {
            return Ingested::Stale;
        }
        let value = obs.value().to_f64();
        let entry = Entry::new(effective, value, obs.id(), false);
        let newest = self.newest.get().map_or(effective, |n| n.max(effective));
        let cutoff = newest.minus(horizon);
        let found = obs.id().and_then(|id| self.find_id(param, id_key(id)));
        let quiet = self.changed.is_empty();
        // Whether this is one live reading placed after all of the parameter's others.
        let mut appended = false;
        let outcome = match (obs.status(), found) {
            (Status::Final, Some(i)) => {
                let e = self.entries[i];
                let held = self.param_at(i);
                // A withdrawn reading stays withdrawn whatever arrives late under its id.
                if !e.live() || (held == param && e.value == value && e.effective == effective) {
                    return Ingested::Duplicate;
                }
                return Ingested::Conflict {
                    held: e.reading(held),
                };
            }
            (Status::Final, None) => {
                appended = self.insert(param, entry, cutoff, &mut sink);
                Ingested::Accepted
            }
            (Status::Amended, Some(i)) => {
                let held = self.param_at(i);
                self.remove_range(held, i..i + 1);
                if held != param {
                    self.refresh(held, staleness);
                }
                self.insert(param, entry, cutoff, &mut sink);
                Ingested::Amended
            }
            (Status::Amended, None) => {
                appended = self.insert(param, entry, cutoff, &mut sink);
                Ingested::Accepted
            }
            (Status::EnteredInError, Some(i)) => {
                let held = self.param_at(i);
                let e = &mut self.entries[i];
                if !e.live() {
                    return Ingested::Duplicate;
                }
                e.tag |= WITHDRAWN;
                if held != param {
                    self.refresh(held, staleness);
                }
                Ingested::Withdrawn
            }
            (Status::EnteredInError, None) => {
                self.insert(
                    param,
                    Entry::new(effective, value, obs.id(), true),
                    cutoff,
                    &mut sink,
                );
                Ingested::Withdrawn
            }
        };
        self.appended = (quiet && appended && dropped.is_some()).then_some(param);
        self.newest = newest.into();
        self.first = self
            .first
            .get()
            .map_or(effective, |f| f.min(effective))
            .into();
        let span = self.span_of(param);
        let expired = self.entries[span.clone()]
            .iter()
            .take_while(|e| e.effective < cutoff)
            .count();
        if expired > 0 {
            for e in &self.entries[span.start..span.start + expired] {
                sink.note(e);
            }
            self.remove_range(param, span.start..span.start + expired);
        }
        self.refresh(param, staleness);
        if let Some(dropped) = dropped {
            dropped.max = dropped.max.max(sink.max);
            dropped.min = dropped.min.min(sink.min);
        }
        outcome
    }

    /// Where the reading with id digest `key` is held, in any parameter's history. An id
    /// names one observation of the patient whatever its code, so a redelivery, amendment
    /// or withdrawal is found even if its code was mapped differently; the own parameter
    /// is searched first.
    fn find_id(&self, param: Param, key: u64) -> Option<usize> {
        if self.ids.as_ref().is_some_and(|f| !f.may_contain(key)) {
            return None;
        }
        let own = self.span_of(param);
        if let Some(i) = self.entries[own.clone()].iter().position(|e| e.has_id(key)) {
            return Some(own.start + i);
        }
        let before = self.entries[..own.start].iter().position(|e| e.has_id(key));
        before.or_else(|| {
            self.entries[own.end..]
                .iter()
                .position(|e| e.has_id(key))
                .map(|i| own.end + i)
        })
    }

    /// Inserts `entry` into `param`'s history. An entry older than `cutoff` (expired) or,
    /// in a full history, the one thinning picks makes room: the new entry then takes its
    /// place within the parameter's group, moving only the entries between the two, so
    /// the steady state of a feed (one reading in, the oldest out) never shifts the other
    /// parameters' entries. Returns whether the entry went after all the others; notes the
    /// entry dropped in `dropped`.
    fn insert(
        &mut self,
        param: Param,
        entry: Entry,
        cutoff: Timestamp,
        dropped: &mut Dropped,
    ) -> bool {
        self.note_id(entry);
        let span = self.span_of(param);
        let group = &mut self.entries[span.clone()];
        let drop = if group.first().is_some_and(|e| e.effective < cutoff) {
            Some(0)
        } else if group.len() >= HISTORY_CAP {
            Some(thin(group, param.worse()))
        } else {
            None
        };
        // Readings nearly always arrive in order: the common case is an append.
        let key = entry.order();
        let after = if group.last().is_none_or(|e| e.order() <= key) {
            group.len()
        } else {
            group.partition_point(|e| e.order() <= key)
        };
        let last = after == group.len();
        match drop {
            None => self.insert_at(param, span.start + after, entry),
            Some(d) => {
                dropped.note(&group[d]);
                // Where the entry goes once `d` is gone.
                let at = if d < after { after - 1 } else { after };
                if at >= d {
                    group[d..=at].rotate_left(1);
                } else {
                    group[at..=d].rotate_right(1);
                }
                group[at] = entry;
            }
        }
        last
    }

    /// Adds `entry`'s id to the id filter, creating or rebuilding the filter when due.
    fn note_id(&mut self, entry: Entry) {
        if !entry.has_any_id() {
            return;
        }
        let key = entry.tag & !FLAGS;
        let due = match &mut self.ids {
            Some(filter) => filter.insert(key),
            None => self.entries.len() >= FILTER_FROM,
        };
        if due {
            let filter = self.ids.get_or_insert_with(Box::default);
            filter.rebuild(
                self.entries
                    .iter()
                    .filter(|e| e.has_any_id())
                    .map(|e| e.tag & !FLAGS)
                    .chain(std::iter::once(key)),
            );
        }
    }

    /// What changed since the last call (ingest marks it), for incremental re-scoring
    /// ([`crate::Patient`]).
    pub fn take_changes(&mut self) -> Changes {
        Changes {
            params: std::mem::take(&mut self.changed),
            appended: self.appended.take(),
        }
    }

    /// Marks `param` changed and recomputes what the window keeps derived from it.
    fn refresh(&mut self, param: Param, staleness: &Staleness) {
        self.changed.insert(param);
        if matches!(
            param,
            Param::Pao2 | Param::Fio2 | Param::OnOxygen | Param::Ventilation
        ) {
            let from = self
                .newest_live(Param::Pao2)
                .map_or(Timestamp::from_millis(i64::MIN), |r| r.effective);
            let (pf, oldest) = self.scan_pf(from, staleness.vital);
            self.derived = Some(Box::new(Derived {
                pf,
                pf_from: from,
                pf_oldest: oldest,
                pf_max_age: staleness.vital,
            }));
        }
    }

    /// The newest live reading of `param`, however old.
    #[inline]
    fn newest_live(&self, param: Param) -> Option<Reading> {
        self.history(param)
            .iter()
            .rev()
            .find(|e| e.live())
            .map(|e| e.reading(param))
    }

    /// Whether `param` has a live reading measured after `at`.
    #[inline]
    pub(crate) fn any_after(&self, param: Param, at: Timestamp) -> bool {
        self.newest_live(param).is_some_and(|r| r.effective > at)
    }

    /// When the newest live reading of `param` measured at or before `at` was measured,
    /// however old (for saying since when a reading has been overdue).
    pub fn last_seen(&self, param: Param, at: Timestamp) -> Option<Timestamp> {
        self.history(param)
            .iter()
            .rev()
            .find(|e| e.live() && e.effective <= at)
            .map(|e| e.effective)
    }

    /// The newest live reading of `param` measured at or before `at` and no older than the
    /// staleness limit of its kind; `None` if there is none (missing or stale).
    #[inline]
    pub fn latest(&self, param: Param, at: Timestamp, staleness: &Staleness) -> Option<Reading> {
        self.latest_until(param, at, staleness).0
    }

    /// [`Window::latest`], and the first instant from which the answer may differ without
    /// a new reading: when the reading turns stale, or, if a reading measured after `at`
    /// exists, right away (it comes into view by the passage of time alone).
    #[inline]
    pub(crate) fn latest_until(
        &self,
        param: Param,
        at: Timestamp,
        staleness: &Staleness,
    ) -> (Option<Reading>, Timestamp) {
        let max_age = staleness.of(param.kind());
        let limit = at.minus(max_age);
        let mut later = false;
        for e in self.history(param).iter().rev() {
            if !e.live() {
                continue;
            }
            if e.effective > at {
                later = true;
                continue;
            }
            if e.effective < limit {
                break;
            }
            let until = if later {
                at.plus(Span::millis(1))
            } else {
                e.effective.plus(max_age).plus(Span::millis(1))
            };
            return (Some(e.reading(param)), until);
        }
        if later {
            (None, at.plus(Span::millis(1)))
        } else {
            (None, FAR_FUTURE)
        }
    }

    /// [`Window::worst`] over the SOFA span, and the first instant from which it may
    /// differ without a new reading (when the worst reading leaves the span).
    pub(crate) fn worst_24h_until(
        &self,
        param: Param,
        at: Timestamp,
    ) -> (Option<Reading>, Timestamp) {
        let worst = self.worst(param, at, SOFA_SPAN);
        let until = if self.any_after(param, at) {
            at.plus(Span::millis(1))
        } else {
            worst.map_or(FAR_FUTURE, |w| w.effective.plus(SOFA_SPAN))
        };
        (worst, until)
    }

    /// The worst live reading of `param` in `(at - span, at]`, by the direction in which
    /// the parameter worsens; the latest such reading for a parameter without one.
    /// Ties go to the most recent reading.
    pub fn worst(&self, param: Param, at: Timestamp, span: Span) -> Option<Reading> {
        let from = at.minus(span);
        let mut in_span = self
            .history(param)
            .iter()
            .rev()
            .skip_while(|e| e.effective > at)
            .take_while(|e| e.effective > from)
            .filter(|e| e.live());
        // One loop per direction, so the comparison is not decided again per entry.
        // Strictly worse replaces: ties keep the most recent.
        let best = match param.worse() {
            Worse::Neither => in_span.next(),
            Worse::Lower => in_span.reduce(|b, e| if e.value < b.value { e } else { b }),
            Worse::Higher => in_span.reduce(|b, e| if e.value > b.value { e } else { b }),
        };
        best.map(|e| e.reading(param))
    }

    /// The worst PaO2/FiO2 pair of the 24 h up to `at`: each PaO2 is paired with the FiO2
    /// in force when it was drawn (charted at most `max_age` before it), or with 0.21
    /// when the patient was then explicitly on room air, and scored with the ventilation
    /// status then in force. The worst pair scores the most SOFA points (the lower ratio
    /// on a tie, then the later PaO2).
    pub fn worst_pf(&self, at: Timestamp, max_age: Span) -> PfWorst {
        self.worst_pf_until(at, max_age).0
    }

    /// [`Window::worst_pf`], and the first instant from which it may differ without a new
    /// reading: when the worst pair's PaO2 (or, without a pair, the oldest PaO2) leaves
    /// the span, or right away if any of its inputs has a reading measured after `at`.
    pub(crate) fn worst_pf_until(&self, at: Timestamp, max_age: Span) -> (PfWorst, Timestamp) {
        let Some(d) = self.derived.as_deref() else {
            // No PaO2, FiO2, oxygen or ventilation reading was ever kept.
            return (PfWorst::default(), FAR_FUTURE);
        };
        // With no PaO2 at all the pairing limit cannot matter. While the worst pair is
        // still inside the span it is still the worst (the span has only lost readings);
        // without a pair, every PaO2 considered must still be inside.
        let same_pairing = d.pf_max_age == max_age || !d.pf.any_pao2;
        let from = at.minus(SOFA_SPAN);
        let still_holds = match d.pf.pao2 {
            Some(worst) => worst.effective > from,
            None => !d.pf.any_pao2 || d.pf_oldest > from,
        };
        let (pf, oldest) = if d.pf_from <= at && same_pairing && still_holds {
            (d.pf, d.pf_oldest)
        } else {
            self.scan_pf(at, max_age)
        };
        let future = [
            Param::Pao2,
            Param::Fio2,
            Param::OnOxygen,
            Param::Ventilation,
        ]
        .iter()
        .any(|&p| self.any_after(p, at));
        let until = if future {
            at.plus(Span::millis(1))
        } else if let Some(pao2) = pf.pao2 {
            pao2.effective.plus(SOFA_SPAN)
        } else if pf.any_pao2 {
            oldest.plus(SOFA_SPAN)
        } else {
            FAR_FUTURE
        };
        (pf, until)
    }

    fn scan_pf(&self, at: Timestamp, max_age: Span) -> (PfWorst, Timestamp) {
        let mut pf = PfWorst::default();
        let mut oldest = Timestamp::from_millis(i64::MAX);
        for pao2 in self.readings(Param::Pao2, at, SOFA_SPAN) {
            pf.any_pao2 = true;
            oldest = oldest.min(pao2.effective);
            let t = pao2.effective;
            let fio2 = match self.at_time(Param::Fio2, t, max_age) {
                Some(f) => f.value,
                None => match self.at_time(Param::OnOxygen, t, max_age) {
                    Some(o) if o.value == 0.0 => 0.21,
                    _ => continue,
                },
            };
            pf.any_fio2 = true;
            let ratio = pao2.value / fio2;
            let support = self
                .at_time(Param::Ventilation, t, max_age)
                .is_some_and(|v| v.value != 0.0);
            let points = crate::rules::sofa::respiration_points(ratio, support);
            if pf.pao2.is_none() || points > pf.points || (points == pf.points && ratio <= pf.ratio)
            {
                pf.points = points;
                pf.ratio = ratio;
                pf.pao2 = Some(pao2);
            }
        }
        (pf, oldest)
    }

    /// In one pass over `param`'s history, newest first: its current reading (the newest
    /// live one at or before `at`, if no older than `max_age`), the highest and lowest
    /// live readings in `(at - span, at]`, the oldest one's time, and whether a live
    /// reading measured after `at` is held. Vigil Risk reads these for every parameter.
    pub(crate) fn extremes(
        &self,
        param: Param,
        at: Timestamp,
        max_age: Span,
        span: Span,
    ) -> Extremes {
        let from = at.minus(span);
        let limit = at.minus(max_age);
        let (mut max, mut min) = (f64::NEG_INFINITY, f64::INFINITY);
        let (mut max_at, mut min_at) = (at, at);
        let mut oldest = None;
        let mut latest = None;
        let mut seen_newest = false;
        let mut later = false;
        for e in self.history(param).iter().rev() {
            if !e.live() {
                continue;
            }
            if e.effective > at {
                later = true;
                continue;
            }
            if !seen_newest {
                seen_newest = true;
                if e.effective >= limit {
                    latest = Some(e.reading(param));
                }
            }
            if e.effective <= from {
                break;
            }
            // Newest first: on a tie the most recent reading is kept.
            if e.value > max {
                max = e.value;
                max_at = e.effective;
            }
            if e.value < min {
                min = e.value;
                min_at = e.effective;
            }
            oldest = Some(e.effective);
        }
        Extremes {
            latest,
            max,
            min,
            max_at,
            min_at,
            oldest,
            later,
        }
    }

    /// [`Window::extremes`] found from the extremes `before`, found at an earlier instant,
    /// when the only change since is one live reading of `param` placed after all its
    /// others (entries dropped to make room aside: [`Changes::appended`]) and nothing then
    /// in the span has left it by `at` (no reading measured after that instant was held).
    /// `dropped` holds what was dropped since (noted by [`Window::ingest_noting`]); a
    /// highest or lowest reading dropped is found again by a pass over the span for it
    /// alone. `None` when it cannot tell without the full pass: the new reading is outside
    /// the span or a reading of `before` left it.
    pub(crate) fn extremes_after_append(
        &self,
        param: Param,
        at: Timestamp,
        max_age: Span,
        span: Span,
        (before, dropped): (&Extremes, &Dropped),
    ) -> Option<Extremes> {
        let history = self.history(param);
        let new = history.last()?;
        let from = at.minus(span);
        if before.later || !new.live() || new.effective > at || new.effective <= from {
            return None;
        }
        let latest = (new.effective >= at.minus(max_age)).then(|| new.reading(param));
        let Some(oldest) = before.oldest else {
            // Nothing was in the span: the new reading is all of it.
            return Some(Extremes {
                latest,
                max: new.value,
                min: new.value,
                max_at: new.effective,
                min_at: new.effective,
                oldest: Some(new.effective),
                later: false,
            });
        };
        if oldest <= from {
            return None;
        }
        // Whether the live reading (`effective`, `value`) is still held: certainly if no
        // reading of its value was dropped, or else if it is found.
        let held = |effective: Timestamp, value: f64| {
            let i = history.partition_point(|e| e.effective < effective);
            history[i..]
                .iter()
                .take_while(|e| e.effective == effective)
                .any(|e| e.live() && e.value == value)
        };
        // The live readings in the span (nothing is held after the new one), from the
        // first (usually the first held).
        let start = history
            .iter()
            .position(|e| e.live() && e.effective > from)?;
        let in_span = &history[start..];
        // The highest (or lowest, by `better`) of them, the most recent on a tie: a pass
        // for the one extreme whose reading was dropped.
        let extreme = |better: fn(f64, f64) -> bool| {
            let mut best = (in_span[0].value, in_span[0].effective);
            for e in &in_span[1..] {
                if e.live() && better(e.value, best.0) {
                    best = (e.value, e.effective);
                }
            }
            best
        };
        // The new reading is the most recent: it wins a tie, and replaces a highest or
        // lowest reading that was dropped.
        let (max, max_at) = if new.value >= before.max {
            (new.value, new.effective)
        } else if dropped.max < before.max || held(before.max_at, before.max) {
            (before.max, before.max_at)
        } else {
            extreme(|a, b| a >= b)
        };
        let (min, min_at) = if new.value <= before.min {
            (new.value, new.effective)
        } else if dropped.min > before.min || held(before.min_at, before.min) {
            (before.min, before.min_at)
        } else {
            extreme(|a, b| a <= b)
        };
        let oldest = Some(in_span[0].effective);
        Some(Extremes {
            latest,
            max,
            min,
            max_at,
            min_at,
            oldest,
            later: false,
        })
    }

    /// Every live reading of `param` in `(at - span, at]`, oldest first.
    pub fn readings(
        &self,
        param: Param,
        at: Timestamp,
        span: Span,
    ) -> impl Iterator<Item = Reading> + '_ {
        let from = at.minus(span);
        self.history(param)
            .iter()
            .filter(move |e| e.live() && e.effective > from && e.effective <= at)
            .map(move |e| e.reading(param))
    }

    /// The live reading of `param` in force at `t`: the newest at or before `t` no older
    /// than `max_age`.
    pub fn at_time(&self, param: Param, t: Timestamp, max_age: Span) -> Option<Reading> {
        let hist = self.history(param);
        let limit = t.minus(max_age);
        // Binary search for the first entry after `t`, then walk back over withdrawn ones.
        let end = hist.partition_point(|e| e.effective <= t);
        hist[..end]
            .iter()
            .rev()
            .take_while(|e| e.effective >= limit)
            .find(|e| e.live())
            .map(|e| e.reading(param))
    }

    /// Every entry kept, over all parameters.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn write_state(&self, w: &mut crate::state::Writer<'_>) {
        w.opt_i64(self.newest.get().map(Timestamp::as_millis));
        w.u8(self.sofa_baseline);
        for &param in Param::ALL {
            let hist = self.history(param);
            w.u16(u16::try_from(hist.len()).unwrap_or(u16::MAX));
            for e in hist {
                w.i64(e.effective.as_millis());
                w.f64(e.value);
                w.u64(e.tag & !FLAGS);
                w.u8((e.tag & FLAGS) as u8);
            }
        }
    }

    pub(crate) fn read_state(
        r: &mut crate::state::Reader<'_>,
        staleness: &Staleness,
    ) -> Result<Window, crate::state::StateError> {
        use crate::state::StateError::Corrupt;
        let mut w = Window::new();
        w.newest = r.opt_i64()?.map(Timestamp::from_millis).into();
        w.sofa_baseline = r.u8()?;
        if w.sofa_baseline > 24 {
            return Err(Corrupt("SOFA baseline above 24"));
        }
        // The buffer is allocated once at its exact size: count the entries first.
        let mut ahead = crate::state::Reader(r.0);
        let mut total = 0;
        for _ in Param::ALL {
            let n = usize::from(ahead.u16()?);
            ahead.skip(n * ENTRY_BYTES)?;
            total += n;
        }
        w.entries = Vec::with_capacity(total);
        for &param in Param::ALL {
            let n = usize::from(r.u16()?);
            if n > HISTORY_CAP {
                return Err(Corrupt("more entries than a history holds"));
            }
            w.starts[param.index()] = u16::try_from(w.entries.len()).unwrap_or(u16::MAX);
            let mut previous = i64::MIN;
            for _ in 0..n {
                let effective = r.i64()?;
                let value = r.f64()?;
                let id = r.u64()?;
                let flags = u64::from(r.u8()?);
                let valid = match param.range() {
                    Some((min, max)) => {
                        value.is_finite() && value >= min - 1e-9 && value <= max + 1e-9
                    }
                    None => (0.0..=4.0).contains(&value) && value.fract() == 0.0,
                };
                if !valid || effective < previous || flags & !FLAGS != 0 {
                    return Err(Corrupt("an entry is out of range or out of order"));
                }
                previous = effective;
                w.entries.push(Entry {
                    effective: Timestamp::from_millis(effective),
                    value,
                    tag: (id & !FLAGS) | flags,
                });
            }
        }
        for param in [
            Param::Pao2,
            Param::Fio2,
            Param::OnOxygen,
            Param::Ventilation,
        ] {
            if w.entries(param) > 0 {
                w.refresh(param, staleness);
            }
        }
        w.changed = ParamSet::EMPTY;
        Ok(w)
    }

    /// The number of entries (readings and tombstones) kept for `param`.
    pub fn entries(&self, param: Param) -> usize {
        self.span_of(param).len()
    }

    /// The heap bytes this window holds (its entry buffer and, with blood gases, the
    /// worst PaO2/FiO2 pairing).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<Entry>()
            + self.derived.as_ref().map_or(0, |_| size_of::<Derived>())
            + self.ids.as_ref().map_or(0, |_| size_of::<IdFilter>())
    }
}

/// Bytes of one entry in the state layout (`i64 effective, f64 value, u64 id, u8 flags`).
const ENTRY_BYTES: usize = 8 + 8 + 8 + 1;

fn retention(param: Param, staleness: &Staleness) -> Span {
    staleness.of(param.kind()).max(SOFA_SPAN)
}

/// Whether `a` is strictly worse than `b`.
fn worse(direction: Worse, a: f64, b: f64) -> bool {
    match direction {
        Worse::Lower => a < b,
        Worse::Higher => a > b,
        Worse::Neither => false,
    }
}

/// Which entry of a full history to drop to make room for one more (see the module
/// docs).
fn thin(hist: &[Entry], direction: Worse) -> usize {
    if direction == Worse::Neither {
        // Only the newest reading of these parameters is scored: drop the oldest entry.
        return 0;
    }
    let last = hist.len() - 1;
    if let Some(i) = hist.iter().take(last).position(|e| !e.live()) {
        return i;
    }
    // Merge the closest adjacent pair among the entries before the newest.
    let mut pick = 0;
    let mut gap = i64::MAX;
    for i in 0..last - 1 {
        let g = hist[i + 1].effective.as_millis() - hist[i].effective.as_millis();
        if g < gap {
            gap = g;
            pick = i;
        }
    }
    let keep_later = !worse(direction, hist[pick].value, hist[pick + 1].value);
    if keep_later { pick } else { pick + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::RawValue;

    const H: i64 = 3_600_000;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn obs(code: &str, v: f64, t: i64, id: Option<&str>, status: Status) -> Observation {
        Observation::new(code, RawValue::Number(v), None, at(t), id, status).unwrap()
    }

    fn hr(w: &Window, t: i64) -> Option<f64> {
        w.latest(Param::HeartRate, at(t), &Staleness::default())
            .map(|r| r.value)
    }

    #[test]
    fn latest_follows_event_time_not_arrival() {
        let s = Staleness::default();
        let mut w = Window::new();
        assert_eq!(
            w.ingest(&obs("heart_rate", 90.0, 2 * H, None, Status::Final), &s),
            Ingested::Accepted
        );
        assert_eq!(
            w.ingest(&obs("heart_rate", 70.0, H, None, Status::Final), &s),
            Ingested::Accepted
        );
        assert_eq!(hr(&w, 2 * H), Some(90.0));
        assert_eq!(
            hr(&w, H + 1),
            Some(70.0),
            "evaluating in the past sees the past"
        );
        assert_eq!(hr(&w, H - 1), None, "nothing measured yet");
    }

    #[test]
    fn staleness_edges() {
        let s = Staleness::default();
        let mut w = Window::new();
        w.ingest(&obs("heart_rate", 90.0, 0, None, Status::Final), &s);
        assert_eq!(hr(&w, 6 * H), Some(90.0), "exactly 6 h old is still usable");
        assert_eq!(hr(&w, 6 * H + 1), None, "older than 6 h is stale");
        w.ingest(&obs("lactate", 3.0, 0, None, Status::Final), &s);
        assert!(w.latest(Param::Lactate, at(24 * H), &s).is_some());
        assert!(w.latest(Param::Lactate, at(24 * H + 1), &s).is_none());
        w.ingest(&obs("norepinephrine", 0.2, 0, None, Status::Final), &s);
        assert!(w.latest(Param::Norepinephrine, at(2 * H), &s).is_some());
        assert!(w.latest(Param::Norepinephrine, at(2 * H + 1), &s).is_none());
        w.ingest(&obs("spo2_scale", 2.0, 0, None, Status::Final), &s);
        assert!(w.latest(Param::Spo2Scale, at(1000 * H), &s).is_some());
    }

    #[test]
    fn duplicates_amendments_and_withdrawals() {
        let s = Staleness::default();
        let mut w = Window::new();
        let first = obs("heart_rate", 90.0, H, Some("a"), Status::Final);
        assert_eq!(w.ingest(&first, &s), Ingested::Accepted);
        assert_eq!(
            w.ingest(&first, &s),
            Ingested::Duplicate,
            "same id, same content"
        );
        // Same id, other content, final: a conflict, not a silent duplicate.
        let again = obs("heart_rate", 95.0, H, Some("a"), Status::Final);
        match w.ingest(&again, &s) {
            Ingested::Conflict { held } => assert_eq!(held.value, 90.0),
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(hr(&w, H), Some(90.0));
        let amended = obs("heart_rate", 120.0, H, Some("a"), Status::Amended);
        assert_eq!(w.ingest(&amended, &s), Ingested::Amended);
        assert_eq!(hr(&w, H), Some(120.0));
        assert_eq!(w.entries(Param::HeartRate), 1);
        w.ingest(
            &obs("heart_rate", 80.0, H - 10, Some("b"), Status::Final),
            &s,
        );
        let withdraw = obs("heart_rate", 120.0, H, Some("a"), Status::EnteredInError);
        assert_eq!(w.ingest(&withdraw, &s), Ingested::Withdrawn);
        assert_eq!(hr(&w, H), Some(80.0), "falls back to the previous reading");
        assert_eq!(w.ingest(&withdraw, &s), Ingested::Duplicate);
        // The original arriving again after its withdrawal is a duplicate: it stays withdrawn.
        assert_eq!(w.ingest(&first, &s), Ingested::Duplicate);
        assert_eq!(hr(&w, H), Some(80.0));
    }

    #[test]
    fn an_id_is_one_observation_whatever_its_code() {
        let s = Staleness::default();
        let mut w = Window::new();
        w.ingest(&obs("heart_rate", 90.0, H, Some("m1"), Status::Final), &s);
        // Sent again under another code: the id names one observation, so this is a
        // conflict (never a second reading), and nothing changes.
        let remapped = obs("resp_rate", 30.0, H, Some("m1"), Status::Final);
        assert!(matches!(
            w.ingest(&remapped, &s),
            Ingested::Conflict { held } if held.param == Param::HeartRate
        ));
        assert!(w.latest(Param::RespRate, at(H), &s).is_none());
        // An amendment that corrects the code moves the reading.
        let corrected = obs("resp_rate", 30.0, H, Some("m1"), Status::Amended);
        assert_eq!(w.ingest(&corrected, &s), Ingested::Amended);
        assert_eq!(hr(&w, H), None);
        assert_eq!(
            w.latest(Param::RespRate, at(H), &s).map(|r| r.value),
            Some(30.0)
        );
        // A withdrawal under either code withdraws it.
        let withdraw = obs("heart_rate", 30.0, H, Some("m1"), Status::EnteredInError);
        assert_eq!(w.ingest(&withdraw, &s), Ingested::Withdrawn);
        assert!(w.latest(Param::RespRate, at(H), &s).is_none());
    }

    #[test]
    fn ids_are_recognised_over_a_long_feed() {
        let s = Staleness::default();
        let mut w = Window::new();
        for i in 0..3000 {
            let id = format!("obs-{i}");
            let o = obs("heart_rate", 80.0, i * 1000, Some(&id), Status::Final);
            assert_eq!(w.ingest(&o, &s), Ingested::Accepted, "{id}");
            // The reading just stored, and one stored 20 readings ago, are duplicates.
            assert_eq!(w.ingest(&o, &s), Ingested::Duplicate, "{id}");
            if i >= 20 {
                let back = format!("obs-{}", i - 20);
                let old = obs(
                    "heart_rate",
                    80.0,
                    (i - 20) * 1000,
                    Some(&back),
                    Status::Final,
                );
                assert_eq!(w.ingest(&old, &s), Ingested::Duplicate, "{back}");
            }
        }
    }

    #[test]
    fn withdrawal_before_the_original_is_remembered() {
        let s = Staleness::default();
        let mut w = Window::new();
        let withdraw = obs("heart_rate", 150.0, H, Some("x"), Status::EnteredInError);
        assert_eq!(w.ingest(&withdraw, &s), Ingested::Withdrawn);
        let original = obs("heart_rate", 150.0, H, Some("x"), Status::Final);
        assert_eq!(w.ingest(&original, &s), Ingested::Duplicate);
        assert_eq!(hr(&w, H), None);
    }

    #[test]
    fn too_old_is_stale_and_old_readings_expire() {
        let s = Staleness::default();
        let mut w = Window::new();
        w.ingest(&obs("heart_rate", 90.0, 30 * H, None, Status::Final), &s);
        assert_eq!(
            w.ingest(&obs("heart_rate", 80.0, 5 * H, None, Status::Final), &s),
            Ingested::Stale
        );
        assert_eq!(
            w.ingest(&obs("heart_rate", 80.0, 6 * H, None, Status::Final), &s),
            Ingested::Accepted
        );
        w.ingest(&obs("heart_rate", 85.0, 60 * H, None, Status::Final), &s);
        assert_eq!(
            w.entries(Param::HeartRate),
            1,
            "readings beyond 24 h are dropped"
        );
    }

    #[test]
    fn worst_over_24h_edges() {
        let s = Staleness::default();
        let mut w = Window::new();
        w.ingest(&obs("platelets", 40.0, 0, None, Status::Final), &s);
        w.ingest(&obs("platelets", 120.0, 10 * H, None, Status::Final), &s);
        let worst = |t| w.worst(Param::Platelets, at(t), SOFA_SPAN).map(|r| r.value);
        assert_eq!(worst(10 * H), Some(40.0));
        assert_eq!(worst(24 * H - 1), Some(40.0), "inside 24 h");
        assert_eq!(
            worst(24 * H),
            Some(120.0),
            "exactly 24 h old has left the window"
        );
    }

    #[test]
    fn memory_is_bounded_and_thinning_keeps_latest_and_worst() {
        let s = Staleness::default();
        let mut w = Window::new();
        // MAP every minute for 20 h with one low dip at hour 3.
        for m in 0..(20 * 60) {
            let v = if m == 180 {
                45.0
            } else {
                80.0 + (m % 7) as f64
            };
            w.ingest(&obs("map", v, m * 60_000, None, Status::Final), &s);
            assert!(w.entries(Param::Map) <= HISTORY_CAP);
        }
        let now = at((20 * 60 - 1) * 60_000);
        let worst = w.worst(Param::Map, now, SOFA_SPAN).unwrap();
        assert_eq!(worst.value, 45.0);
        assert_eq!(worst.effective, at(180 * 60_000));
        let latest = w.latest(Param::Map, now, &s).unwrap();
        assert_eq!(latest.effective, now);
        for m in 0..10_000 {
            w.ingest(&obs("heart_rate", 80.0, m * 1000, None, Status::Final), &s);
        }
        assert!(w.entries(Param::HeartRate) <= HISTORY_CAP);
        assert!(
            w.heap_bytes()
                <= PARAM_COUNT * HISTORY_CAP * 24 + size_of::<Derived>() + size_of::<IdFilter>()
        );
        assert_eq!(size_of::<Entry>(), 24);
        assert!(size_of::<Window>() <= 128, "{}", size_of::<Window>());
    }

    /// A window with one reading of each of a few parameters keeps only those, in one
    /// buffer sized by them: the fixed part does not grow with the parameter list.
    #[test]
    fn a_window_is_sized_by_what_it_holds() {
        let s = Staleness::default();
        let mut w = Window::new();
        assert_eq!(w.heap_bytes(), 0);
        for (i, code) in ["temperature", "heart_rate", "spo2"].iter().enumerate() {
            let id = format!("r{i}");
            w.ingest(&obs(code, 37.0 + i as f64, H, Some(&id), Status::Final), &s);
        }
        assert_eq!(w.entry_count(), 3);
        assert!(
            w.heap_bytes() <= 4 * size_of::<Entry>(),
            "{}",
            w.heap_bytes()
        );
        assert_eq!(w.entries(Param::HeartRate), 1);
        assert_eq!(w.entries(Param::RespRate), 0);
    }

    /// A monitor's feed at a full history (one reading in, one dropped): the extremes
    /// are updated without a full pass on most readings, and equal one on every reading.
    #[test]
    fn extremes_follow_a_full_history_without_a_full_pass() {
        let s = Staleness::default();
        let max_age = s.of(Param::HeartRate.kind());
        let mut w = Window::new();
        let mut updated = 0;
        for i in 0..2_000i64 {
            let t = i * 60_000;
            let before = w.extremes(Param::HeartRate, at(t - 60_000), max_age, SOFA_SPAN);
            let _ = w.take_changes();
            let mut dropped = Dropped::default();
            // A sawtooth: rising, then back to its lowest every 41 readings.
            let hr = 100.0 + (i % 41) as f64;
            let o = obs("heart_rate", hr, t, Some(&format!("hr-{i}")), Status::Final);
            w.ingest_noting(&o, &s, &mut dropped);
            assert_eq!(w.take_changes().appended, Some(Param::HeartRate));
            let full = w.extremes(Param::HeartRate, at(t), max_age, SOFA_SPAN);
            if let Some(x) = w.extremes_after_append(
                Param::HeartRate,
                at(t),
                max_age,
                SOFA_SPAN,
                (&before, &dropped),
            ) {
                assert_eq!(x, full, "reading {i}");
                updated += 1;
            }
        }
        assert!(updated > 1_900, "{updated} of 2000 updated");
        // A plain ingest does not mark an append: its drops are not noted.
        let _ = w.take_changes();
        w.ingest(
            &obs("heart_rate", 90.0, 2_000 * 60_000, None, Status::Final),
            &s,
        );
        assert_eq!(w.take_changes().appended, None);
    }

    /// A withdrawn reading left in a full history is never taken for an extreme when the
    /// lowest reading is dropped to make room and the lowest is found again.
    #[test]
    fn a_withdrawn_reading_is_not_an_extreme_after_an_append() {
        let s = Staleness::default();
        let max_age = s.of(Param::HeartRate.kind());
        let mut w = Window::new();
        for i in 0..31i64 {
            let o = obs(
                "heart_rate",
                100.0 + i as f64,
                i * 60_000,
                Some(&format!("hr-{i}")),
                Status::Final,
            );
            w.ingest(&o, &s);
        }
        // The newest, lowest, reading is withdrawn: its tombstone stays the newest entry.
        w.ingest(
            &obs("heart_rate", 50.0, 31 * 60_000, Some("low"), Status::Final),
            &s,
        );
        w.ingest(
            &obs(
                "heart_rate",
                50.0,
                31 * 60_000,
                Some("low"),
                Status::EnteredInError,
            ),
            &s,
        );
        assert_eq!(w.entries(Param::HeartRate), HISTORY_CAP);
        let before = w.extremes(Param::HeartRate, at(31 * 60_000), max_age, SOFA_SPAN);
        assert_eq!(before.min, 100.0);
        let _ = w.take_changes();
        // One more reading: the lowest (the oldest) is dropped to make room.
        let mut dropped = Dropped::default();
        let o = obs(
            "heart_rate",
            140.0,
            32 * 60_000,
            Some("hr-32"),
            Status::Final,
        );
        w.ingest_noting(&o, &s, &mut dropped);
        assert_eq!(w.take_changes().appended, Some(Param::HeartRate));
        let now = at(32 * 60_000);
        let x = w
            .extremes_after_append(
                Param::HeartRate,
                now,
                max_age,
                SOFA_SPAN,
                (&before, &dropped),
            )
            .expect("updated");
        assert_eq!(x.min, 101.0);
        assert_eq!(x, w.extremes(Param::HeartRate, now, max_age, SOFA_SPAN));
    }

    mod layout_props {
        use super::*;
        use proptest::prelude::*;

        const PARAMS: [(&str, f64, f64); 7] = [
            ("pao2", 40.0, 300.0),
            ("fio2", 0.21, 1.0),
            ("map", 30.0, 120.0),
            ("platelets", 5.0, 300.0),
            ("on_oxygen", 0.0, 1.0),
            ("ventilation", 0.0, 1.0),
            ("heart_rate", 30.0, 180.0),
        ];

        fn observation(p: usize, f: f64, t: i64, id: u8, status: u8) -> Observation {
            let (code, lo, hi) = PARAMS[p];
            let status =
                [Status::Final, Status::Amended, Status::EnteredInError][usize::from(status)];
            let id = format!("id-{id}");
            let value = if code == "on_oxygen" || code == "ventilation" {
                RawValue::Bool(f > 0.5)
            } else {
                RawValue::Number(lo + (hi - lo) * f)
            };
            Observation::new(code, value, None, at(t), Some(&id), status).unwrap()
        }

        proptest! {
            /// Vigil Risk's update of a parameter's extremes after one reading appended
            /// after its others equals a full pass, whatever was dropped to make room,
            /// expired, corrected or withdrawn, and however the evaluation instant moved.
            #[test]
            fn extremes_after_an_append_equal_a_full_pass(
                steps in prop::collection::vec((0..9u8, 0..3i64, 0..8u8, 0..3i64), 1..160),
                p in prop::sample::select(vec![2usize, 3, 6]),
            ) {
                let s = Staleness::default();
                let param = Param::from_code(PARAMS[p].0).unwrap();
                let max_age = s.of(param.kind());
                let mut w = Window::new();
                let mut t = 0;
                let mut evaluated = at(0);
                for (k, (f, gap, op, late)) in steps.into_iter().enumerate() {
                    // Mostly a new reading 0-10 minutes after the last; now and then a day
                    // later (the history expires), a correction, a withdrawal or a reading
                    // measured earlier than the last.
                    t += if op == 7 { 26 * H } else { gap * 5 * 60_000 };
                    let (when, id, status) = match op {
                        5 => (t, (k / 2) as u8, 1),
                        6 if k % 2 == 0 => (t, (k / 3) as u8, 2),
                        6 => (t, k.saturating_sub(1) as u8, 2),
                        4 => (t - late * H, k as u8, 0),
                        _ => (t, k as u8, 0),
                    };
                    let before = w.extremes(param, evaluated, max_age, SOFA_SPAN);
                    let _ = w.take_changes();
                    let mut dropped = Dropped::default();
                    // Nine values, so that ties are common.
                    let f = f64::from(f) / 8.0;
                    w.ingest_noting(&observation(p, f, when, id, status), &s, &mut dropped);
                    let changes = w.take_changes();
                    evaluated = evaluated.max(at(t + late * 60_000));
                    if changes.appended == Some(param)
                        && let Some(x) = w.extremes_after_append(
                            param, evaluated, max_age, SOFA_SPAN, (&before, &dropped))
                    {
                        prop_assert_eq!(x, w.extremes(param, evaluated, max_age, SOFA_SPAN));
                    }
                }
            }

            /// Whatever the order of readings, amendments (which may move an id to another
            /// parameter) and withdrawals: every group stays sorted and inside its own
            /// range; the newest, worst-of-24 h and PaO2/FiO2 answers equal plain scans of
            /// the parameter's live readings; and the state survives a round trip.
            #[test]
            fn lookups_agree_with_plain_scans(
                events in prop::collection::vec(
                    (0..PARAMS.len(), 0.0..1.0f64, 0..(40 * H), 0..64u8, 0..3u8), 1..300),
                probes in prop::collection::vec(0..(80 * H), 1..6),
            ) {
                let s = Staleness::default();
                let mut w = Window::new();
                for &(p, f, t, id, status) in &events {
                    w.ingest(&observation(p, f, t, id, status), &s);
                }
                let mut seen = 0;
                for &param in Param::ALL {
                    let hist = w.history(param);
                    prop_assert!(hist.windows(2).all(|e| e[0].order() <= e[1].order()));
                    prop_assert!(hist.len() <= HISTORY_CAP);
                    seen += hist.len();
                }
                prop_assert_eq!(seen, w.entry_count());
                for probe in probes {
                    let at = at(probe);
                    for &(code, _, _) in &PARAMS {
                        let param = Param::from_code(code).unwrap();
                        let live: Vec<Reading> = w.readings(param, at, Span::hours(10_000)).collect();
                        let max_age = s.of(param.kind());
                        let latest = live.iter().rev().find(|r| r.effective >= at.minus(max_age)).copied();
                        prop_assert_eq!(w.latest(param, at, &s), latest);
                        let in_span = live.iter().filter(|r| r.effective > at.minus(SOFA_SPAN));
                        let mut worst: Option<Reading> = None;
                        for r in in_span {
                            if worst.is_none_or(|b| !worse(param.worse(), b.value, r.value)) {
                                worst = Some(*r);
                            }
                        }
                        if param.worse() == Worse::Neither {
                            worst = live.iter().rev().find(|r| r.effective > at.minus(SOFA_SPAN)).copied();
                        }
                        prop_assert_eq!(w.worst(param, at, SOFA_SPAN), worst);
                        // Vigil Risk's one-pass extremes: the highest and lowest in 24 h,
                        // the most recent on a tie, the oldest time, and later readings.
                        let x = w.extremes(param, at, max_age, SOFA_SPAN);
                        prop_assert_eq!(x.latest, latest);
                        let day: Vec<&Reading> = live.iter().filter(|r| r.effective > at.minus(SOFA_SPAN)).collect();
                        prop_assert_eq!(x.oldest, day.first().map(|r| r.effective));
                        if let Some(high) = day.iter().map(|r| r.value).reduce(f64::max) {
                            let low = day.iter().map(|r| r.value).fold(f64::INFINITY, f64::min);
                            prop_assert_eq!((x.max, x.min), (high, low));
                            let last_at = |v: f64| day.iter().rev().find(|r| r.value == v).map(|r| r.effective);
                            prop_assert_eq!(Some(x.max_at), last_at(high));
                            prop_assert_eq!(Some(x.min_at), last_at(low));
                        }
                        let later = w.readings(param, at.plus(Span::hours(10_000)), Span::hours(20_000)).any(|r| r.effective > at);
                        prop_assert_eq!(x.later, later);
                    }
                    prop_assert_eq!(w.worst_pf(at, s.vital), w.scan_pf(at, s.vital).0);
                }
                let mut bytes = Vec::new();
                w.write_state(&mut crate::state::Writer(&mut bytes));
                let back = Window::read_state(&mut crate::state::Reader(&bytes), &s).unwrap();
                prop_assert_eq!(&back.entries, &w.entries);
                prop_assert_eq!(back.starts, w.starts);
            }
        }
    }
}
