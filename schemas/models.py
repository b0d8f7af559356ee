"""The contracts, as pydantic models. The `.avsc` files in `schemas/avro/` are generated from these.

Every field carries a description (it becomes the Avro `doc`). Every enum has an `UNKNOWN` symbol that is
the Avro enum default, so a reader on an older version maps a newer symbol to `UNKNOWN` instead of failing;
intake refuses `UNKNOWN` where a real value is needed. Instants must carry a UTC offset and are stored as UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Annotated, Any, ClassVar, Self, TypeVar, get_args
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.codes import (
    ONS_AUTHORITY_RULE,
    REFERENCE_RULE,
    URN_RULE,
    is_authority_code,
    is_reference,
    is_urn,
)
from schemas.codes import REFERENCE as REFERENCE  # re-exported: the worker checks references with it

__all__ = [
    "TRUSTED",
    "Action",
    "AdultRole",
    "AdultSubject",
    "AgencyType",
    "AuditEvent",
    "AuditRecord",
    "ChildSubject",
    "CumulativeConcernAlert",
    "DeadLetter",
    "DvTriageItem",
    "EmergencyDutyAlert",
    "EncompassAcknowledgement",
    "EncompassNotice",
    "Envelope",
    "FrontDoorDecision",
    "FrontDoorReferral",
    "HealthSafeguardingNotification",
    "ItemAcknowledgement",
    "MaracReferral",
    "PoliceChildConcern",
    "PoliceDomesticAbuseIncident",
    "ProbationRiskNotification",
    "Recall",
    "Rejection",
    "SlaEvent",
    "SupersedeRequest",
    "TriageItemDiscussed",
    "YouthJusticeNotification",
]

T = TypeVar("T")
NAMESPACE = "uk.gov.mash"
FUTURE_TOLERANCE = timedelta(minutes=5)
LONDON = ZoneInfo("Europe/London")
NAME_MAX = 100
KEY_MAX = 128
ONS_MAX = 9
URN_MAX = 7
REFERENCE_MAX = 64
RECIPIENT_MAX = 128
REASON_MAX = 500
SUMMARY_MAX = 4000
#: Oldest plausible adult, and oldest child, in whole years on the occurrence date.
ADULT_MAX_AGE = 120
CHILD_MAX_AGE = 17
#: An unborn child's expected due date: at most ~10 months after the occurrence date, at most a month before.
DUE_AFTER_MAX = timedelta(days=305)
DUE_BEFORE_MAX = timedelta(days=31)

# C0 and C1 controls, DEL, line/paragraph separators (text); the same but LF and CR LF allowed (free text);
# bidirectional embeddings, overrides, isolates and marks; lone surrogates (not encodable as UTF-8).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_FREE_TEXT = re.compile("[\x00-\x09\x0b-\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]|\r(?!\n)")
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")
CONTROL_RULE = "must not contain control characters"
CONTROL_FREE_TEXT_RULE = "must not contain control characters other than line breaks (LF or CR LF)"
BIDI_RULE = "must not contain bidirectional formatting characters (U+061C, U+200E-F, U+202A-E, U+2066-9)"
SURROGATE_RULE = "must be valid Unicode (no unpaired surrogates)"
#: Mark a free-text field (`json_schema_extra=FREE_TEXT`): line breaks allowed, other controls refused.
FREE_TEXT: dict[str, Any] = {"free_text": True}


# One search per text finds whether any rule is broken; only then is the rule worked out.
_ANY_BREACH = re.compile("|".join(f"(?:{p.pattern})" for p in (_CONTROL, _BIDI, _SURROGATE)))
_ANY_BREACH_FREE_TEXT = re.compile("|".join(f"(?:{p.pattern})" for p in (_CONTROL_FREE_TEXT, _BIDI, _SURROGATE)))
#: `model_validate(datum, context=TRUSTED)`: the record was written by the worker itself after intake checked
#: every text (internal topics, routed outputs), so the text rules are not run again; types and field rules are.
TRUSTED: dict[str, bool] = {"mash_trusted": True}


def text_rule(text: str, *, free_text: bool = False) -> str | None:
    """The rule a text breaks (control, bidi or surrogate characters), or None; never echoes the text."""
    if (_ANY_BREACH_FREE_TEXT if free_text else _ANY_BREACH).search(text) is None:
        return None
    if (_CONTROL_FREE_TEXT if free_text else _CONTROL).search(text):
        return CONTROL_FREE_TEXT_RULE if free_text else CONTROL_RULE
    if _BIDI.search(text):
        return BIDI_RULE
    if _SURROGATE.search(text):
        return SURROGATE_RULE
    return None


def _texts(name: str, value: object) -> Iterator[tuple[str, str]]:
    if isinstance(value, str) and not isinstance(value, Enum):
        yield name, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _texts(f"{name}.{i}", item)


class Record(BaseModel):
    """Base of every Avro record: frozen, strict about unknown fields, enums kept as enum members.

    Every text field of every record, nested or not, is checked for control, bidirectional-formatting and
    surrogate characters (free-text fields marked FREE_TEXT may hold LF and CR LF line breaks).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    avro_name: ClassVar[str | None] = None

    @model_validator(mode="after")
    def _text_rules(self, info: ValidationInfo) -> Self:
        if info.context is not None and info.context.get("mash_trusted"):
            return self
        plan = _text_fields(type(self))
        if not plan:
            return self
        values = self.__dict__
        plain: list[str] = []
        free: list[str] = []
        for name, free_text in plan:
            value = values[name]
            if type(value) is str:  # the common case, without the generator (enum members are not plain str)
                (free if free_text else plain).append(value)
            elif isinstance(value, list):
                (free if free_text else plain).extend(text for _, text in _texts(name, value))
        # One search over all the texts at once (every rule is about single characters, so a space between
        # them cannot make or hide a breach); only if one is found are the fields looked at one by one.
        if (plain and _ANY_BREACH.search(" ".join(plain))) or (free and _ANY_BREACH_FREE_TEXT.search(" ".join(free))):
            self._name_breach(plan)
        return self

    def _name_breach(self, plan: tuple[tuple[str, bool], ...]) -> None:
        """Raise for the first text field (or list item) that breaks a text rule, naming the field and the rule."""
        for name, free_text in plan:
            for path, text in _texts(name, getattr(self, name)):
                rule = text_rule(text, free_text=free_text)
                if rule is not None:
                    raise ValueError(f"{path}: {rule}")


_TEXT_FIELDS: dict[type[Record], tuple[tuple[str, bool], ...]] = {}


def _may_hold_text(annotation: object) -> bool:
    """Whether a field's type admits a plain string anywhere in it (str, optional str, list of str, ...); enums
    and nested records (checked by their own validator) do not count; anything untyped does."""
    if annotation is str or annotation is Any or annotation is object:
        return True
    if isinstance(annotation, type):
        return issubclass(annotation, str) and not issubclass(annotation, Enum)
    return any(_may_hold_text(arg) for arg in get_args(annotation))


def _text_fields(cls: type[Record]) -> tuple[tuple[str, bool], ...]:
    """(field name, free text?) of the fields of a record class that can hold text, worked out once per class."""
    plan = _TEXT_FIELDS.get(cls)
    if plan is None:
        plan = _TEXT_FIELDS[cls] = tuple(
            (name, bool(isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("free_text")))
            for name, info in cls.model_fields.items() if _may_hold_text(info.annotation))
    return plan


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is UTC and value.microsecond % 1000 == 0:  # already UTC to the millisecond (most values)
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a UTC offset")
    utc = value.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)  # Avro timestamp-millis


Instant = Annotated[datetime, AfterValidator(_aware_utc)]


def _ons_code(value: str) -> str:
    if not is_authority_code(value):
        raise ValueError(ONS_AUTHORITY_RULE)
    return value


OnsCode = Annotated[str, StringConstraints(max_length=ONS_MAX), AfterValidator(_ons_code)]


def _reference(value: str) -> str:
    if not is_reference(value):
        raise ValueError(REFERENCE_RULE)
    return value


Reference = Annotated[str, StringConstraints(max_length=REFERENCE_MAX), AfterValidator(_reference)]


def _urn(value: str) -> str:
    if not is_urn(value):
        raise ValueError(URN_RULE)
    return value


Urn = Annotated[str, StringConstraints(max_length=URN_MAX), AfterValidator(_urn)]
#: An identity key (NHS-number key or keyed hash) in an output.
Key = Annotated[str, StringConstraints(max_length=KEY_MAX)]


def age_on(born: date, on: date) -> int:
    """Whole years from `born` to `on` (negative when born after `on`)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def child_date_errors(child: ChildSubject, on: date) -> list[tuple[str, str]]:
    """(field, rule) pairs for a child's dates against the occurrence date `on` (London)."""
    if child.unborn:
        errors = []
        if child.date_of_birth is not None:
            errors.append(("date_of_birth", "must be empty for an unborn child (give expected_due_date)"))
        due = child.expected_due_date
        if due is not None and not on - DUE_BEFORE_MAX <= due <= on + DUE_AFTER_MAX:
            errors.append(("expected_due_date", "must be from one month before to 10 months after the occurrence date"))
        return errors
    born = child.date_of_birth
    if born is None:
        return []
    if born > on:
        return [("date_of_birth", "must not be after the occurrence date (envelope.occurred, London)")]
    if age_on(born, on) > CHILD_MAX_AGE:
        return [("date_of_birth", f"must make the child 0-{CHILD_MAX_AGE} years old on the occurrence date")]
    return []


def adult_date_errors(adult: AdultSubject, on: date) -> list[tuple[str, str]]:
    """(field, rule) pairs for an adult's date of birth against the occurrence date `on` (London)."""
    born = adult.date_of_birth
    if born is None:
        return []
    if born > on:
        return [("date_of_birth", "must not be after the occurrence date (envelope.occurred, London)")]
    if age_on(born, on) > ADULT_MAX_AGE:
        return [("date_of_birth", f"must make the person at most {ADULT_MAX_AGE} years old on the occurrence date")]
    return []


def check_people(
    occurred: datetime,
    children: Iterable[tuple[str, ChildSubject]],
    adults: Iterable[tuple[str, AdultSubject]] = (),
) -> None:
    """Raise ValueError "<path>.<field>: <rule>" for the first implausible date of a notification's people."""
    on = occurred.astimezone(LONDON).date()
    errors = [(f"{p}.{f}", r) for p, child in children for f, r in child_date_errors(child, on)]
    errors += [(f"{p}.{f}", r) for p, adult in adults for f, r in adult_date_errors(adult, on)]
    if errors:
        raise ValueError(f"{errors[0][0]}: {errors[0][1]}")


def _indexed(name: str, items: list[T]) -> list[tuple[str, T]]:
    return [(f"{name}.{i}", item) for i, item in enumerate(items)]


# --------------------------------------------------------------------------------------------- enums
class Action(str, Enum):
    """What a notification does: a new one, an amendment of `supersedes`, or its withdrawal."""

    UNKNOWN = "UNKNOWN"
    NEW = "NEW"
    AMEND = "AMEND"
    WITHDRAW = "WITHDRAW"


class AgencyType(str, Enum):
    """The kind of agency that sent a notification."""

    UNKNOWN = "UNKNOWN"
    POLICE = "POLICE"
    HEALTH = "HEALTH"
    PROBATION = "PROBATION"
    YOUTH_JUSTICE = "YOUTH_JUSTICE"


class SecurityMarking(str, Enum):
    """Government Security Classification marking."""

    UNKNOWN = "UNKNOWN"
    OFFICIAL = "OFFICIAL"
    OFFICIAL_SENSITIVE = "OFFICIAL_SENSITIVE"


class LawfulBasis(str, Enum):
    """The legal gateway for sharing."""

    UNKNOWN = "UNKNOWN"
    CHILDREN_ACT_1989_S17 = "CHILDREN_ACT_1989_S17"
    CHILDREN_ACT_1989_S47 = "CHILDREN_ACT_1989_S47"
    CHILDREN_ACT_2004_S11 = "CHILDREN_ACT_2004_S11"
    CRIME_AND_DISORDER_ACT_1998_S115 = "CRIME_AND_DISORDER_ACT_1998_S115"
    UK_GDPR_ART6_1E_PUBLIC_TASK = "UK_GDPR_ART6_1E_PUBLIC_TASK"
    DPA_2018_SCH8_SAFEGUARDING = "DPA_2018_SCH8_SAFEGUARDING"


class ConsentStatus(str, Enum):
    """Whether consent to share was given, refused, or why it was not sought."""

    UNKNOWN = "UNKNOWN"
    GIVEN = "GIVEN"
    REFUSED_OVERRIDDEN = "REFUSED_OVERRIDDEN"
    NOT_SOUGHT_RISK_OF_HARM = "NOT_SOUGHT_RISK_OF_HARM"
    NOT_SOUGHT_WOULD_PREJUDICE_INVESTIGATION = "NOT_SOUGHT_WOULD_PREJUDICE_INVESTIGATION"
    NOT_SOUGHT_URGENT = "NOT_SOUGHT_URGENT"
    NOT_SOUGHT_OTHER = "NOT_SOUGHT_OTHER"


class Priority(str, Enum):
    """How fast the sender needs a response; IMMEDIATE asks for emergency duty out of hours."""

    UNKNOWN = "UNKNOWN"
    ROUTINE = "ROUTINE"
    URGENT = "URGENT"
    IMMEDIATE = "IMMEDIATE"


class CaveatType(str, Enum):
    """A safety caveat every recipient must honour."""

    UNKNOWN = "UNKNOWN"
    DO_NOT_CONTACT_NAMED_PARENT = "DO_NOT_CONTACT_NAMED_PARENT"
    CONFIDENTIAL_ADDRESS = "CONFIDENTIAL_ADDRESS"
    SUSPECT_HAS_PARENTAL_RESPONSIBILITY = "SUSPECT_HAS_PARENTAL_RESPONSIBILITY"
    DO_NOT_DISCUSS_WITH_CHILD = "DO_NOT_DISCUSS_WITH_CHILD"
    INTERPRETER_NEEDED = "INTERPRETER_NEEDED"


class AdultRole(str, Enum):
    """An adult's part in a notification."""

    UNKNOWN = "UNKNOWN"
    VICTIM = "VICTIM"
    SUSPECT = "SUSPECT"
    PERSON_ON_PROBATION = "PERSON_ON_PROBATION"
    PARENT_CARER = "PARENT_CARER"
    MOTHER = "MOTHER"
    OTHER_HOUSEHOLD_MEMBER = "OTHER_HOUSEHOLD_MEMBER"


class EducationStatus(str, Enum):
    """What is known of a child's education setting."""

    UNKNOWN = "UNKNOWN"
    SCHOOL = "SCHOOL"
    NURSERY = "NURSERY"
    HOME_EDUCATED = "HOME_EDUCATED"
    NOT_IN_EDUCATION = "NOT_IN_EDUCATION"
    NOT_SCHOOL_AGE = "NOT_SCHOOL_AGE"


class RiskLevel(str, Enum):
    """A graded risk (DASH/DARA outcome, risk of serious harm, safety and wellbeing)."""

    UNKNOWN = "UNKNOWN"
    STANDARD = "STANDARD"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    VERY_HIGH = "VERY_HIGH"


class RiskTool(str, Enum):
    """The police risk assessment tool used."""

    UNKNOWN = "UNKNOWN"
    DASH = "DASH"
    DARA = "DARA"


class HealthSetting(str, Enum):
    """The health setting that raised the concern."""

    UNKNOWN = "UNKNOWN"
    EMERGENCY_DEPARTMENT = "EMERGENCY_DEPARTMENT"
    MIDWIFERY = "MIDWIFERY"
    GP = "GP"
    HEALTH_VISITING = "HEALTH_VISITING"
    SCHOOL_NURSING = "SCHOOL_NURSING"
    SEXUAL_HEALTH = "SEXUAL_HEALTH"
    CAMHS = "CAMHS"


class ConcernCategory(str, Enum):
    """Category of a safeguarding concern."""

    UNKNOWN = "UNKNOWN"
    PHYSICAL_ABUSE = "PHYSICAL_ABUSE"
    EMOTIONAL_ABUSE = "EMOTIONAL_ABUSE"
    SEXUAL_ABUSE = "SEXUAL_ABUSE"
    NEGLECT = "NEGLECT"
    DOMESTIC_ABUSE = "DOMESTIC_ABUSE"
    EXPLOITATION = "EXPLOITATION"
    MISSING = "MISSING"
    SELF_HARM = "SELF_HARM"
    SUBSTANCE_MISUSE = "SUBSTANCE_MISUSE"
    OTHER = "OTHER"


class ProbationEvent(str, Enum):
    """The probation event being notified."""

    UNKNOWN = "UNKNOWN"
    RELEASE_FROM_CUSTODY = "RELEASE_FROM_CUSTODY"
    ADDRESS_CHANGE = "ADDRESS_CHANGE"
    BAIL_CONDITION_CHANGE = "BAIL_CONDITION_CHANGE"
    LICENCE_CONDITION_CHANGE = "LICENCE_CONDITION_CHANGE"
    RISK_ESCALATION = "RISK_ESCALATION"
    SENTENCE_START = "SENTENCE_START"


class MappaCategory(str, Enum):
    """MAPPA category."""

    UNKNOWN = "UNKNOWN"
    NONE = "NONE"
    CATEGORY_1 = "CATEGORY_1"
    CATEGORY_2 = "CATEGORY_2"
    CATEGORY_3 = "CATEGORY_3"
    CATEGORY_4 = "CATEGORY_4"


class MappaLevel(str, Enum):
    """MAPPA management level."""

    UNKNOWN = "UNKNOWN"
    NONE = "NONE"
    LEVEL_1 = "LEVEL_1"
    LEVEL_2 = "LEVEL_2"
    LEVEL_3 = "LEVEL_3"


class YouthJusticeEvent(str, Enum):
    """The youth justice event being notified."""

    UNKNOWN = "UNKNOWN"
    ARREST = "ARREST"
    CHARGE = "CHARGE"
    COURT_OUTCOME = "COURT_OUTCOME"
    ORDER_START = "ORDER_START"
    CUSTODY = "CUSTODY"
    RELEASE_FROM_CUSTODY = "RELEASE_FROM_CUSTODY"
    BREACH = "BREACH"
    MISSING_EPISODE = "MISSING_EPISODE"


class Route(str, Enum):
    """A destination the broker routes to."""

    UNKNOWN = "UNKNOWN"
    FRONT_DOOR = "FRONT_DOOR"
    ENCOMPASS = "ENCOMPASS"
    DV_TRIAGE = "DV_TRIAGE"
    MARAC = "MARAC"
    EMERGENCY_DUTY = "EMERGENCY_DUTY"
    CUMULATIVE_CONCERN = "CUMULATIVE_CONCERN"


class MaracCriterion(str, Enum):
    """Why a case is flagged to MARAC."""

    UNKNOWN = "UNKNOWN"
    DASH_HIGH = "DASH_HIGH"
    DASH_14_PLUS_TICKS = "DASH_14_PLUS_TICKS"
    ESCALATION_3_INCIDENTS_12_MONTHS = "ESCALATION_3_INCIDENTS_12_MONTHS"
    REPEAT_WITHIN_12_MONTHS_OF_MARAC = "REPEAT_WITHIN_12_MONTHS_OF_MARAC"
    PROFESSIONAL_JUDGEMENT = "PROFESSIONAL_JUDGEMENT"


class RecallReason(str, Enum):
    """Why an output was recalled."""

    UNKNOWN = "UNKNOWN"
    AMENDED = "AMENDED"
    WITHDRAWN = "WITHDRAWN"


class AuditEvent(str, Enum):
    """What an audit record records."""

    UNKNOWN = "UNKNOWN"
    ACCEPTED = "ACCEPTED"
    DUPLICATE_DROPPED = "DUPLICATE_DROPPED"
    REJECTED = "REJECTED"
    DEAD_LETTERED = "DEAD_LETTERED"
    DISCLOSED = "DISCLOSED"
    RECALLED = "RECALLED"
    ACKNOWLEDGED = "ACKNOWLEDGED"


class SlaState(str, Enum):
    """Where an SLA clock stands."""

    UNKNOWN = "UNKNOWN"
    STARTED = "STARTED"
    AT_RISK = "AT_RISK"
    BREACHED = "BREACHED"
    MET = "MET"
    CANCELLED = "CANCELLED"


class CumulativeTrigger(str, Enum):
    """What made a cumulative-concern alert."""

    UNKNOWN = "UNKNOWN"
    THRESHOLD = "THRESHOLD"
    SIGNIFICANT_EVENT = "SIGNIFICANT_EVENT"


class FrontDoorResponse(str, Enum):
    """The front door's decision on a referral."""

    UNKNOWN = "UNKNOWN"
    NO_FURTHER_ACTION = "NO_FURTHER_ACTION"
    INFORMATION_AND_ADVICE = "INFORMATION_AND_ADVICE"
    EARLY_HELP = "EARLY_HELP"
    CHILD_IN_NEED_ASSESSMENT = "CHILD_IN_NEED_ASSESSMENT"
    STRATEGY_DISCUSSION_S47 = "STRATEGY_DISCUSSION_S47"
    IMMEDIATE_PROTECTION = "IMMEDIATE_PROTECTION"


class Rag(str, Enum):
    """Red / amber / green rating set by the front door."""

    UNKNOWN = "UNKNOWN"
    RED = "RED"
    AMBER = "AMBER"
    GREEN = "GREEN"


# ------------------------------------------------------------------------------------------ envelope
class Source(Record):
    """Who sent a notification."""

    agency_type: AgencyType = Field(description="kind of agency; must match the intake topic")
    organisation_code: Reference = Field(description="the organisation's code (force, trust, region, service)")
    organisation_name: str = Field(min_length=1, max_length=200, description="the organisation's name")
    system: str = Field(min_length=1, max_length=100, description="the sending system's name")


class Consent(Record):
    """Consent to share, or why it was not sought."""

    status: ConsentStatus = Field(description="consent status or why it was not sought")
    recorded_by_role: str | None = Field(None, max_length=100, description="role of who recorded the decision")


class SafetyCaveat(Record):
    """A caveat every recipient must honour (no names: refer to people by role)."""

    type: CaveatType = Field(description="the kind of caveat")
    applies_to_role: AdultRole = Field(AdultRole.UNKNOWN, description="the adult it concerns, by role")


class Envelope(Record):
    """The common envelope nested in every agency notification."""

    notification_id: UUID = Field(description="the notification's id, unique per sender message")
    action: Action = Field(description="NEW, AMEND (replaces `supersedes`) or WITHDRAW (recalls `supersedes`)")
    supersedes: UUID | None = Field(None, description="the notification this one amends or withdraws")
    source: Source = Field(description="the sending agency, organisation and system")
    source_reference: Reference = Field(description="the sender's own id for this message; no personal data")
    occurred: Instant = Field(description="when the event happened (UTC)")
    reported: Instant = Field(description="when the agency became aware (UTC)")
    produced: Instant = Field(description="when the message was produced (UTC)")
    home_local_authority: OnsCode = Field(description="ONS code of the child's home local authority")
    security_marking: SecurityMarking = Field(description="government security classification")
    lawful_basis: LawfulBasis = Field(description="legal gateway for sharing")
    consent: Consent = Field(description="consent status, or why it was not sought")
    priority: Priority = Field(Priority.ROUTINE, description="sender's priority")
    safety_caveats: list[SafetyCaveat] = Field(default_factory=list, description="caveats for recipients")

    @model_validator(mode="after")
    def _action_rules(self) -> Envelope:
        if self.action in (Action.AMEND, Action.WITHDRAW) and self.supersedes is None:
            raise ValueError("supersedes: required when action is AMEND or WITHDRAW")
        if self.action is Action.NEW and self.supersedes is not None:
            raise ValueError("supersedes: must be empty when action is NEW")
        if self.supersedes is not None and self.supersedes == self.notification_id:
            raise ValueError("supersedes: must differ from notification_id")
        if self.reported < self.occurred:
            raise ValueError("reported: must not be before occurred")
        for name in ("action", "security_marking", "lawful_basis"):
            if getattr(self, name).value == "UNKNOWN":
                raise ValueError(f"{name}: must be a known value")
        if self.source.agency_type is AgencyType.UNKNOWN:
            raise ValueError("source.agency_type: must be a known value")
        return self

    def check_not_future(self, now: datetime) -> list[tuple[str, str]]:
        """Field paths and rules broken by instants more than 5 minutes after `now`."""
        limit = now + FUTURE_TOLERANCE
        return [
            (f"envelope.{name}", "must not be more than 5 minutes in the future")
            for name in ("occurred", "reported")
            if getattr(self, name) > limit
        ]


# ------------------------------------------------------------------------------------------- people
class EducationSetting(Record):
    """A child's education setting."""

    status: EducationStatus = Field(description="what is known of the setting")
    urn: Urn | None = Field(None, description="school or nursery URN when status is SCHOOL or NURSERY")

    @model_validator(mode="after")
    def _urn_rule(self) -> EducationSetting:
        if self.status in (EducationStatus.SCHOOL, EducationStatus.NURSERY) and self.urn is None:
            raise ValueError("urn: required when status is SCHOOL or NURSERY")
        return self


class ChildSubject(Record):
    """A child (or unborn child) the notification is about."""

    given_name: str | None = Field(None, max_length=100, description="given name; empty for an unborn child")
    family_name: str | None = Field(None, max_length=100, description="family name")
    date_of_birth: date | None = Field(None, description="date of birth; empty for an unborn child")
    nhs_number: str | None = Field(None, max_length=12, description="NHS number, 10 digits, when known")
    postcode: str | None = Field(None, max_length=10, description="home postcode")
    unborn: bool = Field(False, description="true for an unborn child")
    expected_due_date: date | None = Field(None, description="expected due date of an unborn child")
    mother_index: int | None = Field(None, ge=0, description="for an unborn child: index of the mother in adults")
    present: bool | None = Field(None, description="present at the incident (police incidents)")
    education: EducationSetting = Field(
        default_factory=lambda: EducationSetting(status=EducationStatus.UNKNOWN),
        description="education setting",
    )

    @field_validator("nhs_number")
    @classmethod
    def _nhs_digits(cls, value: str | None) -> str | None:
        if value is None:
            return None
        compact = value.replace(" ", "")
        if not (len(compact) == 10 and compact.isdigit()):
            raise ValueError("must be 10 digits")
        return compact

    @model_validator(mode="after")
    def _identity_rule(self) -> ChildSubject:
        if self.unborn:
            if self.expected_due_date is None:
                raise ValueError("expected_due_date: required for an unborn child")
            if self.mother_index is None:
                raise ValueError("mother_index: required for an unborn child")
        elif self.nhs_number is None and not (
            self.given_name and self.family_name and self.date_of_birth and self.postcode
        ):
            raise ValueError(
                "nhs_number: required unless given_name, family_name, date_of_birth and postcode are all given"
            )
        return self


class AdultSubject(Record):
    """An adult in the notification (victim, suspect, person on probation, parent or carer)."""

    role: AdultRole = Field(description="the adult's part")
    given_name: str | None = Field(None, max_length=100, description="given name")
    family_name: str | None = Field(None, max_length=100, description="family name")
    date_of_birth: date | None = Field(None, description="date of birth")
    nhs_number: str | None = Field(None, max_length=12, description="NHS number, 10 digits, when known")
    postcode: str | None = Field(None, max_length=10, description="home postcode")

    @field_validator("nhs_number")
    @classmethod
    def _nhs_digits(cls, value: str | None) -> str | None:
        return ChildSubject._nhs_digits(value)


# ------------------------------------------------------------------------------------------- bodies
class RiskAssessment(Record):
    """The police domestic abuse risk assessment (DASH or DARA)."""

    tool: RiskTool = Field(description="DASH or DARA")
    level: RiskLevel = Field(description="assessed risk: STANDARD, MEDIUM or HIGH")
    ticks: int | None = Field(None, ge=0, le=27, description="number of yes answers (DASH: 0-27)")
    professional_judgement_marac: bool = Field(False, description="officer refers to MARAC on judgement")


class PoliceDomesticAbuseIncident(Record):
    """Police public protection notice for a domestic abuse incident."""

    envelope: Envelope = Field(description="common envelope")
    police_reference: Reference = Field(description="police incident or crime reference")
    risk: RiskAssessment = Field(description="DASH/DARA risk assessment")
    welfare_check_made: bool = Field(description="whether officers checked on the children's welfare")
    victim: AdultSubject = Field(description="the victim")
    suspect: AdultSubject = Field(description="the suspect")
    children: list[ChildSubject] = Field(default_factory=list, description="children of the household")
    summary: str | None = Field(
        None, max_length=SUMMARY_MAX, json_schema_extra=FREE_TEXT, description="narrative for the front door only"
    )

    @model_validator(mode="after")
    def _dates(self) -> Self:
        adults = [("victim", self.victim), ("suspect", self.suspect)]
        check_people(self.envelope.occurred, _indexed("children", self.children), adults)
        return self


class PoliceChildConcern(Record):
    """Police notification of concern about a child (not a domestic abuse incident)."""

    envelope: Envelope = Field(description="common envelope")
    police_reference: Reference = Field(description="police reference")
    categories: list[ConcernCategory] = Field(min_length=1, description="concern categories")
    children: list[ChildSubject] = Field(min_length=1, description="children concerned")
    adults: list[AdultSubject] = Field(default_factory=list, description="adults concerned")
    summary: str | None = Field(
        None, max_length=SUMMARY_MAX, json_schema_extra=FREE_TEXT, description="narrative for the front door only"
    )

    @model_validator(mode="after")
    def _dates(self) -> Self:
        check_people(self.envelope.occurred, _indexed("children", self.children), _indexed("adults", self.adults))
        return self


class HealthSafeguardingNotification(Record):
    """Health safeguarding notification (ED, midwifery, GP, health visiting, school nursing, ...)."""

    envelope: Envelope = Field(description="common envelope")
    setting: HealthSetting = Field(description="health setting that raised it")
    categories: list[ConcernCategory] = Field(min_length=1, description="concern categories")
    children: list[ChildSubject] = Field(min_length=1, description="children concerned (may be unborn)")
    adults: list[AdultSubject] = Field(default_factory=list, description="adults concerned (e.g. the mother)")
    summary: str | None = Field(
        None, max_length=SUMMARY_MAX, json_schema_extra=FREE_TEXT, description="narrative for the front door only"
    )

    @model_validator(mode="after")
    def _mothers(self) -> HealthSafeguardingNotification:
        for i, child in enumerate(self.children):
            if child.mother_index is not None and child.mother_index >= len(self.adults):
                raise ValueError(f"children.{i}.mother_index: must point at an entry of adults")
        return self

    @model_validator(mode="after")
    def _dates(self) -> Self:
        check_people(self.envelope.occurred, _indexed("children", self.children), _indexed("adults", self.adults))
        return self


class Mappa(Record):
    """MAPPA management."""

    category: MappaCategory = Field(description="MAPPA category")
    level: MappaLevel = Field(description="MAPPA level")


class ProbationRiskNotification(Record):
    """Probation notification about an adult on probation who poses a risk to children."""

    envelope: Envelope = Field(description="common envelope")
    person: AdultSubject = Field(description="the person on probation")
    event: ProbationEvent = Field(description="the event notified")
    risk_to_children: RiskLevel = Field(description="risk of serious harm to children")
    mappa: Mappa | None = Field(None, description="MAPPA management, when managed under MAPPA")
    domestic_abuse_related: bool = Field(False, description="the risk concerns domestic abuse")
    household_postcode: str | None = Field(None, max_length=10, description="postcode of the household")
    children: list[ChildSubject] = Field(default_factory=list, description="named children, when known")
    summary: str | None = Field(
        None, max_length=SUMMARY_MAX, json_schema_extra=FREE_TEXT, description="narrative for the front door only"
    )

    @model_validator(mode="after")
    def _dates(self) -> Self:
        check_people(self.envelope.occurred, _indexed("children", self.children), [("person", self.person)])
        return self


class YouthJusticeNotification(Record):
    """Youth justice notification about a child in the youth justice system."""

    envelope: Envelope = Field(description="common envelope")
    child: ChildSubject = Field(description="the child")
    event: YouthJusticeEvent = Field(description="the event notified")
    safety_wellbeing_risk: RiskLevel = Field(description="safety and wellbeing risk")
    risk_of_serious_harm: RiskLevel = Field(description="risk of serious harm to others")
    domestic_abuse_related: bool = Field(False, description="the concern involves domestic abuse")
    summary: str | None = Field(
        None, max_length=SUMMARY_MAX, json_schema_extra=FREE_TEXT, description="narrative for the front door only"
    )

    @model_validator(mode="after")
    def _dates(self) -> Self:
        check_people(self.envelope.occurred, [("child", self.child)])
        return self


# ------------------------------------------------------------------------------------------ outputs
class ReferralChild(Record):
    """A child listed on a front door referral."""

    child_key: str = Field(max_length=KEY_MAX, description="the child's identity key (NHS number or keyed hash)")
    given_name: str | None = Field(None, max_length=NAME_MAX, description="given name")
    family_name: str | None = Field(None, max_length=NAME_MAX, description="family name")
    date_of_birth: date | None = Field(None, description="date of birth")
    unborn: bool = Field(False, description="unborn child")
    education_status: EducationStatus = Field(description="education setting status")
    school_urn: str | None = Field(None, max_length=URN_MAX, description="school URN when known")
    education_contact_needed: bool = Field(
        False, description="school age with no setting: the authority informs the family's education contact"
    )
    present: bool | None = Field(None, description="present at the incident")


class FrontDoorReferral(Record):
    """A referral to a local authority front door (one per incident per home authority)."""

    referral_id: UUID = Field(description="derived id: uuid5(notification, route, authority)")
    notification_id: UUID = Field(description="the notification routed")
    supersedes_referral: UUID | None = Field(None, description="the referral this one replaces (AMEND)")
    authority: str = Field(max_length=ONS_MAX, description="ONS code of the receiving authority")
    agency_type: AgencyType = Field(description="sending agency type")
    organisation_code: str = Field(max_length=REFERENCE_MAX, description="sending organisation")
    source_reference: str = Field(max_length=REFERENCE_MAX, description="sender's reference")
    kind: str = Field(max_length=64, description="notification kind (record name)")
    occurred: Instant = Field(description="when the event happened (UTC)")
    received: Instant = Field(description="when the broker received it (UTC)")
    decision_due: Instant = Field(description="front door decision deadline (UTC)")
    children: list[ReferralChild] = Field(default_factory=list, description="children concerned")
    adult_risk_only: bool = Field(False, description="adult risk information with no named child")
    risk_level: RiskLevel = Field(RiskLevel.UNKNOWN, description="highest risk stated by the sender")
    priority: Priority = Field(description="sender's priority")
    security_marking: SecurityMarking = Field(description="security marking")
    lawful_basis: LawfulBasis = Field(description="lawful basis")
    consent: ConsentStatus = Field(description="consent status")
    safety_caveats: list[SafetyCaveat] = Field(default_factory=list, description="safety caveats")
    summary: str | None = Field(
        None, max_length=SUMMARY_MAX, json_schema_extra=FREE_TEXT, description="the sender's narrative"
    )
    rag: Rag = Field(Rag.UNKNOWN, description="RAG rating the broker set (RED shortens the decision deadline)")
    rag_reason: str | None = Field(
        None, max_length=REASON_MAX, description="why the broker set that RAG rating (a rule, never data)"
    )


class EncompassNotice(Record):
    """Operation Encompass notice to a child's education setting: only what the DSL needs."""

    notice_id: UUID = Field(description="derived id: uuid5(notification, route, school + child)")
    notification_id: UUID = Field(description="the incident notification")
    school_urn: str = Field(max_length=URN_MAX, description="the receiving setting's URN")
    authority: str = Field(max_length=ONS_MAX, description="ONS code of the setting's local authority")
    child_key: str = Field(max_length=KEY_MAX, description="the child's identity key")
    given_name: str | None = Field(None, max_length=NAME_MAX, description="child's given name")
    family_name: str | None = Field(None, max_length=NAME_MAX, description="child's family name")
    date_of_birth: date | None = Field(None, description="child's date of birth")
    incident_occurred: Instant = Field(description="when the incident happened (UTC)")
    child_present: bool | None = Field(None, description="whether the child was present")
    police_reference: str = Field(max_length=REFERENCE_MAX, description="police reference")
    welfare_check_made: bool = Field(description="whether officers checked on the child's welfare")
    safety_caveats: list[SafetyCaveat] = Field(default_factory=list, description="safety caveats")
    due: Instant = Field(description="must be seen before this school-day start (UTC)")
    calendar_verified: bool = Field(True, description="false when the deadline fell back to working days")


class Recall(Record):
    """Recall of an earlier output (the notification was amended or withdrawn)."""

    recall_id: UUID = Field(description="derived id: uuid5(recalling notification, route, recalled output)")
    recalled_output_id: UUID = Field(description="the output recalled")
    route: Route = Field(description="the route of the recalled output")
    recipient: str = Field(max_length=RECIPIENT_MAX, description="who received it (school URN or authority code)")
    notification_id: UUID = Field(description="the AMEND or WITHDRAW notification")
    reason: RecallReason = Field(description="AMENDED or WITHDRAWN")
    issued: Instant = Field(description="when recalled (UTC)")


class DvTriageItem(Record):
    """An item for the home authority's daily Domestic Violence Triage meeting."""

    item_id: UUID = Field(description="derived id: uuid5(notification, route, authority)")
    notification_id: UUID = Field(description="the notification")
    authority: str = Field(max_length=ONS_MAX, description="ONS code of the authority")
    agency_type: AgencyType = Field(description="sending agency type")
    source_reference: str = Field(max_length=REFERENCE_MAX, description="sender's reference")
    victim_key: str | None = Field(None, max_length=KEY_MAX, description="the victim's identity key")
    perpetrator_key: str | None = Field(
        None, max_length=KEY_MAX, description="the suspect's or risky adult's identity key"
    )
    child_keys: list[Key] = Field(default_factory=list, description="children's identity keys")
    risk_level: RiskLevel = Field(RiskLevel.UNKNOWN, description="DASH/DARA level or stated risk")
    ticks: int | None = Field(None, description="DASH ticks")
    meeting_at: Instant = Field(description="start of the meeting it is for (UTC)")
    marac: bool = Field(description="flagged to MARAC")
    marac_criteria: list[MaracCriterion] = Field(default_factory=list, description="why flagged to MARAC")
    occurred: Instant = Field(description="when the incident happened (UTC)")


class MaracReferral(Record):
    """A referral to the Multi-Agency Risk Assessment Conference."""

    referral_id: UUID = Field(description="derived id: uuid5(notification, route, authority)")
    notification_id: UUID = Field(description="the notification")
    triage_item_id: UUID = Field(description="the triage item it came from")
    authority: str = Field(max_length=ONS_MAX, description="ONS code of the authority")
    victim_key: str | None = Field(None, max_length=KEY_MAX, description="the victim's identity key")
    criteria: list[MaracCriterion] = Field(description="criteria met")
    occurred: Instant = Field(description="when the incident happened (UTC)")


class EmergencyDutyAlert(Record):
    """Alert to the authority's emergency duty team: high risk with children, out of hours."""

    alert_id: UUID = Field(description="derived id: uuid5(notification, route, authority)")
    notification_id: UUID = Field(description="the notification")
    authority: str = Field(max_length=ONS_MAX, description="ONS code of the authority")
    agency_type: AgencyType = Field(description="sending agency type")
    source_reference: str = Field(max_length=REFERENCE_MAX, description="sender's reference")
    reason: str = Field(max_length=64, description="HIGH_RISK_WITH_CHILDREN or SENDER_MARKED_IMMEDIATE")
    child_keys: list[Key] = Field(default_factory=list, description="children's identity keys")
    received: Instant = Field(description="when the broker received it (UTC)")
    safety_caveats: list[SafetyCaveat] = Field(default_factory=list, description="safety caveats")


class CumulativeConcernAlert(Record):
    """A child's chronology crossed the cumulative-concern threshold, or a significant event occurred."""

    alert_id: UUID = Field(description="derived id: uuid5(notification, route, child)")
    child_key: str = Field(max_length=KEY_MAX, description="the child's identity key")
    authority: str = Field(max_length=ONS_MAX, description="ONS code of the home authority")
    trigger: CumulativeTrigger = Field(description="THRESHOLD or SIGNIFICANT_EVENT")
    notification_ids: list[UUID] = Field(description="the notifications in the window")
    agency_types: list[AgencyType] = Field(description="the agency types in the window")
    window_start: Instant = Field(description="start of the window (UTC)")
    window_end: Instant = Field(description="end of the window (UTC)")
    raised: Instant = Field(description="when raised (UTC)")


# ------------------------------------------------------------------------------------------ feedback
class FieldError(Record):
    """One broken rule: the field path and the rule, never the value."""

    field: str = Field(max_length=500, description="dotted path of the field")
    rule: str = Field(max_length=2000, description="the rule broken")


class Rejection(Record):
    """A notification the broker could not accept, sent back to the agency keyed by its source reference."""

    rejection_id: UUID = Field(description="derived id of the rejection")
    agency_type: AgencyType = Field(description="the sending agency type (from the topic)")
    source_reference: str | None = Field(
        None, max_length=REFERENCE_MAX, description="sender's reference, when it could be read"
    )
    notification_id: UUID | None = Field(None, description="notification id, when it could be read")
    errors: list[FieldError] = Field(description="what was wrong")
    rejected: Instant = Field(description="when rejected (UTC)")


class DeadLetter(Record):
    """A message that could not be processed, with its raw bytes; readable by operations only."""

    dead_letter_id: UUID = Field(description="derived id: uuid5(topic, partition, offset)")
    source_topic: str = Field(max_length=249, description="topic it came from")
    source_partition: int = Field(description="partition it came from")
    source_offset: int = Field(description="offset it came from")
    reason: str = Field(
        max_length=REASON_MAX, description="why it was dead-lettered (e.g. UNDECODABLE, INVALID, CONFLICT)"
    )
    errors: list[FieldError] = Field(default_factory=list, description="broken rules, when known")
    notification_id: UUID | None = Field(None, description="notification id, when it could be read")
    raw_key: bytes | None = Field(None, description="the raw message key")
    raw_value: bytes | None = Field(None, description="the raw message value, or its first bytes when too large")
    at: Instant = Field(description="when dead-lettered (UTC)")
    stage: str = Field(
        "intake", max_length=100, description="the stage that failed: intake, or router.<step> (for redrive)"
    )
    raw_size: int | None = Field(None, description="size of the whole raw value in bytes")
    raw_truncated: bool = Field(False, description="raw_value is a bounded preview, not the whole value")


class AuditRecord(Record):
    """An append-only record of what was accepted or disclosed, to whom, why and under which basis."""

    audit_id: UUID = Field(description="derived id of this audit record")
    event: AuditEvent = Field(description="what happened")
    notification_id: UUID | None = Field(None, description="the notification")
    output_id: UUID | None = Field(None, description="the output disclosed or recalled")
    route: Route = Field(Route.UNKNOWN, description="the route")
    recipient: str | None = Field(
        None, max_length=RECIPIENT_MAX, description="recipient (school URN, authority code, team)"
    )
    purpose: str = Field(max_length=1000, description="why")
    lawful_basis: LawfulBasis = Field(LawfulBasis.UNKNOWN, description="lawful basis for the disclosure")
    at: Instant = Field(description="when (UTC)")


class SlaEvent(Record):
    """A change in an SLA clock."""

    sla_event_id: UUID = Field(description="derived id: uuid5(output, state)")
    output_id: UUID = Field(description="the output whose clock this is")
    route: Route = Field(description="the route")
    recipient: str = Field(max_length=RECIPIENT_MAX, description="recipient")
    state: SlaState = Field(description="STARTED, AT_RISK, BREACHED, MET or CANCELLED")
    due: Instant = Field(description="deadline (UTC)")
    at: Instant = Field(description="when the state changed (UTC)")
    calendar_verified: bool = Field(True, description="false when the deadline fell back to working days")


class ItemAcknowledgement(Record):
    """An authority's team acknowledged a routed item that has no richer acknowledgement of its own (an
    emergency duty alert, a MARAC referral); stops its SLA clock."""

    output_id: UUID = Field(description="the item acknowledged (alert_id, referral_id)")
    route: Route = Field(description="the item's route")
    recipient: str = Field(max_length=RECIPIENT_MAX, description="the acknowledging recipient (authority code)")
    acknowledged: Instant = Field(description="when (UTC)")
    by_role: str = Field("EDT", max_length=50, description="role of who acknowledged (never a name)")


class EncompassAcknowledgement(Record):
    """A school's designated safeguarding lead acknowledged an Encompass notice."""

    notice_id: UUID = Field(description="the notice acknowledged")
    school_urn: Urn = Field(description="the acknowledging school")
    acknowledged: Instant = Field(description="when (UTC)")
    by_role: str = Field("DSL", max_length=50, description="role of who acknowledged (never a name)")


class FrontDoorDecision(Record):
    """The front door decided the response to a referral."""

    referral_id: UUID = Field(description="the referral decided")
    authority: OnsCode = Field(description="the deciding authority")
    response: FrontDoorResponse = Field(description="the response type")
    rag: Rag = Field(Rag.UNKNOWN, description="RAG rating")
    decided: Instant = Field(description="when (UTC)")


class TriageItemDiscussed(Record):
    """A DV triage item was discussed at the meeting."""

    item_id: UUID = Field(description="the item discussed")
    authority: OnsCode = Field(description="the authority")
    marac_referred: bool = Field(False, description="whether the meeting referred it to MARAC")
    discussed: Instant = Field(description="when (UTC)")


class SupersedeRequest(Record):
    """Internal (router to router): recall whatever a superseded notification produced, in any partition.

    An AMEND or WITHDRAW whose predecessor was routed in another partition (another home authority) is
    broadcast to every partition of the router's input; the partition holding the predecessor recalls its
    outputs, the others remember the supersession in case the predecessor arrives late.
    """

    request_id: UUID = Field(description="derived id: uuid5(superseding notification, superseded notification)")
    superseded_id: UUID = Field(description="the notification superseded")
    by_notification_id: UUID = Field(description="the AMEND or WITHDRAW that supersedes it")
    action: Action = Field(description="AMEND or WITHDRAW")
    authority: str = Field(max_length=ONS_MAX, description="home authority of the superseding notification")
    issued: Instant = Field(description="when the superseding notification was received (UTC)")


AGENCY_BODIES: dict[AgencyType, tuple[type[Record], ...]] = {
    AgencyType.POLICE: (PoliceDomesticAbuseIncident, PoliceChildConcern),
    AgencyType.HEALTH: (HealthSafeguardingNotification,),
    AgencyType.PROBATION: (ProbationRiskNotification,),
    AgencyType.YOUTH_JUSTICE: (YouthJusticeNotification,),
}
NOTIFICATIONS: tuple[type[Record], ...] = tuple(t for ts in AGENCY_BODIES.values() for t in ts)
OUTPUTS: tuple[type[Record], ...] = (
    FrontDoorReferral,
    EncompassNotice,
    Recall,
    DvTriageItem,
    MaracReferral,
    EmergencyDutyAlert,
    CumulativeConcernAlert,
)
FEEDBACK: tuple[type[Record], ...] = (
    Rejection,
    DeadLetter,
    AuditRecord,
    SlaEvent,
    EncompassAcknowledgement,
    FrontDoorDecision,
    TriageItemDiscussed,
    ItemAcknowledgement,
)
INTERNAL: tuple[type[Record], ...] = (SupersedeRequest,)
ALL_RECORDS: tuple[type[Record], ...] = NOTIFICATIONS + OUTPUTS + FEEDBACK + INTERNAL

