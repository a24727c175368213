"""Type stub for the compiled Rust core (``tidstream._core``).

Users call the wrappers in :mod:`tidstream`; this module is private and its buffer-level
signatures may change between minor versions.
"""

from collections.abc import Callable
from typing import Any, TypedDict, final

import numpy as np
import numpy.typing as npt

__version__: str
#: "release" or "debug"
build_profile: str

class _ModelInfo(TypedDict):
    name: str
    vendor: str
    description: str
    fports: list[int]
    engine: str
    can_encode: bool

def models() -> list[str]:
    """Names of the supported models, sorted."""

def model_info(model: str) -> _ModelInfo:
    """Facts about a model."""

def decode_vendor(model: str, payload: bytes, fport: int | None = None) -> Any:
    """Vendor-native decode of one frame (a dict); raises DecodeError."""

def decode_batch_buffers(
    model: str,
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int32] | npt.NDArray[np.int64],
    validity: npt.NDArray[np.uint8] | None = None,
    validity_offset: int = 0,
    fports: npt.NDArray[np.int32] | None = None,
    fport: int | None = None,
) -> dict[str, Any]:
    """Normalized decode of Arrow binary buffers; returns column buffers. Releases the GIL."""

def encode(
    model: str,
    *,
    distance_mm: float | None = None,
    fill_pct_reported: float | None = None,
    temperature_c: float | None = None,
    battery_pct: float | None = None,
    battery_v: float | None = None,
    tilt: bool | None = None,
    fire_alarm: bool | None = None,
    alarm_flags: int = 0,
    measured_at_ms: int | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    stored: list[tuple[int, float | None]] | None = None,
) -> bytes:
    """Encode one reading into a frame; raises EncodeError."""

def encode_batch_buffers(
    model: str, n: int, columns: dict[str, Any]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint8]]:
    """Encode n readings; returns (offsets, data) of a binary array. Releases the GIL."""

def decode_uplinks_buffers(
    format: str,
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int32] | npt.NDArray[np.int64],
    validity: npt.NDArray[np.uint8] | None = None,
    validity_offset: int = 0,
) -> dict[str, Any]:
    """Parse uplink JSON envelopes given as Arrow binary buffers. Releases the GIL."""

def decode_uplinks_list(format: str, messages: list[bytes | str | None]) -> dict[str, Any]:
    """Parse uplink JSON envelopes given as a list, read in place. Releases the GIL."""

def fill_ratio(
    distance_mm: npt.NDArray[np.float64],
    depth_mm: npt.NDArray[np.float64],
    offset_mm: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Fill ratio per reading (0..1.5), NaN where unknown. Releases the GIL."""

@final
class JsonStrings:
    """A string table for ``"dict"`` columns of :func:`json_rows`, converted once and reused."""

    def __new__(cls, values: list[str | None]) -> JsonStrings: ...
    def __len__(self) -> int: ...

def json_rows(n: int, columns: list[tuple[str, str, Any, Any]]) -> list[bytes]:
    """``n`` compact JSON objects (bytes), one per row, keys in the order of ``columns``.

    Each column is ``(key, kind, a, b)``: ``("f64", float64 array, None)`` (NaN and
    infinities are null); ``("i64", int64 array, bool mask or None)``; ``("bool", int8
    array, None)`` (-1 null, 0 false, 1 true); ``("ts_ns", int64 ns array, bool mask or
    None)`` (RFC 3339 UTC strings with microseconds and ``Z``); ``("dict", int64 indices,
    list[str | None] or JsonStrings)`` (negative index = null); ``("intstr", int64 array, (prefix,
    suffix))``; ``("literal", json_text, None)``. Floats are written as orjson writes them.
    Arrays must be contiguous. Raises ValueError for a short column or an unknown kind,
    TypeError for a wrong array type. Releases the GIL while writing.
    """

def json_messages(
    n: int,
    columns: list[tuple[str, str, Any, Any]],
    subject: list[str | tuple[Any, ...]],
    msg_id: list[str | tuple[Any, ...]],
) -> PubBatch:
    """``n`` messages: payloads are the JSON rows of :func:`json_rows` (same ``columns``),
    subjects and ``Nats-Msg-Id`` built row by row from pieces: a ``str`` (literal),
    ``("dict", int64 indices, list[str | None] or JsonStrings)`` or ``("int", int64
    array)``. Raises ValueError for a null piece, a short column or a subject NATS cannot
    publish to. Releases the GIL while writing."""

@final
class PubBatch:
    """Messages for the JetStream sink (subject, ``Nats-Msg-Id``, headers, payload each)
    in one Rust buffer; written out as NATS ``HPUB`` commands in one call."""

    def __new__(cls) -> PubBatch: ...
    def __len__(self) -> int: ...
    def push(self, subject: str, data: bytes, msg_id: str, headers: dict[str, str] | None = None) -> None:
        """Append one message; CR/LF in the id and headers become spaces. Raises
        ValueError for a subject NATS cannot publish to (empty token, space, wildcard)."""
    def extend(self, other: PubBatch, rows: npt.NDArray[np.int64] | None = None) -> None:
        """Append messages ``rows`` of ``other`` (all when None), in that order."""
    def subject(self, i: int) -> str: ...
    def msg_id(self, i: int) -> str: ...
    def data(self, i: int) -> bytes: ...
    def messages(self) -> list[tuple[str, bytes, str, dict[str, str] | None]]:
        """Every message as ``(subject, data, msg_id, headers or None)``."""
    def max_payload_len(self) -> int:
        """Largest payload in bytes."""
    def encode(self, reply_prefix: bytes, rows: npt.NDArray[np.int64] | None = None) -> bytes:
        """``HPUB`` commands of messages ``rows`` (all when None), the k-th with the reply
        subject ``reply_prefix + str(k)``: one PubAck per message. Releases the GIL."""
    def encode_atomic(self, rows: npt.NDArray[np.int64], batch_id: str, reply: bytes) -> bytes:
        """One ADR-50 atomic batch of messages ``rows`` (``Nats-Batch-Id``,
        ``Nats-Batch-Sequence`` 1..n, ``Nats-Batch-Commit: 1`` and the reply on the last:
        one PubAck). Releases the GIL."""
    def atomic_groups(self, max_msgs: int) -> list[npt.NDArray[np.int64]]:
        """Message indexes grouped by the first two subject tokens (one stream each in
        tidstream's layout), order kept, at most ``max_msgs`` per group."""

# -- the ingest step's kernel (core/src/ingest.rs, bindings in core/src/py/ingest.rs) ----

@final
class IngestIndex:
    """The registry as the ingest kernel reads it, built once per ``Ingestor``: device id
    -> row (the last row of a repeated id), and per row its model, geometry, coordinates,
    the strings a reading carries (rendered to JSON once) and its readings subject."""

    def __new__(
        cls,
        device_id: list[str | None],
        model: list[str | None],
        depth_mm: npt.NDArray[np.float64],
        offset_mm: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        lon: npt.NDArray[np.float64],
        container_id: list[str | None],
        container_kind: list[str | None],
        stream: list[str | None],
        commune_insee: list[str | None],
        commune: list[str | None],
        subject: list[str | None],
    ) -> IngestIndex: ...
    def __len__(self) -> int: ...

@final
class FcntState:
    """Last accepted ``(fcnt, raw_seq)`` per device (the state of ``FcntGuard``; int64)."""

    def __new__(cls, last: dict[str, tuple[int, int]] | None = None) -> FcntState: ...
    def check(self, device: str, fcnt: int | None, raw_seq: int) -> str | None:
        """None to accept the frame (and remember it), else why it is a regression."""
    def snapshot(self) -> dict[str, tuple[int, int]]:
        """A copy of the state."""
    def __len__(self) -> int: ...

def ingest_batch(
    index: IngestIndex,
    fcnt: FcntState,
    batch: list[Any],
    prefix_tokens: int,
    max_bytes: int,
    earliest_ns: int,
    future_ns: int,
    raw_fields: Callable[[dict[str, str] | None], tuple[int | None, int | None, int | None] | None],
    raw_stream: str,
    dlq_prefix: str,
) -> tuple[list[tuple[str, PubBatch]], list[tuple[str, int]], int]:
    """One batch of ``RawMsg`` tuples through the ingest step (subjects, envelopes,
    registry join, times, decode, fill ratio, frame counters, reading messages, stored
    readings, dead letters); the GIL is released while processing. Returns ``(parts,
    dead, readings_out)``: one ``(raw partition, PubBatch)`` per partition present
    (first-seen order) holding its readings and dead letters in order, the dead letters
    per reason ``[(reason, count), ...]`` and the readings accepted (stored ones
    included). Dead letters go to ``dlq_prefix + <reason token>`` with id
    ``d:<raw_stream>:<seq>``. ``raw_fields(headers)`` parses a raw-format frame's
    ``Tid-*`` headers: ``(fport, fcnt, received_ns)`` or None (not valid). Raises
    ValueError for a registry model the codecs do not know or an unpublishable subject,
    TypeError for an item that is not a ``RawMsg``."""

def ingest_columns(
    index: IngestIndex,
    fcnt: FcntState,
    batches: list[tuple[Any, ...]],
    prefix_tokens: int,
    max_bytes: int,
    earliest_ns: int,
    future_ns: int,
    raw_fields: Callable[[bytes | None], tuple[int | None, int | None, int | None] | None],
    raw_stream: str,
    dlq_prefix: str,
) -> tuple[list[tuple[str, PubBatch]], list[tuple[str, int]], int]:
    """:func:`ingest_batch` on columnar input (the Rust consumer's batches, no Python
    object per message): ``batches`` is a list of ``(partition, seqs, stored_ns,
    subject_offsets, subject_data, payload_offsets, payload_data, header_offsets,
    header_data, n)`` (numpy int64 / uint8 arrays, Arrow large-binary layout; rows
    ``0..n`` of each, frames numbered across the list). ``raw_fields(header_lines)`` gets
    a raw-format frame's header lines (None when it has none). Same result."""

def load_layout(text: str) -> str:
    """Compile and register a layout; returns the model name; raises LayoutError."""

def error_kinds() -> list[str]:
    """Stable names of every error kind."""

def alarm_flags() -> list[tuple[int, str]]:
    """(bit, name) of every alarm flag."""

# -- simulator (core/src/sim, bindings in core/src/py/sim.rs) ---------------------------

@final
class Simulator:
    """The simulated fleet: fill dynamics, sensor faults, frames and ground truth."""

    def __new__(
        cls,
        kind: npt.NDArray[np.uint8],
        model: npt.NDArray[np.uint8],
        dev_eui: npt.NDArray[np.uint64],
        name: list[str],
        depth_mm: npt.NDArray[np.float64],
        offset_mm: npt.NDArray[np.float64],
        volume_l: npt.NDArray[np.float64],
        market_dow: npt.NDArray[np.int8],
        *,
        seed: int = 0,
        start_ms: int = 1_735_689_600_000,
        steps: int = 24,
        interval_ms: int = 3_600_000,
        envelopes: str = "mixed",
        ttn_share: float = 0.7,
        truth: bool = True,
        faults: float = 1.0,
        missed_collection_p: float = 0.01,
        application: str = "tidstream-sim",
        rate_scale: float = 1.0,
        warm_start: bool = True,
    ) -> Simulator: ...
    @property
    def step(self) -> int:
        """Steps (measurement rounds) done so far."""
    @property
    def steps(self) -> int:
        """Steps in the run."""
    @property
    def n_gateways(self) -> int:
        """Number of simulated gateways."""
    def next_chunk(self, max_rows: int) -> dict[str, Any] | None:
        """Next chunk of about max_rows uplinks (numpy columns); None at the end. Releases the GIL."""

def sim_models() -> list[tuple[str, int, int, list[float]]]:
    """Simulator sensor models: (name, fport, DevEUI prefix, mix per container kind %)."""

def sim_conditions() -> list[str]:
    """Names of the ground-truth condition codes, by code."""

def sim_french_holidays(year: int) -> list[tuple[int, int]]:
    """French public holidays of a year as (month, day)."""

# -- fill forecaster (core/src/forecast, bindings in core/src/py/forecast.rs) ------------

@final
class ForecasterCore:
    """The fill forecaster's Rust core (use `tidstream.Forecaster`)."""

    def __new__(
        cls,
        threshold: float = 0.8,
        horizons_h: list[float] = ...,
        utc_offset_s: int = 0,
        drop_threshold: float = 0.1,
        confirm_emptying: bool = True,
        max_horizon_h: float = 336.0,
        score_rule: str = "cycle",
        calibrate: bool = True,
    ) -> ForecasterCore: ...
    def update_int(
        self,
        ids: npt.NDArray[np.int64],
        t: npt.NDArray[np.int64],
        x: npt.NDArray[np.float64],
        tilt: npt.NDArray[np.int8] | None = None,
    ) -> None:
        """Readings with int64 container ids (GIL released)."""
    def update_str(
        self,
        offsets: npt.NDArray[np.int32] | npt.NDArray[np.int64],
        data: npt.NDArray[np.uint8],
        t: npt.NDArray[np.int64],
        x: npt.NDArray[np.float64],
        tilt: npt.NDArray[np.int8] | None = None,
    ) -> None:
        """Readings with string container ids given as Arrow buffers (GIL released)."""
    def predict(
        self, at: int, horizons_h: list[float], subset: npt.NDArray[np.uint32] | None = None
    ) -> dict[str, Any]:
        """Forecasts at `at` (UTC seconds) per container and horizon (GIL released)."""
    def accountability(self, subset: npt.NDArray[np.uint32] | None = None) -> dict[str, Any]:
        """Rolling forecast error per container and calibration horizon."""
    def states(self, subset: npt.NDArray[np.uint32] | None = None) -> dict[str, Any]:
        """What the forecaster believes about each container now."""
    @property
    def id_kind(self) -> str | None:
        """Id kind of the readings so far: "int", "str" or None."""
    def int_ids(self) -> npt.NDArray[np.int64]:
        """Int ids by index."""
    def str_ids(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
        """String ids by index as Arrow buffers (int64 offsets, data)."""
    def lookup_int(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.uint32]:
        """Indices of int ids (4294967295 where unknown)."""
    def lookup_str(self, ids: list[str]) -> npt.NDArray[np.uint32]:
        """Indices of string ids (4294967295 where unknown)."""
    def stats(self) -> dict[str, int]:
        """Counters (readings, accepted, missing, ..., scored, containers)."""
    def config(self) -> dict[str, Any]:
        """The settings (as given to the constructor, horizons sorted)."""
    def interval_levels(self) -> list[tuple[float, float, float]]:
        """(horizon_h, lower level, upper level) of the p10 / p90 interval per calibration horizon."""
    def __len__(self) -> int: ...
    def to_bytes(self) -> bytes:
        """Versioned binary snapshot of the whole state."""
    @staticmethod
    def from_bytes(data: bytes) -> ForecasterCore:
        """Rebuild from `to_bytes()` output."""

# -- route costs (core/src/routes, bindings in core/src/py/routes.rs) -------------------

EARTH_RADIUS_M: float

def haversine_m(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Haversine great-circle distance in metres between two points in degrees."""

def distance_matrix(
    lat_deg: npt.NDArray[np.float64], lon_deg: npt.NDArray[np.float64], circuity: float = 1.0
) -> npt.NDArray[np.float64]:
    """(n, n) great-circle distances in metres times circuity (GIL released)."""

def distance_matrix_between(
    lat_from: npt.NDArray[np.float64],
    lon_from: npt.NDArray[np.float64],
    lat_to: npt.NDArray[np.float64],
    lon_to: npt.NDArray[np.float64],
    circuity: float = 1.0,
) -> npt.NDArray[np.float64]:
    """(m, n) great-circle distances in metres from m origins to n destinations (GIL released)."""

def duration_matrix(
    distance_m: npt.NDArray[np.float64], bands: list[tuple[float, float]]
) -> npt.NDArray[np.float64]:
    """Durations in seconds of a (m, n) distance matrix in metres with a speed profile."""

class _EvalArgs(TypedDict):
    depot: int
    demand: npt.NDArray[np.float64] | None
    capacity: float
    service_s: npt.NDArray[np.float64] | None
    facilities: list[int]
    unload_s: float
    shift_s: float

def evaluate_routes(
    distance_m: npt.NDArray[np.float64],
    nodes: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
    args: _EvalArgs,
    duration_s: npt.NDArray[np.float64] | None = None,
    bands: list[tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """Per-route metrics as numpy columns (GIL released)."""

def route_cost(
    matrix: npt.NDArray[np.float64], nodes: npt.NDArray[np.int64], offsets: npt.NDArray[np.int64], depot: int
) -> float:
    """Total distance of routes starting and ending at the depot (GIL released)."""

def cheapest_insertion(
    distance_m: npt.NDArray[np.float64],
    nodes: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
    candidates: npt.NDArray[np.int64],
    args: _EvalArgs,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Cheapest insertion of each candidate: (route, position, added distance) arrays (GIL released)."""

def knn_matrix(
    lat_deg: npt.NDArray[np.float64], lon_deg: npt.NDArray[np.float64], k: int, circuity: float = 1.0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The k nearest neighbours as CSR (indptr, indices, distances) (GIL released)."""

def parse_vrplib(text: str, rounding: str = "tsplib") -> dict[str, Any]:
    """Parse VRPLIB instance text into a dict of fields and numpy arrays."""

def parse_vrplib_solution(text: str) -> tuple[list[list[int]], float | None]:
    """Parse a CVRPLIB solution: (routes as lists of customer numbers, cost or None)."""

# --- NATS JetStream I/O in Rust (the data path of [nats] data_path = "rust", docs/NATSIO.md; wrapper: tidstream.nats.rustio)

class _ConsumedBatch(TypedDict):
    seqs: npt.NDArray[np.int64]
    timestamps_ns: npt.NDArray[np.int64]
    num_pending: int | None
    subject_offsets: npt.NDArray[np.int64]
    subject_data: npt.NDArray[np.uint8]
    payload_offsets: npt.NDArray[np.int64]
    payload_data: npt.NDArray[np.uint8]
    header_offsets: npt.NDArray[np.int64]
    header_data: npt.NDArray[np.uint8]
    errors: list[str]
    queued: int
    consumer_pending: int
    at_end: bool
    position: int

class _PublishResults(TypedDict):
    seqs: npt.NDArray[np.int64]
    duplicate: npt.NDArray[np.bool_]
    errors: list[str | None]
    fast: int
    notes: list[str]

@final
class NatsConsumer:
    """Ordered pull consumer on ``stream``. With ``filter_subject``: that filter, messages
    after ``after_seq`` (lane 0), made now. Without: partitions are added by
    :meth:`add_lane` (the partition is subject token ``part_token``) and one server-side
    consumer over them is made by the first :meth:`next_batch` (``read_whole``: the stream
    holds only partitions, two lanes or more read it without a filter; messages stored
    after ``end_ns`` not read).
    ``settings``: dict from ``tidstream.nats.rustio.settings_dict``."""

    def __new__(
        cls,
        settings: dict[str, Any],
        stream: str,
        filter_subject: str | None = None,
        after_seq: int = 0,
        start_ns: int | None = None,
        *,
        part_token: int | None = None,
        read_whole: bool = False,
        end_ns: int | None = None,
    ) -> NatsConsumer: ...
    def add_lane(self, key: str, filter: str, after_seq: int) -> int:
        """Add a partition; returns its lane index."""
    def close_lane(self, lane: int) -> None:
        """Close a lane: its queued and later messages are dropped."""
    def next_batch(self, max_msgs: int, timeout_ms: float, lane: int = 0) -> _ConsumedBatch:
        """Up to ``max_msgs`` messages of lane ``lane`` (Arrow-style offsets + data),
        waiting at most ``timeout_ms``; returns early at the end of the stream or when
        another lane's queue is full. Releases the GIL."""
    @property
    def last_seq(self) -> int:
        """Stream sequence of the last message returned."""
    def take_events(self) -> list[str]:
        """Connection events since the last call (``connected``, ``disconnected``, ...)."""
    @property
    def initial_pending(self) -> int:
        """Messages the consumer had to deliver when it was created (0: nothing to read)."""
    @property
    def is_connected(self) -> bool:
        """True while the connection is up."""

@final
class NatsPublisher:
    """JetStream publisher awaiting every PubAck (``ack_timeout_ms`` each), or with
    ``fast_flow`` > 0 confirming whole batches by ADR-50 fast ingest (an ack every
    ``fast_flow`` messages, nats-server 2.14+, stream setting ``allow_batched``)."""

    def __new__(
        cls, settings: dict[str, Any], ack_timeout_ms: float = 5000.0, fast_flow: int = 0
    ) -> NatsPublisher: ...
    def publish_batch(
        self, subjects: list[str], payloads: list[bytes], msg_ids: list[str], max_inflight: int = 4096
    ) -> _PublishResults:
        """Publish with ``Nats-Msg-Id`` (none when empty) and wait for every ack.
        Releases the GIL."""
    def publish_pubbatch(
        self, batch: PubBatch, rows: npt.NDArray[np.int64] | None = None, max_inflight: int = 4096
    ) -> _PublishResults:
        """Publish messages ``rows`` of ``batch`` (all when None) with their ids and
        headers and wait for every ack; row ``k`` = the ``k``-th published. Releases the GIL."""
    @property
    def is_connected(self) -> bool:
        """True while the connection is up."""
    @property
    def connects(self) -> int:
        """Connections made so far (1 + reconnects)."""
    def take_events(self) -> list[str]:
        """Connection events since the last call (``connected``, ``disconnected``, ...)."""
