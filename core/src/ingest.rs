//! The ingest step (`python/tidstream/flow/ingest.py`, `Ingestor`) for a whole batch of
//! raw uplinks in one call: subject routing, envelope parsing (one call per format),
//! registry join, plausibility of times, frame decoding (one call per model), fill
//! ratio, the frame-counter guard, the reading messages (JSON, subject, id) of every
//! accepted frame and of the stored readings it carries ([`ingest_batch`]), then the
//! dead letters and the output per raw partition ([`write_output`]).
//!
//! What stays in Python is the `Tid-*` headers of raw-format frames (parsed by the
//! caller with Python's `int()` / `datetime.fromisoformat`, see [`RawFields`]). The
//! kernel lists the output in order as [`Op`]s, and [`write_output`] writes it, so the
//! output (per raw partition: which messages, in which order, byte for byte) is exactly
//! the one of the per-frame Python step it replaces (tests/ingest_reference.py).
//!
//! Order of the output, as in the Python step: dead letters as they are found (size and
//! subject, then per envelope format in first-seen order, then the registry join and the
//! receive time, then per model in first-seen order the frame errors, device times and
//! frame counters), the accepted readings of a partition held back until the end of the
//! batch (or until a frame of that partition carries stored readings).

use std::borrow::Cow;
use std::collections::HashMap;

use crate::codec::{FlatPayloads, FportSource, PayloadSource, Registry};
use crate::envelope::{decode_uplinks, Format, UplinkColumns};
use crate::fill::fill_ratio;
use crate::json_rows::{
    json_f64, json_string, write_json_str, write_messages, write_rfc3339_us, JsonColumn,
    MessageError, Messages, TextPiece,
};
use crate::reading::ReadingColumns;

/// The registry as the kernel reads it (built once per ingestor): one entry per row.
#[derive(Debug, Clone, Default)]
pub struct IngestIndex {
    /// Device id -> row (the last row of a repeated id, as a Python dict built in order).
    pub rows: HashMap<String, usize>,
    /// Model name per row (`None`: no model).
    pub model: Vec<Option<String>>,
    pub depth_mm: Vec<f64>,
    pub offset_mm: Vec<f64>,
    pub lat: Vec<f64>,
    pub lon: Vec<f64>,
    pub device_id: Vec<Option<String>>,
    pub container_id: Vec<Option<String>>,
    pub container_kind: Vec<Option<String>>,
    pub stream: Vec<Option<String>>,
    pub commune_insee: Vec<Option<String>>,
    pub commune: Vec<Option<String>>,
    /// Readings subject of the row's device (`None` when its id or commune is null).
    pub subject: Vec<Option<String>>,
    /// The row's values as JSON texts, rendered once by [`IngestIndex::render`]: device
    /// id, model, container id and kind, stream, commune code and name, lat, lon.
    pub json: [Vec<Box<[u8]>>; 9],
}

impl IngestIndex {
    /// Render [`IngestIndex::json`] from the other fields (call after setting them).
    pub fn render(&mut self) {
        let s = |v: &[Option<String>]| v.iter().map(|x| json_string(x.as_deref())).collect();
        let f = |v: &[f64]| v.iter().map(|&x| json_f64(x)).collect();
        self.json = [
            s(&self.device_id),
            s(&self.model),
            s(&self.container_id),
            s(&self.container_kind),
            s(&self.stream),
            s(&self.commune_insee),
            s(&self.commune),
            f(&self.lat),
            f(&self.lon),
        ];
    }
}

/// The plausible times of an uplink (`TimeWindow` in `flow/guards.py`); `future_ns` 0
/// turns the future checks off.
#[derive(Debug, Clone, Copy)]
pub struct TimeWindow {
    pub earliest_ns: i64,
    pub future_ns: i64,
}

impl TimeWindow {
    /// Why the times of an uplink are implausible (`TimeWindow.problem`, same texts);
    /// exact integer arithmetic (no wrap-around).
    pub fn problem(
        &self,
        received_ns: i128,
        stored_ns: i64,
        measured_ns: &[Option<i128>],
    ) -> Option<String> {
        let (recv, fut) = (received_ns, i128::from(self.future_ns));
        if recv < i128::from(self.earliest_ns) {
            return Some(format!("received_at {received_ns} ns is before 2015-01-01"));
        }
        let secs = fut.div_euclid(1_000_000_000);
        if fut != 0 && recv > i128::from(stored_ns) + fut {
            return Some(format!(
                "received_at is more than {secs} s after the broker stored the message"
            ));
        }
        for t in measured_ns.iter().flatten() {
            if *t < i128::from(self.earliest_ns) {
                return Some(format!("measured_at {t} ns is before 2015-01-01"));
            }
            if fut != 0 && *t > recv + fut {
                return Some(format!(
                    "measured_at is more than {secs} s after received_at"
                ));
            }
        }
        None
    }
}

/// A counter below this after a higher one is a reset (rejoin), not a replay.
pub const FCNT_RESET_BELOW: i64 = 16;

/// Last accepted `(fcnt, raw_seq)` per device (`FcntGuard` in `flow/guards.py`).
#[derive(Debug, Clone, Default)]
pub struct FcntState {
    pub last: HashMap<String, (i64, i64)>,
}

impl FcntState {
    /// `None` to accept the frame (and remember it), else why it is a regression.
    pub fn check(&mut self, device: &str, fcnt: Option<i64>, raw_seq: i64) -> Option<String> {
        let fcnt = fcnt?;
        if let Some(v) = self.last.get_mut(device) {
            let (last_fcnt, last_seq) = *v;
            if raw_seq <= last_seq {
                return None; // the flow's own replay after a restart: decided before
            }
            if fcnt <= last_fcnt && !(fcnt < FCNT_RESET_BELOW && FCNT_RESET_BELOW <= last_fcnt) {
                return Some(format!(
                    "frame counter {fcnt} is not above the last accepted {last_fcnt} (raw seq {last_seq})"
                ));
            }
            *v = (fcnt, raw_seq);
            return None;
        }
        self.last.insert(device.to_string(), (fcnt, raw_seq));
        None
    }
}

/// The `Tid-*` headers of a raw-format frame, parsed by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFields {
    /// FPort, frame counter (both checked in range) and the receive time in ns (`None`
    /// or 0: the broker's store time is used; exact, beyond int64 too: it is checked
    /// against the time window as given, and written clamped to int64).
    Ok {
        fport: Option<i64>,
        fcnt: Option<i64>,
        received_ns: Option<i128>,
    },
    /// A header is not an integer in range: a `wrong_type` dead letter.
    Bad,
}

/// One raw message of the batch.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Index of its raw partition (the caller's table).
    pub part: u32,
    pub seq: i64,
    pub subject: &'a str,
    pub data: &'a [u8],
    pub stored_ns: i64,
    /// Raw-format frames with a valid DevEUI token only ([`needs_raw_fields`]).
    pub raw: Option<RawFields>,
}

/// One step of the output, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Frame `frame` becomes a dead letter.
    Dead {
        frame: usize,
        reason: String,
        error: String,
        stage: &'static str,
        offset: Option<i64>,
        device: Option<String>,
    },
    /// Messages `rows` of [`IngestOutput::readings`] go to partition `part`, in order (a
    /// frame's stored readings right after its own).
    Readings { part: u32, rows: Vec<i64> },
}

/// What [`ingest_batch`] hands back.
#[derive(Debug, Default)]
pub struct IngestOutput {
    /// The reading message of every decoded frame (accepted or not), in decoded order,
    /// then those of the stored readings they carry; [`Op::Readings`] says which of them
    /// are published where.
    pub readings: Messages,
    pub ops: Vec<Op>,
    /// Readings accepted, stored readings included.
    pub readings_out: usize,
}

/// Why a batch cannot be processed at all (a bug or a bad registry, never bad input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// A registry row names a model the codec registry does not know.
    UnknownModel(String),
    /// The reading messages could not be built (e.g. an unpublishable subject).
    Message(MessageError),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::UnknownModel(m) => write!(
                f,
                "unknown model {m:?}; known models: {}",
                Registry::global().names().join(", ")
            ),
            IngestError::Message(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for IngestError {}

/// Envelope format token of a raw subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fmt {
    Ttn,
    Chirpstack,
    Raw,
}

/// `(format token, device token)` of `<prefix tokens>.<format>.<device>` (`prefix_tokens`
/// tokens before them: 3 for `tid.raw.<p>`), as `str.split(".")` would cut it.
pub fn split_subject(subject: &str, prefix_tokens: usize) -> Option<(&str, &str)> {
    let mut it = subject.split('.');
    let mut fmt = None;
    let mut dev = None;
    let mut n = 0usize;
    for t in it.by_ref() {
        if n == prefix_tokens {
            fmt = Some(t);
        } else if n == prefix_tokens + 1 {
            dev = Some(t);
        }
        n += 1;
        if n > prefix_tokens + 2 {
            return None;
        }
    }
    if n != prefix_tokens + 2 {
        return None;
    }
    Some((fmt?, dev?))
}

fn format_of(token: &str) -> Option<Fmt> {
    match token {
        "ttn" => Some(Fmt::Ttn),
        "chirpstack" => Some(Fmt::Chirpstack),
        "raw" => Some(Fmt::Raw),
        _ => None,
    }
}

/// True when `dev` matches `^[0-9a-fA-F]{16}$` as Python's `re.match` reads it (`$` also
/// matches before one final newline).
pub fn is_dev_eui(dev: &str) -> bool {
    let b = dev.strip_suffix('\n').unwrap_or(dev).as_bytes();
    b.len() == 16 && b.iter().all(u8::is_ascii_hexdigit)
}

/// True when frame `subject` of `len` bytes reaches the raw-format header parse (so the
/// caller must give its [`RawFields`]).
pub fn needs_raw_fields(subject: &str, len: usize, prefix_tokens: usize, max_bytes: usize) -> bool {
    len <= max_bytes
        && matches!(split_subject(subject, prefix_tokens), Some(("raw", dev)) if is_dev_eui(dev))
}

/// An uplink whose envelope parsed.
struct Up<'a> {
    frame: usize,
    /// Device id as the registry names it (lower case; borrowed from the envelopes).
    dev: Cow<'a, str>,
    /// Receive time in ns, clamped to int64 (written in the reading).
    recv: i64,
    /// The same, exact (a raw frame's header may name a time beyond int64 ns).
    recv_exact: i128,
    fport: Option<i64>,
    fcnt: Option<i64>,
    payload: &'a [u8],
    rssi: Option<f64>,
    snr: Option<f64>,
}

/// Payloads borrowed from the caller.
struct Slices<'a>(Vec<&'a [u8]>);

impl PayloadSource for Slices<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, i: usize) -> Option<&[u8]> {
        self.0.get(i).copied()
    }
}

/// The time a Python `datetime` of `ms` (UTC) gives as `int(dt.timestamp() * 1e9)`
/// (float seconds, then float nanoseconds truncated: what the Python step compared).
fn py_timestamp_ns(ms: i64) -> i128 {
    let us = i128::from(ms) * 1000;
    let secs = us as f64 / 1e6;
    (secs * 1e9).trunc() as i128
}

/// Output order of the held-back readings: partitions in (re)insertion order, as a
/// Python dict from which a key is popped and later added again.
#[derive(Default)]
struct Pending(Vec<(u32, Vec<i64>)>);

impl Pending {
    fn push(&mut self, part: u32, row: i64) {
        match self.0.iter_mut().find(|(p, _)| *p == part) {
            Some((_, rows)) => rows.push(row),
            None => self.0.push((part, vec![row])),
        }
    }
    fn pop(&mut self, part: u32) -> Option<Vec<i64>> {
        let i = self.0.iter().position(|(p, _)| *p == part)?;
        Some(self.0.remove(i).1)
    }
}

/// Run the ingest step's common path over `frames` (see the module documentation).
/// `prefix_tokens`: tokens of a raw subject before its format token; `max_bytes`:
/// bigger messages are `oversized`. Malformed input never fails the batch: it becomes
/// [`Op::Dead`] entries.
pub fn ingest_batch(
    index: &IngestIndex,
    fcnt: &mut FcntState,
    window: TimeWindow,
    frames: &[Frame<'_>],
    prefix_tokens: usize,
    max_bytes: usize,
) -> Result<IngestOutput, IngestError> {
    let mut out = IngestOutput::default();
    let ops = &mut out.ops;
    let dead = |ops: &mut Vec<Op>, frame, reason: &str, error: String, stage, offset, device| {
        ops.push(Op::Dead {
            frame,
            reason: reason.to_string(),
            error,
            stage,
            offset,
            device,
        })
    };

    // 1. size and subject; frames grouped by format, formats in first-seen order ----------
    let mut groups: Vec<(Fmt, Vec<usize>)> = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        if f.data.len() > max_bytes {
            let e = format!("{} bytes > {max_bytes}", f.data.len());
            dead(ops, i, "oversized", e, "size", None, None);
            continue;
        }
        let Some(fmt) = split_subject(f.subject, prefix_tokens).and_then(|(t, _)| format_of(t))
        else {
            let e = format!("subject {} has no known format token", f.subject);
            dead(ops, i, "unknown_format", e, "envelope", None, None);
            continue;
        };
        match groups.iter_mut().find(|(g, _)| *g == fmt) {
            Some((_, v)) => v.push(i),
            None => groups.push((fmt, vec![i])),
        }
    }

    // 2. envelopes, one parse per format (dead letters first, in group order) ------------
    let mut parsed: Vec<Option<UplinkColumns>> = Vec::with_capacity(groups.len());
    for (fmt, idx) in &groups {
        let format = match fmt {
            Fmt::Raw => {
                for &i in idx {
                    let f = &frames[i];
                    let dev = split_subject(f.subject, prefix_tokens).map_or("", |s| s.1);
                    if !is_dev_eui(dev) {
                        let e = format!("device token {} is not a DevEUI", py_repr(dev));
                        dead(ops, i, "invalid_dev_eui", e, "envelope", None, None);
                    } else if !matches!(f.raw, Some(RawFields::Ok { .. })) {
                        let e =
                            "Tid-FPort / Tid-FCnt header is not an integer in 0..255 / 0..2^32-1";
                        let dev = Some(dev.to_ascii_lowercase());
                        dead(ops, i, "wrong_type", e.to_string(), "envelope", None, dev);
                    }
                }
                parsed.push(None);
                continue;
            }
            Fmt::Ttn => Format::TtnV3,
            Fmt::Chirpstack => Format::ChirpstackV4,
        };
        let src = Slices(idx.iter().map(|&i| frames[i].data).collect());
        let c = decode_uplinks(format, &src);
        if c.error_count > 0 {
            for (k, &i) in idx.iter().enumerate() {
                if !c.ok.get(k) {
                    dead(
                        ops,
                        i,
                        c.error_kind.get(k).unwrap_or(""),
                        c.error.get(k).unwrap_or("").to_string(),
                        "envelope",
                        c.error_offset.get(k).map(i64::from),
                        None,
                    );
                }
            }
        }
        parsed.push(Some(c));
    }
    // the uplinks that parsed, in group order
    let mut ups: Vec<Up<'_>> = Vec::with_capacity(frames.len());
    for ((_, idx), c) in groups.iter().zip(&parsed) {
        let Some(c) = c else {
            for &i in idx {
                let f = &frames[i];
                let dev = split_subject(f.subject, prefix_tokens).map_or("", |s| s.1);
                if let (
                    true,
                    Some(RawFields::Ok {
                        fport,
                        fcnt,
                        received_ns,
                    }),
                ) = (is_dev_eui(dev), f.raw)
                {
                    let exact = received_ns
                        .filter(|t| *t != 0)
                        .unwrap_or(i128::from(f.stored_ns));
                    ups.push(Up {
                        frame: i,
                        dev: Cow::Owned(dev.to_ascii_lowercase()),
                        recv: i64::try_from(exact).unwrap_or(if exact < 0 {
                            i64::MIN
                        } else {
                            i64::MAX
                        }),
                        recv_exact: exact,
                        fport,
                        fcnt,
                        payload: f.data,
                        rssi: None,
                        snr: None,
                    });
                }
            }
            continue;
        };
        for (k, &i) in idx.iter().enumerate() {
            if !c.ok.get(k) {
                continue;
            }
            let a = usize::try_from(c.payload_offsets[k]).unwrap_or(0);
            let b = usize::try_from(c.payload_offsets[k + 1]).unwrap_or(0);
            let recv = c
                .received_at_ns
                .get(k)
                .filter(|t| *t != 0)
                .unwrap_or(frames[i].stored_ns);
            ups.push(Up {
                frame: i,
                dev: Cow::Borrowed(c.dev_eui.get(k).unwrap_or("")),
                recv,
                recv_exact: i128::from(recv),
                fport: c.fport.get(k).map(i64::from),
                fcnt: c.fcnt.get(k),
                payload: c.payload_data.get(a..b).unwrap_or(&[]),
                rssi: c.rssi.get(k),
                snr: c.snr.get(k),
            });
        }
    }

    // 3. registry join and receive time; uplinks grouped by model (first-seen order) -----
    let mut reg_of: Vec<usize> = vec![0; ups.len()];
    let mut models: Vec<(&str, Vec<usize>)> = Vec::new();
    for (j, u) in ups.iter().enumerate() {
        let Some(&r) = (!u.dev.is_empty())
            .then(|| index.rows.get(u.dev.as_ref()))
            .flatten()
        else {
            let e = format!("device {} is not in the registry", u.dev);
            dead(
                ops,
                u.frame,
                "unknown_device",
                e,
                "registry",
                None,
                Some(u.dev.to_string()),
            );
            continue;
        };
        let f = &frames[u.frame];
        if let Some(why) = window.problem(u.recv_exact, f.stored_ns, &[]) {
            dead(
                ops,
                u.frame,
                "implausible_time",
                why,
                "envelope",
                None,
                Some(u.dev.to_string()),
            );
            continue;
        }
        reg_of[j] = r;
        let model = index.model.get(r).and_then(|m| m.as_deref()).unwrap_or("");
        match models.iter_mut().find(|(m, _)| *m == model) {
            Some((_, v)) => v.push(j),
            None => models.push((model, vec![j])),
        }
    }
    if models.is_empty() {
        return Ok(out);
    }

    // 4. decode, one call per model ------------------------------------------------------
    let mut decoded: Vec<ReadingColumns> = Vec::with_capacity(models.len());
    for (model, js) in &models {
        let codec = Registry::global()
            .get(model)
            .ok_or_else(|| IngestError::UnknownModel((*model).to_string()))?;
        let mut data = Vec::with_capacity(js.len() * 24);
        let mut offs = Vec::with_capacity(js.len() + 1);
        offs.push(0i64);
        let mut fports = Vec::with_capacity(js.len());
        for &j in js {
            data.extend_from_slice(ups[j].payload);
            offs.push(data.len() as i64);
            fports.push(ups[j].fport.map_or(-1, |f| f as i32));
        }
        let src = FlatPayloads {
            data: &data,
            offsets: &offs,
            validity: None,
            validity_bit_offset: 0,
        };
        decoded.push(codec.decode_batch(&src, &FportSource::PerRow(&fports)));
    }

    // 5. the reading message of every decoded frame, in decoded order ---------------------
    let n_ok: usize = decoded.iter().map(|c| c.len - c.error_count).sum();
    let mut cols = ReadingCols::with_capacity(n_ok);
    // per decoded row: its stored readings (measured_at ms, distance_mm, temperature_c)
    let mut stored: Vec<Vec<Stored>> = Vec::with_capacity(n_ok);
    for (c, (_, js)) in decoded.iter().zip(&models) {
        for (k, &j) in js.iter().enumerate() {
            if c.ok.get(k) {
                cols.push(c, k, &ups[j], reg_of[j], frames[ups[j].frame].seq, index);
                stored.push(stored_of(c, k));
            }
        }
    }
    // the stored readings after every frame's own (rare): row of each frame's first one
    let mut stored_row: Vec<usize> = Vec::with_capacity(n_ok);
    for (r, st) in stored.iter().enumerate() {
        stored_row.push(cols.seq.len());
        for (n, &(ms, sd, temp)) in st.iter().enumerate() {
            cols.push_stored(r, n as i64 + 1, ms, sd, temp, index);
        }
    }
    out.readings = cols.write(index).map_err(IngestError::Message)?;
    let ops = &mut out.ops;

    // 6. per decoded frame: errors, device times, frame counter, placement -----------------
    let mut row = 0usize;
    let mut dropped = 0usize;
    let mut stored_out = 0usize;
    let mut pending = Pending::default();
    for (c, (_, js)) in decoded.iter().zip(&models) {
        for (k, &j) in js.iter().enumerate() {
            let u = &ups[j];
            let f = &frames[u.frame];
            if !c.ok.get(k) {
                let (kind, err, off) = c
                    .errors
                    .iter()
                    .find(|(r, _)| *r == k)
                    .map(|(_, e)| {
                        let off = i64::from(i32::try_from(e.offset).unwrap_or(i32::MAX));
                        (e.kind.name().to_string(), e.to_string(), Some(off))
                    })
                    .unwrap_or_default();
                dead(
                    ops,
                    u.frame,
                    &kind,
                    err,
                    "frame",
                    off,
                    Some(u.dev.to_string()),
                );
                continue;
            }
            let r = row;
            row += 1;
            let stored = &stored[r];
            let measured = c.measured_at_ms.as_ref().and_then(|m| m.get(k));
            if measured.is_some() || !stored.is_empty() {
                let own = [measured.map(|ms| i128::from(ms) * 1_000_000)];
                let with_stored: Vec<Option<i128>>;
                let times: &[Option<i128>] = if stored.is_empty() {
                    &own // no allocation for the usual frame
                } else {
                    with_stored = own
                        .into_iter()
                        .chain(stored.iter().map(|s| Some(py_timestamp_ns(s.0))))
                        .collect();
                    &with_stored
                };
                if let Some(why) = window.problem(u.recv_exact, f.stored_ns, times) {
                    dead(
                        ops,
                        u.frame,
                        "implausible_time",
                        why,
                        "frame",
                        None,
                        Some(u.dev.to_string()),
                    );
                    dropped += 1;
                    continue;
                }
            }
            if let Some(why) = fcnt.check(&u.dev, u.fcnt, f.seq) {
                dead(
                    ops,
                    u.frame,
                    "fcnt_regression",
                    why,
                    "envelope",
                    None,
                    Some(u.dev.to_string()),
                );
                dropped += 1;
                continue;
            }
            pending.push(f.part, r as i64);
            if !stored.is_empty() {
                // its stored readings right after it, placed before what comes next
                for x in 0..stored.len() {
                    pending.push(f.part, (stored_row[r] + x) as i64);
                }
                stored_out += stored.len();
                let rows = pending.pop(f.part).unwrap_or_default();
                ops.push(Op::Readings { part: f.part, rows });
            }
        }
    }
    for (part, rows) in pending.0 {
        ops.push(Op::Readings { part, rows });
    }
    out.readings_out = row - dropped + stored_out;
    Ok(out)
}

/// What the dead letters of a batch name and where they go.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetterSpec<'a> {
    /// Name of the raw stream (in each dead letter's body and id).
    pub raw_stream: &'a str,
    /// Subject of a dead letter before its reason (`tid.dlq.`; the reason follows as
    /// one token, escaped as `tidstream.names.encode_token` escapes it).
    pub dlq_prefix: &'a str,
}

/// The step's output for one batch.
#[derive(Debug, Default)]
pub struct StepOutput {
    /// Per raw partition (the caller's index), in first-seen order: its readings and
    /// dead letters in order.
    pub parts: Vec<(u32, Messages)>,
    /// Dead letters per reason, in first-seen order.
    pub dead: Vec<(String, usize)>,
    /// Readings accepted, stored readings included.
    pub readings_out: usize,
}

/// `s` as one NATS subject token, as `tidstream.names.encode_token` writes it: kept when
/// it is `[A-Za-z0-9_-]+`, else every other byte of its UTF-8 as `=XX`; `=` when empty.
pub fn encode_token(s: &str) -> String {
    if s.is_empty() {
        return "=".to_string();
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// Header lines (`Key: value` + CR LF each) as the Python step's header dict: invalid
/// UTF-8 replaced, a line without `": "` a key with an empty value, a repeated key at its
/// first place with its last value (`tidstream.nats.rustio.header_dict`).
pub fn header_pairs(lines: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(lines);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(": ").unwrap_or((line, ""));
        match out.iter_mut().find(|(q, _)| q == k) {
            Some(e) => e.1 = v.to_string(),
            None => out.push((k.to_string(), v.to_string())),
        }
    }
    out
}

/// The body of frame `f`'s dead letter, as the Python step's `orjson.dumps` of
/// `{reason, stage, error, offset, device_id, subject, raw_stream, raw_seq, stored_at,
/// headers (null when none), original_base64}`.
#[allow(clippy::too_many_arguments)]
pub fn write_dead_letter(
    buf: &mut Vec<u8>,
    f: &Frame<'_>,
    reason: &str,
    error: &str,
    stage: &str,
    offset: Option<i64>,
    device: Option<&str>,
    raw_stream: &str,
    headers: &[(String, String)],
) {
    use base64::Engine as _;
    let mut int = itoa::Buffer::new();
    buf.extend_from_slice(b"{\"reason\":");
    write_json_str(buf, reason);
    buf.extend_from_slice(b",\"stage\":");
    write_json_str(buf, stage);
    buf.extend_from_slice(b",\"error\":");
    write_json_str(buf, error);
    buf.extend_from_slice(b",\"offset\":");
    match offset {
        Some(o) => buf.extend_from_slice(int.format(o).as_bytes()),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"device_id\":");
    match device {
        Some(d) => write_json_str(buf, d),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"subject\":");
    write_json_str(buf, f.subject);
    buf.extend_from_slice(b",\"raw_stream\":");
    write_json_str(buf, raw_stream);
    buf.extend_from_slice(b",\"raw_seq\":");
    buf.extend_from_slice(int.format(f.seq).as_bytes());
    buf.extend_from_slice(b",\"stored_at\":");
    write_rfc3339_us(buf, f.stored_ns);
    buf.extend_from_slice(b",\"headers\":");
    if headers.is_empty() {
        buf.extend_from_slice(b"null");
    } else {
        buf.push(b'{');
        for (j, (k, v)) in headers.iter().enumerate() {
            if j > 0 {
                buf.push(b',');
            }
            write_json_str(buf, k);
            buf.push(b':');
            write_json_str(buf, v);
        }
        buf.push(b'}');
    }
    buf.extend_from_slice(b",\"original_base64\":\"");
    let start = buf.len();
    buf.resize(start + f.data.len().div_ceil(3) * 4, 0);
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(f.data, &mut buf[start..])
        .unwrap_or(0);
    buf.truncate(start + n);
    buf.extend_from_slice(b"\"}");
}

/// The output of [`ingest_batch`] written per raw partition: the readings its
/// [`Op::Readings`] place and a dead letter per [`Op::Dead`] (subject `<dlq_prefix>
/// <reason>`, id `d:<raw stream>:<raw seq>`, headers `Tid-Reason` and `Tid-Raw-Seq`),
/// in order. `headers(frame)` gives a frame's headers (empty: none). The partition with
/// the most readings keeps the readings' buffer (its messages are not copied).
pub fn write_output<H>(
    out: IngestOutput,
    frames: &[Frame<'_>],
    spec: DeadLetterSpec<'_>,
    headers: H,
) -> Result<StepOutput, IngestError>
where
    H: Fn(usize) -> Vec<(String, String)>,
{
    let IngestOutput {
        mut readings,
        ops,
        readings_out,
    } = out;
    let mut res = StepOutput {
        readings_out,
        ..Default::default()
    };
    fn of(parts: &mut Vec<(u32, Messages)>, part: u32) -> &mut Messages {
        let i = match parts.iter().position(|(p, _)| *p == part) {
            Some(i) => i,
            None => {
                parts.push((part, Messages::default()));
                parts.len() - 1
            }
        };
        &mut parts[i].1
    }
    // the partition that keeps the readings' buffer, and its messages in order
    let mut counts: Vec<(u32, usize)> = Vec::new();
    for op in &ops {
        if let Op::Readings { part, rows } = op {
            match counts.iter_mut().find(|(p, _)| p == part) {
                Some(c) => c.1 += rows.len(),
                None => counts.push((*part, rows.len())),
            }
        }
    }
    let owner = counts.iter().max_by_key(|c| c.1).map(|c| c.0);
    let mut order: Vec<usize> = Vec::new();
    let mut body = Vec::new();
    for op in &ops {
        match op {
            Op::Readings { part, rows } if Some(*part) == owner => {
                of(&mut res.parts, *part); // its place in the output
                for &r in rows {
                    let k = usize::try_from(r)
                        .ok()
                        .filter(|&k| k < readings.len())
                        .ok_or(IngestError::Message(MessageError::BadIndex(r)))?;
                    order.push(k);
                }
            }
            Op::Readings { part, rows } => of(&mut res.parts, *part)
                .extend_from(&readings, Some(rows))
                .map_err(IngestError::Message)?,
            Op::Dead {
                frame,
                reason,
                error,
                stage,
                offset,
                device,
            } => {
                let Some(f) = frames.get(*frame) else {
                    continue;
                };
                match res.dead.iter_mut().find(|(r, _)| r == reason) {
                    Some(e) => e.1 += 1,
                    None => res.dead.push((reason.clone(), 1)),
                }
                body.clear();
                let h = headers(*frame);
                write_dead_letter(
                    &mut body,
                    f,
                    reason,
                    error,
                    stage,
                    *offset,
                    device.as_deref(),
                    spec.raw_stream,
                    &h,
                );
                let seq = itoa::Buffer::new().format(f.seq).to_string();
                let subject = format!("{}{}", spec.dlq_prefix, encode_token(reason));
                let id = format!("d:{}:{seq}", spec.raw_stream);
                let hs = [("Tid-Reason", reason.as_str()), ("Tid-Raw-Seq", &seq)];
                if Some(f.part) == owner {
                    of(&mut res.parts, f.part);
                    readings
                        .push(&subject, &id, &hs, &body)
                        .map_err(IngestError::Message)?;
                    order.push(readings.len() - 1);
                } else {
                    of(&mut res.parts, f.part)
                        .push(&subject, &id, &hs, &body)
                        .map_err(IngestError::Message)?;
                }
            }
        }
    }
    if let Some(owner) = owner {
        readings.select(&order);
        *of(&mut res.parts, owner) = readings;
    }
    res.parts.retain(|(_, m)| !m.is_empty());
    Ok(res)
}

/// A stored reading: measured_at ms, distance_mm, temperature_c.
type Stored = (i64, Option<f64>, Option<f64>);

/// Stored readings of decoded row `k`.
fn stored_of(c: &ReadingColumns, k: usize) -> Vec<Stored> {
    let Some(s) = c.stored.as_ref() else {
        return Vec::new();
    };
    let (Some(&a), Some(&b)) = (s.offsets.get(k), s.offsets.get(k + 1)) else {
        return Vec::new();
    };
    let (a, b) = (a.max(0) as usize, b.max(0) as usize);
    (a..b)
        .map(|x| {
            (
                s.measured_at_ms.get(x).copied().unwrap_or(0),
                s.distance_mm.get(x),
                s.temperature_c.get(x),
            )
        })
        .collect()
}

/// The time the Python step wrote for a stored reading of `ms`: a `datetime` of `ms`
/// (UTC) as `int(dt.timestamp() * 1e6) * 1000` ns (float seconds, float microseconds
/// truncated).
fn py_stored_ns(ms: i64) -> i64 {
    let us = i128::from(ms) * 1000;
    let secs = us as f64 / 1e6;
    ((secs * 1e6).trunc() as i64).saturating_mul(1000)
}

/// `repr()` of a Python `str` (single quotes unless it holds one and no double quote;
/// control characters escaped), for the messages that quote a subject token.
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if (0x80..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// The columns of the reading messages, one row per decoded ok frame.
struct ReadingCols {
    seq: Vec<i64>,
    /// 0 for a frame's own reading, n for its n-th stored one (ids `r:<seq>:<n>`).
    n: Vec<i64>,
    stored: Vec<i8>,
    reg: Vec<i64>,
    recv: Vec<i64>,
    measured: Vec<i64>,
    distance: Vec<f64>,
    fill: Vec<f64>,
    fill_pct: Vec<f64>,
    temperature: Vec<f64>,
    battery_pct: Vec<f64>,
    battery_v: Vec<f64>,
    tilt: Vec<i8>,
    fire: Vec<i8>,
    flags: Vec<i64>,
    fport: Vec<i64>,
    fport_ok: Vec<bool>,
    fcnt: Vec<i64>,
    fcnt_ok: Vec<bool>,
    rssi: Vec<f64>,
    snr: Vec<f64>,
    gps_lat: Vec<f64>,
    gps_lon: Vec<f64>,
}

impl ReadingCols {
    fn with_capacity(n: usize) -> Self {
        ReadingCols {
            seq: Vec::with_capacity(n),
            n: Vec::with_capacity(n),
            stored: Vec::with_capacity(n),
            reg: Vec::with_capacity(n),
            recv: Vec::with_capacity(n),
            measured: Vec::with_capacity(n),
            distance: Vec::with_capacity(n),
            fill: Vec::with_capacity(n),
            fill_pct: Vec::with_capacity(n),
            temperature: Vec::with_capacity(n),
            battery_pct: Vec::with_capacity(n),
            battery_v: Vec::with_capacity(n),
            tilt: Vec::with_capacity(n),
            fire: Vec::with_capacity(n),
            flags: Vec::with_capacity(n),
            fport: Vec::with_capacity(n),
            fport_ok: Vec::with_capacity(n),
            fcnt: Vec::with_capacity(n),
            fcnt_ok: Vec::with_capacity(n),
            rssi: Vec::with_capacity(n),
            snr: Vec::with_capacity(n),
            gps_lat: Vec::with_capacity(n),
            gps_lon: Vec::with_capacity(n),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        c: &ReadingColumns,
        k: usize,
        u: &Up<'_>,
        reg: usize,
        seq: i64,
        ix: &IngestIndex,
    ) {
        let f = |col: &Option<crate::reading::PrimCol<f64>>| {
            col.as_ref().and_then(|c| c.get(k)).unwrap_or(f64::NAN)
        };
        let b = |col: &Option<crate::reading::BoolCol>| {
            col.as_ref().and_then(|c| c.get(k)).map_or(-1, i8::from)
        };
        let at = |v: &[f64]| v.get(reg).copied().unwrap_or(f64::NAN);
        self.seq.push(seq);
        self.n.push(0);
        self.stored.push(0);
        self.reg.push(reg as i64);
        self.recv.push(u.recv);
        let measured = c.measured_at_ms.as_ref().and_then(|m| m.get(k));
        self.measured
            .push(measured.map_or(u.recv, |ms| ms.wrapping_mul(1_000_000)));
        let d = f(&c.distance_mm);
        self.distance.push(d);
        self.fill
            .push(fill_ratio(d, at(&ix.depth_mm), at(&ix.offset_mm)).unwrap_or(f64::NAN));
        self.fill_pct.push(f(&c.fill_pct_reported));
        self.temperature.push(f(&c.temperature_c));
        self.battery_pct.push(f(&c.battery_pct));
        self.battery_v.push(f(&c.battery_v));
        self.tilt.push(b(&c.tilt));
        self.fire.push(b(&c.fire_alarm));
        self.flags.push(c.alarm_flags.get(k).map_or(0, i64::from));
        self.fport.push(u.fport.unwrap_or(0));
        self.fport_ok.push(u.fport.is_some());
        self.fcnt.push(u.fcnt.unwrap_or(0));
        self.fcnt_ok.push(u.fcnt.is_some());
        self.rssi.push(u.rssi.unwrap_or(f64::NAN));
        self.snr.push(u.snr.unwrap_or(f64::NAN));
        self.gps_lat.push(f(&c.latitude));
        self.gps_lon.push(f(&c.longitude));
    }

    /// Stored reading `n` of row `src` (`(measured_at ms, distance_mm, temperature_c)`):
    /// that row's reading with the stored values, no alarm, tilt or fire state (as the
    /// Python step's `{**reading, ...}`).
    #[allow(clippy::too_many_arguments)]
    fn push_stored(
        &mut self,
        src: usize,
        n: i64,
        ms: i64,
        sd: Option<f64>,
        temp: Option<f64>,
        ix: &IngestIndex,
    ) {
        let reg = usize::try_from(self.reg[src]).unwrap_or(usize::MAX);
        let at = |v: &[f64]| v.get(reg).copied().unwrap_or(f64::NAN);
        let d = sd.unwrap_or(f64::NAN);
        self.seq.push(self.seq[src]);
        self.n.push(n);
        self.stored.push(1);
        self.reg.push(self.reg[src]);
        self.recv.push(self.recv[src]);
        self.measured.push(py_stored_ns(ms));
        self.distance.push(d);
        self.fill
            .push(fill_ratio(d, at(&ix.depth_mm), at(&ix.offset_mm)).unwrap_or(f64::NAN));
        self.fill_pct.push(self.fill_pct[src]);
        self.temperature.push(temp.unwrap_or(f64::NAN));
        self.battery_pct.push(self.battery_pct[src]);
        self.battery_v.push(self.battery_v[src]);
        self.tilt.push(-1);
        self.fire.push(-1);
        self.flags.push(0);
        self.fport.push(self.fport[src]);
        self.fport_ok.push(self.fport_ok[src]);
        self.fcnt.push(self.fcnt[src]);
        self.fcnt_ok.push(self.fcnt_ok[src]);
        self.rssi.push(self.rssi[src]);
        self.snr.push(self.snr[src]);
        self.gps_lat.push(self.gps_lat[src]);
        self.gps_lon.push(self.gps_lon[src]);
    }

    fn write(&self, ix: &IngestIndex) -> Result<Messages, MessageError> {
        let n = self.seq.len();
        let reg = &self.reg[..];
        let raw = |k: usize| JsonColumn::Raw {
            indices: reg,
            values: &ix.json[k],
        };
        let cols: Vec<(&str, JsonColumn<'_>)> = vec![
            (
                "reading_id",
                JsonColumn::IntPair {
                    first: &self.seq,
                    second: &self.n,
                    prefix: "r:",
                    sep: ":",
                },
            ),
            ("device_id", raw(0)),
            ("model", raw(1)),
            ("container_id", raw(2)),
            ("container_kind", raw(3)),
            ("stream", raw(4)),
            ("commune_insee", raw(5)),
            ("commune", raw(6)),
            ("lat", raw(7)),
            ("lon", raw(8)),
            (
                "received_at",
                JsonColumn::TimestampNs {
                    values: &self.recv,
                    valid: None,
                },
            ),
            (
                "measured_at",
                JsonColumn::TimestampNs {
                    values: &self.measured,
                    valid: None,
                },
            ),
            ("stored", JsonColumn::Bool(&self.stored)),
            ("distance_mm", JsonColumn::F64(&self.distance)),
            ("fill_ratio", JsonColumn::F64(&self.fill)),
            ("fill_pct_reported", JsonColumn::F64(&self.fill_pct)),
            ("temperature_c", JsonColumn::F64(&self.temperature)),
            ("battery_pct", JsonColumn::F64(&self.battery_pct)),
            ("battery_v", JsonColumn::F64(&self.battery_v)),
            ("tilt", JsonColumn::Bool(&self.tilt)),
            ("fire_alarm", JsonColumn::Bool(&self.fire)),
            (
                "alarm_flags",
                JsonColumn::I64 {
                    values: &self.flags,
                    valid: None,
                },
            ),
            (
                "fport",
                JsonColumn::I64 {
                    values: &self.fport,
                    valid: Some(&self.fport_ok),
                },
            ),
            (
                "fcnt",
                JsonColumn::I64 {
                    values: &self.fcnt,
                    valid: Some(&self.fcnt_ok),
                },
            ),
            ("rssi", JsonColumn::F64(&self.rssi)),
            ("snr", JsonColumn::F64(&self.snr)),
            ("gps_lat", JsonColumn::F64(&self.gps_lat)),
            ("gps_lon", JsonColumn::F64(&self.gps_lon)),
            (
                "raw_seq",
                JsonColumn::I64 {
                    values: &self.seq,
                    valid: None,
                },
            ),
        ];
        write_messages(
            n,
            &cols,
            &[TextPiece::Dict {
                indices: reg,
                values: &ix.subject,
            }],
            &[
                TextPiece::Lit("r:"),
                TextPiece::Int(&self.seq),
                TextPiece::Lit(":"),
                TextPiece::Int(&self.n),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: TimeWindow = TimeWindow {
        earliest_ns: 1_420_070_400 * 1_000_000_000,
        future_ns: 86_400 * 1_000_000_000,
    };

    #[test]
    fn subjects_split_as_python_does() {
        assert_eq!(split_subject("tid.raw.0.ttn.abc", 3), Some(("ttn", "abc")));
        assert_eq!(split_subject("tid.raw.0.ttn", 3), None);
        assert_eq!(split_subject("tid.raw.0.ttn.a.b", 3), None);
        assert_eq!(split_subject("tid.raw.0..", 3), Some(("", "")));
        assert!(is_dev_eui("0123456789abcDEF"));
        assert!(is_dev_eui("0123456789abcdef\n")); // `$` before a final newline
        assert!(!is_dev_eui("0123456789abcdeg"));
        assert!(!is_dev_eui("0123456789abcde"));
        assert!(needs_raw_fields(
            "tid.raw.1.raw.0123456789abcdef",
            10,
            3,
            65536
        ));
        assert!(!needs_raw_fields(
            "tid.raw.1.raw.0123456789abcdef",
            70_000,
            3,
            65536
        ));
        assert!(!needs_raw_fields(
            "tid.raw.1.ttn.0123456789abcdef",
            10,
            3,
            65536
        ));
        assert_eq!(py_repr("a'b"), "\"a'b\"");
        assert_eq!(py_repr("a\tb\\"), "'a\\tb\\\\'");
    }

    #[test]
    fn tokens_headers_and_dead_letters_as_python_writes_them() {
        assert_eq!(encode_token("unknown_device"), "unknown_device");
        assert_eq!(encode_token(""), "=");
        assert_eq!(encode_token("a.b é"), "a=2Eb=20=C3=A9");
        assert_eq!(
            header_pairs(b"B: 2\r\nA: 1\r\nB: 3\r\nno-colon\r\n\r\n"),
            [
                ("B".to_string(), "3".to_string()),
                ("A".to_string(), "1".to_string()),
                ("no-colon".to_string(), String::new()),
            ]
        );
        let f = Frame {
            part: 0,
            seq: 42,
            subject: "tid.raw.0.ttn.x",
            data: b"\x00\x01ab",
            stored_ns: 1_764_028_800_123_456_789,
            raw: None,
        };
        let mut buf = Vec::new();
        let h = [("Tid-FPort".to_string(), "1\"".to_string())];
        write_dead_letter(
            &mut buf,
            &f,
            "truncated",
            "e",
            "frame",
            Some(3),
            Some("d"),
            "RAW",
            &h,
        );
        assert_eq!(
            std::str::from_utf8(&buf).unwrap(),
            r#"{"reason":"truncated","stage":"frame","error":"e","offset":3,"device_id":"d","subject":"tid.raw.0.ttn.x","raw_stream":"RAW","raw_seq":42,"stored_at":"2025-11-25T00:00:00.123456Z","headers":{"Tid-FPort":"1\""},"original_base64":"AAFhYg=="}"#
        );
        buf.clear();
        write_dead_letter(&mut buf, &f, "x", "e", "envelope", None, None, "RAW", &[]);
        assert!(std::str::from_utf8(&buf)
            .unwrap()
            .contains(r#""offset":null,"device_id":null,"#));
        assert!(std::str::from_utf8(&buf)
            .unwrap()
            .contains(r#""headers":null,"original_base64":"AAFhYg=="}"#));
    }

    #[test]
    fn time_window_texts() {
        let now = 1_764_028_800 * 1_000_000_000i64;
        assert_eq!(
            W.problem(i128::from(now), now, &[Some(i128::from(now))]),
            None
        );
        assert_eq!(
            W.problem(5, now, &[]).as_deref(),
            Some("received_at 5 ns is before 2015-01-01")
        );
        assert_eq!(
            W.problem(i128::from(now + W.future_ns + 1), now, &[])
                .as_deref(),
            Some("received_at is more than 86400 s after the broker stored the message")
        );
        // beyond int64 ns: compared exactly, no wrap-around
        let far = i128::from(i64::MAX) * 10;
        assert_eq!(
            W.problem(i128::from(now), now, &[None, Some(far)])
                .as_deref(),
            Some("measured_at is more than 86400 s after received_at")
        );
        let off = TimeWindow { future_ns: 0, ..W };
        assert_eq!(off.problem(i128::from(now), now, &[Some(far)]), None);
        // a Python datetime's float timestamp, truncated
        assert_eq!(py_timestamp_ns(1_000), 1_000_000_000);
        assert_eq!(
            py_timestamp_ns(1_764_028_800_123),
            1_764_028_800_122_999_808 // as CPython gives it
        );
    }

    #[test]
    fn frame_counter_rules() {
        let mut g = FcntState::default();
        assert_eq!(g.check("d", Some(5), 10), None);
        assert_eq!(g.check("d", None, 11), None);
        assert_eq!(
            g.check("d", Some(5), 12).as_deref(),
            Some("frame counter 5 is not above the last accepted 5 (raw seq 10)")
        );
        assert_eq!(g.check("d", Some(1), 9), None); // the flow's own replay
        assert_eq!(g.check("d", Some(20), 13), None);
        assert_eq!(g.check("d", Some(FCNT_RESET_BELOW - 1), 14), None); // a reset
        assert_eq!(g.last["d"], (FCNT_RESET_BELOW - 1, 14));
    }

    fn index() -> IngestIndex {
        let s = |v: &str| vec![Some(v.to_string())];
        let mut ix = IngestIndex {
            rows: HashMap::from([("0101010101010101".to_string(), 0)]),
            model: s("tid1"),
            depth_mm: vec![1000.0],
            offset_mm: vec![200.0],
            lat: vec![47.5],
            lon: vec![6.8],
            device_id: s("0101010101010101"),
            container_id: s("C-1"),
            container_kind: s("glass_bank"),
            stream: s("glass"),
            commune_insee: s("25388"),
            commune: s("Montbéliard"),
            subject: s("tid.readings.25388.0101010101010101"),
            json: Default::default(),
        };
        ix.render();
        ix
    }

    #[test]
    fn a_batch_in_one_call() {
        let ix = index();
        let frame = crate::codec::Registry::global().get("tid1").unwrap();
        let r = crate::reading::Reading {
            distance_mm: Some(700.0),
            measured_at_ms: Some(1_764_028_000_000),
            ..Default::default()
        };
        let mut payload = Vec::new();
        frame.encode(&r, &mut payload).unwrap();
        let raw_subject = "tid.raw.0.raw.0101010101010101";
        let now = 1_764_028_800 * 1_000_000_000i64;
        let ok = RawFields::Ok {
            fport: Some(1),
            fcnt: Some(3),
            received_ns: None,
        };
        let f = |seq, subject, data, raw| Frame {
            part: 0,
            seq,
            subject,
            data,
            stored_ns: now,
            raw,
        };
        let frames = [
            f(1, raw_subject, &payload[..], Some(ok)),
            f(2, "tid.raw.0.lora.x", &b"{}"[..], None),
            f(3, "tid.raw.0.ttn.x", &b"{"[..], None),
            f(4, raw_subject, &payload[..], Some(ok)), // same counter: a replay
            f(5, "tid.raw.0.raw.0202020202020202", &payload[..], Some(ok)),
            f(6, raw_subject, &payload[..], Some(RawFields::Bad)),
        ];
        let mut fcnt = FcntState::default();
        let out = ingest_batch(&ix, &mut fcnt, W, &frames, 3, 65536).unwrap();
        let reasons: Vec<(usize, &str)> = out
            .ops
            .iter()
            .filter_map(|o| match o {
                Op::Dead { frame, reason, .. } => Some((*frame, reason.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            reasons,
            [
                (1, "unknown_format"),
                (5, "wrong_type"),
                (2, "invalid_json"),
                (4, "unknown_device"),
                (3, "fcnt_regression"),
            ]
        );
        assert_eq!(out.readings_out, 1);
        assert_eq!(
            out.ops.last(),
            Some(&Op::Readings {
                part: 0,
                rows: vec![0]
            })
        );
        let json = std::str::from_utf8(out.readings.payload(0)).unwrap();
        assert!(json.starts_with(
            r#"{"reading_id":"r:1:0","device_id":"0101010101010101","model":"tid1","container_id":"C-1","#
        ));
        assert!(json.contains(r#""commune":"Montbéliard","lat":47.5,"lon":6.8,"received_at":"2025-11-25T00:00:00.000000Z","measured_at":"2025-11-24T23:46:40.000000Z","stored":false,"distance_mm":700.0,"fill_ratio":0.5,"#));
        assert!(json.ends_with(r#""fport":1,"fcnt":3,"rssi":null,"snr":null,"gps_lat":null,"gps_lon":null,"raw_seq":1}"#));
        assert_eq!(
            out.readings.subject(0),
            "tid.readings.25388.0101010101010101"
        );
        assert_eq!(out.readings.msg_id(0), "r:1:0");
        // written out: the dead letters and the reading of partition 0 in order
        let spec = DeadLetterSpec {
            raw_stream: "RAW",
            dlq_prefix: "tid.dlq.",
        };
        let res = write_output(out, &frames, spec, |_| Vec::new()).unwrap();
        assert_eq!(res.parts.len(), 1);
        let m = &res.parts[0].1;
        let ids: Vec<&str> = (0..m.len()).map(|i| m.msg_id(i)).collect();
        assert_eq!(
            ids,
            ["d:RAW:2", "d:RAW:6", "d:RAW:3", "d:RAW:5", "d:RAW:4", "r:1:0"]
        );
        assert_eq!(m.subject(0), "tid.dlq.unknown_format");
        assert_eq!(
            m.header_lines(0),
            b"Tid-Reason: unknown_format\r\nTid-Raw-Seq: 2\r\n"
        );
        assert_eq!(m.subject(5), "tid.readings.25388.0101010101010101");
        assert_eq!(res.readings_out, 1);
        assert_eq!(res.dead.len(), 5);
    }
}
