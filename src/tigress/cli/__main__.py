"""``python -m tigress.cli``."""

from tigress.cli import main

main(prog_name="tigress")
