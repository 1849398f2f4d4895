"""``python -m benchmark.export_results``: the command; the export is
:mod:`benchmark.report.export_results` (see :mod:`benchmark.compare` on the commands' names)."""

import sys

from benchmark.report.export_results import main

if __name__ == "__main__":
    sys.exit(main())
