"""`python -m bootstrap` runs the same command as `bootstrap-token`."""

from bootstrap.commands.cli import main

main()
