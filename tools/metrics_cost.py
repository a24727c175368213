"""Cost of the Prometheus updates of the ingest step (docs/OPERATIONS.md): the per-batch
metrics work alone vs the step itself, on one batch of 1,000 scripted uplinks.

Run: .venv/bin/python tools/metrics_cost.py   (from the repository root)
"""

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from flowkit import scripted, write_registry
from tidstream import metrics
from tidstream.config import Settings
from tidstream.flow.ingest import Ingestor
from tidstream.nats.jetstream import RawMsg
from tidstream.registry import load_registry

tmp = Path(tempfile.mkdtemp())
reg = load_registry(str(write_registry(tmp / "r.csv", 200)))
s = Settings()
script = scripted(200, 1000, with_bad=False)
batch = [
    RawMsg(
        "0",
        i + 1,
        u.subject.replace("tid.up.", "tid.raw.0."),
        u.data,
        1_763_600_000_000_000_000 + i,
        u.headers,
    )
    for i, u in enumerate(script.uplinks)
]
ing = Ingestor(reg, s.subjects, "TID_RAW")
ing._step(batch)  # warm


def best(f, n=15):
    ts = []
    for _ in range(n):
        ing.fcnt = type(ing.fcnt)()
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return min(ts)


step = best(lambda: ing._step(batch))
full = best(lambda: ing(batch))
# the metrics work alone, per batch (what __call__ adds around _step), repeated
st = ing.stats


def upd():
    r0, d0 = st.readings_out, dict(st.dead_letters)
    t0 = time.perf_counter()
    metrics.DECODE_SECONDS.observe(time.perf_counter() - t0)
    metrics.FRAMES_IN.inc(len(batch))
    metrics.READINGS_OUT.inc(st.readings_out - r0)
    for reason, n in st.dead_letters.items():
        if n != d0.get(reason, 0):
            metrics.DEAD_LETTERS.labels(reason).inc(n - d0.get(reason, 0))


N = 20000
t0 = time.perf_counter()
for _ in range(N):
    upd()
per = (time.perf_counter() - t0) / N
print(
    f"batch {len(batch)} frames: step {step * 1e3:.2f} ms, step+metrics {full * 1e3:.2f} ms; metrics update alone {per * 1e6:.1f} us/batch = {per / step * 100:.3f} % of the step; readings {ing.stats.readings_out}"
)
