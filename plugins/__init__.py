"""neurosim.plugins: conventional ``torch.nn.Module`` models as nodes of a simulation graph.

* :class:`Block` (:mod:`.block`): any module as an ``"analog"``, ``"hybrid"`` or ``"rate"`` node;
* :func:`convert` (:mod:`.convert`): ANN-to-SNN conversion with threshold balancing;
* one file per model family, each with a conventional reference and a spiking variant:
  :mod:`.cnn`, :mod:`.transformer`, :mod:`.mixer`, :mod:`.gnn`, :mod:`.ntm`, :mod:`.memnet`,
  :mod:`.maml`, :mod:`.protonet`, :mod:`.diffusion`, :mod:`.recurrent`.

The family modules are imported on first use of one of their names (``neurosim.plugins.GNN``
imports PyG, ``neurosim.plugins.diffusion`` diffusers only when it samples), so importing
``neurosim.plugins`` stays cheap.
"""
from __future__ import annotations

import importlib

from .block import Block, RateBlockState, module_macs
from .convert import convert  # the function, not the submodule of the same name (torch only)

_FAMILIES = {
    "cnn": ("CNNConfig", "ConventionalCNN", "spiking_cnn", "copy_cnn_weights"),
    "convert": ("convert", "fold_batch_norm", "encode_input", "accuracy_vs_steps", "nearest_rank_percentile",
                "ConversionInfo", "UnsupportedLayersError"),
    "transformer": ("TransformerConfig", "Transformer", "SpikingTransformer", "SpikingTransformerState",
                    "SelfAttention", "SpikingSelfAttention", "EncoderLayer", "SpikingEncoderLayer",
                    "spike_driven_attention", "TokenNorm", "transformer_block"),
    "mixer": ("MixerConfig", "Mixer", "MixerLayer", "SpikingMixer", "SpikingMixerLayer", "SpikingMixerState",
              "patchify", "mixer_block"),
    "gnn": ("GNNConfig", "GNN", "SpikingGCN", "SpikingGCNState", "SpikePropagation", "gcn_adjacency", "gnn_block"),
    "ntm": ("NTMConfig", "NTMState", "NTMMemory", "NTM", "content_weights", "interpolate", "circular_shift", "sharpen",
            "address", "erase_add", "read_memory"),
    "memnet": ("MemNetConfig", "MemN2N", "SpikingMemN2N", "SpikingMemNetState", "position_encoding",
               "embed_sentences", "memory_hop", "pack", "unpack"),
    "maml": ("MAMLConfig", "MAML", "MetaStepResult", "SimulatorReadout", "adapt", "meta_loss", "model_params"),
    "protonet": ("ProtoNetConfig", "ProtoNet", "prototypes", "proto_logits", "mlp_encoder", "conv_encoder",
                 "spiking_encoder"),
    "recurrent": ("RecurrentConfig", "RecurrentClassifier", "RecurrentCell", "LSTMState", "GRUState", "recurrent_block",
                  "recurrent_lif"),
    "diffusion": ("DiffusionConfig", "make_scheduler", "timestep_embedding", "ConvDenoiser", "UNetDenoiser",
                  "SpikingConvDenoiser", "SpikingDenoiserCell", "SpikingDenoiserState", "PackedDenoiser",
                  "pack_input", "unpack_input", "denoiser_block", "DiffusionLoss", "training_loss", "sample"),
}
_WHERE = {name: module for module, names in _FAMILIES.items() for name in names}

__all__ = ["Block", "RateBlockState", "module_macs", *_WHERE]


def __getattr__(name: str):
    """A family's public name, importing its module on first use."""
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
