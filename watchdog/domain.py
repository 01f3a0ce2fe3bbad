"""Words of the domain that every layer shares: portal status codes, submission channels, and a
case as the store hands it over (record and events)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from watchdog.i18n import _


class Status(IntEnum):
    """Case status codes of the national portal (TrangThaiHoSo)."""

    REGISTERED = 1  # Mới đăng ký
    RECEIVED = 2  # Được tiếp nhận
    NOT_ACCEPTED = 3  # Không được tiếp nhận
    IN_PROGRESS = 4  # Đang xử lý
    SUPPLEMENT = 5  # Yêu cầu bổ sung giấy tờ
    FINANCIAL = 6  # Yêu cầu thực hiện nghĩa vụ tài chính
    WITHDRAWN = 7  # Công dân yêu cầu rút hồ sơ
    STOPPED = 8  # Dừng xử lý
    FINISHED = 9  # Đã xử lý xong
    RETURNED = 10  # Đã trả kết quả

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]

    @property
    def is_open(self) -> bool:
        """Still being handled: the clock matters."""
        return self in OPEN_STATUSES

    @property
    def is_waiting(self) -> bool:
        """Waiting for the applicant (documents or fees)."""
        return self in _WAITING

    @property
    def is_finished(self) -> bool:
        return self in _FINISHED


_WAITING = frozenset({Status.SUPPLEMENT, Status.FINANCIAL})
_FINISHED = frozenset({Status.FINISHED, Status.RETURNED})

STATUS_LABELS = {
    Status.REGISTERED: "Mới đăng ký",
    Status.RECEIVED: "Được tiếp nhận",
    Status.NOT_ACCEPTED: "Không được tiếp nhận",
    Status.IN_PROGRESS: "Đang xử lý",
    Status.SUPPLEMENT: "Yêu cầu bổ sung giấy tờ",
    Status.FINANCIAL: "Yêu cầu thực hiện nghĩa vụ tài chính",
    Status.WITHDRAWN: "Công dân yêu cầu rút hồ sơ",
    Status.STOPPED: "Dừng xử lý",
    Status.FINISHED: "Đã xử lý xong",
    Status.RETURNED: "Đã trả kết quả",
}
OPEN_STATUSES = frozenset(
    {Status.REGISTERED, Status.RECEIVED, Status.IN_PROGRESS, Status.SUPPLEMENT, Status.FINANCIAL}
)
# Closed without a result: counted as received in reports, never as on time or late.
CLOSED_WITHOUT_RESULT = frozenset({Status.WITHDRAWN, Status.STOPPED})

CHANNELS = {"1": "direct", "2": "online", "3": "postal"}
_CHANNEL_NAMES = {
    "direct": "direct",
    "trựctiếp": "direct",
    "online": "online",
    "trựctuyến": "online",
    "dịchvụcôngtrựctuyến": "online",
    "postal": "postal",
    "bưuchính": "postal",
    "bưuchínhcôngích": "postal",
}


def fold(text: str) -> str:
    """Lower-case, no accents, no spaces or punctuation: how we compare header and value names."""
    text = unicodedata.normalize("NFD", str(text).strip().lower()).replace("đ", "d")
    return "".join(ch for ch in text if ch.isalnum() and not unicodedata.combining(ch))


_STATUS_BY_NAME = {fold(label): s for s, label in STATUS_LABELS.items()} | {
    fold(s.name): s for s in Status
}


def parse_status(value: object) -> Status:
    text = str(value).strip()
    if text.endswith(".0"):  # spreadsheets store codes as floats
        text = text[:-2]
    if text.isdigit() and 1 <= int(text) <= 10:
        return Status(int(text))
    found = _STATUS_BY_NAME.get(fold(text))
    if found is None:
        raise ValueError(
            _("expected a portal status code 1-10 or its name, got {value}").format(
                value=repr(value)
            )
        )
    return found


_CHANNELS_FOLDED = {fold(k): v for k, v in _CHANNEL_NAMES.items()}

_NATIONAL_CODE = re.compile(r"^\d\.\d{6}$")
_SHORT_NATIONAL = re.compile(r"^\d\.\d{1,5}$")


def procedure_code(value: object) -> str:
    """A TTHC code as written by people and spreadsheets, in the national `d.dddddd` form.

    Excel (and unquoted YAML) turn `1.012790` into the number 1.01279: a number, or a text
    such as "1.01279", is restored to `1.012790`. A whole number stays as it is (a local
    numeric code). Raises ValueError for a number that no `d.dddddd` code gives, never
    truncating it.
    """
    if isinstance(value, bool):
        raise ValueError(
            _("expected a procedure code such as 1.012790, got {value}").format(value=repr(value))
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        text = f"{value:.6f}"
        if float(text) != value or not _NATIONAL_CODE.match(text):
            raise ValueError(
                _(
                    "the number {value} is no national TTHC code (d.dddddd, such as 1.012790): "
                    "write the code as text"
                ).format(value=repr(value))
            )
        return text
    text = str(value).strip()
    if _SHORT_NATIONAL.match(text):
        return text.ljust(8, "0")
    return text


def parse_channel(value: object) -> str:
    text = str(value).strip().removesuffix(".0")
    found = CHANNELS.get(text) or _CHANNELS_FOLDED.get(fold(text))
    if found is None:
        raise ValueError(
            _(
                "expected a channel 1 (direct), 2 (online) or 3 (postal) or its name, got {value}"
            ).format(value=repr(value))
        )
    return found


class EventKind(StrEnum):
    """What can happen to a case (SPEC 6 event kinds)."""

    RECEIVED = "received"
    ASSIGNED = "assigned"
    STEP_STARTED = "step_started"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    SUPPLEMENT_RECEIVED = "supplement_received"
    EXTENDED = "extended"
    FINISHED = "finished"
    RETURNED = "returned"
    WITHDRAWN = "withdrawn"
    STOPPED = "stopped"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """A case as stored, independent of where: what the engine, board and reports read.

    `version` is the store's row version (+1 on every change by any source); a plan made from
    this record is written only while the stored row still has it.
    """

    case_code: str
    procedure_code: str
    unit_code: str
    received_at: datetime
    status: Status
    due_at: datetime | None = None
    finished_at: datetime | None = None
    returned_at: datetime | None = None
    assignee: str | None = None
    current_step: str | None = None
    step_started_at: datetime | None = None
    step_handler: str | None = None
    applicant_name: str | None = None
    applicant_phone: str | None = None
    submission_channel: str | None = None
    source_updated_at: datetime | None = None  # the source's own timestamp of its last change
    id: int | None = None
    version: int = 0

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Batches travel to worker processes pickled: a plain tuple of values is far cheaper
        # than the generic slots state.
        return (CaseRecord, tuple(getattr(self, name) for name in RECORD_FIELDS))

    @property
    def is_open(self) -> bool:
        return self.status.is_open


RECORD_FIELDS = tuple(f.name for f in fields(CaseRecord))


@dataclass(frozen=True, slots=True)
class Fired:
    """What the store knows of a stage's earlier firings for one (case, stage, step, version):
    the last repeat written, whether any was acknowledged, and when the last one came due."""

    last_repeat: int
    acknowledged: bool = False
    last_fire_at: datetime | None = None  # when the last one came due (None: compare numbers)

    def covers(self, n: int, fire_at: datetime) -> bool:
        """Whether repeat `n`, due at `fire_at`, was already written. Instants are compared
        when known, so a `repeat` changed by a rules reload neither re-sends nor goes silent."""
        if self.last_fire_at is not None:
            return fire_at <= self.last_fire_at
        return n <= self.last_repeat


@dataclass(frozen=True, slots=True)
class CaseEvent:
    kind: str
    at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)


class Rank(IntEnum):
    """Where a case stands for the reads, stored with its plan (`cases.plan_rank`): the order
    of the board's groups, and what the stored due means."""

    RUNNING = 0  # open, the clock runs: on track, due soon or overdue by the due
    WAITING = 1  # open, waiting for the applicant: the clock stands
    NO_DUE = 2  # open, nothing to judge it by (unknown procedure, no appointment)
    CLOSED = 3  # finished, returned, withdrawn, stopped or not accepted
    ERROR = 4  # its deadline cannot be computed (an evaluation_error finding says why)
