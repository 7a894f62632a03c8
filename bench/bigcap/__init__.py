"""Building blocks of `bench/make_big_capture.py`: a large, deterministic benchmark capture.

The background templates are built with the project's own test traffic factory
(`tests.factory`), so the repository root must be importable; scripts in bench/
are run from anywhere, hence the path set-up here.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))
