//! Actions signed by the board that took them: who may change who is paged is decided by
//! a key, not by who can write to the action topic.
//!
//! A board signs the exact bytes of each action event it publishes with HMAC-SHA256
//! (RFC 2104, FIPS 180-4) under a key the boards and the scoring service share
//! (`[board] action_key_file`), and sends the signature in the message header
//! [`SIGNATURE_HEADER`] as `v1=` and 64 hex digits. Whoever consumes the topic (every
//! board, and the service's suppression of watched and stopped patients) verifies it
//! before anything else: an action without a signature, or with one that does not match
//! its bytes, is refused and counted, and never applied. A forged event written straight
//! to the topic therefore changes nothing without the key; a signed event replayed
//! unchanged repeats its `action_id` and is dropped as a redelivery.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The Kafka header carrying an action's signature.
pub const SIGNATURE_HEADER: &str = "vigil-signature";

/// The fewest key bytes accepted (the hash's output size, RFC 2104 section 3).
pub const MIN_KEY_BYTES: usize = 32;

/// The shared key actions are signed with.
#[derive(Clone)]
pub struct ActionKey(Vec<u8>);

impl std::fmt::Debug for ActionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActionKey(..)")
    }
}

/// Why an action's signature was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unverified {
    /// No signature header.
    Missing,
    /// A header that is not `v1=` and 64 hex digits.
    Malformed,
    /// A signature that does not match the bytes under the shared key.
    Mismatch,
}

impl Unverified {
    /// Its name, for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Unverified::Missing => "unsigned",
            Unverified::Malformed => "malformed_signature",
            Unverified::Mismatch => "wrong_signature",
        }
    }
}

impl ActionKey {
    /// The key in a key file's text: hex digits (surrounding white space ignored), at
    /// least [`MIN_KEY_BYTES`] bytes, as `vigil action-key` writes.
    ///
    /// # Errors
    ///
    /// What the text is and what was expected, never quoting it.
    pub fn from_hex(text: &str) -> Result<ActionKey, String> {
        let text = text.trim();
        let expected = format!(
            "expected at least {} hex digits ({MIN_KEY_BYTES} random bytes), as `vigil \
             action-key` writes",
            2 * MIN_KEY_BYTES
        );
        if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("not hex digits; {expected}"));
        }
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
            .collect();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!("{} bytes; {expected}", bytes.len()));
        }
        Ok(ActionKey(bytes))
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(payload);
        mac
    }

    /// The signature header's value for `payload`.
    pub fn sign(&self, payload: &[u8]) -> String {
        let tag = self.mac(payload).finalize().into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        format!("v1={hex}")
    }

    /// Checks `header` (the signature header's value, if any) against `payload`, in
    /// constant time.
    ///
    /// # Errors
    ///
    /// Why it is not accepted.
    pub fn verify(&self, payload: &[u8], header: Option<&[u8]>) -> Result<(), Unverified> {
        let header = header.ok_or(Unverified::Missing)?;
        let hex = header
            .strip_prefix(b"v1=")
            .filter(|h| h.len() == 64 && h.iter().all(u8::is_ascii_hexdigit))
            .ok_or(Unverified::Malformed)?;
        let tag: Vec<u8> = hex
            .chunks(2)
            .filter_map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
            })
            .collect();
        self.mac(payload)
            .verify_slice(&tag)
            .map_err(|_| Unverified::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ActionKey {
        ActionKey::from_hex(&"0b".repeat(32)).expect("a key")
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_test_case_2() {
        // RFC 4231 4.3: key "Jefe", data "what do ya want for nothing?" (a short key is
        // accepted by HMAC itself; ActionKey::from_hex refuses it, so build it directly).
        let k = ActionKey(b"Jefe".to_vec());
        assert_eq!(
            k.sign(b"what do ya want for nothing?"),
            "v1=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn only_the_signed_bytes_under_the_shared_key_verify() {
        let k = key();
        let payload = br#"{"action_id":"a1","kind":"dismiss"}"#;
        let sig = k.sign(payload);
        assert_eq!(k.verify(payload, Some(sig.as_bytes())), Ok(()));
        assert_eq!(k.verify(payload, None), Err(Unverified::Missing));
        assert_eq!(
            k.verify(payload, Some(b"v1=zz")),
            Err(Unverified::Malformed)
        );
        assert_eq!(
            k.verify(&payload[1..], Some(sig.as_bytes())),
            Err(Unverified::Mismatch)
        );
        let other = ActionKey::from_hex(&"0c".repeat(32)).expect("a key");
        assert_eq!(
            other.verify(payload, Some(sig.as_bytes())),
            Err(Unverified::Mismatch)
        );
    }

    #[test]
    fn a_key_file_is_at_least_32_hex_bytes_and_never_quoted() {
        assert!(ActionKey::from_hex(&format!("  {}\n", "ab".repeat(32))).is_ok());
        let short = ActionKey::from_hex(&"ab".repeat(31)).expect_err("31 bytes");
        assert!(short.contains("31 bytes"), "{short}");
        let odd = ActionKey::from_hex("secret-password").expect_err("not hex");
        assert!(!odd.contains("secret"), "{odd}");
    }
}
