"""Runs the command-line client: `python -m constellation_client --help`."""

import sys

from constellation_client.cli import main

sys.exit(main())
