"""Rules (SPEC 5): loading with `file:line: key.path: why` errors, policy matching, defaults."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from watchdog.config import ConfigError, Settings, load_settings
from watchdog.durations import Duration, Unit
from watchdog.engine.rules import RuleSet, WhenKind, load_rules

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
timezone: Asia/Ho_Chi_Minh
units:
  - {code: T, name: UBND tỉnh, heads: [chutich]}
  - {code: STP, name: Sở Tư pháp, parent: T, heads: [giamdoc]}
  - {code: STP.HC, name: Phòng Hành chính tư pháp, parent: STP}
  - {code: STP.HC.MC, name: Bộ phận một cửa, parent: STP.HC}
  - {code: SXD, name: Sở Xây dựng, parent: T}
officials:
  - {id: chutich, name: Chủ tịch, unit: T, email: ct@tinh.vn}
  - {id: giamdoc, name: Giám đốc, unit: STP, email: gd@stp.vn}
  - {id: cv1, name: Chuyên viên, unit: STP.HC.MC, telegram: 2001}
supervisors: [thanhtra@tinh.vn]
procedures:
  - {code: "1.001000", name: Một, limit: 10 working_days}
  - {code: "1.001001", name: Một lẻ một, limit: 10 working_days}
  - {code: "10.001", name: Khác, limit: 10 working_days}
  - {code: "2.000001", name: Tư pháp, field: tu_phap, limit: 3 working_days}
  - {code: "3.000001", name: Ba, limit: 5 working_days}
  - {code: "1.012790", name: Biến động đất đai, field: Đất đai, limit: 10 working_days}
channels:
  file: {dir: out}
  email: {host: localhost, from: a@b.vn}
"""


def settings_with(tmp_path: Path, rules_line: str | None, **files: str) -> Settings:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    config = CONFIG + (f"{rules_line}\n" if rules_line is not None else "")
    (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    return load_settings(tmp_path / "config.yaml", env={})


def problems_of(tmp_path: Path, text: str) -> tuple[Path, list[str]]:
    s = settings_with(tmp_path, "rules: [rules.yaml]", rules=text)
    with pytest.raises(ConfigError) as exc:
        load_rules(s, env={})
    return tmp_path / "rules.yaml", exc.value.problems


def one_stage(when: str, extra: str = "") -> str:
    """A rule file whose single stage starts on line 4; `when:` is on line 5."""
    return f"""\
policies:
  - name: p
    stages:
      - id: soon
        when:
{when}
        notify: [assignee]
{extra}"""


# ----- errors ---------------------------------------------------------------------------------


def test_bad_duration_in_when(tmp_path) -> None:
    file, problems = problems_of(tmp_path, one_stage("          remaining: 1 day"))
    assert len(problems) == 1
    assert problems[0].startswith(f"{file}:6: policies[0].stages[0].when.remaining: expected a")
    assert "'1 day'" in problems[0]


def test_calendar_days_are_not_working_time(tmp_path) -> None:
    file, problems = problems_of(tmp_path, one_stage("          overdue: 2 calendar_days"))
    assert len(problems) == 1
    assert problems[0].startswith(f"{file}:6: policies[0].stages[0].when.overdue: ")
    assert "working time" in problems[0]


BOUND = "(about ten years; the working calendar covers the years 1900-2200)"


@pytest.mark.parametrize(
    ("kind", "value", "bound"),
    [
        ("remaining", "2501 working_days", "2,500 working_days"),
        ("overdue", "99999 working_days", "2,500 working_days"),
        ("idle", "20001 working_hours", "20,000 working_hours"),
        ("waiting", "1200001 working_minutes", "1,200,000 working_minutes"),
    ],
)
def test_when_durations_beyond_the_calendar_are_refused(tmp_path, kind, value, bound) -> None:
    file, problems = problems_of(tmp_path, one_stage(f"          {kind}: {value}"))
    assert problems == [
        f"{file}:6: policies[0].stages[0].when.{kind}: expected at most {bound} {BOUND}, "
        f"got '{value}'"
    ]


def test_repeat_beyond_the_calendar_is_refused(tmp_path) -> None:
    text = one_stage("          overdue: 0 working_days", "        repeat: 3000 working_days\n")
    file, problems = problems_of(tmp_path, text)
    assert problems == [
        f"{file}:8: policies[0].stages[0].repeat: expected at most 2,500 working_days {BOUND}, "
        "got '3000 working_days'"
    ]


REPEAT = 'expected a repeat of at least one minute of working time, such as "1 working_day"'


@pytest.mark.parametrize(
    "repeat",
    ["0 working_days", "0 working_hours", "0.01 working_hours", "0.9 working_minutes", "10s"],
)
def test_repeat_under_one_minute_is_refused(tmp_path, repeat) -> None:
    text = one_stage("          overdue: 0 working_days", f"        repeat: {repeat}\n")
    file, problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith(f"{file}:8: policies[0].stages[0].repeat: {REPEAT}")
    assert problems[0].endswith(f"got '{repeat}'")


def test_a_fraction_of_a_working_day_under_one_minute_is_refused(tmp_path) -> None:
    # 0.002 of the default 8-hour day is 58 s; the length of a day depends on the calendar.
    text = one_stage("          overdue: 0 working_days", "        repeat: 0.002 working_days\n")
    file, problems = problems_of(tmp_path, text)
    assert problems == [
        f'{file}:8: policies[0].stages[0].repeat: {REPEAT} or "30 working_minutes", '
        "got '0.002 working_days' (58 s in calendar 'default')"
    ]


def test_shortest_and_longest_durations_are_accepted(tmp_path) -> None:
    text = """\
policies:
  - name: p
    stages:
      - {id: a, when: {overdue: 2500 working_days}, notify: [assignee], repeat: 1 working_minute}
      - {id: b, when: {idle: 20000 working_hours}, notify: [assignee], repeat: 0.01 working_days}
      - {id: c, when: {remaining: 0 working_days}, notify: [assignee], repeat: 2500 working_days}
"""
    s = settings_with(tmp_path, "rules: [rules.yaml]", rules=text)
    rules = load_rules(s, env={})
    a, b, c = rules.policies[0].stages
    assert a.repeat == Duration(1, Unit.WORKING_MINUTES)
    assert b.repeat == Duration(0.01, Unit.WORKING_DAYS)  # 288 s of an 8-hour day
    assert c.repeat == Duration(2500, Unit.WORKING_DAYS)


def test_bad_share_in_elapsed(tmp_path) -> None:
    file, problems = problems_of(tmp_path, one_stage('          elapsed: "175%"'))
    assert len(problems) == 1
    assert problems[0].startswith(f"{file}:6: policies[0].stages[0].when.elapsed: ")


def test_unknown_when_kind(tmp_path) -> None:
    file, problems = problems_of(tmp_path, one_stage("          soon: 1 working_day"))
    assert f"{file}:6: policies[0].stages[0].when.soon: unknown key" in problems


def test_two_when_kinds(tmp_path) -> None:
    when = "          remaining: 1 working_day\n          overdue: 0 working_days"
    file, problems = problems_of(tmp_path, one_stage(when))
    assert len(problems) == 1
    assert problems[0].startswith(f"{file}:5: policies[0].stages[0].when: expected exactly one")
    assert "got 2" in problems[0]


def test_no_when_kind(tmp_path) -> None:
    file, problems = problems_of(tmp_path, one_stage("          extended: false"))
    assert len(problems) == 1
    assert problems[0].startswith(f"{file}:5: policies[0].stages[0].when: expected exactly one")


def test_unknown_recipient_keyword(tmp_path) -> None:
    text = one_stage("          remaining: 1 working_day").replace(
        "[assignee]", "[assignee, boss, cv1, a.b@tinh.vn]"
    )
    file, problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith(f"{file}:7: policies[0].stages[0].notify[1]: expected assignee")
    assert "got 'boss'" in problems[0]


def test_channel_not_configured(tmp_path) -> None:
    text = one_stage("          remaining: 1 working_day", "        channels: [email, telegram]\n")
    file, problems = problems_of(tmp_path, text)
    assert problems == [
        f"{file}:8: policies[0].stages[0].channels[1]: "
        "channel 'telegram' is not configured under channels:"
    ]


def test_unknown_channel_name(tmp_path) -> None:
    text = one_stage("          remaining: 1 working_day", "        channels: [sms]\n")
    file, problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith(f"{file}:8: policies[0].stages[0].channels[0]: ")


def test_inhibits_unknown_stage(tmp_path) -> None:
    text = one_stage("          remaining: 1 working_day", "        inhibits: [nope]\n")
    file, problems = problems_of(tmp_path, text)
    assert problems == [
        f"{file}:8: policies[0].stages[0].inhibits[0]: "
        "expected another stage id of this policy, got 'nope'"
    ]


def test_inhibits_a_stage_of_another_policy(tmp_path) -> None:
    text = """\
policies:
  - name: a
    continue: true
    stages:
      - {id: soon, when: {remaining: 1 working_day}, notify: [assignee]}
  - name: b
    stages:
      - {id: late, when: {overdue: 0 working_days}, notify: [assignee], inhibits: [soon]}
"""
    file, problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith(f"{file}:8: policies[1].stages[0].inhibits[0]: ")


def test_duplicate_stage_id(tmp_path) -> None:
    text = """\
policies:
  - name: p
    stages:
      - id: soon
        when: {remaining: 1 working_day}
        notify: [assignee]
      - id: soon
        when: {remaining: 2 working_days}
        notify: [assignee]
"""
    file, problems = problems_of(tmp_path, text)
    assert problems == [f"{file}:7: policies[0].stages[1].id: duplicate stage id 'soon'"]


def test_duplicate_policy_name_across_files(tmp_path) -> None:
    text = """\
policies:
  - name: chung
    stages:
      - {id: soon, when: {remaining: 1 working_day}, notify: [assignee]}
"""
    other = "# tệp thứ hai\n" + text
    s = settings_with(tmp_path, "rules: [a.yaml, b.yaml]", a=text, b=other)
    with pytest.raises(ConfigError) as exc:
        load_rules(s, env={})
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert exc.value.problems == [
        f"{b}:3: policies[0].name: policy 'chung' is already defined in {a}:2"
    ]


def test_until_ack_without_repeat(tmp_path) -> None:
    text = one_stage("          overdue: 0 working_days", "        until_ack: true\n")
    file, problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith(f"{file}:4: policies[0].stages[0]: until_ack needs repeat")


def test_waiting_cannot_be_step_scoped(tmp_path) -> None:
    text = one_stage("          waiting: 15 working_days", "        scope: step\n")
    file, problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith(f"{file}:4: policies[0].stages[0]: ")


def test_bad_cron_in_digests(tmp_path) -> None:
    text = """\
digests:
  - name: sang
    to: unit_heads
    schedule: "61 7 * * *"
    sections: [overdue]
"""
    file, problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith(f"{file}:4: digests[0].schedule: expected a cron expression")


def test_unknown_unit_in_match(tmp_path) -> None:
    text = """\
policies:
  - name: p
    match:
      units: [STP, XYZ]
    stages:
      - {id: soon, when: {remaining: 1 working_day}, notify: [assignee]}
"""
    file, problems = problems_of(tmp_path, text)
    assert problems == [f"{file}:4: policies[0].match.units[1]: unknown unit 'XYZ'"]


def test_a_unit_close_to_a_configured_one_is_suggested(tmp_path) -> None:
    """'STP.HC.M' is closest to 'STP.HC.MC' (difflib ratio 2*8/17 = 0.94; 'STP.HC' 0.86)."""
    text = """\
policies:
  - name: p
    match: {units: [STP.HC.M]}
    stages:
      - {id: soon, when: {remaining: 1 working_day}, notify: [assignee]}
"""
    file, problems = problems_of(tmp_path, text)
    assert problems == [
        f"{file}:3: policies[0].match.units[0]: unknown unit 'STP.HC.M' (did you mean 'STP.HC.MC'?)"
    ]


def test_a_procedure_or_field_no_configured_procedure_has(tmp_path) -> None:
    """A code that is not configured, a glob that matches no configured code and a field no
    procedure has are each an error at their line, with the closest configured value.

    Configured: 1.001000, 1.001001, 10.001, 2.000001, 3.000001, 1.012790; fields tu_phap and
    Đất đai. '1.002000' shares 7 of 8 characters with '1.001000' (ratio 2*7/16 = 0.875), 6 with
    1.001001, 2.000001 and 3.000001 (0.75): 1.001000 is suggested. '1.00*' matches 1.001000 and
    1.001001; '7.*' matches nothing. 'tu phap' is 'tu_phap' but for one character (ratio
    2*6/14 = 0.86); 'Xây dựng' is close to no field.
    """
    text = """\
policies:
  - name: p
    match:
      procedures: ["1.002000", "1.00*", "7.*", "3.000001"]
      fields: [tu phap, Đất đai, Xây dựng]
    stages:
      - {id: soon, when: {remaining: 1 working_day}, notify: [assignee]}
"""
    file, problems = problems_of(tmp_path, text)
    assert problems == [
        f"{file}:4: policies[0].match.procedures[0]: no configured procedure has code "
        "'1.002000' (did you mean '1.001000'?)",
        f"{file}:4: policies[0].match.procedures[2]: no configured procedure matches '7.*'",
        f"{file}:5: policies[0].match.fields[0]: no configured procedure has field 'tu phap' "
        "(did you mean 'tu_phap'?)",
        f"{file}:5: policies[0].match.fields[2]: no configured procedure has field 'Xây dựng'",
    ]


@pytest.mark.parametrize("written", ["[1.012790]", "1.012790", "[1.01279]", '["1.01279"]'])
def test_numeric_procedure_codes_are_restored_not_truncated(tmp_path, written) -> None:
    """Unquoted, YAML reads 1.012790 as the float 1.01279; str() of it gave "1.01279", which
    no case code ever equals, so the policy silently never matched. procedure_code restores
    the national d.dddddd form: 1.01279 -> "1.012790" (also the text "1.01279", as the
    configuration and imports read it), and the case with code 1.012790 gets stage `dat`."""
    text = f"""\
policies:
  - name: dat_dai
    match: {{procedures: {written}}}
    stages:
      - {{id: dat, when: {{remaining: 1 working_day}}, notify: [assignee]}}
"""
    s = settings_with(tmp_path, "rules: [rules.yaml]", rules=text)
    rules = load_rules(s, env={})
    assert rules.policies[0].match.procedures == ("1.012790",)
    assert [c.key for c in rules.stages_for(s, "1.012790", "SXD", None)] == ["dat_dai/dat"]


def test_a_number_no_procedure_code_gives_is_a_located_error(tmp_path) -> None:
    """1.0127901 has seven decimals: no d.dddddd code reads as it, so it is refused where it
    is written instead of being kept as the text "1.0127901"."""
    text = """\
policies:
  - name: p
    match:
      procedures:
        - "1.012790"
        - 1.0127901
    stages:
      - {id: soon, when: {remaining: 1 working_day}, notify: [assignee]}
"""
    file, problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith(
        f"{file}:6: policies[0].match.procedures[1]: the number 1.0127901 is no national TTHC "
        "code (d.dddddd, such as 1.012790)"
    )


def test_every_problem_is_listed(tmp_path) -> None:
    text = """\
policies:
  - name: p
    stages:
      - id: soon
        when: {remaining: 1 working_day}
        notify: [boss]
        inhibits: [nope]
"""
    file, problems = problems_of(tmp_path, text)
    assert [p.split(": ")[0] for p in problems] == [f"{file}:6", f"{file}:7"]


def test_missing_rule_file(tmp_path) -> None:
    s = settings_with(tmp_path, "rules: [khong_co.yaml]")
    with pytest.raises(ConfigError) as exc:
        load_rules(s, env={})
    assert str(tmp_path / "khong_co.yaml") in exc.value.problems[0]


# ----- matching -----------------------------------------------------------------------------

MATCHING = """\
policies:
  - name: thu_tuc_1
    match: {procedures: ["1.00*"]}
    stages:
      - {id: a, when: {remaining: 1 working_day}, notify: [assignee]}
  - name: don_vi_stp
    match: {units: [STP]}
    continue: true
    stages:
      - {id: b, when: {remaining: 1 working_day}, notify: [assignee]}
  - name: truc_tuyen
    match: {submitted_via: [online]}
    stages:
      - {id: c, when: {remaining: 1 working_day}, notify: [assignee]}
  - name: linh_vuc
    match: {fields: [tu_phap]}
    stages:
      - {id: e, when: {remaining: 1 working_day}, notify: [assignee]}
  - name: mac_dinh
    stages:
      - {id: d, when: {remaining: 1 working_day}, notify: [assignee]}
      - {id: d2, when: {overdue: 0 working_days}, notify: [assignee]}
"""


@pytest.fixture
def matching(tmp_path) -> tuple[Settings, RuleSet]:
    s = settings_with(tmp_path, "rules: [rules.yaml]", rules=MATCHING)
    return s, load_rules(s, env={})


@pytest.mark.parametrize(
    ("procedure", "unit", "channel", "keys"),
    [
        # first match wins: the procedure glob, nothing after it
        ("1.001000", "STP.HC.MC", None, ["thu_tuc_1/a"]),
        ("1.001001", "SXD", "online", ["thu_tuc_1/a"]),
        # "1.00*" does not match 10.001; STP's subtree + continue adds the next match
        ("10.001", "STP.HC.MC", "online", ["don_vi_stp/b", "truc_tuyen/c"]),
        ("2.000001", "STP.HC.MC", "direct", ["don_vi_stp/b", "linh_vuc/e"]),
        ("3.000001", "STP", "postal", ["don_vi_stp/b", "mac_dinh/d", "mac_dinh/d2"]),
        ("2.000001", "SXD", None, ["linh_vuc/e"]),
        ("3.000001", "SXD", "direct", ["mac_dinh/d", "mac_dinh/d2"]),
        # T is above STP, not in its subtree; an unknown unit is in no subtree
        ("3.000001", "T", None, ["mac_dinh/d", "mac_dinh/d2"]),
        ("3.000001", "ZZZ", "online", ["truc_tuyen/c"]),
        # an unknown procedure matches no field
        ("9.999", "SXD", None, ["mac_dinh/d", "mac_dinh/d2"]),
    ],
)
def test_policy_matching(matching, procedure, unit, channel, keys) -> None:
    s, rules = matching
    assert [c.key for c in rules.stages_for(s, procedure, unit, channel)] == keys
    # asked again (cached): the same answer
    assert [c.key for c in rules.stages_for(s, procedure, unit, channel)] == keys


def test_rule_files_by_glob_in_order(tmp_path) -> None:
    one = "policies:\n  - {name: a, continue: true, stages: [{id: x, when: {idle: 1 working_day}, notify: [assignee]}]}\n"  # noqa: E501
    two = "policies:\n  - {name: b, stages: [{id: y, when: {idle: 2 working_days}, notify: [assignee]}]}\n"  # noqa: E501
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "20_b.yaml").write_text(two, encoding="utf-8")
    (tmp_path / "rules" / "10_a.yaml").write_text(one, encoding="utf-8")
    s = settings_with(tmp_path, "rules: [rules/*.yaml]")
    rules = load_rules(s, env={})
    assert [p.name for p in rules.policies] == ["a", "b"]
    assert [c.key for c in rules.stages_for(s, "3.000001", "SXD", None)] == ["a/x", "b/y"]


def test_no_rules(tmp_path) -> None:
    s = settings_with(tmp_path, "rules: []")
    rules = load_rules(s, env={})
    assert rules.policies == () and rules.digests == ()
    assert rules.stages_for(s, "1.001000", "STP.HC.MC", None) == ()


# ----- the shipped defaults --------------------------------------------------------------------

WD = Unit.WORKING_DAYS
DEFAULT_STAGES = {
    # id: (kind, value, scope, notify, repeat)
    "due_soon": (WhenKind.REMAINING, Duration(1, WD), "case", ("assignee",), None),
    "due_today": (WhenKind.ON_DUE_DAY, time(7, 30), "case", ("assignee",), None),
    "apology_needed": (
        WhenKind.REMAINING,
        Duration(1, WD),
        "case",
        ("assignee", "unit_head"),
        None,
    ),
    "overdue": (
        WhenKind.OVERDUE,
        Duration(0, WD),
        "case",
        ("assignee", "unit_head"),
        Duration(1, WD),
    ),
    "overdue_agency": (WhenKind.OVERDUE, Duration(2, WD), "case", ("agency_head",), None),
    "overdue_supervisor": (
        WhenKind.OVERDUE,
        Duration(5, WD),
        "case",
        ("supervisors",),
        Duration(5, WD),
    ),
    "step_overdue": (
        WhenKind.OVERDUE,
        Duration(0, WD),
        "step",
        ("step_handler", "unit_head"),
        None,
    ),
    "idle": (WhenKind.IDLE, Duration(3, WD), "case", ("assignee",), Duration(3, WD)),
    "waiting_too_long": (
        WhenKind.WAITING,
        Duration(15, WD),
        "case",
        ("assignee", "unit_head"),
        None,
    ),
}


@pytest.mark.parametrize("rules_line", [None, f"rules: [{ROOT / 'rules' / 'default.yaml'}]"])
def test_default_rules_have_the_nine_stages_of_spec(tmp_path, rules_line) -> None:
    s = settings_with(tmp_path, rules_line)
    rules = load_rules(s, env={})
    stages = rules.stages_for(s, "1.001000", "STP.HC.MC", "online")
    got = {
        c.stage.id: (
            c.stage.when.kind,
            c.stage.when.value,
            c.stage.scope,
            c.stage.notify,
            c.stage.repeat,
        )
        for c in stages
    }
    assert got == DEFAULT_STAGES
    assert len(stages) == 9
    by_id = {c.stage.id: c.stage for c in stages}
    assert by_id["apology_needed"].when.extended is False
    assert by_id["apology_needed"].attach == "apology_letter"
    assert set(by_id["overdue"].inhibits) == {"due_soon", "due_today", "apology_needed"}
    assert all(not st.urgent for st in by_id.values())
    assert [d.name for d in rules.digests] == ["ban_tin_sang", "ban_tin_tuan"]
