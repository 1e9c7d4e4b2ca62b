"""`python -m bootstrap` runs the same command as `bootstrap-token`."""

from bootstrap.cli import main

main()
