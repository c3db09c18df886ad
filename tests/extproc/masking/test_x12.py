"""X12 EDI in text, read by position: an eligibility answer and a claim's subscriber loop."""

from __future__ import annotations

from extproc.masking.x12 import find, looks_like_x12

ELIGIBILITY = (
    "ISA*00*          *00*          *ZZ*CLEARINGHOUSE  *ZZ*CLINIC         *240312*1030*^*00501"
    "*000000905*0*P*:~"
    "NM1*PR*2*ACME HEALTH PLAN*****PI*842610001~"
    "NM1*1P*2*BEAVERTON CLINIC*****XX*1234567893~"
    "NM1*IL*1*DOE*JANE*Q***MI*XDP928374651~"
    "N3*1357 AMBER DR*APT 4~"
    "N4*BEAVERTON*OR*970061234~"
    "DMG*D8*19310315*F~"
    "REF*SY*512487731~"
    "DTP*291*RD8*20240301-20240331~"
    "PER*IC*JOHN DOE*TE*5550102202*EM*JDOE@EXAMPLE.ORG~"
    "EB*1*IND*30**GOLD PLAN~"
)


def values(text: str) -> dict[str, str]:
    return {text[f.start : f.end]: f.entity for f in find(text)}


def test_an_eligibility_answer_s_phi_is_found_by_position() -> None:
    assert looks_like_x12(ELIGIBILITY)
    assert values(ELIGIBILITY) == {
        "DOE": "name",
        "JANE": "name",
        "Q": "name",
        "XDP928374651": "health_plan",
        "1357 AMBER DR": "street_address",
        "APT 4": "street_address",
        "BEAVERTON": "city",
        "970061234": "zip",
        "19310315": "date",
        "512487731": "ssn",
        "20240301-20240331": "date",
        "JOHN DOE": "name",
        "5550102202": "phone",
        "JDOE@EXAMPLE.ORG": "email",
    }


def test_organisations_and_codes_stay() -> None:
    found = values(ELIGIBILITY)
    for kept in ("ACME HEALTH PLAN", "842610001", "1234567893", "OR", "GOLD PLAN", "IND"):
        assert kept not in found


def test_segments_one_a_line_are_read_too() -> None:
    claim = "CLM*PT8820190412*185***11:B:1*Y*A*Y*Y\nNM1*QC*1*SMITH*ANN~"
    assert values(claim) == {"PT8820190412": "account", "SMITH": "name", "ANN": "name"}


def test_text_with_stars_is_not_x12() -> None:
    assert not looks_like_x12("**Note**: rated 5* by the patient")
