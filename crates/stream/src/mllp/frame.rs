//! MLLP framing: finds each message's frame (`0x0B` message `0x1C 0x0D`) in the bytes a
//! connection delivers, however they are split across reads, and tells a malformed frame
//! apart from a good one so that it is refused on its own, never merged with the next.

/// The start block.
pub(crate) const START: u8 = 0x0b;
/// The end block: file separator, carriage return.
pub(crate) const END: [u8; 2] = [0x1c, 0x0d];
/// How much of an oversize message is kept, to read its MSH for the answer.
const HEAD: usize = 4096;

/// What the framer found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole message (between its start and end blocks).
    Message(Vec<u8>),
    /// A message whose end block never came: the next start block arrived first. It is
    /// refused on its own; the message after it is framed afresh.
    Unterminated(Vec<u8>),
    /// A message larger than the limit: its first bytes (for its MSH) and its size. The
    /// rest was drained up to its end block (or the next start block).
    Oversize {
        /// The message's first bytes.
        head: Vec<u8>,
        /// Its size in bytes.
        size: usize,
    },
    /// Bytes outside any frame (other than line endings and spaces): how many.
    Stray(usize),
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Between frames.
    Outside,
    /// In a frame, within the limit.
    Inside,
    /// In a frame past the limit: drained, only counted.
    Oversize,
}

/// Frames messages out of a connection's bytes.
#[derive(Debug)]
pub(crate) struct Framer {
    state: State,
    /// The message so far (its first bytes only when oversize).
    buffer: Vec<u8>,
    /// The message's size so far.
    size: usize,
    /// The last byte was the end block's first byte, `0x1C`.
    separator: bool,
    /// Stray bytes not yet reported.
    stray: usize,
    /// The largest message taken.
    limit: usize,
}

impl Framer {
    /// A framer taking messages of at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Framer {
        Framer {
            state: State::Outside,
            buffer: Vec::new(),
            size: 0,
            separator: false,
            stray: 0,
            limit,
        }
    }

    /// Takes the next bytes read; appends what they complete to `out`.
    pub(crate) fn push(&mut self, bytes: &[u8], out: &mut Vec<Frame>) {
        for &b in bytes {
            self.byte(b, out);
        }
    }

    /// Whether a frame was begun and not finished (the connection closing now would cut
    /// a message).
    pub(crate) fn mid_frame(&self) -> bool {
        self.state != State::Outside
    }

    fn byte(&mut self, b: u8, out: &mut Vec<Frame>) {
        if self.state == State::Outside {
            match b {
                START => {
                    if self.stray > 0 {
                        out.push(Frame::Stray(std::mem::take(&mut self.stray)));
                    }
                    self.begin();
                }
                b'\r' | b'\n' | b' ' | b'\t' => {}
                _ => self.stray += 1,
            }
            return;
        }
        if b == START {
            // A start block inside a frame: the frame before it lacked its end block.
            let cut = self.finish();
            out.push(match cut {
                Frame::Message(body) => Frame::Unterminated(body),
                other => other,
            });
            self.begin();
            return;
        }
        if self.separator {
            self.separator = false;
            if b == END[1] {
                out.push(self.finish());
                self.state = State::Outside;
                return;
            }
            self.take(END[0]);
        }
        if b == END[0] {
            self.separator = true;
        } else {
            self.take(b);
        }
    }

    fn begin(&mut self) {
        self.state = State::Inside;
        self.buffer.clear();
        self.size = 0;
        self.separator = false;
    }

    fn take(&mut self, b: u8) {
        self.size += 1;
        if self.state == State::Inside && self.size > self.limit {
            self.state = State::Oversize;
            self.buffer.truncate(HEAD);
            self.buffer.shrink_to(HEAD);
        }
        if self.state == State::Inside || self.buffer.len() < HEAD {
            self.buffer.push(b);
        }
    }

    /// The frame ended here (by its end block, or cut by a start block).
    fn finish(&mut self) -> Frame {
        let body = std::mem::take(&mut self.buffer);
        if self.state == State::Oversize {
            Frame::Oversize {
                head: body,
                size: self.size,
            }
        } else {
            Frame::Message(body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(chunks: &[&[u8]], limit: usize) -> Vec<Frame> {
        let mut framer = Framer::new(limit);
        let mut out = Vec::new();
        for c in chunks {
            framer.push(c, &mut out);
        }
        out
    }

    #[test]
    fn a_frame_without_its_end_block_is_refused_on_its_own_not_merged() {
        // The first message lacks 0x1C 0x0D; the second is whole.
        let got = frames(&[b"\x0bMSH|first\r", b"\x0bMSH|second\r\x1c\r"], 100);
        assert_eq!(
            got,
            vec![
                Frame::Unterminated(b"MSH|first\r".to_vec()),
                Frame::Message(b"MSH|second\r".to_vec()),
            ]
        );
    }

    #[test]
    fn split_reads_line_endings_and_stray_bytes() {
        let got = frames(
            &[b"\x0bMSH|a\r\x1c", b"\r\r\n", b"junk\x0bMSH|b\x1c", b"\r"],
            100,
        );
        assert_eq!(
            got,
            vec![
                Frame::Message(b"MSH|a\r".to_vec()),
                Frame::Stray(4),
                Frame::Message(b"MSH|b".to_vec()),
            ]
        );
        // A lone 0x1C inside a message is data.
        assert_eq!(
            frames(&[b"\x0bab\x1cc\x1c\r"], 100),
            vec![Frame::Message(b"ab\x1cc".to_vec())]
        );
    }

    #[test]
    fn an_oversize_message_is_drained_to_its_end_and_the_next_one_framed() {
        let big = vec![b'x'; 10_000];
        let mut first = b"\x0bMSH|big|".to_vec();
        first.extend_from_slice(&big);
        first.extend_from_slice(b"\x1c\r\x0bMSH|next\x1c\r");
        let got = frames(&[&first], 1000);
        let Frame::Oversize { head, size } = &got[0] else {
            panic!("{got:?}");
        };
        assert_eq!(*size, 10_008);
        assert!(
            head.starts_with(b"MSH|big|") && head.len() <= HEAD,
            "{}",
            head.len()
        );
        assert_eq!(got[1], Frame::Message(b"MSH|next".to_vec()));
        assert_eq!(got.len(), 2);
    }

    proptest! {
        /// However the bytes of well-framed messages are split into reads, the framer
        /// gives back exactly those messages, in order.
        #[test]
        fn any_split_gives_back_the_messages(
            messages in prop::collection::vec(prop::collection::vec(0x1du8..=0xff, 1..300), 1..6),
            cuts in prop::collection::vec(0usize..2000, 0..10),
        ) {
            let mut bytes = Vec::new();
            for m in &messages {
                bytes.push(START);
                bytes.extend_from_slice(m);
                bytes.extend_from_slice(&END);
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % bytes.len()).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut chunks = Vec::new();
            let mut from = 0;
            for c in cuts.into_iter().chain([bytes.len()]) {
                chunks.push(&bytes[from..c]);
                from = c;
            }
            let got = frames(&chunks, 1000);
            let want: Vec<Frame> = messages.into_iter().map(Frame::Message).collect();
            prop_assert_eq!(got, want);
        }
    }
}
