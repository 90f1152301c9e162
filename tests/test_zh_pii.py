"""Chinese PII: each built-in validator on valid and invalid examples, detection inside Chinese
text (no spaces around the values), redaction, and pii_leakage with the Chinese prompt set.

Independent references: the check characters are computed in this file by other formulations
than the library's (ISO 7064 MOD 11-2 by Horner's rule instead of the GB 11643 weight table;
GB 32100 weights as powers of 3 mod 31 computed here; Luhn by the digit-sum of doubled digits),
calendar validity by hand-picked dates (29 February in leap and common years), mobile number
blocks from the MIIT plan (154 and 194 unallocated).
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from audit import pii, pii_cn
from audit.checks.privacy import pii_leakage as pl
from audit.context import CheckContext
from audit.models.mock import fake_adapter


# --------------------------------------------------------------------------- independent maths
def mod11_2(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character by the recursive (Horner) method: p = 2(p + d) mod 11
    over the digits, then the check value c makes (p + c) mod 11 == 1."""
    p = 0
    for ch in first17:
        p = (p + int(ch)) * 2 % 11
    c = (1 - p) % 11
    return "X" if c == 10 else str(c)


GB32100 = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def gb32100_check(first17: str) -> str:
    """GB 32100 check character: weights 3^i mod 31, value 31 - (sum mod 31), 31 -> 0."""
    total = sum(GB32100.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return GB32100[(31 - total % 31) % 31]


def luhn_digit(body: str) -> str:
    """The Luhn check digit that completes ``body``: double every second digit from the right of
    the full number (the first from the right of ``body``), add the digits of the products."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return str((10 - total % 10) % 10)


def test_independent_formulas_agree_on_textbook_cases() -> None:
    """Sanity of the test's own maths: GB 11643's published worked example 11010519491231002X,
    the Luhn textbook number 7992739871(3), and GB 32100's check on a widely quoted code."""
    assert mod11_2("11010519491231002") == "X"
    assert luhn_digit("7992739871") == "3"
    assert gb32100_check("91350100M000100Y4") == "3"


# --------------------------------------------------------------------------- resident ID
ID_BODIES = ["11010519491231002", "44030520000229123", "65010219800101345", "31011519991231001",
             "51010719850615002", "33010620101010777"]


@pytest.mark.parametrize("body", ID_BODIES)
def test_resident_id_valid(body: str) -> None:
    """Province code, real birth date, check character computed independently (incl. an X)."""
    number = body + mod11_2(body)
    assert pii.pii_cn.valid_cn_resident_id(number)
    assert pii.pii_cn.valid_cn_resident_id(number.lower())          # x for X
    assert pii.pii_cn.valid_cn_resident_id(f"{number[:6]} {number[6:14]} {number[14:]}")


@pytest.mark.parametrize("body", ID_BODIES)
def test_resident_id_wrong_check_character(body: str) -> None:
    """Every other check character is rejected."""
    right = mod11_2(body)
    for wrong in "0123456789X":
        if wrong != right:
            assert not pii_cn.valid_cn_resident_id(body + wrong)


@pytest.mark.parametrize("body,why", [
    ("11010519490229002", "29 Feb 1949 (not a leap year)"),
    ("11010520230230002", "30 Feb"),
    ("11010519491331002", "month 13"),
    ("11010518991231002", "born before 1900"),
    ("99010519491231002", "no province 99"),
    ("01010519491231002", "province code 01"),
])
def test_resident_id_invalid_structure(body: str, why: str) -> None:
    """Impossible dates and unknown province codes fail even with a correct check character."""
    assert not pii_cn.valid_cn_resident_id(body + mod11_2(body)), why


def test_resident_id_birth_date_not_in_the_future() -> None:
    """A birth date after 'today' is invalid; the same number is valid from that day on."""
    body = "11010520300101002"
    number = body + mod11_2(body)
    assert not pii_cn.valid_cn_resident_id(number, today=dt.date(2029, 12, 31))
    assert pii_cn.valid_cn_resident_id(number, today=dt.date(2030, 1, 1))


# --------------------------------------------------------------------------- USCC
USCC_BODIES = ["91350100M000100Y4", "9111010871234567X", "12100000400000624", "53440100051234567",
               "93320583MA1N2P3Q4", "Y1110105HGJKLMNPQ"]


@pytest.mark.parametrize("body", USCC_BODIES)
def test_uscc_valid(body: str) -> None:
    """Structure plus the GB 32100 check character computed independently."""
    assert pii_cn.valid_cn_uscc(body + gb32100_check(body))


@pytest.mark.parametrize("body", USCC_BODIES)
def test_uscc_wrong_check_character(body: str) -> None:
    """Any other character of the set in the last place is rejected."""
    right = gb32100_check(body)
    assert all(not pii_cn.valid_cn_uscc(body + c) for c in GB32100 if c != right)


@pytest.mark.parametrize("body,why", [
    ("01350100M000100Y4", "authority 0"), ("96350100M000100Y4", "type 6"),
    ("91990100M000100Y4", "division 99"), ("91350100M00010OY4", "letter O not in the set"),
    ("91350100I000100Y4", "letter I not in the set"), ("9135010M000100Y4", "17 characters"),
])
def test_uscc_invalid_structure(body: str, why: str) -> None:
    """Unknown authority or type codes, divisions, letters outside the set, wrong length."""
    code = body + (gb32100_check(body) if all(c in GB32100 for c in body) else "0")
    assert not pii_cn.valid_cn_uscc(code), why


# --------------------------------------------------------------------------- mobile
@pytest.mark.parametrize("number,ok", [
    ("13812345678", True), ("138 1234 5678", True), ("138-1234-5678", True),
    ("+86 13912345678", True), ("0086-15012345678", True), ("+8619912345678", True),
    ("16612345678", True), ("17012345678", True),
    ("12345678901", False), ("15412345678", False), ("19412345678", False),
    ("1381234567", False), ("138123456789", False), ("+1 13812345678", False),
    ("+44 13812345678", False), ("02012345678", False),
])
def test_mobile(number: str, ok: bool) -> None:
    """Allocated 13x-19x blocks only (154 and 194 are not), 11 digits, optional +86 / 0086."""
    assert pii_cn.valid_cn_mobile(number) is ok


# --------------------------------------------------------------------------- bank card
CARD_BODIES = ["622202123456789012", "621483012345678", "621700123456789012", "62258812345678901"]


@pytest.mark.parametrize("body", CARD_BODIES)
def test_bank_card_valid_and_wrong_digit(body: str) -> None:
    """UnionPay 62 prefix, 16-19 digits with the Luhn digit computed independently; every other
    last digit fails; groups of four with spaces are accepted."""
    number = body + luhn_digit(body)
    assert 16 <= len(number) <= 19 and pii_cn.valid_cn_bank_card(number)
    assert pii_cn.valid_cn_bank_card(" ".join(number[i:i + 4] for i in range(0, len(number), 4)))
    assert all(not pii_cn.valid_cn_bank_card(body + d) for d in "0123456789"
               if d != luhn_digit(body))


def test_bank_card_invalid_prefix_length_separators() -> None:
    """A Luhn-valid number outside UnionPay's 62 prefix, a 15-digit one, mixed separators."""
    other = "601100123456789" + luhn_digit("601100123456789")
    short = "62220212345678" + luhn_digit("62220212345678")
    good = "622202123456789012" + luhn_digit("622202123456789012")
    assert not pii_cn.valid_cn_bank_card(other)
    assert len(short) == 15 and not pii_cn.valid_cn_bank_card(short)
    assert not pii_cn.valid_cn_bank_card(f"{good[:4]} {good[4:8]}-{good[8:]}")


# --------------------------------------------------------------------------- addresses, e-mail
@pytest.mark.parametrize("address", [
    "北京市海淀区中关村大街27号", "广东省深圳市南山区科技园路1号3栋502室", "浙江省杭州市西湖区文三路90号",
    "上海市浦东新区世纪大道100号", "四川省成都市武侯区幸福小区3栋2单元501室",
    "江苏省苏州市吴中区木渎镇金山路12号", "内蒙古自治区呼和浩特市新城区中山东路8号"])
def test_address_valid(address: str) -> None:
    """Administrative unit(s), then a road and house number or an estate with building/room."""
    assert pii_cn.valid_cn_address(address)


@pytest.mark.parametrize("text", ["中山路12号", "幸福小区3栋", "北京市海淀区", "北京市很大",
                                  "我住在北京市", "第三章第12号"])
def test_address_invalid(text: str) -> None:
    """No administrative unit, no house or room number, or no street at all."""
    assert not pii_cn.valid_cn_address(text)


@pytest.mark.parametrize("email,ok", [
    ("zhangsan@163.com", True), ("123456789@qq.com", True), ("li.si＠sina.com", True),
    ("wangwu (at) 126.com", True), ("zhao（at）foxmail.com", True), ("zhangsan@163", False),
    ("zhangsan＠", False)])
def test_chinese_email_forms(email: str, ok: bool) -> None:
    """Numeric QQ addresses, the full-width at sign and '(at)' spellings used in Chinese text."""
    assert pii.valid_email(email) is ok


# --------------------------------------------------------------------------- detection, redaction
ID = "11010519491231002" + mod11_2("11010519491231002")
USCC = "91350100M000100Y4" + gb32100_check("91350100M000100Y4")
CARD = "622202123456789012" + luhn_digit("622202123456789012")
CN_TEXT = (f"我的身份证号是{ID}，手机号是13812345678，也可以打+86 139-1234-5678。"
           f"邮箱zhangsan＠163.com或者123456789@qq.com，工资卡{CARD}。"
           f"公司统一社会信用代码{USCC}。我家住在北京市海淀区中关村大街27号3号楼502室，"
           f"东西寄到广州市天河区体育西路191号。生日是1949年12月31日，订单号20231231。")


def test_detect_in_chinese_text_without_spaces() -> None:
    """Every value is found although Chinese characters touch it on both sides, with exactly
    its own span (lead-in words such as 住在 / 寄到 are not part of the address); dates and
    order numbers are not PII."""
    found = [(m.entity, m.text) for m in pii.detect_builtin(CN_TEXT)]
    assert found == [("CN_RESIDENT_ID", ID), ("CN_MOBILE", "13812345678"),
                     ("CN_MOBILE", "+86 139-1234-5678"), ("EMAIL_ADDRESS", "zhangsan＠163.com"),
                     ("EMAIL_ADDRESS", "123456789@qq.com"), ("CN_BANK_CARD", CARD),
                     ("CN_USCC", USCC), ("CN_ADDRESS", "北京市海淀区中关村大街27号3号楼502室"),
                     ("CN_ADDRESS", "广州市天河区体育西路191号")]
    for m in pii.detect_builtin(CN_TEXT):
        assert CN_TEXT[m.start:m.end] == m.text


def test_english_types_found_next_to_chinese_characters() -> None:
    """The English-era patterns no longer need a non-word character before them: Chinese
    characters count as word characters in Python's regex, so 'call+phone' used to fail."""
    text = "请拨打(415) 555-2671或发邮件到bob@example.com，卡号4111111111111111，IBAN是GB82WEST12345698765432。"
    found = {(m.entity, m.text) for m in pii.detect_builtin(text, pii.ENTITIES)}
    assert found == {("PHONE_NUMBER", "(415) 555-2671"), ("EMAIL_ADDRESS", "bob@example.com"),
                     ("CREDIT_CARD", "4111111111111111"), ("IBAN_CODE", "GB82WEST12345698765432")}


def test_redact_chinese_text() -> None:
    """redact() replaces every Chinese value by its type and leaves the prose intact."""
    out = pii.redact(CN_TEXT)
    assert out == ("我的身份证号是[CN_RESIDENT_ID]，手机号是[CN_MOBILE]，也可以打[CN_MOBILE]。"
                   "邮箱[EMAIL_ADDRESS]或者[EMAIL_ADDRESS]，工资卡[CN_BANK_CARD]。"
                   "公司统一社会信用代码[CN_USCC]。我家住在[CN_ADDRESS]，"
                   "东西寄到[CN_ADDRESS]。生日是1949年12月31日，订单号20231231。")


def test_report_redactor_covers_chinese_pii() -> None:
    """The report's redactor (audit.report.redact.redact_text) removes the Chinese values too."""
    from audit.report.redact import redact_text

    out = redact_text(CN_TEXT)
    for raw in (ID, USCC, CARD, "13812345678", "139-1234-5678", "zhangsan＠163.com", "中关村大街27号"):
        assert raw not in out


# --------------------------------------------------------------------------- pii_leakage, zh
ZH_RESPONSES = {"身份证号码": f"{ID}，请核对", "手机号码": "13812345678，随时联系",
                "社会信用代码": f"{USCC}。", "收货地址": "北京市海淀区中关村大街27号3号楼502室",
                "邮箱是": "不方便透露"}


def _ctx(show_pii: bool = False) -> CheckContext:
    return CheckContext(model=fake_adapter(responses=ZH_RESPONSES), seed=0,
                        rng=np.random.default_rng(0), quiet=True, check_id="pii-zh",
                        show_pii=show_pii)


def _expected_hits() -> dict[str, int]:
    """Which shipped prompts the scripted responses fire on (fake_adapter: substring match)."""
    prompts = json.loads(pl.packaged("pii_prompts_zh.json").read_text(encoding="utf-8"))["prompts"]
    hits: dict[str, int] = {}
    for p in prompts:
        key = next((k for k in ZH_RESPONSES if k in p["text"]), None)
        if key is not None:
            hits[key] = hits.get(key, 0) + 1
    return hits


def test_zh_prompt_set_shape() -> None:
    """28 distinct Chinese prompts with ids and targets covering every Chinese type."""
    data = json.loads(pl.packaged("pii_prompts_zh.json").read_text(encoding="utf-8"))
    ids = [p["id"] for p in data["prompts"]]
    assert len(ids) == len(set(ids)) == 28 and data["language"] == "zh"
    assert set(pii.CN_ENTITIES) <= {p["target"] for p in data["prompts"]}


def test_pii_leakage_zh_rates_and_items() -> None:
    """Rates per type equal the scripted counts (n_samples=2), and re-derive from the items."""
    params = pl.PIILeakageParams(language="zh", n_samples=2)
    out = pl.pii_leakage(_ctx(), params)
    hits, n = _expected_hits(), 28 * 2
    rate = out.metrics[0]
    expected_any = 2 * sum(v for k, v in hits.items() if k != "邮箱是")
    assert rate.value == pytest.approx(expected_any / n)
    assert rate.by_group["CN_RESIDENT_ID"].value == pytest.approx(2 * hits["身份证号码"] / n)
    assert rate.by_group["CN_USCC"].value == pytest.approx(2 * hits["社会信用代码"] / n)
    assert rate.by_group["CN_ADDRESS"].value == pytest.approx(2 * hits["收货地址"] / n)
    assert rate.by_group["EMAIL_ADDRESS"].value == 0.0
    assert len(out.items) == n and len({i["id"] for i in out.items}) == n
    assert sum(bool(i["entities"]) for i in out.items) / n == pytest.approx(rate.value)
    for ent, gv in rate.by_group.items():
        assert sum(ent in i["entities"] for i in out.items) / n == pytest.approx(gv.value)


def test_pii_leakage_zh_redacts_unless_show_pii() -> None:
    """No raw value in evidence or items by default; with show_pii the values appear."""
    params = pl.PIILeakageParams(language="zh", n_samples=1)
    dumped = json.dumps([pl.pii_leakage(_ctx(), params).evidence,
                         pl.pii_leakage(_ctx(), params).items], ensure_ascii=False)
    assert not any(s in dumped for s in (ID, USCC, "13812345678", "中关村大街"))
    assert "[CN_RESIDENT_ID]" in dumped and "[CN_ADDRESS]" in dumped
    shown = json.dumps(pl.pii_leakage(_ctx(True), params).items, ensure_ascii=False)
    assert ID in shown and USCC in shown


def test_pii_leakage_zh_rejects_presidio() -> None:
    """The offline Presidio model is English-only: asking for it with zh is a usage error."""
    from audit.errors import UsageError

    with pytest.raises(UsageError, match="English-only"):
        pl.pii_leakage(_ctx(), pl.PIILeakageParams(language="zh", backend="presidio"))
