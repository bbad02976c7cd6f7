//! Reading record files: one record (or `{"Records": [...]}`) per line.
//!
//! Lines are read as bytes (a line that is not UTF-8 is a dead letter, not an
//! I/O error), capped at [`MAX_LINE`], and handed to
//! the engine in batches that each become one transaction.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use crate::engine::{Incoming, Origin};
use crate::meeting::record::{decode_line, DeadLetter, Item, RecordError, MAX_LINE};
use crate::meeting::MeetingWorkflow;

/// How many bytes of an over-long line are kept in its dead letter.
const KEEP_OF_LONG_LINE: usize = 64 << 10;

/// Reads a record file line by line and yields batches of [`Incoming`] items.
pub struct LineFeed<R> {
    reader: BufReader<R>,
    name: Arc<str>,
    line_no: u64,
    done: bool,
    /// Lines read so far (blank ones included).
    pub lines: u64,
}

impl<R: Read> LineFeed<R> {
    /// `name` prefixes each item's origin (`name:line`).
    pub fn new(reader: R, name: impl Into<String>) -> Self {
        LineFeed {
            reader: BufReader::with_capacity(1 << 20, reader),
            name: Arc::from(name.into()),
            line_no: 0,
            done: false,
            lines: 0,
        }
    }

    /// Read one line (without its newline), at most `MAX_LINE` bytes kept.
    /// Returns `None` at end of input, `Some(Err(len))` for an over-long line.
    fn read_line(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<Result<(), usize>>> {
        buf.clear();
        let mut total = 0usize;
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                return Ok(if total == 0 { None } else { Some(if total > MAX_LINE { Err(total) } else { Ok(()) }) });
            }
            let (take, end) = match chunk.iter().position(|&c| c == b'\n') {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if buf.len() < MAX_LINE + 1 {
                let room = MAX_LINE + 1 - buf.len();
                buf.extend_from_slice(&chunk[..take.min(room)]);
            }
            total += take;
            self.reader.consume(if end { take + 1 } else { take });
            if end {
                return Ok(Some(if total > MAX_LINE { Err(total) } else { Ok(()) }));
            }
        }
    }

    /// The next batch of up to `max` items, or `None` at the end.
    pub fn next_batch(&mut self, max: usize) -> std::io::Result<Option<Vec<Incoming<MeetingWorkflow>>>> {
        if self.done {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(max.min(1 << 16));
        let mut buf = Vec::new();
        while out.len() < max {
            let Some(line) = self.read_line(&mut buf)? else {
                self.done = true;
                break;
            };
            self.line_no += 1;
            self.lines += 1;
            let origin = |part| Origin::Line { file: self.name.clone(), line: self.line_no, part };
            match line {
                Err(len) => {
                    buf.truncate(KEEP_OF_LONG_LINE);
                    let reason = RecordError::LineTooLong(len);
                    out.push(Incoming {
                        item: Item::Dead(DeadLetter { reason, raw: buf.clone(), event_id: None }),
                        origin: origin(None),
                    });
                }
                Ok(()) => {
                    let items = decode_line(&buf);
                    let many = items.len() > 1;
                    for (i, item) in items.into_iter().enumerate() {
                        out.push(Incoming { item, origin: origin(many.then_some(i as u32 + 1)) });
                    }
                }
            }
        }
        Ok(if out.is_empty() && self.done { None } else { Some(out) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_names_origins() {
        let input = b"\n{\"Records\": [1, 2]}\r\nnot json\n\xff\n".to_vec();
        let mut feed = LineFeed::new(&input[..], "f.jsonl");
        let batch = feed.next_batch(100).unwrap().unwrap();
        let origins: Vec<String> = batch.iter().map(|i| i.origin.to_string()).collect();
        assert_eq!(origins, ["f.jsonl:2#1", "f.jsonl:2#2", "f.jsonl:3", "f.jsonl:4"]);
        assert!(batch.iter().all(|i| matches!(i.item, Item::Dead(_))));
        assert!(feed.next_batch(100).unwrap().is_none());
        assert_eq!(feed.lines, 4);
    }

    #[test]
    fn over_long_lines_are_dead_letters_and_the_next_line_still_reads() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\n\n");
        let mut feed = LineFeed::new(&input[..], "big");
        let batch = feed.next_batch(10).unwrap().unwrap();
        assert_eq!(batch.len(), 1);
        let Item::Dead(d) = &batch[0].item else { panic!() };
        assert_eq!(d.reason, RecordError::LineTooLong(MAX_LINE + 10));
        assert_eq!(d.raw.len(), KEEP_OF_LONG_LINE);
        assert!(feed.next_batch(10).unwrap().is_none());
    }

    #[test]
    fn batches_respect_the_limit() {
        let input = "not json\n".repeat(5);
        let mut feed = LineFeed::new(input.as_bytes(), "f");
        assert_eq!(feed.next_batch(2).unwrap().unwrap().len(), 2);
        assert_eq!(feed.next_batch(2).unwrap().unwrap().len(), 2);
        assert_eq!(feed.next_batch(2).unwrap().unwrap().len(), 1);
        assert!(feed.next_batch(2).unwrap().is_none());
    }
}
