"""Rule evaluation: windows, repeats, inhibits, next_check_at and findings (docs/engine.md).

Default VN calendar (07:00-11:30, 13:30-17:00, cutoff 15:00), zone Asia/Ho_Chi_Minh; March 2026
has no public holiday. Case A: procedure 1.001 (10 working days) received Mon 02/03/2026 08:00,
so S = Mon 02/03 08:00 and D = Mon 16/03/2026 08:00 (Mon 7 h + 9 full days 72 h + Mon 16/03
07:00-08:00). Every expected instant is worked out by hand in the comment next to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from watchdog.config import load_settings
from watchdog.domain import Status
from watchdog.engine.deadline import CaseEvent, CaseRecord, EventKind
from watchdog.engine.evaluate import Evaluation, Fired, evaluate
from watchdog.engine.rules import CompiledStage, load_rules

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SEC = timedelta(seconds=1)

CONFIG = """\
timezone: Asia/Ho_Chi_Minh
calendars:
  default: {}
units:
  - {code: T, name: UBND tỉnh, heads: [chutich]}
  - {code: STP, name: Sở Tư pháp, parent: T, heads: [giamdoc]}
  - {code: STP.HC, name: Phòng Hành chính tư pháp, parent: STP, heads: [truongphong]}
  - {code: STP.HC.MC, name: Bộ phận một cửa, parent: STP.HC}
  - {code: STP.VP, name: Văn phòng Sở, parent: STP, heads: [chanhvp]}
officials:
  - {id: chutich, name: Chủ tịch, unit: T, email: ct@tinh.vn}
  - {id: giamdoc, name: Giám đốc, unit: STP, email: gd@stp.vn, telegram: 1001}
  - {id: truongphong, name: Trưởng phòng, unit: STP.HC, email: tp@stp.vn, telegram: 1002}
  - {id: chanhvp, name: Chánh văn phòng, unit: STP.VP, email: cvp@stp.vn}
  - {id: cv1, name: Chuyên viên 1, unit: STP.HC.MC, email: cv1@stp.vn, telegram: 2001}
  - {id: cv2, name: Chuyên viên 2, unit: STP.HC.MC, email: cv2@stp.vn}
  - {id: cv3, name: Chuyên viên 3, unit: STP.VP}
supervisors: [thanhtra@tinh.vn]
procedures:
  - code: "1.001"
    name: Mười ngày
    limit: 10 working_days
    steps:
      - {code: B1, name: Tiếp nhận, allot: 1 working_day}
      - {code: B2, name: Thẩm định, allot: 4 working_hours}
  - {code: "1.002", name: Năm ngày làm lại, limit: 5 working_days, on_supplement: restart}
channels:
  file: {dir: out}
  email: {host: localhost, from: a@b.vn}
  telegram: {token: "123:abc"}
"""


class World:
    """The module's settings plus a way to turn stage specs into compiled stages: each set
    of specs becomes a rules file, loaded by load_rules as `watchdog check` would."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "config.yaml").write_text(CONFIG, encoding="utf-8")
        self.settings = load_settings(folder / "config.yaml", env={})
        self._compiled: dict[str, tuple[CompiledStage, ...]] = {}

    def compile(self, specs: Sequence[tuple[str, dict]]) -> tuple[CompiledStage, ...]:
        key = repr(specs)
        if key not in self._compiled:
            policies: dict[str, list[dict]] = {}
            for policy, spec in specs:
                policies.setdefault(policy, []).append(spec)
            doc = {
                "policies": [
                    {"name": n, "continue": True, "stages": st} for n, st in policies.items()
                ]
            }
            sub = self.folder / f"r{len(self._compiled)}"
            sub.mkdir()
            (sub / "rules.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
            (sub / "config.yaml").write_text(CONFIG + "rules: [rules.yaml]\n", encoding="utf-8")
            rules = load_rules(load_settings(sub / "config.yaml", env={}), env={})
            self._compiled[key] = rules.stages_for(self.settings, "1.001", "STP.HC.MC", None)
        return self._compiled[key]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> World:
    """No `rules:` key in the base config: load_rules gives the shipped defaults."""
    return World(tmp_path_factory.mktemp("evaluate"))


@pytest.fixture(scope="module")
def default_stages(settings: World) -> tuple[CompiledStage, ...]:
    rules = load_rules(settings.settings, env={})
    return rules.stages_for(settings.settings, "1.001", "STP.HC.MC", None)


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=VN)


A_DUE = vn(2026, 3, 16, 8)


def case(**kw) -> CaseRecord:
    base = dict(
        case_code="HS-A",
        procedure_code="1.001",
        unit_code="STP.HC.MC",
        received_at=vn(2026, 3, 2, 8),
        status=Status.IN_PROGRESS,
        assignee="cv1",
        id=1,
    )
    base.update(kw)
    return CaseRecord(**base)


def ev(kind: EventKind, at: datetime, **data) -> CaseEvent:
    return CaseEvent(kind.value, at, data)


def stage(id: str, when: dict, policy: str = "p", **kw) -> tuple[str, dict]:
    """A stage spec as an admin writes it in YAML (notify defaults to the assignee)."""
    kw.setdefault("notify", ["assignee"])
    return policy, {"id": id, "when": when, **kw}


def run(world: World, c, specs, now, events=(), fired=None) -> Evaluation:
    stages = specs if specs and isinstance(specs[0], CompiledStage) else world.compile(specs)
    return evaluate(c, list(events), list(stages), world.settings, fired or {}, now)


def fired_keys(e: Evaluation) -> list[tuple[str, str, str, int]]:
    return [(f.key.stage, f.key.step, f.key.version, f.key.repeat_no) for f in e.firings]


# ----- each `when` fires at its first instant, not before; closed windows stay closed --------

WINDOWS = [
    # remaining 1 working day: D - 8 h = Fri 13/03 08:00 (Mon 16/03 07:00-08:00 1 h + Fri
    # 13/03 08:00-17:00 7 h). Until D.
    ({"remaining": "1 working_day"}, vn(2026, 3, 13, 8), A_DUE),
    # remaining 4 working hours: D - 4 h = Mon 07:00-08:00 1 h + Fri 14:00-17:00 3 h -> Fri 14:00.
    ({"remaining": "4 working_hours"}, vn(2026, 3, 13, 14), A_DUE),
    # elapsed 75% of 80 h = 60 h from S: Mon 7 h, 03, 04, 05, 06, 09, 10/03 48 h = 55 h,
    # Wed 11/03 07:00-11:30 4.5 h + 13:30-14:00 0.5 h -> Wed 11/03 14:00. Until D.
    ({"elapsed": "75%"}, vn(2026, 3, 11, 14), A_DUE),
    # overdue 0: one second after D.
    ({"overdue": "0 working_days"}, A_DUE + SEC, None),
    # overdue 2 working days: D + 16 h = Mon 08:00-17:00 7 h, Tue 17/03 8 h, Wed 18/03
    # 07:00-08:00 -> Wed 18/03 08:00.
    ({"overdue": "2 working_days"}, vn(2026, 3, 18, 8), None),
    # on_due_day 07:30: 07:30 on Mon 16/03, until D 08:00.
    ({"on_due_day": "07:30"}, vn(2026, 3, 16, 7, 30), A_DUE),
    # idle 3 working days from the last activity (received Mon 08:00): Mon 7 h, Tue 8 h,
    # Wed 8 h = 23 h, Thu 05/03 07:00-08:00 -> Thu 05/03 08:00.
    ({"idle": "3 working_days"}, vn(2026, 3, 5, 8), None),
]


@pytest.mark.parametrize(("when", "first", "end"), WINDOWS, ids=lambda v: str(v))
def test_when_fires_at_its_first_instant(settings, when, first, end) -> None:
    s = stage("x", when)
    before = run(settings, case(), [s], first - SEC)
    assert before.firings == []
    assert before.next_check_at == first
    at = run(settings, case(), [s], first)
    assert len(at.firings) == 1
    f = at.firings[0]
    assert (f.key.stage, f.key.step, f.key.repeat_no) == ("p/x", "", 0)
    if "idle" not in when:
        assert f.key.version == "0"
    assert f.fire_at == first
    assert f.due == A_DUE
    assert f.case_code == "HS-A" and f.case_id == 1
    if end is not None:
        assert len(run(settings, case(), [s], end - SEC).firings) == 1
        # the window has closed at D: it never fires late
        assert run(settings, case(), [s], end).firings == []
        assert run(settings, case(), [s], end + timedelta(days=1)).firings == []
        assert run(settings, case(), [s], end).next_check_at is None


def test_overdue_zero_does_not_fire_at_the_due_itself(settings) -> None:
    s = stage("x", {"overdue": "0 working_days"})
    assert run(settings, case(), [s], A_DUE).firings == []
    assert len(run(settings, case(), [s], vn(2026, 3, 30, 9)).firings) == 1  # until closed


def test_on_due_day_after_the_due_time_never_opens(settings) -> None:
    # 09:00 on D's date is after D (08:00): the window [09:00, 08:00) is empty.
    s = stage("x", {"on_due_day": "09:00"})
    for now in (vn(2026, 3, 16, 7), vn(2026, 3, 16, 9), vn(2026, 3, 16, 10)):
        e = run(settings, case(), [s], now)
        assert e.firings == [] and e.next_check_at is None


def test_idle_window_moves_with_activity(settings) -> None:
    s = stage("x", {"idle": "3 working_days"})
    # last activity Thu 05/03 09:00 (source update): + 24 h = Thu 09:00-11:30 2.5 h +
    # 13:30-17:00 3.5 h = 6 h, Fri 8 h, Mon 8 h = 22 h, Tue 07:00-09:00 -> Tue 10/03 09:00.
    c = case(source_updated_at=vn(2026, 3, 5, 9))
    e = run(settings, c, [s], vn(2026, 3, 5, 10))
    assert e.firings == [] and e.next_check_at == vn(2026, 3, 10, 9)
    assert run(settings, c, [s], vn(2026, 3, 10, 8, 59, 59)).firings == []
    e = run(settings, c, [s], vn(2026, 3, 10, 9))
    assert len(e.firings) == 1 and e.firings[0].fire_at == vn(2026, 3, 10, 9)
    # a new episode (new activity) has a new key: what fired for the old one does not count
    old = run(settings, case(), [s], vn(2026, 3, 5, 8)).firings[0].key
    new = e.firings[0].key
    assert old.version != new.version
    fired = {(old.stage, old.step, old.version): Fired(0)}
    assert len(run(settings, c, [s], vn(2026, 3, 10, 9), fired=fired).firings) == 1


def test_waiting_fires_after_waiting_time(settings) -> None:
    # Waiting since Wed 04/03 10:00; 15 working days = 120 h: Wed 10:00-17:00 5 h, then 14
    # full days (05, 06, 09..13, 16..20, 23, 24/03) 112 h = 117 h, Wed 25/03 07:00-10:00.
    s = stage("w", {"waiting": "15 working_days"})
    c = case(status=Status.SUPPLEMENT)
    events = [ev(EventKind.SUPPLEMENT_REQUESTED, vn(2026, 3, 4, 10))]
    first = vn(2026, 3, 25, 10)
    e = run(settings, c, [s], first - SEC, events)
    assert e.firings == [] and e.next_check_at == first
    e = run(settings, c, [s], first, events)
    assert len(e.firings) == 1 and e.firings[0].fire_at == first
    # no window for a case that does not wait
    e = run(settings, case(), [s], first)
    assert e.firings == [] and e.next_check_at is None


def test_waiting_case_fires_only_waiting_stages(settings, default_stages) -> None:
    # Long past its due (16/03) and idle since 04/03, but waiting: only waiting_too_long.
    c = case(status=Status.SUPPLEMENT, source_updated_at=vn(2026, 3, 4, 10))
    e = run(settings, c, default_stages, vn(2026, 3, 25, 10))
    assert [f.key.stage for f in e.firings] == ["mac_dinh/waiting_too_long"]
    e = run(settings, c, default_stages, vn(2026, 3, 20, 10))
    assert e.firings == [] and e.next_check_at == vn(2026, 3, 25, 10)


def test_case_first_seen_overdue_gets_overdue_not_due_soon(settings, default_stages) -> None:
    # Tue 17/03 09:00: due_soon, due_today and apology_needed closed at D. Idle is kept away by
    # a recent update (16/03 10:00 + 24 h = Thu 19/03 10:00). overdue: first 16/03 08:00:01,
    # working time to now = 7 h - 1 s + 2 h < 16 h -> repeat 1, fired at Tue 17/03 08:00:01.
    c = case(source_updated_at=vn(2026, 3, 16, 10))
    e = run(settings, c, default_stages, vn(2026, 3, 17, 9))
    assert fired_keys(e) == [("mac_dinh/overdue", "", "0", 1)]
    assert e.firings[0].fire_at == vn(2026, 3, 17, 8, 0, 1)
    # next: overdue_agency at D + 2 working days = Wed 18/03 08:00
    assert e.next_check_at == vn(2026, 3, 18, 8)


# ----- `extended` qualifier -------------------------------------------------------------------

EXTENDED = [
    ev(EventKind.EXTENDED, vn(2026, 3, 12, 10), new_due=vn(2026, 3, 20, 10), previous_due=A_DUE)
]


@pytest.mark.parametrize("flag", [False, True])
def test_extended_qualifier(settings, flag) -> None:
    s = stage("x", {"remaining": "1 working_day", "extended": flag})
    # Not extended: due_soon at Fri 13/03 08:00.
    plain = run(settings, case(), [s], vn(2026, 3, 13, 9))
    assert len(plain.firings) == (0 if flag else 1)
    # Extended to Fri 20/03 10:00: 1 working day before is Thu 19/03 10:00.
    ext = run(settings, case(), [s], vn(2026, 3, 19, 10), EXTENDED)
    assert len(ext.firings) == (1 if flag else 0)
    if flag:
        assert ext.firings[0].key.version == "1"
        assert ext.firings[0].due == vn(2026, 3, 20, 10)


# ----- step scope ----------------------------------------------------------------------------


def test_step_overdue_uses_current_step_due_and_handler_unit(settings) -> None:
    # Case of STP.VP (unit head chanhvp); current step B1 from Thu 05/03 10:00, handler cv1
    # (STP.HC.MC, no heads -> nearest with heads STP.HC: truongphong). B1 = 1 working day:
    # Thu 10:00-11:30 1.5 h + 13:30-17:00 3.5 h, Fri 07:00-10:00 -> Fri 06/03 10:00.
    s = stage(
        "step_overdue",
        {"overdue": "0 working_days"},
        scope="step",
        notify=["step_handler", "unit_head"],
    )
    case_head = stage("c", {"overdue": "0 working_days"}, notify=["unit_head"])
    c = case(
        unit_code="STP.VP",
        assignee="cv3",
        current_step="B1",
        step_started_at=vn(2026, 3, 5, 10),
        step_handler="cv1",
    )
    step_due = vn(2026, 3, 6, 10)
    e = run(settings, c, [s], step_due)
    assert e.firings == [] and e.next_check_at == step_due + SEC
    e = run(settings, c, [s, case_head], step_due + SEC)
    assert len(e.firings) == 1
    f = e.firings[0]
    assert (f.key.stage, f.key.step, f.key.repeat_no) == ("p/step_overdue", "B1", 0)
    assert f.due == step_due
    assert f.fire_at == step_due + SEC
    assert [d.recipient for d in f.deliveries] == ["cv1", "truongphong"]
    # the case itself is due on 16/03 and its unit head is chanhvp
    e = run(settings, c, [s, case_head], A_DUE + SEC)
    heads = {f.key.stage: [d.recipient for d in f.deliveries] for f in e.firings}
    assert heads["p/c"] == ["chanhvp"]


def test_step_stage_without_current_step_has_no_window(settings) -> None:
    s = stage("step_overdue", {"overdue": "0 working_days"}, scope="step")
    e = run(settings, case(), [s], vn(2026, 3, 20, 9))
    assert e.firings == [] and e.next_check_at is None


def test_new_step_run_gives_new_keys(settings) -> None:
    s = stage("so", {"overdue": "0 working_days"}, scope="step", notify=["step_handler"])
    c1 = case(current_step="B1", step_started_at=vn(2026, 3, 5, 10), step_handler="cv1")
    k1 = run(settings, c1, [s], vn(2026, 3, 6, 11)).firings[0].key
    # B1 again from Mon 09/03 08:00: due Tue 10/03 08:00
    c2 = case(current_step="B1", step_started_at=vn(2026, 3, 9, 8), step_handler="cv1")
    fired = {(k1.stage, k1.step, k1.version): Fired(0)}
    e = run(settings, c2, [s], vn(2026, 3, 10, 9), fired=fired)
    assert len(e.firings) == 1 and e.firings[0].key.version != k1.version


# ----- next_check_at -------------------------------------------------------------------------


def test_next_check_at_follows_the_earliest_window(settings, default_stages) -> None:
    # Mon 02/03 09:00, default rules: the earliest is idle at Thu 05/03 08:00.
    assert run(settings, case(), default_stages, vn(2026, 3, 2, 9)).next_check_at == vn(
        2026, 3, 5, 8
    )
    # With an update on Wed 11/03 09:00, idle moves to Wed 11/03 09:00 + 24 h: Wed 6 h,
    # Thu 8 h, Fri 8 h = 22 h, Mon 16/03 07:00-09:00 -> Mon 16/03 09:00.
    c = case(source_updated_at=vn(2026, 3, 11, 9))
    fired: dict = {}

    def step(now):
        e = run(settings, c, default_stages, now, fired=fired)
        for f in e.firings:
            fired[(f.key.stage, f.key.step, f.key.version)] = Fired(f.key.repeat_no)
        return [f.key.stage.split("/")[1] for f in e.firings], e.next_check_at

    # due_soon and apology_needed at D - 1 working day = Fri 13/03 08:00
    assert step(vn(2026, 3, 11, 10)) == ([], vn(2026, 3, 13, 8))
    assert step(vn(2026, 3, 13, 8)) == (["due_soon", "apology_needed"], vn(2026, 3, 16, 7, 30))
    assert step(vn(2026, 3, 16, 7, 30)) == (["due_today"], A_DUE + SEC)
    # overdue fires; its repeat (Tue 17/03 08:00:01) is later than idle (Mon 16/03 09:00)
    assert step(A_DUE + SEC) == (["overdue"], vn(2026, 3, 16, 9))
    # idle repeats every 3 working days: Mon 16/03 09:00 + 24 h = Thu 19/03 09:00; the next
    # instant is overdue's repeat Tue 17/03 08:00:01
    assert step(vn(2026, 3, 16, 9)) == (["idle"], vn(2026, 3, 17, 8, 0, 1))


def test_closed_case_has_nothing(settings, default_stages) -> None:
    c = case(status=Status.FINISHED, finished_at=vn(2026, 3, 20, 9), assignee=None)
    e = run(settings, c, default_stages, vn(2026, 3, 25, 9))
    assert e.firings == [] and e.next_check_at is None and e.findings == []


def test_case_without_due_has_no_next_check(settings, default_stages) -> None:
    e = run(settings, case(procedure_code="9.999"), default_stages, vn(2026, 3, 3, 9))
    assert e.firings == [] and e.next_check_at is None
    assert [f.kind for f in e.findings] == ["unknown_procedure"]


# ----- repeat --------------------------------------------------------------------------------

OVERDUE_REPEAT = {"overdue": "0 working_days"}
KEY = ("p/od", "", "0")


def od(**kw) -> tuple[str, dict]:
    return stage("od", OVERDUE_REPEAT, repeat="1 working_day", **kw)


def test_repeat_numbers_by_working_time(settings) -> None:
    # first = Mon 16/03 08:00:01; repeats at + 8 h working: Tue 17/03 08:00:01, Wed 18/03 ...
    e = run(settings, case(), [od()], A_DUE + SEC)
    assert fired_keys(e) == [("p/od", "", "0", 0)]
    assert e.next_check_at == vn(2026, 3, 17, 8, 0, 1)
    # Tue 08:00:00 is 8 h - 1 s after first: still repeat 0, already sent
    e = run(settings, case(), [od()], vn(2026, 3, 17, 8), fired={KEY: Fired(0)})
    assert e.firings == [] and e.next_check_at == vn(2026, 3, 17, 8, 0, 1)
    e = run(settings, case(), [od()], vn(2026, 3, 17, 8, 0, 1), fired={KEY: Fired(0)})
    assert fired_keys(e) == [("p/od", "", "0", 1)]
    assert e.firings[0].fire_at == vn(2026, 3, 17, 8, 0, 1)
    # Fri 20/03 16:00 -> Mon 23/03 08:00:01 is the next repeat (weekend skipped)
    e = run(settings, case(), [od()], vn(2026, 3, 20, 16), fired={KEY: Fired(4)})
    assert e.firings == [] and e.next_check_at == vn(2026, 3, 23, 8, 0, 1)


def test_after_a_long_gap_only_the_latest_repeat_fires(settings) -> None:
    # Mon 23/03 10:00: 16/03 08:00:01 -> 17:00 is 7 h - 1 s, 17..20/03 32 h, Mon 07:00-10:00
    # 3 h: 42 h - 1 s -> repeat 5 (40 h), due at 23/03 08:00:01. One firing, no backlog.
    e = run(settings, case(), [od()], vn(2026, 3, 23, 10))
    assert fired_keys(e) == [("p/od", "", "0", 5)]
    assert e.firings[0].fire_at == vn(2026, 3, 23, 8, 0, 1)
    e = run(settings, case(), [od()], vn(2026, 3, 23, 10), fired={KEY: Fired(2)})
    assert fired_keys(e) == [("p/od", "", "0", 5)]


def test_nothing_fires_until_the_next_repeat_is_due(settings) -> None:
    fired = {KEY: Fired(last_repeat=5)}
    for now in (vn(2026, 3, 23, 10), vn(2026, 3, 23, 17), vn(2026, 3, 24, 8)):
        e = run(settings, case(), [od()], now, fired=fired)
        assert e.firings == [], now
        assert e.next_check_at == vn(2026, 3, 24, 8, 0, 1)
    e = run(settings, case(), [od()], vn(2026, 3, 24, 8, 0, 1), fired=fired)
    assert fired_keys(e) == [("p/od", "", "0", 6)]


def test_until_ack_stops_repeats_once_acknowledged(settings) -> None:
    now = vn(2026, 3, 20, 9)  # repeat 4 is due (Fri 20/03 08:00:01)
    acked = {KEY: Fired(2, acknowledged=True)}
    e = run(settings, case(), [od(until_ack=True)], now, fired=acked)
    assert e.firings == [] and e.next_check_at is None
    # not acknowledged: repeat 4 fires
    e = run(settings, case(), [od(until_ack=True)], now, fired={KEY: Fired(2)})
    assert fired_keys(e) == [("p/od", "", "0", 4)]
    # without until_ack an acknowledgement does not stop repeats
    e = run(settings, case(), [od()], now, fired=acked)
    assert fired_keys(e) == [("p/od", "", "0", 4)]


def test_repeats_stop_at_the_end_of_the_window(settings) -> None:
    # remaining 1 working day from Fri 13/03 08:00, repeat every 4 working hours: Fri 14:00
    # (08:00-11:30 3.5 h + 13:30-14:00), then Fri 14:00-17:00 3 h + Mon 07:00-08:00 = D:
    # not inside [first, D), so no third firing and nothing more to check.
    s = stage("ds", {"remaining": "1 working_day"}, repeat="4 working_hours")
    e = run(settings, case(), [s], vn(2026, 3, 13, 8))
    assert e.next_check_at == vn(2026, 3, 13, 14)
    e = run(settings, case(), [s], vn(2026, 3, 13, 14), fired={("p/ds", "", "0"): Fired(0)})
    assert fired_keys(e) == [("p/ds", "", "0", 1)]
    assert e.next_check_at is None


def test_new_due_version_gives_new_keys(settings) -> None:
    # Pause 04/03 10:00 -> 09/03 10:00 (24 h): due Thu 19/03 08:00, version 1; remaining 1
    # working day opens Wed 18/03 08:00. What fired for version 0 does not count.
    events = [
        ev(EventKind.SUPPLEMENT_REQUESTED, vn(2026, 3, 4, 10)),
        ev(EventKind.SUPPLEMENT_RECEIVED, vn(2026, 3, 9, 10)),
    ]
    s = stage("ds", {"remaining": "1 working_day"})
    e = run(settings, case(), [s], vn(2026, 3, 18, 7, 59, 59), events)
    assert e.firings == [] and e.next_check_at == vn(2026, 3, 18, 8)
    e = run(settings, case(), [s], vn(2026, 3, 18, 9), events, {("p/ds", "", "0"): Fired(0)})
    assert fired_keys(e) == [("p/ds", "", "1", 0)]
    assert e.firings[0].due == vn(2026, 3, 19, 8)


def test_elapsed_after_a_pause_excludes_the_wait(settings) -> None:
    # Due Thu 19/03 08:00 after 24 h waited; 75% of 80 h = 60 h of elapsed time = S + 84 h
    # working (the wait lies before it): S + 80 h = Mon 16/03 08:00, + 4 h -> 16/03 14:00.
    events = [
        ev(EventKind.SUPPLEMENT_REQUESTED, vn(2026, 3, 4, 10)),
        ev(EventKind.SUPPLEMENT_RECEIVED, vn(2026, 3, 9, 10)),
    ]
    s = stage("x", {"elapsed": "75%"})
    e = run(settings, case(), [s], vn(2026, 3, 16, 13), events)
    assert e.firings == [] and e.next_check_at == vn(2026, 3, 16, 14)


def test_elapsed_after_restart_counts_from_completion(settings) -> None:
    # 1.002 restarted at Thu 05/03 14:00 (due Thu 12/03 14:00); 50% of 40 h = 20 h from
    # 14:00: Thu 3 h, Fri 8 h, Mon 8 h = 19 h, Tue 10/03 07:00-08:00 -> Tue 10/03 08:00.
    events = [
        ev(EventKind.SUPPLEMENT_REQUESTED, vn(2026, 3, 3, 9)),
        ev(EventKind.SUPPLEMENT_RECEIVED, vn(2026, 3, 5, 14)),
    ]
    s = stage("x", {"elapsed": "50%"})
    e = run(settings, case(procedure_code="1.002"), [s], vn(2026, 3, 6, 9), events)
    assert e.next_check_at == vn(2026, 3, 10, 8)


# ----- inhibits ------------------------------------------------------------------------------


def test_inhibits_while_window_open(settings) -> None:
    warn = stage("warn", {"elapsed": "75%"})  # Wed 11/03 14:00 .. D
    soon = stage("soon", {"remaining": "1 working_day"}, inhibits=["warn"])  # Fri 13/03 08:00 .. D
    other = stage("warn", {"elapsed": "75%"}, policy="q")  # same id, another policy
    e = run(settings, case(), [warn, soon, other], vn(2026, 3, 12, 9))
    assert sorted(f.key.stage for f in e.firings) == ["p/warn", "q/warn"]
    e = run(settings, case(), [warn, soon, other], vn(2026, 3, 13, 9))
    assert sorted(f.key.stage for f in e.firings) == ["p/soon", "q/warn"]
    # already sent, the inhibiting stage still silences the other while its window is open
    e = run(
        settings, case(), [warn, soon], vn(2026, 3, 13, 9), fired={("p/soon", "", "0"): Fired(0)}
    )
    assert e.firings == []


# ----- findings ------------------------------------------------------------------------------


def kinds(settings, c, events=()) -> list[str]:
    return sorted(f.kind for f in run(settings, c, [], vn(2026, 3, 3, 9), events).findings)


def test_clean_case_has_no_findings(settings) -> None:
    assert kinds(settings, case()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"procedure_code": "9.999"}, ["unknown_procedure"]),
        ({"unit_code": "XYZ"}, ["unknown_unit"]),
        ({"assignee": None}, ["no_assignee"]),
        ({"assignee": ""}, ["no_assignee"]),
        ({"assignee": "ghost"}, ["unknown_official"]),
        # computed D = 16/03 08:00; source 17/03 09:00 is 9 working hours later
        ({"due_at": vn(2026, 3, 17, 9)}, ["due_mismatch"]),
        # 12/03 17:00 is 9 working hours earlier (Fri 13/03 8 h + Mon 07:00-08:00)
        ({"due_at": vn(2026, 3, 12, 17)}, ["due_mismatch"]),
        # exactly one working day later or earlier: not a mismatch
        ({"due_at": vn(2026, 3, 17, 8)}, []),
        ({"due_at": vn(2026, 3, 13, 8)}, []),
        ({"current_step": "B1", "step_started_at": vn(2026, 3, 2, 9)}, ["step_without_handler"]),
        (
            {"current_step": "B1", "step_started_at": vn(2026, 3, 2, 9), "step_handler": "cv2"},
            [],
        ),
    ],
)
def test_findings(settings, changes, expected) -> None:
    assert kinds(settings, case(**changes)) == expected


def test_due_mismatch_detail(settings) -> None:
    e = run(settings, case(due_at=vn(2026, 3, 17, 9)), [], vn(2026, 3, 3, 9))
    (f,) = e.findings
    assert f.subject == "HS-A"
    assert "+1.1 working days" in f.detail  # 9 h / 8 h


def test_closed_case_has_no_findings(settings) -> None:
    c = case(
        procedure_code="9.999",
        unit_code="XYZ",
        assignee=None,
        status=Status.RETURNED,
        finished_at=vn(2026, 3, 3, 8),
    )
    assert kinds(settings, c) == []
    assert kinds(settings, case(assignee=None, status=Status.WITHDRAWN)) == []


def test_next_check_at_with_an_empty_window_before_a_late_overdue(settings) -> None:
    # elapsed 100% opens at D and closes at D: an empty window, never a reason to look.
    # overdue 2 working days opens Wed 18/03 08:00 (D + 16 h): that is the next instant.
    specs = [stage("full", {"elapsed": "100%"}), stage("late", {"overdue": "2 working_days"})]
    e = run(settings, case(), specs, vn(2026, 3, 2, 9))
    assert e.firings == []
    assert e.next_check_at == vn(2026, 3, 18, 8)


# ----- found in review ------------------------------------------------------------------------


def test_a_stage_inhibited_by_an_open_window_is_planned_for_when_it_closes(settings) -> None:
    # due 16/03 08:00. `soon` (2 working days left) opens Thu 12/03 08:00 and inhibits `quiet`
    # (idle 3 working days since received 02/03 08:00: opens Thu 05/03 08:00, holds on).
    specs = [
        stage("soon", {"remaining": "2 working_days"}, inhibits=["quiet"]),
        stage("quiet", {"idle": "3 working_days"}),
    ]
    e = run(settings, case(), specs, vn(2026, 3, 12, 9), fired={})
    assert fired_keys(e) == [("p/soon", "", "0", 0)]  # quiet is held back...
    assert e.next_check_at == A_DUE  # ...until soon's window closes at the due
    e = run(settings, case(), specs, A_DUE, fired={("p/soon", "", "0"): Fired(0)})
    assert [k[0] for k in fired_keys(e)] == ["p/quiet"]


def test_a_lengthened_repeat_neither_resends_nor_goes_silent(settings) -> None:
    # `od` repeated daily up to repeat 9 (due 27/03 08:00:01); the admin changes the repeat
    # to 5 working days. On Mon 30/03 10:00 repeat 2 of the new interval (first + 10 days =
    # Mon 30/03 08:00:01) is due and later than the last one sent: it goes, as number 10.
    last = vn(2026, 3, 27, 8, 0, 1)
    fired = {KEY: Fired(9, False, last)}
    weekly = stage("od", OVERDUE_REPEAT, repeat="5 working_days")
    e = run(settings, case(), [weekly], vn(2026, 3, 30, 10), fired=fired)
    assert fired_keys(e) == [("p/od", "", "0", 10)]
    assert e.firings[0].fire_at == vn(2026, 3, 30, 8, 0, 1)
    # and with the daily repeat, what was sent is not sent again
    e = run(settings, case(), [od()], vn(2026, 3, 27, 9), fired=fired)
    assert e.firings == []
