"""PHI by where a value stands in JSON, with no configuration: a lexicon of the keys under
which records carry PHI (`first_name`, `firstName`, `FirstName`, `first-name` alike), and
the shapes FHIR R4 gives people (`name: [{family, given}]`, `telecom`, `address`,
`identifier` by its system and type). Operators' field rules come first; these follow.

A built-in rule names the entity of a scalar, or of each scalar of a list (`given:
["Ada", "B."]` stays a list of two). An object under such a key is walked, and its own
keys decide: FHIR's `address` is an object whose `city` and `postalCode` are PHI and
whose `state` and `use` are not."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from extproc.masking import dicom
from extproc.masking.fields import Path

# Entity -> the keys that hold it, in snake case; every other spelling normalises to these.
_KEYS: dict[str, tuple[str, ...]] = {
    "name": (
        *("first_name", "firstname", "fname", "given_name", "given", "givenname", "forename"),
        *("middle_name", "middlename", "mname", "middle_initial", "mi", "last_name"),
        "lastname",
        *("lname", "surname", "family_name", "family", "familyname", "full_name", "fullname"),
        *("patient_name", "pt_name", "person_name", "legal_name", "preferred_name", "nickname"),
        *("maiden_name", "mother_maiden_name", "mothers_maiden_name", "birth_name"),
        *("guarantor_name", "subscriber_name", "insured_name", "policy_holder_name"),
        *("emergency_contact_name", "contact_name", "next_of_kin", "next_of_kin_name"),
        *("spouse_name", "parent_name", "guardian_name", "caregiver_name", "relative_name"),
        *("provider_name", "physician_name", "doctor_name", "attending", "attending_name"),
        *("attending_physician", "pcp", "pcp_name", "referring_physician", "referring_provider"),
        *("ordering_provider", "ordering_physician", "nurse_name", "signed_by", "author_name"),
        *("primary_care_provider", "primary_care_physician", "provider", "physician", "doctor"),
        *("nurse", "prescriber", "prescribing_physician", "emergency_contact", "guarantor"),
        *("subscriber", "policy_holder", "insured", "caregiver", "guardian", "spouse"),
        *("resulted_by", "performed_by", "verified_by", "reviewed_by", "ordered_by"),
        *("collected_by", "authored_by", "approved_by", "dictated_by", "transcribed_by"),
        *("ordering_provider_name", "referring_provider_name", "attending_provider_name"),
        *("attending_physician_name", "provider_full_name"),
        *("patient", "pt", "attending_provider", "clinician"),
    ),
    "date": (
        *("dob", "date_of_birth", "birth_date", "birthdate", "birthday", "birth_dt"),
        *("birth_time", "dod", "date_of_death", "death_date", "deceased_date_time"),
        *("deceased_date", "admission_date", "admit_date", "admitted_at", "admit_dt"),
        *("discharge_date", "discharged_at", "discharge_dt"),
    ),
    "ssn": (
        *("ssn", "social_security_number", "social_security_no", "social_security", "ss_no"),
        *("soc_sec_no", "ss_number", "ssn_last_4", "ssn_last4", "social"),
        # other countries' national numbers, SSN's kin
        *("national_id", "aadhaar", "ihi", "ppsn", "nir", "cpf", "curp", "sin", "nino"),
    ),
    "mrn": (
        *("mrn", "medical_record_number", "medical_record_no", "medical_record_num"),
        *("medical_record", "med_rec_no", "med_rec_num", "mr_number", "mr_no", "chart_number"),
        *("chart_no", "patient_mrn", "emr_id", "ehr_id", "empi", "mpi_id", "patient_id"),
        *("pt_id", "person_id", "patient_number", "patient_no", "hospital_number"),
        *("patient_id_number", "medical_record_id", "chart_id", "med_rec", "medical_rec"),
        *("med_rec_number", "chart", "record_number", "mrn_number"),
        *("hosp", "hosp_no", "hosp_number", "uhid", "ur_number", "nhs_number", "nhs_no"),
    ),
    "phone": (
        *("phone", "phone_number", "phone_no", "phone_num", "telephone", "tel", "mobile"),
        *("mobile_phone", "mobile_number", "cell", "cell_phone", "cellphone", "home_phone"),
        *("work_phone", "contact_phone", "emergency_phone", "pager", "contact_number"),
        *("primary_phone", "phone_home", "phone_work", "phone_mobile", "telephone_number"),
    ),
    "fax": ("fax", "fax_number", "fax_no", "fax_num"),
    "email": ("email", "email_address", "e_mail", "contact_email", "email_addr", "mail_address"),
    "street_address": (
        *("address", "street", "street_address", "address_line", "address_line_1"),
        *("address_line_2", "address_1", "address_2", "addr", "addr_1", "addr_2"),
        *("home_address", "mailing_address", "residence", "street_name", "street_1"),
        *("street_2", "line_1", "line_2", "residential_address", "billing_address"),
        "street_address_line",
    ),
    "city": (
        *("city", "town", "municipality", "county", "city_name", "home_city", "suburb"),
        *("birth_place", "birthplace", "place_of_birth"),
    ),
    "zip": (
        *("zip", "zip_code", "zipcode", "postal_code", "postalcode", "postcode", "zip_4"),
        *("zip_plus_4", "post_code", "postal", "home_zip", "pin_code", "plz", "cep"),
    ),
    "account": (
        *("account_number", "account_no", "account_num", "acct", "acct_no", "acct_num"),
        "patient_account",
        *("account_id", "billing_account", "visit_number", "encounter_number", "fin_number"),
        *("encounter_id", "visit_id", "accession", "accession_number", "admission_id"),
        *("claim_number", "claim_id", "invoice_number", "har", "csn"),
    ),
    "health_plan": (
        *("member_id", "member_number", "subscriber_id", "subscriber_number", "policy_number"),
        *("policy_no", "policy_id", "insurance_id", "insurance_number", "medicaid_id"),
        *("medicaid_number", "medicare_id", "medicare_number", "mbi", "beneficiary_id"),
        *("health_plan_id", "health_plan_number", "plan_member_id", "insurance_member_id"),
        *("insurance_member", "insurance_member_number", "subscriber_member_id"),
    ),
    "license": (
        *("drivers_license", "driver_license", "drivers_licence", "driver_licence"),
        *("drivers_license_number", "driver_license_number", "license_number"),
        *("licence_number", "dl_number", "dl_no", "dea", "dea_number", "certificate_number"),
        *("state_license", "medical_license", "passport", "passport_number"),
    ),
    "vehicle": (
        *("vin", "vehicle_id", "license_plate", "licence_plate", "plate_number", "plate"),
        *("vehicle_reg", "vehicle_registration", "reg_plate", "number_plate", "registration_plate"),
        *("veh_plate", "vehicle_plate"),
    ),
    "device": (
        *("device_serial", "serial_number", "serial_no", "udi", "imei", "mac_address"),
        *("implant", "implant_id", "device_implant", "device_id", "device_identifier"),
        *("sn", "serial", "device_sn", "device_serial_number"),
    ),
    "ip": ("ip", "ip_address", "ipv4", "ipv6", "client_ip", "remote_addr", "remote_ip"),
    "username": (
        *("username", "user_name", "login", "user_login", "screen_name", "login_name"),
        *("portal_user", "portal_username", "handle", "author_handle"),
    ),
    "npi": ("npi", "npi_number", "provider_npi"),
    "age_over_89": ("age", "patient_age", "age_years"),
    "employer": ("employer", "employer_name", "company_name", "workplace", "place_of_work"),
}
# Keys that are PHI at the end of a longer key as well: `implant_udi`, `home_zip`,
# `patient_ssn`, `guarantor_phone`. Not `name` (`drug_name`) nor `age` (`cache_age`).
_SUFFIXES = frozenset(
    {
        *("ssn", "mrn", "dob", "phone", "fax", "email", "zip", "city", "udi", "vin", "npi"),
        *("username", "surname", "telephone", "mobile", "pager", "postcode", "zipcode"),
        *("town", "suburb", "birth_place", "birthplace", "maiden_name"),
        *("birthdate", "birthday", "passport", "imei", "zip_code", "postal_code", "first_name"),
        *("last_name", "full_name", "middle_name", "phone_number", "email_address"),
        *("date_of_birth", "birth_date", "street_address", "address_line_1", "address_line_2"),
        *("account_number", "member_id", "policy_number", "license_number", "serial_number"),
        *("medical_record_number", "social_security_number", "ip_address", "mac_address"),
        *("employer", "csn", "username", "udi", "implant", "encounter_number", "sn", "serial"),
    }
)

# Words whose keys are people's records: `name` there is a person's.
_PERSON_RESOURCES = frozenset({"Patient", "Practitioner", "RelatedPerson", "Person"})
_PERSON_WORDS = frozenset(
    {
        *("patient", "patients", "person", "persons", "people", "contact", "contacts"),
        *("guarantor", "subscriber", "insured", "practitioner", "physician", "provider"),
        *("doctor", "nurse", "member", "guardian", "spouse", "relative", "kin", "emergency"),
        *("caregiver", "employee", "mother", "father", "parent", "child", "sibling", "pcp"),
        *("attending", "referring", "author", "signer", "clinician", "user", "users"),
    }
)
# What holds an institution's name, not a person's.
_PLACE_WORDS = frozenset(
    {"organization", "organisation", "facility", "location", "institution", "department"}
)
# Keys that say an object is a person, not a drug, a site or a tool: a `name` beside them is
# a person's name.
# A pair that names its value: {"label": "SSN", "value": "..."}, {"name": "Phone", "val": ...}.
_VALUE_KEYS = frozenset({"value", "val"})
_LABEL_KEYS = ("label", "name", "key", "field", "attribute", "property", "type")
_DICOM_VALUE_KEYS = frozenset({"Value", "Alphabetic", "Ideographic", "Phonetic"})
_PERSON_MARKERS = frozenset(
    {"date", "ssn", "mrn", "phone", "email", "zip", "street_address", "age_over_89"}
)
_PERSON_KEYS = frozenset({"gender", "sex", "birth_sex", "pronouns", "marital_status"})
_A_PERSON: Mapping[str, Any] = {"sex": None}

_PLAIN_KEYS = 8192
_CACHED_KEY = 64  # longer keys are read each time, never cached (their size is the sender's)
# Keys whose meaning depends on where they stand (FHIR's `value`, `line`, `text`; `name`).
_CONTEXTUAL = frozenset(
    {"value", "val", "text", "line", "district", "state", "country", "use", "type", "name"}
    | {"display"}
)
_PERSON_REFERENCES = frozenset({*_PERSON_RESOURCES, "PractitionerRole"})
_PERSON_ELEMENTS = frozenset(
    {
        *("subscriber", "beneficiary", "individual", "performer", "provider", "requester"),
        *("author", "recorder", "asserter", "patient", "subject", "practitioner", "enterer"),
        *("policy_holder", "informant", "attester", "party", "collector", "interpreter"),
    }
)
_TELECOM = {"phone": "phone", "sms": "phone", "pager": "phone", "other": "phone"}
_TELECOM |= {"fax": "fax", "email": "email", "url": "url"}
# FHIR identifiers: by system (URI or OID) first, then by the v2-0203 type code.
_SYSTEMS = (
    ("us-ssn", "ssn"),
    ("2.16.840.1.113883.4.1", "ssn"),
    ("us-npi", "npi"),
    ("2.16.840.1.113883.4.6", "npi"),
    ("2.16.840.1.113883.4.3.", "license"),  # a state's driver's licences
    ("us-medicare", "health_plan"),
    ("medicaid", "health_plan"),
)
_TYPE_CODES = {
    **dict.fromkeys(("MR", "MRT", "PI", "PT"), "mrn"),
    **dict.fromkeys(("SS", "SSN"), "ssn"),
    **dict.fromkeys(("DL", "PPN", "LN", "MD", "DEA", "PRN", "CZ"), "license"),
    **dict.fromkeys(("MB", "SN", "MA", "MC", "MCN", "NIIP", "PEN"), "health_plan"),
    **dict.fromkeys(("AN", "ACSN", "VN", "FILL", "PLAC"), "account"),
    "NPI": "npi",
}
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


# Abbreviations of vendors' and EHR exports' keys ("ptIdNbr", "memberNbr", "GUAR_EMPLOYER",
# "DL_NUM"), read as the words they stand for.
_ABBREVIATIONS = {
    **dict.fromkeys(("nbr", "num", "no"), "number"),
    **dict.fromkeys(("pt", "pat"), "patient"),
    **dict.fromkeys(("acct", "acc"), "account"),
    **dict.fromkeys(("empl", "emp"), "employer"),
    **dict.fromkeys(("ph", "phn"), "phone"),
    **{"nm": "name", "fst": "first", "frst": "first", "lst": "last", "mbr": "member"},
    **{"guar": "guarantor", "subscr": "subscriber", "ins": "insurance", "enc": "encounter"},
    **{"addr": "address", "dt": "date", "dl": "drivers_license", "lic": "license"},
    **{"bdate": "birth_date", "cty": "city", "usr": "user", "nok": "next_of_kin"},
    **{"prov": "provider", "ord": "ordering", "ref": "referring", "att": "attending"},
}


def normal_key(key: str) -> str:
    """`firstName`, `FirstName`, `first-name`, `FIRST_NAME` -> `first_name`; `ptIdNbr` ->
    `patient_id_number`."""
    if len(key) > _CACHED_KEY:  # no key of a record: not kept, whatever its size
        return _normal(key)
    return _cached_normal(key)


def _normal(key: str) -> str:
    return "_".join(_ABBREVIATIONS.get(w, w) for w in (w.lower() for w in _WORD.findall(key)))


_cached_normal = functools.lru_cache(maxsize=8192)(_normal)  # the same keys recur


def _forms(key: str) -> set[str]:
    # "postal_code" also as "postalcode" (a key written "Postalcode" has one word only), and
    # as `normal_key` reads it ("soc_sec_no" as "soc_sec_number", "ipv4" as "ipv_4").
    normal = normal_key(key)
    return {key, key.replace("_", ""), normal, normal.replace("_", "")}


LEXICON: dict[str, str] = {
    form: entity for entity, keys in _KEYS.items() for key in keys for form in _forms(key)
}


class BuiltinKeys:
    """The built-in rules, with the operator's entries turned off (by lexicon key)."""

    def __init__(self, off: Collection[str] = (), fhir: bool = True) -> None:
        unknown = {normal_key(k) for k in off} - LEXICON.keys()
        if unknown:
            raise ValueError(f"not in the key lexicon: {', '.join(sorted(unknown))}")
        off_keys = {form for key in off for form in _forms(normal_key(key))}
        self._lexicon = {k: e for k, e in LEXICON.items() if k not in off_keys}
        self._fhir = fhir
        self._plain: dict[str, str | None] = {}  # each key's entity, once

    def entity_at(self, path: Path, parent: Mapping[str, Any] | None) -> str | None:
        """The entity of the value at `path` in `parent` (the object holding it)."""
        key = path[-1] if path else None
        if not isinstance(key, str) or parent is None:
            return None
        if key in _DICOM_VALUE_KEYS and (entity := _dicom_entity(path, key)) is not None:
            return entity
        normal = normal_key(key)
        if normal.startswith("value_") and isinstance(url := parent.get("url"), str):
            return self._extension(url)  # FHIR's {"url": ".../age", "valueInteger": 101}
        if normal not in _CONTEXTUAL:  # most keys: the key alone decides, once per key
            if len(normal) > _CACHED_KEY:
                return self._lexicon.get(normal) or self._by_suffix(normal)
            if normal not in self._plain:
                if len(self._plain) >= _PLAIN_KEYS:  # keys are the server's: bounded
                    self._plain.clear()
                self._plain[normal] = self._lexicon.get(normal) or self._by_suffix(normal)
            return self._plain[normal]
        if self._fhir and (entity := _fhir_entity(normal, path, parent)) is not None:
            return entity or None
        if normal == "name":
            return "name" if _is_person(path, parent, self._lexicon) else None
        if normal in _VALUE_KEYS:  # {"label": "Medicaid", "value": "GA448291003"}
            if _container(path) in ("value_age", "age"):  # FHIR's valueAge: {"value": 94}
                return "age_over_89"
            return self._labelled(parent)
        return self._lexicon.get(normal)

    def _extension(self, url: str) -> str | None:
        """The entity of a FHIR extension's value, named by the last segment of its
        definition's URL read as a key ("patient-birthPlace", "patient-mothersMaidenName")."""
        last = url.rstrip("/").rsplit("/", 1)[-1][:_CACHED_KEY]
        normal = normal_key(last)
        return self._lexicon.get(normal) or self._by_suffix(normal)

    def _labelled(self, parent: Mapping[str, Any]) -> str | None:
        """The entity a pair's label names, read as a key would be ("Date of birth",
        "Medicaid" as `medicaid_id`, "Driver license")."""
        for label_key in _LABEL_KEYS:
            label = parent.get(label_key)
            if isinstance(label, str) and 0 < len(label) <= _CACHED_KEY:
                normal = normal_key(label)
                for form in (normal, f"{normal}_id", f"{normal}_number"):
                    if (entity := self._lexicon.get(form)) is not None:
                        return entity
        return None

    def _by_suffix(self, normal: str) -> str | None:
        words = normal.split("_")
        for start in range(1, len(words)):
            suffix = "_".join(words[start:])
            if suffix in _SUFFIXES and (entity := self._lexicon.get(suffix)) is not None:
                return entity
        return None

    def named(self, key: str | int) -> bool:
        """Whether the lexicon holds `key` itself, not only its last words."""
        return isinstance(key, str) and normal_key(key) in self._lexicon

    def person_context(self, keys: Iterable[str]) -> Mapping[str, Any]:
        """A stand-in for an object with these keys, as `entity_at` reads it for `name`:
        one key that makes a person, or none. Read once for a text's many lines."""
        marked = any(_marks_person(k, self._lexicon) for k in keys if isinstance(k, str))
        return _A_PERSON if marked else {}

    def applies(self, entity: str, value: Any) -> bool:
        """Whether a value under a key of this entity is PHI: an age only over 89."""
        if entity != "age_over_89":
            return True
        if isinstance(value, list):  # DICOM JSON's "Value": ["092Y"]
            return any(self.applies(entity, item) for item in value)
        number = value if isinstance(value, int | float) else _leading_number(value)
        return number is not None and not isinstance(number, bool) and number >= 90


def _leading_number(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    found = re.match(r"\s*([0-9]{1,3})(?![0-9])", value)
    return int(found.group(1)) if found else None


def _fhir_entity(normal: str, path: Path, parent: Mapping[str, Any]) -> str | None:
    """FHIR's shapes: "" where the shape says the value is not PHI (an address's `state`),
    None where it says nothing."""
    container = _container(path)
    system = parent.get("system")
    system = system if isinstance(system, str) else ""
    if normal == "value" and container == "telecom":  # any system, or none: a number
        return _TELECOM.get(system, "phone")
    if normal == "value" and system and container == "identifier":
        return _identifier(system, parent)
    if normal == "value" and container == "identifier":
        return _identifier("", parent)
    if container == "address":
        if normal in ("line", "text"):
            return "street_address"
        if normal == "district":
            return "city"
        if normal in ("state", "country", "use", "type"):
            return ""
    if container == "name" and normal in ("text", "family", "given"):
        return "name"
    if normal == "display" and _refers_to_person(container, parent):
        return "name"
    return None


def _refers_to_person(container: str | None, reference: Mapping[str, Any]) -> bool:
    """A FHIR Reference to a person: by its `reference` ("Practitioner/12") or by the
    element that holds it (`subscriber`, `performer`, `participant.individual`)."""
    target = reference.get("reference")
    if isinstance(target, str) and target.split("/", 1)[0] in _PERSON_REFERENCES:
        return True
    return container in _PERSON_ELEMENTS


def _identifier(system: str, identifier: Mapping[str, Any]) -> str:
    for fragment, entity in _SYSTEMS:
        if fragment in system:
            return entity
    kind = identifier.get("type")
    codings = kind.get("coding") if isinstance(kind, dict) else None
    for coding in codings if isinstance(codings, list) else ():
        code = coding.get("code") if isinstance(coding, dict) else None
        if isinstance(code, str) and (entity := _TYPE_CODES.get(code)):
            return entity
    return "mrn"  # any other identifier of a record is a unique identifying number too


def _dicom_entity(path: Path, key: str) -> str | None:
    """DICOM JSON (PS3.18 F.2): {"00100020": {"vr": "LO", "Value": ["E12-449021"]}}, a
    person's name one level deeper, {"Value": [{"Alphabetic": "DOE^JANE"}]}."""
    if key == "Value":
        tag = path[-2] if len(path) >= 2 else None
    else:
        tag = path[-4] if len(path) >= 4 and path[-3] == "Value" else None
    return dicom.entity_of(tag) if isinstance(tag, str) else None


def _container(path: Path) -> str | None:
    """The key of the object or list holding the object at `path[:-1]`, normalised."""
    for item in reversed(path[:-1]):
        if isinstance(item, str):
            return normal_key(item)
    return None


def _is_person(path: Path, parent: Mapping[str, Any], lexicon: Mapping[str, str]) -> bool:
    if "resourceType" in parent:  # FHIR says what it is: an Organization is nobody
        kind = parent["resourceType"]
        return isinstance(kind, str) and kind in _PERSON_RESOURCES
    marked = any(_marks_person(key, lexicon) for key in parent if isinstance(key, str))
    container = _container(path)
    words = container.split("_") if container is not None else []
    if words and words[-1] in _PLACE_WORDS:  # a "providerOrganization" is a place...
        return marked  # ...unless a birth date or an MRN beside the name says otherwise
    if _PERSON_WORDS & set(words):  # "department_patients", "organization_contact"
        return True
    return marked


def _marks_person(key: str, lexicon: Mapping[str, str]) -> bool:
    normal = normal_key(key)
    return normal in _PERSON_KEYS or lexicon.get(normal) in _PERSON_MARKERS
