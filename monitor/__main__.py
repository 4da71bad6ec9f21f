"""`python -m monitor` runs the CLI."""

from monitor.cli.main import main

# Guarded: spawned parser processes import the parent's __main__ module.
if __name__ == "__main__":
    main()
