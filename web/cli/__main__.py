"""``python -m web.cli``."""

from web.cli import run

run()
