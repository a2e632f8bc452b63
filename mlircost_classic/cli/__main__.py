"""``python -m mlircost_classic.cli``: the ``mlircost`` command."""

import sys

from . import main

sys.exit(main())
