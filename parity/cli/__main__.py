"""`python -m parity.cli ...` (torchrun runs `train` this way)."""

import sys

from parity.cli import main

sys.exit(main())
