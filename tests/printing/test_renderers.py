"""ESC/POS renderers: byte-exact golden files, and what must hold in any output.

The golden files are tests/printing/golden/*.bin. After an intended change of a layout, write them
again with

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/printing/test_renderers.py

and look at what changed before committing. ``parse()`` below turns the bytes into lines of text and
a list of commands; to read a golden file as text:

    .venv/bin/python -c "from tests.printing.test_renderers import parse; \
        print('\\n'.join(parse(open('tests/printing/golden/label_58.bin', 'rb').read()).texts()))"

No test here has a django_db marker: pytest-django refuses any query, so a renderer that touched the
database would fail them.
"""

from __future__ import annotations

import ast
import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printing import renderers
from printing.renderers import (
    LabelData,
    PickListData,
    PickListRow,
    RenderError,
    clean_text,
    code128_data,
    render_label,
    render_pick_list,
    render_test_page,
    text_width,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

URL = "https://www.sf-express.com/chn/sc/waybill/waybill-detail/SF1234567890123"
LABEL = LabelData(
    carrier_name="顺丰速运",
    carrier_code="SF",
    service="次晨达",
    tracking_number="SF1234567890123",
    tracking_display="SF 1234 5678 9012 3",
    tracking_url=URL,
    handover_code="021WA-123",
    sender_name="上海仓",
    sender_phone="021-5080 0000",
    sender_address="上海市浦东新区祖冲之路 1 号 B 栋",
    receiver_name="王小贝",
    receiver_phone_masked="138****1234",
    receiver_address="上海市浦东新区张江路 88 号 3 楼",
    items=(("TEA-LJ-250", 2), ("MUG-RED", 1), ("茶具礼盒", 1)),
    order_numbers="SO2026112100012, SO2026112100015",
    parcel_number="P20261121-0007",
    priority_mark="VIP",
    printed_at="2026-11-21 15:04",
)
PICK_LIST = PickListData(
    wave_number="W20261121-0003",
    warehouse_name="上海仓",
    description="上午第一波：顺丰次晨达",
    rows=(
        PickListRow("A-01-02", "TEA-LJ-250", "西湖龙井 250g 礼盒装 明前特级", "6901234567890", 3, 2),
        PickListRow("A-03-11", "MUG-RED", "红色陶瓷马克杯 450ml", "6901234567891", 1, 1),
        PickListRow("B-12-07-03", "GIFTBOX-TEA-SET-DELUXE-2026", "茶具礼盒（豪华版）", "", 12, 12),
    ),
    parcels=14,
    printed_at="2026-11-21 15:04",
)


# --- a small ESC/POS reader for the commands the renderers send ---------------------------------------

# Command → number of parameter bytes after it.
FIXED = {
    b"\x1b@": 0,  # ESC @ reset
    b"\x1c&": 0,  # FS & Chinese mode on
    b"\x1c.": 0,  # FS . Chinese mode off
    b"\x1ba": 1,  # ESC a align
    b"\x1bE": 1,  # ESC E bold
    b"\x1bd": 1,  # ESC d feed n lines
    b"\x1d!": 1,  # GS ! size
    b"\x1dB": 1,  # GS B invert
    b"\x1dh": 1,  # GS h barcode height
    b"\x1dw": 1,  # GS w barcode module width
    b"\x1df": 1,  # GS f HRI font
    b"\x1dH": 1,  # GS H HRI position
    b"\x1dV": 1,  # GS V cut
}


@dataclasses.dataclass
class Parsed:
    lines: list[list[tuple[str, int]]]  # per printed line: (text, width factor) segments
    commands: list[tuple[bytes, bytes]]

    def texts(self) -> list[str]:
        return ["".join(text for text, _factor in line) for line in self.lines]


def parse(out: bytes) -> Parsed:
    """Split ESC/POS bytes into text lines (GB18030, with their GS ! width factor) and commands.

    An unknown command fails the test, so a new command cannot slip in without this reader (and the
    virtual printer's) knowing it. GB18030 never uses 0x0A or 0x1B–0x1D as a byte of a character.
    """
    lines: list[list[tuple[str, int]]] = []
    commands: list[tuple[bytes, bytes]] = []
    line: list[tuple[str, int]] = []
    text = bytearray()
    factor = 1
    i = 0

    def flush() -> None:
        if text:
            line.append((bytes(text).decode("gb18030"), factor))
            text.clear()

    while i < len(out):
        head = out[i : i + 2]
        if head in FIXED:
            flush()
            size = FIXED[head]
            commands.append((head, out[i + 2 : i + 2 + size]))
            if head == b"\x1d!":
                factor = (out[i + 2] >> 4) + 1
            i += 2 + size
        elif head == b"\x1dk":  # GS k m: function B (m >= 65) is length-prefixed
            flush()
            assert out[i + 2] >= 65, "only function-B barcodes are expected"
            length = out[i + 3]
            commands.append((out[i : i + 4], out[i + 4 : i + 4 + length]))
            i += 4 + length
        elif out[i : i + 3] == b"\x1d(k":
            flush()
            length = out[i + 3] + 256 * out[i + 4]
            commands.append((b"\x1d(k", out[i + 5 : i + 5 + length]))
            i += 5 + length
        elif out[i] in (0x1B, 0x1C, 0x1D):
            raise AssertionError(f"unknown command {out[i : i + 3]!r} at byte {i}")
        elif out[i] == 0x0A:
            flush()
            lines.append(line)
            line = []
            i += 1
        else:
            text.append(out[i])
            i += 1
    flush()
    assert not line, "text after the last line feed is never printed"
    return Parsed(lines, commands)


def line_width(line: list[tuple[str, int]]) -> int:
    return sum(text_width(text) * factor for text, factor in line)


def decode_code128(data: bytes) -> str:
    """The value a GS k 73 payload encodes: "{A"/"{B"/"{C" switch sets, "{{" is "{", in set C a byte is two digits."""
    assert data[:1] == b"{" and data[1:2] in (b"B", b"C")
    out, mode, i = [], data[1:2], 2
    while i < len(data):
        if data[i : i + 1] == b"{" and data[i + 1 : i + 2] in (b"A", b"B", b"C"):
            mode, i = data[i + 1 : i + 2], i + 2
        elif data[i : i + 2] == b"{{":
            out.append("{")
            i += 2
        elif mode == b"C":
            assert data[i] <= 99
            out.append(f"{data[i]:02d}")
            i += 1
        else:
            out.append(chr(data[i]))
            i += 1
    return "".join(out)


# --- golden files ---------------------------------------------------------------------------------------

CASES = {
    "label_80": lambda: render_label(LABEL, paper_width=80),
    "label_58": lambda: render_label(LABEL, paper_width=58),
    "pick_list_80": lambda: render_pick_list(PICK_LIST, paper_width=80),
    "test_page_80": lambda: render_test_page(
        printer_name="打包台 1 号", paper_width=80, printed_at="2026-11-21 15:04"
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_matches_golden_file(name):
    out = CASES[name]()
    path = GOLDEN / f"{name}.bin"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(out)
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to write it"
    assert out == path.read_bytes()


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendering_is_deterministic(name):
    assert CASES[name]() == CASES[name]()


def test_label_starts_with_reset_and_chinese_mode_and_ends_with_feed_and_cut():
    out = render_label(LABEL)
    assert out.startswith(b"\x1b@\x1c&")
    assert out.endswith(b"\x1bd\x06\x1dV\x00")


# --- Chinese text ---------------------------------------------------------------------------------------


def test_chinese_text_is_sent_as_gb18030_never_through_code_pages():
    out = render_label(LABEL)
    assert "王小贝".encode("gb18030") in out
    assert "上海市浦东新区张江路".encode("gb18030") in out
    assert "王小贝".encode() not in out  # not UTF-8
    assert b"\x1bt" not in out  # no ESC t code-page switch (what Escpos.text() would send)
    assert "收 王小贝 138****1234" in parse(out).texts()


def test_text_is_cleaned_to_what_the_printer_font_holds():
    assert clean_text("王小贝\n 138\t1234 😀") == "王小贝 138 1234 ?"
    assert clean_text("e\u0301 a\u200db") == "e ab"  # combining accent and zero-width joiner dropped
    assert clean_text("a\x1bb\x00c\x7fd\x1de") == "abcd e"  # no printer command smuggled in as text
    assert clean_text("𠮷野") == "𠮷野"  # a rare ideograph in a name is kept (four-byte GB18030)
    assert text_width("王小贝 VIP") == 10
    assert text_width("…·×：") == 8  # ambiguous and full-width characters are two-byte GB glyphs


# --- barcode --------------------------------------------------------------------------------------------


def test_label_has_code128_command_with_the_tracking_number():
    out = render_label(LABEL)
    data = b"{BSF1{C" + bytes([23, 45, 67, 89, 1, 23])
    assert b"\x1dkI" + bytes([len(data)]) + data in out
    assert b"\x1dH\x00" in out  # no printer-drawn digits: the grouped number is printed below
    assert "SF 1234 5678 9012 3" in parse(out).texts()
    barcodes = [body for head, body in parse(out).commands if head.startswith(b"\x1dk")]
    assert [decode_code128(body) for body in barcodes] == ["SF1234567890123"]


@pytest.mark.parametrize(
    ("value", "data"),
    [
        ("SF1234567890123", "{BSF1{C\x17-CY\x01\x17"),
        ("773012345678", "{C" + "".join(chr(n) for n in (77, 30, 12, 34, 56, 78))),
        ("YT1234", "{BYT{C\x0c\x22"),
        ("JD123", "{BJD123"),  # a short run is cheaper in set B
        ("JD12345", "{BJD1{C\x17-"),  # an odd run at the end: one digit in set B, then pairs
        ("12345AB", "{C\x0c\x22{B5AB"),
        ("A{B", "{BA{{B"),
    ],
)
def test_code128_data_uses_set_c_for_digit_runs(value, data):
    assert code128_data(value)[0] == data
    assert decode_code128(data.encode()) == value


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=60))
def test_code128_data_round_trips(value):
    data, symbols = code128_data(value)
    assert decode_code128(data.encode()) == value
    assert symbols <= len(value) + 2  # never longer than all of set B: start, one per character, check


def test_barcode_fits_58_mm_paper():
    out = render_label(LABEL, paper_width=58)
    widths = [body for head, body in parse(out).commands if head == b"\x1dw"]
    assert widths == [b"\x02"]  # 12 symbols × 11 + 2 + 20 quiet modules = 154 modules × 2 dots ≤ 384


def test_tracking_number_that_cannot_be_a_barcode_is_refused():
    with pytest.raises(RenderError) as excinfo:
        render_label(dataclasses.replace(LABEL, tracking_number="顺丰123"))
    assert excinfo.value.code == "barcode_invalid"


# --- QR -------------------------------------------------------------------------------------------------


def test_label_has_native_qr_store_command_with_the_url():
    out = render_label(LABEL)
    store = b"\x1d(k" + (len(URL) + 3).to_bytes(2, "little") + b"1P0" + URL.encode()
    assert store + b"\x1d(k\x03\x001Q0" in out  # stored, then printed
    assert b"\x1d(k\x04\x001A2\x00" in out  # model 2
    assert b"\x1d(k\x03\x001E1" in out  # error correction M
    assert b"\x1dv0" not in out  # not an image


def test_label_without_url_has_no_qr_command():
    out = render_label(dataclasses.replace(LABEL, tracking_url=""))
    assert b"\x1d(k" not in out


# --- widths ---------------------------------------------------------------------------------------------

LONG_ADDRESS = (
    "新疆维吾尔自治区乌鲁木齐市沙依巴克区西山路 1234 号 阳光花园小区 18 栋 2 单元 1801 室 "
    "（请放门口快递柜 Hive Box No.12345，电话联系不上请找物业）"
)


@pytest.mark.parametrize("paper_width", [58, 80])
@pytest.mark.parametrize(
    "render",
    [
        lambda w: render_label(LABEL, paper_width=w),
        lambda w: render_label(
            dataclasses.replace(
                LABEL,
                receiver_address=LONG_ADDRESS,
                sender_address=LONG_ADDRESS,
                receiver_name="欧阳娜娜娜娜娜娜娜娜娜娜娜娜",
                carrier_name="中国邮政速递物流股份有限公司",
                service="标准快递（经济型）",
                handover_code="755WF-021-A12-湖北",
                items=tuple((f"SKU-{n:03d}-非常长的商品名称", n) for n in range(1, 20)),
                order_numbers=", ".join(f"SO20261121{n:05d}" for n in range(12)),
                priority_mark="急",
            ),
            paper_width=w,
        ),
        lambda w: render_pick_list(PICK_LIST, paper_width=w),
        lambda w: render_test_page(
            printer_name="打包台 1 号 " * 10, paper_width=w, printed_at="2026-11-21 15:04"
        ),
    ],
    ids=["label", "label_long", "pick_list", "test_page"],
)
def test_no_line_is_wider_than_the_paper(render, paper_width):
    columns = {58: 32, 80: 48}[paper_width]
    lines = parse(render(paper_width)).lines
    assert lines
    too_wide = [line for line in lines if line_width(line) > columns]
    assert too_wide == []


def test_long_address_wraps_instead_of_overflowing():
    out = render_label(dataclasses.replace(LABEL, receiver_address=LONG_ADDRESS), paper_width=58)
    texts = parse(out).texts()
    start = texts.index("收 王小贝 138****1234") + 1
    end = next(i for i, text in enumerate(texts) if text.startswith("寄 "))
    address = texts[start:end]
    assert len(address) >= 4
    assert all(text_width(text) <= 32 for text in address)
    assert "".join(address).replace(" ", "") == clean_text(LONG_ADDRESS).replace(" ", "")  # nothing lost
    assert "Hive" in " ".join(address).split()  # an ASCII word is not broken in two


# --- label content --------------------------------------------------------------------------------------


def test_priority_mark_is_printed_white_on_black():
    out = render_label(LABEL)
    assert b"\x1dB\x01 VIP \x1dB\x00" in out
    assert b"\x1dB\x01" not in render_label(dataclasses.replace(LABEL, priority_mark=""))


def test_handover_code_is_printed_big():
    parsed = parse(render_label(LABEL))
    line = next(line for line in parsed.lines if line and line[0][0] == "021WA-123")
    assert line[0][1] == 3  # triple width (and height) on 80 mm


def test_many_items_stop_after_eight_lines_with_how_many_more():
    items = tuple((f"SKU-{n:02d}", 1) for n in range(60))
    texts = parse(render_label(dataclasses.replace(LABEL, items=items))).texts()
    start = texts.index("物品 共 60 件") + 1
    shown = texts[start : start + 8]
    listed = sum(len(text.split("  ")) for text in shown)
    assert texts[start + 8] == f"…还有 {60 - listed} 项"
    assert "SKU-00 x1" in shown[0]


def test_unsupported_paper_width_is_refused():
    with pytest.raises(RenderError) as excinfo:
        render_label(LABEL, paper_width=110)
    assert excinfo.value.code == "paper_width"


# --- pick list ------------------------------------------------------------------------------------------


def test_pick_list_rows_in_walking_order_with_a_box_and_the_total():
    texts = parse(render_pick_list(PICK_LIST)).texts()
    rows = [text for text in texts if text.endswith("[ ]")]
    assert [row.split()[0] for row in rows] == ["A-01-02", "A-03-11", "B-12-07-03"]
    assert rows[0].split()[1:3] == ["TEA-LJ-250", "3"]
    assert "  西湖龙井 250g 礼盒装 明前特级" in texts[texts.index(rows[0]) + 1]
    assert texts[-1] == "合计 16 件 / 3 种"
    assert "波次 W20261121-0003" in texts


def test_pick_list_prints_a_cut_off_sku_code_in_full():
    texts = parse(render_pick_list(PICK_LIST, paper_width=58)).texts()
    row = next(text for text in texts if text.startswith("B-12-07-03"))
    assert "…" in row
    assert texts[texts.index(row) + 1] == "  GIFTBOX-TEA-SET-DELUXE-2026"


# --- purity ---------------------------------------------------------------------------------------------


def test_renderers_import_no_models_and_no_database():
    tree = ast.parse(Path(renderers.__file__).read_text())
    modules = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    modules += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [m for m in modules if m and (m.startswith("django.db") or m.endswith("models"))]
