"""The repository's benchmarks and demo (`make bench`, `make demo`): tools that measure and show the
library, run from the repository root as `python -m benchmarks.<name>`; not installed with it."""
