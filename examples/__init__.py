"""Spiking-vs-conventional examples (installed as ``neurosim.examples``): one module per comparison;
see :mod:`.common` for the contract every example follows and ``neurosim compare`` for the report."""
