"""``python -m hierarchicalvlm.benchmark``: the benchmark's command line (also what ``--isolation subprocess`` runs)."""

import sys

from .cli import main

sys.exit(main())
