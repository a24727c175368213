"""Idempotent creation / update of the JetStream streams and KV buckets the flows need.

``tidstream nats init`` calls :func:`init_jetstream`. Running it again with the same
settings changes nothing; with new limits it updates the streams in place.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
    SubjectTransform,
)
from nats.js.errors import NotFoundError

from ..config import Settings

__all__ = ["StreamPlan", "init_jetstream", "stream_plan"]

DAY = 86_400.0


@dataclass
class StreamPlan:
    """What ``nats init`` will create: stream configs in creation order."""

    configs: list[StreamConfig]
    kv_buckets: list[str]


def _partition_transform(
    src: str, prefix: str, fmt: str | None, device_token: int, parts: int
) -> SubjectTransform:
    fmt_part = "{{wildcard(1)}}" if fmt is None else fmt
    return SubjectTransform(
        src=src,
        dest=f"{prefix}.raw.{{{{partition({parts},{device_token})}}}}.{fmt_part}.{{{{wildcard({device_token})}}}}",
    )


def stream_plan(s: Settings) -> StreamPlan:
    """The stream configurations for the settings (pure; no server needed)."""
    st = s.streams
    storage = StorageType.FILE if st.storage == "file" else StorageType.MEMORY
    dup = float(st.duplicate_window_s)
    subj = s.subjects
    configs: list[StreamConfig] = []
    sources = []
    for i in st.inputs:
        name = i.stream or f"{st.raw}_IN_{i.format.upper()}"
        configs.append(
            StreamConfig(
                name=name,
                description=f"tidstream capture of {i.subject} ({i.format} uplinks)",
                subjects=[i.subject],
                retention=RetentionPolicy.LIMITS,
                max_age=st.raw_max_age_days * DAY,
                storage=storage,
                num_replicas=st.replicas,
                duplicate_window=dup,
            )
        )
        sources.append(
            StreamSource(
                name=name,
                subject_transforms=[
                    _partition_transform(i.subject, st.prefix, i.format, i.device_token, st.partitions)
                ],
            )
        )
    configs.append(
        StreamConfig(
            name=st.raw,
            description=(
                f"tidstream raw uplinks, {st.partitions} partitions: "
                f"{subj.uplinks} -> {st.prefix}.raw.<partition>.<format>.<device>"
            ),
            subjects=[subj.uplinks],
            subject_transform=_partition_transform(subj.uplinks, st.prefix, None, 2, st.partitions),
            sources=sources or None,
            retention=RetentionPolicy.LIMITS,  # replayable: never work-queue / interest
            discard=DiscardPolicy.OLD,
            max_age=st.raw_max_age_days * DAY,
            storage=storage,
            num_replicas=st.replicas,
            duplicate_window=dup,
        )
    )
    # The ingest sink can publish readings and dead letters in ADR-50 atomic batches (one
    # PubAck per batch; nats-server 2.12+): those two streams allow them. Every output
    # stream allows ADR-50 fast-ingest batches (``allow_batched``, nats-server 2.14+), what
    # the Rust sinks publish with by default (``[nats] fast_publish``, docs/NATSIO.md).
    for name, subject, days, desc, atomic in (
        (st.readings, subj.readings, st.readings_max_age_days, "decoded readings", True),
        (st.dlq, subj.dlqs, st.dlq_max_age_days, "dead letters (reason + original bytes)", True),
        (st.alerts, subj.alerts, st.readings_max_age_days, "alerts", None),
    ):
        configs.append(
            StreamConfig(
                name=name,
                description=f"tidstream {desc}",
                subjects=[subject],
                retention=RetentionPolicy.LIMITS,
                max_age=days * DAY,
                storage=storage,
                num_replicas=st.replicas,
                duplicate_window=dup,
                allow_atomic=atomic,
                allow_batched=True,
            )
        )
    return StreamPlan(configs=configs, kv_buckets=[f"{st.prefix}_twin", f"{st.prefix}_offsets"])


async def init_jetstream(js: JetStreamContext, s: Settings) -> dict[str, str]:
    """Create or update every stream and KV bucket; returns ``{name: created|updated|unchanged}``."""
    plan = stream_plan(s)
    result: dict[str, str] = {}
    for cfg in plan.configs:
        try:
            info = await js.stream_info(cfg.name)
        except NotFoundError:
            await js.add_stream(cfg)
            result[cfg.name] = "created"
            continue
        if _same(info.config, cfg):
            result[cfg.name] = "unchanged"
        else:
            await js.update_stream(cfg)
            result[cfg.name] = "updated"
    for bucket in plan.kv_buckets:
        try:
            await js.key_value(bucket)
            result[f"KV_{bucket}"] = "unchanged"
        except NotFoundError:
            await js.create_key_value(bucket=bucket, history=1)
            result[f"KV_{bucket}"] = "created"
    return result


def _same(have: StreamConfig, want: StreamConfig) -> bool:
    keys = ("subjects", "max_age", "duplicate_window", "num_replicas", "storage", "retention")
    if any(getattr(have, k) != getattr(want, k) for k in keys):
        return False
    if bool(have.allow_atomic) != bool(want.allow_atomic):
        return False
    if bool(have.allow_batched) != bool(want.allow_batched):
        return False
    ht, wt = have.subject_transform, want.subject_transform
    if (ht is None) != (wt is None) or (ht and wt and (ht.src, ht.dest) != (wt.src, wt.dest)):
        return False
    hs = sorted(x.name for x in (have.sources or []))
    ws = sorted(x.name for x in (want.sources or []))
    return hs == ws
