"""Issue 9, "choose the technology by measuring": one no-grad time loop written in each candidate
technology, timed and checked against the eager PyTorch loop.

Workloads (the loops the compiled path must run):

* ``coba_f32`` / ``coba_f64``: the COBA network of :mod:`benchmarks.bench_coba` (its connectivity
  and initial values, from ``make_network`` / ``initial_conductances``): N = 4000 conductance-based
  LIF neurons, forward Euler, refractory 49 steps, two CSR projections (exc -> "exc" port, weight
  we; inh -> "inh" port, weight wi) read through back-edges, 10 000 steps at dt = 0.1 ms, no input.
  Per step t, with s[t-1] the previous spikes (all ops in the workload's dtype)::

      ge = ge a_e + sum_{i in s[t-1], i exc} W_e[i, :]      a_e = 1 - dt / tau_exc
      gi = gi a_i + sum_{i in s[t-1], i inh} W_i[i, :]      a_i = 1 - dt / tau_inh
      v' = v + ((v_leak + ge e_exc + gi e_inh) - (1 + ge + gi) v) k,   k = dt / tau_mem
      v' = v where refractory; s = (v' - v_th > 0) and not refractory; v = v_reset where s;
      refractory counter = 49 where s, else max(counter - 1, 0)

  The propagation sums are scatter-adds into a zeroed buffer, presynaptic neurons in ascending
  order, then added to the decayed conductance: the same order in every candidate.
* ``ff_f32``: the feed-forward loop of :mod:`benchmarks.bench_simulation` (``make_inputs``):
  Bernoulli input x [T = 1000, batch 1, 4096] with p = 1 %, event-driven Dense 4096 x 4096, LIF
  (Euler, reset to zero): c = sum of the rows of W^T of the active inputs (ascending, from 0),
  v = v a + (1 - a) c, s = (v - v_th > 0), v = 0 where s.

Candidates, each running the whole time loop and recording the spike raster [T, ...] (uint8 or
float) and the final membrane potential:

* ``eager``: plain PyTorch, one Python-level step function per step (the baseline);
* ``compile``: ``torch.compile`` (inductor, mode default) of that same step function, called
  from the same Python loop;
* ``numba`` / ``numba_par``: ``@njit(cache=True)`` kernels of the whole loop, serial, and
  ``parallel=True`` with ``prange`` over neurons (propagation stays serial: a scatter);
* ``cpp`` / ``cpp_omp``: one C++ template kernel built by ``torch.utils.cpp_extension.load_inline``
  (``-O3 -fopenmp``, one extension for both), on tensors; ``cpp_omp`` runs the instantiation with
  an ``omp parallel for`` over neurons (propagation serial), ``cpp`` the one without;
* ``cpp_ctypes``: the same C++ kernel compiled by ``g++ -O3 -shared`` alone (no torch headers)
  and called through ``ctypes`` on the tensors' data pointers.

Measured per (workload, candidate), in two fresh subprocesses sharing one temporary cache folder
(numba ``NUMBA_CACHE_DIR``, ``TORCH_EXTENSIONS_DIR``, ``TORCHINDUCTOR_CACHE_DIR``, the ctypes
library folder), created empty before and deleted after: the first call with the empty cache
(compilation + one run), then, in the second process, the first call with the warm cache, and
further calls whose median is the steady run time (``repeats``; a third of it for eager and
compile, whose runs are long). eager has no cache and runs in one process; cpp_omp runs the
extension cpp has just built (same source and flags), so only its warm process runs. Serial
candidates get 1 thread, the parallel ones (numba_par, cpp_omp) ``--threads`` (default: all
cores). The raster's and final state's SHA-256 and the spike counts per step are compared with
the eager loop's; os.getloadavg() is recorded in each process (the machine is shared).

Run: ``python -m benchmarks.bench_loop_technology [--quick] [--repeats N] [--out file.json]
[--md file.md] [--candidates a,b] [--workloads a,b] [--note TEXT]``; the report goes to stdout
and, atomically, to ``benchmarks/loop_technology.md`` (full runs only, unless ``--md`` is given).
``--render a.json,b.json`` rewrites the report from earlier ``--out`` files, their rows joined.
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from benchmarks import bench_coba, bench_simulation
from benchmarks.common import (RESULT_TAG, REPO_ROOT, configure, default_threads, environment,
                               summarize, thread_env, write_json_atomic)

try:
    import numba
    from numba import prange
except ImportError:  # pragma: no cover - numba is a benchmark extra
    numba, prange = None, range

MODULE = "benchmarks.bench_loop_technology"
MD_PATH = Path(__file__).resolve().parent / "loop_technology.md"
WORKLOADS = ("coba_f32", "coba_f64", "ff_f32")
CANDIDATES = ("eager", "compile", "numba", "numba_par", "cpp", "cpp_omp", "cpp_ctypes")
LABELS = {"eager": "eager PyTorch step loop", "compile": "torch.compile(step), inductor",
          "numba": "numba njit, serial", "numba_par": "numba njit parallel (prange)",
          "cpp": "C++ load_inline -O3, serial", "cpp_omp": "C++ load_inline -O3, OpenMP",
          "cpp_ctypes": "C++ g++ -O3 .so via ctypes"}
NEEDS = {"eager": "torch only", "compile": "C++ compiler at run time (inductor CPU codegen)",
         "numba": "numba (LLVM bundled), no compiler", "numba_par": "numba, no compiler",
         "cpp": "g++ + ninja + torch headers at first run",
         "cpp_omp": "g++ + ninja + torch headers at first run",
         "cpp_ctypes": "g++ at first run, no torch headers"}


def defaults(quick: bool = False) -> dict:
    """Sizes of the workloads; ``quick``: 500 COBA steps, a 256 x 256 feed-forward loop."""
    coba = bench_coba.defaults()
    coba.update(duration=1.0, seed=0)
    ff = bench_simulation.defaults()
    ff.update(seed=0)
    cfg = dict(coba=coba, ff=ff, repeats={"coba": 3, "ff": 7}, timeout=1800.0,
               threads=default_threads())
    if quick:
        cfg["coba"].update(duration=0.02)
        cfg["ff"].update(T=50, n_in=256, n_out=256, p_in=0.05)
        cfg["repeats"] = {"coba": 1, "ff": 1}
    return cfg


def parse_workload(name: str):
    """``"coba_f64"`` -> ("coba", torch.float64); raises ValueError naming a bad workload."""
    if name not in WORKLOADS and name not in ("ff_f64",):
        raise ValueError(f"unknown workload {name!r}; choose from {WORKLOADS}")
    kind, bits = name.split("_")
    return kind, {"f32": torch.float32, "f64": torch.float64}[bits]


# ---------------------------------------------------------------------------- the problems
def csr(pre: np.ndarray, post: np.ndarray, n_pre: int, weight: float, dtype):
    """CSR rows of the synapses ``pre -> post`` (ascending pre, stable): (ptr [n_pre + 1] int64,
    idx [nnz] int64, w [nnz] dtype), every weight ``weight``."""
    order = np.argsort(pre, kind="stable")
    ptr = np.zeros(n_pre + 1, dtype=np.int64)
    np.cumsum(np.bincount(pre, minlength=n_pre), out=ptr[1:])
    idx = torch.from_numpy(np.ascontiguousarray(post[order]).astype(np.int64))
    return torch.from_numpy(ptr), idx, torch.full((len(pre),), float(weight), dtype=dtype)


def coba_problem(cfg: dict, dtype) -> dict:
    """Connectivity, initial state and constants of the COBA workload (bench_coba's network).

    Constants ``c`` (dtype, [10]): a_e, a_i, k, v_leak, v_th, v_reset, e_exc, e_inh, 1, 0, each
    rounded to dtype once, as torch rounds a Python scalar operand."""
    net = bench_coba.make_network(cfg)
    ge0, gi0 = bench_coba.initial_conductances(cfg, net)
    dt = cfg["dt"]
    consts = [1.0 - dt / cfg["tau_exc"], 1.0 - dt / cfg["tau_inh"], dt / cfg["tau_mem"], cfg["v_leak"],
              cfg["v_threshold"], cfg["v_reset"], cfg["e_exc"], cfg["e_inh"], 1.0, 0.0]
    p = dict(kind="coba", steps=bench_coba.steps(cfg), n_exc=cfg["n_exc"], n=cfg["n_exc"] + cfg["n_inh"],
             n_ref=bench_coba.refractory_steps(cfg), consts=consts, c=torch.tensor(consts, dtype=dtype),
             v0=torch.as_tensor(net["v"], dtype=dtype), ge0=torch.as_tensor(ge0, dtype=dtype),
             gi0=torch.as_tensor(gi0, dtype=dtype), dtype=dtype)
    p["exc"] = csr(net["exc_pre"], net["exc_post"], cfg["n_exc"], cfg["we"], dtype)
    p["inh"] = csr(net["inh_pre"], net["inh_post"], cfg["n_inh"], cfg["wi"], dtype)
    return p


def ff_problem(cfg: dict, dtype) -> dict:
    """Input spikes x [T, B, n_in], W^T [n_in, n_out] (bench_simulation's tensors) and a, b, v_th."""
    x, w = bench_simulation.make_inputs(cfg)
    a = bench_simulation.decay(cfg)
    consts = [a, 1.0 - a, cfg["v_th"]]
    return dict(kind="ff", x=x.to(dtype), x_u8=(x != 0).to(torch.uint8), w_t=w.t().contiguous().to(dtype),
                consts=consts, c=torch.tensor(consts, dtype=dtype), dtype=dtype)


def make_problem(workload: str, cfg: dict) -> dict:
    kind, dtype = parse_workload(workload)
    return coba_problem(cfg["coba"], dtype) if kind == "coba" else ff_problem(cfg["ff"], dtype)


# ---------------------------------------------------------------------------- eager / compile
def csr_sum(rows: torch.Tensor, ptr, idx, w, n: int) -> torch.Tensor:
    """sum_{i in rows} W[i, :] as a [n] vector: scatter-add of the CSR rows ``rows`` (ascending)."""
    start = ptr[rows]
    count = ptr[rows + 1] - start
    ends = torch.cumsum(count, 0)
    total = int(ends[-1]) if rows.numel() else 0
    pos = torch.repeat_interleave(start - (ends - count), count, output_size=total) + torch.arange(total)
    return torch.zeros(n, dtype=w.dtype).index_add_(0, idx[pos], w[pos])


def make_coba_step(p: dict) -> Callable:
    """The COBA step (s, v, ge, gi, ref) -> (s, v, ge, gi, ref) of the module docstring."""
    a_e, a_i, k, v_leak, v_th, v_reset, e_exc, e_inh = p["consts"][:8]
    n, n_exc = p["n"], p["n_exc"]
    (pe, ie, we), (pi, ii, wi) = p["exc"], p["inh"]
    n_ref = torch.full((n,), float(p["n_ref"]), dtype=p["dtype"])

    def step(s, v, ge, gi, ref):
        active = s.nonzero().squeeze(1)
        ge = ge * a_e + csr_sum(active[active < n_exc], pe, ie, we, n)
        gi = gi * a_i + csr_sum(active[active >= n_exc] - n_exc, pi, ii, wi, n)
        total = 1.0 + ge + gi
        drive = v_leak + ge * e_exc + gi * e_inh
        v_new = v + (drive - total * v) * k
        free = ref <= 0
        v_new = torch.where(free, v_new, v)
        s = (v_new - v_th > 0).to(v.dtype) * free
        ref = torch.where(s > 0, n_ref, (ref - 1).clamp(min=0))
        v = v_new * (1.0 - s) + s * v_reset
        return s, v, ge, gi, ref
    return step


def make_ff_step(p: dict) -> Callable:
    """The feed-forward step (x_t [B, n_in], v [B, n_out]) -> (s, v) (bench_simulation.event_loop)."""
    a, b, v_th = p["consts"]
    w_t = p["w_t"]

    def step(x_t, v):
        rows, cols = x_t.nonzero(as_tuple=True)
        current = torch.zeros(v.shape, dtype=v.dtype).index_add_(0, rows, w_t.index_select(0, cols))
        v = v * a + b * current
        s = (v - v_th > 0).to(v.dtype)
        v = v * (1.0 - s)
        return s, v
    return step


def torch_runner(p: dict, compiled: bool) -> Callable:
    """run() -> (spikes [T, ...] uint8, final v) of the Python step loop, eager or torch.compile'd."""
    step = make_coba_step(p) if p["kind"] == "coba" else make_ff_step(p)
    if compiled:
        step = torch.compile(step)
    if p["kind"] == "coba":
        def run():
            v, ge, gi = p["v0"].clone(), p["ge0"].clone(), p["gi0"].clone()
            s, ref = torch.zeros_like(v), torch.zeros_like(v)
            out = torch.empty(p["steps"], p["n"], dtype=torch.uint8)
            for t in range(p["steps"]):
                s, v, ge, gi, ref = step(s, v, ge, gi, ref)
                out[t] = s
            return out, v
    else:
        def run():
            x = p["x"]
            v = torch.zeros(x.shape[1], p["w_t"].shape[1], dtype=p["dtype"])
            out = torch.empty(x.shape[0], *v.shape, dtype=torch.uint8)
            for t in range(x.shape[0]):
                s, v = step(x[t], v)
                out[t] = s
            return out, v
    return run


# ---------------------------------------------------------------------------- numba kernels
# Plain Python functions, jitted by numba_runner (so this module imports without numba).
def coba_kernel(steps, n_exc, pe, ie, we, pi, ii, wi, c, n_ref, v, ge, gi, out):
    """The COBA loop in place on v, ge, gi [N]; spikes into out [steps, N] (uint8)."""
    n = v.shape[0]
    a_e, a_i, k, v_leak, v_th, v_reset, e_exc, e_inh, one = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
    be = np.zeros(n, v.dtype)
    bi = np.zeros(n, v.dtype)
    ref = np.zeros(n, np.int32)
    active = np.empty(n, np.int64)
    n_active = 0
    for t in range(steps):
        be[:] = 0
        bi[:] = 0
        for q in range(n_active):
            i = active[q]
            if i < n_exc:
                for syn in range(pe[i], pe[i + 1]):
                    be[ie[syn]] += we[syn]
            else:
                i -= n_exc
                for syn in range(pi[i], pi[i + 1]):
                    bi[ii[syn]] += wi[syn]
        n_active = 0
        for j in range(n):
            g_e = ge[j] * a_e + be[j]
            g_i = gi[j] * a_i + bi[j]
            ge[j] = g_e
            gi[j] = g_i
            if ref[j] > 0:          # held: v unchanged, no spike
                ref[j] -= 1
                continue
            total = one + g_e + g_i
            drive = v_leak + g_e * e_exc + g_i * e_inh
            v_new = v[j] + (drive - total * v[j]) * k
            if v_new - v_th > 0:
                v[j] = v_reset
                ref[j] = n_ref
                out[t, j] = 1
                active[n_active] = j
                n_active += 1
            else:
                v[j] = v_new


def coba_kernel_par(steps, n_exc, pe, ie, we, pi, ii, wi, c, n_ref, v, ge, gi, out):
    """:func:`coba_kernel` with the neuron update in ``prange`` (propagation serial)."""
    n = v.shape[0]
    a_e, a_i, k, v_leak, v_th, v_reset, e_exc, e_inh, one = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
    be = np.zeros(n, v.dtype)
    bi = np.zeros(n, v.dtype)
    ref = np.zeros(n, np.int32)
    active = np.empty(n, np.int64)
    n_active = 0
    for t in range(steps):
        be[:] = 0
        bi[:] = 0
        for q in range(n_active):
            i = active[q]
            if i < n_exc:
                for syn in range(pe[i], pe[i + 1]):
                    be[ie[syn]] += we[syn]
            else:
                i -= n_exc
                for syn in range(pi[i], pi[i + 1]):
                    bi[ii[syn]] += wi[syn]
        for j in prange(n):
            g_e = ge[j] * a_e + be[j]
            g_i = gi[j] * a_i + bi[j]
            ge[j] = g_e
            gi[j] = g_i
            if ref[j] > 0:
                ref[j] -= 1
            else:
                total = one + g_e + g_i
                drive = v_leak + g_e * e_exc + g_i * e_inh
                v_new = v[j] + (drive - total * v[j]) * k
                if v_new - v_th > 0:
                    v[j] = v_reset
                    ref[j] = n_ref
                    out[t, j] = 1
                else:
                    v[j] = v_new
        n_active = 0
        for j in range(n):
            if out[t, j]:
                active[n_active] = j
                n_active += 1


def ff_kernel(x, w_t, c, v, out):
    """The feed-forward loop in place on v [B, n_out]; x [T, B, n_in] uint8; out [T, B, n_out]."""
    steps, batch, n_in = x.shape
    n_out = w_t.shape[1]
    a, b, v_th = c[0], c[1], c[2]
    cur = np.zeros(n_out, w_t.dtype)
    for t in range(steps):
        for r in range(batch):
            cur[:] = 0
            for i in range(n_in):
                if x[t, r, i]:
                    for j in range(n_out):
                        cur[j] += w_t[i, j]
            for j in range(n_out):
                h = v[r, j] * a + b * cur[j]
                if h - v_th > 0:
                    out[t, r, j] = 1
                    v[r, j] = 0
                else:
                    v[r, j] = h


def ff_kernel_par(x, w_t, c, v, out):
    """:func:`ff_kernel` with the output neurons split into ``prange`` blocks of 256."""
    steps, batch, n_in = x.shape
    n_out = w_t.shape[1]
    a, b, v_th = c[0], c[1], c[2]
    cur = np.zeros(n_out, w_t.dtype)
    block = 256
    n_blocks = (n_out + block - 1) // block
    active = np.empty(n_in, np.int64)
    for t in range(steps):
        for r in range(batch):
            n_active = 0
            for i in range(n_in):
                if x[t, r, i]:
                    active[n_active] = i
                    n_active += 1
            for q in prange(n_blocks):
                j0 = q * block
                j1 = min(n_out, j0 + block)
                for j in range(j0, j1):
                    cur[j] = 0
                for m in range(n_active):
                    i = active[m]
                    for j in range(j0, j1):
                        cur[j] += w_t[i, j]
                for j in range(j0, j1):
                    h = v[r, j] * a + b * cur[j]
                    if h - v_th > 0:
                        out[t, r, j] = 1
                        v[r, j] = 0
                    else:
                        v[r, j] = h


def numba_runner(p: dict, parallel: bool) -> Callable:
    """run() of the numba kernels (jitted here, ``cache=True``; compiled at the first call)."""
    if numba is None:
        raise RuntimeError("numba is not installed")
    kernels = (coba_kernel_par, ff_kernel_par) if parallel else (coba_kernel, ff_kernel)
    opts = dict(cache=True, parallel=True) if parallel else dict(cache=True)
    if p["kind"] == "coba":
        kernel = numba.njit(**opts)(kernels[0])

        def run():
            v, ge, gi = p["v0"].clone(), p["ge0"].clone(), p["gi0"].clone()
            out = torch.zeros(p["steps"], p["n"], dtype=torch.uint8)
            (pe, ie, we), (pi, ii, wi) = p["exc"], p["inh"]
            kernel(p["steps"], p["n_exc"], pe.numpy(), ie.numpy(), we.numpy(), pi.numpy(), ii.numpy(),
                   wi.numpy(), p["c"].numpy(), p["n_ref"], v.numpy(), ge.numpy(), gi.numpy(), out.numpy())
            return out, v
    else:
        kernel = numba.njit(**opts)(kernels[1])

        def run():
            x = p["x_u8"]
            v = torch.zeros(x.shape[1], p["w_t"].shape[1], dtype=p["dtype"])
            out = torch.zeros(x.shape[0], *v.shape, dtype=torch.uint8)
            kernel(x.numpy(), p["w_t"].numpy(), p["c"].numpy(), v.numpy(), out.numpy())
            return out, v
    return run


# ---------------------------------------------------------------------------- C++ kernels
CPP_KERNEL = r"""
#include <algorithm>
#include <cstdint>
#include <vector>

// The COBA loop (see the Python docstring), in place on v, ge, gi [n]; spikes into out [steps, n].
template <typename T, bool PAR>
static void coba_loop(int64_t steps, int64_t n, int64_t n_exc,
                      const int64_t* pe, const int64_t* ie, const T* we,
                      const int64_t* pi, const int64_t* ii, const T* wi, const T* c, int32_t n_ref,
                      T* v, T* ge, T* gi, uint8_t* out) {
  const T a_e = c[0], a_i = c[1], k = c[2], v_leak = c[3], v_th = c[4], v_reset = c[5],
          e_exc = c[6], e_inh = c[7], one = c[8], zero = c[9];
  std::vector<T> be(n), bi(n);
  std::vector<int32_t> ref(n, 0);
  std::vector<int64_t> active(n);
  int64_t n_active = 0;
  for (int64_t t = 0; t < steps; ++t) {
    std::fill(be.begin(), be.end(), zero);
    std::fill(bi.begin(), bi.end(), zero);
    for (int64_t q = 0; q < n_active; ++q) {
      int64_t i = active[q];
      if (i < n_exc) {
        for (int64_t s = pe[i]; s < pe[i + 1]; ++s) be[ie[s]] += we[s];
      } else {
        i -= n_exc;
        for (int64_t s = pi[i]; s < pi[i + 1]; ++s) bi[ii[s]] += wi[s];
      }
    }
    uint8_t* row = out + t * n;
    auto update = [&](int64_t j) -> bool {
      const T g_e = ge[j] * a_e + be[j];
      const T g_i = gi[j] * a_i + bi[j];
      ge[j] = g_e;
      gi[j] = g_i;
      if (ref[j] > 0) { ref[j] -= 1; return false; }
      const T total = one + g_e + g_i;
      const T drive = v_leak + g_e * e_exc + g_i * e_inh;
      const T v_new = v[j] + (drive - total * v[j]) * k;
      if (v_new - v_th > zero) { v[j] = v_reset; ref[j] = n_ref; row[j] = 1; return true; }
      v[j] = v_new;
      return false;
    };
    n_active = 0;
    if (PAR) {
#pragma omp parallel for schedule(static)
      for (int64_t j = 0; j < n; ++j) update(j);
      for (int64_t j = 0; j < n; ++j) if (row[j]) active[n_active++] = j;
    } else {
      for (int64_t j = 0; j < n; ++j) if (update(j)) active[n_active++] = j;
    }
  }
}

// The feed-forward loop, in place on v [batch, n_out]; x [steps, batch, n_in] uint8.
template <typename T, bool PAR>
static void ff_loop(int64_t steps, int64_t batch, int64_t n_in, int64_t n_out, const uint8_t* x,
                    const T* w_t, const T* c, T* v, uint8_t* out) {
  const T a = c[0], b = c[1], v_th = c[2], zero = T(0);
  std::vector<T> cur(n_out);
  std::vector<int64_t> active(n_in);
  const int64_t block = 256, n_blocks = (n_out + block - 1) / block;
  for (int64_t t = 0; t < steps; ++t) {
    for (int64_t r = 0; r < batch; ++r) {
      const uint8_t* xr = x + (t * batch + r) * n_in;
      int64_t n_active = 0;
      for (int64_t i = 0; i < n_in; ++i) if (xr[i]) active[n_active++] = i;
      T* vr = v + r * n_out;
      uint8_t* o = out + (t * batch + r) * n_out;
#pragma omp parallel for schedule(static) if (PAR)
      for (int64_t q = 0; q < n_blocks; ++q) {
        const int64_t j0 = q * block, j1 = std::min(n_out, j0 + block);
        for (int64_t j = j0; j < j1; ++j) cur[j] = zero;
        for (int64_t m = 0; m < n_active; ++m) {
          const T* wr = w_t + active[m] * n_out;
          for (int64_t j = j0; j < j1; ++j) cur[j] += wr[j];
        }
        for (int64_t j = j0; j < j1; ++j) {
          const T h = vr[j] * a + b * cur[j];
          if (h - v_th > zero) { o[j] = 1; vr[j] = zero; } else { vr[j] = h; }
        }
      }
    }
  }
}
"""

CPP_TORCH = CPP_KERNEL + r"""
void coba(int64_t steps, int64_t n_exc, torch::Tensor pe, torch::Tensor ie, torch::Tensor we,
          torch::Tensor pi, torch::Tensor ii, torch::Tensor wi, torch::Tensor c, int64_t n_ref,
          torch::Tensor v, torch::Tensor ge, torch::Tensor gi, torch::Tensor out, bool parallel) {
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "coba", [&] {
    auto f = parallel ? coba_loop<scalar_t, true> : coba_loop<scalar_t, false>;
    f(steps, v.numel(), n_exc, pe.data_ptr<int64_t>(), ie.data_ptr<int64_t>(), we.data_ptr<scalar_t>(),
      pi.data_ptr<int64_t>(), ii.data_ptr<int64_t>(), wi.data_ptr<scalar_t>(), c.data_ptr<scalar_t>(),
      (int32_t)n_ref, v.data_ptr<scalar_t>(), ge.data_ptr<scalar_t>(), gi.data_ptr<scalar_t>(),
      out.data_ptr<uint8_t>());
  });
}

void ff(torch::Tensor x, torch::Tensor w_t, torch::Tensor c, torch::Tensor v, torch::Tensor out,
        bool parallel) {
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "ff", [&] {
    auto f = parallel ? ff_loop<scalar_t, true> : ff_loop<scalar_t, false>;
    f(x.size(0), x.size(1), x.size(2), w_t.size(1), x.data_ptr<uint8_t>(), w_t.data_ptr<scalar_t>(),
      c.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(), out.data_ptr<uint8_t>());
  });
}
"""

CPP_CTYPES = CPP_KERNEL + r"""
#define COBA_ARGS int64_t steps, int64_t n, int64_t n_exc, const int64_t* pe, const int64_t* ie, \
  const T* we, const int64_t* pi, const int64_t* ii, const T* wi, const T* c, int32_t n_ref, \
  T* v, T* ge, T* gi, uint8_t* out
#define FF_ARGS int64_t steps, int64_t batch, int64_t n_in, int64_t n_out, const uint8_t* x, \
  const T* w_t, const T* c, T* v, uint8_t* out
extern "C" {
#define T float
void coba_f32(COBA_ARGS) { coba_loop<T, false>(steps, n, n_exc, pe, ie, we, pi, ii, wi, c, n_ref, v, ge, gi, out); }
void ff_f32(FF_ARGS) { ff_loop<T, false>(steps, batch, n_in, n_out, x, w_t, c, v, out); }
#undef T
#define T double
void coba_f64(COBA_ARGS) { coba_loop<T, false>(steps, n, n_exc, pe, ie, we, pi, ii, wi, c, n_ref, v, ge, gi, out); }
void ff_f64(FF_ARGS) { ff_loop<T, false>(steps, batch, n_in, n_out, x, w_t, c, v, out); }
#undef T
}
"""

CPP_FLAGS = ["-O3", "-fopenmp"]   # one build for cpp and cpp_omp (the serial template has no pragma)
CTYPES_FLAGS = ["-O3", "-shared", "-fPIC", "-std=c++17"]


def cpp_module():
    """The load_inline extension (built on first use into ``TORCH_EXTENSIONS_DIR``)."""
    from torch.utils.cpp_extension import load_inline
    return load_inline(name="loop_technology", cpp_sources=CPP_TORCH, functions=["coba", "ff"],
                       extra_cflags=CPP_FLAGS, extra_ldflags=["-fopenmp"], verbose=False)


def ctypes_library(compiler: str = "g++"):
    """The C++ kernel as a plain shared library: compiled once per source into
    ``$LOOP_TECH_CTYPES_DIR`` (default ``~/.cache/neurosim_loop_technology``), then loaded."""
    folder = Path(os.environ.get("LOOP_TECH_CTYPES_DIR", Path.home() / ".cache" / "neurosim_loop_technology"))
    key = hashlib.sha256((CPP_CTYPES + " ".join(CTYPES_FLAGS) + compiler).encode()).hexdigest()[:16]
    lib = folder / f"loop_technology_{key}.so"
    if not lib.exists():
        folder.mkdir(parents=True, exist_ok=True)
        src = folder / f"loop_technology_{key}.cpp"
        src.write_text(CPP_CTYPES)
        tmp = folder / f".{lib.name}.{os.getpid()}.tmp"
        subprocess.run([compiler, *CTYPES_FLAGS, str(src), "-o", str(tmp)], check=True, capture_output=True)
        os.replace(tmp, lib)
    return ctypes.CDLL(str(lib))


def _ptr(t: torch.Tensor):
    return ctypes.c_void_p(t.data_ptr())


def cpp_runner(p: dict, parallel: bool, use_ctypes: bool = False) -> Callable:
    """run() of the C++ kernel, through load_inline (tensors) or ctypes (raw pointers)."""
    mod = ctypes_library() if use_ctypes else cpp_module()
    suffix = "f32" if p["dtype"] == torch.float32 else "f64"
    if p["kind"] == "coba":
        def run():
            v, ge, gi = p["v0"].clone(), p["ge0"].clone(), p["gi0"].clone()
            out = torch.zeros(p["steps"], p["n"], dtype=torch.uint8)
            (pe, ie, we), (pi, ii, wi) = p["exc"], p["inh"]
            if use_ctypes:
                i64 = ctypes.c_int64
                getattr(mod, f"coba_{suffix}")(i64(p["steps"]), i64(p["n"]), i64(p["n_exc"]),
                                               *map(_ptr, (pe, ie, we, pi, ii, wi, p["c"])),
                                               ctypes.c_int32(p["n_ref"]), *map(_ptr, (v, ge, gi, out)))
            else:
                mod.coba(p["steps"], p["n_exc"], pe, ie, we, pi, ii, wi, p["c"], p["n_ref"], v, ge, gi, out,
                         parallel)
            return out, v
    else:
        def run():
            x = p["x_u8"]
            v = torch.zeros(x.shape[1], p["w_t"].shape[1], dtype=p["dtype"])
            out = torch.zeros(x.shape[0], *v.shape, dtype=torch.uint8)
            if use_ctypes:
                sizes = [ctypes.c_int64(s) for s in (*x.shape, v.shape[1])]
                getattr(mod, f"ff_{suffix}")(*sizes, *map(_ptr, (x, p["w_t"], p["c"], v, out)))
            else:
                mod.ff(x, p["w_t"], p["c"], v, out, parallel)
            return out, v
    return run


# ---------------------------------------------------------------------------- candidates
def available(candidate: str) -> Optional[str]:
    """None when ``candidate`` can run here, else the reason it cannot."""
    if candidate not in CANDIDATES:
        raise ValueError(f"unknown candidate {candidate!r}; choose from {CANDIDATES}")
    if candidate.startswith("numba") and numba is None:
        return "numba not installed"
    if candidate in ("compile", "cpp", "cpp_omp", "cpp_ctypes") and shutil.which("g++") is None:
        return "no C++ compiler (g++) on PATH"
    if candidate in ("cpp", "cpp_omp"):
        from torch.utils.cpp_extension import is_ninja_available
        if not is_ninja_available():
            return "ninja not available (load_inline needs it)"
    return None


def make_runner(candidate: str, p: dict) -> Callable:
    """run() -> (spikes uint8 [T, ...], final v) of ``candidate`` on problem ``p``."""
    reason = available(candidate)
    if reason:
        raise RuntimeError(f"candidate {candidate!r} unavailable: {reason}")
    if candidate in ("eager", "compile"):
        return torch_runner(p, compiled=candidate == "compile")
    if candidate in ("numba", "numba_par"):
        return numba_runner(p, parallel=candidate == "numba_par")
    return cpp_runner(p, parallel=candidate == "cpp_omp", use_ctypes=candidate == "cpp_ctypes")


def code_lines() -> Dict[str, int]:
    """Non-blank source lines of each candidate's loop (kernel + its runner)."""
    def count(*objs):
        return sum(1 for o in objs for line in (o if isinstance(o, str) else inspect.getsource(o)).splitlines()
                   if line.strip())
    shared = count(csr_sum, make_coba_step, make_ff_step, torch_runner)
    kernel = count(CPP_KERNEL)
    return {"eager": shared, "compile": shared, "numba": count(coba_kernel, ff_kernel, numba_runner),
            "numba_par": count(coba_kernel_par, ff_kernel_par, numba_runner),
            "cpp": kernel + count(CPP_TORCH[len(CPP_KERNEL):], cpp_module, cpp_runner),
            "cpp_omp": kernel + count(CPP_TORCH[len(CPP_KERNEL):], cpp_module, cpp_runner),
            "cpp_ctypes": kernel + count(CPP_CTYPES[len(CPP_KERNEL):], ctypes_library, cpp_runner)}


def fingerprint(spikes: torch.Tensor, v: torch.Tensor) -> dict:
    """Spike total, spikes per step, and SHA-256 of the raster (as uint8) and of v's bytes."""
    s = spikes.to(torch.uint8).contiguous()
    per_step = s.reshape(s.shape[0], -1).sum(1, dtype=torch.int64)
    return {"spikes": int(per_step.sum()), "per_step": per_step.tolist(),
            "spikes_sha": hashlib.sha256(s.numpy().tobytes()).hexdigest(),
            "v_sha": hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest()}


# ---------------------------------------------------------------------------- worker / parent
def worker(workload: str, candidate: str, cfg: dict, repeats: int) -> dict:
    """In this (fresh) process: build the problem, time the first call (compile + run), then
    ``repeats`` more calls; returns the times, the fingerprint and the load."""
    configure(cfg["threads"], 0)
    load0 = os.getloadavg()
    p = make_problem(workload, cfg)
    t0 = time.perf_counter()
    run = make_runner(candidate, p)
    spikes, v = run()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t1 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t1)
    return {"first_call_s": first, "times_s": times, **summarize(times), **fingerprint(spikes, v),
            "loadavg_start": load0, "loadavg_end": os.getloadavg(), "error": None}


PARALLEL = ("numba_par", "cpp_omp")


def threads_for(candidate: str, cfg: dict) -> int:
    """``cfg["threads"]`` for the parallel candidates, 1 for the serial ones (on a loaded 2-core
    machine a second torch thread only spins: see tests/conftest.py)."""
    return cfg["threads"] if candidate in PARALLEL else 1


def repeats_for(workload: str, candidate: str, cfg: dict) -> int:
    """Steady repeats: ``cfg["repeats"][kind]``; a third of it (at least 1) for eager and compile."""
    n = cfg["repeats"][workload.split("_")[0]]
    return max(1, n // 3) if candidate in ("eager", "compile") else n


def run_worker(workload, candidate, cfg, cache: str, repeats: int) -> dict:
    """:func:`worker` in a fresh subprocess with every compilation cache inside ``cache``."""
    cfg = dict(cfg, threads=threads_for(candidate, cfg))
    env = thread_env(cfg["threads"])
    env.update(NUMBA_CACHE_DIR=os.path.join(cache, "numba"), TORCH_EXTENSIONS_DIR=os.path.join(cache, "torch_ext"),
               TORCHINDUCTOR_CACHE_DIR=os.path.join(cache, "inductor"), LOOP_TECH_CTYPES_DIR=os.path.join(cache, "so"),
               NUMBA_NUM_THREADS=str(cfg["threads"]))
    cmd = [sys.executable, "-m", MODULE, "--worker", f"{workload}:{candidate}:{repeats}", "--config", json.dumps(cfg)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=str(REPO_ROOT), env=env, capture_output=True, text=True,
                              timeout=cfg["timeout"])
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {cfg['timeout']:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            res = json.loads(line[len(RESULT_TAG):])
            res["process_s"] = time.perf_counter() - t0
            return res
    tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-8:]
    return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}


def measure(workload: str, candidate: str, cfg: dict, cache: Optional[str] = None, warm_only: bool = False,
            log=sys.stderr) -> dict:
    """Empty-cache first call, then warm-cache first call + steady repeats, in two processes.

    ``cache``: a folder to use and keep (default: a fresh one, deleted after). eager has no cache:
    one process, its first call stands for both. ``warm_only``: the cache was filled by another
    candidate of the same build (cpp_omp after cpp): only the warm process runs."""
    row = {"workload": workload, "candidate": candidate, "label": LABELS[candidate], "needs": NEEDS[candidate],
           "threads": threads_for(candidate, cfg)}
    reason = available(candidate)
    if reason:
        return {**row, "error": f"skipped: {reason}"}
    folder = cache or tempfile.mkdtemp(prefix="loop_tech_cache_")
    try:
        cold = None
        if candidate != "eager" and not warm_only:
            print(f"[{workload}] {candidate}: empty cache ...", end="", file=log, flush=True)
            cold = run_worker(workload, candidate, cfg, folder, repeats=0)
        print(f"[{workload}] {candidate}: warm cache ...", end="", file=log, flush=True)
        warm = run_worker(workload, candidate, cfg, folder, repeats=repeats_for(workload, candidate, cfg))
    finally:
        if cache is None:
            shutil.rmtree(folder, ignore_errors=True)
    cold = cold or warm
    err = cold.get("error") or warm.get("error")
    if err:
        print(f" FAILED {err[:200]}", file=log, flush=True)
        return {**row, "error": err}
    print(f" {warm['median_s'] * 1e3:.1f} ms (first call {cold['first_call_s']:.2f} s cold, "
          f"{warm['first_call_s']:.2f} s warm)", file=log, flush=True)
    row.update({k: warm[k] for k in ("times_s", "median_s", "min_s", "max_s", "spikes", "per_step",
                                     "spikes_sha", "v_sha", "loadavg_start", "loadavg_end")})
    row.update(first_cold_s=cold["first_call_s"], first_warm_s=warm["first_call_s"],
               process_cold_s=cold["process_s"], process_warm_s=warm["process_s"],
               cold_matches_warm=cold["spikes_sha"] == warm["spikes_sha"], error=None)
    if candidate == "eager":
        row["cold_note"] = "no cache"
    return row


def measure_all(works: List[str], cands: List[str], cfg: dict) -> List[dict]:
    """Every (workload, candidate). cpp_omp runs the extension that cpp just built (the same
    source and flags), so it is timed warm only and its empty-cache figure is cpp's."""
    rows = []
    for w in works:
        shared = tempfile.mkdtemp(prefix="loop_tech_cache_") if {"cpp", "cpp_omp"} <= set(cands) else None
        try:
            for c in cands:
                if c == "cpp" and shared:
                    rows.append(measure(w, c, cfg, cache=shared))
                elif c == "cpp_omp" and shared and not rows[-1].get("error") and rows[-1]["candidate"] == "cpp":
                    r = measure(w, c, cfg, cache=shared, warm_only=True)
                    if not r.get("error"):
                        r.update(first_cold_s=rows[-1]["first_cold_s"], cold_note="cpp's build")
                    rows.append(r)
                else:
                    rows.append(measure(w, c, cfg))
        finally:
            if shared:
                shutil.rmtree(shared, ignore_errors=True)
    return rows


def compare_to_eager(rows: List[dict]) -> None:
    """Add ``same_spikes``, ``same_v`` and ``first_diff_step`` (per-step counts) against eager."""
    ref = {r["workload"]: r for r in rows if r["candidate"] == "eager" and not r.get("error")}
    for r in rows:
        e = ref.get(r["workload"])
        if r.get("error") or e is None:
            continue
        r["same_spikes"] = r["spikes_sha"] == e["spikes_sha"]
        r["same_v"] = r["v_sha"] == e["v_sha"]
        diff = [t for t, (a, b) in enumerate(zip(r["per_step"], e["per_step"])) if a != b]
        r["first_diff_step"] = diff[0] if diff else None
        r["speedup_vs_eager"] = e["median_s"] / r["median_s"]


# ---------------------------------------------------------------------------- report
def _t(s) -> str:
    if s is None:
        return "-"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def _x(ratio) -> str:
    return "-" if ratio is None else f"{ratio:.1f}x"


def table_rows(rows: List[dict]) -> List[List[str]]:
    """One row per (workload, candidate) for :func:`markdown`."""
    out = []
    for r in rows:
        if r.get("error"):
            out.append([r["workload"], r["label"], "FAILED", "", "", "", "", "", "", r["error"][:120], ""])
            continue
        same = {True: "yes", False: "no", None: "-"}
        spikes = same[r.get("same_spikes")]
        if r.get("same_spikes") is False and r.get("first_diff_step") is not None:
            spikes += f" (counts differ from step {r['first_diff_step']})"
        out.append([r["workload"], r["label"], f"{_t(r['median_s'])} (min {_t(r['min_s'])}, n={len(r['times_s'])})",
                    _x(r.get("speedup_vs_eager")),
                    _t(r["first_cold_s"]) + (f" ({r['cold_note']})" if r.get("cold_note") else ""), _t(r["first_warm_s"]),
                    f"{r['spikes']}", spikes, same[r.get("same_v")],
                    f"{r['loadavg_start'][0]:.2f} / {r['loadavg_end'][0]:.2f}", str(r.get("threads", "-"))])
    return out


HEADER = ["workload", "candidate", "steady run (median)", "vs eager", "1st call, empty cache",
          "1st call, warm cache", "spikes", "= eager spikes", "= eager v (bits)", "load 1-min start/end", "threads"]


def markdown(rows: List[dict], env: dict, cfg: dict, notes: Optional[List[str]] = None) -> str:
    """The report: table, versions and load, code size, and the recommendation from the figures."""
    lines = ["# Loop technology: the measured comparison (issue 9)", "",
             f"Generated by `python -m {MODULE}{' --quick' if cfg.get('quick') else ''}` on {env.get('time')}; "
             f"{env.get('cpu_count')} cores shared with other processes (load beside each row), "
             f"{cfg['threads']} threads for the parallel candidates and 1 for the serial ones, no GPU on this machine (numba-cuda and "
             "CUDA not measured). Method and workloads: the docstring of "
             "`benchmarks/bench_loop_technology.py`.", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(rows)]
    v = env.get("versions", {})
    lines += ["", f"Versions: python {env.get('python')}, torch {v.get('torch')}, numba {v.get('numba')}, "
              f"numpy {v.get('numpy')}, {env.get('gcc')}; {env.get('platform')}.", "",
              "## Code size and build requirements", "", "| candidate | lines | needs |", "|---|---|---|"]
    sizes = code_lines()
    lines += [f"| {LABELS[c]} | {sizes[c]} | {NEEDS[c]} |" for c in CANDIDATES]
    lines += ["", "## Recommendation", "", recommendation(rows), ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def recommendation(rows: List[dict]) -> str:
    """A paragraph derived from the figures: the fastest candidate that matches eager bit for bit
    on every workload, its first-call costs against issue 9's 2 s budget, and the others."""
    ok = [r for r in rows if not r.get("error") and r["candidate"] != "eager"]
    if not ok:
        return "No candidate ran."
    workloads = sorted({r["workload"] for r in ok})
    by = {c: {r["workload"]: r for r in ok if r["candidate"] == c} for c in CANDIDATES}
    full = [c for c in CANDIDATES if c != "eager" and len(by[c]) == len(workloads)]
    exact = [c for c in full if all(by[c][w].get("same_spikes") and by[c][w].get("same_v") for w in workloads)]

    def gmean_speed(c):
        return statistics.geometric_mean([by[c][w].get("speedup_vs_eager") or 1e-9 for w in workloads])
    parts = []
    pool = exact or full
    if not pool:
        return "No candidate ran every workload."
    best = max(pool, key=gmean_speed)
    b = by[best]
    parts.append(f"**{LABELS[best]}** is the fastest candidate that "
                 f"{'reproduces the eager loop bit for bit (spikes and final v) on every workload' if exact else 'ran every workload'}: "
                 + "; ".join(f"{w} {_t(b[w]['median_s'])} ({_x(b[w].get('speedup_vs_eager'))} eager)" for w in workloads)
                 + f". Its first call in a fresh process costs {', '.join(_t(b[w]['first_cold_s']) for w in workloads)} "
                 f"with an empty cache and {', '.join(_t(b[w]['first_warm_s']) for w in workloads)} with a warm one "
                 f"(issue 9 asks for at most 2 s).")
    others = []
    for c in full:
        if c == best:
            continue
        r = by[c]
        worst_cold = max(r[w]["first_cold_s"] for w in workloads)
        bits = "bit-identical" if c in exact else "NOT bit-identical on " + ", ".join(
            w for w in workloads if not (r[w].get("same_spikes") and r[w].get("same_v")))
        others.append(f"{LABELS[c]}: {gmean_speed(c) / gmean_speed(best):.2f}x the speed of the recommended one "
                      f"(geometric mean over workloads), first call up to {_t(worst_cold)} cold, {bits}")
    if others:
        parts.append("Others: " + "; ".join(others) + ".")
    partial = [c for c in CANDIDATES if c != "eager" and by[c] and c not in full]
    for c in partial:
        parts.append(f"{LABELS[c]} ran only on " + ", ".join(
            f"{w}: {_t(r['median_s'])} ({_x(r.get('speedup_vs_eager'))} eager), first call {_t(r['first_cold_s'])} "
            f"cold / {_t(r['first_warm_s'])} warm" for w, r in sorted(by[c].items())) + ".")
    return " ".join(parts)


def gcc_version() -> str:
    try:
        return subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "g++ not found"


def write_markdown(path, text: str) -> None:
    """Write the report atomically (temporary name, fsync, rename)."""
    from neurosim.atomic import atomic_path
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def main(argv=None) -> List[dict]:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (for the test)")
    parser.add_argument("--repeats", type=int, default=None, help="steady repeats per case (median reported)")
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="write the results as JSON here (atomically)")
    parser.add_argument("--md", default=None, help=f"markdown report path (default: {MD_PATH.name} on full runs)")
    parser.add_argument("--render", default=None, metavar="A.json,B.json",
                        help="only rewrite the markdown report from earlier --out files (their rows "
                             "joined, e.g. one run without and one with torch.compile)")
    parser.add_argument("--note", action="append", default=[], help="a line for the report's Notes section")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        workload, candidate, repeats = args.worker.split(":")
        result = worker(workload, candidate, json.loads(args.config), int(repeats))
        sys.stdout.write(RESULT_TAG + json.dumps(result) + "\n")
        return [result]
    if args.render:
        saved = [json.loads(Path(f).read_text()) for f in args.render.split(",")]
        rows = [r for s in saved for r in s["results"]]
        compare_to_eager(rows)
        text = markdown(rows, saved[0]["environment"], saved[0]["config"], args.note)
        write_markdown(args.md or MD_PATH, text)
        print(text)
        return rows
    cfg = defaults(args.quick)
    cfg["quick"] = args.quick
    if args.threads:
        cfg["threads"] = args.threads
    if args.repeats:
        cfg["repeats"] = {k: args.repeats for k in cfg["repeats"]}
    cands = [c for c in args.candidates.split(",") if c]
    works = [w for w in args.workloads.split(",") if w]
    for c in cands:
        available(c)  # raises on an unknown name before any work
    for w in works:
        parse_workload(w)
    cands = [c for c in CANDIDATES if c in cands]  # eager (the reference) first, cpp_omp after cpp
    env = environment()
    env["gcc"] = gcc_version()
    env["versions"]["numba"] = getattr(numba, "__version__", None)
    rows = measure_all(works, cands, cfg)
    compare_to_eager(rows)
    if args.out:   # first: the figures survive a failing report
        write_json_atomic(args.out, {"environment": env, "config": cfg, "loadavg_end": os.getloadavg(),
                                     "results": rows})
    text = markdown(rows, env, cfg, args.note)
    print(text)
    md = args.md or (None if args.quick else MD_PATH)
    if md:
        write_markdown(md, text)
    return rows


if __name__ == "__main__":
    main()
