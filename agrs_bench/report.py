"""`python -m agrs_bench.report RUN_DIR`: the old spelling of `agrs-bench report`, for one release.

The report moved to `agrs_bench.render.report`; this module says so on stderr and runs it, so
that scripts written against the old spelling keep working until the next release removes it.
"""

from __future__ import annotations

import sys

NEW_FORM = "agrs-bench report RUN_DIR (or python -m agrs_bench.render.report RUN_DIR)"


def main(argv: list[str] | None = None) -> int:
    from agrs_bench.render.report import main as report_main

    print(f"agrs_bench.report: this spelling goes away in the next release; use {NEW_FORM}",
          file=sys.stderr, flush=True)
    return report_main(argv)


if __name__ == "__main__":
    sys.exit(main())
