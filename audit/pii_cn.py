"""Validators and patterns for personal data of mainland China, used by :mod:`audit.pii`.

- ``CN_RESIDENT_ID``: 18-character resident identity numbers (GB 11643-1999): a 6-digit address
  code whose first two digits are a provincial-level code, a birth date ``YYYYMMDD`` that exists
  and is not in the future, a 3-digit sequence code and the ISO 7064 MOD 11-2 check character
  (``0``-``9`` or ``X``).
- ``CN_USCC``: Unified Social Credit Codes of organisations (GB 32100-2015): 18 characters from
  the 31-character set ``0-9 A-H J-N P-R T U W-Y``; registration authority and organisation type
  codes, a 6-digit administrative division code, and the check character (mod 31).
- ``CN_MOBILE``: mainland mobile numbers: 11 digits in the 13x-19x blocks the MIIT numbering plan
  allocates to mobile networks, optionally after ``+86`` / ``0086``, written whole or as 3-4-4.
- ``CN_BANK_CARD``: UnionPay bank cards: 16-19 digits starting with 62, Luhn checksum.
- ``CN_ADDRESS``: postal addresses written the Chinese way, from the largest unit down
  (province, city, district, town; then a road and house number, or a residential estate with
  building and room numbers); at least one administrative unit is required.

Every pattern guards its ends against ASCII letters and digits only, never against ``\\w``:
Chinese text has no spaces, so a number usually touches a Chinese character
("我的手机号是13812345678"), and ``\\w`` matches Chinese characters.
"""

from __future__ import annotations

import datetime as _dt
import re

CN_ENTITIES = ("CN_RESIDENT_ID", "CN_USCC", "CN_MOBILE", "CN_BANK_CARD", "CN_ADDRESS")

# GB/T 2260 provincial-level codes (first two digits of an administrative division code).
PROVINCE_CODES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82"})
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)   # 2^(17-i) mod 11
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)   # 3^i mod 31
# GB 32100 registration authority codes (1 编制, 2 外交, 3 司法行政, 4 文化, 5 民政, 6 旅游, 7 宗教,
# 8 工会, 9 工商, A 军队, N 农业, Y 其他) and the union of their organisation type codes.
USCC_AUTHORITIES = "123456789ANY"
USCC_TYPES = "123459"
# Mobile number blocks (first three digits) of the MIIT numbering plan.
MOBILE_PREFIXES = frozenset(
    [f"13{d}" for d in range(10)] + ["145", "146", "147", "148", "149"]
    + [f"15{d}" for d in "012356789"] + ["162", "165", "166", "167"]
    + [f"17{d}" for d in "012345678"] + [f"18{d}" for d in range(10)]
    + [f"19{d}" for d in "012356789"])


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits (ISO 7064 MOD 11-2)."""
    total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def valid_cn_resident_id(text: str, today: _dt.date | None = None) -> bool:
    """An 18-character resident identity number: province code, a real birth date not after
    ``today``, and the MOD 11-2 check character (``x`` accepted for ``X``)."""
    compact = re.sub(r"\s", "", text).upper()
    if not re.fullmatch(r"\d{17}[\dX]", compact) or compact[:2] not in PROVINCE_CODES:
        return False
    try:
        born = _dt.date(int(compact[6:10]), int(compact[10:12]), int(compact[12:14]))
    except ValueError:
        return False
    if born.year < 1900 or born > (today or _dt.date.today()):
        return False
    return id_check_char(compact[:17]) == compact[17]


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters of a credit code."""
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS))
    return USCC_CHARS[(31 - total % 31) % 31]


def valid_cn_uscc(text: str) -> bool:
    """A Unified Social Credit Code: 18 characters of the GB 32100 set, a known registration
    authority and organisation type, a 6-digit division code with a provincial-level prefix
    (``10`` for central bodies) and the check character."""
    code = text.strip().upper()
    if len(code) != 18 or any(c not in USCC_CHARS for c in code):
        return False
    if code[0] not in USCC_AUTHORITIES or code[1] not in USCC_TYPES:
        return False
    if not code[2:8].isdigit() or (code[2:4] not in PROVINCE_CODES and code[2:4] != "10"):
        return False
    return uscc_check_char(code[:17]) == code[17]


def valid_cn_mobile(text: str) -> bool:
    """A mainland mobile number (11 digits in an allocated 13x-19x block), with or without the
    +86 / 0086 country code."""
    compact = re.sub(r"[\s-]", "", text)
    m = re.fullmatch(r"(?:\+86|0086)?(\d{11})", compact)
    return bool(m) and m.group(1)[:3] in MOBILE_PREFIXES


def valid_cn_bank_card(text: str) -> bool:
    """A UnionPay card number: 16-19 digits starting with 62, one kind of separator, Luhn."""
    from audit.pii import luhn_valid

    digits = re.sub(r"\D", "", text)
    return (len(set(re.findall(r"[ -]", text))) <= 1 and 16 <= len(digits) <= 19
            and digits.startswith("62") and luhn_valid(digits))


def valid_cn_address(text: str) -> bool:
    """An address the pattern found, with at least one administrative unit before the street."""
    m = ADDRESS_RE.fullmatch(text)
    return bool(m and (m.group("prov") or m.group("city") or m.group("dist")))


# --------------------------------------------------------------------------- patterns
_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"
ID_PATTERN = (_NOT_ALNUM_BEFORE + r"[1-9]\d{5} ?(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
              r"(?:0[1-9]|[12]\d|3[01]) ?\d{3}[\dXx]" + _NOT_ALNUM_AFTER)
USCC_PATTERN = (_NOT_ALNUM_BEFORE + r"[0-9A-HJ-NP-RTUW-Y]{2}\d{6}[0-9A-HJ-NP-RTUW-Y]{10}"
                + _NOT_ALNUM_AFTER)
MOBILE_PATTERN = (r"(?<![0-9A-Za-z+])(?:(?:\+86|0086)[ -]?)?1[3-9]\d(?:\d{8}|[ -]\d{4}[ -]\d{4})"
                  + _NOT_ALNUM_AFTER)
BANK_CARD_PATTERN = r"(?<![\d-])62\d{2}(?:[ -]?\d){12,15}(?![\d-])"

_PROVINCES = ("北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|"
              "湖北|湖南|广东|海南|四川|贵州|云南|陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|"
              "香港|澳门")
# A character of a place or street name: a Chinese character that is neither an address-unit
# suffix nor a common function word that precedes addresses ("住在", "寄到", "位于" ...).
_N = r"(?:(?![省市区县旗镇乡路街巷弄号栋幢楼室层在住是于的到往寄址自我你他她])[\u4e00-\u9fff])"
_NUM = r"[0-9０-９]{1,5}|[一二三四五六七八九十百零〇]{1,6}"
_UNIT = rf"(?:(?:{_NUM}|[A-Za-z])(?:号楼|栋|幢|座|单元|层|楼|室|号|户))"
ADDRESS_PATTERN = (
    rf"(?P<pii>(?P<prov>(?:{_PROVINCES})(?:省|市|自治区|壮族自治区|回族自治区|维吾尔自治区|"
    rf"特别行政区)?)?(?P<city>{_N}{{2,4}}(?:市|自治州|地区|盟))?"
    rf"(?P<dist>{_N}{{1,4}}(?:区|县|旗|市))?(?:{_N}{{1,6}}(?:镇|乡|街道))?"
    rf"(?:(?:{_N}|[0-9]){{1,10}}(?:大街|大道|路|街|巷|胡同|弄)(?:[东西南北中]段)?(?:{_NUM})号"
    rf"{_UNIT}{{0,4}}|{_N}{{1,8}}(?:小区|花园|公寓|大厦|新村|家园|苑|村){_UNIT}{{1,4}}))"
)
ADDRESS_RE = re.compile(ADDRESS_PATTERN)

PATTERNS = [
    ("CN_RESIDENT_ID", ID_PATTERN, valid_cn_resident_id),
    ("CN_USCC", USCC_PATTERN, valid_cn_uscc),
    ("CN_MOBILE", MOBILE_PATTERN, valid_cn_mobile),
    ("CN_BANK_CARD", BANK_CARD_PATTERN, valid_cn_bank_card),
    ("CN_ADDRESS", ADDRESS_PATTERN, valid_cn_address),
]
