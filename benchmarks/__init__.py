"""Speed and memory benchmarks of neurosim against peer libraries, measured in one run.

See ``benchmarks/README.md`` for the method; ``python -m benchmarks.run_all --quick`` for a smoke run."""
