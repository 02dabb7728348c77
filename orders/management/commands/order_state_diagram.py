"""Draw the order state machine from the model's transitions into docs/order-states.md (Mermaid)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from orders.statechart import order_state_diagram_mermaid


class Command(BaseCommand):
    help = "Write the order state diagram (Mermaid) to docs/order-states.md, generated from the FSM."

    def add_arguments(self, parser):
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "docs" / "order-states.md"))

    def handle(self, *args, **options):
        output = Path(options["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(order_state_diagram_mermaid(), encoding="utf-8")
        self.stdout.write(f"wrote {output}")
