//! Server-sent events: an incremental parser over the bytes of an HTTP response body.
//!
//! Owns only the SSE framing (event, data, comments, blank-line dispatch). Must not know what any
//! provider puts in the events.

/// One complete event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, empty when absent.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Feed bytes in any chunking; take out complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: String,
    data: Vec<String>,
}

impl SseParser {
    /// Add bytes and return every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.is_empty() {
                if !self.data.is_empty() || !self.event.is_empty() {
                    out.push(SseEvent {
                        event: std::mem::take(&mut self.event),
                        data: self.data.join("\n"),
                    });
                    self.data.clear();
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "event" => self.event = value.to_string(),
                "data" => self.data.push(value.to_string()),
                _ => {}
            }
        }
        out
    }

    /// True when bytes of an unfinished event are pending (the stream ended mid-event).
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || !self.data.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_across_arbitrary_chunks() {
        let text = b"event: ping\ndata: {}\n\n: comment\nevent: message_delta\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\ndata: [DONE]\n\n";
        for split in 1..text.len() {
            let mut p = SseParser::default();
            let mut events = p.push(&text[..split]);
            events.extend(p.push(&text[split..]));
            assert_eq!(events.len(), 3, "split at {split}");
            assert_eq!(
                events[0],
                SseEvent {
                    event: "ping".into(),
                    data: "{}".into()
                }
            );
            assert_eq!(events[1].data, "{\"a\":\n1}");
            assert_eq!(
                events[2],
                SseEvent {
                    event: String::new(),
                    data: "[DONE]".into()
                }
            );
            assert!(!p.has_partial());
        }
        let mut p = SseParser::default();
        assert!(p.push(b"event: x\ndata: {\"cut").is_empty());
        assert!(p.has_partial());
    }
}
