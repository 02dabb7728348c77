"""Demo label printers: one per warehouse, on the virtual printers that `make run` starts."""

from __future__ import annotations

import os

from inventory.models import Warehouse
from printing.models import PaperWidth, Printer, Transport

# One network thermal printer per demo warehouse: the virtual printers that `make run` starts (supervisord.conf),
# each writing what it receives into var/virtual_printer/<warehouse code>/ (job-<n>.bin, .txt, .png).
VPRINTER_PORTS = {"SH": int(os.environ.get("OMS_VPRINTER_SH_PORT", "9101")),
                  "GZ": int(os.environ.get("OMS_VPRINTER_GZ_PORT", "9102")),
                  "US-NJ": int(os.environ.get("OMS_VPRINTER_US_NJ_PORT", "9103"))}


def printing_load() -> int:
    """A label printer per warehouse on its virtual printer; a rerun points them at the current ports again
    (names and whatever staff changed otherwise stay). Returns how many were created."""
    created = 0
    for code, port in VPRINTER_PORTS.items():
        warehouse = Warehouse.objects.filter(code=code).first()
        if warehouse is None:
            continue
        _printer, new = Printer.objects.update_or_create(
            code=f"{code.lower()}-label-1",
            defaults={"warehouse": warehouse, "transport": Transport.NETWORK, "host": "127.0.0.1", "port": port},
            create_defaults={"warehouse": warehouse, "transport": Transport.NETWORK, "host": "127.0.0.1",
                             "port": port, "name": f"{code} 面单打印机 1", "paper_width": PaperWidth.MM80,
                             "active": True},
        )
        created += new
    return created

