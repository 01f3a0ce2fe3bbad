"""Deadline state of a case (docs/engine.md "Deadline state of a case", SPEC 4).

Default VN calendar: office hours 07:00-11:30 and 13:30-17:00 (8 working hours a day), cutoff
15:00, zone Asia/Ho_Chi_Minh. March 2026 has no public holiday: Mon 02/03 ... Fri 06/03,
Mon 09/03 ... Fri 13/03, Mon 16/03 ... Fri 20/03, Mon 23/03 ... Every expected instant is
worked out by hand in the comment next to it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from watchdog.config import Settings, load_settings
from watchdog.domain import Status
from watchdog.engine.deadline import (
    CaseEvent,
    CaseRecord,
    EventKind,
    Result,
    State,
    Timeline,
    open_state,
    result_of,
    timeline,
)
from watchdog.engine.evaluate import findings_of

VN = ZoneInfo("Asia/Ho_Chi_Minh")
H = 3600
DAY = 8 * H

CONFIG = """\
timezone: Asia/Ho_Chi_Minh
calendars:
  default: {}
units:
  - {code: T, name: UBND tỉnh, heads: [chutich]}
  - {code: STP, name: Sở Tư pháp, parent: T, heads: [giamdoc]}
  - {code: STP.HC, name: Phòng Hành chính tư pháp, parent: STP, heads: [truongphong]}
  - {code: STP.HC.MC, name: Bộ phận một cửa, parent: STP.HC}
officials:
  - {id: chutich, name: Chủ tịch, unit: T, email: ct@tinh.vn}
  - {id: giamdoc, name: Giám đốc, unit: STP, email: gd@stp.vn}
  - {id: truongphong, name: Trưởng phòng, unit: STP.HC, email: tp@stp.vn}
  - {id: cv1, name: Chuyên viên 1, unit: STP.HC.MC, email: cv1@stp.vn, telegram: 2001}
  - {id: cv2, name: Chuyên viên 2, unit: STP.HC.MC, email: cv2@stp.vn}
  - {id: cv3, name: Chuyên viên 3, unit: STP.HC.MC}
procedures:
  - code: "1.001"
    name: Mười ngày
    limit: 10 working_days
    steps:
      - {code: B1, name: Tiếp nhận, allot: 1 working_day}
      - {code: B2, name: Thẩm định, allot: 4 working_hours}
      - {code: B3, name: Phê duyệt, allot: 2 working_days}
  - {code: "1.002", name: Năm ngày làm lại, limit: 5 working_days, on_supplement: restart}
  - {code: "2.001", name: Ba ngày, limit: 3 working_days}
channels:
  file: {dir: out}
  email: {host: localhost, from: a@b.vn}
rules: []
"""


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    path: Path = tmp_path_factory.mktemp("deadline") / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_settings(path, env={})


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=VN)


def case(**kw) -> CaseRecord:
    """Case A: procedure 1.001 (10 working days), received Mon 02/03/2026 08:00.

    S = 08:00 Mon 02/03 (a working instant, before the cutoff). Due = S + 80 h: Mon gives
    08:00-11:30 + 13:30-17:00 = 7 h, then 9 full days (03, 04, 05, 06, 09, 10, 11, 12, 13/03)
    = 72 h -> 79 h, the last hour runs 07:00-08:00 on Mon 16/03: due Mon 16/03/2026 08:00.
    """
    base = dict(
        case_code="HS-A",
        procedure_code="1.001",
        unit_code="STP.HC.MC",
        received_at=vn(2026, 3, 2, 8),
        status=Status.IN_PROGRESS,
        assignee="cv1",
    )
    base.update(kw)
    return CaseRecord(**base)


def ev(kind: EventKind, at: datetime, **data) -> CaseEvent:
    return CaseEvent(kind.value, at, data)


def tl_of(settings: Settings, c: CaseRecord, events=()) -> Timeline:
    return timeline(
        c,
        list(events),
        settings.procedures.get(c.procedure_code),
        settings.calendar_for(c.unit_code),
    )


def cal(settings: Settings):
    return settings.calendar_for("STP.HC.MC")


A_DUE = vn(2026, 3, 16, 8)


# ----- due: computed or from the source ----------------------------------------------------


def test_computed_due_when_the_source_gives_none(settings: Settings) -> None:
    tl = tl_of(settings, case())
    assert tl.start == vn(2026, 3, 2, 8)
    assert tl.due == A_DUE
    assert tl.computed_due == A_DUE
    assert tl.source_due is None
    assert (tl.due_version, tl.extensions, tl.supplements, tl.waited) == (0, 0, 0, 0)
    assert tl.waiting_since is None


def test_spec_example_received_before_tet(settings: Settings) -> None:
    # Fri 13/02/2026 09:00, 3 working days: Fri gives 6 h, Tết 16-20/02 and the weekends are
    # skipped, Mon 23 + Tue 24/02 give 16 h, the last 2 h run 07:00-09:00 Wed 25/02.
    tl = tl_of(settings, case(procedure_code="2.001", received_at=vn(2026, 2, 13, 9)))
    assert tl.due == vn(2026, 2, 25, 9)


def test_received_after_cutoff_starts_next_working_day(settings: Settings) -> None:
    # Mon 02/03 15:30 >= cutoff 15:00: S = Tue 03/03 07:00; 3 working days from an opening =
    # close of the 3rd working day counting Tue: Tue, Wed, Thu -> Thu 05/03 17:00.
    tl = tl_of(settings, case(procedure_code="2.001", received_at=vn(2026, 3, 2, 15, 30)))
    assert tl.start == vn(2026, 3, 3, 7)
    assert tl.due == vn(2026, 3, 5, 17)


def test_source_due_at_is_authoritative(settings: Settings) -> None:
    source = vn(2026, 3, 17, 9)  # the source's appointment, 9 working hours after computed
    tl = tl_of(settings, case(due_at=source))
    assert tl.due == source
    assert tl.source_due == source
    assert tl.computed_due == A_DUE


def test_unknown_procedure_has_no_computed_due(settings: Settings) -> None:
    tl = tl_of(settings, case(procedure_code="9.999"))
    assert tl.computed_due is None and tl.due is None
    assert tl.measure(cal(settings), vn(2026, 3, 3, 9)) is None
    # ... but the source's appointment still counts
    tl = tl_of(settings, case(procedure_code="9.999", due_at=vn(2026, 3, 20, 17)))
    assert tl.due == vn(2026, 3, 20, 17)
    assert tl.computed_due is None


# ----- supplements ---------------------------------------------------------------------------


def test_pause_moves_due_by_waited_working_time(settings: Settings) -> None:
    # Waits Wed 04/03 10:00 -> Mon 09/03 10:00: Wed 10:00-11:30 + 13:30-17:00 = 5 h,
    # Thu 8 h, Fri 8 h, Mon 07:00-10:00 = 3 h: 24 h = 3 working days.
    # Due Mon 16/03 08:00 + 24 h: Mon 7 h, Tue 17 8 h, Wed 18 8 h = 23 h, 07:00-08:00 Thu 19/03.
    events = [
        ev(EventKind.SUPPLEMENT_REQUESTED, vn(2026, 3, 4, 10)),
        ev(EventKind.SUPPLEMENT_RECEIVED, vn(2026, 3, 9, 10)),
    ]
    tl = tl_of(settings, case(), events)
    assert tl.due == vn(2026, 3, 19, 8)
    assert tl.due_version == 1
    assert tl.waited == 24 * H
    assert tl.supplements == 1
    assert tl.extensions == 0
    assert tl.waiting_since is None
    assert tl.computed_due == A_DUE  # the computed due stays the original one


def test_pause_excludes_the_wait_from_elapsed(settings: Settings) -> None:
    events = [
        ev(EventKind.SUPPLEMENT_REQUESTED, vn(2026, 3, 4, 10)),
        ev(EventKind.SUPPLEMENT_RECEIVED, vn(2026, 3, 9, 10)),
    ]
    tl = tl_of(settings, case(), events)
    # At Tue 10/03 10:00: since S 7+8+8+8+8+8 (02..06, 09/03) + 3 (07:00-10:00) = 50 h, minus
    # 24 h waited = 26 h elapsed; remaining to Thu 19/03 08:00: Tue 10:00-17:00 5 h,
    # 11, 12, 13, 16, 17, 18/03 48 h, Thu 07:00-08:00 1 h = 54 h. 26 + 54 = 80 h, the limit.
    m = tl.measure(cal(settings), vn(2026, 3, 10, 10))
    assert (m.elapsed, m.remaining, m.overdue) == (26 * H, 54 * H, 0)
    assert m.share == pytest.approx(26 / 80)


def test_restart_runs_full_limit_from_completion(settings: Settings) -> None:
    # 1.002: 5 working days, restart. Received Mon 02/03 08:00 -> due Mon 09/03 08:00.
    # Waits Tue 03/03 09:00 -> Thu 05/03 14:00 (before the cutoff: S' = 14:00).
    # New due = 14:00 Thu + 40 h: Thu 3 h, Fri 8, Mon 09 8, Tue 10 8, Wed 11 8 = 35 h,
    # then Thu 12/03 07:00-11:30 4.5 h + 13:30-14:00 0.5 h: Thu 12/03 14:00.
    c = case(procedure_code="1.002")
    assert tl_of(settings, c).due == vn(2026, 3, 9, 8)
    events = [
        ev(EventKind.SUPPLEMENT_REQUESTED, vn(2026, 3, 3, 9)),
        ev(EventKind.SUPPLEMENT_RECEIVED, vn(2026, 3, 5, 14)),
    ]
    tl = tl_of(settings, c, events)
    assert tl.due == vn(2026, 3, 12, 14)
    assert tl.due_version == 1
    # Elapsed restarts at S': at Fri 06/03 14:00 it is Thu 14:00-17:00 3 h + Fri 07:00-11:30
    # 4.5 h + 13:30-14:00 0.5 h = 8 h; remaining to Thu 12/03 14:00 = 40 - 8 = 32 h.
    m = tl.measure(cal(settings), vn(2026, 3, 6, 14))
    assert (m.elapsed, m.remaining) == (8 * H, 32 * H)
    assert m.share == pytest.approx(0.2)


def test_restart_completed_after_cutoff_counts_from_next_day(settings: Settings) -> None:
    # Completed Thu 05/03 16:00 (after the cutoff): S' = Fri 06/03 07:00; 5 working days from
    # an opening = close of the 5th: Fri 06, Mon 09, Tue 10, Wed 11, Thu 12/03 -> 17:00.
    events = [
        ev(EventKind.SUPPLEMENT_REQUESTED, vn(2026, 3, 3, 9)),
        ev(EventKind.SUPPLEMENT_RECEIVED, vn(2026, 3, 5, 16)),
    ]
    tl = tl_of(settings, case(procedure_code="1.002"), events)
    assert tl.due == vn(2026, 3, 12, 17)
    assert tl.due_version == 1


def test_waiting_status_without_events_waits_since_source_update(settings: Settings) -> None:
    c = case(status=Status.SUPPLEMENT, source_updated_at=vn(2026, 3, 4, 10))
    tl = tl_of(settings, c)
    assert tl.waiting_since == vn(2026, 3, 4, 10)
    assert tl.due == A_DUE  # the due does not move while the wait lasts
    assert tl.due_version == 0


def test_waiting_status_without_update_waits_since_received(settings: Settings) -> None:
    tl = tl_of(settings, case(status=Status.FINANCIAL))
    assert tl.waiting_since == vn(2026, 3, 2, 8)


def test_a_request_on_record_wins_over_updated_at(settings: Settings) -> None:
    c = case(status=Status.SUPPLEMENT, source_updated_at=vn(2026, 3, 6, 9))
    tl = tl_of(settings, c, [ev(EventKind.SUPPLEMENT_REQUESTED, vn(2026, 3, 4, 10))])
    assert tl.waiting_since == vn(2026, 3, 4, 10)
    assert tl.supplements == 1


def test_measure_is_frozen_while_waiting(settings: Settings) -> None:
    # Waiting since Wed 04/03 10:00. Elapsed then: Mon 02/03 08:00-17:00 7 h, Tue 8 h,
    # Wed 07:00-10:00 3 h = 18 h; remaining = 80 - 18 = 62 h; share = 18/80.
    c = case(status=Status.SUPPLEMENT, source_updated_at=vn(2026, 3, 4, 10))
    tl = tl_of(settings, c)
    for now in (vn(2026, 3, 4, 10), vn(2026, 3, 6, 12), vn(2026, 3, 10, 9), vn(2026, 3, 20, 9)):
        m = tl.measure(cal(settings), now)
        assert (m.elapsed, m.remaining, m.overdue) == (18 * H, 62 * H, 0), now
        assert m.share == pytest.approx(18 / 80)


# ----- extensions ------------------------------------------------------------------------


def test_extension_sets_new_due(settings: Settings) -> None:
    new_due = vn(2026, 3, 20, 17)
    events = [ev(EventKind.EXTENDED, vn(2026, 3, 12, 10), new_due=new_due, previous_due=A_DUE)]
    tl = tl_of(settings, case(due_at=new_due), events)
    assert tl.due == new_due
    assert tl.due_version == 1
    assert tl.extensions == 1
    # the first appointment is the one the first extension replaced, not the record's due_at
    assert tl.source_due == A_DUE
    assert findings_of(case(due_at=new_due), tl, settings, cal(settings)) == []


def test_extension_due_given_as_iso_text(settings: Settings) -> None:
    events = [
        ev(
            EventKind.EXTENDED,
            vn(2026, 3, 12, 10),
            new_due="2026-03-20T17:00:00+07:00",
            previous_due="2026-03-16T08:00:00+07:00",
        )
    ]
    tl = tl_of(settings, case(), events)
    assert tl.due == vn(2026, 3, 20, 17)
    assert tl.source_due == A_DUE


def test_a_second_extension_leaves_the_due_and_is_a_finding(settings: Settings) -> None:
    """SPEC 4 / DOMAIN: the appointment may be reset only once. Due A = Mon 16/03 08:00; the
    first extension (recorded Thu 12/03 10:00, 1 working day + 6 h ahead) moves it to Fri 20/03
    17:00; the second (Thu 19/03 10:00, to 25/03) is refused: the due stays Fri 20/03 17:00."""
    events = [
        ev(
            EventKind.EXTENDED, vn(2026, 3, 12, 10), new_due=vn(2026, 3, 20, 17), previous_due=A_DUE
        ),
        ev(EventKind.EXTENDED, vn(2026, 3, 19, 10), new_due=vn(2026, 3, 25, 17)),
    ]
    c = case(due_at=vn(2026, 3, 25, 17))
    tl = tl_of(settings, c, events)
    assert tl.due == vn(2026, 3, 20, 17)
    assert (tl.extensions, tl.due_version) == (1, 1)
    assert tl.second_extensions == (vn(2026, 3, 19, 10),)
    kinds = [f.kind for f in findings_of(c, tl, settings, cal(settings))]
    assert kinds == ["second_extension"]
    closed = case(due_at=vn(2026, 3, 25, 17), status=Status.FINISHED)
    closed_tl = tl_of(settings, closed, events)  # a closed case keeps the finding
    assert [f.kind for f in findings_of(closed, closed_tl, settings, cal(settings))] == [
        "second_extension"
    ]


def test_an_extension_recorded_less_than_a_working_day_ahead_moves_nothing(
    settings: Settings,
) -> None:
    """Due A = Mon 16/03 08:00. Recorded Fri 13/03 08:00: from then to the due is Fri 08:00-
    11:30 (3 h 30) + 13:30-17:00 (3 h 30) + Mon 07:00-08:00 (1 h) = 8 h = exactly one working
    day: accepted. Recorded Fri 13/03 08:01: 7 h 59 min: too late, the due stays."""
    on_time = [
        ev(EventKind.EXTENDED, vn(2026, 3, 13, 8), new_due=vn(2026, 3, 20, 17), previous_due=A_DUE)
    ]
    assert tl_of(settings, case(due_at=A_DUE), on_time).due == vn(2026, 3, 20, 17)
    late = [
        ev(
            EventKind.EXTENDED,
            vn(2026, 3, 13, 8, 1),
            new_due=vn(2026, 3, 20, 17),
            previous_due=A_DUE,
        )
    ]
    c = case(due_at=A_DUE)
    tl = tl_of(settings, c, late)
    assert tl.due == A_DUE and tl.extensions == 0
    assert tl.late_extensions == (vn(2026, 3, 13, 8, 1),)
    assert [f.kind for f in findings_of(c, tl, settings, cal(settings))] == ["late_extension"]


def test_an_appointment_moved_after_the_due_keeps_a_late_case_late(settings: Settings) -> None:
    """Moved on Tue 17/03 (after the due Mon 16/03 08:00) to 20/03, finished 19/03: late."""
    moved = vn(2026, 3, 20, 17)
    events = [ev(EventKind.EXTENDED, vn(2026, 3, 17, 10), new_due=moved, previous_due=A_DUE)]
    c = case(due_at=A_DUE, status=Status.FINISHED, finished_at=vn(2026, 3, 19, 10))
    tl = tl_of(settings, c, events)
    assert tl.due == A_DUE
    assert result_of(c.finished_at, tl.due, cal(settings)) is Result.LATE


def test_a_supplement_requested_after_the_due_pauses_nothing(settings: Settings) -> None:
    """Due A = Mon 16/03 08:00; documents requested Tue 17/03 10:00: the case stays overdue,
    not waiting; received back Fri 20/03 10:00: the due does not move."""
    events = [
        ev(EventKind.SUPPLEMENT_REQUESTED, vn(2026, 3, 17, 10)),
        ev(EventKind.SUPPLEMENT_RECEIVED, vn(2026, 3, 20, 10)),
    ]
    tl = tl_of(settings, case(), events)
    assert tl.due == A_DUE and tl.waited == 0 and tl.waiting_since is None
    assert tl.late_supplements == (vn(2026, 3, 17, 10),)
    waiting = case(status=Status.SUPPLEMENT)
    tl = tl_of(settings, waiting, events[:1])
    assert tl.waiting_since is None
    assert open_state(tl, cal(settings), vn(2026, 3, 18, 9)).state is State.OVERDUE


def test_a_case_first_seen_waiting_after_its_due_is_overdue(settings: Settings) -> None:
    """No request on record; the source says it changed (to waiting) Tue 17/03 10:00, after
    the due: not waiting. Changed Thu 12/03 10:00, before the due: waiting since then."""
    late = case(status=Status.SUPPLEMENT, source_updated_at=vn(2026, 3, 17, 10))
    tl = tl_of(settings, late)
    assert tl.waiting_since is None
    assert open_state(tl, cal(settings), vn(2026, 3, 18, 9)).state is State.OVERDUE
    early = case(status=Status.SUPPLEMENT, source_updated_at=vn(2026, 3, 12, 10))
    assert tl_of(settings, early).waiting_since == vn(2026, 3, 12, 10)


def test_extension_for_supplement_is_not_counted(settings: Settings) -> None:
    # The source re-set its appointment because documents arrived: a new due, a new version,
    # but no extension (gia hạn). Given in reverse order at the same instant: the completed
    # supplement is replayed first, so the appointment is the final due (not moved by the
    # 24 h pause afterwards).
    new_due = vn(2026, 3, 19, 10)
    events = [
        ev(EventKind.SUPPLEMENT_REQUESTED, vn(2026, 3, 4, 10)),
        ev(EventKind.EXTENDED, vn(2026, 3, 9, 10), new_due=new_due, reason="supplement"),
        ev(EventKind.SUPPLEMENT_RECEIVED, vn(2026, 3, 9, 10)),
    ]
    tl = tl_of(settings, case(), events)
    assert tl.due == new_due
    assert tl.extensions == 0
    assert tl.due_version == 2  # one for the completed supplement, one for the new appointment


def test_extension_without_new_due_changes_nothing(settings: Settings) -> None:
    tl = tl_of(settings, case(), [ev(EventKind.EXTENDED, vn(2026, 3, 12, 10))])
    assert tl.due == A_DUE
    assert (tl.due_version, tl.extensions) == (0, 0)


# ----- measures ------------------------------------------------------------------------------


def test_measure_before_at_and_after_due(settings: Settings) -> None:
    tl = tl_of(settings, case())
    c = cal(settings)
    # Wed 11/03 14:00: elapsed Mon 7 + Tue..Tue (03,04,05,06,09,10) 48 + Wed 07:00-11:30 4.5
    # + 13:30-14:00 0.5 = 60 h; remaining 80 - 60 = 20 h; share 0.75.
    m = tl.measure(c, vn(2026, 3, 11, 14))
    assert (m.elapsed, m.remaining, m.overdue) == (60 * H, 20 * H, 0)
    assert m.share == pytest.approx(0.75)
    m = tl.measure(c, A_DUE)
    assert (m.elapsed, m.remaining, m.overdue, m.share) == (80 * H, 0, 0, 1.0)
    # Tue 17/03 08:00: one working day past due (Mon 08:00-17:00 7 h + Tue 07:00-08:00 1 h).
    m = tl.measure(c, vn(2026, 3, 17, 8))
    assert (m.elapsed, m.remaining, m.overdue) == (88 * H, -8 * H, 8 * H)
    assert m.share == pytest.approx(88 / 80)


def test_measure_outside_office_hours_counts_working_time_only(settings: Settings) -> None:
    tl = tl_of(settings, case())
    # Sat 07/03 and Sun 08/03 are off: the same as Fri 06/03 17:00 = 7 + 8*4 = 39 h elapsed.
    for now in (vn(2026, 3, 6, 17), vn(2026, 3, 7, 10), vn(2026, 3, 9, 6, 59)):
        m = tl.measure(cal(settings), now)
        assert (m.elapsed, m.remaining) == (39 * H, 41 * H), now


def test_open_state(settings: Settings) -> None:
    c = cal(settings)
    tl = tl_of(settings, case())
    assert open_state(tl, c, vn(2026, 3, 12, 9)).state is State.ON_TRACK
    # Fri 13/03 08:00: exactly 1 working day left (Fri 08:00-17:00 7 h + Mon 07:00-08:00 1 h)
    assert open_state(tl, c, vn(2026, 3, 13, 7, 59)).state is State.ON_TRACK
    assert open_state(tl, c, vn(2026, 3, 13, 8)).state is State.DUE_SOON
    assert open_state(tl, c, vn(2026, 3, 16, 8, 0, 1)).state is State.OVERDUE
    st = open_state(tl, c, vn(2026, 3, 17, 8))
    assert (st.due, st.remaining) == (A_DUE, -8 * H)
    waiting = tl_of(settings, case(status=Status.SUPPLEMENT, source_updated_at=vn(2026, 3, 4, 10)))
    assert open_state(waiting, c, vn(2026, 3, 20, 9)).state is State.WAITING
    unknown = tl_of(settings, case(procedure_code="9.999"))
    assert open_state(unknown, c, vn(2026, 3, 3, 9)).state is State.NO_DUE


# ----- steps ---------------------------------------------------------------------------------


def _step_events() -> list[CaseEvent]:
    return [
        ev(EventKind.STEP_STARTED, vn(2026, 3, 2, 8), step="B1", handler="cv1"),
        ev(EventKind.STEP_STARTED, vn(2026, 3, 2, 14), step="B2", handler="cv2"),
        ev(EventKind.STEP_STARTED, vn(2026, 3, 3, 7, 30), step="B3", handler="cv1"),
    ]


def test_step_runs_and_results(settings: Settings) -> None:
    c = case(current_step="B1", step_started_at=vn(2026, 3, 5, 10), step_handler="cv3")
    tl = tl_of(settings, c, _step_events())
    runs = [(r.code, r.handler, r.started_at, r.due, r.finished_at, r.result) for r in tl.steps]
    assert runs == [
        # B1, 1 working day from Mon 02/03 08:00: Mon 7 h + Tue 07:00-08:00 -> Tue 03/03 08:00;
        # ended Mon 14:00, a day before its due day: early.
        ("B1", "cv1", vn(2026, 3, 2, 8), vn(2026, 3, 3, 8), vn(2026, 3, 2, 14), Result.EARLY),
        # B2, 4 working hours from Mon 14:00: 14:00-17:00 3 h + Tue 07:00-08:00 -> Tue 08:00;
        # ended Tue 07:30, before the due on the due day: on time.
        ("B2", "cv2", vn(2026, 3, 2, 14), vn(2026, 3, 3, 8), vn(2026, 3, 3, 7, 30), Result.ON_TIME),
        # B3, 2 working days from Tue 07:30: Tue 07:30-11:30 4 h + 3.5 h, Wed 8 h = 15.5 h,
        # Thu 07:00-07:30 -> Thu 05/03 07:30; ended Thu 10:00: late.
        (
            "B3",
            "cv1",
            vn(2026, 3, 3, 7, 30),
            vn(2026, 3, 5, 7, 30),
            vn(2026, 3, 5, 10),
            Result.LATE,
        ),
        # The record's current step: B1 from Thu 10:00, 8 h: Thu 10:00-11:30 1.5 h +
        # 13:30-17:00 3.5 h = 5 h, Fri 07:00-10:00 -> Fri 06/03 10:00. Still running.
        ("B1", "cv3", vn(2026, 3, 5, 10), vn(2026, 3, 6, 10), None, None),
    ]
    assert tl.current_step == tl.steps[-1]


def test_record_step_equal_to_last_event_is_not_duplicated(settings: Settings) -> None:
    c = case(current_step="B3", step_started_at=vn(2026, 3, 3, 7, 30), step_handler="cv1")
    tl = tl_of(settings, c, _step_events())
    assert [r.code for r in tl.steps] == ["B1", "B2", "B3"]
    assert tl.current_step is not None and tl.current_step.code == "B3"
    assert tl.current_step.due == vn(2026, 3, 5, 7, 30)


def test_closed_case_finishes_its_last_step(settings: Settings) -> None:
    c = case(status=Status.FINISHED, finished_at=vn(2026, 3, 4, 16))
    tl = tl_of(settings, c, _step_events())
    last = tl.steps[-1]
    # B3 due Thu 05/03 07:30, finished Wed 04/03 16:00: an earlier day -> early
    assert (last.code, last.finished_at, last.result) == ("B3", vn(2026, 3, 4, 16), Result.EARLY)
    assert tl.current_step is None


def test_step_started_in_lunch_break_counts_from_afternoon(settings: Settings) -> None:
    # B2 (4 h) started Mon 02/03 12:00 -> moved to 13:30: 13:30-17:00 3.5 h + Tue 07:00-07:30.
    c = case(current_step="B2", step_started_at=vn(2026, 3, 2, 12), step_handler="cv2")
    assert tl_of(settings, c).current_step.due == vn(2026, 3, 3, 7, 30)


def test_step_started_after_cutoff_counts_from_its_start(settings: Settings) -> None:
    # B2 (4 h) started Mon 02/03 16:00, a working instant: 16:00-17:00 1 h + Tue 07:00-10:00.
    c = case(current_step="B2", step_started_at=vn(2026, 3, 2, 16), step_handler="cv2")
    assert tl_of(settings, c).current_step.due == vn(2026, 3, 3, 10)


def test_unknown_step_has_no_due(settings: Settings) -> None:
    c = case(current_step="B9", step_started_at=vn(2026, 3, 3, 9), step_handler="cv2")
    run = tl_of(settings, c).current_step
    assert run.code == "B9" and run.due is None and run.result is None


def test_result_of() -> None:
    from watchdog.calendar import WorkingCalendar

    c = WorkingCalendar()
    due = vn(2026, 3, 5, 10)
    assert result_of(vn(2026, 3, 4, 16, 59), due, c) is Result.EARLY
    assert result_of(vn(2026, 3, 5, 7), due, c) is Result.ON_TIME
    assert result_of(due, due, c) is Result.ON_TIME
    assert result_of(vn(2026, 3, 5, 10, 0, 1), due, c) is Result.LATE


# ----- last activity ------------------------------------------------------------------------


def test_last_activity_is_the_latest_of_everything(settings: Settings) -> None:
    c = case()
    assert tl_of(settings, c).last_activity == vn(2026, 3, 2, 8)  # received
    events = [*_step_events(), ev(EventKind.ASSIGNED, vn(2026, 3, 4, 9), to="cv2")]
    assert tl_of(settings, c, events).last_activity == vn(2026, 3, 4, 9)  # an event
    c = case(source_updated_at=vn(2026, 3, 5, 9))
    assert tl_of(settings, c, events).last_activity == vn(2026, 3, 5, 9)  # source update
    c = case(
        source_updated_at=vn(2026, 3, 5, 9),
        current_step="B1",
        step_started_at=vn(2026, 3, 5, 10),
        step_handler="cv3",
    )
    assert tl_of(settings, c, events).last_activity == vn(2026, 3, 5, 10)  # the step's start
