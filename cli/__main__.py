"""``python -m web.cli``."""

from cli import run

run()
