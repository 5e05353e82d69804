//! Vigil Risk as a rule: the shipped model's estimate ([`crate::risk`]) in whole percent,
//! with the readings that raised it most as evidence.
//!
//! Unlike the published scores this is a statistical estimate learned from one hospital
//! system's ICU stays (the model card: CLINICAL.md, "Vigil Risk"). Its evidence lists the
//! features that added most to the log-odds, each with its reading and what it added (in
//! tenths of log-odds as the criterion's points); every parameter the model could not
//! read is listed as missing, never taken as normal.

use super::{Criteria, Inputs};
use crate::param::Param;
use crate::param::ParamSet;
use crate::risk::{
    Fixed, GroupMask, Input, MASK_GROUPS, RiskModel, Stat, from_fixed, percent, probability,
};
use crate::time::{MaybeTime, Span, Timestamp};
use crate::window::{Changes, Dropped, Extremes, Reading};

/// The span of the 24-hour extremes.
const DAY: Span = Span::hours(24);

const FAR: Timestamp = Timestamp::from_millis(i64::MAX);

/// The most contributions kept as evidence.
pub const EVIDENCE: usize = 5;

/// A Vigil Risk result.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Risk {
    /// The estimate in whole percent (rounded down).
    pub score: u8,
    /// The estimated log-odds.
    #[serde(skip)]
    pub log_odds: f64,
    /// The readings that raised the estimate most, largest first; points are tenths of
    /// log-odds.
    pub criteria: Criteria<EVIDENCE>,
    /// Since when the patient has been observed, and what the hours since then added to
    /// the log-odds.
    #[serde(skip)]
    pub observed: Option<(crate::time::Timestamp, f64)>,
    /// Parameters the model reads with no current value.
    pub missing: ParamSet,
}

/// Every parameter the shipped model reads.
pub fn inputs() -> ParamSet {
    RiskModel::shipped().params()
}

/// The criterion text of a statistic.
fn criterion(stat: Stat) -> &'static &'static str {
    match stat {
        Stat::Now => &"current value",
        Stat::Max6h => &"highest in 6 h",
        Stat::Min6h => &"lowest in 6 h",
        Stat::Change6h => &"change over 6 h",
        Stat::Max24h => &"highest in 24 h",
        Stat::Min24h => &"lowest in 24 h",
        Stat::Age => &"hours since measured",
    }
}

/// Scores the configured model (`Config::risk`) into `out`; with `Config::score_risk`
/// off, a score of 0 with every input missing.
pub fn score_into(inputs: &Inputs<'_>, out: &mut Risk) {
    let config = inputs.config();
    if config.score_risk {
        score_model_into(&config.risk, inputs, out);
    } else {
        let missing = config.risk.params();
        // The same result every time: written only when the storage holds another.
        if out.missing != missing
            || out.score != 0
            || out.log_odds != 0.0
            || out.observed.is_some()
            || !out.criteria.as_slice().is_empty()
        {
            *out = Risk {
                missing,
                ..Risk::default()
            };
        }
    }
}

/// Scores `model` into `out`, reusing its storage: every feature computed afresh.
pub fn score_model_into(model: &RiskModel, inputs: &Inputs<'_>, out: &mut Risk) {
    let n = model.features.len();
    let groups = model.layout().groups.len();
    // Scratch for the bins and groups: on the stack for a model of the usual size.
    let (mut bins_stack, mut groups_stack) = ([NONE; 64], [GroupState::DUE; 32]);
    let mut heap: (Vec<u8>, Vec<GroupState>);
    let (bins, states): (&mut [u8], &mut [GroupState]) = if n <= 64 && groups <= 32 {
        (&mut bins_stack[..n], &mut groups_stack[..groups])
    } else {
        heap = (vec![NONE; n], vec![GroupState::DUE; groups]);
        (&mut heap.0[..], &mut heap.1[..])
    };
    // Every feature's reading, kept for the evidence (no second pass over a history).
    let mut readings = [None; 64];
    let readings = if n <= 64 { &mut readings[..n] } else { &mut [] };
    let (_, extremes) = rescore(model, inputs, (bins, states, readings), None, None);
    let (_, horizon) = summarize(model, inputs, states, out);
    inputs.lower_horizon(horizon);
    evidence(
        model,
        inputs,
        (bins, states, readings),
        (Fresh::All, extremes),
        (&[], None),
        out,
    );
}

/// A bin no value fell in: the feature is missing.
const NONE: u8 = u8::MAX;

/// One group of features ([`crate::risk::Layout::groups`]) as last scored.
#[derive(Clone, Copy, Debug, PartialEq)]
struct GroupState {
    /// The first instant it may change without a new reading.
    until: Timestamp,
    /// What its features added to the log-odds.
    subtotal: Fixed,
    /// Whether any of its features has a value.
    present: bool,
    /// The most any of them added, rounded up to an `f32` (a bound that lets the
    /// evidence search pass over the group without reading its features).
    best: f32,
}

impl GroupState {
    /// Never scored: due at once.
    const DUE: GroupState = GroupState {
        until: Timestamp::from_millis(i64::MIN),
        subtotal: 0,
        present: false,
        best: f32::NEG_INFINITY,
    };
}

/// A parameter's 24-hour extremes as last found ([`Extremes`] without the current
/// reading), kept so that a reading appended after its others updates them without a
/// pass over the history ([`crate::Window::extremes_after_append`]).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Kept {
    max: f64,
    min: f64,
    max_at: Timestamp,
    min_at: Timestamp,
    oldest: MaybeTime,
}

impl Kept {
    /// What to keep of `x`: nothing while a later reading is held (the group is then
    /// due again at the next instant anyway).
    fn of(x: &Extremes) -> Option<Kept> {
        (!x.later).then_some(Kept {
            max: x.max,
            min: x.min,
            max_at: x.max_at,
            min_at: x.min_at,
            oldest: x.oldest.into(),
        })
    }

    fn extremes(&self) -> Extremes {
        Extremes {
            latest: None,
            max: self.max,
            min: self.min,
            max_at: self.max_at,
            min_at: self.min_at,
            oldest: self.oldest.get(),
            later: false,
        }
    }
}

/// Evidence is what added at least this much (one tenth, rounded) to the log-odds.
const EVIDENCE_FROM: f64 = 0.05;

/// What Vigil Risk remembers of one patient between two scorings, so that a new reading
/// re-scores only the features of its parameter ([`crate::Patient`] keeps one while
/// Vigil Risk is scored): each feature's bin, each group's horizon and sum, and each
/// parameter's 24-hour extremes. About 1.2 KB for the shipped model.
#[derive(Clone, Debug, PartialEq)]
pub struct Memo {
    /// When it was last scored.
    at: Timestamp,
    /// The window's first reading then (the hours observed count from it).
    first: Option<Timestamp>,
    /// Per feature, the bin its value fell in ([`NONE`]: missing).
    bins: Box<[u8]>,
    /// Per group.
    groups: Box<[GroupState]>,
    /// Per group, its parameter's extremes when it was last scored.
    spans: Box<[Option<Kept>]>,
    /// The largest contributions.
    ranking: Ranking,
    /// The features behind the result's criteria, in their order.
    top: [u8; EVIDENCE],
    /// How many of `top` are in use.
    kept: u8,
    /// The estimate: the intercept and every group's sum.
    total: Fixed,
    /// The earliest of the groups' horizons.
    horizon: Timestamp,
    /// What the window dropped since the last scoring ([`crate::Window::ingest_noting`]).
    dropped: Dropped,
}

impl Memo {
    /// The window's first reading when it was last scored.
    pub(crate) fn first(&self) -> Option<Timestamp> {
        self.first
    }

    /// Where the window notes what it drops until the next scoring.
    pub(crate) fn dropped(&mut self) -> &mut Dropped {
        &mut self.dropped
    }
}

/// Scores the configured model into `out` as [`score_into`] does, but re-scores only the
/// groups of features whose parameter changed since the last scoring (`changes`), whose
/// horizon has passed, or (the hours observed) whose first reading moved, and updates the
/// estimate, the missing parameters and the evidence from what they changed; everything
/// when `memo` is empty, was made for another model or was scored later than
/// `inputs.at()`. A parameter with one reading appended has its extremes updated from
/// the memo's. A property test holds it equal to [`score_into`].
pub(crate) fn score_incremental(
    inputs: &Inputs<'_>,
    changes: Changes,
    memo: &mut Option<Box<Memo>>,
    out: &mut Risk,
) {
    let config = inputs.config();
    let model = &*config.risk;
    let layout = model.layout();
    let (n, groups) = (model.features.len(), layout.groups.len());
    // Evidence is remembered by a feature's index in a byte, groups by a bit of a mask.
    if !config.score_risk || n > usize::from(NONE) || groups > MASK_GROUPS {
        *memo = None;
        score_into(inputs, out);
        return;
    }
    let (at, first) = (inputs.at(), inputs.window().first());
    let reusable = memo
        .as_ref()
        .is_some_and(|m| m.bins.len() == n && m.groups.len() == groups && m.at <= at);
    let m = match memo {
        Some(m) if reusable => m,
        _ => {
            // Everything afresh.
            let m = memo.insert(Box::new(Memo {
                at,
                first,
                bins: vec![NONE; n].into_boxed_slice(),
                groups: vec![GroupState::DUE; groups].into_boxed_slice(),
                spans: vec![None; groups].into_boxed_slice(),
                ranking: Ranking::UNKNOWN,
                top: [0; EVIDENCE],
                kept: 0,
                total: 0,
                horizon: FAR,
                dropped: Dropped::default(),
            }));
            let (_, extremes) = rescore(
                model,
                inputs,
                (&mut m.bins, &mut m.groups, &mut []),
                Some(Spans {
                    appended: changes.appended,
                    dropped: &Dropped::default(),
                    kept: &mut m.spans,
                }),
                None,
            );
            (m.total, m.horizon) = summarize(model, inputs, &m.groups, out);
            inputs.lower_horizon(m.horizon);
            (m.top, m.kept) = evidence(
                model,
                inputs,
                (&m.bins, &m.groups, &[]),
                (Fresh::All, extremes),
                (&[], Some((&mut m.ranking, GroupMask::MAX))),
                out,
            );
            return;
        }
    };
    // The groups due: those reading a changed parameter, the hours observed if the first
    // reading moved, and those whose horizon has passed.
    let mut due: GroupMask = 0;
    for p in changes.params.intersection(model.params()).iter() {
        due |= layout.by_param[p.index()];
    }
    if m.first != first {
        due |= layout.observed;
    }
    if at >= m.horizon {
        for (g, state) in m.groups.iter().enumerate() {
            if at >= state.until {
                due |= 1 << g;
            }
        }
    }
    // What the due groups held, then what they hold.
    let tally = |states: &[GroupState]| {
        let (mut sum, mut present, mut earliest) = (0, 0 as GroupMask, FAR);
        for g in bits(due) {
            let s = &states[g];
            sum += s.subtotal;
            present |= GroupMask::from(s.present) << g;
            earliest = earliest.min(s.until);
        }
        (sum, present, earliest)
    };
    let (before, present_before, earliest_before) = tally(&m.groups);
    let (moved, extremes) = rescore(
        model,
        inputs,
        (&mut m.bins, &mut m.groups, &mut []),
        Some(Spans {
            appended: changes.appended,
            dropped: &m.dropped,
            kept: &mut m.spans,
        }),
        Some(due),
    );
    m.dropped = Dropped::default();
    let (after, present_after, earliest_after) = tally(&m.groups);
    if after != before {
        m.total += after - before;
        out.log_odds = from_fixed(m.total);
        out.score = percent(probability(out.log_odds));
    }
    m.horizon = if earliest_before == m.horizon && earliest_after != earliest_before {
        // The earliest horizon was among them: find it again.
        m.groups.iter().map(|s| s.until).min().unwrap_or(FAR)
    } else {
        m.horizon.min(earliest_after)
    };
    inputs.lower_horizon(m.horizon);
    if present_after != present_before {
        out.missing = missing(model, &m.groups);
    }
    if due & layout.observed != 0 {
        out.observed = observed(model, inputs, &m.groups);
    }
    let previous = &m.top[..usize::from(m.kept)];
    (m.top, m.kept) = evidence(
        model,
        inputs,
        (&m.bins, &m.groups, &[]),
        (Fresh::Mask(due), extremes),
        (previous, Some((&mut m.ranking, moved))),
        out,
    );
    m.at = at;
    m.first = first;
}

/// The set bits of `mask`, lowest first.
fn bits(mut mask: GroupMask) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let g = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            g
        })
    })
}

/// What a scoring keeps of the parameters' extremes ([`rescore`]).
struct Spans<'a> {
    /// The parameter with one reading appended after its others, if that was the only
    /// change ([`Changes::appended`]).
    appended: Option<Param>,
    /// What the window dropped since the last scoring.
    dropped: &'a Dropped,
    /// Per group, its parameter's extremes when it was last scored.
    kept: &'a mut [Option<Kept>],
}

/// Which groups a scoring computed afresh.
#[derive(Clone, Copy)]
enum Fresh {
    All,
    /// Bit `g` for group `g` (a model scored incrementally has at most [`MASK_GROUPS`]).
    Mask(GroupMask),
}

impl Fresh {
    fn contains(self, group: usize) -> bool {
        match self {
            Fresh::All => true,
            Fresh::Mask(mask) => group >= MASK_GROUPS || mask & (1 << group) != 0,
        }
    }
}

/// Computes the bin of every feature, and the horizon and sum of every group, in `due`
/// (every group with `None`), keeping each feature's reading in `readings` if it has
/// room. With `spans`, the appended parameter's extremes are updated from the kept ones
/// where they can be, and the extremes found are kept. Returns the groups in which a
/// feature moved to another bin (or to or from missing), and the history pass of the last
/// parameter it read.
fn rescore(
    model: &RiskModel,
    inputs: &Inputs<'_>,
    (bins, states, readings): (&mut [u8], &mut [GroupState], &mut [Option<Reading>]),
    mut spans: Option<Spans<'_>>,
    due: Option<GroupMask>,
) -> (GroupMask, Option<(Param, Extremes)>) {
    let (window, at) = (inputs.window(), inputs.at());
    let staleness = &inputs.config().staleness;
    let (slots, layout) = (model.slots(), model.layout());
    // A parameter's current reading and 24-hour extremes are found in one pass over its
    // history and shared by its features.
    let mut extremes = None;
    let mut moved: GroupMask = 0;
    let every = 0..layout.groups.len();
    for g in due.map_or(Groups::All(every), |d| Groups::Some(bits(d))) {
        let (Some(group), Some(state)) = (layout.groups.get(g), states.get_mut(g)) else {
            continue;
        };
        if let (
            Some(param),
            Some(Spans {
                appended,
                dropped,
                kept,
            }),
        ) = (group.param, &spans)
            && *appended == Some(param)
            && at < state.until
            && let Some(before) = kept.get(g).copied().flatten()
            && let Some(x) = window.extremes_after_append(
                param,
                at,
                staleness.of(param.kind()),
                DAY,
                (&before.extremes(), dropped),
            )
        {
            extremes = Some((param, x));
        }
        let mut until = FAR;
        let mut subtotal = 0;
        let (mut present, mut best) = (false, f64::NEG_INFINITY);
        for i in group.features.clone() {
            let f = &model.features[i];
            let (value, feature_until) = match f.input {
                Input::Reading(param, stat) => {
                    let (reading, until) =
                        reading_until(inputs, param, stat, &f.cuts, &mut extremes);
                    if let Some(kept) = readings.get_mut(i) {
                        *kept = reading;
                    }
                    (reading.map(|r| r.value), until)
                }
                Input::Observed => f.input.value_until(window, at, staleness, &f.cuts),
            };
            until = until.min(feature_until);
            let bin = match value {
                Some(v) => {
                    let bin = match &slots[i] {
                        Some(slot) => slot.bin(v),
                        None => f.bin(v),
                    };
                    let k = layout.offsets[i] + bin;
                    subtotal += layout.fixed[k];
                    present = true;
                    best = best.max(layout.weights[k]);
                    // A feature has at most MAX_CUTS cuts (checked where a model is read,
                    // and `vigil train` makes no more), so its bin fits below NONE.
                    u8::try_from(bin).unwrap_or(NONE - 1)
                }
                None => NONE,
            };
            if bins[i] != bin {
                bins[i] = bin;
                moved |= 1 << g.min(MASK_GROUPS - 1);
            }
        }
        *state = GroupState {
            until,
            subtotal,
            present,
            best: round_up(best),
        };
        if let Some(Spans { kept, .. }) = spans.as_mut()
            && let Some(slot) = kept.get_mut(g)
        {
            *slot = match (group.param, extremes) {
                (Some(p), Some((q, x))) if p == q => Kept::of(&x),
                _ => None,
            };
        }
    }
    (moved, extremes)
}

/// The groups a scoring visits: all of them, or the set bits of a mask.
enum Groups<B> {
    All(std::ops::Range<usize>),
    Some(B),
}

impl<B: Iterator<Item = usize>> Iterator for Groups<B> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            Groups::All(range) => range.next(),
            Groups::Some(bits) => bits.next(),
        }
    }
}

/// Writes the estimate, the missing parameters and the hours observed into `out` from
/// every group; returns the estimate in fixed point and the earliest horizon.
fn summarize(
    model: &RiskModel,
    inputs: &Inputs<'_>,
    states: &[GroupState],
    out: &mut Risk,
) -> (Fixed, Timestamp) {
    let mut total = model.layout().intercept;
    let mut horizon = FAR;
    for state in states {
        total += state.subtotal;
        horizon = horizon.min(state.until);
    }
    out.log_odds = from_fixed(total);
    out.score = percent(probability(out.log_odds));
    out.missing = missing(model, states);
    out.observed = observed(model, inputs, states);
    (total, horizon)
}

/// The parameters the model reads with no feature measured.
fn missing(model: &RiskModel, states: &[GroupState]) -> ParamSet {
    let (mut missing, mut present) = (ParamSet::EMPTY, ParamSet::EMPTY);
    for (group, state) in model.layout().groups.iter().zip(states) {
        match group.param {
            Some(param) if state.present => present.insert(param),
            Some(param) => missing.insert(param),
            None => {}
        }
    }
    missing.difference(present)
}

/// Since when the patient has been observed and what the hours since added (the hours
/// observed: not evidence of illness, shown apart).
fn observed(
    model: &RiskModel,
    inputs: &Inputs<'_>,
    states: &[GroupState],
) -> Option<(Timestamp, f64)> {
    let mut observed = None;
    for (group, state) in model.layout().groups.iter().zip(states) {
        if group.param.is_none() && state.present {
            observed = inputs
                .window()
                .first()
                .map(|first| (first, from_fixed(state.subtotal)));
        }
    }
    observed
}

/// `x` as an `f32` no smaller than it.
fn round_up(x: f64) -> f32 {
    let y = x as f32;
    if f64::from(y) < x { y.next_up() } else { y }
}

/// Writes the evidence into `out`: the largest contributions, as `ranking` holds them when
/// no feature moved to another bin (`moved` is empty), updated in it when they can be
/// (see [`Ranking`]), or else found by a search of every group. The readings
/// of criteria are taken from `readings` (kept by [`rescore`]), or from `out`'s criteria
/// when `previous` (the features behind them) held them and their group is not fresh, or
/// else found again (`extremes` is the last history pass of the scoring). Returns the
/// features behind the new criteria.
fn evidence(
    model: &RiskModel,
    inputs: &Inputs<'_>,
    (bins, states, readings): (&[u8], &[GroupState], &[Option<Reading>]),
    (fresh, mut extremes): (Fresh, Option<(Param, Extremes)>),
    (previous, ranking): (&[u8], Option<(&mut Ranking, GroupMask)>),
    out: &mut Risk,
) -> ([u8; EVIDENCE], u8) {
    // The largest contributions, largest first: (weight, feature, group).
    let (top, kept) = match ranking {
        Some((ranking, moved)) => match ranking
            .unmoved(moved, previous.len())
            .or_else(|| ranking.update(model, bins, fresh))
        {
            Some(evidence) => evidence,
            None => {
                let mut found = [(0.0, 0, 0); RESERVE];
                let n = search(model, bins, states, &mut found);
                ranking.fill(&found[..n]);
                let mut top = [(0.0, 0, 0); EVIDENCE];
                let kept = n.min(EVIDENCE);
                top[..kept].copy_from_slice(&found[..kept]);
                (top, kept)
            }
        },
        None => {
            let mut top = [(0.0, 0, 0); EVIDENCE];
            let kept = search(model, bins, states, &mut top);
            (top, kept)
        }
    };
    let mut features = [0u8; EVIDENCE];
    for (f, &(_, i, _)) in features.iter_mut().zip(&top[..kept]) {
        *f = u8::try_from(i).unwrap_or(NONE);
    }
    let shown = kept as u8;
    let points = |w: f64| (w * 10.0).round().clamp(0.0, 255.0) as u8;
    // Compared byte by byte (a slice comparison would call `memcmp` for five bytes).
    let same = previous.len() == kept && previous.iter().zip(&features).all(|(a, b)| a == b);
    if same && out.criteria.as_slice().len() == kept {
        // The same features as before: only those of groups computed afresh can show
        // another reading or weight.
        for (k, &(w, i, g)) in top[..kept].iter().enumerate() {
            let (i, g) = (i as usize, g as usize);
            if !fresh.contains(g) {
                continue;
            }
            if let Input::Reading(param, stat) = model.features[i].input
                && let (Some(reading), _) =
                    reading_until(inputs, param, stat, &model.features[i].cuts, &mut extremes)
            {
                out.criteria.set(k, criterion(stat), reading, points(w));
            }
        }
        return (features, shown);
    }
    let before = out.criteria;
    out.criteria.clear();
    for &(w, i, g) in &top[..kept] {
        let (i, g) = (i as usize, g as usize);
        let Input::Reading(param, stat) = model.features[i].input else {
            continue;
        };
        let kept_reading = readings.get(i).copied().flatten();
        let held = kept_reading.or_else(|| {
            previous
                .iter()
                .position(|&f| usize::from(f) == i)
                .filter(|_| !fresh.contains(g))
                .and_then(|k| before.as_slice().get(k))
                .map(|e| Reading {
                    param: e.param,
                    value: e.value,
                    effective: e.effective,
                })
        });
        let reading = held.or_else(|| {
            reading_until(inputs, param, stat, &model.features[i].cuts, &mut extremes).0
        });
        if let Some(reading) = reading {
            out.criteria.push(criterion(stat), reading, points(w));
        }
    }
    (features, shown)
}

/// Whether contribution `a` (weight, feature) comes before `b` in the evidence: the larger
/// first, then the model's order.
fn ranks_before(a: (f64, u32), b: (f64, u32)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

/// Finds the largest contributions of at least [`EVIDENCE_FROM`] into `top` (as many as
/// it holds), in evidence order, passing over every group whose largest contribution
/// cannot enter. Returns how many it found.
fn search(model: &RiskModel, bins: &[u8], states: &[GroupState], top: &mut [Ranked]) -> usize {
    let layout = model.layout();
    let n = top.len();
    let mut kept = 0;
    for (g, (group, state)) in layout.groups.iter().zip(states).enumerate() {
        if group.param.is_none() || n == 0 {
            continue;
        }
        // Nothing of the group can enter the evidence.
        let floor = if kept < n {
            EVIDENCE_FROM
        } else {
            top[n - 1].0
        };
        if f64::from(state.best) < floor {
            continue;
        }
        for i in group.features.clone() {
            let bin = bins[i];
            if bin == NONE {
                continue;
            }
            let w = layout.weights[layout.offsets[i] + usize::from(bin)];
            if w >= EVIDENCE_FROM && (kept < n || w > top[n - 1].0) {
                // Insert in descending order, dropping the smallest beyond `n`.
                let mut k = kept.min(n - 1);
                while k > 0 && top[k - 1].0 < w {
                    top[k] = top[k - 1];
                    k -= 1;
                }
                top[k] = (w, index(i), index(g));
                kept = (kept + 1).min(n);
            }
        }
    }
    kept
}

/// How many contributions a [`Ranking`] keeps: the evidence and a reserve.
const RESERVE: usize = 8;

/// The largest contributions as last found, so that a scoring that re-scored a few groups
/// finds the evidence from them and the other groups' contributions kept here, without a
/// search of every group.
///
/// `ranked[..certain]` are the largest contributions of at least [`EVIDENCE_FROM`] in
/// evidence order; with `complete`, they are all there are. Dropping those of the groups
/// re-scored leaves the largest of the other groups' (their contributions did not change),
/// which merged with the re-scored groups' own are the largest overall up to the last one
/// kept: a ranking stays certain as far as it can prove, and a search refills it when that
/// is less than the evidence.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Ranking {
    ranked: [Ranked; RESERVE],
    certain: u8,
    complete: bool,
}

/// A contribution as the evidence ranks it: (weight, feature, group).
type Ranked = (f64, u32, u32);

/// `i` as a [`Ranked`] index (a model's features and groups number far fewer).
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl Ranking {
    /// Nothing known: the next scoring searches.
    const UNKNOWN: Ranking = Ranking {
        ranked: [(0.0, 0, 0); RESERVE],
        certain: 0,
        complete: false,
    };

    /// The evidence as it was, when no contribution changed (no feature `moved` to another
    /// bin) and it held `shown` contributions.
    fn unmoved(&self, moved: GroupMask, shown: usize) -> Option<([Ranked; EVIDENCE], usize)> {
        if moved != 0 || shown > usize::from(self.certain) || shown > EVIDENCE {
            return None;
        }
        let mut top = [(0.0, 0, 0); EVIDENCE];
        top[..shown].copy_from_slice(&self.ranked[..shown]);
        Some((top, shown))
    }

    /// Keeps what a search of every group found.
    fn fill(&mut self, found: &[Ranked]) {
        let n = found.len().min(RESERVE);
        self.ranked[..n].copy_from_slice(&found[..n]);
        self.certain = n as u8;
        self.complete = n < RESERVE;
    }

    /// The evidence after the groups in `fresh` were re-scored (`bins` now), updating the
    /// ranking; `None` when it cannot be proved without a search.
    fn update(
        &mut self,
        model: &RiskModel,
        bins: &[u8],
        fresh: Fresh,
    ) -> Option<([Ranked; EVIDENCE], usize)> {
        /// Room for the reserve and the re-scored groups' contributions.
        const ROOM: usize = RESERVE + 8;
        let Fresh::Mask(mask) = fresh else {
            return None;
        };
        let layout = model.layout();
        if layout.groups.len() > MASK_GROUPS {
            // Groups beyond a mask's are not in it.
            return None;
        }
        let mut list = [(0.0, 0, 0); ROOM];
        let mut len = 0;
        // The other groups' contributions did not change.
        let mut last_kept = None;
        for &r in &self.ranked[..usize::from(self.certain)] {
            if fresh.contains(r.2 as usize) {
                continue;
            }
            list[len] = r;
            len += 1;
            last_kept = Some(r);
        }
        for g in bits(mask) {
            let group = layout.groups.get(g)?;
            if group.param.is_none() {
                continue;
            }
            for i in group.features.clone() {
                let bin = bins[i];
                if bin == NONE {
                    continue;
                }
                let w = layout.weights[layout.offsets[i] + usize::from(bin)];
                if w < EVIDENCE_FROM {
                    continue;
                }
                if len == ROOM {
                    return None;
                }
                // Insert in evidence order.
                let (i, g) = (index(i), index(g));
                let mut k = len;
                while k > 0 && ranks_before((w, i), (list[k - 1].0, list[k - 1].1)) {
                    list[k] = list[k - 1];
                    k -= 1;
                }
                list[k] = (w, i, g);
                len += 1;
            }
        }
        // How far the merged list is proved: everything, or up to the last contribution
        // kept from the other groups.
        let (certain, complete) = if self.complete {
            (len.min(RESERVE), len <= RESERVE)
        } else {
            let last = last_kept?;
            let proved = list[..len]
                .iter()
                .position(|r| r.1 == last.1)
                .map_or(0, |k| k + 1);
            (proved.min(RESERVE), false)
        };
        if certain < EVIDENCE && !complete {
            return None;
        }
        self.ranked[..certain].copy_from_slice(&list[..certain]);
        self.certain = certain as u8;
        self.complete = complete;
        let shown = certain.min(EVIDENCE);
        let mut top = [(0.0, 0, 0); EVIDENCE];
        top[..shown].copy_from_slice(&list[..shown]);
        Some((top, shown))
    }
}

/// A feature's reading (its value, and when the reading it comes from was measured) and
/// the first instant it may differ without a new reading. `extremes` carries one pass
/// over a parameter's history from one statistic of it to the next.
fn reading_until(
    inputs: &Inputs<'_>,
    param: Param,
    stat: Stat,
    cuts: &[f64],
    extremes: &mut Option<(Param, Extremes)>,
) -> (Option<Reading>, Timestamp) {
    let (window, at) = (inputs.window(), inputs.at());
    let staleness = &inputs.config().staleness;
    match stat {
        Stat::Now | Stat::Max24h | Stat::Min24h => {
            let max_age = staleness.of(param.kind());
            let x = match *extremes {
                Some((q, x)) if q == param => x,
                _ => {
                    let x = window.extremes(param, at, max_age, DAY);
                    *extremes = Some((param, x));
                    x
                }
            };
            let soon = at.plus(Span::millis(1));
            if stat == Stat::Now {
                // As `Window::latest_until` bounds it.
                let until = match (x.latest, x.later) {
                    (_, true) => soon,
                    (Some(r), false) => r.effective.plus(max_age).plus(Span::millis(1)),
                    (None, false) => FAR,
                };
                (x.latest, until)
            } else {
                let until = if x.later {
                    soon
                } else {
                    x.oldest.map_or(FAR, |o| o.plus(DAY))
                };
                let (value, effective) = if stat == Stat::Max24h {
                    (x.max, x.max_at)
                } else {
                    (x.min, x.min_at)
                };
                let reading = x.oldest.map(|_| Reading {
                    param,
                    value,
                    effective,
                });
                (reading, until)
            }
        }
        _ => {
            let (value, until) =
                Input::Reading(param, stat).value_until(window, at, staleness, cuts);
            let reading = value.map(|value| Reading {
                param,
                value,
                effective: window.last_seen(param, at).unwrap_or(at),
            });
            (reading, until)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::observation::{Observation, RawValue, Status};
    use crate::window::Window;
    use proptest::prelude::*;

    const T0: i64 = 1_795_428_000_000;
    const CODES: [(&str, f64, f64); 8] = [
        ("heart_rate", 30.0, 180.0),
        ("resp_rate", 5.0, 40.0),
        ("temperature", 34.0, 41.0),
        ("sbp", 60.0, 200.0),
        ("lactate", 0.5, 10.0),
        ("wbc", 1.0, 30.0),
        ("platelets", 5.0, 400.0),
        ("gcs", 3.0, 15.0),
    ];

    /// A reading of `CODES[code]` at fraction `f` of its range, `minute` minutes after T0.
    fn observation(code: usize, f: f64, minute: i64) -> Observation {
        let (name, lo, hi) = CODES[code];
        let v = lo + (hi - lo) * f;
        let v = if name == "gcs" { v.round() } else { v };
        Observation::new(
            name,
            RawValue::Number(v),
            None,
            Timestamp::from_millis(T0 + minute * 60_000),
            None,
            Status::Final,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn window(readings: &[(usize, f64, i64)]) -> Window {
        let config = Config::default();
        let mut w = Window::new();
        for &(code, f, minute) in readings {
            let obs = observation(code, f, minute);
            w.ingest(&obs, &config.staleness);
        }
        w
    }

    proptest! {
        /// The rule's estimate is the model's, feature by feature as `vigil train` reads
        /// them; its evidence holds only readings that raised it, largest first; a
        /// parameter with no value is missing.
        #[test]
        fn the_rule_scores_what_training_reads(
            readings in prop::collection::vec((0..CODES.len(), 0.0..1.0f64, 0..3000i64), 0..40),
            at_minute in 0..4000i64,
        ) {
            let config = Config::default();
            let w = window(&readings);
            let at = Timestamp::from_millis(T0 + at_minute * 60_000);
            let mut out = Risk::default();
            score_into(&Inputs::new(&w, at, &config), &mut out);
            let model = RiskModel::shipped();
            let expected = model.log_odds(&w, at, &config.staleness);
            prop_assert_eq!(out.log_odds, expected);
            prop_assert_eq!(out.score, percent(probability(expected)));
            let explained = model.explain(&w, at, &config.staleness);
            prop_assert_eq!(explained.probability, probability(expected));
            let points: Vec<u8> = out.criteria.as_slice().iter().map(|e| e.points()).collect();
            prop_assert!(points.windows(2).all(|p| p[0] >= p[1]), "{:?}", points);
            for p in model.params().iter() {
                let any = model.features.iter().any(|f| {
                    matches!(f.input, Input::Reading(q, _) if q == p)
                        && f.input.value(&w, at, &config.staleness).is_some()
                });
                prop_assert_eq!(out.missing.contains(p), !any, "{:?}", p);
            }
        }
    }

    proptest! {
        /// Re-scoring only the changed parameters' features, and the groups whose horizon
        /// passed, always gives what scoring everything gives: estimate, evidence with its
        /// readings, missing parameters, hours observed and horizon.
        #[test]
        fn incremental_scoring_equals_scoring_everything(
            steps in prop::collection::vec(
                (0..CODES.len(), 0.0..1.0f64, -600i64..120, 0..4u8, -30i64..600),
                1..50),
        ) {
            let mut w = Window::new();
            let mut memo = None;
            let mut incremental = Risk::default();
            let mut clock = 3000i64;
            for (code, f, dt, op, advance) in steps {
                clock += advance;
                if op > 0 {
                    let obs = observation(code, f, clock + dt);
                    feed(&mut w, &obs, &mut memo);
                }
                let changes = w.take_changes();
                let at = Timestamp::from_millis(T0 + clock * 60_000);
                let (fresh, full) = both(&w, at, changes, &mut memo, &mut incremental);
                prop_assert_eq!(fresh, full);
            }
        }
    }

    proptest! {
        /// A ranking updated from the groups re-scored gives the evidence a search of
        /// every group gives, whenever it claims to know it; the shipped model's many
        /// contributions of 0.05 and more keep its reserve short of complete.
        #[test]
        fn a_ranking_update_equals_a_search(
            start in prop::collection::vec(0..12u8, 43),
            steps in prop::collection::vec((0..64usize, prop::collection::vec(0..12u8, 8)), 1..80),
        ) {
            let model = RiskModel::shipped();
            let layout = model.layout();
            let n = model.features.len();
            // A seed of 9 or more is missing; others are bins (clamped to the feature's).
            let bin = |i: usize, seed: u8| {
                if seed >= 9 { NONE } else { seed.min(model.features[i].cuts.len() as u8) }
            };
            let mut bins: Vec<u8> = (0..n).map(|i| bin(i, start[i % start.len()])).collect();
            let state = |bins: &[u8], g: usize| {
                let mut best = f64::NEG_INFINITY;
                for i in layout.groups[g].features.clone() {
                    if bins[i] != NONE {
                        best = best.max(layout.weights[layout.offsets[i] + usize::from(bins[i])]);
                    }
                }
                GroupState { best: round_up(best), ..GroupState::DUE }
            };
            let mut states: Vec<GroupState> =
                (0..layout.groups.len()).map(|g| state(&bins, g)).collect();
            let mut ranking = Ranking::UNKNOWN;
            let mut found = [(0.0, 0, 0); RESERVE];
            let k = search(model, &bins, &states, &mut found);
            ranking.fill(&found[..k]);
            for (g, seeds) in steps {
                let g = g % layout.groups.len();
                for (i, seed) in layout.groups[g].features.clone().zip(&seeds) {
                    bins[i] = bin(i, *seed);
                }
                states[g] = state(&bins, g);
                let mut expected = [(0.0, 0, 0); EVIDENCE];
                let shown = search(model, &bins, &states, &mut expected);
                match ranking.update(model, &bins, Fresh::Mask(1 << g)) {
                    Some((top, kept)) => {
                        prop_assert_eq!(&top[..kept], &expected[..shown]);
                    }
                    None => {
                        let k = search(model, &bins, &states, &mut found);
                        ranking.fill(&found[..k]);
                    }
                }
                // Nothing moved: the evidence stands.
                if let Some((top, kept)) = ranking.unmoved(0, shown) {
                    prop_assert_eq!(&top[..kept], &expected[..shown]);
                }
            }
        }
    }

    /// `w` scored at `at` incrementally (from `memo`, into `incremental`) and in full: each
    /// result with its horizon.
    fn both(
        w: &Window,
        at: Timestamp,
        changes: Changes,
        memo: &mut Option<Box<Memo>>,
        incremental: &mut Risk,
    ) -> ((Risk, Timestamp), (Risk, Timestamp)) {
        let config = Config::default();
        let inputs = Inputs::new(w, at, &config);
        score_incremental(&inputs, changes, memo, incremental);
        let incremental_until = inputs.take_horizon();
        let mut full = Risk::default();
        score_into(&inputs, &mut full);
        (
            (*incremental, incremental_until),
            (full, inputs.take_horizon()),
        )
    }

    /// Feeds `obs` to `w` as [`crate::Patient`] does: noting what the window drops while
    /// Vigil Risk keeps a memo.
    fn feed(w: &mut Window, obs: &Observation, memo: &mut Option<Box<Memo>>) {
        let staleness = Config::default().staleness;
        match memo {
            Some(m) => w.ingest_noting(obs, &staleness, m.dropped()),
            None => w.ingest(obs, &staleness),
        };
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// The same over long feeds of a few parameters, as a monitor sends them: histories
        /// fill and drop readings to make room, most readings come after the last, some
        /// earlier, and ties are common.
        #[test]
        fn incremental_scoring_equals_scoring_everything_over_long_feeds(
            steps in prop::collection::vec(
                (0..3usize, 0..9u8, 0..3i64, 0..10u8, 0..4i64),
                1..250),
        ) {
            let mut w = Window::new();
            let mut memo = None;
            let mut incremental = Risk::default();
            let mut clock = 0i64;
            for (code, f, gap, op, late) in steps {
                clock += gap;
                let minute = if op == 9 { clock - 60 * late } else { clock };
                feed(&mut w, &observation(code, f64::from(f) / 8.0, minute), &mut memo);
                let changes = w.take_changes();
                let at = Timestamp::from_millis(T0 + (clock + late) * 60_000);
                let (fresh, full) = both(&w, at, changes, &mut memo, &mut incremental);
                prop_assert_eq!(fresh, full);
            }
        }
    }

    #[test]
    fn an_alert_message_says_it_is_a_statistical_estimate() {
        let config = Config::default();
        let w = window(&[(1, 1.0, 0), (2, 1.0, 0), (0, 1.0, 0)]);
        let at = Timestamp::from_millis(T0);
        let a = crate::assess(&w, at, &config);
        // Acting at once; Vigil Risk advisory from 1 %.
        let mut policy = crate::alert::PolicyConfig::every_rule();
        policy.thresholds.risk = [Some(1), None, None];
        let mut state = crate::alert::AlertState::new();
        let d = state.decide(&a, &w, &config, &policy);
        let risk = d
            .iter()
            .find(|d| d.rule == crate::RuleId::Risk)
            .unwrap_or_else(|| panic!("a risk alert: {d:?}"));
        let text = crate::alert::message(risk, &a);
        assert!(text.starts_with("Vigil Risk "), "{text}");
        assert!(text.contains("(a statistical estimate)"), "{text}");
        assert!(text.contains("missing:"), "{text}");
    }
}
