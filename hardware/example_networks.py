"""Small seeded example networks that show what each backend can take (``neurosim conform NAME``).

Each entry is a function ``build(seed) -> Simulator`` registered under a name; the weights are
drawn from ``torch.Generator().manual_seed(seed)`` (torch's global RNG is not touched), so one
name and seed always give the same network. Every network runs in float64 with ``dt = 1 ms``:
rounding in the last bits of float32 would make the backends disagree for reasons that have
nothing to do with their mapping, which is what ``neurosim conform`` checks. The weights have a
positive mean, large enough that every population spikes on the default input (Bernoulli
spikes with probability 0.2 per step and channel).

=============  ================================================================  ===================
name           network                                                           shows
=============  ================================================================  ===================
feedforward    x[20] -> Dense -> LIF[30] -> Dense -> LIF[10]                     every backend
recurrent      x[20] -> Dense -> LIF[30], LIF ~> Dense -> LIF (back-edge)        recurrence
conv           x[1,8,8] -> Conv2d(4, 3x3, pad 1) -> LIF -> Flatten -> Dense -> LIF[10]   conv (no Brian2)
cuba           x[20] -> Dense -> CubaLIF[30] -> Dense -> CubaLIF[10]             current-based synapse
delays         x[20] -> Dense(per-synapse delays 0..4) -> LIF[30] -> Dense -> LIF[10]  delays (Brian2, saved)
loihi          ``feedforward`` through :func:`neurosim.hardware.loihi.quantize`  fixed-point Loihi
=============  ================================================================  ===================

All populations use ``reset="zero"`` (the reset every backend has); the LIF membranes integrate
exactly, ``v[t] = a v[t-1] + (1 - a) r I[t]`` with ``a = exp(-dt / tau_mem)``.

Example::

    >>> sim = example_network("recurrent", seed=0)
    >>> sorted(EXAMPLE_NETWORKS)
    ['conv', 'cuba', 'delays', 'feedforward', 'loihi', 'recurrent']
"""
from __future__ import annotations

from typing import Callable, Dict, List

import torch

from neurosim.graph import Graph
from neurosim.neurons import CubaLIFParams, LIFParams
from neurosim.population import Population
from neurosim.projections import Conv2d, Dense, Flatten
from neurosim.simulator import Simulator

__all__ = ["EXAMPLE_NETWORKS", "register_example_network", "example_network", "example_names", "DT"]

DT = 1e-3                       # seconds
_DTYPE = torch.float64
#: name -> (build(seed) -> Simulator, one-line description)
EXAMPLE_NETWORKS: Dict[str, tuple] = {}


def register_example_network(name: str, build: Callable[[int], Simulator], description: str) -> None:
    """Add ``build(seed) -> Simulator`` under ``name`` (an existing name is replaced)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"example network names must be identifiers, got {name!r}")
    EXAMPLE_NETWORKS[name] = (build, description)


def example_names() -> List[str]:
    """The registered example network names, sorted."""
    return sorted(EXAMPLE_NETWORKS)


def example_network(name: str, seed: int = 0) -> Simulator:
    """The example network ``name`` with weights drawn under ``seed``. Raises ``KeyError``
    naming the known examples for an unknown name."""
    if name not in EXAMPLE_NETWORKS:
        raise KeyError(f"no example network {name!r} (examples: {', '.join(example_names())})")
    return EXAMPLE_NETWORKS[name][0](int(seed))


def _weight(gen: torch.Generator, out: int, inp: int, mean: float, std: float) -> torch.Tensor:
    """Gaussian ``[out, in]`` weights, float64, N(mean, std^2)."""
    return mean + std * torch.randn(out, inp, generator=gen, dtype=_DTYPE)


def _lif(n) -> Population:
    return Population("lif", n, LIFParams(tau_mem=10e-3, v_threshold=1.0, reset="zero")).to(_DTYPE)


def _cuba(n) -> Population:
    return Population("cuba_lif", n, CubaLIFParams(tau_syn=5e-3, tau_mem=10e-3, reset="zero")).to(_DTYPE)


def _two_layers(seed: int, population, first: tuple, second: tuple) -> Simulator:
    """x 20 -> Dense -> population 30 -> Dense -> population 10; weights normal (mean, std)."""
    gen = torch.Generator().manual_seed(seed)
    g = Graph.sequential(20, ("fc1", Dense(20, 30, weight=_weight(gen, 30, 20, *first))), ("lif1", population(30)),
                         ("fc2", Dense(30, 10, weight=_weight(gen, 10, 30, *second))), ("lif2", population(10)),
                         input_name="x")
    return Simulator(g, dt=DT)


def _feedforward(seed: int) -> Simulator:
    return _two_layers(seed, _lif, (0.6, 0.6), (0.5, 0.5))


def _recurrent(seed: int) -> Simulator:
    gen = torch.Generator().manual_seed(seed)
    g = Graph.sequential(20, ("fc", Dense(20, 30, weight=_weight(gen, 30, 20, 0.4, 0.6))), ("lif", _lif(30)),
                         input_name="x")
    g.add("rec", Dense(30, 30, weight=_weight(gen, 30, 30, 0.1, 0.5)))
    g.connect("lif", "rec", back=True).connect("rec", "lif")
    return Simulator(g, dt=DT)


def _conv(seed: int) -> Simulator:
    gen = torch.Generator().manual_seed(seed)
    conv = Conv2d((1, 8, 8), 4, kernel_size=3, padding=1,
                  weight=1.0 + 0.5 * torch.randn(4, 1, 3, 3, generator=gen, dtype=_DTYPE))
    g = Graph.sequential((1, 8, 8), ("conv", conv), ("lif1", _lif((4, 8, 8))), ("flat", Flatten((4, 8, 8))),
                         ("fc", Dense(256, 10, weight=_weight(gen, 10, 256, 0.1, 0.3))), ("lif2", _lif(10)),
                         input_name="x")
    return Simulator(g, dt=DT)


def _cuba_net(seed: int) -> Simulator:
    return _two_layers(seed, _cuba, (0.15, 0.25), (0.1, 0.2))


def _delays(seed: int) -> Simulator:
    gen = torch.Generator().manual_seed(seed)
    delay = torch.randint(0, 5, (30, 20), generator=gen)
    g = Graph.sequential(20, ("fc1", Dense(20, 30, weight=_weight(gen, 30, 20, 0.6, 0.6), delay=delay)),
                         ("lif1", _lif(30)),
                         ("fc2", Dense(30, 10, weight=_weight(gen, 10, 30, 0.5, 0.5), delay=2)), ("lif2", _lif(10)),
                         input_name="x")
    return Simulator(g, dt=DT)


def _loihi(seed: int) -> Simulator:
    from .loihi import quantize        # registers the loihi_cuba model
    qsim, _ = quantize(_feedforward(seed), max_weight_exp=1)   # netx holds m << e in [-256, 254]
    return qsim


register_example_network("feedforward", _feedforward, "x[20] -> Dense -> LIF[30] -> Dense -> LIF[10]")
register_example_network("recurrent", _recurrent, "x[20] -> Dense -> LIF[30] with a recurrent Dense on a back-edge")
register_example_network("conv", _conv, "x[1,8,8] -> Conv2d -> LIF[4,8,8] -> Flatten -> Dense -> LIF[10]")
register_example_network("cuba", _cuba_net, "x[20] -> Dense -> CubaLIF[30] -> Dense -> CubaLIF[10]")
register_example_network("delays", _delays, "x[20] -> Dense (per-synapse delays 0..4) -> LIF[30] -> Dense -> LIF[10]")
register_example_network("loihi", _loihi, "feedforward quantized to the fixed-point Loihi model (netx-ready: max_weight_exp=1)")
