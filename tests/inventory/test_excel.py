"""Excel: the stock level export, and the count-sheet import (read, validate, all-or-nothing apply) with its page."""

from io import BytesIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import translation
from openpyxl import Workbook, load_workbook

from inventory.excel import (
    CountSheetUnreadable,
    count_sheet_apply,
    count_sheet_import,
    count_sheet_read,
    count_sheet_validate,
)
from inventory.models import SKU, BundleComponent, MovementKind, StockLevel, StockMovement, Warehouse
from inventory.services import sku_set_safety_stock, stock_receive
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    client.cookies["django_language"] = "en"
    return client


def xlsx(rows: list[list], name: str = "count.xlsx") -> SimpleUploadedFile:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = BytesIO()
    workbook.save(buffer)
    return SimpleUploadedFile(name, buffer.getvalue(),
                              content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def state() -> tuple[int, int, list]:
    levels = list(StockLevel.objects.order_by("pk").values_list("pk", "on_hand", "reserved"))
    return StockLevel.objects.count(), StockMovement.objects.count(), levels


def on_hand(warehouse_code: str, sku_code: str) -> int:
    return StockLevel.objects.get(warehouse__code=warehouse_code, sku__code=sku_code).on_hand


@pytest.fixture
def beijing(db) -> Warehouse:
    return Warehouse.objects.create(code="BJ", name="北京仓", priority=20)


# --- Export ------------------------------------------------------------------------------------

def test_export_has_the_filtered_stock_levels(role_users, skus, beijing):
    tea = skus["TEA-LJ-250G"]
    stock_receive(warehouse_id=beijing.pk, sku_id=tea.pk, quantity=7)
    sku_set_safety_stock(sku_id=tea.pk, safety_stock=10)
    client = login(role_users, "warehouse")

    response = client.get("/inventory/export.xlsx")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"].startswith('attachment; filename="stock-levels-')
    sheet = load_workbook(BytesIO(response.content)).active
    assert [list(row) for row in sheet.iter_rows(values_only=True)] == [
        ["Warehouse code", "SKU code", "SKU name", "On hand", "Reserved", "Safety stock", "Available"],
        ["SH", "CUP-CER-350", "陶瓷马克杯 350ml", 1000, 0, 0, 1000],
        ["SH", "GIFT-BAG", "礼品袋", 1000, 0, 0, 1000],
        ["SH", "TEA-LJ-250G", "西湖龙井 250g", 1000, 0, 10, 990],
        ["BJ", "TEA-LJ-250G", "西湖龙井 250g", 7, 0, 10, -3],
    ]

    low = load_workbook(BytesIO(client.get("/inventory/export.xlsx?low=on").content)).active
    assert [list(row) for row in low.iter_rows(min_row=2, values_only=True)] == [
        ["BJ", "TEA-LJ-250G", "西湖龙井 250g", 7, 0, 10, -3]]
    only_sh = load_workbook(BytesIO(client.get("/inventory/export.xlsx?warehouse=SH&q=cup").content)).active
    assert [row[:2] for row in only_sh.iter_rows(min_row=2, values_only=True)] == [("SH", "CUP-CER-350")]
    assert login(role_users, "finance").get("/inventory/export.xlsx").status_code == 403


def test_export_never_writes_a_formula(role_users, warehouse):
    sku = SKU.objects.create(code="EVIL", name='=HYPERLINK("http://x","y")')
    stock_receive(warehouse_id=warehouse.pk, sku_id=sku.pk, quantity=1)
    sheet = load_workbook(BytesIO(login(role_users, "warehouse").get("/inventory/export.xlsx").content)).active
    name = sheet.cell(row=2, column=3)
    assert (name.value, name.data_type) == ('=HYPERLINK("http://x","y")', "s")


# --- Reading -----------------------------------------------------------------------------------

def test_read_takes_english_or_chinese_headers_in_any_order_and_skips_blank_rows():
    rows = count_sheet_read(xlsx([["备注", "盘点数量", "商品编码", "仓库"],
                                  ["x", 12, "TEA-LJ-250G", "SH"],
                                  [None, None, None, None],
                                  ["", "7", 10001.0, " BJ "]]))
    assert [(r.row_number, r.warehouse, r.sku, r.counted, r.quantity) for r in rows] == [
        (2, "SH", "TEA-LJ-250G", "12", 12), (4, "BJ", "10001", "7", 7)]
    english = count_sheet_read(xlsx([["Warehouse", "SKU", "Counted"], ["SH", "A", 1.0]]))
    assert [(r.warehouse, r.sku, r.quantity) for r in english] == [("SH", "A", 1)]


@pytest.mark.parametrize("upload, message", [
    (SimpleUploadedFile("count.xlsx", b"not a zip at all"), "The file is not a readable Excel .xlsx workbook."),
    (SimpleUploadedFile("count.xlsx", b"PK\x03\x04broken"), "The file is not a readable Excel .xlsx workbook."),
    (xlsx([["warehouse", "sku"], ["SH", "A"]]),
     "The first row must name the columns warehouse, sku and counted (or 仓库, 商品编码, 盘点数量); missing: counted."),
    (xlsx([["warehouse", "sku", "counted"]]), "The sheet has no data rows under the header."),
    (xlsx([["warehouse", "sku", "counted"], *[["SH", f"S{n}", 1] for n in range(4)]]),
     "The sheet has more than 3 rows; split it into smaller files."),
])
def test_unreadable_sheets_are_refused_as_a_whole(upload, message):
    with translation.override("en"), pytest.raises(CountSheetUnreadable) as refused:
        count_sheet_read(upload, max_rows=3)
    assert refused.value.message == message


# --- Validating and applying -------------------------------------------------------------------

def test_validate_reports_every_bad_row_and_applies_nothing(skus, beijing, make_order):
    make_order()  # reserves 2 × TEA-LJ-250G in SH
    Warehouse.objects.create(code="GZ", name="广州仓", active=False)
    gift_box = SKU.objects.create(code="BOX", name="礼盒")
    BundleComponent.objects.create(bundle=gift_box, component=skus["GIFT-BAG"], quantity=1)
    for number in range(7, 12):
        SKU.objects.create(code=f"G{number}", name=f"商品 {number}")
    sheet = xlsx([
        ["warehouse", "sku", "counted"],
        ["SH", "CUP-CER-350", 990],        # 2: fine
        ["XX", "CUP-CER-350", 1],          # 3
        ["GZ", "CUP-CER-350", 1],          # 4
        ["SH", "NOPE", 1],                 # 5
        ["SH", "BOX", 1],                  # 6
        ["SH", "G7", None],                # 7
        ["SH", "G8", 1.5],                 # 8
        ["SH", "G9", -1],                  # 9
        ["SH", "G10", "很多"],              # 10
        ["SH", "G11", 2_000_000],          # 11
        ["SH", "CUP-CER-350", 5],          # 12: counted twice
        ["SH", "TEA-LJ-250G", 1],          # 13: below the 2 reserved
        [None, None, 4],                   # 14
    ])
    before = state()
    with translation.override("en"):
        report = count_sheet_import(file=sheet, reference="ST-9")
    assert report.applied == 0 and not report.ok
    assert [(row.row_number, row.error) for row in report.invalid] == [
        (3, "Unknown warehouse XX."),
        (4, "Warehouse GZ is not active."),
        (5, "Unknown SKU NOPE."),
        (6, "BOX is a bundle; count its components instead."),
        (7, "The counted quantity is missing."),
        (8, "The counted quantity 1.5 is not a whole number."),
        (9, "The counted quantity must be 0 or more."),
        (10, "The counted quantity 很多 is not a whole number."),
        (11, "The counted quantity is larger than 1,000,000."),
        (12, "This SKU and warehouse were already counted in row 2."),
        (13, "Counted 1, but 2 are reserved for orders."),
        (14, "The warehouse is missing.; The SKU code is missing."),
    ]
    assert state() == before


def test_a_good_sheet_is_applied_in_full(role_users, skus, beijing):
    stock_receive(warehouse_id=beijing.pk, sku_id=skus["GIFT-BAG"].pk, quantity=3)
    sheet = xlsx([["仓库", "商品编码", "盘点数量"],
                  ["SH", "TEA-LJ-250G", 1003], ["SH", "CUP-CER-350", 0], ["BJ", "GIFT-BAG", 3],
                  ["BJ", "TEA-LJ-250G", 12]])  # no stock row yet: created by the count
    report = count_sheet_import(file=sheet, reference="ST-1", actor=role_users["warehouse"])
    assert report.ok and report.applied == 4
    assert (on_hand("SH", "TEA-LJ-250G"), on_hand("SH", "CUP-CER-350"), on_hand("BJ", "GIFT-BAG"),
            on_hand("BJ", "TEA-LJ-250G")) == (1003, 0, 3, 12)
    takes = StockMovement.objects.filter(kind=MovementKind.STOCK_TAKE).order_by("warehouse_id", "sku__code")
    assert [(m.warehouse.code, m.sku.code, m.on_hand_delta, m.reference, m.actor) for m in takes] == [
        ("SH", "CUP-CER-350", -1000, "ST-1", role_users["warehouse"]),
        ("SH", "TEA-LJ-250G", 3, "ST-1", role_users["warehouse"]),
        ("BJ", "GIFT-BAG", 0, "ST-1", role_users["warehouse"]),
        ("BJ", "TEA-LJ-250G", 12, "ST-1", role_users["warehouse"]),
    ]


def test_a_refusal_while_applying_rolls_back_the_rows_already_applied(skus, warehouse, make_order):
    report = count_sheet_validate(count_sheet_read(xlsx([
        ["warehouse", "sku", "counted"], ["SH", "CUP-CER-350", 0], ["SH", "TEA-LJ-250G", 500]])))
    assert report.ok
    make_order()  # after the check: 2 × TEA-LJ-250G and 1 × CUP-CER-350 get reserved
    before = state()
    with translation.override("en"):
        count_sheet_apply(report=report, reference="ST-2")
    # Rows run in (warehouse, SKU id) order: TEA-LJ-250G (created first) was counted, then CUP-CER-350
    # was refused, and the TEA-LJ-250G count was rolled back with it.
    assert report.applied == 0
    assert [(row.row_number, row.error) for row in report.invalid] == [
        (2, "Counted 0 of CUP-CER-350, but 1 are reserved for orders; recount or release orders first.")]
    assert state() == before


# --- The import page ---------------------------------------------------------------------------

def test_import_page_with_a_bad_row_reports_it_and_applies_nothing(role_users, skus):
    before = state()
    response = login(role_users, "warehouse").post("/inventory/import/", {
        "file": xlsx([["warehouse", "sku", "counted"], ["SH", "TEA-LJ-250G", 900], ["SH", "NOPE", 4]])})
    assert response.status_code == 200
    html = response.content.decode()
    assert "1 of 2 rows has an error; nothing was applied." in html
    assert ('<tr data-row="3"><td class="num">3</td><td>SH</td><td class="mono">NOPE</td><td class="num">4</td>'
            '<td class="error">Unknown SKU NOPE.</td></tr>') in html
    assert 'data-row="2"' not in html
    assert state() == before


def test_import_page_applies_a_good_sheet_and_says_how_many_rows(role_users, skus):
    client = login(role_users, "warehouse")
    response = client.post("/inventory/import/", {
        "file": xlsx([["warehouse", "sku", "counted"], ["SH", "TEA-LJ-250G", 900], ["SH", "GIFT-BAG", 1001]]),
        "reference": ""})
    assert response.status_code == 302 and response["Location"] == "/inventory/import/"
    assert "Applied 2 counted rows." in client.get("/inventory/import/").content.decode()
    assert (on_hand("SH", "TEA-LJ-250G"), on_hand("SH", "GIFT-BAG")) == (900, 1001)
    assert set(StockMovement.objects.filter(kind=MovementKind.STOCK_TAKE).values_list("reference", flat=True)) == {
        "import:count.xlsx"}


@pytest.mark.parametrize("upload, message", [
    (SimpleUploadedFile("count.csv", b"warehouse,sku,counted\nSH,TEA-LJ-250G,1\n"), "Upload an Excel .xlsx file."),
    (SimpleUploadedFile("count.xls", b"\xd0\xcf\x11\xe0old excel"), "Upload an Excel .xlsx file."),
    (SimpleUploadedFile("count.xlsx", b"garbage"), "The file is not a readable Excel .xlsx workbook."),
    (SimpleUploadedFile("big.xlsx", b"PK" + b"\0" * (5 * 1024 * 1024)), "The file is larger than 5 MB."),
])
def test_import_page_refuses_files_it_cannot_read(role_users, skus, upload, message):
    before = state()
    response = login(role_users, "warehouse").post("/inventory/import/", {"file": upload})
    assert response.status_code == 200
    with translation.override("en"):
        assert [str(error) for error in response.context["form"].errors["file"]] == [message]
    assert state() == before


def test_import_needs_the_movement_permission(role_users, skus):
    for role in ("customer_service", "finance"):
        response = login(role_users, role).post("/inventory/import/", {
            "file": xlsx([["warehouse", "sku", "counted"], ["SH", "TEA-LJ-250G", 1]])})
        assert response.status_code == 403
    assert on_hand("SH", "TEA-LJ-250G") == 1000
