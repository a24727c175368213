"""tidstream's FULL default forecaster ported to numba (``@njit``), for issue 5's
"same model" comparison.

A line-by-line port of ``core/src/forecast/`` (``model.rs``: ``State::step``, score,
issue, forecast; ``calib.rs``: the forgetting histograms per (horizon, level band,
m-centre soft-binned in log m, stall class) cell, the parametric blend, the adaptive
interval levels; ``profile.rs``: hour walk and cumulative effective time; ``mod.rs``:
one local day at a time with the fleet frozen, the row grouping of large fleets, the
fleet fold, predict and times to threshold). Everything tidstream's default
``Forecaster()`` does on each update is here: robust level, emptying detection with
provisional confirmation, stuck sensors, fill rate, the container's day/hour
multipliers, fleet rate / profile / activity factor, pending calibration forecasts
issued (one horizon per container per local day for sub-daily streams) and scored into
the fleet calibration tables and interval levels, the per-container exceedance offset
and rolling forecast errors (accountability), and the counters. Same f32 storage where
tidstream stores f32 (calibration tables, pending forecasts, rolling errors), so the
rounding agrees too.

What it does not do: the id map (container ids must be 0..n-1, given as indices: that
favours this baseline), string ids and persistence; the UTC offset and the "endpoints"
score rule are in the kernels but not exposed (defaults: UTC, "cycle"). Tilt flags are
taken as in tidstream.

Layout (the closest numba gets to tidstream's array of structs): one row of int64 and
one row of float64 per container (``si``, ``sf``), the pending forecasts as rows of
(due, made, cyc, band, stall) int64 and (base, m, p10, p50, p90, po) float32, the
rolling errors as (n, last) int64 and (mae, bias, cov) float32 rows.

``parse_snapshot`` reads tidstream's own ``Forecaster.to_bytes()`` (format version 1,
``core/src/forecast/persist.rs``) so that the check can compare the calibration tables,
interval levels, pending forecasts and container states directly.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
from numba import njit

NONE_T = -(2**63)
I64_MAX = 2**63 - 1

# -- constants of model.rs / calib.rs / mod.rs ---------------------------------------------
RING = 3
COARSE = 0.02
TAU_L = 2.0
TAU_R = 480.0
N0_R = 48.0
ETA_D = 0.01
ETA_H = 0.002
ETA_P = 0.02
STUCK_REPEATS = 3
JUMP_CONFIRM = 3
JUMP_CONFIRM_S = 2 * 3600
F_INIT = 1
F_PROVISIONAL = 2
F_STUCK = 4
N_DAYS = 64
TAU_F = 10.0
PRIOR_F = 1.0
FLEET_DECAY = 1.0 - 1.0 / 200_000.0
PRIOR_P = 2.0
N_BAND = 6
N_M = 20
M_LO = 0.003
M_HI = 3.0
N_STALL = 4
N_HIST = 32
H_LO = -0.2
H_BW = 0.05
N0 = 5.0
DECAY = 0.999
LN_DECAY = math.log(DECAY)
GAMMA = 0.005
P_LO = 0.1
P_HI = 0.9
ONE_MINUS_P_HI = 1.0 - P_HI
PHI_N = 2048
PHI_Z = 8.0
GROUP_ABOVE = 16_384
LN_M_LO = math.log(M_LO)
LN_M_SPAN = math.log(M_HI) - math.log(M_LO)

# -- per-container int64 row (si) ---------------------------------------------------------
(T_LAST, HOUR, T_CYCLE, T_RISE, UP_T, BK_T_LAST, BK_HOUR, BK_T_CYCLE, BK_T_RISE, NEXT_DUE, NEXT_ISSUE,
 ISSUE_DAY, CYC, N_OBS, N_EMPTY, HOD, DOW, BK_HOD, BK_DOW, N_SAME, UP_COUNT, FLAGS, D_DOW) = range(23)  # fmt: skip
NI = 24
# -- per-container float64 row (sf) -------------------------------------------------------
(LEVEL, X_LAST, PREV_RAW, RNUM, RDEN, NOISE, RES, MAX_LEVEL, ANCHOR, UP_LEVEL, P_OFF, BK_LEVEL, BK_X_LAST,
 BK_ANCHOR, BK_DU, D_SUM) = range(16)  # fmt: skip
CD = 16  # 7 day-of-week multipliers
CH = 23  # 24 hour-of-day multipliers
NF = 48
# -- pending forecasts: int64 (due, made, cyc, band, stall), float32 (base, m, p10, p50, p90, po)
P_DUE, P_MADE, P_CYC, P_BAND, P_STALL = range(5)
P_BASE, P_M, P_P10, P_P50, P_P90, P_PO = range(6)
# -- rolling errors: int64 (n, last), float32 (mae, bias, cov)
A_N, A_LAST = range(2)
A_MAE, A_BIAS, A_COV = range(3)
# -- fleet (f64): fd_num[7], fd_den[7], fh_num[24], fh_den[24], rnum, rden
FL_FDN, FL_FDD, FL_FHN, FL_FHD, FL_RNUM, FL_RDEN = 0, 7, 14, 38, 62, 63
# -- fleet accumulators of one chunk (f64): day_num, day_den, n, rnum, rden, fd/fh num/den
FA_DNUM, FA_DDEN, FA_N, FA_RNUM, FA_RDEN, FA_FDN, FA_FDD, FA_FHN, FA_FHD = 0, 1, 2, 3, 4, 5, 12, 19, 43
NFA = 67
# -- env (f64): fd[7], fh[24], inv_fd[7], inv_fh[24], phi, inv_phi, fleet_r
E_FD, E_FH, E_IFD, E_IFH, E_PHI, E_IPHI, E_FR = 0, 7, 31, 38, 62, 63, 64
NE = 65
# -- cumulative profile tables (f64): dpre[8], h[24], hpre[25], d[7], week
C_DPRE, C_H, C_HPRE, C_D, C_WEEK = 0, 8, 32, 57, 64
NC = 65
# -- counters
(S_READINGS, S_ACCEPTED, S_MISSING, S_INVALID, S_OOO, S_EMPTYINGS, S_SPIKES_LOW, S_SPIKES_HIGH, S_JUMPS,
 S_STUCK, S_TILTED, S_SCORED) = range(12)  # fmt: skip
STAT_NAMES = (
    "readings accepted missing invalid out_of_order emptyings spikes_low spikes_high jumps stuck tilted scored"
).split()

_JIT = {"cache": True, "nogil": True, "boundscheck": False}


# -- small helpers (f64 max/min as tidstream's fmax/fmin: no NaN on these paths) ------------


@njit(**_JIT)
def fmax(a, b):
    return a if a > b else b


@njit(**_JIT)
def fmin(a, b):
    return a if a < b else b


@njit(**_JIT)
def clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


@njit(**_JIT)
def round_away(v):
    """f64::round (halves away from zero)."""
    r = math.trunc(v)
    if abs(v - r) >= 0.5:
        r += 1.0 if v > 0 else -1.0
    return r


@njit(**_JIT)
def powi(a, b):
    """llvm.powi (compiler-rt __powidf2: repeated squaring), as f64::powi."""
    recip = b < 0
    r = 1.0
    while True:
        if b & 1:
            r *= a
        b = int(b / 2)
        if b == 0:
            break
        a *= a
    return 1.0 / r if recip else r


@njit(**_JIT)
def phi_exact(z):
    x = z / math.sqrt(2.0)
    ax = abs(x)
    t = 1.0 / (1.0 + 0.3275911 * ax)
    y = 1.0 - (
        ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592
    ) * t * (math.exp(-ax * ax))
    erf = y if x >= 0.0 else -y
    return 0.5 * (1.0 + erf)


@njit(**_JIT)
def _phi_table():
    t = np.empty(PHI_N + 1)
    for i in range(PHI_N + 1):
        t[i] = phi_exact(-PHI_Z + 2.0 * PHI_Z * i / PHI_N)
    return t


PHI_TAB = _phi_table()
EDGES = np.array([H_LO + i * H_BW for i in range(N_HIST + 1)])


@njit(inline="always", **_JIT)
def phi_in(tab, z):
    u = (z + PHI_Z) * (PHI_N / (2.0 * PHI_Z))
    if u != u:
        return 0.5
    u = clamp(u, 0.0, float(PHI_N))
    i = min(int(u), PHI_N - 1)
    t = u - i
    return tab[i] + (tab[i + 1] - tab[i]) * t


@njit(**_JIT)
def split(tl):
    """(start of the local hour, hour of day, day of week Mon=0)."""
    hour = tl // 3600
    day = hour // 24
    return hour * 3600, hour % 24, (day + 3) % 7


# -- profile ------------------------------------------------------------------------------


@njit(inline="always", **_JIT)
def cum_fill(env, sf, i, c):
    """Cumulative effective-time tables of container i's profile into c."""
    c[C_HPRE] = 0.0
    for h in range(24):
        v = env[E_FH + h] * sf[i, CH + h]
        c[C_H + h] = v
        c[C_HPRE + h + 1] = c[C_HPRE + h] + v
    c[C_DPRE] = 0.0
    for d in range(7):
        v = env[E_FD + d] * sf[i, CD + d]
        c[C_D + d] = v
        c[C_DPRE + d + 1] = c[C_DPRE + d] + v * c[C_HPRE + 24]
    c[C_WEEK] = c[C_DPRE + 7]


@njit(inline="always", **_JIT)
def cum_at(c, tl):
    day = tl // 86_400
    sec = float(tl - day * 86_400)
    wd = day + 3
    week = wd // 7
    dow = wd % 7
    hf = sec / 3600.0
    hi = min(int(hf), 23)
    within = c[C_HPRE + hi] + c[C_H + hi] * (hf - hi)
    return float(week) * c[C_WEEK] + c[C_DPRE + dow] + c[C_D + dow] * within


@njit(inline="always", **_JIT)
def cum_between(c, t1, t2):
    return max(cum_at(c, t2) - cum_at(c, t1), 0.0)


@njit(inline="always", **_JIT)
def prof_w(env, sf, i, dow, hod):
    return env[E_FD + dow] * sf[i, CD + dow] * env[E_FH + hod] * sf[i, CH + hod]


# -- calibration (calib.rs) ---------------------------------------------------------------


@njit(**_JIT)
def band(base):
    if base <= 0.0:
        return 0
    return min(int(base * 5.0 + 1e-6), N_BAND - 1)


@njit(**_JIT)
def m_pos(m):
    lm = math.log(max(m, M_LO))
    u = (lm - LN_M_LO) / LN_M_SPAN * (N_M - 1)
    u = clamp(u, 0.0, (N_M - 1) - 1e-9)
    j = int(u)
    return j, u - j


@njit(**_JIT)
def cell(k, b, j, s):
    return ((k * N_BAND + b) * N_M + j) * N_STALL + s


@njit(inline="always", **_JIT)
def cdf_below(tab, mean, sd, lower, upper, grid, e):
    if e <= lower + 1e-9:
        return 0.0
    if e > upper:
        return 1.0
    sd = max(sd, 1e-3)
    if grid > 0.0:
        k = math.ceil(e / grid - 1e-6) - 1.0
        return phi_in(tab, (k * grid + 0.5 * grid - mean) / sd)
    return phi_in(tab, (e - mean) / sd)


@njit(inline="always", **_JIT)
def hweights(horizons, ln_h, h):
    n = horizons.shape[0]
    if n == 1 or h <= horizons[0]:
        return 0, 1.0, 0, 0.0
    if h >= horizons[n - 1]:
        return n - 1, 1.0, n - 1, 0.0
    k = 0
    while k + 1 < n and horizons[k + 1] <= h:
        k += 1
    if horizons[k] == h:
        return k, 1.0, k + 1, 0.0
    a = (math.log(h) - ln_h[k]) / (ln_h[k + 1] - ln_h[k])
    return k, 1.0 - a, k + 1, a


@njit(inline="always", **_JIT)
def levels(horizons, ln_h, lo, hi, h):
    k0, w0, k1, w1 = hweights(horizons, ln_h, h)
    return w0 * lo[k0] + w1 * lo[k1], w0 * hi[k0] + w1 * hi[k1]


@njit(inline="always", **_JIT)
def calib_learn(hist, cnt, scale, scored, k, b, m, s, inc):
    j, t = m_pos(m)
    v = (inc - H_LO) / H_BW + 1e-4
    if not v >= 0.0:
        bin_ = 0
    elif v >= N_HIST - 1:
        bin_ = N_HIST - 1
    else:
        bin_ = int(v)
    for q in range(2):
        jj = j + q
        w = 1.0 - t if q == 0 else t
        if w <= 1e-6:
            continue
        c = cell(k, b, jj, s)
        old = float(scale[c])
        sc = old * math.exp(-(w * LN_DECAY))
        sc32 = np.float32(sc)
        if sc > 1e12:
            inv = np.float32(1.0 / old)
            for i in range(c * N_HIST, (c + 1) * N_HIST):
                hist[i] = hist[i] * inv
            cnt[c] = cnt[c] * inv
            sc32 = np.float32(sc / old)
        scale[c] = sc32
        add = np.float32(w) * sc32
        for i in range(c * N_HIST + bin_, (c + 1) * N_HIST):
            hist[i] = hist[i] + add
        cnt[c] = cnt[c] + add
    scored[k] += 1


@njit(inline="always", **_JIT)
def calib_adapt(lo, hi, k, below, above):
    v = lo[k] + GAMMA * (P_LO - (1.0 if below else 0.0))
    w = hi[k] + GAMMA * ((1.0 if above else 0.0) - ONE_MINUS_P_HI)
    lo[k] = clamp(v, 0.005, 0.45)
    hi[k] = clamp(w, 0.55, 0.995)


@njit(inline="always", **_JIT)
def calib_dist(f, hist, cnt, scale, horizons, ln_h, tab, h, b, m, s, mean, sd, lower, upper, grid):
    """Predictive CDF of the increment at the histogram edges, into f (33)."""
    for i in range(N_HIST + 1):
        f[i] = 0.0
    pw = 0.0
    j, t = m_pos(m)
    k0, w0, k1, w1 = hweights(horizons, ln_h, h)
    for a in range(2):
        k = k0 if a == 0 else k1
        wk = w0 if a == 0 else w1
        if wk <= 1e-9:
            continue
        for q in range(2):
            jj = j + q
            wj = 1.0 - t if q == 0 else t
            w = wk * wj
            if w <= 1e-9:
                continue
            c = cell(k, b, jj, s)
            cn = float(cnt[c])
            n_eff = cn / float(scale[c])
            wc = n_eff / (n_eff + N0)
            if wc > 1e-6 and cn > 0.0:
                g = w * wc / cn
                base = c * N_HIST
                for i in range(N_HIST):
                    f[i + 1] += g * float(hist[base + i])
            pw += w * (1.0 - wc)
    if pw > 0.05:
        sdm = max(sd, 1e-3)
        lo_e = max(lower, mean - 5.0 * sdm)
        hi_e = min(upper, mean + 5.0 * sdm)
        for i in range(N_HIST + 1):
            e = H_LO + i * H_BW
            if e <= lo_e:
                if e > lower + 1e-9:
                    f[i] += pw * cdf_below(tab, mean, sd, lower, upper, grid, e)
                continue
            if e > hi_e:
                f[i] += pw
            else:
                f[i] += pw * cdf_below(tab, mean, sd, lower, upper, grid, e)
    elif pw > 0.0:
        sc = 1.0 / (1.0 - pw)
        for i in range(1, N_HIST + 1):
            f[i] *= sc
    for i in range(N_HIST + 1):
        f[i] = clamp(f[i], 0.0, 1.0)


@njit(inline="always", **_JIT)
def dist_q3(f, p0, p1, p2):
    """Three quantiles (increasing levels) of the increment, one scan."""
    out0 = out1 = out2 = H_LO + N_HIST * H_BW
    k = 0
    while k < 3:
        p = p0 if k == 0 else (p1 if k == 1 else p2)
        if p > f[0]:
            break
        if k == 0:
            out0 = H_LO
        elif k == 1:
            out1 = H_LO
        else:
            out2 = H_LO
        k += 1
    i = 1
    while k < 3 and i <= N_HIST:
        p = p0 if k == 0 else (p1 if k == 1 else p2)
        if f[i] >= p:
            a = f[i - 1]
            b = f[i]
            t = (p - a) / (b - a) if b > a else 0.0
            v = (H_LO + (i - 1) * H_BW) + t * H_BW
            if k == 0:
                out0 = v
            elif k == 1:
                out1 = v
            else:
                out2 = v
            k += 1
        else:
            i += 1
    return out0, out1, out2


@njit(inline="always", **_JIT)
def dist_exceed(f, g):
    u = (g - H_LO) / H_BW
    if u <= 0.0:
        return 1.0
    if u >= N_HIST:
        return clamp(1.0 - f[N_HIST], 0.0, 1.0)
    i = int(u)
    t = u - i
    c = f[i] + (f[i + 1] - f[i]) * t
    return clamp(1.0 - c, 0.0, 1.0)


@njit(**_JIT)
def logit(p):
    p = clamp(p, 1e-6, 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


@njit(**_JIT)
def logistic(z):
    return 1.0 / (1.0 + math.exp(-z))


# -- the container's state (model.rs) -------------------------------------------------------


@njit(inline="always", **_JIT)
def rate(sf, i, fleet_r):
    return fmax((sf[i, RNUM] + N0_R * fleet_r) / (sf[i, RDEN] + N0_R), 0.0)


@njit(inline="always", **_JIT)
def noise_eff(sf, i):
    return 0.0 if sf[i, RES] >= COARSE else sf[i, NOISE]


@njit(inline="always", **_JIT)
def step_size(sf, i):
    return fmax(fmax(sf[i, RES], 2.0 * noise_eff(sf, i)), 0.01)


@njit(inline="always", **_JIT)
def stall(si, sf, i, r_phi):
    if si[i, T_RISE] == si[i, T_LAST]:
        return 0
    hours = (si[i, T_LAST] - si[i, T_RISE]) / 3600.0
    sr = hours * r_phi / step_size(sf, i)
    if sr < 1.0:
        return 1
    if sr < 2.0:
        return 2
    return N_STALL - 1


@njit(**_JIT)
def init_state(si, sf, i):
    si[i, T_LAST] = NONE_T
    si[i, HOUR] = 0
    si[i, T_CYCLE] = NONE_T
    si[i, T_RISE] = NONE_T
    si[i, UP_T] = NONE_T
    si[i, BK_T_LAST] = NONE_T
    si[i, BK_HOUR] = 0
    si[i, BK_T_CYCLE] = NONE_T
    si[i, BK_T_RISE] = NONE_T
    si[i, NEXT_DUE] = I64_MAX
    si[i, NEXT_ISSUE] = NONE_T
    si[i, ISSUE_DAY] = NONE_T
    for k in (CYC, N_OBS, N_EMPTY, HOD, DOW, BK_HOD, BK_DOW, N_SAME, UP_COUNT, FLAGS, D_DOW):
        si[i, k] = 0
    for k in range(NF):
        sf[i, k] = 0.0
    sf[i, PREV_RAW] = np.nan
    sf[i, NOISE] = 0.01
    sf[i, MAX_LEVEL] = 1.0
    for k in range(7):
        sf[i, CD + k] = 1.0
    for k in range(24):
        sf[i, CH + k] = 1.0


@njit(inline="always", **_JIT)
def elapsed(si, sf, env, off, c, i, t):
    """Effective hours from the last reading to t, and the calendar cache at t."""
    frm = si[i, T_LAST] + off
    to = t + off
    if to - frm <= 6 * 3600:
        hs = si[i, HOUR]
        hod = si[i, HOD]
        dow = si[i, DOW]
        cur = frm
        acc = 0.0
        while True:
            he = hs + 3600
            if to < he:
                acc += prof_w(env, sf, i, dow, hod) * (to - cur)
                break
            acc += prof_w(env, sf, i, dow, hod) * (he - cur)
            cur = he
            hs = he
            hod += 1
            if hod == 24:
                hod = 0
                dow = 0 if dow == 6 else dow + 1
            if to == he:
                break
        return acc * (1.0 / 3600.0), hs, hod, dow
    cum_fill(env, sf, i, c)
    hs, hod, dow = split(to)
    return cum_between(c, frm, to), hs, hod, dow


@njit(inline="always", **_JIT)
def flush_dow(si, sf, i):
    if sf[i, D_SUM] != 0.0:
        d = si[i, D_DOW]
        sf[i, CD + d] = clamp(sf[i, CD + d] * (1.0 + ETA_D * sf[i, D_SUM]), 0.05, 20.0)
        sf[i, D_SUM] = 0.0


@njit(inline="always", **_JIT)
def add_day(days_d, days_v, last_day, day, rise, expected):
    slot = day % N_DAYS
    if days_d[slot] != day:
        if days_d[slot] != NONE_T and days_d[slot] > day:
            return
        days_d[slot] = day
        days_v[slot, 0] = 0.0
        days_v[slot, 1] = 0.0
    days_v[slot, 0] += rise
    days_v[slot, 1] += expected
    if last_day[0] == NONE_T or day > last_day[0]:
        last_day[0] = day


@njit(inline="always", **_JIT)
def next_due_of(pi, i, kr):
    best = I64_MAX
    for j in range(i * kr, (i + 1) * kr):
        d = pi[j, P_DUE]
        if d != NONE_T and d < best:
            best = d
    return best


@njit(inline="always", **_JIT)
def forecast(si, sf, env, off, cal, c, i, end, h_total, f):
    """Container i's predictive CDF of the increment at `end` (UTC s) into f; returns
    (base, cap, m, band, stall, coarse, res, noise) (model.rs `State::forecast`)."""
    hist, cnt, scale, _lo, _hi, _scored, horizons, ln_h, tab = cal
    r_phi = rate(sf, i, env[E_FR]) * env[E_PHI]
    w = cum_between(c, si[i, T_LAST] + off, end + off)
    base = sf[i, LEVEL]
    cap = max(sf[i, MAX_LEVEL], base)
    m = r_phi * w
    res = sf[i, RES]
    coarse = res >= COARSE
    noise = 0.0 if coarse else sf[i, NOISE]
    b = band(base)
    s = stall(si, sf, i, r_phi)
    mc = min(m, cap - base)
    q = res * 0.5 if coarse else 0.0
    sd = math.sqrt(noise * noise + 0.25 * mc * mc + q * q + 1e-4)
    lower = 0.0 if coarse else -np.inf
    upper = cap - base + 1e-9
    grid = res if coarse else 0.0
    calib_dist(f, hist, cnt, scale, horizons, ln_h, tab, h_total, b, m, s, mc, sd, lower, upper, grid)
    return base, cap, m, b, s, coarse, res, noise


@njit(inline="always", **_JIT)
def fc_clip(v, base, cap, coarse, noise):
    low = base if coarse else base - 3.0 * noise
    return min(max(base + v, min(max(low, 0.0), base)), cap)


@njit(inline="always", **_JIT)
def fc_snap(v, base, cap, coarse, res):
    if coarse and res > 0.0:
        return min(max(round_away(round_away(v / res) * res * 1e6) / 1e6, base), cap)
    return v


@njit(inline="always", **_JIT)
def score(si, sf, pi, pf, ai, af, cal, stats, i, k_n, t, y, threshold, cycle_rule):
    """Score container i's pending forecasts due by t against the reading y (model.rs
    `State::score`): calibration tables, interval levels, rolling errors, offset."""
    hist, cnt, scale, lo, hi, scored, horizons, _ln_h, _tab = cal
    if t < si[i, NEXT_DUE]:
        return False
    res = sf[i, RES]
    allow = 0.5 * res if res >= COARSE else 3.0 * noise_eff(sf, i)
    for k in range(k_n):
        hk = horizons[k]
        tol = int(max(0.25 * hk, 1.0) * 3600.0)
        for j in range((i * k_n + k) * RING, (i * k_n + k + 1) * RING):
            due = pi[j, P_DUE]
            if due == NONE_T or due > t:
                continue
            base = float(pf[j, P_BASE])
            if cycle_rule:
                ok = pi[j, P_CYC] == si[i, CYC]
            else:
                ok = y >= base - max(allow, 1e-6)
            if t - due <= tol and ok:
                calib_learn(
                    hist, cnt, scale, scored, k, pi[j, P_BAND], float(pf[j, P_M]), pi[j, P_STALL], y - base
                )
                below = y < float(pf[j, P_P10]) - 1e-6
                above = y > float(pf[j, P_P90]) + 1e-6
                calib_adapt(lo, hi, k, below, above)
                a = i * k_n + k
                n = min(ai[a, A_N] + 1, 4_294_967_295)
                ai[a, A_N] = n
                w = max(1.0 / n, 0.05)
                err = y - float(pf[j, P_P50])
                v = float(af[a, A_MAE])
                af[a, A_MAE] = np.float32(v + w * (abs(err) - v))
                v = float(af[a, A_BIAS])
                af[a, A_BIAS] = np.float32(v + w * (err - v))
                cov = 0.0 if (below or above) else 1.0
                v = float(af[a, A_COV])
                af[a, A_COV] = np.float32(v + w * (cov - v))
                ai[a, A_LAST] = t
                stats[S_SCORED] += 1
                po = float(pf[j, P_PO])
                if po > 1e-4 and po < 1.0 - 1e-4:
                    ev = 1.0 if y >= threshold - 1e-6 else 0.0
                    pc = logistic(logit(po) + sf[i, P_OFF])
                    sf[i, P_OFF] = clamp(sf[i, P_OFF] + ETA_P * (ev - pc), -3.0, 3.0)
            pi[j, P_DUE] = NONE_T
            pi[j, P_MADE] = NONE_T
            pi[j, P_CYC] = 0
            pi[j, P_BAND] = 0
            pi[j, P_STALL] = 0
            for q in range(6):
                pf[j, q] = 0.0
    si[i, NEXT_DUE] = next_due_of(pi, i, k_n * RING)
    return True


@njit(inline="always", **_JIT)
def issue(si, sf, pi, pf, env, off, cal, c, f, i, k_n, dt_h, threshold, calibrate):
    """Issue new pending forecasts of container i (model.rs `State::issue`)."""
    if not calibrate:
        si[i, NEXT_ISSUE] = I64_MAX
        return
    _hist, _cnt, _scale, lo, hi, _scored, horizons, _ln_h, _tab = cal
    have_cum = False
    issued = False
    next_issue = I64_MAX
    if dt_h < 12.0:
        day = (si[i, T_LAST] + off) // 86_400
        si[i, NEXT_ISSUE] = (day + 1) * 86_400 - off
        if day == si[i, ISSUE_DAY]:
            return
        si[i, ISSUE_DAY] = day
        k_lo = day % k_n
        k_hi = k_lo + 1
        next_issue = si[i, NEXT_ISSUE]
    else:
        k_lo = 0
        k_hi = k_n
    for k in range(k_lo, k_hi):
        hk = horizons[k]
        j0 = (i * k_n + k) * RING
        spacing = int(max(hk / RING, 24.0) * 3600.0) - 60
        newest = NONE_T
        free = -1
        nfree = 0
        for j in range(j0, j0 + RING):
            if pi[j, P_DUE] == NONE_T:
                if free < 0:
                    free = j
                nfree += 1
            elif pi[j, P_MADE] > newest:
                newest = pi[j, P_MADE]
        if free < 0:
            continue
        t_last = si[i, T_LAST]
        if dt_h >= 12.0 and newest != NONE_T and t_last - newest < spacing:
            next_issue = min(next_issue, newest + spacing)
            continue
        if dt_h >= 12.0 and nfree > 1:
            next_issue = min(next_issue, t_last + spacing)
        if not have_cum:
            cum_fill(env, sf, i, c)
            have_cum = True
        end = t_last + int(hk * 3600.0)
        base, cap, m, b, s, coarse, res, noise = forecast(si, sf, env, off, cal, c, i, end, hk, f)
        q0, q1, q2 = dist_q3(f, lo[k], 0.5, hi[k])
        pi[free, P_DUE] = end
        pi[free, P_MADE] = t_last
        pi[free, P_CYC] = si[i, CYC]
        pi[free, P_BAND] = b
        pi[free, P_STALL] = s
        pf[free, P_BASE] = np.float32(base)
        pf[free, P_M] = np.float32(m)
        pf[free, P_P10] = np.float32(fc_snap(fc_clip(q0, base, cap, coarse, noise), base, cap, coarse, res))
        pf[free, P_P50] = np.float32(fc_snap(fc_clip(q1, base, cap, coarse, noise), base, cap, coarse, res))
        pf[free, P_P90] = np.float32(fc_snap(fc_clip(q2, base, cap, coarse, noise), base, cap, coarse, res))
        pf[free, P_PO] = np.float32(dist_exceed(f, threshold - base - 1e-9))
        issued = True
    if issued:
        si[i, NEXT_DUE] = next_due_of(pi, i, k_n * RING)
    si[i, NEXT_ISSUE] = next_issue


@njit(inline="always", **_JIT)
def bookkeep_due(si, sf, pi, pf, ai, af, env, off, cal, stats, c, f, i, k_n, t, x, dt_h, threshold, cycle_rule,
                 calibrate):  # fmt: skip
    """Score the pending forecasts due by t and issue new ones when it is time (once
    per container and local day on hourly streams: a call, not inlined, as in model.rs)."""
    if (
        t >= si[i, NEXT_DUE]
        and score(si, sf, pi, pf, ai, af, cal, stats, i, k_n, t, x, threshold, cycle_rule)
    ) or (t >= si[i, NEXT_ISSUE]):
        issue(si, sf, pi, pf, env, off, cal, c, f, i, k_n, dt_h, threshold, calibrate)


@njit(**_JIT)
def init_reading(si, sf, pi, pf, env, off, cal, stats, c, f, i, k_n, t, x, threshold, calibrate):
    """A container's first reading (model.rs `State::init`, then one issue)."""
    init_state(si, sf, i)
    si[i, FLAGS] = F_INIT
    si[i, T_LAST] = t
    hs, hod, dow = split(t + off)
    si[i, HOUR] = hs
    si[i, HOD] = hod
    si[i, DOW] = dow
    sf[i, LEVEL] = x
    sf[i, X_LAST] = x
    sf[i, PREV_RAW] = x
    sf[i, ANCHOR] = x
    si[i, T_RISE] = t
    sf[i, MAX_LEVEL] = clamp(x, 1.0, 1.5)
    si[i, N_OBS] = 1
    stats[S_ACCEPTED] += 1
    issue(si, sf, pi, pf, env, off, cal, c, f, i, k_n, 24.0, threshold, calibrate)


@njit(**_JIT)
def elapsed_call(si, sf, env, off, c, i, t):
    return elapsed(si, sf, env, off, c, i, t)


@njit(**_JIT)
def flush_dow_call(si, sf, i):
    flush_dow(si, sf, i)


@njit(**_JIT)
def add_day_call(days_d, days_v, last_day, day, rise, expected):
    add_day(days_d, days_v, last_day, day, rise, expected)


@njit(**_JIT)
def run_chunk(ridx, rows, order, t, x, tilt, si, sf, pi, pf, ai, af, env, off, fa, fa_day, days_d, days_v, last_day,
              cal, stats, c, f, threshold, drop_threshold, confirm_emptying, cycle_rule, calibrate):  # fmt: skip
    """The per-reading loop with model.rs `State::step` written out in it: numba
    reference-counts every array handed to a function call, so the hot path calls no
    function that takes an array (the rare paths do: first reading, provisional
    emptying, bookkeeping once per container-day, day buckets, day-of-week flush)."""
    k_n = cal[6].shape[0]
    has_rows = rows.shape[0] > 0
    has_order = order.shape[0] > 0
    has_tilt = tilt.shape[0] > 0
    phi = env[E_PHI]
    fleet_r = env[E_FR]
    for p in range(ridx.shape[0]):
        j = order[p] if has_order else p
        row = rows[j] if has_rows else j
        i = ridx[j]
        tl = tilt[row] if has_tilt else -1
        tt = t[row]
        xv = x[row]
        if not math.isfinite(xv):
            stats[S_MISSING] += 1
            continue
        if not (xv >= -0.5 and xv <= 3.0):
            stats[S_INVALID] += 1
            continue
        if si[i, FLAGS] & F_INIT == 0:
            init_reading(si, sf, pi, pf, env, off, cal, stats, c, f, i, k_n, tt, xv, threshold, calibrate)
            continue
        if tt <= si[i, T_LAST]:
            stats[S_OOO] += 1
            continue
        r_c = fmax((sf[i, RNUM] + N0_R * fleet_r) / (sf[i, RDEN] + N0_R), 0.0)
        r = r_c * phi

        # a provisional emptying is confirmed, or reverted as a spike, by the next reading
        if si[i, FLAGS] & F_PROVISIONAL != 0:
            si[i, FLAGS] &= ~F_PROVISIONAL
            du, _, _, _ = elapsed_call(si, sf, env, off, c, i, tt)
            res0 = sf[i, RES]
            ne0 = 0.0 if res0 >= COARSE else sf[i, NOISE]
            dmin0 = fmax(fmax(drop_threshold, 0.75 * res0), 4.0 * ne0)
            bk_pred = sf[i, BK_LEVEL] + r * (sf[i, BK_DU] + du)
            tol = fmax(0.5 * dmin0, 3.0 * ne0)
            if tl != 1 and xv >= fmin(bk_pred, sf[i, MAX_LEVEL]) - tol:
                sf[i, LEVEL] = sf[i, BK_LEVEL]
                sf[i, X_LAST] = sf[i, BK_X_LAST]
                sf[i, ANCHOR] = sf[i, BK_ANCHOR]
                si[i, T_LAST] = si[i, BK_T_LAST]
                si[i, HOUR] = si[i, BK_HOUR]
                si[i, HOD] = si[i, BK_HOD]
                si[i, DOW] = si[i, BK_DOW]
                si[i, T_CYCLE] = si[i, BK_T_CYCLE]
                si[i, T_RISE] = si[i, BK_T_RISE]
                si[i, CYC] -= 1
                si[i, N_EMPTY] = max(si[i, N_EMPTY] - 1, 0)
                stats[S_EMPTYINGS] = max(stats[S_EMPTYINGS] - 1, 0)
                stats[S_SPIKES_LOW] += 1

        # effective hours since the last reading (hour walk; a long gap: profile tables)
        frm = si[i, T_LAST] + off
        to = tt + off
        if to - frm <= 6 * 3600:
            hs = si[i, HOUR]
            hod = si[i, HOD]
            dow = si[i, DOW]
            cur = frm
            acc = 0.0
            while True:
                he = hs + 3600
                wgt = env[E_FD + dow] * sf[i, CD + dow] * env[E_FH + hod] * sf[i, CH + hod]
                if to < he:
                    acc += wgt * (to - cur)
                    break
                acc += wgt * (he - cur)
                cur = he
                hs = he
                hod += 1
                if hod == 24:
                    hod = 0
                    dow = 0 if dow == 6 else dow + 1
                if to == he:
                    break
            du = acc * (1.0 / 3600.0)
        else:
            du, hs, hod, dow = elapsed_call(si, sf, env, off, c, i, tt)
        dt_h = (tt - si[i, T_LAST]) * (1.0 / 3600.0)
        level = sf[i, LEVEL]
        cap = sf[i, MAX_LEVEL]
        pred = fmin(level + r * du, fmax(cap, level))

        # resolution: the smallest step seen between raw readings
        res = sf[i, RES]
        d = abs(xv - sf[i, PREV_RAW])
        if d > 1e-4 and (res == 0.0 or d < res):
            res = d
            sf[i, RES] = d
        same = xv == sf[i, PREV_RAW]
        sf[i, PREV_RAW] = xv
        si[i, N_SAME] = min(si[i, N_SAME] + 1, 255) if same else 0
        coarse = res >= COARSE
        if (
            not coarse
            and res > 0.0
            and si[i, N_OBS] >= 10
            and si[i, N_SAME] >= STUCK_REPEATS
            and sf[i, NOISE] > 1.5 * res
        ):
            si[i, FLAGS] |= F_STUCK
            stats[S_STUCK] += 1
            continue
        si[i, FLAGS] &= ~F_STUCK

        ne = 0.0 if coarse else sf[i, NOISE]
        dmin = fmax(fmax(drop_threshold, 0.75 * res), 4.0 * ne)
        fall = level - xv
        kind = 0  # 0 accepted, 1 emptying, 2 believed jump
        if fall >= dmin and (coarse or fall >= 0.25 or xv <= 0.6 * level):
            confirmed = tl == 1 or not confirm_emptying
            if not confirmed:
                si[i, FLAGS] |= F_PROVISIONAL
                sf[i, BK_LEVEL] = sf[i, LEVEL]
                sf[i, BK_X_LAST] = sf[i, X_LAST]
                sf[i, BK_ANCHOR] = sf[i, ANCHOR]
                si[i, BK_T_LAST] = si[i, T_LAST]
                si[i, BK_HOUR] = si[i, HOUR]
                si[i, BK_HOD] = si[i, HOD]
                si[i, BK_DOW] = si[i, DOW]
                si[i, BK_T_CYCLE] = si[i, T_CYCLE]
                si[i, BK_T_RISE] = si[i, T_RISE]
                sf[i, BK_DU] = du
            sf[i, LEVEL] = xv
            sf[i, X_LAST] = xv
            sf[i, ANCHOR] = xv
            si[i, T_RISE] = tt
            si[i, T_CYCLE] = tt
            si[i, CYC] += 1
            si[i, N_EMPTY] += 1
            si[i, UP_COUNT] = 0
            stats[S_EMPTYINGS] += 1
            kind = 1
        elif tl == 1:
            stats[S_TILTED] += 1
            continue
        else:
            # a jump far above the model: an obstruction or lid spike until it persists
            e = xv - pred
            up_thr = fmax(fmax(0.15, 5.0 * ne), 1.5 * res) + 4.0 * r * du
            if e > up_thr and dt_h < 12.0:
                tol = fmax(fmax(0.1, 4.0 * ne), res)
                if si[i, UP_COUNT] > 0 and abs(xv - sf[i, UP_LEVEL]) <= tol:
                    si[i, UP_COUNT] = min(si[i, UP_COUNT] + 1, 255)
                else:
                    si[i, UP_COUNT] = 1
                    sf[i, UP_LEVEL] = xv
                    si[i, UP_T] = tt
                if si[i, UP_COUNT] < JUMP_CONFIRM or tt - si[i, UP_T] < JUMP_CONFIRM_S:
                    stats[S_SPIKES_HIGH] += 1
                    continue
                si[i, UP_COUNT] = 0
                sf[i, LEVEL] = xv
                sf[i, X_LAST] = xv
                sf[i, ANCHOR] = xv
                si[i, T_RISE] = tt
                sf[i, MAX_LEVEL] = fmax(sf[i, MAX_LEVEL], fmin(xv, 1.5))
                stats[S_JUMPS] += 1
                kind = 2
        if kind == 0:
            si[i, UP_COUNT] = 0
            # accepted reading
            alpha = 1.0 if coarse else dt_h / (dt_h + TAU_L)
            new_level = clamp(pred + alpha * e, -0.2, 1.5)
            if not coarse:
                nz = sf[i, NOISE]
                sf[i, NOISE] = fmax(nz + 0.03 * (fmin(abs(e), 0.2) - nz), 0.002)
            # rate, activity factor and profile samples (not at the cap: it cannot rise)
            x_prev = sf[i, X_LAST]
            if du > 1e-9 and x_prev < cap - 0.01 - 0.5 * res:
                expected = r_c * du
                exp_phi = expected * phi
                cc = fmax(fmax(5.6 * ne, 5.0 * exp_phi), 2.0 * res + 0.05)
                dx = fmin(fmax(xv - x_prev, exp_phi - cc), exp_phi + cc)
                lam = 1.0 - dt_h * (1.0 / TAU_R) if dt_h < 2.0 else 1.0 / (1.0 + dt_h * (1.0 / TAU_R))
                dxn = dx * env[E_IPHI]
                sf[i, RNUM] = lam * sf[i, RNUM] + dxn
                sf[i, RDEN] = lam * sf[i, RDEN] + du
                fa[FA_N] += 1.0
                fa[FA_RNUM] += dxn
                fa[FA_RDEN] += du
                day = (tt + off) // 86_400
                if day != fa_day[0]:
                    if fa[FA_DNUM] != 0.0 or fa[FA_DDEN] != 0.0:
                        add_day_call(days_d, days_v, last_day, fa_day[0], fa[FA_DNUM], fa[FA_DDEN])
                    fa_day[0] = day
                    fa[FA_DNUM] = 0.0
                    fa[FA_DDEN] = 0.0
                fa[FA_DNUM] += dx
                fa[FA_DDEN] += expected
                if exp_phi > 1e-6:
                    ratio = clamp(dx / exp_phi, -2.0, 6.0)
                    if dt_h <= 26.0:
                        # attribute to the day (and hour) of the interval's midpoint
                        mid = (si[i, T_LAST] + tt) // 2 + off
                        if dt_h <= 1.5:
                            if mid >= hs:
                                mh = hod
                                md = dow
                            else:
                                mh = si[i, HOD]
                                md = si[i, DOW]
                        else:
                            _, mh, md = split(mid)
                        # day-of-week evidence is summed over the day, applied when it changes
                        if md != si[i, D_DOW]:
                            flush_dow_call(si, sf, i)
                            si[i, D_DOW] = md
                        sf[i, D_SUM] += fmin(dt_h * (1.0 / 24.0), 1.0) * (ratio - 1.0)
                        if dt_h >= 12.0:
                            flush_dow_call(si, sf, i)
                        fa[FA_FDN + md] += dxn
                        fa[FA_FDD + md] += expected * env[E_IFD + md]
                        if dt_h <= 1.5:
                            g = 1.0 + ETA_H * (ratio - 1.0)
                            sf[i, CH + mh] = clamp(sf[i, CH + mh] * g, 0.05, 20.0)
                            fa[FA_FHN + mh] += dxn
                            fa[FA_FHD + mh] += expected * env[E_IFH + mh]
            # the step that counts as a rise, with the noise just updated
            stp = fmax(fmax(res, 2.0 * (0.0 if coarse else sf[i, NOISE])), 0.01)
            nl = new_level
            if nl - sf[i, ANCHOR] >= 0.999 * stp:
                sf[i, ANCHOR] = nl
                si[i, T_RISE] = tt
            elif sf[i, ANCHOR] - nl >= stp:
                sf[i, ANCHOR] = nl
            sf[i, LEVEL] = nl
            sf[i, MAX_LEVEL] = fmax(sf[i, MAX_LEVEL], fmin(nl, 1.5))
            sf[i, X_LAST] = xv
            si[i, N_OBS] = min(si[i, N_OBS] + 1, 4_294_967_295)
        si[i, T_LAST] = tt
        si[i, HOUR] = hs
        si[i, HOD] = hod
        si[i, DOW] = dow
        stats[S_ACCEPTED] += 1
        # pending forecasts due, or time to issue (once per container and local day)
        if tt >= si[i, NEXT_DUE] or tt >= si[i, NEXT_ISSUE]:
            bookkeep_due(si, sf, pi, pf, ai, af, env, off, cal, stats, c, f, i, k_n, tt, xv, dt_h, threshold,
                         cycle_rule, calibrate)  # fmt: skip


# -- the forecaster (mod.rs) ----------------------------------------------------------------


@njit(**_JIT)
def make_env(fl, days_d, days_v, day, env):
    """Fleet quantities as of local day `day` (mod.rs `Forecaster::env`)."""
    s = 0.0
    for d in range(7):
        v = clamp((fl[FL_FDN + d] + PRIOR_P) / (fl[FL_FDD + d] + PRIOR_P), 0.02, 50.0)
        env[E_FD + d] = v
    for d in range(7):
        s += env[E_FD + d]
    for d in range(7):
        env[E_FD + d] *= 7.0 / s
    s = 0.0
    for h in range(24):
        env[E_FH + h] = clamp((fl[FL_FHN + h] + PRIOR_P) / (fl[FL_FHD + h] + PRIOR_P), 0.02, 50.0)
    for h in range(24):
        s += env[E_FH + h]
    for h in range(24):
        env[E_FH + h] *= 24.0 / s
    for d in range(7):
        env[E_IFD + d] = 1.0 / max(env[E_FD + d], 1e-6)
    for h in range(24):
        env[E_IFH + h] = 1.0 / max(env[E_FH + h], 1e-6)
    if day == NONE_T:
        phi = 1.0
    else:
        lam = math.exp(-1.0 / TAU_F)
        num = PRIOR_F
        den = PRIOR_F
        for slot in range(N_DAYS):
            d = days_d[slot]
            if d == NONE_T or d > day or day - d >= N_DAYS:
                continue
            w = powi(lam, day - d)
            num += w * days_v[slot, 0]
            den += w * days_v[slot, 1]
        phi = clamp(num / den, 0.25, 4.0)
    env[E_PHI] = phi
    env[E_IPHI] = 1.0 / phi
    env[E_FR] = max(fl[FL_RNUM] / fl[FL_RDEN], 1e-6)


@njit(**_JIT)
def fold(fl, days_d, days_v, last_day, fa, fa_day):
    """Add a chunk's fleet sums, forgetting the old ones as if per sample."""
    if fa_day != NONE_T and (fa[FA_DNUM] != 0.0 or fa[FA_DDEN] != 0.0):
        add_day(days_d, days_v, last_day, fa_day, fa[FA_DNUM], fa[FA_DDEN])
    if fa[FA_N] == 0.0:
        return
    d = FLEET_DECAY ** fa[FA_N]
    fl[FL_RNUM] = d * fl[FL_RNUM] + fa[FA_RNUM]
    fl[FL_RDEN] = d * fl[FL_RDEN] + fa[FA_RDEN]
    for q in range(7):
        fl[FL_FDN + q] = d * fl[FL_FDN + q] + fa[FA_FDN + q]
        fl[FL_FDD + q] = d * fl[FL_FDD + q] + fa[FA_FDD + q]
    for q in range(24):
        fl[FL_FHN + q] = d * fl[FL_FHN + q] + fa[FA_FHN + q]
        fl[FL_FHD + q] = d * fl[FL_FHD + q] + fa[FA_FHD + q]


@njit(**_JIT)
def group(idx, n_ids):
    """Row order grouped by container (stable), or an empty array when rows already
    come in runs or the fleet is small (mod.rs `group`)."""
    n = idx.shape[0]
    if n < 64 or n_ids <= GROUP_ABOVE:
        return np.empty(0, np.int64)
    runs = 1
    for r in range(1, n):
        if idx[r] != idx[r - 1]:
            runs += 1
    if runs * 4 <= n:
        return np.empty(0, np.int64)
    if n_ids <= 4 * n:
        start = np.zeros(n_ids + 1, np.int64)
        for r in range(n):
            start[idx[r] + 1] += 1
        for j in range(n_ids):
            start[j + 1] += start[j]
        order = np.empty(n, np.int64)
        for r in range(n):
            i = idx[r]
            order[start[i]] = r
            start[i] += 1
        return order
    return np.argsort(idx, kind="mergesort").astype(np.int64)


@njit(**_JIT)
def run_rows(idx, rows, t, x, tilt, n_ids, st, fleet, cal, stats, off, cfg):
    """Process `rows` (all when empty) grouped by container with the fleet frozen
    (mod.rs `run_rows` + `process`)."""
    si, sf, pi, pf, ai, af = st
    fl, days_d, days_v, last_day = fleet
    threshold, drop_threshold, confirm_emptying, cycle_rule, calibrate = cfg
    env = np.empty(NE)
    make_env(fl, days_d, days_v, last_day[0], env)
    has_rows = rows.shape[0] > 0
    if has_rows:
        ridx = np.empty(rows.shape[0], np.int64)
        for q in range(rows.shape[0]):
            ridx[q] = idx[rows[q]]
    else:
        ridx = idx
    order = group(ridx, n_ids)
    fa = np.zeros(NFA)
    fa_day = np.full(1, NONE_T, np.int64)
    c = np.empty(NC)
    f = np.empty(N_HIST + 1)
    stats[S_READINGS] += ridx.shape[0]
    run_chunk(ridx, rows, order, t, x, tilt, si, sf, pi, pf, ai, af, env, off, fa, fa_day, days_d, days_v, last_day,
              cal, stats, c, f, threshold, drop_threshold, confirm_emptying, cycle_rule, calibrate)  # fmt: skip
    fold(fl, days_d, days_v, last_day, fa, fa_day[0])


@njit(**_JIT)
def update_kernel(idx, t, x, tilt, n_ids, st, fleet, cal, stats, off, cfg):
    """One `update` batch: one local day at a time (mod.rs `Forecaster::update`)."""
    n = idx.shape[0]
    if n == 0:
        return
    no_rows = np.empty(0, np.int64)
    has_tilt = tilt.shape[0] > 0
    tmin = t[0]
    tmax = t[0]
    srt = True
    for r in range(n):
        v = t[r]
        if v < tmin:
            tmin = v
        if v < tmax:
            srt = False
        if v > tmax:
            tmax = v
    dmin = (tmin + off) // 86_400
    dmax = (tmax + off) // 86_400
    if dmin == dmax or dmax - dmin > 100_000:
        run_rows(idx, no_rows, t, x, tilt, n_ids, st, fleet, cal, stats, off, cfg)
    elif srt:
        a = 0
        while a < n:
            end_t = ((t[a] + off) // 86_400 + 1) * 86_400 - off
            b = a + np.searchsorted(t[a:], end_t)
            tl = tilt[a:b] if has_tilt else tilt
            run_rows(idx[a:b], no_rows, t[a:b], x[a:b], tl, n_ids, st, fleet, cal, stats, off, cfg)
            a = b
    else:
        nd = dmax - dmin + 1
        base = dmin * 86_400 - off
        day = np.empty(n, np.int64)
        start = np.zeros(nd + 1, np.int64)
        for r in range(n):
            day[r] = (t[r] - base) // 86_400
            start[day[r] + 1] += 1
        for j in range(nd):
            start[j + 1] += start[j]
        bounds = start.copy()
        rows = np.empty(n, np.int64)
        for r in range(n):
            rows[start[day[r]]] = r
            start[day[r]] += 1
        for j in range(nd):
            if bounds[j] < bounds[j + 1]:
                run_rows(
                    idx, rows[bounds[j] : bounds[j + 1]], t, x, tilt, n_ids, st, fleet, cal, stats, off, cfg
                )


# -- outputs (predict, times to threshold, accountability) ------------------------------------


@njit(**_JIT)
def _q_at(si, sf, env, off, cal, c, f, i, start, hours, threshold):
    """(median, upper) fill `hours` after `start` on a continuous scale."""
    _hist, _cnt, _scale, lo, hi, _scored, horizons, ln_h, _tab = cal
    end = start + np.int64(round_away(hours * 3600.0))
    h_total = max((end - si[i, T_LAST]) / 3600.0, 1e-3)
    base, cap, _m, _b, _s, coarse, _res, noise = forecast(si, sf, env, off, cal, c, i, end, h_total, f)
    up = levels(horizons, ln_h, lo, hi, h_total)[1]
    q0, q1, _ = dist_q3(f, 0.5, up, 2.0)
    return fc_clip(q0, base, cap, coarse, noise), fc_clip(q1, base, cap, coarse, noise)


@njit(**_JIT)
def _solve(si, sf, env, off, cal, c, f, i, start, threshold, thr, lead, hmax, g0, gm, which):
    if g0 >= 0.0:
        return lead
    if gm < 0.0:
        return np.nan
    lo = 0.0
    hi = hmax
    glo = g0
    ghi = gm
    side = 0
    for _ in range(40):
        if hi - lo <= 0.5:
            break
        mid = lo - glo * (hi - lo) / (ghi - glo)
        if not (mid > lo + 0.05 and mid < hi - 0.05):
            mid = 0.5 * (lo + hi)
        v0, v1 = _q_at(si, sf, env, off, cal, c, f, i, start, mid, threshold)
        g = (v0 if which == 0 else v1) - thr
        if abs(g) < 2e-4:
            return lead + mid
        if g >= 0.0:
            hi = mid
            ghi = g
            if side == 1:
                glo *= 0.5
            side = 1
        else:
            lo = mid
            glo = g
            if side == -1:
                ghi *= 0.5
            side = -1
    return lead + hi


@njit(**_JIT)
def predict_kernel(st, fleet, cal, off, threshold, max_horizon_h, at, hz, out):
    """Forecasts at `at` for every initialised container and horizon (mod.rs
    `Forecaster::predict`); out rows: idx, horizon, p10, p50, p90, p_over, t50, t90.
    Returns the number of rows."""
    si, sf, _pi, _pf, _ai, _af = st
    fl, days_d, days_v, _last_day = fleet
    _hist, _cnt, _scale, lo, hi, _scored, horizons, ln_h, _tab = cal
    env = np.empty(NE)
    make_env(fl, days_d, days_v, (at + off) // 86_400, env)
    c = np.empty(NC)
    f = np.empty(N_HIST + 1)
    order = np.argsort(hz, kind="mergesort")
    nh = hz.shape[0]
    vals = np.empty((nh, 4))
    row = 0
    for i in range(si.shape[0]):
        if si[i, FLAGS] & F_INIT == 0:
            continue
        cum_fill(env, sf, i, c)
        start = max(at, si[i, T_LAST])
        # times to threshold (Forecaster::times_to)
        thr = threshold - 1e-9
        lead = (start - at) / 3600.0
        q00, q01 = _q_at(si, sf, env, off, cal, c, f, i, start, 0.0, threshold)
        if q00 >= thr:
            t50 = lead
            t90 = lead
        else:
            qm0, qm1 = _q_at(si, sf, env, off, cal, c, f, i, start, max_horizon_h, threshold)
            t90 = _solve(si, sf, env, off, cal, c, f, i, start, threshold, thr, lead, max_horizon_h, q01 - thr,
                         qm1 - thr, 1)  # fmt: skip
            t50 = _solve(si, sf, env, off, cal, c, f, i, start, threshold, thr, lead, max_horizon_h, q00 - thr,
                         qm0 - thr, 0)  # fmt: skip
            if math.isfinite(t50) and math.isfinite(t90):
                t90 = min(t90, t50)
        run_p = -np.inf
        for o in range(nh):
            j = order[o]
            end = start + np.int64(round_away(hz[j] * 3600.0))
            h_total = max((end - si[i, T_LAST]) / 3600.0, 1e-3)
            base, cap, _m, _b, _s, coarse, res, noise = forecast(si, sf, env, off, cal, c, i, end, h_total, f)
            qlo, qhi = levels(horizons, ln_h, lo, hi, h_total)
            q0, q1, q2 = dist_q3(f, qlo, 0.5, qhi)
            p = dist_exceed(f, threshold - base - 1e-9)
            p_off = sf[i, P_OFF]
            if not (p <= 1e-4 or p >= 1.0 - 1e-4 or p_off == 0.0):
                p = logistic(logit(p) + p_off)
            run_p = max(run_p, p)
            vals[j, 0] = fc_snap(fc_clip(q0, base, cap, coarse, noise), base, cap, coarse, res)
            vals[j, 1] = fc_snap(fc_clip(q1, base, cap, coarse, noise), base, cap, coarse, res)
            vals[j, 2] = fc_snap(fc_clip(q2, base, cap, coarse, noise), base, cap, coarse, res)
            vals[j, 3] = run_p
        for j in range(nh):
            out[row, 0] = i
            out[row, 1] = hz[j]
            out[row, 2] = vals[j, 0]
            out[row, 3] = vals[j, 1]
            out[row, 4] = vals[j, 2]
            out[row, 5] = vals[j, 3]
            out[row, 6] = t50
            out[row, 7] = t90
            row += 1
    return row


class FullNumbaForecaster:
    """tidstream's default forecaster in numba (container ids must be 0..n-1).

    Same defaults as ``tidstream.Forecaster()``: threshold 0.8, calibration horizons
    24/48/72 h, UTC, drop threshold 0.1, emptying confirmed by the next reading,
    ``max_horizon_h`` 336, the "cycle" scoring rule, ``calibrate=True``."""

    def __init__(
        self,
        n: int,
        *,
        threshold: float = 0.8,
        horizons_h: tuple[float, ...] = (24.0, 48.0, 72.0),
        drop_threshold: float = 0.1,
        confirm_emptying: bool = True,
        max_horizon_h: float = 336.0,
        calibrate: bool = True,
    ) -> None:
        hz = np.array(sorted(set(float(h) for h in horizons_h)))
        k = len(hz)
        self.n = n
        self.n_ids = 0
        self.off = 0
        self.threshold = float(threshold)
        self.max_horizon_h = float(max_horizon_h)
        self.cfg = (self.threshold, float(drop_threshold), bool(confirm_emptying), True, bool(calibrate))
        si = np.zeros((n, NI), np.int64)
        sf = np.zeros((n, NF))
        for i in range(n):
            init_state(si, sf, i)
        pi = np.zeros((n * k * RING, 5), np.int64)
        pi[:, P_DUE] = NONE_T
        pi[:, P_MADE] = NONE_T
        pf = np.zeros((n * k * RING, 6), np.float32)
        ai = np.zeros((n * k, 2), np.int64)
        af = np.zeros((n * k, 3), np.float32)
        self.st = (si, sf, pi, pf, ai, af)
        fl = np.zeros(64)
        fl[FL_RNUM] = 0.125 / 24.0 * 1000.0
        fl[FL_RDEN] = 1000.0
        self.fleet = (
            fl,
            np.full(N_DAYS, NONE_T, np.int64),
            np.zeros((N_DAYS, 2)),
            np.full(1, NONE_T, np.int64),
        )
        cells = k * N_BAND * N_M * N_STALL
        self.cal = (
            np.zeros(cells * N_HIST, np.float32),
            np.zeros(cells, np.float32),
            np.ones(cells, np.float32),
            np.full(k, P_LO),
            np.full(k, P_HI),
            np.zeros(k, np.int64),
            hz,
            np.log(hz),
            PHI_TAB,
        )
        self.stats_arr = np.zeros(12, np.int64)
        self._no_tilt = np.empty(0, np.int8)

    def update(self, ids: np.ndarray, t: np.ndarray, x: np.ndarray, tilt: np.ndarray | None = None) -> None:
        """Readings (time-ordered per container) of containers 0..n-1: `t` UTC s, `x` fill."""
        if len(ids):
            self.n_ids = max(self.n_ids, int(ids.max()) + 1)
        update_kernel(
            ids,
            t,
            x,
            self._no_tilt if tilt is None else tilt,
            self.n_ids,
            self.st,
            self.fleet,
            self.cal,
            self.stats_arr,
            self.off,
            self.cfg,
        )

    def copy(self) -> FullNumbaForecaster:
        c = self.__class__.__new__(self.__class__)
        c.__dict__.update(self.__dict__)
        c.st = tuple(a.copy() for a in self.st)
        c.fleet = tuple(a.copy() for a in self.fleet)
        c.cal = (*tuple(a.copy() for a in self.cal[:-1]), PHI_TAB)
        c.stats_arr = self.stats_arr.copy()
        return c

    # -- outputs, in the layout of tidstream's core dicts ---------------------------------

    def predict(self, at: int, horizons_h: Any = (24, 48, 72)) -> dict[str, np.ndarray]:
        hz = np.asarray(horizons_h, np.float64)
        out = np.empty((self.n * len(hz), 8))
        k = predict_kernel(
            self.st, self.fleet, self.cal, self.off, self.threshold, self.max_horizon_h, int(at), hz, out
        )
        o = out[:k]
        names = ("idx", "horizon_h", "fill_p10", "fill_p50", "fill_p90", "p_over_threshold")
        d = {nm: o[:, j] for j, nm in enumerate(names)}
        d["idx"] = d["idx"].astype(np.int64)
        d["hours_to_threshold"] = o[:, 6]
        d["hours_to_threshold_p90"] = o[:, 7]
        return d

    def accountability(self) -> dict[str, np.ndarray]:
        _, _, _, _, ai, af = self.st
        k = len(self.cal[6])
        n = ai[:, A_N]
        nan_if = lambda v: np.where(n == 0, np.nan, v.astype(np.float64))  # noqa: E731
        return {
            "idx": np.repeat(np.arange(self.n), k),
            "horizon_h": np.tile(self.cal[6], self.n),
            "n": n.copy(),
            "mae": nan_if(af[:, A_MAE]),
            "bias": nan_if(af[:, A_BIAS]),
            "coverage": nan_if(af[:, A_COV]),
            "last_scored_s": ai[:, A_LAST].copy(),
        }

    def interval_levels(self) -> list[tuple[float, float, float]]:
        hz, lo, hi = self.cal[6], self.cal[3], self.cal[4]
        return [(float(hz[k]), float(lo[k]), float(hi[k])) for k in range(len(hz))]

    def stats(self) -> dict[str, int]:
        return {nm: int(v) for nm, v in zip(STAT_NAMES, self.stats_arr, strict=True)}

    def rate_per_day(self) -> np.ndarray:
        """As tidstream's ``states()['rate_per_day']`` (rate x activity factor x profile week / 7)."""
        _si, sf = self.st[0], self.st[1]
        env = np.empty(NE)
        fl, days_d, days_v, last_day = self.fleet
        make_env(fl, days_d, days_v, last_day[0], env)
        r = np.maximum((sf[:, RNUM] + N0_R * env[E_FR]) / (sf[:, RDEN] + N0_R), 0.0)
        h = env[E_FH : E_FH + 24] * sf[:, CH : CH + 24]
        d = env[E_FD : E_FD + 7] * sf[:, CD : CD + 7]
        week = (d * h.sum(axis=1, keepdims=True)).sum(axis=1)
        return r * env[E_PHI] * week / 7.0


# -- tidstream's own state, read from its snapshot (for the check) ----------------------------

_STATE_DT = np.dtype(
    [
        (nm, "<i8")
        for nm in "t_last hour t_cycle t_rise up_t bk_t_last bk_hour bk_t_cycle bk_t_rise issue_day".split()
    ]
    + [
        (nm, "<f8")
        for nm in (
            "level x_last prev_raw rnum rden noise res max_level anchor up_level p_off bk_level bk_x_last "
            "bk_anchor bk_du"
        ).split()
    ]
    + [("cd", "<f8", (7,)), ("ch", "<f8", (24,)), ("d_sum", "<f8")]
    + [(nm, "<u4") for nm in ("cyc", "n_obs", "n_empty")]
    + [(nm, "u1") for nm in "hod dow bk_hod bk_dow n_same up_count flags d_dow".split()]
)
_ACC_DT = np.dtype([("n", "<u4"), ("mae", "<f4"), ("bias", "<f4"), ("cov", "<f4"), ("last", "<i8")])
_PEND_DT = np.dtype(
    [("due", "<i8"), ("made", "<i8")]
    + [(nm, "<f4") for nm in "base m p10 p50 p90 po".split()]
    + [("cyc", "<u4"), ("band", "u1"), ("stall", "u1")]
)


def parse_snapshot(blob: bytes) -> dict[str, Any]:
    """Read tidstream's ``Forecaster.to_bytes()`` (format version 1, persist.rs): config,
    counters, fleet, calibration tables and interval levels, ids, container states,
    pending forecasts and rolling errors. Read only, for comparisons."""
    b = memoryview(blob)
    if bytes(b[:8]) != b"TIDFCST\0":
        raise ValueError("not a tidstream forecaster snapshot")
    p = 8
    (ver,) = struct.unpack_from("<H", b, p)
    if ver != 1:
        raise ValueError(f"snapshot format version {ver}: this reader knows version 1 (persist.rs)")
    p += 2
    out: dict[str, Any] = {}
    (out["threshold"],) = struct.unpack_from("<d", b, p)
    p += 8
    k = b[p]
    p += 1
    out["horizons_h"] = np.frombuffer(b, "<f8", k, p).copy()
    p += 8 * k
    out["utc_offset_s"], out["drop_threshold"] = struct.unpack_from("<qd", b, p)
    p += 16
    out["confirm_emptying"] = bool(b[p])
    p += 1
    (out["max_horizon_h"],) = struct.unpack_from("<d", b, p)
    p += 8
    out["score_rule"], out["calibrate"] = b[p], bool(b[p + 1])
    p += 2
    out["stats"] = dict(zip(STAT_NAMES, np.frombuffer(b, "<u8", 12, p).tolist(), strict=True))
    p += 96
    out["fleet"] = np.frombuffer(b, "<f8", 64, p).copy()  # fd_num fd_den fh_num fh_den rnum rden
    p += 64 * 8
    (out["last_day"],) = struct.unpack_from("<q", b, p)
    p += 8
    days = np.frombuffer(b, np.dtype([("d", "<i8"), ("n", "<f8"), ("e", "<f8")]), N_DAYS, p)
    out["days"] = days.copy()
    p += N_DAYS * 24
    lv = np.frombuffer(b, np.dtype([("lo", "<f8"), ("hi", "<f8"), ("scored", "<u8")]), k, p)
    out["lo"], out["hi"], out["scored"] = lv["lo"].copy(), lv["hi"].copy(), lv["scored"].astype(np.int64)
    p += 24 * k
    for nm in ("hist", "cnt", "scale"):
        (m,) = struct.unpack_from("<Q", b, p)
        p += 8
        out[nm] = np.frombuffer(b, "<f4", m, p).copy()
        p += 4 * m
    kind = b[p]
    p += 1
    if kind != 1:
        raise ValueError("parse_snapshot reads int64 ids only")
    (m,) = struct.unpack_from("<Q", b, p)
    p += 8
    out["ids"] = np.frombuffer(b, "<i8", m, p).copy()
    p += 8 * m
    (n,) = struct.unpack_from("<Q", b, p)
    p += 8
    out["states"] = np.frombuffer(b, _STATE_DT, n, p).copy()
    p += n * _STATE_DT.itemsize
    pend = np.zeros(n * k * RING, _PEND_DT)
    pend["due"] = NONE_T
    pend["made"] = NONE_T
    raw = bytes(b[p:])
    q = 0
    for j in range(n * k * RING):
        if raw[q] == 1:
            pend[j] = np.frombuffer(raw, _PEND_DT, 1, q + 1)[0]
            q += 1 + _PEND_DT.itemsize
        else:
            q += 1
    p += q
    out["pending"] = pend
    out["acc"] = np.frombuffer(b, _ACC_DT, n * k, p).copy()
    p += n * k * _ACC_DT.itemsize
    if p != len(b) - 8:
        raise ValueError(f"snapshot: {len(b) - 8 - p} unread bytes (format changed?)")
    return out


# -- the check: this port against tidstream on the same readings ------------------------------

#: Agreement required before a timing of the port is kept. Counters, pending forecasts'
#: due / made times and scored counts must be equal; the rest within these absolute
#: differences (the port is not bit-identical only where libm's exp/log or f32 rounding of
#: a last bit differ; the times to threshold come from a root finder stopping within
#: 2e-4 of the threshold, so they move more with such differences).
TOLERANCE = {
    "median": 1e-6,  # median |difference| of every compared float
    "max": 1e-3,  # max |difference| of every compared float (except the times to threshold)
    "hours_median": 1e-3,  # hours to threshold (p50 and p90 times): median |difference|, hours
    "hours_max": 0.5,  # ... and max: the root finder's own bracket width
}


def _diff(a: Any, b: Any) -> np.ndarray:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} vs {b.shape}")
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        raise AssertionError(f"NaN at different places ({np.isnan(a).sum()} vs {np.isnan(b).sum()})")
    return np.abs(np.nan_to_num(a) - np.nan_to_num(b))


def compare(fc: Any, port: FullNumbaForecaster, at: int, sample: np.ndarray | None = None) -> dict[str, Any]:
    """Compare the port with tidstream's Forecaster fed the same readings (ids 0..n-1 in
    first-seen order, so tidstream's state index = id): counters, interval levels, the
    calibration tables, the container states and pending forecasts (from tidstream's
    snapshot), ``predict`` at ``at`` (24/48/72 h and 6 h, interpolated between tables) and
    the accountability table, for the containers in ``sample`` (all when None).
    Returns {quantity: (median, max) |difference|}; raises AssertionError beyond
    :data:`TOLERANCE`."""
    out: dict[str, Any] = {}
    ref_stats = {k: v for k, v in fc.stats().items() if k != "containers"}
    if ref_stats != port.stats():
        raise AssertionError(f"counters differ: tidstream {ref_stats} vs port {port.stats()}")
    snap = parse_snapshot(fc.to_bytes())
    if not np.array_equal(snap["ids"], np.arange(len(snap["ids"]))):
        raise AssertionError("tidstream's ids are not 0..n-1 in order: feed ids 0..n-1 in first-seen order")
    _si, sf, pi, pf, _ai, _af = port.st
    sel = np.arange(port.n) if sample is None else np.asarray(sample)
    hz = port.cal[6]
    k = len(hz)
    pend_rows = (sel[:, None] * k * RING + np.arange(k * RING)).ravel()
    acc_rows = (sel[:, None] * k + np.arange(k)).ravel()
    if not np.array_equal(snap["scored"], port.cal[5]):
        raise AssertionError(f"scored per horizon differ: {snap['scored']} vs {port.cal[5]}")
    pe = snap["pending"][pend_rows]
    for nm, col in (("due", P_DUE), ("made", P_MADE)):
        if not np.array_equal(pe[nm], pi[pend_rows, col]):
            raise AssertionError(f"pending forecasts' {nm} times differ")
    st = snap["states"][sel]
    floats = {
        "interval levels": (np.r_[snap["lo"], snap["hi"]], np.r_[port.cal[3], port.cal[4]]),
        "calibration hist": (snap["hist"], port.cal[0]),
        "calibration counts": (snap["cnt"], port.cal[1]),
        "calibration scales": (snap["scale"], port.cal[2]),
        "fleet sums": (snap["fleet"], port.fleet[0]),
        "state level": (st["level"], sf[sel, LEVEL]),
        "state rate sums": (np.r_[st["rnum"], st["rden"]], np.r_[sf[sel, RNUM], sf[sel, RDEN]]),
        "state profile": (np.c_[st["cd"], st["ch"]], sf[sel, CD : CH + 24]),
        "state p_off": (st["p_off"], sf[sel, P_OFF]),
    }
    for nm, col in (("p10", P_P10), ("p50", P_P50), ("p90", P_P90), ("po", P_PO)):
        floats[f"pending {nm}"] = (pe[nm], pf[pend_rows, col])
    hz_p = [24.0, 48.0, 72.0, 6.0]
    sub = np.asarray(sel, np.uint32)
    ref = fc._core.predict(int(at), hz_p, sub)
    got = port.predict(int(at), hz_p)
    rows = np.isin(got["idx"], sel)
    for nm in ("fill_p10", "fill_p50", "fill_p90", "p_over_threshold"):
        floats[f"predict {nm}"] = (ref[nm], got[nm][rows])
    ra = fc._core.accountability(sub)
    ga = port.accountability()
    if not np.array_equal(np.asarray(ra["n"], np.int64), ga["n"][acc_rows]):
        raise AssertionError("accountability n_scored differ")
    for nm in ("mae", "bias", "coverage"):
        floats[f"accountability {nm}"] = (ra[nm], ga[nm][acc_rows])
    bad = []
    for nm, (a, b) in floats.items():
        d = _diff(a, b)
        out[nm] = (float(np.median(d)), float(d.max()))
        if out[nm][0] >= TOLERANCE["median"] or out[nm][1] >= TOLERANCE["max"]:
            bad.append(nm)
    for nm in ("hours_to_threshold", "hours_to_threshold_p90"):
        d = _diff(ref[nm], got[nm][rows])
        out[f"predict {nm}"] = (float(np.median(d)), float(d.max()))
        if out[f"predict {nm}"][0] >= TOLERANCE["hours_median"] or d.max() >= TOLERANCE["hours_max"]:
            bad.append(nm)
    if bad:
        raise AssertionError("port differs from tidstream: " + "; ".join(f"{nm} {out.get(nm)}" for nm in bad))
    return out
