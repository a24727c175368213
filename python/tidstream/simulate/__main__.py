"""``python -m tidstream.simulate``: see :mod:`tidstream.simulate.cli`."""

import sys

from .cli import main

sys.exit(main())
