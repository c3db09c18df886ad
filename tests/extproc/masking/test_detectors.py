"""Free-text detectors: published check-digit vectors, a table of what each entity is and is
not, the demo server's formats, how overlaps are settled, operators' patterns and word lists,
and properties that hold for any text (never raises, spans sorted, disjoint, in bounds)."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from examples.demo_mcp_server import PatientRecord, fake_patients
from extproc.masking import validators as v
from extproc.masking.detectors import BUILTIN_ENTITIES, PatternSpec, Scanner, ScannerSpec
from extproc.masking.findings import Finding

SCANNER = Scanner()
TEST_AREAS = Scanner(ScannerSpec(ssn_test_areas=True))


def found(text: str, scanner: Scanner = SCANNER) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in scanner.scan(text)]


# --- validators, with published vectors ---------------------------------------------------


@pytest.mark.parametrize(
    "number",
    ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "79927398713"],
)
def test_luhn_accepts_published_test_numbers(number: str) -> None:
    assert v.luhn_valid(number)


@pytest.mark.parametrize(
    "number", ["4111111111111112", "79927398710", "", "4111-1111", "\uff14\uff11"]
)
def test_luhn_refuses_wrong_check_digits_and_anything_but_ascii_digits(number: str) -> None:
    assert not v.luhn_valid(number)


def test_npi_check_digit_uses_the_80840_prefix() -> None:
    assert v.npi_valid("1234567893")  # the CMS example
    assert not v.npi_valid("1234567890")
    assert not v.npi_valid("3234567893")  # an NPI starts with 1 or 2
    assert not v.npi_valid("123456789")


@pytest.mark.parametrize(
    ("ssn", "test_areas", "possible"),
    [
        ("078051120", False, True),
        ("000123456", False, False),  # area 000
        ("666123456", False, False),  # area 666
        ("900123456", False, False),  # 9xx: never issued ...
        ("900123456", True, True),  # ... but what fake and test data use
        ("123001234", True, False),  # group 00
        ("123450000", True, False),  # serial 0000
        ("12345678", False, False),
        ("12345678a", False, False),
    ],
)
def test_ssn_possible(ssn: str, test_areas: bool, possible: bool) -> None:
    assert v.ssn_possible(ssn, test_areas=test_areas) is possible


def test_vin_check_digit() -> None:
    assert v.vin_check_digit_valid("1M8GDM9AXKP042788")  # the classic example, check digit X
    assert v.vin_check_digit_valid("11111111111111111")
    assert not v.vin_check_digit_valid("1M8GDM9A1KP042788")
    assert not v.vin_check_digit_valid("1M8GDM9AXKP04278O")  # O is not a VIN character
    assert not v.vin_check_digit_valid("1M8GDM9AXKP04278")


@pytest.mark.parametrize(
    ("address", "valid"),
    [("192.168.0.1", True), ("255.255.255.255", True), ("256.1.1.1", False), ("1.2.3", False)],
)
def test_ipv4_valid(address: str, valid: bool) -> None:
    assert v.ipv4_valid(address) is valid


@pytest.mark.parametrize(
    ("address", "valid"),
    [("2001:db8::1", True), ("::1", True), ("::ffff:192.0.2.1", True), ("10:30:00", False)],
)
def test_ipv6_valid(address: str, valid: bool) -> None:
    assert v.ipv6_valid(address) is valid


@pytest.mark.parametrize(
    ("ymd", "valid"),
    [((2024, 2, 29), True), ((2023, 2, 29), False), ((2024, 13, 1), False), ((2024, 4, 31), False)],
)
def test_date_valid(ymd: tuple[int, int, int], valid: bool) -> None:
    assert v.date_valid(*ymd) is valid


# --- what each entity is ------------------------------------------------------------------

POSITIVE = [
    ("username", "[03:53] vangp: hey is bed 12 still npo?", "vangp"),
    ("date", "CT abdomen, DOB Wed 10/6: no acute process", "Wed 10/6"),
    ("date", "Collected: 19870723  Received: 10-20-1948", "19870723"),
    ("street_address", "they live at 3734 County Road 215 in", "3734 County Road 215"),
    ("username", "Last edited by bolanderf from 192.119.46.102", "bolanderf"),
    ("username", "The record was last updated on Nov 12 by parsafa.", "parsafa"),
    ("age_over_89", "DOB 6.8.1930 | 94F | University Medical Center", "94"),
    (
        "employer",
        "Works as a nurse's aide at Rodriguez, Rojas and Johnson.",
        "Rodriguez, Rojas and Johnson",
    ),
    ("employer", "accountant at Church, Hale and Weiss since 2015", "Church, Hale and Weiss"),
    ("username", "@brianna.reilly can u cover", "brianna.reilly"),
    ("username", "2006-12-05T07:01:00Z user=longi ip=1.2.3.4", "longi"),
    ("license", "Prescriber DEA on script: PR5853329.", "PR5853329"),
    ("street_address", "ADDRESS PO BOX 349", "PO BOX 349"),
    ("street_address", "mail to RR 9 Box 323", "RR 9 Box 323"),
    ("street_address", "off County Road 130", "County Road 130"),
    ("city", "She lives in Beatrice with her son", "Beatrice"),
    ("fax", "or fax 3005552311.", "3005552311"),
    ("phone", "reach me at 3785553442 today", "3785553442"),
    (
        "employer",
        "retired machinist formerly with Piedmont Textile Mills.",
        "Piedmont Textile Mills",
    ),
    ("account", "Acct No: 4455-778 billed", "4455-778"),
    ("health_plan", "Member ID: XKQ123456789 expires", "XKQ123456789"),
    ("health_plan", "Policy number 88 7712 334 on file", "88 7712 334"),
    ("license", "DEA# BT1234563", "BT1234563"),
    ("license", "Driver's license S99911111", "S99911111"),
    ("device", "pump serial number SN-88812-AX", "SN-88812-AX"),
    ("device", "UDI (01)00844588003288(17)141120", "(01)00844588003288(17)141120"),
    ("vehicle", "parked, plate 7ABC123.", "7ABC123"),
    ("city", "lives in Marblehead, MA with", "Marblehead"),
    ("city", "from Salt Lake City, Utah", "Salt Lake City"),
    ("date", "born 04-Mar-1950", "04-Mar-1950"),
    ("date", "seen March 4th", "March 4th"),
    ("date", "on the 4th of March", "the 4th of March"),
    ("date", "DOB: 19500304", "19500304"),
    ("phone", "Phone: 5550100101", "5550100101"),
    # record numbers as hospitals outside the US label them, and a face sheet's leader
    ("health_plan", "I have your member ID as TC4951151-06, right?", "TC4951151-06"),
    ("health_plan", "MEDICARE PART A  ID 3XK1-MX1-CT74", "3XK1-MX1-CT74"),  # an MBI's shape
    ("health_plan", "1a. INSURED'S I.D. NUMBER: W013364737", "W013364737"),
    ("account", "Your reference number is 277-7598-650.", "277-7598-650"),
    ("account", "per police report 21-037056.", "21-037056"),
    ("age_over_89", "4a. AGE-Last Birthday (Years): 93", "93"),
    ("device", "paired to MAC 15:c5:c0:60:fe:b2 today", "15:c5:c0:60:fe:b2"),
    ("biometric", "voiceprint VP155374810 enrolled", "VP155374810"),  # Safe Harbor's P and Q
    ("biometric", "Fingerprint template hash: 8b0ab42b9c7f8978", "8b0ab42b9c7f8978"),
    (
        "device",
        "carrierHRF (01)59305347160777(17)260411(10)W78885",
        "(01)59305347160777(17)260411(10)W78885",
    ),
    ("mrn", "Client ID M913877724 referred", "M913877724"),
    ("mrn", "MRN `RRMC470459` in markdown", "RRMC470459"),
    ("license", "State ID E3504879 (MI)", "E3504879"),
    ("license", "Consultant Physician, GMC 9721753", "9721753"),
    ("license", "MD (Medicine)    Reg. No. KMC 14952", "KMC 14952"),
    ("age_over_89", "is a 104 yr admitted for", "104"),
    ("age_over_89", "was born 1/2/1925 and turned 99 in April", "99"),
    ("biometric", "wound photo IMG_20181217_201147.jpg uploaded", "IMG_20181217_201147.jpg"),
    ("biometric", "PHOTO-6848827 on file", "PHOTO-6848827"),
    ("name", "my surname is K-A-B-I-R, yes", "K-A-B-I-R"),
    ("street_address", "now at 95 avenue des Tanneurs, Mulhouse", "95 avenue des Tanneurs"),
    ("street_address", "lives at Magret-Ring-Platz 92b, Erlangen", "Magret-Ring-Platz 92b"),
    ("ssn", "Aadhaar: 2743 7441 7185", "2743 7441 7185"),  # national numbers by their label
    ("ssn", "PPSN: 0978133G", "0978133G"),
    ("username", "WARN login failed for 'jbaeza' from", "jbaeza"),
    ("username", '10.2.3.4 - dwoulfe "GET /api/v2/patients HTTP/1.1"', "dwoulfe"),
    ("zip", "14 Fore St, Truro CT1 9UB", "CT1 9UB"),  # UK and Canadian postcodes
    ("zip", "Ottawa, ON K1A 0B1", "K1A 0B1"),
    ("city", "14 Fore St, Truro CT1 9UB", "Truro"),
    ("zip", "Goiânia, CEP 73740-508", "73740-508"),  # numeric ones after their label
    ("zip", "C.P. 87324 Tampico", "87324"),
    ("mrn", "UHID 2231904 admitted", "2231904"),
    ("mrn", "Hosp. No: KNH/16980/19", "KNH/16980/19"),
    ("mrn", "UR number 0455123", "0455123"),
    ("mrn", "Fallnummer 40012345", "40012345"),
    ("mrn", "MRN ....... 16738762", "16738762"),
    ("zip", "Springfield, Illinois 62704", "62704"),
    ("username", "Dictated by XGT:holmes on Monday", "XGT:holmes"),
    ("username", "PLG:RZ5851", "PLG:RZ5851"),
    ("username", "Last edited by TJ5879 from", "TJ5879"),
    ("username", "last updated on June 20th by tara.r.", "tara.r"),
    ("employer", "employer Perkins PLC, injury", "Perkins PLC"),
    ("employer", "Works at Hall, Hayden and Howell.", "Hall, Hayden and Howell"),
    ("account", "ACCESSION: RAD-23-1802513", "RAD-23-1802513"),
    ("vehicle", "vehicle plate NQY 730 (KY)", "NQY 730"),
    ("street_address", "Address on file: PO Box 6940, Martinburgh", "PO Box 6940"),
    ("street_address", "to 6388 Elm Run, Georgetown", "6388 Elm Run"),
    ("date", "On 10/22, she was started", "10/22"),
    ("date", "Imaging (6/27): patchy", "6/27"),
    ("phone", "at (922) 763-3472 x3914.", "(922) 763-3472 x3914"),
    ("ssn", "her SSN ends... actually here's the full one: 591334143.", "591334143"),
    ("city", "ZIP 43897, South Jenniferstad - eligible", "South Jenniferstad"),
    ("username", "portal username: ada.okafor77", "ada.okafor77"),
    ("ssn", "SSN on file: 078-05-1120.", "078-05-1120"),
    ("ssn", "ssn 078 05 1120", "078 05 1120"),
    ("ssn", "Social security number: 078051120", "078051120"),
    ("ssn", "pasted from a web page: 078\u00a005\u00a01120", "078\u00a005\u00a01120"),
    ("ssn", "typeset 078\u201305\u20131120 (en dashes)", "078\u201305\u20131120"),
    ("ssn", "narrow spaces 078\u202f05\u202f1120", "078\u202f05\u202f1120"),
    ("ssn", "minus signs 078\u221205\u22121120", "078\u221205\u22121120"),
    ("npi", "Attending NPI 1234567893", "1234567893"),
    ("card", "paid with 4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("card", "card 5555-5555-5555-4444 on file", "5555-5555-5555-4444"),
    ("card", "amex 378282246310005", "378282246310005"),
    ("card", "amex 3782 822463 10005", "3782 822463 10005"),
    ("vin", "vehicle VIN 1M8GDM9AXKP042788 towed", "1M8GDM9AXKP042788"),
    ("email", "write to alice.fakenham@example.com.", "alice.fakenham@example.com"),
    ("url", "see https://portal.example.org/p?id=7).", "https://portal.example.org/p?id=7"),
    ("url", "or www.example.net, today", "www.example.net"),
    ("ip", "from 192.168.10.21 at noon", "192.168.10.21"),
    ("ip", "host 2001:db8:85a3::8a2e:370:7334 up", "2001:db8:85a3::8a2e:370:7334"),
    ("ip", "loopback ::1 only", "::1"),
    ("phone", "call (555) 010-0142 today", "(555) 010-0142"),
    ("phone", "call 555-010-0142", "555-010-0142"),
    ("phone", "call 555.010.0142", "555.010.0142"),
    ("phone", "call (555)\u00a0010-0142", "(555)\u00a0010-0142"),
    ("phone", "call +1 555 010 0142", "+1 555 010 0142"),
    ("phone", "call 1-555-010-0142", "1-555-010-0142"),
    ("phone", "London +44 20 7946 0958", "+44 20 7946 0958"),
    ("phone", "E.164 +442079460958", "+442079460958"),
    ("phone", "Berlin +49 30 1234567", "+49 30 1234567"),
    ("phone", "Paris +33 1 23 45 67 89", "+33 1 23 45 67 89"),
    ("phone", "Sydney +61 2 9876 5432", "+61 2 9876 5432"),
    # national numbers with their trunk 0, no "+"
    ("phone", "mobile 07700 900123 today", "07700 900123"),
    ("phone", "London 020 7946 0958.", "020 7946 0958"),
    ("phone", "Berlin 030 1234567", "030 1234567"),
    ("phone", "Paris 01 23 45 67 89", "01 23 45 67 89"),
    ("phone", "Sydney (02) 9876 5432 ext 12", "(02) 9876 5432 ext 12"),
    ("phone", "Tel 0931 201-44949", "0931 201-44949"),
    ("phone", "mobil 0171/1080355", "0171/1080355"),
    ("phone", "Tél 01.58.42.02.08", "01.58.42.02.08"),
    ("phone", "Berlin +49 (0)30 45027051", "+49 (0)30 45027051"),
    ("phone", "celular (11) 93726-0348", "(11) 93726-0348"),
    ("phone", "mobile 08152180979", "08152180979"),
    ("phone", "from abroad 0044 20 7946 0958", "0044 20 7946 0958"),
    ("fax", "Fax: (555) 010-0199", "(555) 010-0199"),
    ("fax", "fax no. 555-010-0199", "555-010-0199"),
    ("date", "DOB 1984-03-12", "1984-03-12"),
    ("date", "seen 03/05/2024", "03/05/2024"),
    ("date", "seen 3/5/24", "3/5/24"),
    ("date", "Sent: 29/04/2022 09:14", "29/04/2022"),  # day first, as most of the world writes
    ("date", "seen 20-05-2017", "20-05-2017"),
    ("date", "geboren am 12.03.1984", "12.03.1984"),
    ("date", "seen 3.25.2024", "3.25.2024"),
    ("date", "admitted March 5, 2024", "March 5, 2024"),
    ("date", "admitted Sept. 3rd 2021", "Sept. 3rd 2021"),
    ("date", "discharged 5 March 2024", "5 March 2024"),
    ("date", "died in March 2024", "March 2024"),
    ("date", "born 2024-02-29T10:00", "2024-02-29"),
    ("age_over_89", "age 92, stable", "92"),
    ("age_over_89", "Age: 101", "101"),
    ("age_over_89", "aged 95", "95"),
    ("age_over_89", "a 92-year-old man", "92"),  # the number: "[AGE_OVER_89]-year-old"
    ("age_over_89", "a 91 y/o woman", "91"),
    ("age_over_89", "is 90 years old", "90"),
    ("age_over_89", "95-yo man", "95"),
    ("age_over_89", "Age/Sex: 91/F", "91"),
    ("age_over_89", "Age at death: 101", "101"),
    ("age_over_89", "Patient age (years): 93", "93"),
    ("age_over_89", "her aunt, who is 103, lives", "103"),
    ("age_over_89", "died at 94.", "94"),
    ("age_over_89", "she turned 90 last week", "90"),
    ("age_over_89", "Patient is 93.", "93"),
    ("age_over_89", "in her 96th year", "96th"),
    ("age_over_89", "Alter: 95 J.", "95"),
    ("age_over_89", "a ninety-three-year-old woman", "ninety-three"),
    ("age_over_89", "one hundred and one years old", "one hundred and one"),
    ("date", "adm 12MAR2024", "12MAR2024"),
    ("date", "DOB 04JUL1930", "04JUL1930"),
    ("date", "seen 12th March", "12th March"),
    ("date", "follow-up on 3 Sept.", "3 Sept."),
    ("date", "onset 2/2019", "2/2019"),
    ("date", "since 05-2021", "05-2021"),
    ("date", "last seen Mar '24", "Mar '24"),
    ("date", "admitted 2/28 with", "2/28"),
    ("date", "03/12 0800 BP 128/82", "03/12"),
    ("date", "born the fifth of November", "the fifth of November"),
    ("date", "admitted on March the twelfth, and", "March the twelfth"),
    ("date", "seen on the twenty-first of May", "the twenty-first of May"),
    ("phone", "Pager 555-0147", "555-0147"),
    ("phone", "Pager 89012 overnight", "89012"),  # a hospital's pager, four digits or more
    ("phone", "pgr 647-5348", "647-5348"),
    ("phone", "Tel. +1 (617) 555-0101 x4417", "+1 (617) 555-0101 x4417"),
    ("phone", "tel:+1-555-555-2003;ext=22", "+1-555-555-2003;ext=22"),
    ("email", "email jane dot doe at gmail dot com, or", "jane dot doe at gmail dot com"),
    ("email", "jd [at] clinic [dot] org", "jd [at] clinic [dot] org"),
    ("email", "write to j.doe (at) x.org", "j.doe (at) x.org"),
    ("phone", "or 555 - 010 - 2202 or", "555 - 010 - 2202"),
    ("city", "12 Elm St, Frisco TX 75034", "Frisco"),
    ("employer", "nurse's aide at Harris Group since 2015", "Harris Group"),
    ("mrn", "MR# 59-94-12", "59-94-12"),  # grouped as a date is, but no date
    ("street_address", "lives at 221 Baker Street now", "221 Baker Street"),
    ("street_address", "at 456 W 5th Ave. Apt 3B", "456 W 5th Ave. Apt 3B"),
    ("street_address", "1 Lorem Ipsum Plaza, Brockway, ZZ 00006", "1 Lorem Ipsum Plaza"),
    ("city", "1 Lorem Ipsum Plaza, Brockway, ZZ 00006", "Brockway"),
    ("zip", "ZIP code: 02139", "02139"),
    ("zip", "Cambridge MA 02139-4307", "02139-4307"),
    ("zip", "Springfield, ZZ 00001", "00001"),
    ("mrn", "MRN: 12345678", "12345678"),
    ("mrn", "record MRN-100001 reviewed", "MRN-100001"),
    ("mrn", "medical record number A1234567", "A1234567"),
    ("name", "seen by Dr. Ana Lucia Alvarez today", "Ana Lucia Alvarez"),
    ("name", "Mrs. O'Brien called", "O'Brien"),
]


@pytest.mark.parametrize(("entity", "text", "value"), POSITIVE)
def test_each_entity_is_found(entity: str, text: str, value: str) -> None:
    assert (entity, value) in found(text)


NEGATIVE = [
    ("date", "Order 20231345 and 2024 visits"),
    ("account", "TELEPHONE ENCOUNTER 04/12/1947 1745"),
    ("employer", "Gleason 3+4=7 (Grade Group 2)"),
    ("username", "She was treated by mouth. Controlled by metformin 500 mg."),
    ("age_over_89", "a 42M with chest pain"),
    ("street_address", "BP 159/86, HR 63, RR 19, T 38.7 C"),
    ("license", "lot PR5853328 expires"),  # a DEA number's shape, not its check digit
    ("phone", "epoch 1700000000 and order 1234567890"),
    ("city", "Dear Drervand Dathunne, PA-C, thank you"),
    ("account", '"fullUrl": "urn:uuid:ecace441-42bc-40a7-acc3-c27b4eea75df"'),
    ("username", "User: can you check her labs?"),
    ("username", "HI*ABK:E119*ABF:I10~"),  # an X12 segment's codes
    ("username", "NOTE:Raynaud's phenomenon\nEND:VCARD"),  # a vCard's lines
    ("username", "HPI:Patient seen today"),  # a heading without its space
    ("url", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    ("url", '<div xmlns="http://www.w3.org/1999/xhtml">'),
    ("date", "take 1/2 tablet"),
    ("account", "Visit 12 was uneventful"),
    ("mrn", "The record shows 12 visits in 2024"),
    ("health_plan", "Policy: Medicare, coverage active"),
    ("device", "Lot of 2 devices"),
    ("date", "Feb 30 clinic"),
    ("date", "March 32nd"),
    ("city", "Hypertension, Type 2"),
    ("phone", "Phone number on file, call 3 times"),
    ("phone", "NDC 0002-3227-30 dispensed"),  # a drug's code, in dashes
    ("mrn", "BUN 22, Cr 1.2 mg/dL; CR: 0.9; UR 5 times; Case 12 reviewed; IP address"),
    ("zip", "Stage T2 N0 M0; CD4 350; PIN 12; pin site clean"),
    ("account", "reference range 3.5-5.0; Ref 12; see reference 12; Visit NUMBER 3"),
    ("health_plan", "group therapy 3 times; Group 2 diabetes"),
    ("age_over_89", "age-related: 95%; Age: 45"),
    ("username", "login failed for the 3rd time"),
    ("age_over_89", "a 45 yr old; a 12 y old; A 5 y plan"),
    ("mrn", "the client is happy; Client 3 of 5"),
    ("phone", "pager battery 3 days; pgr 2 visits; pager 12 mg"),
    ("biometric", "template 5 of 7; photo 2; see report.pdf; the photo was blurry"),
    ("name", "A-B-C; COVID-19; HLA-B-27"),
    ("street_address", "ring 12 mm; Platz 3; route 66 miles"),
    ("phone", "NDC 0093-7214-01 dispensed"),  # an NDC that opens with 00
    ("city", "(interpreter: Japanese, ID LL229380)"),  # an ID, not Idaho
    ("license", "Creatinine 1.4 mg/dL. CPT 80053"),  # "dL" is no driver's licence
    ("city", "CPT 80053, ICD-10 J18.9"),
    ("ssn", "sin(x) 12; the ihi 1234"),
    ("phone", "version v1.02.03.04.05 released"),
    ("phone", "scores 01 02 03 04 05 06 07 08 09 10 11 12"),  # a row of numbers
    ("phone", "weights 0450 1200 13 kg"),  # groups before a unit
    ("phone", "order 0123 4567"),  # eight digits: too few
    ("ssn", "000-12-3456"),  # area 000
    ("ssn", "666-12-3456"),  # area 666
    ("ssn", "900-12-3456"),  # 9xx, not allowed by default
    ("ssn", "123-00-4567"),  # group 00
    ("ssn", "123-45-0000"),  # serial 0000
    ("ssn", "order 078051120"),  # 9 bare digits with nothing saying SSN
    ("ssn", "078-05-1120-7"),  # part of a longer number
    ("npi", "NPI 1234567890"),  # Luhn fails
    ("card", "4111 1111 1111 1112"),  # Luhn fails
    ("card", "1234567812345678"),
    ("vin", "1M8GDM9A1KP042788"),  # wrong check digit
    ("vin", "12345678901234567"),  # digits only: a number, not a VIN
    ("ip", "256.1.1.1"),  # octet over 255
    ("ip", "1.2.3.4.5"),
    ("ip", "at 10:30:00"),
    ("ip", "std::vector"),
    ("date", "13/14/2024"),  # month 13 or 14, whichever is read first
    ("date", "2024-13-05"),
    ("date", "Feb 30, 2024"),
    ("date", "2023-02-29"),
    ("date", "31.31.2024"),  # neither day.month nor month.day
    ("date", "version 1.2.3 of 2024"),
    ("date", "pi is 3.14.1592..."),
    ("date", "upgrade to 10.1.1.2024"),
    ("age_over_89", "age 89"),
    ("age_over_89", "an 89-year-old"),
    ("age_over_89", "stage 92 tumour"),
    ("age_over_89", "Tmax 101F overnight"),  # a temperature, not an age and a sex
    ("age_over_89", "call if you have fever over 101 F"),
    ("age_over_89", "she is 95 kg"),
    ("age_over_89", "he is 95% adherent"),
    ("date", "2 may be given"),  # "may", the word
    ("date", "Pain 7/10 0800"),  # a score, then a time
    ("date", "may first be given"),
    ("date", "in March second opinion"),
    ("age_over_89", "90Y radioembolization"),  # yttrium-90
    ("age_over_89", "SpO2 turned 91 on 2L"),
    ("age_over_89", "Patient is 92 on room air"),
    ("age_over_89", "celebrating 100 days sober"),
    ("age_over_89", "age-adjusted risk 95%"),
    ("age_over_89", "Please alter: 100 units insulin"),
    ("email", "guidance available at cdc.gov"),
    ("phone", "CD4 cell 500-1500"),
    ("phone", "Range 120 - 180 - 2400 mg"),
    ("city", "Transferred from ICU. Intubated"),
    ("city", "Heparin SC 10000 units"),
    ("employer", "blood group A positive; support group at church"),
    ("date", "BP 120/80 1400"),
    ("date", "lot ABC-05-2021"),
    ("email", "meet at noon"),
    ("phone", "take 555 mg"),
    ("zip", "room 02139"),  # five digits with no address context
    ("mrn", "MRN pending"),
    ("mrn", "mRNA-1273 vaccine"),
    ("name", "the patient. He reports"),
    ("email", "user@localhost"),
    ("phone", "5550100142"),  # no separators: too many other numbers look like this
    ("url", "example.com"),
]


@pytest.mark.parametrize(("entity", "text"), NEGATIVE)
def test_lookalikes_are_not_that_entity(entity: str, text: str) -> None:
    assert entity not in [e for e, _ in found(text)]


def test_every_built_in_entity_has_positive_examples() -> None:
    assert {entity for entity, _, _ in POSITIVE} == BUILTIN_ENTITIES


# --- the demo server's data --------------------------------------------------------------


def test_the_demo_ssns_are_ssns_only_with_test_areas() -> None:
    assert ("ssn", "900-12-3456") in found("SSN 900-12-3456", TEST_AREAS)
    assert "ssn" not in [e for e, _ in found("SSN 900-12-3456")]


@pytest.mark.parametrize("patient", fake_patients().values(), ids=lambda p: p.patient_id)
def test_every_identifier_of_every_demo_patient_is_found(patient: PatientRecord) -> None:
    record = patient.model_dump()
    text = " ; ".join(f"{key}: {value}" for key, value in record.items())
    values = {value for _, value in found(text, TEST_AREAS)}
    assert record["ssn"] in values
    assert record["phone"] in values
    assert record["email"] in values
    assert record["mrn"] in values
    assert record["date_of_birth"] in values
    # The address line as its parts: street, city and ZIP, the state left to read.
    street, city, state_zip = record["address"].split(", ")
    assert {street, city, state_zip.split()[1]} <= values
    # The note repeats the phone and the date of birth in prose.
    note = record["clinical_note"]
    assert {(e, x) for e, x in found(note, TEST_AREAS)} >= {
        ("phone", record["phone"]),
        ("date", record["date_of_birth"]),
    }


# --- overlaps ----------------------------------------------------------------------------


def test_a_tie_goes_to_the_more_specific_entity() -> None:
    assert found("Fax (555) 010-0142") == [("fax", "(555) 010-0142")]  # not "phone"


def test_the_longest_candidate_wins() -> None:
    text = "seen 03/04/2024"  # "3/04" (a month and a day) lies inside the whole date
    assert found(text) == [("date", "03/04/2024")]


def test_an_address_line_is_its_parts() -> None:
    # The state stays: Safe Harbor keeps it, and the client can still read the place.
    assert found("12 Imaginary Lane, Springfield, MA 00001-1234") == [
        ("street_address", "12 Imaginary Lane"),
        ("city", "Springfield"),
        ("zip", "00001-1234"),
    ]


def test_a_loser_reaching_past_the_winner_widens_it() -> None:
    # "Robert March" (after the title) overlaps the longer "March 5, 2024": the date wins,
    # and takes the first name with it rather than leave half a name in the clear.
    assert found("Dr. Robert March 5, 2024") == [("date", "Robert March 5, 2024")]


def test_operators_patterns_lose_ties_to_validated_identifiers_but_win_over_zip() -> None:
    scanner = Scanner(ScannerSpec(custom=(PatternSpec("account", r"[0-9]{3}-[0-9]{2}-[0-9]{4}"),)))
    assert found("078-05-1120", scanner) == [("ssn", "078-05-1120")]
    assert found("078-05-1120 but 000-05-1120", scanner)[1] == ("account", "000-05-1120")
    zip_too = Scanner(ScannerSpec(custom=(PatternSpec("plan", r"[0-9]{5}"),)))
    assert found("zip 02139", zip_too) == [("plan", "02139")]


def test_a_rejected_candidate_leaves_room_for_one_inside_it() -> None:
    # Card-shaped digit runs that fail Luhn are dropped, and the scan goes on inside them.
    assert found("1234 5678 9012 3456 555-010-0142") == [("phone", "555-010-0142")]
    assert found("9999999999999999 1234567893") == [("npi", "1234567893")]


def test_findings_are_sorted_and_disjoint_in_a_dense_text() -> None:
    text = " ".join(f"{p.clinical_note} {p.ssn} {p.email}" for p in fake_patients().values())
    findings = TEST_AREAS.scan(text)
    assert findings == sorted(findings, key=lambda f: f.start)
    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))


# --- operators' patterns and word lists ---------------------------------------------------


def test_custom_patterns_find_operators_formats() -> None:
    scanner = Scanner(
        ScannerSpec(
            custom=(
                PatternSpec("health_plan", r"HP-[0-9]{8}"),
                PatternSpec("licence", r"(?i)licen[cs]e\s*#?\s*(?P<v>[A-Z][0-9]{6})"),
                PatternSpec("device_id", r"SN:[A-F0-9]{10}"),
            )
        )
    )
    text = "plan HP-12345678, LICENSE # D123456, pump SN:0A1B2C3D4E"
    assert found(text, scanner) == [
        ("health_plan", "HP-12345678"),
        ("licence", "D123456"),  # the group `v` is what gets masked
        ("device_id", "SN:0A1B2C3D4E"),
    ]


def test_word_lists_match_whole_words_case_insensitively() -> None:
    scanner = Scanner(ScannerSpec(words={"name": ("Alvarez", "Mary  Ann", "#vip")}))
    assert found("ALVAREZ and alvarez, not Alvarezes; mary ann; a #vip", scanner) == [
        ("name", "ALVAREZ"),
        ("name", "alvarez"),
        ("name", "mary ann"),
        ("name", "#vip"),
    ]
    assert found("x#vip", scanner) == []


def test_built_in_detectors_can_be_chosen() -> None:
    only_email = Scanner(ScannerSpec(builtin=frozenset({"email"})))
    assert found("a@example.com 078-05-1120", only_email) == [("email", "a@example.com")]
    nothing = Scanner(ScannerSpec(builtin=frozenset()))
    assert found("a@example.com 078-05-1120", nothing) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ScannerSpec(custom=(PatternSpec("plan_id", "HP-[0-9"),)), "entity 'plan_id'"),
        (ScannerSpec(custom=(PatternSpec("plan_id", r"(\d)\1"),)), "backreferences"),
        # its group number would point at another detector's group in the combined regex
        (ScannerSpec(custom=(PatternSpec("plan_id", r"(x)?(?(1)y|z)"),)), "conditional"),
        (ScannerSpec(custom=(PatternSpec("plan_id", r"[0-9]*"),)), "empty string"),
        (ScannerSpec(custom=(PatternSpec("Plan ID", "x"),)), "entity must match"),
        (
            ScannerSpec(custom=(PatternSpec("a", "(?P<id>x)"), PatternSpec("b", "(?P<id>y)"))),
            "conflict",
        ),
        (ScannerSpec(words={"name": "Alvarez"}), "not a string"),  # type: ignore[dict-item]
        (ScannerSpec(words={"name": ("Alvarez", " ")}), "empty word"),
        (ScannerSpec(builtin=frozenset({"ssn", "dna"})), "unknown built-in detectors: dna"),
    ],
)
def test_bad_configuration_is_refused_with_a_message_naming_it(
    spec: ScannerSpec, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Scanner(spec)


# --- properties --------------------------------------------------------------------------

# Text made of the characters identifiers are made of, so candidates are frequent.
DENSE = st.text(alphabet="0123456789-./:()+@ ,#\nSNMRaxgeDr", max_size=200)
# Words the branches and their validators read, in any order: labels, months, ordinals,
# numbers of every shape (a validator once met "the" where it looked for a month).
WORDY = st.lists(
    st.sampled_from(
        [
            "the",
            "of",
            "on",
            "by",
            "5th",
            "31st",
            "December",
            "Mar",
            "May",
            "10/22",
            "2/30",
            "MRN",
            "SSN",
            "DEA",
            "PR5853329",
            "RR",
            "Box",
            "12",
            "user=",
            "usr=",
            "@",
            "Dr.",
            "Ada",
            "Okafor,",
            "MD",
            "PA-C",
            "lives",
            "in",
            "Boston,",
            "MA",
            "02134",
            "(555)",
            "010-0101",
            "ext.",
            "9",
            "County",
            "Road",
            "PO",
            "BOX",
            "age",
            "92",
            "95",
            "year",
            "old",
            "y/o",
            "born",
            "DOB:",
            "19500304",
            "19501332",
            "[03:53]",
            "vangp:",
            "Acct#",
            "4455-778",
            "Member",
            "ID:",
            "XKQ1234",
            "plate",
            "NQY",
            "730",
            "serial",
            "SN-88812",
            "ZIP",
            ",",
            ".",
            ";",
            "-",
            "3785553442",
            "1700000000",
            "fax",
            "Phone:",
            "employer",
            "Works",
            "at",
            "Hall,",
            "Hayden",
            "and",
            "LLC",
        ]
    ),
    max_size=40,
).map(" ".join)
SCANNERS = [
    TEST_AREAS,
    Scanner(
        ScannerSpec(
            custom=(
                PatternSpec("mrn", r"MRN-[0-9]{6}"),
                PatternSpec("plan", r"(?=[0-9])\d*"),
                PatternSpec("nothing", r"(?=S)"),  # matches, but only the empty string
            ),
            words={"name": ("Dr", "ann", "#x")},
        )
    ),
]


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=200), DENSE, WORDY), which=st.sampled_from([0, 1]))
def test_scan_never_raises_and_returns_sorted_disjoint_spans(text: str, which: int) -> None:
    findings = SCANNERS[which].scan(text)
    assert all(isinstance(f, Finding) and 0 <= f.start < f.end <= len(text) for f in findings)
    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))


@pytest.mark.parametrize(
    "text",
    ["a." * 20000, "mrn-" * 10000, "fax" + " " * 40000, "1 " * 20000, "a:" * 20000, "+1 " * 13000],
    ids=["dots", "mrn", "spaces", "numbers", "colons", "plus"],
)
def test_hostile_text_takes_linear_time(text: str) -> None:
    started = time.perf_counter()
    SCANNER.scan(text)
    assert time.perf_counter() - started < 1.0  # quadratic would be tens of seconds
