"""Write netx files with lava-dl's slayer (its own ``export_hdf5``); a script for the Lava environment.

Run by ``test_netx_lava.py`` as ``$LAVA_ENV/bin/python slayer_networks.py OUT_DIR``: builds small
slayer CUBA networks with seeded random weights, runs each once on a random input (slayer sizes
some blocks lazily on the first forward pass), and writes ``OUT_DIR/<name>.net`` the way slayer's
own examples do: ``layer = h5py.File(path, "w").create_group("layer")``, then
``block.export_hdf5(layer.create_group(str(i)))`` for each block. Prints the names written.
"""
import sys
from pathlib import Path

import h5py
import torch

import lava.lib.dl.slayer as slayer


def neuron(threshold=1.0, current_decay=0.25, voltage_decay=0.05):
    return {"threshold": threshold, "current_decay": current_decay, "voltage_decay": voltage_decay,
            "requires_grad": False}


def networks():
    torch.manual_seed(0)
    yield "dense_chain", (20,), [slayer.block.cuba.Dense(neuron(1.25, 0.25, 0.03), 20, 16, weight_scale=10),
                                 slayer.block.cuba.Dense(neuron(0.9, 1.0, 0.1), 16, 6, weight_scale=2)]
    yield "input_dense", (12,), [slayer.block.cuba.Input(neuron(0.5, 0.5, 0.1)),
                                 slayer.block.cuba.Dense(neuron(1.0, 0.1, 0.0), 12, 8, weight_scale=3)]
    dense = slayer.block.cuba.Dense(neuron(1.0, 0.3, 0.02), 15, 10, weight_scale=2, delay=True)
    yield "dense_delay", (15,), [dense, slayer.block.cuba.Dense(neuron(), 10, 5, weight_scale=2)]
    yield "conv_flatten", (2, 8, 8), [slayer.block.cuba.Conv(neuron(0.8, 0.2, 0.05), 2, 4, 3, padding=1, stride=2,
                                                             weight_scale=2),
                                      slayer.block.cuba.Flatten(),
                                      slayer.block.cuba.Dense(neuron(1.0), 4 * 4 * 4, 6, weight_scale=2)]
    yield "recurrent", (12,), [slayer.block.cuba.Recurrent(neuron(1.0, 0.2, 0.05), 12, 8, weight_scale=2),
                               slayer.block.cuba.Dense(neuron(0.7), 8, 4, weight_scale=2)]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, shape, blocks in networks():
        x = (torch.rand(1, *shape, 30) < 0.3).float()      # slayer's layout: N C (H W) T
        for block in blocks:
            x = block(x)
        for block in blocks:                   # integer axonal delays 0..9, one per output neuron
            if getattr(block, "delay", None) is not None:
                block.delay.delay.data = torch.randint(0, 10, block.delay.delay.shape).float()
        with h5py.File(out / f"{name}.net", "w") as handle:
            layer = handle.create_group("layer")
            for index, block in enumerate(blocks):
                block.export_hdf5(layer.create_group(str(index)))
        print(name)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
