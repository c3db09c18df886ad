"""Grids in text (CSV with no header row, tables whose header says nothing, lists of one
item a line): a column is one kind of value, so what most of its cells were found to be
says what the others are."""

from __future__ import annotations

import json

from extproc.masking import Masker, MaskingConfig, MaskReport


def masked(text: str) -> str:
    body = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}}
    out = Masker(MaskingConfig()).mask_body(json.dumps(body).encode(), MaskReport())
    return json.loads(out)["result"]["content"][0]["text"]


def test_a_column_of_names_with_no_header_masks_the_names_no_dictionary_knows() -> None:
    # Most cells of the first column are names the detectors know: the others that could be
    # a name stand where names stand (CSV with no header row, tab-separated, a table).
    rows = [("Quorrin Tavelle", "asthma"), ("Ada Okafor", "CHF"), ("Maria Lopez", "HTN")]
    csv = "\n".join(f"{who},1950-01-02,{dx}" for who, dx in rows)
    assert masked(csv).splitlines() == [f"[NAME],[DATE],{dx}" for _, dx in rows]
    tsv = "\n".join(f'"{who}"\t{dx}' for who, dx in rows)
    assert masked(tsv).splitlines() == [f'"[NAME]"\t{dx}' for _, dx in rows]
    table = "\n".join(f"| {who} | {dx} |" for who, dx in rows)
    assert masked(table).splitlines() == [f"| [NAME] | {dx} |" for _, dx in rows]


def test_a_list_of_names_one_a_line_masks_the_names_no_dictionary_knows() -> None:
    attendees = "Attendees:\n- Quevarro Blintz\n- Ada Okafor\n- John Smith\n- Zyxqa Wuvtor\n"
    assert masked(attendees) == "Attendees:\n- [NAME]\n- [NAME]\n- [NAME]\n- [NAME]\n"
    problems = "Assessment:\nHypertension\nParkinson disease\nAtorvastatin\nWarfarin\n"
    assert masked(problems) == problems


def test_a_column_that_is_not_of_names_stays() -> None:
    # Diagnoses (one an eponym), and prose cut by commas: most cells are no names.
    rows = ["Crohn,2019", "Asthma,2020", "Gout,2021", "Sciatica,2022"]
    assert masked("\n".join(rows)) == "\n".join(rows)
    prose = "Seen today, doing well\nPlan reviewed, no changes\nFollow up, Tuesday"
    assert masked(prose) == prose


def test_a_grid_of_people_masks_their_numbers_streets_and_cities() -> None:
    # No header: the names and two streets are found; the rest by their columns.
    rows = [
        '30894705,"Quevarro Blintz",1950-01-02,125 chemin de la Paix,Perpignan,03187,COPD',
        '57399903,"Ada Okafor",1961-03-04,42 Oak Street,Angers,14793,Hypertension',
        '07585408,"John Smith",1970-05-06,78 bis chemin des Lilas,Rennes,60606,CHF',
        '48896690,"Zyxqa Wuvtor",1980-07-08,19 Elm Avenue,Fresno,90362-1268,Asthma',
    ]
    expected = '[MRN],"[NAME]",[DATE],[STREET_ADDRESS],[CITY],[ZIP],'
    dx = ["COPD", "Hypertension", "CHF", "Asthma"]
    assert masked("\n".join(rows)).splitlines() == [expected + d for d in dx]


def test_a_grid_without_people_keeps_its_numbers() -> None:
    rows = ["Metformin,500,20451,oral", "Lisinopril,10,30122,oral", "Warfarin,5,40988,oral"]
    assert masked("\n".join(rows)) == "\n".join(rows)


def test_a_column_of_clinicians_with_credentials_stays_names_beside_a_zip() -> None:
    # Names found in part (their credentials outside) are no city column before the ZIP.
    table = (
        "| Patient | PCP | ZIP |\n|---|---|---|\n"
        "| Collins, Lisa | Vasquez, Shane MD | 62231 |\n"
        "| RUIZ,CANDICE | Vilanova, Maura NP | 82334 |\n"
        "| Ian Pratt | Maria Laura Aragão, PharmD | 29094 |\n"
    )
    assert masked(table).splitlines()[2:] == [
        "| [NAME] | [NAME] MD | [ZIP] |",
        "| [NAME] | [NAME] NP | [ZIP] |",
        "| [NAME] | [NAME], PharmD | [ZIP] |",
    ]


def test_a_city_beside_a_zip_found_by_its_column_and_a_four_digit_postcode_after_it() -> None:
    rows = [
        '30894705,"Quevarro Blintz",12 Oak Street,Fresno,90362,COPD',
        '57399903,"Ada Okafor",42 Oak Street,Wollongong,2857,Hypertension',
        '07585408,"John Smith",7 Elm Road,Macon,60606,CHF',
    ]
    expected = '[MRN],"[NAME]",[STREET_ADDRESS],[CITY],[ZIP],'
    assert masked("\n".join(rows)).splitlines() == [
        expected + dx for dx in ("COPD", "Hypertension", "CHF")
    ]


def test_a_line_of_labelled_names_in_a_list_keeps_its_labels() -> None:
    attendees = "Malhotra\nAntwi\nConsultant: Masterson   Anaesthetist: Huyoss Phyck\n"
    assert masked(attendees) == "[NAME]\n[NAME]\nConsultant: [NAME]   Anaesthetist: [NAME]\n"


def test_a_name_does_not_run_into_the_next_cell_of_a_csv_row() -> None:
    rows = "Dr Quevarro Smith,Endocrinology,F/U\nDr Ada Okafor,Gastroenterology,POST-OP\n"
    assert masked(rows) == "Dr [NAME],Endocrinology,F/U\nDr [NAME],Gastroenterology,POST-OP\n"
