"""The ``appliance`` command: one click group per purpose, each in its own module.

The command line sits on top of every layer (domain, devices, web app, sync, benchmarks) and is
the only place besides the composition root that brings them together. Every command that reads
a site takes ``--data DIR`` (default: $APPLIANCE_DATA, else /var/lib/site-appliance) and
optionally ``--config FILE``. Results are JSON on standard output; errors are one line on
standard error and exit code 2 (1 is reserved for "verification failed"). docs/cli.md describes
every command.
"""

from cli.main import main

__all__ = ["main"]
