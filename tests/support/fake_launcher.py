"""A stand-in for torchrun in script tests: `fake_launcher.py -m agrs_bench.run --out DIR ...`
writes one synthetic launch (seeded by DIR) into DIR, in a second instead of a real launch."""

import json
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.support import synthetic  # noqa: E402

out = sys.argv[sys.argv.index("--out") + 1]
os.makedirs(out)
doc = synthetic.launch(seed=zlib.crc32(out.encode()) % 1000, modes=("ag",))
with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as fh:
    json.dump(doc, fh)
