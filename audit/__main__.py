"""``python -m audit`` runs the CLI."""

import sys

from audit.cli import main

sys.exit(main())
