"""People's names in free text: by dictionary, by where they stand, and found once then
masked everywhere in the answer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extproc.masking import Masker, MaskingConfig, MaskReport
from extproc.masking.names import _LOWER_AFTER, NameFinder, _after_greetings, dictionaries


@pytest.fixture(scope="module")
def finder() -> NameFinder:
    return NameFinder(dictionaries())


def names(finder: NameFinder, text: str) -> list[str]:
    return [text[f.start : f.end] for f in finder.find(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # invented names, in no dictionary: found by where they stand
        ("Electronically signed by Xzavian G. Tavares, M.D. on 3/4/2024", ["Xzavian G. Tavares"]),
        # a credential with dots is no middle initial
        ("Electronically signed by Boone, Brittany M.D. on 7/12/2021", ["Boone, Brittany"]),
        ("PCP: Bertrand, Philippe D.O.", ["Bertrand, Philippe"]),
        # a record system's "LAST,FIRST": in no dictionary, or after a particle
        ("Account E20609: BROLVIARN,CHYLAELLE, admitted", ["BROLVIARN,CHYLAELLE"]),
        ("Lives with his niece DA MATA,CHRISTINA.", ["DA MATA,CHRISTINA"]),
        ("Seen by Quorrin Tavelle today.", ["Quorrin Tavelle"]),
        ("Attending: Zorblat Quenny", ["Zorblat Quenny"]),
        ("Brixa Omundel, RN, gave the dose.", ["Brixa Omundel"]),
        ("Dear Yurvenka,\nThank you for", ["Yurvenka"]),
        ("Patient: Velmora Chastaine-Obi", ["Velmora Chastaine-Obi"]),
        ("Quorrin Xadeo Plimbert PA-C", ["Quorrin Xadeo Plimbert"]),
        ("Patient: Alice Fakenham", ["Alice Fakenham"]),
        ("Pt. Quorrin Q. Plimbert", ["Quorrin Q. Plimbert"]),
        ("patient Zhyvath Shytoshalle was seen", ["Zhyvath Shytoshalle"]),
        ("results for Zhyvath Shytoshalle (MRN 8141932372)", ["Zhyvath Shytoshalle"]),
        # dictionary names, anywhere
        ("Villegas, Yosef presented with chest pain.", ["Villegas, Yosef"]),
        ("REGISTRATION: OROZCO,KYLE", ["OROZCO,KYLE"]),
        ("Kyle reports less pain today.", ["Kyle"]),
        ("Maria del Carmen Lopez Garcia came with her son.", ["Maria del Carmen Lopez Garcia"]),
        ("Wang Fang and Nguyen Van An were called.", ["Wang Fang", "Nguyen Van An"]),
        ("Ma Lin and Do Thi Hoa came in.", ["Ma Lin", "Do Thi Hoa"]),
        ("Her husband Pruha drove her in.", ["Pruha"]),
        ("CT abdomen for Nokaith Hajek, DOB 02-06-2003: no acute process.", ["Nokaith Hajek"]),
        ("Re: SKADREN JOKWAIWOTH - Rx clarification", ["SKADREN JOKWAIWOTH"]),
        ("NOK KWUPOTIR MASKO (BROTHER) 438-555-5089", ["KWUPOTIR MASKO"]),
        ("fyi isabelle from wound care is coming at 2", ["isabelle"]),
        ("yes until GI sees her. nader (son) keeps calling", ["nader"]),
        ("Hi sylvia! Reminder: your appt", ["sylvia"]),
        ("Left VM for Hope Little at the clinic.", ["Hope Little"]),
        ("Thank you for seeing Ms. da Luz, a 17-yo girl", ["da Luz"]),
        ("cc: Alberto de la Garza, LCSW; Physical Therapy", ["Alberto de la Garza"]),
        ("Note by Trarinne Nerrys, DO, MPH", ["Trarinne Nerrys"]),
        ("Pt's dtr Briella at bedside. Spoke w/ Ikaika.", ["Briella", "Ikaika"]),
        ("Sincerely,\nYosef Villegas, RN", ["Yosef Villegas"]),
        ("Dear Ms. Abernathy-Okafor,", ["Abernathy-Okafor"]),
        ("Oluwaseun Adebayo was admitted.", ["Oluwaseun Adebayo"]),
        ("Then Quennaby Ostrowel reports dizziness.", ["Quennaby Ostrowel"]),
        ("Plimbert's daughter drove her in.", ["Plimbert"]),
        ("Priya Raghunathan, MD", ["Priya Raghunathan"]),
        ("I saw the patient with the resident, Tontyck Fonethes, and agree", ["Tontyck Fonethes"]),
        ("This is Sandythiorn - Nidra's sister.", ["Sandythiorn", "Nidra"]),
        ("Hi, my name is Qorvath and I", ["Qorvath"]),
        ("Daily Progress Note - BENDINNE, XZOBRO - 06/07/2020", ["BENDINNE, XZOBRO"]),
        ("SHYTHIAND,TASHOVAEND | MRN E30272062 | DOB 02/17/1994", ["SHYTHIAND,TASHOVAEND"]),
        ("Signed: JohnSmith", ["JohnSmith"]),  # run together, still a name
        ("pt tolerated well; husband john updated in waiting room", ["john"]),
        ("SOAP Note - KING,AMY - 15-Nov-2023", ["KING,AMY"]),  # names that are words too
        # scripts without capitals: by the dictionaries' names in them
        ("Patient 곽현주 (MRN E58537614) was seen", ["곽현주"]),
        ("asking about my husband नंद साहा, born 10/2/1991", ["नंद साहा"]),
        ("李明 was admitted", ["李明"]),
        # placed by what is said of them
        ("Flagged by S. Nydritte for outreach", ["S. Nydritte"]),
        ("V. Cedrasorn (niece) at bedside", ["V. Cedrasorn"]),
        ("Zindiond Shymiath logged in to the portal", ["Zindiond Shymiath"]),
        ("[7:02 PM] Oyelaran, Funmilayo (Hospitalist)", ["Oyelaran, Funmilayo"]),
        ("Seen by Dr. MacArthur today.", ["MacArthur"]),
    ],
)
def test_names_are_found(finder: NameFinder, text: str, expected: list[str]) -> None:
    assert names(finder, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Impression: Normal Exam. Record reviewed.",
        "HISTORY OF PRESENT ILLNESS: a 67 year old with Obesity and Rhythm issues.",
        "Plan: continue Lisinopril 10 mg daily, Metformin 500 mg BID, Atorvastatin 40 mg.",
        "Patient has Parkinson's disease and a Foley catheter in place.",
        "History of Crohn's disease; Hodgkin lymphoma in 2004; Bell's palsy resolved.",
        "Glasgow Coma Scale 15. Apgar score 9.",
        "ED visit for CHF exacerbation; transferred to the ICU.",
        "Follow up in March. Seen in May and June.",
        "Assessment and Plan: Hypertension, Type 2 Diabetes Mellitus.",
        "Will follow up. Hope to discharge tomorrow.",
        "Heparin was discontinued; Metoprolol Tartrate was started.",
        "Na 134; K 3.2; Mg 2.0",
        "hx Gleason 3+4=7 (Grade Group 2); hx Morse fall scale 45.",
        "EBL 25 mL. Foley removed in PACU.",
        "hi team, per protocol, called pharmacy; thanks, will call later",
        "Troponin 55 ng/L. No Kernig or Brudzinski sign.",
        "(0018,5101) CS [PA]  # ViewPosition",  # a keyword of English words
        "see the MAY,JUNE schedule; Labs: CBC,BMP pending",
        "DX: CHOLECYSTITIS,CHOLANGITIS; MEDS: LISINOPRIL,ATORVASTATIN",
        "患者は元気です。 रोगी को बुखार है।",  # prose in scripts without capitals
        "Denver shunt patent. Doppler ultrasound negative. Pap smear NILM.",
        "Falls risk: Morse 55. Braden: 16. Wells 4. Bruce protocol; Baker's cyst noted.",
        "PMH: Parkinson's, HTN, Raynaud's; hx Graves'.",  # diseases by their possessive
        "West Nile virus; Rocky Mountain spotted fever; Roth spots; Austin Flint murmur",
        "GP practice, Provider No. 365606ED",  # a label's words of the grammar
        # everyday words that are also surnames, where a heading or a line opens
        "## Ward handover - 01/11/2023",
        "pN0(sn).\nGROSS: Received fresh, labeled.",
    ],
)
def test_clinical_words_are_no_names(finder: NameFinder, text: str) -> None:
    assert names(finder, text) == []


def masked_text(text: str) -> str:
    body = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}}
    out = Masker(MaskingConfig()).mask_body(json.dumps(body).encode(), MaskReport())
    return json.loads(out)["result"]["content"][0]["text"]


def test_a_name_found_once_is_masked_everywhere_in_the_answer() -> None:
    # "Tavelle" alone is in no dictionary and stands nowhere a name stands: only its first
    # appearance, after "Patient:", says it is a name.
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {
            "content": [
                {"type": "text", "text": "Patient: Quorrin Tavelle"},
                {"type": "text", "text": "tavelle QUORRIN called; Tavelle reports no pain."},
            ]
        },
    }
    out = Masker(MaskingConfig()).mask_body(json.dumps(body).encode(), MaskReport())
    texts = [c["text"] for c in json.loads(out)["result"]["content"]]
    assert texts == ["Patient: [NAME]", "[NAME] [NAME] called; [NAME] reports no pain."]


def test_a_signature_keeps_the_clinical_text_around_it() -> None:
    text = "Impression: No acute findings.\n\nXzavian G. Tavares, M.D.\nXGT:holmes"
    assert masked_text(text) == "Impression: No acute findings.\n\n[NAME], M.D.\n[USERNAME]"


def test_names_can_be_turned_off_with_the_detectors() -> None:
    config = MaskingConfig(detectors=frozenset({"ssn"}))
    body = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "Kyle"}]}}
    out = Masker(config).mask_body(json.dumps(body).encode(), MaskReport())
    assert json.loads(out)["result"]["content"][0]["text"] == "Kyle"


def test_a_name_that_is_a_common_word_is_not_masked_as_that_word() -> None:
    text = "Patient: Will Bell. Plan: will restart heparin; Bell reports pain."
    assert masked_text(text) == "Patient: [NAME]. Plan: will restart heparin; [NAME] reports pain."


GREETING_WORDS = ["hi", "Hey", "THANKS", "thank you", "per", "called", "cc", "spoke w/"]
GREETING_WORDS += ["hey is", "dr", "Dr.", "this is"]
GREETING_TEXT = st.lists(
    st.sampled_from([*GREETING_WORDS, "sylvia", "ana", "de", ",", " ", "\t", "x", "é", "\u212a"]),
    max_size=30,
).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(GREETING_TEXT, st.text(max_size=80)))
def test_lowercase_names_after_greetings_are_found_as_the_regex_alone_finds_them(
    text: str,
) -> None:
    # The reference: the regex tried at every position, greetings inside others' matches
    # too ("hi dr vyxmembwylt").
    spans = [m.span() for m in _after_greetings(text)]
    everywhere = (_LOWER_AFTER.match(text, at) for at in range(len(text)))
    assert spans == [m.span() for m in everywhere if m is not None]


def test_a_known_name_takes_the_unknown_parts_beside_it() -> None:
    # Only the surname is a marked value; the given name is in no dictionary, and the
    # words beside the name are left as they are.
    record = {"last_name": "Tomioke", "guardian_last_name": "Shelviol"}
    note = (
        "Stavolle Tomioke was admitted. Canaeck, Shelviol (daughter) at bedside. "
        "Follow-up with Dr. Tomioke at the clinic; T. Tomioke, M.D. signed."
    )
    result = {"structuredContent": {"record": record, "note": note}}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}).encode()
    out = json.loads(Masker(MaskingConfig()).mask_body(body, MaskReport()))
    assert out["result"]["structuredContent"]["note"] == (
        "[NAME] was admitted. [NAME] (daughter) at bedside. "
        "Follow-up with Dr. [NAME] at the clinic; [NAME], M.D. signed."
    )
