//! The fast reader for the common native event: one flat JSON object whose strings need
//! no unescaping. It reads such a message into the same fields serde would, with no
//! allocation and without serde's per-field machinery (serde took about a tenth of the
//! service's CPU time at full speed); anything else (escapes, `null`, nesting, unknown,
//! missing or repeated fields, bad syntax) makes it give up, and the caller decodes with
//! serde, whose errors name the problem. A property test holds the two readers equal.

use std::borrow::Cow;

use crate::Wire;

/// Reads `bytes` as a flat native event, or `None` when serde must decide.
pub(crate) fn read(bytes: &[u8]) -> Option<Wire<'_>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut r = Reader {
        s: text.as_bytes(),
        text,
        at: 0,
    };
    let mut patient_id = None;
    let mut encounter_id = None;
    let mut location = None;
    let mut code = None;
    let mut value = None;
    let mut unit = None;
    let mut effective = None;
    let mut id = None;
    let mut status = None;
    r.ws();
    r.eat(b'{')?;
    loop {
        r.ws();
        let key = r.string()?;
        r.ws();
        r.eat(b':')?;
        r.ws();
        let slot = match key {
            "patient_id" => &mut patient_id,
            "encounter_id" => &mut encounter_id,
            "location" => &mut location,
            "code" => &mut code,
            "unit" => &mut unit,
            "effective" => &mut effective,
            "id" => &mut id,
            "status" => &mut status,
            "value" => {
                if value.is_some() {
                    return None;
                }
                value = Some(r.scalar()?);
                if !r.next_member()? {
                    break;
                }
                continue;
            }
            _ => return None,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(Cow::Borrowed(r.string()?));
        if !r.next_member()? {
            break;
        }
    }
    r.ws();
    if r.at != r.s.len() {
        return None;
    }
    Some(Wire {
        patient_id: patient_id?,
        encounter_id,
        location,
        code: code?,
        value: value?,
        unit,
        effective: effective?,
        id,
        status,
    })
}

struct Reader<'a> {
    s: &'a [u8],
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.at) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.s.get(self.at) == Some(&b)).then(|| self.at += 1)
    }

    /// After a member: true at `,` (another follows), false at `}`.
    fn next_member(&mut self) -> Option<bool> {
        self.ws();
        match self.s.get(self.at)? {
            b',' => {
                self.at += 1;
                Some(true)
            }
            b'}' => {
                self.at += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// A string with no escape and no control character, borrowed.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        loop {
            match *self.s.get(self.at)? {
                b'"' => break,
                b'\\' | 0..0x20 => return None,
                _ => self.at += 1,
            }
        }
        let end = self.at;
        self.at += 1;
        // Both ends are ASCII quotes, so they are character boundaries.
        self.text.get(start..end)
    }

    /// The `value` field: a number (read by serde_json, so it is the same `f64`), a
    /// string or a boolean.
    fn scalar(&mut self) -> Option<serde_json::Value> {
        match *self.s.get(self.at)? {
            b'"' => Some(serde_json::Value::String(self.string()?.to_owned())),
            b't' => self.word("true", serde_json::Value::Bool(true)),
            b'f' => self.word("false", serde_json::Value::Bool(false)),
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.s.get(self.at)
                {
                    self.at += 1;
                }
                let number: serde_json::Number =
                    serde_json::from_slice(&self.s[start..self.at]).ok()?;
                Some(serde_json::Value::Number(number))
            }
            _ => None,
        }
    }

    fn word(&mut self, word: &str, value: serde_json::Value) -> Option<serde_json::Value> {
        let end = self.at + word.len();
        (self.s.get(self.at..end)? == word.as_bytes()).then(|| {
            self.at = end;
            value
        })
    }
}
