//! Instants on the topics as RFC 3339 text: how alert and action events carry their times.

use serde::{Deserialize, Deserializer, Serializer};
use vigil_score::Timestamp;

/// Writes `t` as RFC 3339 (UTC).
pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_string())
}

/// Reads an RFC 3339 date-time with its offset; the error quotes the text.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let text = String::deserialize(d)?;
    Timestamp::parse_rfc3339(&text).map_err(|e| {
        serde::de::Error::custom(format!("{text:?} is not an RFC 3339 date-time: {e}"))
    })
}
