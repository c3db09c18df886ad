"""DICOM headers in text, read by tag: dcmdump's and pydicom's layouts."""

from __future__ import annotations

from extproc.masking.dicom import find, looks_like_dicom

DCMDUMP = """# Dicom-Data-Set
(0008,0020) DA [20240312]                               #   8, 1 StudyDate
(0008,0050) SH [ACC20240312-0042]                       #  16, 1 AccessionNumber
(0008,0060) CS [CR]                                     #   2, 1 Modality
(0008,0090) PN [OKAFOR^ADA^B^DR]                        #  16, 1 ReferringPhysicianName
(0010,0010) PN [DOE^JANE^Q]                             #  10, 1 PatientName
(0010,0020) LO [E12-449021]                             #  10, 1 PatientID
(0010,0040) CS [F]                                      #   2, 1 PatientSex
(0010,1010) AS [092Y]                                   #   4, 1 PatientAge
(0018,1000) LO [SN-88A1204]                             #  10, 1 DeviceSerialNumber
(0018,5101) CS [PA]                                     #   2, 1 ViewPosition
"""

PYDICOM = """(0010, 0010) Patient's Name                      PN: 'Ramirez^Lupe'
(0010, 0020) Patient ID                          LO: '44120987'
(0010, 1010) Patient's Age                       AS: '042Y'
(0010, 2154) Patient's Telephone Numbers         SH: '555-010-2202'"""


def values(text: str) -> dict[str, str]:
    return {text[f.start : f.end]: f.entity for f in find(text)}


def test_a_dcmdump_header_s_phi_is_found_by_tag() -> None:
    assert looks_like_dicom(DCMDUMP)
    assert values(DCMDUMP) == {
        "20240312": "date",
        "ACC20240312-0042": "account",
        "OKAFOR": "name",
        "ADA": "name",
        "B": "name",
        "DOE": "name",
        "JANE": "name",
        "Q": "name",
        "E12-449021": "mrn",
        "092Y": "age_over_89",
        "SN-88A1204": "device",
    }


def test_pydicom_s_layout_and_an_age_under_90() -> None:
    assert values(PYDICOM) == {
        "Ramirez": "name",
        "Lupe": "name",
        "44120987": "mrn",
        "555-010-2202": "phone",
    }


def test_other_layouts_and_a_role_that_is_no_name() -> None:
    text = (
        "(0010,0010) PN 1 DOE^JANE\n00100020 LO E12-449021  # PatientID\n"
        "(0010,2297) PN [ROE^RICHARD]\n(0010,2298) CS [MOTHER]\n"
    )
    assert values(text) == {
        "DOE": "name",
        "JANE": "name",
        "E12-449021": "mrn",
        "ROE": "name",
        "RICHARD": "name",
    }


def test_text_without_tags_is_not_dicom() -> None:
    assert not looks_like_dicom("see (0010) and [PA] view")
