"""Run the virtual thermal printer (raw TCP, like port 9100) until interrupted, one console line per job."""

import threading

from django.core.management.base import BaseCommand, CommandError

from printing.virtual_printer import add_arguments, from_options, job_summary


class Command(BaseCommand):
    help = (
        "Serve a virtual network thermal printer: every job received is decoded, listed here and, "
        "with --dir, written as job-<n>.bin, .txt and .png."
    )

    def add_arguments(self, parser):
        add_arguments(parser)

    def handle(self, *args, **options):
        try:
            printer = from_options(options, on_job=lambda job: self.say(job_summary(job)))
            printer.start()
        except (OSError, OverflowError, ValueError) as exc:  # port taken or out of range, folder not writable
            raise CommandError(f"cannot start the virtual printer: {exc}") from exc
        where = f", writing to {printer.directory}" if printer.directory else ""
        self.say(f"Virtual printer listening on {printer.host}:{printer.port}{where}. Ctrl-C to stop.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            self.stdout.write("Stopping.")
        finally:
            printer.stop()

    def say(self, line: str) -> None:
        # Flushed at once: under supervisord stdout is a pipe, and a job should show when it arrives.
        self.stdout.write(line)
        self.stdout.flush()
