//! The key of the patient maps ([`crate::processing::Patients`]): a patient id held in
//! the map's entry itself when it is short, as hospital identifiers are. A lookup then
//! compares the id without reaching for another allocation (under a backlog that was a
//! cache miss per message), and a patient costs no separate allocation for its id.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};

/// How many bytes of an id are held inline: with the length and the variant that keeps
/// the key as large as a `String` (24 bytes).
const INLINE: usize = 22;

/// A patient id as a map key. Looked up by the id's bytes (`&[u8]`).
#[derive(Clone)]
pub struct PatientKey(Repr);

#[derive(Clone)]
enum Repr {
    /// Ids of up to [`INLINE`] bytes.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// Longer ids (validated ids are at most 64 characters).
    Heap(Box<str>),
}

impl PatientKey {
    /// The key of `id`.
    pub fn new(id: &str) -> PatientKey {
        if id.len() > INLINE {
            return PatientKey(Repr::Heap(id.into()));
        }
        let mut bytes = [0; INLINE];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        PatientKey(Repr::Inline {
            len: id.len() as u8,
            bytes,
        })
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(id) => id.as_bytes(),
        }
    }

    /// The id. A key is only ever made from a `&str`, so its bytes are UTF-8.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Repr::Heap(id) => id,
        }
    }
}

/// Hashed as its bytes are, so that a map of keys is looked up by `&[u8]`.
impl Hash for PatientKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for PatientKey {
    fn eq(&self, other: &PatientKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for PatientKey {}

impl Borrow<[u8]> for PatientKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for PatientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_key_is_as_large_as_a_string() {
        assert_eq!(size_of::<PatientKey>(), size_of::<String>());
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
        let mut map: HashMap<PatientKey, usize, foldhash::fast::RandomState> = HashMap::default();
        for (i, id) in ids.iter().enumerate() {
            let key = PatientKey::new(id);
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
        assert_ne!(PatientKey::new("P1"), PatientKey::new("P1\0"));
    }
}
