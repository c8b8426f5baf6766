"""`python -m playworld ...` runs the `playworld` command."""

from playworld.cli import main

main()
