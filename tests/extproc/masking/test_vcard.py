"""vCards in text: a contact's name, birthday and address by property and position."""

from __future__ import annotations

from extproc.masking.vcard import find, looks_like_vcard

CARD = """BEGIN:VCARD
VERSION:4.0
N:Doe;Jane;Q.;Dr.;
FN:Dr. Jane Q. Doe
BDAY:19310315
ADR;TYPE=home:;;1357 Amber Drive;Gloucester;MA;01930;USA
TEL;TYPE=cell:+1-555-010-2202
ORG:Beaverton Clinic
END:VCARD"""


def test_a_card_s_name_birthday_and_address_are_found() -> None:
    assert looks_like_vcard(CARD)
    found = {CARD[f.start : f.end]: f.entity for f in find(CARD)}
    assert found == {
        "Doe": "name",
        "Jane": "name",
        "Q.": "name",
        "Dr. Jane Q. Doe": "name",
        "19310315": "date",
        "1357 Amber Drive": "street_address",
        "Gloucester": "city",
        "01930": "zip",
    }


def test_text_that_mentions_a_card_is_not_one() -> None:
    assert not looks_like_vcard("N: 12 patients seen; FN: none")
