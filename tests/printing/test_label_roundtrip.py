"""A real parcel's label, rendered, sent over TCP to the virtual printer and decoded back: the tracking
number, the barcode data and the Chinese receiver name come out as they went in."""

import pytest

from fulfillment.models import Carrier, CarrierKind, Shipment
from printing import labels, renderers
from printing.escpos_decode import QR, Barcode
from printing.preview import render_png
from printing.transports import send_to_printer
from printing.virtual_printer import VirtualPrinter
from tests.fulfillment.helpers import parcel_of

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("paper_width", [80, 58])
def test_a_real_label_decodes_back_to_what_it_says(make_order, paper_width):
    Carrier.objects.create(code="SF", name="顺丰速运", kind=CarrierKind.MANUAL)
    parcel = parcel_of(make_order())
    Shipment.objects.filter(pk=parcel.pk).update(tracking_number="SF1234567890123", handover_code="021KT-482")
    parcel.refresh_from_db()
    payload = renderers.render_label(labels.label_data(parcel), paper_width=paper_width)
    printer = VirtualPrinter(port=0)
    printer.start()
    try:
        send_to_printer(host="127.0.0.1", port=printer.port, payload=payload)
        job = printer.wait_for_jobs(1, timeout=5)[0]
    finally:
        printer.stop()
    assert job.data == payload
    decoded = job.decoded
    assert [b.data for b in decoded.of_type(Barcode)] == ["SF1234567890123"]
    assert [q.data for q in decoded.of_type(QR)] == [
        "https://www.sf-express.com/chn/sc/waybill/waybill-detail/SF1234567890123"]
    text = decoded.text
    assert "王小贝" in text and "133****3069" in text and "13312343069" not in text  # phone masked
    assert "SF 1234 5678 9012 3" in text and "021KT-482" in text and parcel.number in text
    png = render_png(decoded, paper_width=paper_width)
    assert png.startswith(b"\x89PNG")
