"""Translations: every template string, model name, field and choice has a zh-hans text, words are chosen by
meaning (Active, Name, Code, Change, Order), and the fixed pages read right in Chinese, with no raw code or error."""

import ast
import collections
import re
from decimal import Decimal

import polib
import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.utils import translation
from django.utils.translation import trans_real
from django.utils.translation.template import templatize

from connectors.models import InboxMessage
from finance.models import PaymentSnapshot
from fulfillment.models import Carrier, CarrierKind, CarrierRule, Shipment, WarehouseRule
from inventory.forms import StockAdjustForm
from inventory.models import ReservationStatus
from oms.templatetags.oms_format import error_kind, money
from orders.models import Platform, Store
from orders.services import LineInput
from printing.models import PrintBridge, Printer, Transport
from tests.conftest import PASSWORD, ROOT, channel_store

PO_PATH = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
OUR_APPS = {"oms", "orders", "inventory", "fulfillment", "aftersales", "connectors", "finance", "printing", "desk", "customer"}
# Words a Chinese seller reads as they are (brands and trade terms): the same text in both languages is right.
SAME_IN_CHINESE = {"SKU", "Shopify", "VIP", "ID"}


def _po_entries() -> dict:
    return {(e.msgctxt, e.msgid): e for e in polib.pofile(str(PO_PATH)) if not e.obsolete}


# --- The catalogue ------------------------------------------------------------------------------------------


def test_catalogue_has_no_empty_fuzzy_or_duplicate_entry():
    catalogue = polib.pofile(str(PO_PATH))
    assert [e.msgid for e in catalogue if not e.obsolete and not e.translated()] == []
    assert [e.msgid for e in catalogue if "fuzzy" in e.flags] == []
    counts = collections.Counter((e.msgctxt, e.msgid) for e in catalogue)
    assert [key for key, n in counts.items() if n > 1] == []


def test_catalogue_placeholders_match():
    placeholder = re.compile(r"%\((\w+)\)[sd]")
    wrong = [e.msgid for e in _po_entries().values()
             if e.msgstr and set(placeholder.findall(e.msgid)) != set(placeholder.findall(e.msgstr))]
    assert wrong == []


def test_compiled_catalogue_is_in_step_with_the_po_file():
    # The .mo is what Django reads: a .po entry missing from it shows English on screen.
    runtime = trans_real.translation("zh-hans")._catalog
    stale = []
    for (context, msgid), entry in _po_entries().items():
        key = f"{context}\x04{msgid}" if context else msgid
        if entry.msgid_plural:
            key = (key, 0)
            wanted = entry.msgstr_plural[0]
        else:
            wanted = entry.msgstr
        if runtime.get(key) != wanted:
            stale.append(msgid)
    assert stale == [], "run: python manage.py compile_translations"


# --- Templates ----------------------------------------------------------------------------------------------

_CALL = re.compile(r"""\b(n?p?gettext)\(((?:\s*[ur]?'(?:[^'\\]|\\.)*'\s*,?)+)""")
_LITERAL = re.compile(r"""[ur]?'((?:[^'\\]|\\.)*)'""")


def template_messages() -> set[tuple[str, str | None, str]]:
    """(template, context, msgid) of every {% translate %} and {% blocktranslate %} in templates/, read the way
    makemessages reads them (Django's templatize)."""
    found = set()
    for path in sorted((ROOT / "templates").rglob("*.html")):
        code = templatize(path.read_text(encoding="utf-8"), origin=str(path))
        for call in _CALL.finditer(code):
            name = call.group(1)
            args = [ast.literal_eval("'" + text + "'") for text in _LITERAL.findall(call.group(2))]
            context = args.pop(0) if name in ("pgettext", "npgettext") else None
            found.add((path.relative_to(ROOT / "templates").as_posix(), context, args[0]))
    return found


def test_template_extraction_finds_contexts_and_blocks():
    messages = template_messages()
    assert ("printing/printers.html", "printer", "Code") in messages
    assert ("fulfillment/routing_rules.html", "sort order", "Order") in messages
    assert ("fulfillment/_rule_rows.html", "rule condition", "customer tiers: %(values)s") in messages
    assert len(messages) > 500


def test_every_template_string_has_a_chinese_text():
    ours = {key for key, entry in _po_entries().items() if entry.translated()}
    # Strings Django translates itself (its admin, its forms) count too.
    runtime = trans_real.translation("zh-hans")._catalog
    missing = []
    for template, context, msgid in sorted(template_messages(), key=lambda m: (m[0], m[1] or "", m[2])):
        key = f"{context}\x04{msgid}" if context else msgid
        if (context, msgid) not in ours and not runtime.get(key) and not runtime.get((key, 0)):
            missing.append(f"{template}: {context + ' | ' if context else ''}{msgid}")
    assert missing == []


# --- Models -------------------------------------------------------------------------------------------------


def _untranslated(text) -> bool:
    with translation.override("zh-hans"):
        chinese = str(text)
    with translation.override("en"):
        english = str(text)
    return chinese == english and english not in SAME_IN_CHINESE and re.search("[A-Za-z]", english) is not None


def test_every_model_field_and_choice_has_a_chinese_name():
    missing = []
    for model in apps.get_models():
        if model._meta.app_label not in OUR_APPS:
            continue
        for what in ("verbose_name", "verbose_name_plural"):
            if _untranslated(getattr(model._meta, what)):
                missing.append(f"{model._meta.label}.{what}")
        for field in model._meta.get_fields():
            if field.auto_created:
                continue
            if _untranslated(field.verbose_name):
                missing.append(f"{model._meta.label}.{field.name}")
            for value, label in field.choices or []:
                if _untranslated(label):
                    missing.append(f"{model._meta.label}.{field.name}={value}")
    assert missing == []


def test_every_model_is_in_the_admin():
    # README: "Django admin for every model". Bundle components are edited inline on their SKU.
    inline = {"inventory.BundleComponent"}
    missing = [model._meta.label for model in apps.get_models()
               if model._meta.app_label in OUR_APPS and model._meta.label not in inline
               and not admin.site.is_registered(model)]
    assert missing == []


def test_words_are_chosen_by_meaning():
    with translation.override("zh-hans"):
        assert str(ReservationStatus.ACTIVE.label) == "预占中"
        assert str(StockAdjustForm.base_fields["delta"].label) == "调整数量"
        assert translation.gettext("Active") == "启用"
        assert translation.gettext("Name") == "名称"
        assert translation.pgettext("person", "Name") == "姓名"
        assert translation.gettext("Code") == "编码"
        assert translation.pgettext("store", "Code") == "店铺编码"
        assert translation.pgettext("sort order", "Order") == "顺序"
        # Our catalogue no longer answers a plain "Change", so Django admin's own 修改 shows.
        assert translation.gettext("Change") == "修改"


# --- Pages as a Chinese seller reads them -------------------------------------------------------------------


def chinese_client(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


def header_cells(page: str, table_index: int) -> list[str]:
    head = re.findall(r"<thead>(.*?)</thead>", page, re.S)[table_index]
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)]


@pytest.mark.django_db
def test_printer_and_bridge_tables_read_right(role_users, warehouse):
    Printer.objects.create(code="sh-label-1", name="打包台 1", warehouse=warehouse, transport=Transport.NETWORK,
                           port=9, last_error="Device not found (Could not open socket to 127.0.0.1:9: "
                                              "[Errno 111] Connection refused)")
    PrintBridge.objects.create(name="上海仓电脑", warehouse=warehouse, token_hash="a" * 64, token_prefix="abcd1234")
    Printer.objects.filter(code="sh-label-1").update(offline_since="2026-11-30T08:00:00Z")
    response = chinese_client(role_users["admin"]).get("/printing/printers/")
    assert response.status_code == 200
    page = response.content.decode()
    assert header_cells(page, 0) == ["编码", "名称", "仓库", "纸宽", "连接方式", "地址", "启用", "状态", ""]
    assert header_cells(page, 1) == ["名称", "仓库", "令牌前缀", "最近在线", "启用", ""]
    for wrong in ("预占中", "姓名", "店铺编码"):
        assert wrong not in page
    # The raw error sits behind a toggle; the row says what to do.
    assert 'data-error-kind="printer_offline"' in page
    assert "打印机没有响应：请检查是否已开机、有纸并已连接。" in page
    assert re.search(r"<details class=\"error-detail\"><summary>技术详情</summary><pre[^>]*>Device not found",
                     page)


@pytest.mark.django_db
def test_store_form_labels_and_only_the_platforms_credentials(role_users):
    store = channel_store(platform=Platform.SHOPIFY, code="demo-shopify", name="演示 Shopify",
                                 credentials={"access_token": "shpat_secret"})
    client = chinese_client(role_users["admin"])
    response = client.get(f"/channels/stores/{store.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    labels = re.findall(r"<p><label>([^<]+?) <", page)
    assert labels[:4] == ["平台", "店铺编码", "名称", "启用"]
    shown = re.findall(r'<p data-credential="(\w+)" data-platforms="[^"]*">', page)
    hidden = re.findall(r'<p data-credential="(\w+)" data-platforms="[^"]*" hidden>', page)
    # The API version is a Shopify setting of its own (the "Shopify 设置" section), not a credential.
    assert shown == ["access_token", "api_secret", "base_url", "location_id"]
    assert "<label>Shopify API 版本 " in page
    assert "app_key" in hidden and "client_id" in hidden and "session" in hidden
    assert "<label>店铺域名 " in page and "<label>访问令牌（Access Token） " in page
    assert "shpat_secret" not in page
    # A new store: every row carries its platforms for the toggle script (no inline script: CSP).
    page = client.get("/channels/stores/new/").content.decode()
    assert 'data-credential="app_key" data-platforms="taobao douyin">' in page
    assert "<label>接口地址（Shopify 填店铺域名） " in page
    assert '<script src="/static/js/store_form.js" defer></script>' in page and "<script>" not in page


@pytest.mark.django_db
def test_a_store_shows_its_platform_once_and_never_a_code():
    store = Store.objects.create(platform=Platform.DOUYIN, code="demo-douyin", name="演示抖店")
    with translation.override("zh-hans"):
        assert str(store) == "演示抖店（抖店）"
    with translation.override("en"):
        assert str(store) == "演示抖店 (Douyin shop)"


@pytest.mark.django_db
def test_routing_rules_read_in_words(role_users, warehouse, taobao_store):
    zto = Carrier.objects.create(code="ZTO", name="中通快递", kind=CarrierKind.MANUAL, cost_first_kg=Decimal("5"),
                                 services=["standard", "next_morning"])
    WarehouseRule.objects.create(name="VIP 走上海", position=10, priorities=[2, 1], store=taobao_store,
                                 min_amount=Decimal("1000"), warehouse=warehouse)
    CarrierRule.objects.create(name="次晨达走中通", position=10, services=["next_morning", "express"],
                               carrier=zto, service="next_morning")
    response = chinese_client(role_users["manager"]).get("/fulfillment/routing/")
    assert response.status_code == 200
    page = response.content.decode()
    assert header_cells(page, 0)[-2] == "顺序" and header_cells(page, 1)[-2] == "顺序"
    conditions = re.findall(r'<span class="cond">([^<]+)</span>', page)
    assert conditions == ["店铺：淘宝店", "客户等级：VIP、高", "订单金额：¥1,000.00–", "承诺时效：次晨达、特快"]
    assert "中通快递 · 次晨达" in page
    assert "next_morning" not in page.split("<tbody>", 1)[1]
    carriers = chinese_client(role_users["manager"]).get("/fulfillment/carriers/").content.decode()
    assert "<td>标准快递、次晨达</td><td class=\"num\">¥5.00</td>" in carriers


@pytest.mark.django_db
def test_routing_decision_of_a_parcel_reads_in_words(role_users, make_order):
    Carrier.objects.create(code="ZTO", name="中通快递", kind=CarrierKind.MANUAL, cost_first_kg=Decimal("5"))
    order = make_order()
    shipment = Shipment.objects.filter(lines__order=order).distinct().get()
    response = chinese_client(role_users["manager"]).get(f"/fulfillment/shipments/{shipment.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "中通快递 · 标准快递 · ¥5.00" in page
    assert "<dd>淘宝店（淘宝/天猫）</dd>" in page
    assert "(taobao)" not in page


@pytest.mark.django_db
def test_finance_totals_have_two_decimals_and_thousands_separators(role_users, make_order):
    make_order(lines=[LineInput(sku_code="TEA-LJ-250G", quantity=750, unit_price=Decimal("188.17"))])
    # Payment takes the snapshot (the pipeline); the finance page sums them per day.
    assert list(PaymentSnapshot.objects.values_list("paid_amount", flat=True)) == [Decimal("141137.50")]
    response = chinese_client(role_users["finance"]).get("/finance/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<td class="num" data-field="amount">¥141,137.50</td>' in page
    assert '<td class="num" data-field="paid-amount">¥141,137.50</td>' in page
    assert "141137.5" not in page


def test_money_filter():
    assert money(Decimal("141129.150000000000")) == "141,129.15"
    assert money(Decimal("141129.150000000000"), "CNY") == "¥141,129.15"
    assert money(Decimal("-0.005"), "USD") == "-$0.01"
    assert money(Decimal("12"), "CHF") == "12.00 CHF"
    assert money(None) == "" and money("not a number") == "not a number"


@pytest.mark.parametrize(("raw", "kind"), [
    ("PermanentError: TOP taobao.logistics.offline.send isv.logistics-offline-service-error:B04", "refused"),
    ("Device not found (Could not open socket to 10.0.0.9:9100: [Errno 111] Connection refused)", "printer_offline"),
    ("HTTPSConnectionPool(host='api.example.com'): Read timed out. (read timeout=10)", "network"),
    ("HTTP 401: Invalid API key or access token (unrecognized login or wrong password)", "auth"),
    ("HTTP 429: Exceeded 2 calls per second for api client. Reduce request rates.", "rate_limit"),
    ("KeyError: 'tid'", "unknown"),
])
def test_errors_are_classified(raw, kind):
    assert error_kind(raw)[0] == kind


@pytest.mark.django_db
def test_dead_letter_error_is_a_sentence_with_the_raw_text_behind_a_toggle(role_users, taobao_store):
    InboxMessage.objects.create(store=taobao_store, kind="poll", topic="trade", platform_order_id="TB-1",
                                delivery_key="k-1", body="{}", status="dead", dead_reason="retries_exhausted",
                                last_error="PermanentError: TOP taobao.logistics.offline.send refused: isv.B04")
    response = chinese_client(role_users["admin"]).get("/channels/dead-letters/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-error-kind="refused"' in page and "平台拒绝了这次请求，平台的原始答复见下方。" in page
    assert "<summary>技术详情</summary><pre class=\"mono small-text\">PermanentError: TOP" in page


@pytest.mark.django_db
def test_admin_reads_right_in_chinese(role_users):
    response = chinese_client(role_users["admin"]).get("/admin/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "调整数量" not in page and "修改" in page
    for name in ("幂等记录", "编号序列", "后台任务心跳", "打印机", "打印桥", "打印任务"):
        assert name in page, name
    for english in ("Idempotency records", "Number sequences", "Worker heartbeats"):
        assert english not in page


@pytest.mark.django_db
def test_printing_and_channel_admin_pages_open_and_never_edit_a_token_hash(role_users, warehouse):
    bridge = PrintBridge.objects.create(name="上海仓电脑", warehouse=warehouse, token_hash="f" * 64,
                                        token_prefix="ffff0000")
    client = chinese_client(role_users["admin"])
    for path in ("/admin/printing/printer/", "/admin/printing/printbridge/", "/admin/printing/printjob/",
                 "/admin/connectors/shipmentpush/", "/admin/connectors/channelstock/",
                 "/admin/connectors/synccheck/", "/admin/oms/numbersequence/", "/admin/orders/idempotencyrecord/"):
        assert client.get(path).status_code == 200, path
    page = client.get(f"/admin/printing/printbridge/{bridge.pk}/change/").content.decode()
    assert 'name="token_hash"' not in page and "f" * 64 not in page
    assert 'name="token_prefix"' not in page and "ffff0000" in page
    assert client.get("/admin/printing/printbridge/add/").status_code == 403
