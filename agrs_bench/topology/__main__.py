"""`python -m agrs_bench.topology`: the topology CLI."""

import sys

from agrs_bench.topology.cli import main

sys.exit(main())
