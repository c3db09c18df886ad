"""HL7 v2 messages in text: PHI by field position, the message's shape kept."""

from __future__ import annotations

import json

from extproc.masking import Masker, MaskingConfig, MaskReport

MESSAGE = "\r".join(
    [
        "MSH|^~\\&|EPIC|MERCY|LAB|MERCY|20240304123000||ADT^A01|MSG00001|P|2.5.1",
        "EVN|A01|20240304123000",
        "PID|1||21804440^^^MERCY^MR||Quorrin^Tavelle^J||19310217|F|||77 Harbor Lane^^Marblehead"
        "^MA^01945||(555)010-0101|||||ACCT7781|123456789",
        "NK1|1|Quorrin^Brixa|DAU|12 Elm St^^Salem^MA^01970|(555)010-0144",
        "PV1|1|I|4W^401^A|||||1234567893^Tavares^Xzavian^G^^Dr|||MED||||||||V123456",
        "OBX|1|NM|2345-7^Glucose^LN||98|mg/dL|70-99|N|||F",
    ]
)


def masked(text: str) -> str:
    body = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}}
    out = Masker(MaskingConfig()).mask_body(json.dumps(body).encode(), MaskReport())
    return json.loads(out)["result"]["content"][0]["text"]


def test_the_fields_that_hold_phi_are_masked_and_the_segments_keep_their_shape() -> None:
    segments = masked(MESSAGE).split("\r")
    assert [s.count("|") for s in segments] == [s.count("|") for s in MESSAGE.split("\r")]
    pid = segments[2].split("|")
    assert pid[3] == "[MRN]^^^MERCY^MR"
    assert pid[5] == "[NAME]^[NAME]^[NAME]"
    assert pid[7] == "[DATE]"
    assert pid[8] == "F"  # sex is no identifier
    assert pid[11] == "[STREET_ADDRESS]^^[CITY]^MA^[ZIP]"
    assert "555" not in pid[13] and pid[18] == "[ACCOUNT]" and pid[19] == "[SSN]"
    nk1 = segments[3].split("|")
    assert nk1[2] == "[NAME]^[NAME]" and nk1[3] == "DAU"
    pv1 = segments[4].split("|")
    assert "Tavares" not in pv1[7] and "Xzavian" not in pv1[7]
    assert pv1[19] == "[ACCOUNT]"
    assert segments[5] == MESSAGE.split("\r")[5]  # a lab result: nothing of a person


def test_a_name_from_pid_is_masked_in_the_note_that_follows() -> None:
    text = MESSAGE + "\r\nNote: Tavelle Quorrin tolerated the procedure; Brixa at bedside."
    note = masked(text).split("\n")[-1]
    assert "Tavelle" not in note and "Quorrin" not in note and "Brixa" not in note
    assert "tolerated the procedure" in note


def test_a_message_inside_prose_and_lone_segments_are_read() -> None:
    quoted = (
        "Message: MSH|^~\\&|A|B|C|D|20240304||ADT^A01|1|P|2.5.1\rPID|1||48213^^^M^MR||Wuvtor^Zyxqa"
    )
    assert "48213" not in masked(quoted) and "Wuvtor" not in masked(quoted)
    prose = "MSH segment omitted here.\nPID|1||48213^^^M^MR||Wuvtor^Zyxqa"
    assert "48213" not in masked(prose)
    alone = "NK1|1|Wuvtor^Brixa|DAU||^^^^^^^^^^^5550100101"
    assert "Wuvtor" not in masked(alone) and "5550100101" not in masked(alone)
