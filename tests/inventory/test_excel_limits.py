"""Excel upload limits: a small .xlsx that unpacks huge, or holds too many rows, is refused before openpyxl opens it."""

import tracemalloc
import zipfile
from io import BytesIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from openpyxl import Workbook

from inventory.excel import CountSheetUnreadable, count_sheet_read
from inventory.models import MovementKind, StockLevel, StockMovement
from oms.xlsx_guard import XlsxLimits, XlsxRefused, xlsx_guard_check

pytestmark = pytest.mark.django_db

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HUGE_STRING_BYTES = 200 * 1024 * 1024


def workbook_bytes(rows: list[list]) -> bytes:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def with_member(source: bytes, name: str, write) -> bytes:
    """A copy of the workbook whose member ``name`` is written by ``write(stream)`` (streamed, never held whole)."""
    out = BytesIO()
    with zipfile.ZipFile(BytesIO(source)) as original, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for member in original.infolist():
            if member.filename != name:
                bomb.writestr(member, original.read(member))
        with bomb.open(name, "w", force_zip64=True) as stream:
            write(stream)
    return out.getvalue()


def shared_strings_bomb() -> bytes:
    """The reported attack: a ~200 KB workbook whose shared-strings table holds one 200 MB string."""
    source = workbook_bytes([["warehouse", "sku", "counted"], ["SH", "TEA-LJ-250G", 5]])

    def write(stream):
        stream.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="4" '
                     b'uniqueCount="4"><si><t>warehouse</t></si><si><t>sku</t></si><si><t>SH</t></si>'
                     b'<si><t>TEA-LJ-250G</t></si><si><t>')
        block = b"A" * (1024 * 1024)
        for _ in range(HUGE_STRING_BYTES // len(block)):
            stream.write(block)
        stream.write(b"</t></si></sst>")

    return with_member(source, "xl/sharedStrings.xml", write)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return shared_strings_bomb()


def upload(content: bytes, name: str = "count.xlsx") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=XLSX_TYPE)


def state() -> tuple:
    return (StockMovement.objects.count(),
            list(StockLevel.objects.order_by("pk").values_list("pk", "on_hand", "reserved")))


def warehouse_client(role_users) -> Client:
    client = Client()
    client.force_login(role_users["warehouse"])
    return client


def test_the_bomb_is_small_on_disk_and_huge_unpacked(bomb):
    assert len(bomb) < 300 * 1024
    with zipfile.ZipFile(BytesIO(bomb)) as archive:
        assert archive.getinfo("xl/sharedStrings.xml").file_size > HUGE_STRING_BYTES


def test_import_page_refuses_the_shared_strings_bomb_in_chinese_and_stores_nothing(role_users, skus, bomb):
    before = state()
    response = warehouse_client(role_users).post("/inventory/import/", {"file": upload(bomb)})
    assert response.status_code == 200
    errors = [str(error) for error in response.context["form"].errors["file"]]
    assert errors == ["工作簿中的 xl/sharedStrings.xml 解压后超过 10 MB，请拆分成较小的文件。"]
    assert "工作簿中的 xl/sharedStrings.xml 解压后超过 10 MB" in response.content.decode()
    assert state() == before
    assert StockLevel.objects.get(warehouse__code="SH", sku__code="TEA-LJ-250G").on_hand == 1000


def test_refusing_the_bomb_does_not_inflate_it(bomb):
    tracemalloc.start()
    try:
        with pytest.raises(CountSheetUnreadable) as refused:
            count_sheet_read(upload(bomb))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.code == "xlsx_member_too_large"
    assert peak < 2 * 1024 * 1024, f"peak {peak:,} bytes"


def test_a_normal_sheet_still_imports(role_users, skus):
    client = warehouse_client(role_users)
    response = client.post("/inventory/import/", {
        "file": upload(workbook_bytes([["warehouse", "sku", "counted"], ["SH", "TEA-LJ-250G", 900]]))})
    assert response.status_code == 302
    assert StockLevel.objects.get(warehouse__code="SH", sku__code="TEA-LJ-250G").on_hand == 900
    assert StockMovement.objects.filter(kind=MovementKind.STOCK_TAKE).count() == 1


def test_a_sheet_with_more_rows_than_the_limit_is_refused_while_streaming(role_users, skus):
    rows = [["warehouse", "sku", "counted"]] + [["SH", "TEA-LJ-250G", n] for n in range(20_001)]
    before = state()
    response = warehouse_client(role_users).post("/inventory/import/", {"file": upload(workbook_bytes(rows))})
    assert response.status_code == 200
    assert [str(e) for e in response.context["form"].errors["file"]] == [
        "工作簿超过 20,001 行（含表头），请拆分成较小的文件。"]
    assert state() == before


def guard(content: bytes, **limits) -> str:
    with pytest.raises(XlsxRefused) as refused:
        xlsx_guard_check(BytesIO(content), limits=XlsxLimits(**limits))
    return refused.value.code


def test_guard_refuses_what_is_not_a_zip():
    assert guard(b"warehouse,sku,counted\nSH,TEA,1\n") == "xlsx_not_zip"
    assert guard(b"PK\x05\x06" + b"\0" * 10) == "xlsx_not_zip"  # an end record and nothing else


def test_guard_counts_cells_across_rows():
    content = workbook_bytes([[f"c{i}" for i in range(10)] for _ in range(5)])
    xlsx_guard_check(BytesIO(content), limits=XlsxLimits(max_cells=50, max_rows=5))  # exactly at the limits
    assert guard(content, max_cells=49) == "xlsx_too_many_cells"
    assert guard(content, max_rows=4) == "xlsx_too_many_rows"


def test_guard_refuses_a_ratio_bomb_below_the_size_limits():
    source = workbook_bytes([["warehouse", "sku", "counted"]])

    def write(stream):
        stream.write(b'<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
        stream.write(b" " * (5 * 1024 * 1024))
        stream.write(b"</styleSheet>")

    assert guard(with_member(source, "xl/styles.xml", write)) == "xlsx_zip_bomb"


def test_guard_refuses_too_many_members_before_reading_the_directory():
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for index in range(101):
            archive.writestr(f"part{index}.xml", b"<x/>")
    assert guard(out.getvalue()) == "xlsx_too_many_members"


def test_guard_rewinds_the_file_for_openpyxl():
    stream = BytesIO(workbook_bytes([["warehouse", "sku", "counted"], ["SH", "TEA-LJ-250G", 1]]))
    xlsx_guard_check(stream)
    assert stream.tell() == 0
