//! Columns to one JSON object per row, in one pass (the ingest step's reading messages).
//!
//! The ingest step used to build a Python dict per reading and serialise it with orjson;
//! here the columns of a whole batch are written as compact JSON objects (keys in the
//! order given) into one buffer, with row offsets. Output matches orjson's for the same
//! values: floats in shortest round-trip form with a `.0` on integral values, NaN and
//! infinities as `null`, strings escaped per RFC 8259, timestamps as RFC 3339 UTC with
//! microseconds (`2026-01-02T03:04:05.678901Z`).

use std::io::Write;

/// One output column; every slice holds at least `n` rows.
#[derive(Debug, Clone, Copy)]
pub enum JsonColumn<'a> {
    /// Floats; NaN and infinities are written as `null`.
    F64(&'a [f64]),
    /// Integers; `valid[i] == false` (when given) writes `null`.
    I64 {
        values: &'a [i64],
        valid: Option<&'a [bool]>,
    },
    /// Booleans as -1 (null), 0 (false), 1 (true).
    Bool(&'a [i8]),
    /// Nanoseconds since the Unix epoch, written as an RFC 3339 string (µs, `Z`).
    TimestampNs {
        values: &'a [i64],
        valid: Option<&'a [bool]>,
    },
    /// Strings by index into `values`; a negative index or a `None` entry writes `null`.
    Dict {
        indices: &'a [i64],
        values: &'a [Option<String>],
    },
    /// `"<prefix><value><suffix>"` (e.g. ids like `r:123:0`).
    IntString {
        values: &'a [i64],
        prefix: &'a str,
        suffix: &'a str,
    },
    /// `"<prefix><first><sep><second>"` (e.g. ids like `r:123:2`).
    IntPair {
        first: &'a [i64],
        second: &'a [i64],
        prefix: &'a str,
        sep: &'a str,
    },
    /// The same JSON text on every row (written as given: a literal, a number, a quoted string).
    Literal(&'a str),
    /// JSON texts by index into `values`, written as given (values rendered once and
    /// reused across rows, e.g. a registry row's strings); a negative index or one out of
    /// range writes `null`.
    Raw {
        indices: &'a [i64],
        values: &'a [Box<[u8]>],
    },
}

impl JsonColumn<'_> {
    fn len_ok(&self, n: usize) -> bool {
        let opt = |v: Option<&[bool]>| v.is_none_or(|v| v.len() >= n);
        match self {
            JsonColumn::F64(v) => v.len() >= n,
            JsonColumn::I64 { values, valid } | JsonColumn::TimestampNs { values, valid } => {
                values.len() >= n && opt(*valid)
            }
            JsonColumn::Bool(v) => v.len() >= n,
            JsonColumn::Dict { indices, .. } => indices.len() >= n,
            JsonColumn::IntString { values, .. } => values.len() >= n,
            JsonColumn::IntPair { first, second, .. } => first.len() >= n && second.len() >= n,
            JsonColumn::Literal(_) => true,
            JsonColumn::Raw { indices, .. } => indices.len() >= n,
        }
    }
}

/// Error: a column shorter than the row count (names the column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortColumn(pub String);

impl std::fmt::Display for ShortColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "column {:?} has fewer values than rows", self.0)
    }
}

impl std::error::Error for ShortColumn {}

/// JSON rows: row `i` is `data[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Default, Clone)]
pub struct JsonRows {
    pub data: Vec<u8>,
    pub offsets: Vec<usize>,
}

impl JsonRows {
    /// Row `i` as bytes.
    pub fn row(&self, i: usize) -> &[u8] {
        &self.data[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checked columns and their `"key":` prefixes, writing one row at a time.
struct RowWriter<'c, 'a> {
    columns: &'c [(&'c str, JsonColumn<'a>)],
    keys: Vec<Vec<u8>>,
}

impl<'c, 'a> RowWriter<'c, 'a> {
    fn new(n: usize, columns: &'c [(&'c str, JsonColumn<'a>)]) -> Result<Self, ShortColumn> {
        for (name, c) in columns {
            if !c.len_ok(n) {
                return Err(ShortColumn((*name).to_string()));
            }
        }
        // `"key":` prefixes, the first without and the others with a leading comma.
        let keys: Vec<Vec<u8>> = columns
            .iter()
            .enumerate()
            .map(|(j, (name, _))| {
                let mut k = Vec::with_capacity(name.len() + 4);
                if j > 0 {
                    k.push(b',');
                }
                write_str(&mut k, name);
                k.push(b':');
                k
            })
            .collect();
        Ok(RowWriter { columns, keys })
    }

    /// Row `i` (below the `n` checked) appended to `buf`.
    fn write(&self, buf: &mut Vec<u8>, i: usize) {
        let columns = self.columns;
        let keys = &self.keys;
        buf.push(b'{');
        for ((_, col), key) in columns.iter().zip(keys) {
            buf.extend_from_slice(key);
            match *col {
                JsonColumn::F64(v) => write_f64(buf, v[i]),
                JsonColumn::I64 { values, valid } => {
                    if valid.is_none_or(|m| m[i]) {
                        write_i64(buf, values[i]);
                    } else {
                        buf.extend_from_slice(b"null");
                    }
                }
                JsonColumn::Bool(v) => buf.extend_from_slice(match v[i] {
                    0 => b"false".as_slice(),
                    x if x > 0 => b"true".as_slice(),
                    _ => b"null".as_slice(),
                }),
                JsonColumn::TimestampNs { values, valid } => {
                    if valid.is_none_or(|m| m[i]) {
                        write_rfc3339_us(buf, values[i]);
                    } else {
                        buf.extend_from_slice(b"null");
                    }
                }
                JsonColumn::Dict { indices, values } => {
                    match usize::try_from(indices[i]).ok().and_then(|k| values.get(k)) {
                        Some(Some(s)) => write_str(buf, s),
                        _ => buf.extend_from_slice(b"null"),
                    }
                }
                JsonColumn::IntString {
                    values,
                    prefix,
                    suffix,
                } => {
                    buf.push(b'"');
                    write_escaped(buf, prefix);
                    write_i64(buf, values[i]);
                    write_escaped(buf, suffix);
                    buf.push(b'"');
                }
                JsonColumn::IntPair {
                    first,
                    second,
                    prefix,
                    sep,
                } => {
                    buf.push(b'"');
                    write_escaped(buf, prefix);
                    write_i64(buf, first[i]);
                    write_escaped(buf, sep);
                    write_i64(buf, second[i]);
                    buf.push(b'"');
                }
                JsonColumn::Literal(text) => buf.extend_from_slice(text.as_bytes()),
                JsonColumn::Raw { indices, values } => {
                    match usize::try_from(indices[i]).ok().and_then(|k| values.get(k)) {
                        Some(v) => buf.extend_from_slice(v),
                        None => buf.extend_from_slice(b"null"),
                    }
                }
            }
        }
        buf.push(b'}');
    }
}

/// Write `n` rows, one JSON object each, keys in the order of `columns`.
pub fn write_rows(n: usize, columns: &[(&str, JsonColumn<'_>)]) -> Result<JsonRows, ShortColumn> {
    let w = RowWriter::new(n, columns)?;
    let mut out = JsonRows {
        data: Vec::new(),
        offsets: Vec::with_capacity(n + 1),
    };
    out.offsets.push(0);
    for i in 0..n {
        w.write(&mut out.data, i);
        if i == 0 {
            // room for the other rows at about the first one's size
            out.data.reserve(out.data.len().saturating_mul(n) / 8 * 9);
        }
        out.offsets.push(out.data.len());
    }
    Ok(out)
}

/// One piece of a per-row text (a subject, a message id): literal text, a string from a
/// table by index (a negative index or a `None` entry is an error: a subject or an id
/// cannot be null), or an integer in decimal.
#[derive(Debug, Clone, Copy)]
pub enum TextPiece<'a> {
    Lit(&'a str),
    Dict {
        indices: &'a [i64],
        values: &'a [Option<String>],
    },
    Int(&'a [i64]),
}

/// Why a message cannot be built or published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// A column or text piece shorter than the row count.
    Short(String),
    /// A subject NATS cannot publish to (empty token, whitespace, wildcard).
    BadSubject(String),
    /// A text piece names a missing string (negative index, out of range, `None`).
    MissingText { row: usize },
    /// A message index out of range.
    BadIndex(i64),
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::Short(c) => write!(f, "column {c:?} has fewer values than rows"),
            MessageError::BadSubject(s) => write!(f, "cannot publish to subject {s:?}"),
            MessageError::MissingText { row } => {
                write!(f, "row {row}: a subject or message id piece is null")
            }
            MessageError::BadIndex(i) => write!(f, "message index {i} out of range"),
        }
    }
}

impl std::error::Error for MessageError {}

impl From<ShortColumn> for MessageError {
    fn from(e: ShortColumn) -> Self {
        MessageError::Short(e.0)
    }
}

/// True when NATS can publish to `s`: not empty, no empty token, no whitespace or
/// control character, no wildcard (`*`, `>`).
pub fn publishable_subject(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && !s
            .bytes()
            .any(|b| b <= b' ' || b == b'*' || b == b'>' || b == 0x7f)
}

/// Where one message's parts are in [`Messages::data`]: subject, message id, header
/// lines (`Key: value\r\n` each, the id excluded) and payload, one after the other.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: usize,
    subject: u32,
    id: u32,
    headers: u32,
    payload: u32,
}

/// Messages for JetStream, each with a subject, a `Nats-Msg-Id`, optional headers and
/// a payload, in one buffer; written out as NATS `HPUB` commands by [`Messages::encode`]
/// (one PubAck per message) or [`Messages::encode_atomic`] (an ADR-50 atomic batch, one
/// PubAck per batch).
#[derive(Debug, Default, Clone)]
pub struct Messages {
    data: Vec<u8>,
    spans: Vec<Span>,
}

/// Header values may not hold CR or LF (they would end the header line).
fn push_header_text(buf: &mut Vec<u8>, s: &str) {
    buf.extend(
        s.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

fn u32_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Messages {
    /// Number of messages.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no messages.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn part(&self, i: usize, which: usize) -> &[u8] {
        let s = &self.spans[i];
        let lens = [s.subject, s.id, s.headers, s.payload];
        let off: usize = lens[..which].iter().map(|&l| l as usize).sum();
        &self.data[s.start + off..s.start + off + lens[which] as usize]
    }

    /// Subject of message `i`.
    pub fn subject(&self, i: usize) -> &str {
        std::str::from_utf8(self.part(i, 0)).unwrap_or("")
    }

    /// `Nats-Msg-Id` of message `i` (CR and LF replaced by spaces).
    pub fn msg_id(&self, i: usize) -> &str {
        std::str::from_utf8(self.part(i, 1)).unwrap_or("")
    }

    /// Header lines of message `i` besides the id (`Key: value\r\n` each).
    pub fn header_lines(&self, i: usize) -> &[u8] {
        self.part(i, 2)
    }

    /// Payload of message `i`.
    pub fn payload(&self, i: usize) -> &[u8] {
        self.part(i, 3)
    }

    /// Largest payload (to check against the server's `max_payload`).
    pub fn max_payload_len(&self) -> usize {
        self.spans
            .iter()
            .map(|s| s.payload as usize)
            .max()
            .unwrap_or(0)
    }

    /// Append one message. Header keys and values lose any CR / LF.
    pub fn push(
        &mut self,
        subject: &str,
        msg_id: &str,
        headers: &[(&str, &str)],
        payload: &[u8],
    ) -> Result<(), MessageError> {
        if !publishable_subject(subject) {
            return Err(MessageError::BadSubject(subject.to_string()));
        }
        let start = self.data.len();
        self.data.extend_from_slice(subject.as_bytes());
        push_header_text(&mut self.data, msg_id);
        let h0 = self.data.len();
        for (k, v) in headers {
            push_header_text(&mut self.data, k);
            self.data.extend_from_slice(b": ");
            push_header_text(&mut self.data, v);
            self.data.extend_from_slice(b"\r\n");
        }
        let h1 = self.data.len();
        self.data.extend_from_slice(payload);
        self.spans.push(Span {
            start,
            subject: u32_len(subject.len()),
            id: u32_len(h0 - start - subject.len()),
            headers: u32_len(h1 - h0),
            payload: u32_len(payload.len()),
        });
        Ok(())
    }

    /// Keep messages `order` (indices below [`Messages::len`], in that order) without
    /// moving their bytes (those of the messages left out stay in the buffer).
    pub fn select(&mut self, order: &[usize]) {
        self.spans = order
            .iter()
            .filter_map(|&k| self.spans.get(k).copied())
            .collect();
    }

    /// Append messages `rows` of `other` (all of them when `None`), in that order.
    pub fn extend_from(
        &mut self,
        other: &Messages,
        rows: Option<&[i64]>,
    ) -> Result<(), MessageError> {
        let mut copy = |s: &Span| {
            let len = (s.subject + s.id + s.headers + s.payload) as usize;
            let start = self.data.len();
            self.data
                .extend_from_slice(&other.data[s.start..s.start + len]);
            self.spans.push(Span { start, ..*s });
        };
        match rows {
            None => other.spans.iter().for_each(&mut copy),
            Some(rows) => {
                for &r in rows {
                    let s = usize::try_from(r)
                        .ok()
                        .and_then(|k| other.spans.get(k))
                        .ok_or(MessageError::BadIndex(r))?;
                    copy(s);
                }
            }
        }
        Ok(())
    }

    fn index(&self, r: i64) -> Result<usize, MessageError> {
        usize::try_from(r)
            .ok()
            .filter(|&k| k < self.spans.len())
            .ok_or(MessageError::BadIndex(r))
    }

    fn write_hpub(&self, out: &mut Vec<u8>, i: usize, reply: &[&[u8]], extra: &[u8]) {
        let id = self.part(i, 1);
        let lines = self.part(i, 2);
        let payload = self.part(i, 3);
        // NATS/1.0\r\n Nats-Msg-Id: <id>\r\n <extra> <lines> \r\n
        let hlen = 10 + 13 + id.len() + 2 + extra.len() + lines.len() + 2;
        out.extend_from_slice(b"HPUB ");
        out.extend_from_slice(self.part(i, 0));
        out.push(b' ');
        if !reply.is_empty() {
            reply.iter().for_each(|p| out.extend_from_slice(p));
            out.push(b' ');
        }
        write_i64(out, hlen as i64);
        out.push(b' ');
        write_i64(out, (hlen + payload.len()) as i64);
        out.extend_from_slice(b"\r\nNATS/1.0\r\nNats-Msg-Id: ");
        out.extend_from_slice(id);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(extra);
        out.extend_from_slice(lines);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
    }

    /// `HPUB` commands of messages `rows` (all when `None`), the `k`-th of them with the
    /// reply subject `<reply_prefix><k>`: one PubAck per message.
    pub fn encode(
        &self,
        rows: Option<&[i64]>,
        reply_prefix: &[u8],
    ) -> Result<Vec<u8>, MessageError> {
        let mut out = Vec::with_capacity(self.data.len() + self.len() * (64 + reply_prefix.len()));
        let mut num = itoa::Buffer::new();
        let mut one = |out: &mut Vec<u8>, k: usize, i: usize| {
            let n = num.format(k).as_bytes().to_vec();
            self.write_hpub(out, i, &[reply_prefix, &n], b"");
        };
        match rows {
            None => (0..self.len()).for_each(|i| one(&mut out, i, i)),
            Some(rows) => {
                for (k, &r) in rows.iter().enumerate() {
                    let i = self.index(r)?;
                    one(&mut out, k, i);
                }
            }
        }
        Ok(out)
    }

    /// One ADR-50 atomic batch of messages `rows` (at most the server's batch limit,
    /// 1,000 by default, all to one stream): headers `Nats-Batch-Id: <batch_id>`,
    /// `Nats-Batch-Sequence: 1..n`, `Nats-Batch-Commit: 1` on the last message, which
    /// alone carries the reply subject `reply` (the batch's one PubAck).
    pub fn encode_atomic(
        &self,
        rows: &[i64],
        batch_id: &str,
        reply: &[u8],
    ) -> Result<Vec<u8>, MessageError> {
        let mut out = Vec::with_capacity(rows.len() * 96 + 64);
        let mut extra = Vec::with_capacity(96);
        for (k, &r) in rows.iter().enumerate() {
            let i = self.index(r)?;
            extra.clear();
            extra.extend_from_slice(b"Nats-Batch-Id: ");
            push_header_text(&mut extra, batch_id);
            extra.extend_from_slice(b"\r\nNats-Batch-Sequence: ");
            write_i64(&mut extra, k as i64 + 1);
            extra.extend_from_slice(b"\r\n");
            if k + 1 == rows.len() {
                extra.extend_from_slice(b"Nats-Batch-Commit: 1\r\n");
                self.write_hpub(&mut out, i, &[reply], &extra);
            } else {
                self.write_hpub(&mut out, i, &[], &extra);
            }
        }
        Ok(out)
    }

    /// Message indices grouped by the first two tokens of their subject (`tid.readings`,
    /// `tid.dlq`: one stream each in tidstream's layout), order kept within a group,
    /// cut into groups of at most `max_msgs`.
    pub fn atomic_groups(&self, max_msgs: usize) -> Vec<Vec<i64>> {
        let max_msgs = max_msgs.max(1);
        let mut roots: Vec<(&[u8], Vec<Vec<i64>>)> = Vec::new();
        for i in 0..self.len() {
            let s = self.part(i, 0);
            let root = match s.iter().position(|&b| b == b'.') {
                Some(a) => match s[a + 1..].iter().position(|&b| b == b'.') {
                    Some(b) => &s[..a + 1 + b],
                    None => s,
                },
                None => s,
            };
            let g = match roots.iter().position(|(r, _)| *r == root) {
                Some(g) => g,
                None => {
                    roots.push((root, vec![Vec::new()]));
                    roots.len() - 1
                }
            };
            let chunks = &mut roots[g].1;
            if chunks.last().is_some_and(|c| c.len() >= max_msgs) {
                chunks.push(Vec::new());
            }
            if let Some(c) = chunks.last_mut() {
                c.push(i as i64);
            }
        }
        roots.into_iter().flat_map(|(_, c)| c).collect()
    }
}

fn write_text(buf: &mut Vec<u8>, pieces: &[TextPiece<'_>], i: usize) -> Result<(), MessageError> {
    for p in pieces {
        match *p {
            TextPiece::Lit(t) => buf.extend_from_slice(t.as_bytes()),
            TextPiece::Int(v) => write_i64(buf, v[i]),
            TextPiece::Dict { indices, values } => {
                match usize::try_from(indices[i]).ok().and_then(|k| values.get(k)) {
                    Some(Some(s)) => buf.extend_from_slice(s.as_bytes()),
                    _ => return Err(MessageError::MissingText { row: i }),
                }
            }
        }
    }
    Ok(())
}

fn pieces_len_ok(pieces: &[TextPiece<'_>], n: usize) -> bool {
    pieces.iter().all(|p| match p {
        TextPiece::Lit(_) => true,
        TextPiece::Int(v) => v.len() >= n,
        TextPiece::Dict { indices, .. } => indices.len() >= n,
    })
}

/// `n` messages whose payloads are the JSON rows of [`write_rows`] and whose subjects
/// and message ids are built from `subject` and `msg_id` pieces, row by row.
pub fn write_messages(
    n: usize,
    columns: &[(&str, JsonColumn<'_>)],
    subject: &[TextPiece<'_>],
    msg_id: &[TextPiece<'_>],
) -> Result<Messages, MessageError> {
    if !pieces_len_ok(subject, n) {
        return Err(MessageError::Short("subject".into()));
    }
    if !pieces_len_ok(msg_id, n) {
        return Err(MessageError::Short("msg_id".into()));
    }
    let w = RowWriter::new(n, columns)?;
    let mut out = Messages {
        data: Vec::new(),
        spans: Vec::with_capacity(n),
    };
    // Subject, id and JSON written in place, message after message (as `push` lays
    // them out).
    let data = &mut out.data;
    for i in 0..n {
        let start = data.len();
        write_text(data, subject, i)?;
        let subj = std::str::from_utf8(&data[start..]).unwrap_or("");
        if !publishable_subject(subj) {
            return Err(MessageError::BadSubject(subj.to_string()));
        }
        let id0 = data.len();
        write_text(data, msg_id, i)?;
        for b in &mut data[id0..] {
            if *b == b'\r' || *b == b'\n' {
                *b = b' '; // as `push` writes ids
            }
        }
        let p0 = data.len();
        w.write(data, i);
        out.spans.push(Span {
            start,
            subject: u32_len(id0 - start),
            id: u32_len(p0 - id0),
            headers: 0,
            payload: u32_len(data.len() - p0),
        });
        if i == 0 {
            // room for the other messages at about the first one's size
            data.reserve(data.len().saturating_mul(n) / 8 * 9);
        }
    }
    Ok(out)
}

fn write_i64(buf: &mut Vec<u8>, v: i64) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// `v` (0 ≤ v < 10^width) with leading zeros.
fn write_padded(buf: &mut Vec<u8>, v: u32, width: usize) {
    let mut tmp = [b'0'; 6];
    let mut x = v;
    for i in (0..width).rev() {
        tmp[i] = b'0' + (x % 10) as u8;
        x /= 10;
    }
    buf.extend_from_slice(&tmp[..width]);
}

/// Shortest round-trip decimal with a `.0` on integral values, as orjson writes floats:
/// an exponent below 1e-5 and from 1e16 (`1.5e-7`, `1e+16`); NaN and infinities as `null`.
pub fn write_f64(buf: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        buf.extend_from_slice(b"null");
        return;
    }
    let a = v.abs();
    if a != 0.0 && !(1e-5..1e16).contains(&a) {
        let s = format!("{v:e}"); // shortest digits: "1.5e-7", "1e16"
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        buf.extend_from_slice(mant.as_bytes());
        buf.push(b'e');
        if !exp.starts_with('-') {
            buf.push(b'+');
        }
        buf.extend_from_slice(exp.as_bytes());
        return;
    }
    let mut b = zmij::Buffer::new();
    let s = b.format_finite(v);
    if !s.contains('e') {
        buf.extend_from_slice(s.as_bytes());
        if !s.contains('.') {
            buf.extend_from_slice(b".0");
        }
        return;
    }
    let start = buf.len();
    let _ = write!(buf, "{v}");
    if !buf[start..].contains(&b'.') {
        buf.extend_from_slice(b".0");
    }
}

/// `s` as a JSON string value (quoted, escaped as orjson escapes), or `null`.
pub fn json_string(s: Option<&str>) -> Box<[u8]> {
    let mut buf = Vec::new();
    match s {
        Some(s) => write_str(&mut buf, s),
        None => buf.extend_from_slice(b"null"),
    }
    buf.into_boxed_slice()
}

/// `v` as a JSON number as [`write_f64`] writes it (`null` for NaN and infinities).
pub fn json_f64(v: f64) -> Box<[u8]> {
    let mut buf = Vec::new();
    write_f64(&mut buf, v);
    buf.into_boxed_slice()
}

/// `s` as a JSON string (quoted, escaped as orjson escapes it) appended to `buf`.
pub fn write_json_str(buf: &mut Vec<u8>, s: &str) {
    write_str(buf, s);
}

fn write_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    write_escaped(buf, s);
    buf.push(b'"');
}

fn write_escaped(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            let _ = write!(buf, "\\u{b:04x}");
        } else {
            buf.extend_from_slice(esc);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `"YYYY-MM-DDTHH:MM:SS.ffffffZ"` (quoted) for nanoseconds since the epoch, truncated to µs
/// towards the past (as numpy's `datetime64[ns]` → `[us]`).
pub fn write_rfc3339_us(buf: &mut Vec<u8>, ns: i64) {
    let us = ns.div_euclid(1000);
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        let _ = write!(
            buf,
            "\"{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z\"",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        );
        return;
    }
    // The common case without the formatting machinery (~5x faster).
    buf.push(b'"');
    write_padded(buf, y as u32, 4);
    buf.push(b'-');
    write_padded(buf, m, 2);
    buf.push(b'-');
    write_padded(buf, d, 2);
    buf.push(b'T');
    write_padded(buf, (sod / 3600) as u32, 2);
    buf.push(b':');
    write_padded(buf, ((sod / 60) % 60) as u32, 2);
    buf.push(b':');
    write_padded(buf, (sod % 60) as u32, 2);
    buf.push(b'.');
    write_padded(buf, frac as u32, 6);
    buf.extend_from_slice(b"Z\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(col: JsonColumn<'_>) -> String {
        String::from_utf8(write_rows(1, &[("k", col)]).unwrap().row(0).to_vec()).unwrap()
    }

    #[test]
    fn floats_match_python_repr() {
        let cases = [
            (3.0, "3.0"),
            (-87.5, "-87.5"),
            (0.1, "0.1"),
            (1234.5678, "1234.5678"),
            (0.0001, "0.0001"),
            (1e-5, "0.00001"),
            (2.5e-5, "0.000025"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "1e-6"),
            (1e16, "1e+16"),
            (6.02e23, "6.02e+23"),
            (9_999_999_999_999_998.0, "9999999999999998.0"),
            (-0.0, "-0.0"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
            (0.0, "0.0"),
        ];
        for (v, want) in cases {
            assert_eq!(
                one(JsonColumn::F64(&[v])),
                format!("{{\"k\":{want}}}"),
                "{v}"
            );
        }
    }

    #[test]
    fn timestamps_are_rfc3339_microseconds() {
        let ns = [1_767_323_045_678_901_234_i64, 0, -1];
        let r = write_rows(
            3,
            &[(
                "t",
                JsonColumn::TimestampNs {
                    values: &ns,
                    valid: None,
                },
            )],
        )
        .unwrap();
        assert_eq!(r.row(0), br#"{"t":"2026-01-02T03:04:05.678901Z"}"#);
        assert_eq!(r.row(1), br#"{"t":"1970-01-01T00:00:00.000000Z"}"#);
        assert_eq!(r.row(2), br#"{"t":"1969-12-31T23:59:59.999999Z"}"#);
        // Leap day and a far year.
        let leap = 1_709_164_800_000_000_000_i64; // 2024-02-29T00:00:00Z
        assert_eq!(
            one(JsonColumn::TimestampNs {
                values: &[leap],
                valid: None
            }),
            r#"{"k":"2024-02-29T00:00:00.000000Z"}"#
        );
    }

    #[test]
    fn every_kind_and_nulls() {
        let f = [1.5, f64::NAN];
        let i = [7_i64, 8];
        let valid = [true, false];
        let b = [1_i8, -1];
        let dict = [Some("Mont\"béliard".to_string()), None];
        let idx = [0_i64, 1];
        let seq = [42_i64, 43];
        let r = write_rows(
            2,
            &[
                (
                    "id",
                    JsonColumn::IntString {
                        values: &seq,
                        prefix: "r:",
                        suffix: ":0",
                    },
                ),
                ("f", JsonColumn::F64(&f)),
                (
                    "i",
                    JsonColumn::I64 {
                        values: &i,
                        valid: Some(&valid),
                    },
                ),
                ("b", JsonColumn::Bool(&b)),
                (
                    "s",
                    JsonColumn::Dict {
                        indices: &idx,
                        values: &dict,
                    },
                ),
                ("stored", JsonColumn::Literal("false")),
                (
                    "pair",
                    JsonColumn::IntPair {
                        first: &seq,
                        second: &i,
                        prefix: "r:",
                        sep: ":",
                    },
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(r.row(0)).unwrap(),
            r#"{"id":"r:42:0","f":1.5,"i":7,"b":true,"s":"Mont\"béliard","stored":false,"pair":"r:42:7"}"#
        );
        assert_eq!(
            std::str::from_utf8(r.row(1)).unwrap(),
            r#"{"id":"r:43:0","f":null,"i":null,"b":null,"s":null,"stored":false,"pair":"r:43:8"}"#
        );
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn control_characters_are_escaped() {
        let dict = [Some("a\u{1}\n\t\\".to_string())];
        assert_eq!(
            one(JsonColumn::Dict {
                indices: &[0],
                values: &dict
            }),
            r#"{"k":"a\u0001\n\t\\"}"#
        );
    }

    #[test]
    fn short_column_is_an_error() {
        let e = write_rows(3, &[("x", JsonColumn::F64(&[1.0]))]).unwrap_err();
        assert_eq!(e, ShortColumn("x".into()));
    }

    #[test]
    fn messages_encode_as_hpub() {
        let mut m = Messages::default();
        m.push("a.b", "id:1", &[("K", "v\r\nx")], b"{}").unwrap();
        m.push("a.c", "id:2", &[], b"xy").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.subject(0), "a.b");
        assert_eq!(m.msg_id(1), "id:2");
        assert_eq!(m.header_lines(0), b"K: v  x\r\n");
        let out = m.encode(None, b"_I.1.").unwrap();
        let h0 = "NATS/1.0\r\nNats-Msg-Id: id:1\r\nK: v  x\r\n\r\n";
        let h1 = "NATS/1.0\r\nNats-Msg-Id: id:2\r\n\r\n";
        let want = format!(
            "HPUB a.b _I.1.0 {} {}\r\n{h0}{{}}\r\nHPUB a.c _I.1.1 {} {}\r\n{h1}xy\r\n",
            h0.len(),
            h0.len() + 2,
            h1.len(),
            h1.len() + 2
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
        // rows: the k-th selected message gets reply index k
        let out = m.encode(Some(&[1]), b"r.").unwrap();
        assert!(String::from_utf8(out).unwrap().starts_with("HPUB a.c r.0 "));
        assert_eq!(
            m.encode(Some(&[2]), b"r.").unwrap_err(),
            MessageError::BadIndex(2)
        );
    }

    #[test]
    fn atomic_batches_carry_batch_headers_and_one_reply() {
        let mut m = Messages::default();
        for i in 0..3 {
            m.push("s.x", &format!("m{i}"), &[], b"p").unwrap();
        }
        let out = String::from_utf8(m.encode_atomic(&[0, 2], "b7", b"R.1").unwrap()).unwrap();
        let cmds: Vec<&str> = out.split("HPUB ").filter(|c| !c.is_empty()).collect();
        assert_eq!(cmds.len(), 2);
        assert!(cmds[0].starts_with("s.x "));
        assert!(cmds[0]
            .contains("Nats-Msg-Id: m0\r\nNats-Batch-Id: b7\r\nNats-Batch-Sequence: 1\r\n\r\n"));
        assert!(!cmds[0].contains("Commit"));
        assert!(cmds[1].starts_with("s.x R.1 "));
        assert!(cmds[1].contains("Nats-Msg-Id: m2\r\nNats-Batch-Id: b7\r\nNats-Batch-Sequence: 2\r\nNats-Batch-Commit: 1\r\n\r\np\r\n"));
        // declared lengths match the bytes that follow
        for c in cmds {
            let (line, rest) = c.split_once("\r\n").unwrap();
            let f: Vec<&str> = line.split(' ').collect();
            let (h, t): (usize, usize) = (
                f[f.len() - 2].parse().unwrap(),
                f[f.len() - 1].parse().unwrap(),
            );
            assert_eq!(&rest[h - 4..h], "\r\n\r\n");
            assert_eq!(rest.len(), t + 2);
        }
    }

    #[test]
    fn atomic_groups_by_subject_root_in_order() {
        let mut m = Messages::default();
        for s in ["t.r.a", "t.d.x", "t.r.b", "t.r.c", "t.d.y", "t.r.d"] {
            m.push(s, "i", &[], b"").unwrap();
        }
        assert_eq!(m.atomic_groups(2), vec![vec![0, 2], vec![3, 5], vec![1, 4]]);
        assert_eq!(m.atomic_groups(1000), vec![vec![0, 2, 3, 5], vec![1, 4]]);
    }

    #[test]
    fn bad_subjects_are_refused() {
        let mut m = Messages::default();
        for s in ["", "a b", "a.*", "a.>", ".a", "a.", "a..b", "a\tb"] {
            assert_eq!(
                m.push(s, "i", &[], b""),
                Err(MessageError::BadSubject(s.into())),
                "{s:?}"
            );
        }
        assert!(m.is_empty());
    }

    #[test]
    fn messages_from_columns_and_extend() {
        let seq = [5_i64, 6];
        let idx = [0_i64, 1];
        let subj = [
            Some("t.readings.1.a".to_string()),
            Some("t.readings.2.b".to_string()),
        ];
        let cols = [(
            "raw_seq",
            JsonColumn::I64 {
                values: &seq,
                valid: None,
            },
        )];
        let m = write_messages(
            2,
            &cols,
            &[TextPiece::Dict {
                indices: &idx,
                values: &subj,
            }],
            &[
                TextPiece::Lit("r:"),
                TextPiece::Int(&seq),
                TextPiece::Lit(":0"),
            ],
        )
        .unwrap();
        assert_eq!(m.subject(1), "t.readings.2.b");
        assert_eq!(m.msg_id(0), "r:5:0");
        assert_eq!(m.payload(1), br#"{"raw_seq":6}"#);
        let mut all = Messages::default();
        all.push("x.y", "d:1", &[("Tid-Reason", "r")], b"dl")
            .unwrap();
        all.extend_from(&m, Some(&[1, 0])).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all.msg_id(1), "r:6:0");
        assert_eq!(all.payload(2), br#"{"raw_seq":5}"#);
        assert_eq!(all.header_lines(0), b"Tid-Reason: r\r\n");
        let bad = [-1_i64, 0];
        let e = write_messages(
            2,
            &cols,
            &[TextPiece::Dict {
                indices: &bad,
                values: &subj,
            }],
            &[],
        );
        assert_eq!(e.unwrap_err(), MessageError::MissingText { row: 0 });
    }

    #[test]
    fn output_parses_as_json() {
        let f = [0.1, 2.0, -3.25e-9, 6.02e23];
        let r = write_rows(4, &[("x", JsonColumn::F64(&f))]).unwrap();
        for (k, want) in f.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_slice(r.row(k)).unwrap();
            assert_eq!(v["x"].as_f64().unwrap(), *want);
        }
    }
}
