"""`manage.py bench <name>`: a thin dispatcher to ``bench.<name>.run(options, stdout)`` (PostgreSQL only)."""

import importlib
import pkgutil

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

import bench


def _benchmark_names() -> list[str]:
    # Every public module of the bench package with a run() is a benchmark (ingest, reserve, webhook…), so a
    # new one plugs in by adding a file; modules without one (common) hold shared helpers.
    names = (info.name for info in pkgutil.iter_modules(bench.__path__) if not info.name.startswith("_"))
    return sorted(name for name in names if hasattr(importlib.import_module(f"bench.{name}"), "run"))


class Command(BaseCommand):
    help = "Run a benchmark on a scratch PostgreSQL database and print its figures (e.g. `bench reserve --json`)."

    def add_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="benchmark", metavar="benchmark", required=True)
        for name in _benchmark_names():
            module = importlib.import_module(f"bench.{name}")
            subparser = subparsers.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
            bench.add_common_arguments(subparser)
            if hasattr(module, "add_arguments"):
                module.add_arguments(subparser)

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                "The benchmarks need PostgreSQL (the configured database is "
                f"{connection.vendor}). Set DATABASE_URL, e.g. "
                "DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres; the benchmark creates and drops its "
                "own scratch database on that server and never touches the configured one.")
        module = importlib.import_module(f"bench.{options['benchmark']}")
        if not module.run(options, self.stdout):
            raise CommandError("sanity checks failed (see the FAIL lines above)")
