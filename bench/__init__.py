"""Side-by-side benchmarks of dockyardd against the reference dockerd (see bench/README.md)."""

import sys
from pathlib import Path

# The benches share the tests' helpers: the dockyardd fixture launcher, the reference
# dockerd helper and the image builders.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
