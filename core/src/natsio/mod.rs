//! NATS JetStream I/O in Rust (prototype, docs/NATSIO.md): an ordered pull consumer that
//! hands out columnar batches, and a JetStream publisher that awaits every PubAck.
//!
//! Each handle owns a small tokio runtime (one worker thread) and its own connection:
//! the worker reads the socket and keeps the consumer's pull requests going while the
//! caller (Python, with the GIL) works on the previous batch. The caller blocks only in
//! [`Consumer::next_batch`] / [`Publisher::publish_batch`]. No PyO3 here.
//!
//! Secrets (password, token, seeds, `user:pass@` in URLs) never appear in the errors:
//! every message passes through [`ConnectSettings::mask`].

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::pull::{
    Config as PullConfig, MessagesErrorKind, Stream as PullStream,
};
use async_nats::jetstream::consumer::AckPolicy;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::runtime::Runtime;

use crate::json_rows::Messages;

/// How to reach NATS: the fields of tidstream's `NatsSettings` (python/tidstream/config.py).
#[derive(Debug, Clone, Default)]
pub struct ConnectSettings {
    /// Server URLs (`nats://`, `tls://`; `user:pass@` userinfo allowed).
    pub urls: Vec<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// File holding an NKEY user seed (`SU...`).
    pub nkey_seed_file: Option<PathBuf>,
    /// A `.creds` file (JWT + seed).
    pub credentials_file: Option<PathBuf>,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Seconds for one connection attempt.
    pub connect_timeout_s: f64,
    /// Client name shown in server monitoring.
    pub name: String,
    /// Reply subject prefix (`_INBOX` when None).
    pub inbox_prefix: Option<String>,
}

/// Failures of the NATS I/O; messages never hold a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsIoError {
    /// Bad settings (a file that cannot be read, a key without a cert, ...).
    Config(String),
    /// No connection could be made.
    Connect(String),
    /// The stream or consumer could not be set up, or the consumer failed for good.
    Consumer(String),
    /// A publish could not be sent at all (per-message failures are in [`PublishResults`]).
    Publish(String),
}

impl std::fmt::Display for NatsIoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsIoError::Config(m) => write!(f, "NATS settings: {m}"),
            NatsIoError::Connect(m) => write!(f, "cannot connect to NATS: {m}"),
            NatsIoError::Consumer(m) => write!(f, "JetStream consumer: {m}"),
            NatsIoError::Publish(m) => write!(f, "JetStream publish: {m}"),
        }
    }
}

impl std::error::Error for NatsIoError {}

/// Secrets at least this long are masked wherever they occur; shorter ones only where they
/// stand alone (no letter or digit on either side), so that a short password does not
/// mangle the words of a message ("Publish" with the password "b").
pub const MASK_ANYWHERE_LEN: usize = 8;

/// `text` with the occurrences of `secret` replaced by `***` (see [`MASK_ANYWHERE_LEN`]).
fn mask_one(text: &str, secret: &str) -> String {
    if secret.chars().count() >= MASK_ANYWHERE_LEN {
        return text.replace(secret, "***");
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut prev: Option<char> = None;
    while let Some(i) = rest.find(secret) {
        let before = rest[..i].chars().next_back().or(prev);
        let after = rest[i + secret.len()..].chars().next();
        let alone =
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric);
        out.push_str(&rest[..i]);
        out.push_str(if alone { "***" } else { secret });
        prev = secret.chars().next_back();
        rest = &rest[i + secret.len()..];
    }
    out.push_str(rest);
    out
}

impl ConnectSettings {
    /// `text` with every secret of these settings replaced by `***`.
    pub fn mask(&self, text: &str) -> String {
        let mut secrets: Vec<String> = Vec::new();
        secrets.extend(self.password.iter().cloned());
        secrets.extend(self.token.iter().cloned());
        for u in &self.urls {
            if let Some((_, rest)) = u.split_once("://") {
                if let Some((userinfo, _)) = rest.rsplit_once('@') {
                    secrets.push(userinfo.to_string());
                    if let Some((_, pw)) = userinfo.split_once(':') {
                        secrets.push(pw.to_string());
                    }
                }
            }
        }
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = text.to_string();
        for s in secrets {
            out = mask_one(&out, &s);
        }
        out
    }

    /// The URLs without userinfo, for messages.
    pub fn redacted_urls(&self) -> String {
        self.urls
            .iter()
            .map(|u| match u.split_once("://") {
                Some((scheme, rest)) => match rest.rsplit_once('@') {
                    Some((_, host)) => format!("{scheme}://***@{host}"),
                    None => u.clone(),
                },
                None => u.clone(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    async fn options(&self, events: EventLog) -> Result<async_nats::ConnectOptions, NatsIoError> {
        let mut o = match &self.credentials_file {
            Some(p) => async_nats::ConnectOptions::with_credentials_file(p)
                .await
                .map_err(|e| {
                    NatsIoError::Config(format!(
                        "cannot read credentials file {}: {}",
                        p.display(),
                        e.kind()
                    ))
                })?,
            None => async_nats::ConnectOptions::new(),
        };
        if let Some(user) = &self.user {
            o = o.user_and_password(user.clone(), self.password.clone().unwrap_or_default());
        }
        if let Some(token) = &self.token {
            o = o.token(token.clone());
        }
        if let Some(p) = &self.nkey_seed_file {
            let seed = std::fs::read_to_string(p).map_err(|e| {
                NatsIoError::Config(format!(
                    "cannot read NKEY seed file {}: {}",
                    p.display(),
                    e.kind()
                ))
            })?;
            o = o.nkey(seed.trim().to_string());
        }
        if let Some(ca) = &self.tls_ca_file {
            o = o.add_root_certificates(ca.clone()).require_tls(true);
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(c), Some(k)) => {
                o = o
                    .add_client_certificate(c.clone(), k.clone())
                    .require_tls(true);
            }
            (Some(_), None) => {
                return Err(NatsIoError::Config(
                    "tls_cert_file given without tls_key_file".into(),
                ))
            }
            _ => {}
        }
        if let Some(prefix) = &self.inbox_prefix {
            o = o.custom_inbox_prefix(prefix);
        }
        if !self.name.is_empty() {
            o = o.name(&self.name);
        }
        let masker = self.clone();
        o = o.event_callback(move |ev| {
            events.push(masker.mask(&ev.to_string()));
            async {}
        });
        let timeout = if self.connect_timeout_s > 0.0 {
            Duration::from_secs_f64(self.connect_timeout_s)
        } else {
            Duration::from_secs(5)
        };
        Ok(o.connection_timeout(timeout)
            // Keep reconnecting for ever once connected, like connect.py does with nats-py.
            .max_reconnects(None)
            .ping_interval(Duration::from_secs(20)))
    }

    /// Connect on the current runtime (the first connection attempt must succeed).
    pub async fn connect(&self) -> Result<async_nats::Client, NatsIoError> {
        self.connect_logged(EventLog::default()).await
    }

    /// [`ConnectSettings::connect`], the connection's events going to `events`.
    pub async fn connect_logged(
        &self,
        events: EventLog,
    ) -> Result<async_nats::Client, NatsIoError> {
        if self.urls.is_empty() {
            return Err(NatsIoError::Config("no server URL".into()));
        }
        let opts = self.options(events).await?;
        opts.connect(self.urls.as_slice()).await.map_err(|e| {
            NatsIoError::Connect(format!(
                "{} ({})",
                self.mask(&e.to_string()),
                self.redacted_urls()
            ))
        })
    }
}

/// Connection events of one handle (`connected`, `disconnected`, server errors, ...) as
/// masked text, oldest first, kept (at most 1,000) until [`EventLog::take`].
#[derive(Debug, Clone, Default)]
pub struct EventLog(Arc<Mutex<Vec<String>>>);

impl EventLog {
    fn push(&self, text: String) {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() < 1000 {
            v.push(text);
        }
    }

    /// The events so far (and forget them).
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn runtime(name: &str) -> Result<Runtime, NatsIoError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| NatsIoError::Config(format!("cannot start the I/O runtime: {e}")))
}

/// One batch of consumed messages, columnar (Arrow-style offsets: row `i` of `subjects`
/// is `subject_data[subject_offsets[i]..subject_offsets[i + 1]]`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MessageBatch {
    /// Stream sequence of each message.
    pub seqs: Vec<i64>,
    /// Server receive time of each message, ns since the Unix epoch (UTC).
    pub timestamps_ns: Vec<i64>,
    /// Messages still pending for the consumer when the batch was taken (0 = at the end of
    /// the stream; all the consumer's lanes); `None` for an empty batch.
    pub num_pending: Option<u64>,
    pub subject_offsets: Vec<i64>,
    pub subject_data: Vec<u8>,
    pub payload_offsets: Vec<i64>,
    pub payload_data: Vec<u8>,
    /// Header lines of each message (`Key: value\r\n` each, keys sorted, the last value
    /// of a repeated key; empty when the message has none), same offset layout.
    pub header_offsets: Vec<i64>,
    pub header_data: Vec<u8>,
    /// Transient consumer errors seen while filling the batch (the ordered consumer
    /// recreates itself after them: server restarts, missed heartbeats).
    pub transient_errors: Vec<String>,
    /// Messages of this batch's lane read ahead and not handed out yet.
    pub queued: u64,
    /// The consumer's server-side pending count now (all its lanes).
    pub consumer_pending: u64,
    /// The lane has nothing queued and the consumer has read everything (nothing
    /// pending) or passed its end time: the partition is at its end.
    pub at_end: bool,
    /// Every message of the lane up to this stream sequence has been handed out (its
    /// resume point; past its own last message when the other lanes read further).
    pub position: u64,
}

impl MessageBatch {
    fn with_capacity(n: usize) -> Self {
        let mut b = MessageBatch {
            seqs: Vec::with_capacity(n),
            timestamps_ns: Vec::with_capacity(n),
            subject_offsets: Vec::with_capacity(n + 1),
            payload_offsets: Vec::with_capacity(n + 1),
            header_offsets: Vec::with_capacity(n + 1),
            ..Default::default()
        };
        b.subject_offsets.push(0);
        b.payload_offsets.push(0);
        b.header_offsets.push(0);
        b
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    fn push(&mut self, m: &async_nats::Message, seq: u64, ts_ns: i64) {
        self.seqs.push(seq as i64);
        self.timestamps_ns.push(ts_ns);
        self.subject_data
            .extend_from_slice(m.subject.as_str().as_bytes());
        self.subject_offsets.push(self.subject_data.len() as i64);
        self.payload_data.extend_from_slice(&m.payload);
        self.payload_offsets.push(self.payload_data.len() as i64);
        if let Some(h) = &m.headers {
            write_header_lines(&mut self.header_data, h);
        }
        self.header_offsets.push(self.header_data.len() as i64);
    }
}

/// `Key: value\r\n` per header of `h`, keys sorted (a `HeaderMap` has no order), the last
/// value of a repeated key (as nats-py's header dict keeps it).
fn write_header_lines(out: &mut Vec<u8>, h: &async_nats::HeaderMap) {
    let mut kv: Vec<(&str, &str)> = h
        .iter()
        .filter_map(|(k, vs)| vs.last().map(|v| (AsRef::<str>::as_ref(k), v.as_str())))
        .collect();
    kv.sort_unstable();
    for (k, v) in kv {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Header lines (`Key: value\r\n`) as a `HeaderMap` (a line without `": "` is a key
/// with an empty value; CR / LF cannot occur: they end the lines).
fn header_map(lines: &[u8]) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    for line in String::from_utf8_lossy(lines)
        .split("\r\n")
        .filter(|l| !l.is_empty())
    {
        let (k, v) = line.split_once(": ").unwrap_or((line, ""));
        h.append(k, v);
    }
    h
}

/// One partition of a [`Consumer`] (a "lane"): its messages are queued apart from the
/// other partitions' and handed out by [`Consumer::next_batch`] for that lane only.
struct Lane {
    /// The partition's token in the subject (`p` of `tid.raw.<p>.<fmt>.<device>`); unused
    /// when the consumer does not split by partition (one lane gets every message).
    key: String,
    /// Subject filter of this partition alone (`tid.raw.<p>.>`).
    filter: String,
    /// Stream sequence of the last message of this partition queued or handed out (or its
    /// resume point): a message at or below it is dropped (already emitted, or read again
    /// after the consumer was recreated from an earlier position). 0 = none yet.
    seen: u64,
    /// Its messages read from the server and not handed out yet, in stream order.
    queue: std::collections::VecDeque<Queued>,
    /// False once closed: its messages are dropped.
    open: bool,
}

/// A message read ahead for a lane, its reply-subject fields already parsed.
struct Queued {
    msg: async_nats::Message,
    seq: u64,
    ts_ns: i64,
}

/// Per-lane read-ahead bound: a lane's queue never grows past `LANE_CAP_BATCHES` batches
/// (reading stops, the server keeps the rest) when the caller polls partitions unevenly.
pub const LANE_CAP_BATCHES: usize = 2;

/// An ordered pull consumer (ephemeral, no acks, made again from the lanes' positions
/// after a gap in its sequence, two missed heartbeats, its loss on the server or a
/// reconnect) over one or several partitions of a stream (lanes, see
/// [`Consumer::add_lane`]): every message of the lanes' filters after each lane's start,
/// in stream order, each lane's messages handed out on their own (the partition is the
/// `part_token`-th subject token). One server-side consumer for all of them: the server
/// reads the stream once instead of once per partition filter. Back-pressure: one pull
/// request of [`PULL_PER_LANE`] messages per lane ahead (async-nats asks for more when
/// half of it has been read), and no lane's queue grows past [`LANE_CAP_BATCHES`]
/// batches (reading stops until that partition is taken).
pub struct Consumer {
    /// The message stream (`None` until the first [`Consumer::next_batch`] when lanes are
    /// added after connecting) and the client; `io` is `None` only while dropping (they
    /// must be dropped inside the runtime: async-nats spawns the unsubscribe on drop).
    io: Option<(Option<Pin<Box<PullStream>>>, async_nats::Client)>,
    rt: Runtime,
    /// Stream sequence of the last message handed out (any lane; 0 = none yet).
    pub last_seq: u64,
    /// Messages the consumer had to deliver when it was (last) created (0: nothing).
    pub initial_pending: u64,
    /// Its connection's events.
    pub events: EventLog,
    st: async_nats::jetstream::stream::Stream,
    lanes: Vec<Lane>,
    /// Which subject token names the partition (`None`: one lane, no split).
    part_token: Option<usize>,
    /// The stream holds only partition subjects: with two lanes or more, read it whole
    /// (no filter: see [`Consumer::connect`]) and drop the other partitions' messages.
    read_whole: bool,
    /// Where a lane without a resume point starts (`None`: the stream's first message).
    start_ns: Option<i64>,
    /// Messages stored after this time (ns since the epoch, UTC) are not read: every lane
    /// is at its end once its queue is empty.
    end_ns: Option<i64>,
    /// A message stored after `end_ns` was read.
    past_end: bool,
    /// Server-side pending count after the last message read (any lane).
    pending: u64,
    /// Stream sequence of the last message read from the server (any lane, dropped or
    /// not): every lane's message up to it is queued or handed out.
    read_seq: u64,
    /// Make the server-side consumer (again) at the next batch: the lanes changed, or it
    /// broke the order (a gap in its sequence, lost on the server, missed heartbeats).
    stale: bool,
    /// Not before then (a failed attempt waits a second before the next).
    retry_at: Option<std::time::Instant>,
    /// Consumer sequence of the last message read (0: none since it was made).
    consumer_seq: u64,
    /// One idle heartbeat was missed (two in a row remake the consumer).
    missed_heartbeat: bool,
    /// The connection count it was created at (recreated after a reconnect).
    connects: u64,
    settings: ConnectSettings,
}

/// Messages read ahead per lane: one pull request asks for this many per open lane, so
/// the read-ahead is what one ordered consumer per partition had (async-nats' ordered
/// consumer pulls 500 at a time).
pub const PULL_PER_LANE: usize = 500;

/// An ordered consumer's server side and its message stream (and its pending count at
/// creation): ephemeral, no acks, memory storage, one replica, what async-nats' ordered
/// pull consumer makes, but with `batch` messages per pull request (async-nats' ordered
/// consumer pulls a fixed 500: too few ahead for several partitions). The order checks
/// and the recreation are the caller's ([`Consumer::next_batch`]).
async fn ordered(
    st: &async_nats::jetstream::stream::Stream,
    filters: &[String],
    deliver_policy: DeliverPolicy,
    batch: usize,
    settings: &ConnectSettings,
) -> Result<(PullStream, u64), NatsIoError> {
    let (filter_subject, filter_subjects) = match filters {
        [one] => (one.clone(), Vec::new()), // "": no filter
        many => (String::new(), many.to_vec()),
    };
    let consumer = st
        .create_consumer(PullConfig {
            filter_subject,
            filter_subjects,
            deliver_policy,
            ack_policy: AckPolicy::None,
            max_deliver: 1,
            inactive_threshold: Duration::from_secs(30),
            num_replicas: 1,
            memory_storage: true,
            ..Default::default()
        })
        .await
        .map_err(|e| NatsIoError::Consumer(settings.mask(&e.to_string())))?;
    let pending = consumer.cached_info().num_pending;
    let messages = consumer
        .stream()
        .max_messages_per_batch(batch)
        .heartbeat(Duration::from_secs(15))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| NatsIoError::Consumer(settings.mask(&e.to_string())))?;
    Ok((messages, pending))
}

fn connects(c: &async_nats::Client) -> u64 {
    c.statistics()
        .connects
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// The `k`-th `.`-separated token of `subject`.
fn token(subject: &str, k: usize) -> Option<&str> {
    subject.split('.').nth(k)
}

/// Start of a consumer reading lanes at these positions (`seen`, 0 = none yet): after the
/// lowest when every lane has one, else at `start_ns` (or the first message).
fn start_policy(seen: &[u64], start_ns: Option<i64>) -> Result<DeliverPolicy, NatsIoError> {
    match seen.iter().min() {
        Some(&low) if low > 0 => Ok(DeliverPolicy::ByStartSequence {
            start_sequence: low + 1,
        }),
        _ => match start_ns {
            None => Ok(DeliverPolicy::All),
            Some(ns) => Ok(DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
                    .map_err(|e| {
                        NatsIoError::Config(format!("start time {ns} ns is out of range: {e}"))
                    })?,
            }),
        },
    }
}

impl Consumer {
    /// Connect and create the consumer: messages of `filter_subject` with a stream
    /// sequence above `after_seq`; when `after_seq` is 0 and `start_ns` is given, messages
    /// stored at or after that time (ns since the Unix epoch, UTC). One lane (index 0).
    pub fn open(
        settings: &ConnectSettings,
        stream: &str,
        filter_subject: &str,
        after_seq: u64,
        start_ns: Option<i64>,
    ) -> Result<Consumer, NatsIoError> {
        let mut c = Consumer::connect(settings, stream, None, false, start_ns, None)?;
        c.add_lane("", filter_subject, after_seq);
        c.create()?;
        Ok(c)
    }

    /// Connect and look the stream up; the server-side consumer is made by the first
    /// [`Consumer::next_batch`] over the lanes added by then ([`Consumer::add_lane`]).
    /// `part_token`: the subject token naming a message's partition (`None`: one lane
    /// only). `read_whole`: the stream holds only partition subjects, so two lanes or more
    /// read it **without a filter**, the other partitions' messages dropped here:
    /// nats-server 2.15 delivers from an unfiltered consumer for ~1.7 µs of CPU per
    /// message, while a filtered one on a stream of a few thousand subjects costs ~11
    /// µs per message for a one-partition filter, ~63 for `tid.raw.>` and 120-370 for a
    /// list of partition filters (docs/NATSIO.md). `start_ns` / `end_ns` (ns since the epoch, UTC):
    /// where lanes without a resume point start; messages stored after `end_ns` are not
    /// read.
    pub fn connect(
        settings: &ConnectSettings,
        stream: &str,
        part_token: Option<usize>,
        read_whole: bool,
        start_ns: Option<i64>,
        end_ns: Option<i64>,
    ) -> Result<Consumer, NatsIoError> {
        start_policy(&[], start_ns)?; // a start time out of range fails here
        let rt = runtime("tidstream-natsio-consumer")?;
        let events = EventLog::default();
        let (client, st) = rt.block_on(async {
            let client = settings.connect_logged(events.clone()).await?;
            let js = async_nats::jetstream::new(client.clone());
            let st = js.get_stream(stream).await.map_err(|e| {
                NatsIoError::Consumer(settings.mask(&format!("stream {stream:?}: {e}")))
            })?;
            Ok::<_, NatsIoError>((client, st))
        })?;
        let connects = connects(&client);
        Ok(Consumer {
            io: Some((None, client)),
            rt,
            last_seq: 0,
            initial_pending: 0,
            events,
            st,
            lanes: Vec::new(),
            part_token,
            read_whole,
            start_ns,
            end_ns,
            past_end: false,
            pending: 0,
            read_seq: 0,
            stale: true,
            retry_at: None,
            consumer_seq: 0,
            missed_heartbeat: false,
            connects,
            settings: settings.clone(),
        })
    }

    /// Add a partition: messages whose `part_token`-th subject token is `key`, matched
    /// on the server by `filter`, after stream sequence `after_seq` (0: from `start_ns`
    /// or the first message). Returns its lane index. A lane added after the consumer
    /// was made recreates it at the next batch (from the lowest position still needed;
    /// the other lanes drop what they already have).
    pub fn add_lane(&mut self, key: &str, filter: &str, after_seq: u64) -> usize {
        self.lanes.push(Lane {
            key: key.to_string(),
            filter: filter.to_string(),
            seen: after_seq,
            queue: Default::default(),
            open: true,
        });
        self.stale = true;
        self.lanes.len() - 1
    }

    /// Close lane `lane`: its queue is dropped and so are its messages read later.
    pub fn close_lane(&mut self, lane: usize) {
        if let Some(l) = self.lanes.get_mut(lane) {
            l.open = false;
            l.queue = Default::default();
        }
    }

    /// The server-side filters: the open lanes' (none open: empty), or none at all (an
    /// empty filter) when two lanes or more read a stream of partitions only.
    fn filters(&self) -> Vec<String> {
        let mut f: Vec<String> = self
            .lanes
            .iter()
            .filter(|l| l.open)
            .map(|l| l.filter.clone())
            .collect();
        f.sort();
        f.dedup();
        if self.read_whole && self.part_token.is_some() && f.len() >= 2 {
            return vec![String::new()];
        }
        f
    }

    /// Make (or make again) the server-side consumer from the lowest position the open
    /// lanes still need.
    fn create(&mut self) -> Result<(), NatsIoError> {
        let seen: Vec<u64> = self
            .lanes
            .iter()
            .filter(|l| l.open)
            .map(|l| l.seen)
            .collect();
        let filters = self.filters();
        if filters.is_empty() {
            return Ok(());
        }
        let policy = start_policy(&seen, self.start_ns)?;
        let Some((_, client)) = self.io.as_ref() else {
            return Ok(());
        };
        let now = connects(client);
        let batch = PULL_PER_LANE * seen.len().max(1);
        let (messages, pending) =
            self.rt
                .block_on(ordered(&self.st, &filters, policy, batch, &self.settings))?;
        let _guard = self.rt.enter();
        if let Some((old, _)) = self.io.as_mut() {
            drop(old.replace(Box::pin(messages)));
        }
        self.initial_pending = pending;
        self.pending = pending;
        // Reads start again from here: a lane's position must not count what this
        // consumer has not read yet.
        self.read_seq = match policy {
            DeliverPolicy::ByStartSequence { start_sequence } => start_sequence - 1,
            _ => 0,
        };
        self.stale = false;
        self.retry_at = None;
        self.consumer_seq = 0;
        self.missed_heartbeat = false;
        self.connects = now;
        Ok(())
    }

    /// After a reconnect, a new consumer from the lowest position the lanes still need:
    /// the server may have lost the old one (a restart), and async-nats would only notice
    /// after two missed 15-s heartbeats. Nothing is lost or repeated: each lane drops
    /// what it already has.
    fn recreate_after_reconnect(&mut self, errors: &mut Vec<String>) {
        let Some((Some(_), client)) = self.io.as_ref() else {
            return;
        };
        if connects(client) == self.connects
            || client.connection_state() != async_nats::connection::State::Connected
        {
            return;
        }
        let low = self
            .lanes
            .iter()
            .filter(|l| l.open)
            .map(|l| l.seen)
            .min()
            .unwrap_or(0);
        match self.create() {
            Ok(()) => errors.push(format!(
                "reconnected: consumer recreated after stream sequence {low}"
            )),
            Err(e) => errors.push(format!("reconnected, consumer not recreated yet: {e}")),
        }
    }

    /// Up to `max_msgs` messages of lane `lane` (0 for a consumer of one filter). Takes
    /// what the lane has read ahead, then reads from the server (queueing the other
    /// lanes' messages) until the lane has `max_msgs`, `timeout` has passed since the
    /// first wait, the stream's end (nothing pending), or some lane's queue is full
    /// ([`LANE_CAP_BATCHES`] batches: the other partitions must be taken first),
    /// whichever comes first. Blocks the calling thread. Fails only when the server-side
    /// consumer cannot be made the first time (later failures are transient errors).
    pub fn next_batch(
        &mut self,
        lane: usize,
        max_msgs: usize,
        timeout: Duration,
    ) -> Result<MessageBatch, NatsIoError> {
        let mut batch = MessageBatch::with_capacity(max_msgs.min(65_536));
        if lane >= self.lanes.len() {
            return Err(NatsIoError::Consumer(format!("no lane {lane}")));
        }
        let due = self.retry_at.is_none_or(|t| std::time::Instant::now() >= t);
        if self.stale && due {
            let first = matches!(self.io, Some((None, _)));
            if let Err(e) = self.create() {
                if first {
                    return Err(e);
                }
                self.retry_at = Some(std::time::Instant::now() + Duration::from_secs(1));
                batch.transient_errors.push(e.to_string());
            }
        }
        self.recreate_after_reconnect(&mut batch.transient_errors);
        let cap = max_msgs.saturating_mul(LANE_CAP_BATCHES).max(1);
        self.read(lane, max_msgs, cap, timeout, &mut batch.transient_errors);
        let l = &mut self.lanes[lane];
        let n = l.queue.len().min(max_msgs);
        for q in l.queue.drain(..n) {
            batch.push(&q.msg, q.seq, q.ts_ns);
        }
        if let Some(&s) = batch.seqs.last() {
            self.last_seq = s as u64;
            batch.num_pending = Some(self.pending);
        }
        batch.queued = l.queue.len() as u64;
        batch.consumer_pending = self.pending;
        let created = matches!(self.io, Some((Some(_), _))) && !self.stale;
        batch.at_end = l.queue.is_empty() && created && (self.pending == 0 || self.past_end);
        // Every message of this partition up to the last one read from the server has
        // been handed out when its queue is empty.
        batch.position = match l.queue.front() {
            None => l.seen.max(self.read_seq),
            Some(q) => q.seq - 1,
        };
        Ok(batch)
    }

    /// Read from the server into the lanes' queues (see [`Consumer::next_batch`]).
    fn read(
        &mut self,
        lane: usize,
        max_msgs: usize,
        cap: usize,
        timeout: Duration,
        errors: &mut Vec<String>,
    ) {
        let Consumer {
            io,
            rt,
            lanes,
            part_token,
            end_ns,
            past_end,
            pending,
            read_seq,
            stale,
            consumer_seq,
            missed_heartbeat,
            ..
        } = self;
        if *stale
            || *past_end
            || lanes[lane].queue.len() >= max_msgs
            || lanes.iter().any(|l| l.open && l.queue.len() >= cap)
        {
            return;
        }
        let Some((Some(messages), _)) = io.as_mut() else {
            return;
        };
        // The lane of a message on `subject` (`None`: no lane takes it).
        let lane_of = |lanes: &[Lane], subject: &str| match *part_token {
            None => (lanes.len() == 1).then_some(0),
            Some(k) => {
                let t = token(subject, k)?;
                lanes.iter().position(|l| l.key == t)
            }
        };
        // Unconstrained: tokio's cooperative budget would otherwise end a batch of buffered
        // messages after ~128 with a zero timeout.
        rt.block_on(tokio::task::unconstrained(async {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let m = match tokio::time::timeout_at(deadline, messages.next()).await {
                    Err(_) => break, // deadline
                    Ok(None) => {
                        errors.push("the consumer's message stream ended: made again".into());
                        *stale = true;
                        break;
                    }
                    Ok(Some(Err(e))) => {
                        // As async-nats' ordered consumer: made again (from the lanes'
                        // positions) when lost on the server or after two missed heartbeats.
                        match e.kind() {
                            MessagesErrorKind::MissingHeartbeat if !*missed_heartbeat => {
                                *missed_heartbeat = true;
                                continue;
                            }
                            MessagesErrorKind::MissingHeartbeat
                            | MessagesErrorKind::ConsumerDeleted
                            | MessagesErrorKind::NoResponders => {
                                errors.push(format!("{e}: consumer made again"));
                                *stale = true;
                                break;
                            }
                            _ => {
                                errors.push(e.to_string());
                                continue;
                            }
                        }
                    }
                    Ok(Some(Ok(m))) => m,
                };
                *missed_heartbeat = false;
                let info = match m.info() {
                    Ok(i) => i,
                    Err(e) => {
                        errors.push(format!("bad JetStream reply subject: {e}"));
                        continue;
                    }
                };
                if info.consumer_sequence != *consumer_seq + 1 {
                    // A message lost on the way (or a consumer replaced on the server):
                    // made again from the lanes' positions, nothing lost or repeated.
                    errors.push(format!(
                        "consumer sequence {} after {}: consumer made again",
                        info.consumer_sequence, consumer_seq
                    ));
                    *stale = true;
                    break;
                }
                *consumer_seq = info.consumer_sequence;
                let (seq, left) = (info.stream_sequence, info.pending);
                let ts_ns =
                    i64::try_from(info.published.unix_timestamp_nanos()).unwrap_or(i64::MAX);
                *pending = left;
                if end_ns.is_some_and(|end| ts_ns > end) {
                    *past_end = true; // stored in order: nothing later is in the window
                    break;
                }
                *read_seq = (*read_seq).max(seq);
                if let Some(i) = lane_of(lanes, m.message.subject.as_str()) {
                    let l = &mut lanes[i];
                    if l.open && seq > l.seen {
                        l.seen = seq;
                        l.queue.push_back(Queued {
                            msg: m.message,
                            seq,
                            ts_ns,
                        });
                        if l.queue.len() >= cap {
                            break; // full: its partition must be taken first
                        }
                    }
                }
                if left == 0 || lanes[lane].queue.len() >= max_msgs {
                    break; // caught up with the stream, or the batch is full
                }
            }
        }));
    }
}

impl Consumer {
    /// True while the connection is up.
    pub fn is_connected(&self) -> bool {
        self.io
            .as_ref()
            .is_some_and(|(_, c)| c.connection_state() == async_nats::connection::State::Connected)
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _guard = self.rt.enter();
        drop(self.io.take());
    }
}

/// Per-message outcome of [`Publisher::publish_batch`], columnar.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PublishResults {
    /// Stream sequence from the PubAck (0 when the message failed).
    pub seqs: Vec<i64>,
    /// The server reported the `Nats-Msg-Id` as already stored (not stored again).
    pub duplicate: Vec<bool>,
    /// `None` when acknowledged, else why not.
    pub errors: Vec<Option<String>>,
    /// Messages confirmed through ADR-50 fast-ingest batches (their `duplicate` is false
    /// even when the server dropped them as duplicates: a fast batch's acks do not say).
    pub fast: u64,
    /// Things the caller should log once (a stream refusing fast ingest).
    pub notes: Vec<String>,
}

impl PublishResults {
    /// Results for `n` messages, none confirmed yet (sequence 0, no duplicate, no error).
    fn pending(n: usize) -> Self {
        PublishResults {
            seqs: vec![0; n],
            duplicate: vec![false; n],
            errors: vec![None; n],
            ..Default::default()
        }
    }
}

/// Publishes to JetStream with `Nats-Msg-Id` and awaits every PubAck, or (with
/// [`Publisher::set_fast_flow`]) confirms whole batches through ADR-50 fast ingest.
pub struct Publisher {
    /// Dropped inside the runtime (see [`Consumer`]); `None` only while dropping.
    io: Option<(async_nats::jetstream::Context, async_nats::Client)>,
    rt: Runtime,
    settings: ConnectSettings,
    ack_timeout: Duration,
    /// Fast-ingest flow (the server acks at least every `fast_flow` messages); 0 = off.
    fast_flow: u16,
    /// Subject roots (first two tokens) whose stream refused fast ingest: per message.
    fast_refused: Mutex<Vec<String>>,
    /// Its connection's events.
    pub events: EventLog,
}

impl Publisher {
    /// Connect. `ack_timeout` bounds the wait for each PubAck.
    pub fn open(
        settings: &ConnectSettings,
        ack_timeout: Duration,
    ) -> Result<Publisher, NatsIoError> {
        let rt = runtime("tidstream-natsio-publisher")?;
        let events = EventLog::default();
        let (client, js) = rt.block_on(async {
            let client = settings.connect_logged(events.clone()).await?;
            let js = async_nats::jetstream::ContextBuilder::new()
                .timeout(ack_timeout)
                .build(client.clone());
            Ok::<_, NatsIoError>((client, js))
        })?;
        Ok(Publisher {
            io: Some((js, client)),
            rt,
            settings: settings.clone(),
            ack_timeout,
            fast_flow: 0,
            fast_refused: Mutex::new(Vec::new()),
            events,
        })
    }

    /// Publish whole batches ([`Publisher::publish_messages`] with `rows = None`) by ADR-50
    /// fast ingest, asking the server for an ack every `flow` messages (0 = per-message
    /// PubAcks only; values are capped to `1..=65535` by the type).
    pub fn set_fast_flow(&mut self, flow: u16) {
        self.fast_flow = flow;
    }

    /// Publish `subjects[i]`, `payloads[i]` with header `Nats-Msg-Id: msg_ids[i]` (no
    /// header when the id is empty), at most `max_inflight` PubAcks outstanding; waits for
    /// every ack. The slices must have the same length.
    pub fn publish_batch(
        &self,
        subjects: &[&str],
        payloads: &[&[u8]],
        msg_ids: &[&str],
        max_inflight: usize,
    ) -> Result<PublishResults, NatsIoError> {
        let n = subjects.len();
        if payloads.len() != n || msg_ids.len() != n {
            return Err(NatsIoError::Publish(format!(
                "{n} subjects, {} payloads and {} ids: lengths differ",
                payloads.len(),
                msg_ids.len()
            )));
        }
        let mut msgs = Messages::default();
        for i in 0..n {
            msgs.push(subjects[i], msg_ids[i], &[], payloads[i])
                .map_err(|e| NatsIoError::Publish(e.to_string()))?;
        }
        self.publish_messages(&msgs, None, max_inflight)
    }
}

impl Publisher {
    /// True while the connection is up.
    pub fn is_connected(&self) -> bool {
        self.io
            .as_ref()
            .is_some_and(|(_, c)| c.connection_state() == async_nats::connection::State::Connected)
    }

    /// Connections made so far (1 + reconnects).
    pub fn connects(&self) -> u64 {
        self.io.as_ref().map_or(0, |(_, c)| {
            c.statistics()
                .connects
                .load(std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// Publish messages `rows` of `msgs` (all when `None`) with their `Nats-Msg-Id` and
    /// headers and wait until each is confirmed stored (or a known duplicate) or failed.
    /// Row `k` of the result is the `k`-th message published. A bad row index is an error
    /// before anything is sent.
    ///
    /// With fast ingest on ([`Publisher::set_fast_flow`]) and `rows = None`, each stream's
    /// messages go as ADR-50 fast-ingest batches ([`FAST_MAX_MSGS`] at most, see
    /// [`Publisher::publish_fast`]); otherwise (and for retries, `rows = Some`) one
    /// PubAck per message, at most `max_inflight` outstanding.
    pub fn publish_messages(
        &self,
        msgs: &Messages,
        rows: Option<&[i64]>,
        max_inflight: usize,
    ) -> Result<PublishResults, NatsIoError> {
        if rows.is_none() && self.fast_flow > 0 {
            return self.publish_fast(msgs, max_inflight);
        }
        self.publish_each(msgs, rows, max_inflight)
    }

    /// One PubAck per message (see [`Publisher::publish_messages`]).
    fn publish_each(
        &self,
        msgs: &Messages,
        rows: Option<&[i64]>,
        max_inflight: usize,
    ) -> Result<PublishResults, NatsIoError> {
        let pick: Vec<usize> = match rows {
            None => (0..msgs.len()).collect(),
            Some(rows) => rows
                .iter()
                .map(|&r| {
                    usize::try_from(r)
                        .ok()
                        .filter(|&i| i < msgs.len())
                        .ok_or_else(|| {
                            NatsIoError::Publish(format!(
                                "row {r} out of range ({} messages)",
                                msgs.len()
                            ))
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let n = pick.len();
        let max_inflight = max_inflight.max(1);
        let mut out = PublishResults::pending(n);
        let Some((js, _)) = self.io.as_ref() else {
            return Err(NatsIoError::Publish("publisher closed".into()));
        };
        let settings = &self.settings;
        self.rt.block_on(async {
            let mut inflight: FuturesOrdered<_> = FuturesOrdered::new();
            let mut record =
                |k: usize, r: Result<async_nats::jetstream::publish::PublishAck, String>| match r {
                    Ok(ack) => {
                        out.seqs[k] = ack.sequence as i64;
                        out.duplicate[k] = ack.duplicate;
                    }
                    Err(e) => out.errors[k] = Some(settings.mask(&e)),
                };
            for (k, &i) in pick.iter().enumerate() {
                let lines = msgs.header_lines(i);
                let mut msg =
                    PublishMessage::build().payload(bytes::Bytes::copy_from_slice(msgs.payload(i)));
                if !lines.is_empty() {
                    msg = msg.headers(header_map(lines));
                }
                if !msgs.msg_id(i).is_empty() {
                    msg = msg.message_id(msgs.msg_id(i));
                }
                match js.send_publish(msgs.subject(i).to_string(), msg).await {
                    Ok(fut) => {
                        let f: PublishAckFuture = fut;
                        inflight.push_back(async move { (k, f.await.map_err(|e| e.to_string())) });
                    }
                    Err(e) => record(k, Err(e.to_string())),
                }
                while inflight.len() >= max_inflight {
                    if let Some((j, r)) = inflight.next().await {
                        record(j, r);
                    }
                }
            }
            while let Some((j, r)) = inflight.next().await {
                record(j, r);
            }
        });
        Ok(out)
    }
}

/// Messages in one fast-ingest batch at most (the sink's batches are about this size;
/// a larger write is cut, each piece confirmed by its own final ack).
pub const FAST_MAX_MSGS: usize = 1000;

/// Outcome of one fast-ingest batch.
enum FastOutcome {
    /// The stream does not allow fast ingest (`allow_batched`, error 10205): nothing stored.
    Refused(String),
    /// The first `confirmed` messages are stored (or were duplicates); the rest are not
    /// confirmed, for `error`. `seq`: the batch's last stored stream sequence (0 if none).
    Done {
        confirmed: usize,
        seq: u64,
        error: Option<String>,
    },
}

/// What the replies of one fast batch said so far.
#[derive(Default)]
struct FastAcks {
    /// Highest batch sequence the server acknowledged (gap mode `fail`: every message
    /// up to it is stored).
    last_ack: u64,
    /// Ack interval the server announced.
    flow: u64,
    /// The final PubAck: (`count` of messages taken, last stream sequence).
    done: Option<(u64, u64)>,
    refused: Option<String>,
    /// A gap, a message error or an API error: stop sending, wait for the final ack.
    failed: Option<String>,
    /// No stream listens on the subject (no responders): no final ack will come.
    no_stream: bool,
}

impl FastAcks {
    fn over(&self) -> bool {
        self.done.is_some() || self.refused.is_some() || self.failed.is_some() || self.no_stream
    }

    /// Apply one reply from the batch inbox (replies of other batches are ignored).
    fn handle(&mut self, m: &async_nats::Message, batch_prefix: &str) {
        if !m.subject.as_str().starts_with(batch_prefix) {
            return;
        }
        if m.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            self.no_stream = true;
            self.failed
                .get_or_insert_with(|| "no stream for the subject (no responders)".into());
            return;
        }
        let v: serde_json::Value = match serde_json::from_slice(&m.payload) {
            Ok(v) => v,
            Err(e) => {
                self.failed
                    .get_or_insert_with(|| format!("unreadable fast-ingest reply: {e}"));
                return;
            }
        };
        let u = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        match v.get("type").and_then(serde_json::Value::as_str) {
            Some("ack") => {
                self.last_ack = self.last_ack.max(u("seq"));
                self.flow = u("msgs").max(1);
            }
            Some("gap") => {
                self.failed.get_or_insert_with(|| {
                    format!(
                        "fast-ingest gap: server had message {} then {}",
                        u("last_seq"),
                        u("seq")
                    )
                });
            }
            Some("err") => {
                let e = v.get("error").map(|e| e.to_string()).unwrap_or_default();
                self.failed.get_or_insert_with(|| {
                    format!("fast-ingest message {} refused: {e}", u("seq"))
                });
            }
            _ => {
                if let Some(e) = v.get("error") {
                    let code = e.get("err_code").and_then(serde_json::Value::as_u64);
                    if code == Some(10205) {
                        self.refused.get_or_insert_with(|| e.to_string());
                    } else if self.done.is_none() {
                        self.failed.get_or_insert_with(|| e.to_string());
                    }
                } else if v.get("count").is_some() {
                    self.done.get_or_insert((u("count"), u("seq")));
                } else if v.get("stream").is_some() {
                    // A plain PubAck: a server before 2.14 took the `$FI` reply for an
                    // ordinary one and stored the message alone. Per message from here
                    // (the same ids: what it stored comes back as duplicates).
                    self.refused.get_or_insert_with(|| {
                        "the server answered with per-message PubAcks (nats-server < 2.14?)".into()
                    });
                }
            }
        }
    }
}

/// `Nats-Msg-Id` and the other header lines of message `i`.
fn fast_headers(msgs: &Messages, i: usize) -> async_nats::HeaderMap {
    let mut h = header_map(msgs.header_lines(i));
    if !msgs.msg_id(i).is_empty() {
        h.insert("Nats-Msg-Id", msgs.msg_id(i));
    }
    h
}

/// One ADR-50 fast-ingest batch of messages `rows` of `msgs` (one stream), gap mode
/// `fail`. Reply subjects `<batch_prefix><seq>.<op>.$FI` (op 0 start, 1 append, 2 commit
/// with the last message, 4 ping); the server acks every `flow` messages and answers the
/// commit with `{"count", "seq"}`. At most two ack intervals are unacknowledged; while
/// waiting, a ping every `timeout / 3` asks the server to repeat its last ack. Gives up
/// after `timeout` without a reply: then what the last ack covered is confirmed.
async fn fast_batch(
    client: &async_nats::Client,
    sub: &mut async_nats::Subscriber,
    msgs: &Messages,
    rows: &[usize],
    batch_prefix: &str,
    flow: u16,
    timeout: Duration,
) -> FastOutcome {
    use futures_util::FutureExt;
    let n = rows.len() as u64;
    let mut st = FastAcks {
        flow: u64::from(flow.max(1)),
        ..Default::default()
    };
    let first_subject = msgs.subject(rows[0]).to_string();
    let ping_every = (timeout / 3).max(Duration::from_millis(100));
    let mut sent = 0_u64;
    let mut timed_out = false;
    // Wait for the next reply; ping when quiet; false when `timeout` passed without one.
    // Wait for the next reply until `deadline`, pinging when quiet; false at the deadline.
    macro_rules! next_reply {
        ($deadline:expr) => {{
            let deadline = $deadline;
            loop {
                let wake = (tokio::time::Instant::now() + ping_every).min(deadline);
                match tokio::time::timeout_at(wake, sub.next()).await {
                    Ok(Some(m)) => {
                        st.handle(&m, batch_prefix);
                        break true;
                    }
                    Ok(None) => {
                        st.failed
                            .get_or_insert_with(|| "reply subscription closed".into());
                        break false;
                    }
                    Err(_) if tokio::time::Instant::now() >= deadline => break false,
                    Err(_) => {
                        let ping = format!("{batch_prefix}{sent}.4.$FI");
                        let _ = client
                            .publish_with_reply(first_subject.clone(), ping, bytes::Bytes::new())
                            .await;
                    }
                }
            }
        }};
    }
    for (j, &i) in rows.iter().enumerate() {
        let seq = j as u64 + 1;
        // Stalled: wait for the acks to catch up (`timeout` without progress at most).
        let mut deadline = tokio::time::Instant::now() + timeout;
        let mut seen = st.last_ack;
        while !st.over() && st.last_ack + 2 * st.flow <= seq {
            if !next_reply!(deadline) {
                timed_out = true;
                break;
            }
            if st.last_ack > seen {
                seen = st.last_ack;
                deadline = tokio::time::Instant::now() + timeout;
            }
        }
        while let Some(Some(m)) = sub.next().now_or_never() {
            st.handle(&m, batch_prefix);
        }
        if timed_out || st.over() {
            break;
        }
        let op = if seq == n {
            2
        } else if seq == 1 {
            0
        } else {
            1
        };
        let reply = format!("{batch_prefix}{seq}.{op}.$FI");
        let payload = bytes::Bytes::copy_from_slice(msgs.payload(i));
        if let Err(e) = client
            .publish_with_reply_and_headers(
                msgs.subject(i).to_string(),
                reply,
                fast_headers(msgs, i),
                payload,
            )
            .await
        {
            st.failed.get_or_insert_with(|| e.to_string());
            break;
        }
        sent = seq;
    }
    // The final PubAck (also after a gap or an error: it says how far the batch got).
    // No stream (no responders) sends no final ack: nothing to wait for then.
    if sent > 0 && !timed_out && !st.no_stream {
        let mut deadline = tokio::time::Instant::now() + timeout;
        let mut seen = st.last_ack;
        while st.done.is_none() && st.refused.is_none() && !st.no_stream {
            if !next_reply!(deadline) {
                break;
            }
            if st.last_ack > seen {
                seen = st.last_ack;
                deadline = tokio::time::Instant::now() + timeout;
            }
        }
    }
    if let Some(why) = st.refused {
        return FastOutcome::Refused(why);
    }
    let n = rows.len();
    match st.done {
        Some((count, seq)) => FastOutcome::Done {
            confirmed: (count as usize).min(n),
            seq,
            error: (count < n as u64).then(|| {
                st.failed
                    .unwrap_or_else(|| format!("fast batch ended after {count} of {n} messages"))
            }),
        },
        None => FastOutcome::Done {
            confirmed: (st.last_ack as usize).min(n),
            seq: 0,
            error: Some(st.failed.unwrap_or_else(|| {
                format!(
                    "no fast-ingest ack within {:.1} s (last ack covered {} of {n} messages)",
                    timeout.as_secs_f64(),
                    st.last_ack
                )
            })),
        },
    }
}

/// First two subject tokens (`tid.readings`): one stream each in tidstream's layout.
fn subject_root(subject: &str) -> &str {
    match subject.match_indices('.').nth(1) {
        Some((k, _)) => &subject[..k],
        None => subject,
    }
}

impl Publisher {
    /// Publish every message of `msgs` through ADR-50 fast ingest (nats-server 2.14+,
    /// stream setting `allow_batched`): grouped by stream (first two subject tokens),
    /// [`FAST_MAX_MSGS`] per batch, batches one after the other. A message counts as
    /// confirmed once the server's flow acks or the batch's final PubAck cover it (gap mode
    /// `fail`: stored, or dropped as a duplicate of its `Nats-Msg-Id`); the rest of a batch
    /// that failed is reported failed (the caller retries it per message, same ids).
    /// Subjects starting with `$` (KV puts) and streams that refused fast ingest (error
    /// 10205; remembered, one note) go per message.
    fn publish_fast(
        &self,
        msgs: &Messages,
        max_inflight: usize,
    ) -> Result<PublishResults, NatsIoError> {
        let n = msgs.len();
        let mut out = PublishResults::pending(n);
        let Some((_, client)) = self.io.as_ref() else {
            return Err(NatsIoError::Publish("publisher closed".into()));
        };
        let groups = msgs.atomic_groups(FAST_MAX_MSGS);
        let mut per_message: Vec<i64> = Vec::new();
        let refused_before = self
            .fast_refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let flow = self.fast_flow;
        let timeout = self.ack_timeout;
        let settings = &self.settings;
        let mut refused_now: Vec<(String, String)> = Vec::new();
        self.rt.block_on(async {
            let inbox = client.new_inbox();
            let token = inbox.rsplit('.').next().unwrap_or("b").to_string();
            // Without the reply subscription every message goes per message.
            let mut sub = client.subscribe(format!("{inbox}.>")).await.ok();
            for (g, rows) in groups.iter().enumerate() {
                let rows: Vec<usize> = rows.iter().map(|&r| r as usize).collect();
                let root = subject_root(msgs.subject(rows[0]));
                let skip = root.starts_with('$')
                    || refused_before.iter().any(|r| r == root)
                    || refused_now.iter().any(|(r, _)| r == root);
                let Some(sub) = sub.as_mut().filter(|_| !skip) else {
                    per_message.extend(rows.iter().map(|&r| r as i64));
                    continue;
                };
                // Batch id (<= 64 characters, unique): the inbox token and the group.
                let prefix = format!("{inbox}.{token}g{g}.{flow}.fail.");
                match fast_batch(client, sub, msgs, &rows, &prefix, flow, timeout).await {
                    FastOutcome::Refused(why) => {
                        refused_now.push((root.to_string(), why));
                        per_message.extend(rows.iter().map(|&r| r as i64));
                    }
                    FastOutcome::Done {
                        confirmed,
                        seq,
                        error,
                    } => {
                        for (k, &i) in rows.iter().enumerate() {
                            if k < confirmed {
                                out.seqs[i] = seq as i64;
                            } else {
                                out.errors[i] = Some(
                                    settings.mask(
                                        error
                                            .as_deref()
                                            .unwrap_or("not confirmed by the fast batch"),
                                    ),
                                );
                            }
                        }
                        out.fast += confirmed as u64;
                    }
                }
            }
            if let Some(mut s) = sub {
                let _ = s.unsubscribe().await;
            }
        });
        if !refused_now.is_empty() {
            let mut r = self.fast_refused.lock().unwrap_or_else(|p| p.into_inner());
            for (root, why) in refused_now {
                out.notes.push(format!(
                    "the stream of {root}.* refused fast-ingest batches ({why}): publishing per \
                     message to it; run `tidstream nats init` to allow them (allow_batched)"
                ));
                r.push(root);
            }
        }
        if !per_message.is_empty() {
            let r = self.publish_each(msgs, Some(&per_message), max_inflight)?;
            for (k, &i) in per_message.iter().enumerate() {
                let i = i as usize;
                out.seqs[i] = r.seqs[k];
                out.duplicate[i] = r.duplicate[k];
                out.errors[i] = r.errors[k].clone();
            }
        }
        Ok(out)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _guard = self.rt.enter();
        drop(self.io.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_hides_password_token_and_userinfo() {
        let s = ConnectSettings {
            urls: vec!["nats://bob:s3cr3t@h:4222".into()],
            password: Some("pw-123".into()),
            token: Some("tok-9".into()),
            ..Default::default()
        };
        let m = s.mask("failed pw-123 tok-9 nats://bob:s3cr3t@h:4222");
        assert!(
            !m.contains("pw-123") && !m.contains("tok-9") && !m.contains("s3cr3t"),
            "{m}"
        );
        assert_eq!(s.redacted_urls(), "nats://***@h:4222");
    }

    #[test]
    fn short_secrets_are_masked_only_where_they_stand_alone() {
        let s = ConnectSettings {
            urls: vec!["nats://u:b@h:4222".into()],
            password: Some("b".into()),
            token: Some("long-token-123".into()),
            ..Default::default()
        };
        assert_eq!(
            s.mask("Publish to b failed (b): nats://u:b@h:4222"),
            "Publish to *** failed (***): nats://***@h:4222"
        );
        // A long secret is masked even inside a word.
        assert_eq!(s.mask("xlong-token-123y"), "x***y");
        // Back-to-back occurrences, and one at each end.
        assert_eq!(s.mask("b b,b"), "*** ***,***");
        assert_eq!(s.mask("bb"), "bb");
    }

    #[test]
    fn unreadable_seed_file_is_a_config_error_without_the_path_contents() {
        let s = ConnectSettings {
            urls: vec!["nats://127.0.0.1:1".into()],
            nkey_seed_file: Some("/nonexistent/seed.nk".into()),
            ..Default::default()
        };
        let rt = runtime("t").unwrap();
        let e = rt.block_on(s.connect()).unwrap_err();
        assert!(matches!(e, NatsIoError::Config(_)), "{e}");
    }

    fn reply(subject: &str, payload: &str) -> async_nats::Message {
        async_nats::Message {
            subject: subject.into(),
            reply: None,
            payload: bytes::Bytes::copy_from_slice(payload.as_bytes()),
            headers: None,
            status: None,
            description: None,
            length: payload.len(),
        }
    }

    #[test]
    fn fast_acks_follow_the_server_replies() {
        let p = "_INBOX.a.ag0.500.fail.";
        let mut st = FastAcks {
            flow: 500,
            ..Default::default()
        };
        st.handle(
            &reply(
                "_INBOX.a.ag0.500.fail.1.0.$FI",
                r#"{"type":"ack","seq":0,"msgs":200}"#,
            ),
            p,
        );
        assert_eq!((st.last_ack, st.flow, st.over()), (0, 200, false));
        st.handle(
            &reply(
                "_INBOX.a.ag0.500.fail.400.1.$FI",
                r#"{"type":"ack","seq":400,"msgs":200}"#,
            ),
            p,
        );
        assert_eq!(st.last_ack, 400);
        // a late ack of an older batch of the same call is ignored
        st.handle(
            &reply(
                "_INBOX.a.ag1.500.fail.9.1.$FI",
                r#"{"type":"ack","seq":900,"msgs":1}"#,
            ),
            p,
        );
        assert_eq!((st.last_ack, st.flow), (400, 200));
        st.handle(
            &reply(
                "_INBOX.a.ag0.500.fail.5.2.$FI",
                r#"{"stream":"R","seq":77,"batch":"ag0","count":450}"#,
            ),
            p,
        );
        assert_eq!(st.done, Some((450, 77)));
        assert!(st.over() && st.failed.is_none() && st.refused.is_none());
    }

    #[test]
    fn fast_acks_gap_error_and_refusal() {
        let p = "_INBOX.a.b.10.fail.";
        let mut st = FastAcks::default();
        st.handle(
            &reply(
                "_INBOX.a.b.10.fail.4.1.$FI",
                r#"{"type":"gap","last_seq":2,"seq":4}"#,
            ),
            p,
        );
        assert!(
            st.failed.as_deref().unwrap().contains("gap"),
            "{:?}",
            st.failed
        );
        st.handle(
            &reply(
                "_INBOX.a.b.10.fail.4.1.$FI",
                r#"{"stream":"R","seq":20,"batch":"b","count":2}"#,
            ),
            p,
        );
        assert_eq!(st.done, Some((2, 20)));
        // an error after the final ack (batch unknown to the server now) changes nothing
        st.handle(&reply("_INBOX.a.b.10.fail.5.2.$FI", r#"{"error":{"code":400,"err_code":10208,"description":"batch publish ID unknown"},"stream":"R","seq":0}"#), p);
        assert_eq!(st.done, Some((2, 20)));

        let mut st = FastAcks::default();
        st.handle(&reply("_INBOX.a.b.10.fail.1.0.$FI", r#"{"error":{"code":400,"err_code":10205,"description":"batch publish is disabled"},"stream":"P","seq":0}"#), p);
        assert!(st.refused.is_some() && st.over());

        let mut st = FastAcks::default();
        st.handle(&reply("_INBOX.a.b.10.fail.3.1.$FI", r#"{"type":"err","seq":3,"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 1"}}"#), p);
        assert!(st.failed.as_deref().unwrap().contains("10071"));
        let mut st = FastAcks::default();
        st.handle(
            &reply("_INBOX.a.b.10.fail.1.0.$FI", r#"{"stream":"P","seq":5}"#),
            p,
        );
        assert!(st.refused.as_deref().unwrap().contains("2.14"));

        let mut st = FastAcks::default();
        st.handle(&reply("_INBOX.a.b.10.fail.3.1.$FI", "not json"), p);
        assert!(st.failed.is_some());
        let mut m = reply("_INBOX.a.b.10.fail.1.0.$FI", "");
        m.status = Some(async_nats::StatusCode::NO_RESPONDERS);
        let mut st = FastAcks::default();
        st.handle(&m, p);
        assert!(st.failed.as_deref().unwrap().contains("no stream"));
    }

    #[test]
    fn partition_tokens_and_start_positions() {
        assert_eq!(token("tid.raw.3.ttn.dev", 2), Some("3"));
        assert_eq!(token("tid.raw", 2), None);
        // Every lane has a position: after the lowest.
        assert!(matches!(
            start_policy(&[40, 7, 99], None),
            Ok(DeliverPolicy::ByStartSequence { start_sequence: 8 })
        ));
        // One lane without: from the start time, or the first message.
        assert!(matches!(
            start_policy(&[40, 0], None),
            Ok(DeliverPolicy::All)
        ));
        assert!(matches!(
            start_policy(&[0], Some(1_700_000_000_000_000_000)),
            Ok(DeliverPolicy::ByStartTime { .. })
        ));
        assert!(matches!(start_policy(&[], None), Ok(DeliverPolicy::All)));
    }

    #[test]
    fn subject_roots() {
        assert_eq!(subject_root("tid.readings.3.C-1"), "tid.readings");
        assert_eq!(subject_root("tid.dlq"), "tid.dlq");
        assert_eq!(subject_root("x"), "x");
    }

    #[test]
    fn connect_refused_names_the_server_but_no_secret() {
        let s = ConnectSettings {
            urls: vec!["nats://u:hunter2@127.0.0.1:1".into()],
            connect_timeout_s: 1.0,
            ..Default::default()
        };
        let rt = runtime("t").unwrap();
        let e = rt.block_on(s.connect()).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("127.0.0.1:1"), "{e}");
    }
}
