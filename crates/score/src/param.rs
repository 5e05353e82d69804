//! The canonical parameters, their units, codes and plausible ranges.
//!
//! Sources: the canonical code and unit table of REFERENCE.md ("Observation events") and
//! the LOINC codes and UCUM units as published by LOINC and UCUM, with these conversion
//! factors: creatinine umol/L = mg/dL x 88.4, bilirubin umol/L =
//! mg/dL x 17.1, lactate mg/dL = mmol/L x 9.01, F = C x 9/5 + 32, kPa x 7.50 = mmHg,
//! 10*3/uL = 10*9/L = 1000/mm3.
//!
//! The plausible ranges are *validation* limits, not clinical thresholds: a value outside
//! them cannot be a reading of a living patient (or is a unit mix-up, such as a
//! temperature in Fahrenheit sent as `Cel`), so it is rejected with the range named rather
//! than scored. They are deliberately wide; every scoring band lies well inside them.

use std::fmt;

/// What sort of quantity a parameter is; decides how long a reading stays usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A bedside vital sign or a flag charted with them (6 h by default).
    Vital,
    /// A laboratory or blood-gas result (24 h by default).
    Lab,
    /// A continuous infusion rate (2 h by default).
    Infusion,
    /// A per-patient setting that holds until changed (`spo2_scale`).
    Setting,
}

/// The shape of a parameter's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Shape {
    /// A number in the canonical unit within `[min, max]`; `integer` if it must be whole.
    Number { min: f64, max: f64, integer: bool },
    /// A boolean.
    Flag,
    /// ACVPU.
    Consciousness,
    /// NEWS2 SpO2 scale, 1 or 2.
    Scale,
}

/// Which way a parameter gets worse, for "worst value in the last 24 h" (SOFA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Worse {
    Lower,
    Higher,
    /// Not used by a worst-of-window rule: only the latest value matters.
    Neither,
}

macro_rules! params {
    ($( $var:ident = $code:literal, $unit:literal, $kind:ident, $worse:ident, $shape:expr; )*) => {
        /// A canonical parameter (the `code` names of REFERENCE.md).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Param { $( #[doc = $code] $var, )* }

        struct Info { code: &'static str, unit: &'static str, shape: Shape }

        const INFO: &[Info] = &[ $( Info { code: $code, unit: $unit, shape: $shape }, )* ];

        /// Kinds and directions again as dense arrays: the scoring path reads them for
        /// every lookup, and 28 bytes stay in one cache line where `INFO` spans many.
        const KINDS: &[Kind] = &[ $( Kind::$kind, )* ];
        const WORSE: &[Worse] = &[ $( Worse::$worse, )* ];

        impl Param {
            /// Every parameter, in declaration order (the order of [`Param::index`]).
            pub const ALL: &'static [Param] = &[ $( Param::$var, )* ];
        }
    };
}

const fn num(min: f64, max: f64) -> Shape {
    Shape::Number {
        min,
        max,
        integer: false,
    }
}

params! {
    HeartRate = "heart_rate", "/min", Vital, Neither, num(1.0, 350.0);
    RespRate = "resp_rate", "/min", Vital, Neither, num(1.0, 120.0);
    Sbp = "sbp", "mm[Hg]", Vital, Neither, num(20.0, 300.0);
    Dbp = "dbp", "mm[Hg]", Vital, Neither, num(5.0, 250.0);
    Map = "map", "mm[Hg]", Vital, Lower, num(10.0, 250.0);
    Temperature = "temperature", "Cel", Vital, Neither, num(25.0, 45.0);
    Spo2 = "spo2", "%", Vital, Neither, num(1.0, 100.0);
    OnOxygen = "on_oxygen", "boolean", Vital, Neither, Shape::Flag;
    O2Flow = "o2_flow", "L/min", Vital, Neither, num(0.0, 80.0);
    Fio2 = "fio2", "1", Vital, Higher, num(0.21, 1.0);
    Spo2Scale = "spo2_scale", "1", Setting, Neither, Shape::Scale;
    Gcs = "gcs", "{score}", Vital, Lower, Shape::Number { min: 3.0, max: 15.0, integer: true };
    Consciousness = "consciousness", "ACVPU", Vital, Neither, Shape::Consciousness;
    Wbc = "wbc", "10*3/uL", Lab, Neither, num(0.0, 1000.0);
    Bands = "bands", "%", Lab, Neither, num(0.0, 100.0);
    Lactate = "lactate", "mmol/L", Lab, Neither, num(0.0, 40.0);
    Creatinine = "creatinine", "mg/dL", Lab, Higher, num(0.05, 40.0);
    Bilirubin = "bilirubin", "mg/dL", Lab, Higher, num(0.0, 100.0);
    Platelets = "platelets", "10*3/uL", Lab, Lower, num(0.0, 5000.0);
    Pao2 = "pao2", "mm[Hg]", Lab, Lower, num(10.0, 800.0);
    Paco2 = "paco2", "mm[Hg]", Lab, Neither, num(5.0, 250.0);
    UrineOutput = "urine_output", "mL/(24.h)", Lab, Lower, num(0.0, 30000.0);
    Inr = "inr", "{INR}", Lab, Neither, num(0.5, 25.0);
    Norepinephrine = "norepinephrine", "ug/kg/min", Infusion, Higher, num(0.0, 100.0);
    Epinephrine = "epinephrine", "ug/kg/min", Infusion, Higher, num(0.0, 100.0);
    Dopamine = "dopamine", "ug/kg/min", Infusion, Higher, num(0.0, 100.0);
    Dobutamine = "dobutamine", "ug/kg/min", Infusion, Higher, num(0.0, 100.0);
    Ventilation = "ventilation", "boolean", Vital, Higher, Shape::Flag;
}

/// The number of canonical parameters.
pub const PARAM_COUNT: usize = INFO.len();

impl Param {
    fn info(self) -> &'static Info {
        &INFO[self as usize]
    }

    /// The position of this parameter in [`Param::ALL`]; dense, for array indexing.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The canonical code, as in the alert events (REFERENCE.md).
    pub fn code(self) -> &'static str {
        self.info().code
    }

    /// The short label clinicians read on a chart (`RR`, `SBP`, `HR`, `SpO2`, ...).
    pub fn label(self) -> &'static str {
        use Param::*;
        match self {
            HeartRate => "HR",
            RespRate => "RR",
            Sbp => "SBP",
            Dbp => "DBP",
            Map => "MAP",
            Temperature => "Temp",
            Spo2 => "SpO2",
            OnOxygen => "O2",
            O2Flow => "O2 flow",
            Fio2 => "FiO2",
            Spo2Scale => "SpO2 scale",
            Gcs => "GCS",
            Consciousness => "ACVPU",
            Wbc => "WBC",
            Bands => "Bands",
            Lactate => "Lactate",
            Creatinine => "Creatinine",
            Bilirubin => "Bilirubin",
            Platelets => "Platelets",
            Pao2 => "PaO2",
            Paco2 => "PaCO2",
            UrineOutput => "Urine",
            Inr => "INR",
            Norepinephrine => "Norepinephrine",
            Epinephrine => "Epinephrine",
            Dopamine => "Dopamine",
            Dobutamine => "Dobutamine",
            Ventilation => "Ventilated",
        }
    }

    /// The canonical UCUM unit (`boolean`, `ACVPU` for the non-numeric ones).
    pub fn unit(self) -> &'static str {
        self.info().unit
    }

    /// What sort of quantity this is.
    #[inline]
    pub fn kind(self) -> Kind {
        KINDS[self as usize]
    }

    #[inline]
    pub(crate) fn worse(self) -> Worse {
        WORSE[self as usize]
    }

    pub(crate) fn shape(self) -> Shape {
        self.info().shape
    }

    /// Whether values of this parameter are quantities with a unit (so a message that
    /// omits it is ambiguous): every numeric parameter but those on a unitless scale
    /// (`{score}` for GCS, `{INR}`).
    pub fn has_unit(self) -> bool {
        matches!(self.shape(), Shape::Number { .. }) && !self.unit().starts_with('{')
    }

    /// The plausible range in the canonical unit, for numeric parameters.
    pub fn range(self) -> Option<(f64, f64)> {
        match self.shape() {
            Shape::Number { min, max, .. } => Some((min, max)),
            _ => None,
        }
    }

    /// Looks a code up: a canonical name, or a LOINC code Vigil reads (its sources below).
    /// LOINC codes that name a specific unit family (mass or molar creatinine, say) map to
    /// the same parameter; the unit decides the conversion.
    ///
    /// Besides each parameter's primary code, the variants hospitals' systems send for the
    /// same quantity are read: the measurement site of a body temperature, the position or
    /// method of a heart rate, non-invasive blood pressure, and blood counts and lactate
    /// coded by specimen. Each is a LOINC term (LOINC 2.82, <https://loinc.org/>, looked up
    /// by code) whose component, property and scale are those of the primary code:
    ///
    /// - temperature: 8331-1 oral, 8332-9 rectal, 8328-7 axillary, 8329-5 core, 76011-6
    ///   ear (component "Body temperature", property Temp);
    /// - heart rate: 40443-4 resting, 68999-2 supine, 69000-8 sitting, 69001-6 standing,
    ///   60978-4 intra-arterial line, 67129-7 peripheral artery by palpation (the FHIR
    ///   vital-signs heart-rate value set, `http://hl7.org/fhir/ValueSet/observation-vitalsign-heartrate`);
    /// - 76534-7 systolic and 76535-4 diastolic blood pressure by non-invasive method;
    /// - 26464-8 leukocytes and 26515-7 platelets in blood (count per volume, method
    ///   unspecified);
    /// - 2519-7 lactate in venous blood (moles per volume; 32693-4 is lactate in blood).
    ///
    /// Codes whose specimen could change the meaning (a blood gas not stated to be
    /// arterial) are not read: a code is never guessed.
    pub fn from_code(code: &str) -> Option<Param> {
        if let Some(i) = INFO.iter().position(|i| i.code == code) {
            return Some(Param::ALL[i]);
        }
        LOINC.iter().find_map(|(c, p)| (*c == code).then_some(*p))
    }

    /// The LOINC codes read as this parameter ([`Param::from_code`]), primary code first.
    pub fn loinc_codes(self) -> impl Iterator<Item = &'static str> {
        LOINC
            .iter()
            .filter(move |(_, p)| *p == self)
            .map(|(c, _)| *c)
    }

    /// Converts `value` in `unit` (UCUM) to this parameter's canonical unit. `None` for the
    /// unit means the canonical unit.
    ///
    /// # Errors
    ///
    /// [`UnitError`] lists the units accepted for this parameter when `unit` is not one.
    pub fn to_canonical(self, value: f64, unit: Option<&str>) -> Result<f64, UnitError> {
        use Param::*;
        let Some(unit) = unit else { return Ok(value) };
        let converted = match (self, unit) {
            (_, u) if u == self.unit() => Some(value),
            (HeartRate, "{beats}/min" | "{Beats}/min" | "{beat}/min")
            | (RespRate, "{breaths}/min" | "{Breaths}/min" | "{breath}/min") => Some(value),
            (Temperature, "[degF]") => Some((value - 32.0) * 5.0 / 9.0),
            (Sbp | Dbp | Map | Pao2 | Paco2, "kPa") => Some(value * 7.50),
            (Fio2, "%") => Some(value / 100.0),
            // A saturation sent as a fraction of one (UCUM unity), as some devices do.
            (Spo2, "1") => Some(value * 100.0),
            (Gcs, "1") | (Inr, "1") => Some(value),
            (Wbc | Platelets, "10*9/L" | "10*3/mm3" | "10^9/L" | "10^3/uL") => Some(value),
            (Wbc | Platelets, "/mm3" | "/uL") => Some(value / 1000.0),
            (Lactate, "mg/dL") => Some(value / 9.01),
            (Creatinine, "umol/L") => Some(value / 88.4),
            (Bilirubin, "umol/L") => Some(value / 17.1),
            (UrineOutput, "mL/d" | "mL/(24.h)" | "mL/24.h") => Some(value),
            (UrineOutput, "mL/h") => Some(value * 24.0),
            (
                Norepinephrine | Epinephrine | Dopamine | Dobutamine,
                "ug/(kg.min)" | "ug/kg/min" | "mcg/kg/min",
            ) => Some(value),
            _ => None,
        };
        converted.ok_or_else(|| UnitError {
            param: self,
            unit: crate::time::truncate(unit, 40),
        })
    }

    /// The UCUM units [`Param::to_canonical`] accepts, canonical first.
    pub fn accepted_units(self) -> &'static [&'static str] {
        use Param::*;
        match self {
            HeartRate => &["/min", "{beats}/min"],
            RespRate => &["/min", "{breaths}/min"],
            Sbp | Dbp | Map | Pao2 | Paco2 => &["mm[Hg]", "kPa"],
            Temperature => &["Cel", "[degF]"],
            Spo2 => &["%", "1"],
            Bands => &["%"],
            O2Flow => &["L/min"],
            Fio2 => &["1", "%"],
            Spo2Scale => &["1"],
            Gcs => &["{score}", "1"],
            Wbc | Platelets => &["10*3/uL", "10*9/L", "10*3/mm3", "/mm3", "/uL"],
            Lactate => &["mmol/L", "mg/dL"],
            Creatinine | Bilirubin => &["mg/dL", "umol/L"],
            UrineOutput => &["mL/(24.h)", "mL/d", "mL/h"],
            Inr => &["{INR}", "1"],
            Norepinephrine | Epinephrine | Dopamine | Dobutamine => &["ug/kg/min", "ug/(kg.min)"],
            OnOxygen | Ventilation => &["boolean"],
            Consciousness => &["ACVPU"],
        }
    }
}

/// The LOINC codes Vigil reads, each with its parameter; for each parameter the primary
/// code comes first (sources in [`Param::from_code`]).
const LOINC: &[(&str, Param)] = &[
    ("8867-4", Param::HeartRate),
    ("40443-4", Param::HeartRate),
    ("68999-2", Param::HeartRate),
    ("69000-8", Param::HeartRate),
    ("69001-6", Param::HeartRate),
    ("60978-4", Param::HeartRate),
    ("67129-7", Param::HeartRate),
    ("9279-1", Param::RespRate),
    ("8480-6", Param::Sbp),
    ("76534-7", Param::Sbp),
    ("8462-4", Param::Dbp),
    ("76535-4", Param::Dbp),
    ("8478-0", Param::Map),
    ("8310-5", Param::Temperature),
    ("8331-1", Param::Temperature),
    ("8332-9", Param::Temperature),
    ("8328-7", Param::Temperature),
    ("8329-5", Param::Temperature),
    ("76011-6", Param::Temperature),
    ("59408-5", Param::Spo2),
    ("2708-6", Param::Spo2),
    ("3151-8", Param::O2Flow),
    ("3150-0", Param::Fio2),
    ("9269-2", Param::Gcs),
    ("6690-2", Param::Wbc),
    ("26464-8", Param::Wbc),
    ("764-1", Param::Bands),
    ("26508-2", Param::Bands),
    ("2524-7", Param::Lactate),
    ("32693-4", Param::Lactate),
    ("2519-7", Param::Lactate),
    ("2160-0", Param::Creatinine),
    ("14682-9", Param::Creatinine),
    ("1975-2", Param::Bilirubin),
    ("14631-6", Param::Bilirubin),
    ("777-3", Param::Platelets),
    ("26515-7", Param::Platelets),
    ("2703-7", Param::Pao2),
    ("2019-8", Param::Paco2),
    ("9187-6", Param::UrineOutput),
    ("6301-6", Param::Inr),
];

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl serde::Serialize for Param {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// A unit that cannot be converted to the parameter's canonical unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitError {
    /// The parameter the unit was sent for.
    pub param: Param,
    /// The unit as sent (truncated if very long).
    pub unit: String,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra = if self.param == Param::UrineOutput && self.unit == "mL" {
            " (a volume in mL has no collection period; send a rate)"
        } else {
            ""
        };
        write!(
            f,
            "field `unit`: {:?} cannot be converted for {}; expected one of {}{}",
            self.unit,
            self.param,
            self.param.accepted_units().join(", "),
            extra
        )
    }
}

impl std::error::Error for UnitError {}

/// A set of parameters, as a bit set (no allocation on the scoring path).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ParamSet(u32);

const _: () = assert!(PARAM_COUNT <= 32);

impl ParamSet {
    /// The empty set.
    pub const EMPTY: ParamSet = ParamSet(0);

    /// Adds `p`.
    pub fn insert(&mut self, p: Param) {
        self.0 |= 1 << p.index();
    }

    /// The set of the given parameters.
    pub const fn of(params: &[Param]) -> ParamSet {
        let mut bits = 0;
        let mut i = 0;
        while i < params.len() {
            bits |= 1 << params[i] as u32;
            i += 1;
        }
        ParamSet(bits)
    }

    /// Whether the two sets share a parameter.
    pub fn intersects(self, other: ParamSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether `p` is in the set.
    pub fn contains(self, p: Param) -> bool {
        self.0 & (1 << p.index()) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many parameters the set holds.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The parameters in either set.
    #[must_use]
    pub const fn union(self, other: ParamSet) -> ParamSet {
        ParamSet(self.0 | other.0)
    }

    /// The parameters in both sets.
    #[must_use]
    pub const fn intersection(self, other: ParamSet) -> ParamSet {
        ParamSet(self.0 & other.0)
    }

    /// The parameters of this set that are not in `other`.
    #[must_use]
    pub const fn difference(self, other: ParamSet) -> ParamSet {
        ParamSet(self.0 & !other.0)
    }

    /// Whether every parameter of this set is in `other`.
    pub fn is_subset(self, other: ParamSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// The set as its raw bits (for the state encoding).
    pub(crate) fn bits(self) -> u32 {
        self.0
    }

    /// The set with these raw bits; bits beyond the parameters are dropped.
    pub(crate) fn from_bits(bits: u32) -> ParamSet {
        let all = if PARAM_COUNT == 32 {
            u32::MAX
        } else {
            (1u32 << PARAM_COUNT) - 1
        };
        ParamSet(bits & all)
    }

    /// The members, in [`Param::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Param> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Param::ALL[i]
            })
        })
    }
}

impl fmt::Debug for ParamSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl serde::Serialize for ParamSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for (i, p) in Param::ALL.iter().enumerate() {
            assert_eq!(p.index(), i);
            assert_eq!(Param::from_code(p.code()), Some(*p));
            assert_eq!(p.to_canonical(1.0, Some(p.unit())), Ok(1.0));
            assert_eq!(p.accepted_units()[0], p.unit(), "{p}");
            for u in p.accepted_units() {
                if !matches!(
                    p,
                    Param::OnOxygen | Param::Ventilation | Param::Consciousness
                ) {
                    assert!(p.to_canonical(1.0, Some(u)).is_ok(), "{p} {u}");
                }
            }
        }
    }

    #[test]
    fn loinc_codes_map() {
        let cases = [
            ("8867-4", Param::HeartRate),
            ("9279-1", Param::RespRate),
            ("8480-6", Param::Sbp),
            ("8462-4", Param::Dbp),
            ("8478-0", Param::Map),
            ("8310-5", Param::Temperature),
            ("59408-5", Param::Spo2),
            ("2708-6", Param::Spo2),
            ("3151-8", Param::O2Flow),
            ("3150-0", Param::Fio2),
            ("9269-2", Param::Gcs),
            ("6690-2", Param::Wbc),
            ("764-1", Param::Bands),
            ("26508-2", Param::Bands),
            ("2524-7", Param::Lactate),
            ("32693-4", Param::Lactate),
            ("2160-0", Param::Creatinine),
            ("14682-9", Param::Creatinine),
            ("1975-2", Param::Bilirubin),
            ("14631-6", Param::Bilirubin),
            ("777-3", Param::Platelets),
            ("2703-7", Param::Pao2),
            ("2019-8", Param::Paco2),
            ("9187-6", Param::UrineOutput),
            ("6301-6", Param::Inr),
            // Variants of the same quantity (site, position, method, specimen).
            ("8331-1", Param::Temperature),
            ("8332-9", Param::Temperature),
            ("8328-7", Param::Temperature),
            ("8329-5", Param::Temperature),
            ("76011-6", Param::Temperature),
            ("40443-4", Param::HeartRate),
            ("68999-2", Param::HeartRate),
            ("69000-8", Param::HeartRate),
            ("69001-6", Param::HeartRate),
            ("60978-4", Param::HeartRate),
            ("67129-7", Param::HeartRate),
            ("76534-7", Param::Sbp),
            ("76535-4", Param::Dbp),
            ("26464-8", Param::Wbc),
            ("26515-7", Param::Platelets),
            ("2519-7", Param::Lactate),
        ];
        for (code, p) in cases {
            assert_eq!(Param::from_code(code), Some(p), "{code}");
        }
        assert_eq!(Param::from_code("85354-9"), None);
        assert_eq!(Param::from_code("HEART_RATE"), None);
    }

    #[test]
    fn conversions_follow_the_reference_factors() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(
            Param::Creatinine
                .to_canonical(88.4, Some("umol/L"))
                .unwrap(),
            1.0
        ));
        assert!(close(
            Param::Bilirubin.to_canonical(34.2, Some("umol/L")).unwrap(),
            2.0
        ));
        assert!(close(
            Param::Lactate.to_canonical(18.02, Some("mg/dL")).unwrap(),
            2.0
        ));
        assert!(close(
            Param::Temperature
                .to_canonical(100.4, Some("[degF]"))
                .unwrap(),
            38.0
        ));
        assert!(close(
            Param::Pao2.to_canonical(8.0, Some("kPa")).unwrap(),
            60.0
        ));
        assert!(close(
            Param::Paco2.to_canonical(4.3, Some("kPa")).unwrap(),
            32.25
        ));
        assert!(close(
            Param::Fio2.to_canonical(40.0, Some("%")).unwrap(),
            0.4
        ));
        // SpO2 as a fraction lands exactly on the whole percentages the NEWS2 bands
        // compare against (91, 92, 93, 94, 95, 96: both edges of every band).
        for pct in 85..=100 {
            let fraction = f64::from(pct) / 100.0;
            assert_eq!(
                Param::Spo2.to_canonical(fraction, Some("1")).unwrap(),
                f64::from(pct),
                "{fraction}"
            );
        }
        assert!(close(
            Param::Platelets
                .to_canonical(150_000.0, Some("/mm3"))
                .unwrap(),
            150.0
        ));
        assert!(close(
            Param::Wbc.to_canonical(12.5, Some("10*9/L")).unwrap(),
            12.5
        ));
        assert!(close(
            Param::UrineOutput.to_canonical(20.0, Some("mL/h")).unwrap(),
            480.0
        ));
    }

    #[test]
    fn unconvertible_units_are_named() {
        let err = Param::Temperature
            .to_canonical(37.0, Some("K"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `unit`: \"K\" cannot be converted for temperature; expected one of Cel, [degF]"
        );
        let err = Param::UrineOutput
            .to_canonical(300.0, Some("mL"))
            .unwrap_err();
        assert!(err.to_string().contains("no collection period"), "{err}");
        assert!(Param::HeartRate.to_canonical(80.0, Some("mm[Hg]")).is_err());
    }

    #[test]
    fn param_set_is_a_set() {
        let mut s = ParamSet::EMPTY;
        assert!(s.is_empty());
        s.insert(Param::Gcs);
        s.insert(Param::HeartRate);
        s.insert(Param::Gcs);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![Param::HeartRate, Param::Gcs]
        );
        assert!(s.contains(Param::Gcs) && !s.contains(Param::Sbp));
    }
}
