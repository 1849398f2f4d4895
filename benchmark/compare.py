"""``python -m benchmark.compare``: the command; the comparison is :mod:`benchmark.report.compare`.

The commands keep their names at the top of the package (``benchmark.run``, ``benchmark.report``,
``benchmark.compare``, ``benchmark.export_results``, ``benchmark.datasets``, ``benchmark.lease``)
while the code lives in the folder of its stage."""

import sys

from benchmark.report.compare import main

if __name__ == "__main__":
    sys.exit(main())
