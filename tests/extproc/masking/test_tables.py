"""Tables, key-value lines and JSON Lines in text: PHI by the key or header that heads it."""

from __future__ import annotations

import json

from extproc.masking import Masker, MaskingConfig, MaskReport


def masked(text: str, config: MaskingConfig | None = None) -> str:
    body = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}}
    out = Masker(config or MaskingConfig()).mask_body(json.dumps(body).encode(), MaskReport())
    return json.loads(out)["result"]["content"][0]["text"]


def test_a_markdown_column_is_masked_by_its_header() -> None:
    table = (
        "| Patient Name | MRN | Attending | Zip Code | Age | Last A1c |\n"
        "|---|---|---|---|---|---|\n"
        "| Quorrin Tavelle | 1165506 | Dr. Brixa Omundel, MD | 71857 | 100 | 7.2% |\n"
        "| Velmora Chastaine | 22-71-9 | Okeke, Uche PhD | 01945 | 45 | 6.1% |\n"
    )
    rows = masked(table).splitlines()[2:]
    assert rows == [
        "| [NAME] | [MRN] | Dr. [NAME], MD | [ZIP] | [AGE_OVER_89] | 7.2% |",
        "| [NAME] | [MRN] | [NAME] PhD | [ZIP] | 45 | 6.1% |",
    ]


def test_a_csv_column_is_masked_by_its_header() -> None:
    csv = 'Name,Member ID,DOB,Dx\n"Tavelle, Quorrin",XKQ1234,19310217,asthma\n'
    assert masked(csv).splitlines()[1] == '"[NAME]",[HEALTH_PLAN],[DATE],asthma'


def test_an_exports_key_and_value_without_spaces_around_the_pipe_or_after_a_tab() -> None:
    record = "PT_ACCT|A39791634\nPT_MRN|1832327029\nDL_NUM\tI09706301\nPT_SEX|M\n"
    assert masked(record) == "PT_ACCT|[ACCOUNT]\nPT_MRN|[MRN]\nDL_NUM\t[LICENSE]\nPT_SEX|M\n"


def test_a_column_headed_by_its_person_holds_names() -> None:
    table = "| Patient | Dx |\n|---|---|\n| Shoxovyck, Yulliarn | asthma |\n"
    assert masked(table).splitlines()[2] == "| [NAME] | asthma |"
    assert masked("Pt,Dx\nQuorrin Tavelle,CHF\n").splitlines()[1] == "[NAME],CHF"
    # "Name" beside an age is a person's
    table = "| Name | Age |\n|---|---|\n| Shoxovyck, Yulliarn | 70 |\n"
    assert masked(table).splitlines()[2] == "| [NAME] | 70 |"


def test_key_value_lines_are_masked_by_their_keys() -> None:
    dump = "\n".join(
        [
            "PAT_DOB | 19450411",
            "DL_NUM | M914-9455-6223",
            "GUAR_EMPLOYER = Sawtooth Textile Mills",
            "city: Muskogee, OK",
            "Emergency contact: Brixa Omundel (husband), 555-010-0199",
            "Fax: 555-010-0101 - records sent",
            "Plan: continue lisinopril 10 mg daily",
        ]
    )
    assert masked(dump).splitlines() == [
        "PAT_DOB | [DATE]",
        "DL_NUM | [LICENSE]",
        "GUAR_EMPLOYER = [EMPLOYER]",
        "city: [CITY], OK",
        "Emergency contact: [NAME] (husband), [PHONE]",
        "Fax: [FAX] - records sent",
        "Plan: continue lisinopril 10 mg daily",
    ]


def test_json_lines_are_walked_as_json_line_by_line() -> None:
    lines = "\n".join(
        json.dumps(row)
        for row in (
            {"ptIdNbr": "79648534", "insurance_member": "69464311022A", "note": "stable"},
            {"ptIdNbr": "11223344", "memberNbr": "W351658927", "note": "ok"},
        )
    )
    out = [json.loads(line) for line in masked(lines).splitlines()]
    assert out == [
        {"ptIdNbr": "[MRN]", "insurance_member": "[HEALTH_PLAN]", "note": "stable"},
        {"ptIdNbr": "[MRN]", "memberNbr": "[HEALTH_PLAN]", "note": "ok"},
    ]


def test_text_that_only_looks_laid_out_is_left_alone() -> None:
    prose = "Assessment: stable, improving.\nDose: 10 mg, daily.\nT 100.0 F | P 124 | BP 163/52"
    assert masked(prose) == prose


def test_a_table_with_old_line_endings_is_read_too() -> None:
    csv = 'Name,Member ID,DOB\r"Tavelle, Quorrin",XKQ1234,19310217\r'
    assert masked(csv).split("\r")[1] == '"[NAME]",[HEALTH_PLAN],[DATE]'


def test_json_cut_short_is_masked_by_its_keys() -> None:
    # Servers cut long outputs: the text is no longer JSON, its keys still say what is PHI.
    cut = (
        '{"patients": [{"first_name": "Xzavian", "lastName": "Qorvath", "mrn": "48213377",'
        ' "acct": 5512, "postal_code": "62704", "city": "Springfield", "age": 45,'
        ' "note": "stable"}, {"first_name": "Bo'
    )
    out = masked(cut)
    for phi in ("Xzavian", "Qorvath", "48213377", "5512", "62704", "Springfield", '"Bo'):
        assert phi not in out
    assert '"age": 45' in out and '"note": "stable"' in out  # no PHI under those keys
    assert out.startswith('{"patients": [{"first_name": "[NAME]"')


def test_a_name_key_in_cut_json_is_a_persons_only_beside_one() -> None:
    product = masked('{"name": "Lisinopril 10 mg", "form": "tablet", "count": 3')
    assert "Lisinopril" in product
    person = masked('{"name": "Qorvath Xzavian", "dob": "1931-03-04", "count": 3')
    assert "Qorvath" not in person


def test_operators_field_rules_apply_in_cut_json_too() -> None:
    config = MaskingConfig.model_validate(
        {"builtin_keys": False, "fields": [{"path": "chart_ref", "entity": "mrn"}]}
    )
    out = masked('{"chart_ref": "zq-771-kp", "first_name": "Xzavian", "note": "o', config)
    assert out == '{"chart_ref": "[MRN]", "first_name": "Xzavian", "note": "o'
