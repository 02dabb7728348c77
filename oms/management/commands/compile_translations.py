"""Compile locale/*/LC_MESSAGES/*.po to .mo with polib, so setup needs no system gettext tools."""

from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Compile the project's .po translation files to .mo (pure Python; no msgfmt needed)."

    def handle(self, *args, **options):
        compiled = 0
        for locale_dir in settings.LOCALE_PATHS:
            for po_path in sorted(Path(locale_dir).glob("*/LC_MESSAGES/*.po")):
                catalog = polib.pofile(str(po_path))
                catalog.save_as_mofile(str(po_path.with_suffix(".mo")))
                compiled += 1
                self.stdout.write(f"compiled {po_path} ({catalog.percent_translated()}% translated)")
        if not compiled:
            self.stderr.write("no .po files found")
