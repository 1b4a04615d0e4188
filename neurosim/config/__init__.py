"""Networks and runs described in YAML or TOML files (no code is executed from a config).

A config has these top-level keys (``network`` required, the rest optional)::

    dt: 1.0e-3                 # seconds
    steps: 500                 # time steps to simulate
    batch: 1
    seed: 0                    # seeds the initial weights and the input spike trains
    network:
      inputs:  {x: {shape: [100]}}
      nodes:
        fc:  {type: dense, in_features: 100, out_features: 50, weight_scale: 0.5}
        lif: {type: population, model: lif, shape: 50, params: {tau_mem: 0.02}}
      edges: [[x, fc], [fc, lif], {source: lif, target: rec, back: true}]
      outputs: [lif]
    input:                      # how the input spike trains are made
      x: {encoder: poisson, rate: 20.0}            # Hz, same rate on every channel
    monitors: [{node: lif, variables: [output, v], every: 1}]
    output: {dir: out, recording: recording.h5, plots: true}
    train: {...}                # used by `neurosim train` (see :data:`TRAIN_FIELDS`)

Node types are looked up in :data:`NODE_TYPES` (dense, sparse, conv2d, maxpool2d, avgpool2d,
flatten, population); every other key of a node is passed to that node's constructor.

:func:`load_run_config` checks the *whole* config before anything runs: every section's keys
(an unknown key is an error naming the keys allowed, :func:`check_keys`), the type and range of
every scalar (``steps: true`` is a bool, not an integer), the graph with each node's parameters
against ``dt``, the inputs, and the monitors against the nodes they watch. Every problem is a
:class:`ConfigError` whose message is ``file: key.path: what is wrong``, e.g.
``net.yaml: monitors[0].every: must be an integer >= 1, got 0``.

One file per part of the format:

===============  ==============================================================================
``schema``       :class:`ConfigError`, the scalar rules (on :mod:`neurosim.validation`), key checks
``files``        :func:`load_config`: reading a YAML or TOML file
``settings``     ``dt``/``steps``/``batch``/``seed`` (:class:`RunSettings`) and ``output``
``nodes``        :data:`NODE_TYPES`, :func:`register_node_type`, the dense and population factories
``network``      :func:`build_graph`: the ``network`` section
``inputs``       :data:`INPUT_ENCODERS`, :func:`input_specs`, :func:`encode_inputs`
``monitors``     :class:`MonitorSpec`, :func:`monitor_specs`
``train``        :data:`TRAIN_FIELDS`, :func:`train_settings`, :func:`check_trainable`
``run``          :class:`RunConfig`, :func:`load_run_config`: the whole config
===============  ==============================================================================
"""
from .files import load_config
from .inputs import INPUT_ENCODERS, encode_inputs, input_specs
from .monitors import MONITOR_KEYS, MonitorSpec, monitor_specs
from .network import EDGE_KEYS, NETWORK_KEYS, build_graph
from .nodes import NODE_TYPES, WEIGHT_DISTRIBUTIONS, register_node_type
from .run import TOP_LEVEL_KEYS, RunConfig, load_run_config
from .schema import ConfigError, check_keys
from .settings import OUTPUT_KEYS, OutputSettings, RunSettings, output_settings, run_settings
from .train import TRAIN_FIELDS, check_trainable, train_settings

__all__ = ["ConfigError", "load_config", "load_run_config", "build_graph", "check_keys", "run_settings",
           "input_specs", "encode_inputs", "monitor_specs", "output_settings", "train_settings", "check_trainable",
           "RunConfig", "RunSettings", "MonitorSpec", "OutputSettings", "NODE_TYPES", "register_node_type",
           "TOP_LEVEL_KEYS", "INPUT_ENCODERS", "TRAIN_FIELDS"]
