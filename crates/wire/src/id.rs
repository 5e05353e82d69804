//! A decoded patient id ([`PatientId`]), held in place when it is short, as hospital
//! identifiers are, and how the message named it ([`PatientNaming`]). Decoding a reading then allocates nothing for its patient, and the
//! service's patient maps key on the same value: a lookup compares the id without
//! reaching for another allocation (under a backlog that was a cache miss per message),
//! and a patient costs no separate allocation for its id.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};

/// How many bytes of an id are held inline: with the length and the variant that keeps
/// the key as large as a `String` (24 bytes).
const INLINE: usize = 22;

/// A validated patient id (1-64 characters of `A-Z a-z 0-9 . _ : -`, checked by the
/// decoder that made it). As a map key it is looked up by the id's bytes (`&[u8]`).
#[derive(Clone)]
pub struct PatientId(Repr);

#[derive(Clone)]
enum Repr {
    /// Ids of up to [`INLINE`] bytes.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// Longer ids (validated ids are at most 64 characters).
    Heap(Box<str>),
}

impl PatientId {
    /// `id`, as it is (the decoders validate it first).
    pub fn new(id: &str) -> PatientId {
        if id.len() > INLINE {
            return PatientId(Repr::Heap(id.into()));
        }
        let mut bytes = [0; INLINE];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        PatientId(Repr::Inline {
            len: id.len() as u8,
            bytes,
        })
    }

    /// The id's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(id) => id.as_bytes(),
        }
    }

    /// The id. An id is only ever made from a `&str`, so its bytes are UTF-8.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Repr::Heap(id) => id,
        }
    }
}

/// Hashed as its bytes are, so that a map of keys is looked up by `&[u8]`.
impl Hash for PatientId {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for PatientId {
    #[inline]
    fn eq(&self, other: &PatientId) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for PatientId {}

impl Borrow<[u8]> for PatientId {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for PatientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for PatientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::ops::Deref for PatientId {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for PatientId {
    #[inline]
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for PatientId {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq<str> for PatientId {
    #[inline]
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for PatientId {
    #[inline]
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<String> for PatientId {
    #[inline]
    fn eq(&self, other: &String) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialOrd for PatientId {
    #[inline]
    fn partial_cmp(&self, other: &PatientId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Ordered as the ids' text is.
impl Ord for PatientId {
    #[inline]
    fn cmp(&self, other: &PatientId) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl From<PatientId> for String {
    fn from(id: PatientId) -> String {
        id.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_patients_naming_survives_its_text_form() {
        for naming in [
            PatientNaming::Id,
            PatientNaming::Resource,
            PatientNaming::System("urn:oid:2.16.840.1.113883.19.5".into()),
        ] {
            assert_eq!(
                PatientNaming::from_text(naming.to_text().as_deref()),
                naming
            );
        }
        assert_eq!(PatientNaming::from_text(Some("system ")), PatientNaming::Id);
        assert_eq!(PatientNaming::from_text(Some("other")), PatientNaming::Id);
    }

    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_key_is_as_large_as_a_string() {
        assert_eq!(size_of::<PatientId>(), size_of::<String>());
    }

    #[test]
    fn short_and_long_ids_read_back_and_are_found_by_their_bytes() {
        let ids = [
            "P1".to_owned(),
            "x".repeat(INLINE),
            "y".repeat(INLINE + 1),
            "MRN:0042-7.a_b".to_owned(),
            "z".repeat(64),
        ];
        let mut map: HashMap<PatientId, usize> = HashMap::new();
        for (i, id) in ids.iter().enumerate() {
            let key = PatientId::new(id);
            assert_eq!(key.as_str(), id);
            assert_eq!(key.as_bytes(), id.as_bytes());
            assert_eq!(
                matches!(key.0, Repr::Inline { .. }),
                id.len() <= INLINE,
                "{id}"
            );
            map.insert(key, i);
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(map.get(id.as_bytes()), Some(&i), "{id}");
        }
        assert_eq!(map.get(b"P10".as_slice()), None);
        assert_eq!(map.get(b"P".as_slice()), None);
        assert_ne!(PatientId::new("P1"), PatientId::new("P1\0"));
    }

    #[test]
    fn an_id_compares_orders_and_shows_as_its_text() {
        let short = PatientId::new("MRN-7");
        let long = PatientId::new(&"9".repeat(40));
        assert_eq!(short, "MRN-7");
        assert_eq!(short, "MRN-7".to_owned());
        assert_eq!(&*short, "MRN-7");
        assert_eq!(short.to_string(), "MRN-7");
        assert_eq!(format!("{long:?}"), format!("{:?}", "9".repeat(40)));
        assert_eq!(String::from(long.clone()), "9".repeat(40));
        let mut ids = [
            PatientId::new("b"),
            long.clone(),
            PatientId::new("a"),
            short.clone(),
        ];
        ids.sort();
        let mut texts = vec![
            "b".to_owned(),
            "9".repeat(40),
            "a".to_owned(),
            "MRN-7".to_owned(),
        ];
        texts.sort();
        assert_eq!(ids.iter().map(|i| i.to_string()).collect::<Vec<_>>(), texts);
    }
}

/// How a message named its patient, beyond the id Vigil keys on: what Vigil publishes
/// about the patient (FHIR alerts) names it the same way, and nothing the sender said
/// about the identifier's namespace is lost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PatientNaming {
    /// By the id alone: native JSON, an HL7 PID-3 whose assigning authority (PID-3.4)
    /// has no universal id, a FHIR identifier without a system.
    #[default]
    Id,
    /// By an identifier in this system (a URI): a FHIR `identifier.system`, or the
    /// universal id of PID-3.4's assigning authority (`urn:oid:` for an ISO OID).
    System(String),
    /// By a FHIR server's logical id (`Patient/<id>`).
    Resource,
}

impl PatientNaming {
    /// As one line of text (a state record's header): `None` for [`PatientNaming::Id`],
    /// `resource`, or `system <uri>`.
    pub fn to_text(&self) -> Option<String> {
        match self {
            PatientNaming::Id => None,
            PatientNaming::System(uri) => Some(format!("system {uri}")),
            PatientNaming::Resource => Some("resource".to_owned()),
        }
    }

    /// Read back from [`PatientNaming::to_text`]'s text; anything else is
    /// [`PatientNaming::Id`].
    pub fn from_text(text: Option<&str>) -> PatientNaming {
        match text {
            Some("resource") => PatientNaming::Resource,
            Some(t) => t
                .strip_prefix("system ")
                .filter(|uri| !uri.is_empty())
                .map_or(PatientNaming::Id, |uri| {
                    PatientNaming::System(uri.to_owned())
                }),
            None => PatientNaming::Id,
        }
    }
}
