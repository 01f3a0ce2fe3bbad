"""`check_rules`: stages whose recipients reach nobody for cases at some unit (issue 11, item 5).

Directory (tree order T, STP, STP.HC, STP.MC, SXD, SXD.QH):

    T (heads chutich)
    ├── STP (heads giamdoc)
    │   ├── STP.HC (heads truongphong; absent 09-13/03/2026, deputy phophong)
    │   └── STP.MC (no heads)
    └── SXD (no heads)
        └── SXD.QH (no heads)

chutich, giamdoc and truongphong have e-mail addresses; phophong and cv1 have a Telegram chat
id only. Channels: email and telegram (no file channel, which reaches everyone). Supervisors:
thanhtra@tinh.vn. Tests take parts away (`without`) to open a gap.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from watchdog.config import Settings, load_settings
from watchdog.engine.rules import check_rules, load_rules

CONFIG = """\
timezone: Asia/Ho_Chi_Minh
units:
  - {code: T, name: UBND tỉnh, heads: [chutich]}
  - {code: STP, name: Sở Tư pháp, parent: T, heads: [giamdoc]}
  - {code: STP.HC, name: Phòng Hành chính tư pháp, parent: STP, heads: [truongphong]}
  - {code: STP.MC, name: Bộ phận một cửa, parent: STP}
  - {code: SXD, name: Sở Xây dựng, parent: T}
  - {code: SXD.QH, name: Phòng Quy hoạch, parent: SXD}
officials:
  - {id: chutich, name: Chủ tịch, unit: T, email: ct@tinh.vn}
  - {id: giamdoc, name: Giám đốc, unit: STP, email: gd@stp.vn}
  - id: truongphong
    name: Trưởng phòng
    unit: STP.HC
    email: tp@stp.vn
    deputy: phophong
    absent: ["2026-03-09..2026-03-13"]
  - {id: phophong, name: Phó phòng, unit: STP.HC, telegram: 3003}
  - {id: cv1, name: Chuyên viên, unit: STP.MC, telegram: 2001}
supervisors: [thanhtra@tinh.vn]
procedures:
  - {code: "1.000001", name: Mười ngày, limit: 10 working_days}
channels:
  email: {host: localhost, from: watchdog@tinh.vn}
  telegram: {token: "123:abc"}
"""

T_HEADS = "  - {code: T, name: UBND tỉnh, heads: [chutich]}\n"
SUPERVISORS = "supervisors: [thanhtra@tinh.vn]\n"


def settings_of(tmp_path: Path, rules: str | None, *without: str) -> Settings:
    """CONFIG without the given lines (T without heads: T_HEADS), with `rules` as its only
    rule file (None: the shipped defaults)."""
    config = CONFIG
    for part in without:
        assert part in config
        config = config.replace(part, "  - {code: T, name: UBND tỉnh}\n" if part == T_HEADS else "")
    if rules is not None:
        (tmp_path / "rules.yaml").write_text(rules, encoding="utf-8")
        config += "rules: [rules.yaml]\n"
    (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    return load_settings(tmp_path / "config.yaml", env={})


def check(tmp_path: Path, rules: str | None, *without: str, today: date | None = None):
    """(errors, warnings); load_rules accepts the rules first: the engine still starts."""
    s = settings_of(tmp_path, rules, *without)
    warnings: list[str] = []
    errors = check_rules(s, load_rules(s, env={}), today=today, warnings=warnings)
    return tmp_path / "rules.yaml", errors, warnings


def one_stage(notify: str, *, match: str = "", channels: str = "") -> str:
    """Policy p with stage s; `notify:` is on line 6."""
    return f"""\
policies:
  - name: p
    match: {{{match}}}
    stages:
      - id: s
        notify: {notify}
        when: {{overdue: 2 working_days}}
{f"        channels: {channels}" if channels else ""}
"""


def test_agency_head_where_no_unit_above_has_heads(tmp_path) -> None:
    """T without heads. agency_head = heads of the nearest unit above the case's nearest unit
    with heads:
    T: no heads from T up -> nobody; STP: heads giamdoc, above it T has none -> nobody;
    STP.HC: truongphong, above it STP -> giamdoc (e-mail), reached; STP.MC: nearest STP ->
    nobody, as for STP; SXD and SXD.QH: no heads from them up -> nobody. 5 of 6 units: the
    first three named, 2 more counted."""
    file, errors, warnings = check(tmp_path, one_stage("[agency_head]"), T_HEADS)
    assert errors == [
        f"{file}:6: policies[0].stages[0].notify: stage p/s reaches nobody for cases at 5 of "
        "the 6 units the policy matches: "
        "T (agency_head: no unit from it upwards has heads), "
        "STP (agency_head: no unit above STP has heads), "
        "STP.MC (agency_head: no unit above STP has heads) and 2 more"
    ]
    assert warnings == []
    # T with heads: at T, SXD and SXD.QH the nearest heads are T's, which have nothing above
    # them by construction (not a gap); STP, STP.HC and STP.MC reach chutich or giamdoc.
    assert check(tmp_path, one_stage("[agency_head]"))[1:] == ([], [])


def test_unit_head_where_no_unit_has_a_head_only_the_assignee_is_left(tmp_path) -> None:
    """T without heads, a policy for SXD's subtree (SXD, SXD.QH): neither unit nor any above
    has heads, so unit_head reaches nobody and the stage only the assignee. The STP subtree,
    where every unit has heads at or above it, is not looked at."""
    rules = one_stage("[assignee, unit_head]", match="units: [SXD]")
    file, errors, _ = check(tmp_path, rules, T_HEADS)
    assert errors == [
        f"{file}:6: policies[0].stages[0].notify: stage p/s reaches only the assignee (nobody "
        "when the case has none) for cases at 2 of the 2 units the policy matches: "
        "SXD (unit_head: no unit from it upwards has heads), "
        "SXD.QH (unit_head: no unit from it upwards has heads)"
    ]
    _, errors, _ = check(tmp_path, one_stage("[assignee, unit_head]", match="units: [STP]"))
    assert errors == []


def test_supervisors_when_none_are_configured(tmp_path) -> None:
    """No `supervisors:`: the keyword resolves to nobody whatever the unit, said once.
    Whether a case has an assignee or a step handler is not in the configuration: a stage
    naming only those is not looked at, even where T has no heads."""
    file, errors, _ = check(tmp_path, one_stage("[supervisors]"), SUPERVISORS)
    assert errors == [
        f"{file}:6: policies[0].stages[0].notify: stage p/s reaches nobody: "
        "supervisors: no supervisors are configured"
    ]
    for notify in ("[assignee]", "[step_handler]", "[assignee, step_handler]"):
        assert check(tmp_path, one_stage(notify), T_HEADS, SUPERVISORS)[1:] == ([], [])


def test_an_official_unreachable_on_the_stage_channels(tmp_path) -> None:
    """cv1 has a Telegram chat id only; the stage sends by e-mail only."""
    file, errors, _ = check(tmp_path, one_stage("[cv1]", channels="[email]"))
    assert errors == [
        f"{file}:6: policies[0].stages[0].notify: stage p/s reaches nobody: "
        "cv1 cannot be reached on email"
    ]
    _, errors, _ = check(tmp_path, one_stage("[cv1]"))  # telegram then email: the chat id
    assert errors == []


def test_a_deputy_chain_that_leads_nowhere(tmp_path) -> None:
    """STP.HC's head truongphong (e-mail) is absent 09-13/03/2026; the stand-in phophong has
    a chat id only, and the stage sends by e-mail: on those days it reaches nobody. The check
    looks at every day a stand-in can change (09/03 and 14/03 here). Once the absence is over
    (today 14/03), nothing is left to report; on its last day (13/03) the gap is still open."""
    rules = one_stage("[unit_head]", match="units: [STP.HC]", channels="[email]")
    file, errors, _ = check(tmp_path, rules)
    assert errors == [
        f"{file}:6: policies[0].stages[0].notify: stage p/s reaches nobody for cases at 1 of "
        "the 1 units the policy matches: STP.HC (unit_head: truongphong is absent "
        "2026-03-09..2026-03-13 and the stand-in phophong cannot be reached on email)"
    ]
    assert check(tmp_path, rules, today=date(2026, 3, 13))[1] == errors
    assert check(tmp_path, rules, today=date(2026, 3, 14))[1] == []
    # by telegram or e-mail, phophong's chat id reaches them
    assert check(tmp_path, one_stage("[unit_head]", match="units: [STP.HC]"))[1] == []


def test_a_recipient_lost_where_the_stage_still_reaches_someone_is_a_warning(tmp_path) -> None:
    """T without heads: unit_head reaches nobody at T, SXD and SXD.QH, but the supervisors'
    address is always reached, so the stage is never silent there: a warning, not an error."""
    file, errors, warnings = check(tmp_path, one_stage("[unit_head, supervisors]"), T_HEADS)
    assert errors == []
    assert warnings == [
        f"{file}:6: policies[0].stages[0].notify[0]: unit_head reaches nobody for cases at 3 of "
        "the 6 units the policy matches: T (no unit from it upwards has heads), "
        "SXD (no unit from it upwards has heads), SXD.QH (no unit from it upwards has heads); "
        "stage p/s still reaches its other recipients there"
    ]


def test_shipped_defaults_with_gaps_name_the_stages(tmp_path) -> None:
    """T without heads and no supervisors under the shipped defaults (9 stages, notify on the
    lines below): T, SXD and SXD.QH have no unit head, so apology_needed, overdue and
    waiting_too_long reach only the assignee there and step_overdue only the step handler;
    overdue_agency reaches nobody at 5 units (as in the agency_head test); overdue_supervisor
    nobody at all. due_soon, due_today and idle notify the assignee only."""
    s = settings_of(tmp_path, None, T_HEADS, SUPERVISORS)
    errors = check_rules(s, load_rules(s, env={}))
    got = [e.split(": ")[1:3] for e in errors]
    assert [stage.split(" ")[1] for _, stage in got] == [
        "mac_dinh/apology_needed",
        "mac_dinh/overdue",
        "mac_dinh/overdue_agency",
        "mac_dinh/overdue_supervisor",
        "mac_dinh/step_overdue",
        "mac_dinh/waiting_too_long",
    ]
    assert [path for path, _ in got] == [
        f"policies[0].stages[{j}].notify" for j in (2, 3, 4, 5, 6, 8)
    ]
    assert "3 of the 6 units" in errors[0] and "5 of the 6 units" in errors[2]
    assert errors[3].endswith("reaches nobody: supervisors: no supervisors are configured")
    # the directory complete again: every unit has heads at or above it, supervisors are
    # configured, and agency_head at T, SXD and SXD.QH meets the top of the tree
    assert check(tmp_path, None)[1:] == ([], [])
