"""The main job on built-in data: a simulation and a short surrogate-gradient training run.

1. Simulates the recurrent LIF network of ``configs/quickstart.yaml`` for 0.5 s on Poisson input,
   streams spikes and membrane potentials to an HDF5 recording and draws a raster plot.
2. Trains Dense -> LIF -> Dense -> LI on built-in Poisson rate patterns (``configs/train_rates.yaml``)
   for a few epochs with BPTT, printing loss and accuracy, checkpointing each epoch.

Run: ``python examples/quickstart.py --out out`` (or ``make demo``). Takes about a minute on 2 cores.
"""
import argparse
import os
import sys

import h5py

from neurosim.cli import simulate, train
from neurosim.monitor import load_recording

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="output folder")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the config's)")
    args = parser.parse_args(argv)

    print("== simulation ==")
    sim = simulate(os.path.join(HERE, "configs", "quickstart.yaml"), out_dir=args.out)
    recording = load_recording(sim["recordings"][0])
    spikes = recording.variables["output"]
    print(f"  recording holds {tuple(spikes.shape)} spikes [time, batch, neurons] and "
          f"{sorted(recording.variables)}; {int(spikes.sum())} spikes in total")
    with h5py.File(sim["recordings"][0]) as f:
        print(f"  HDF5 datasets: {sorted(f.keys())}")

    print("== training ==")
    result = train(os.path.join(HERE, "configs", "train_rates.yaml"), out_dir=args.out, epochs=args.epochs)
    final = result["final"]
    print(f"  final validation accuracy {final.get('val_accuracy', float('nan')):.3f} "
          f"(chance {1 / 3:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
