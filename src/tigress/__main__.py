"""``python -m tigress``: the command-line interface."""

from tigress.cli import main

main(prog_name="tigress")
