"""Expected failures as a user meets them (issue 10, item 7): the command line run as a subprocess,
each failure one line on stderr that names the file or URL (password masked) and says what to
do; exit status 2 for configuration, 1 for runtime problems; never a traceback."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from watchdog.store.db import head_revision

NOW = "20/11/2026 09:00"


def watchdog(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("WATCHDOG_CONFIG", "WATCHDOG_DEBUG")
    } | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "watchdog", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(r: subprocess.CompletedProcess, status: int, *words: str) -> str:
    """The failure is exactly one line on stderr, with the status and the words expected."""
    assert r.returncode == status, r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def config_with_url(small_config: Path, url: str) -> Path:
    text = small_config.read_text(encoding="utf-8")
    path = small_config.with_name("db.yaml")
    path.write_text(text.replace("sqlite:///var/test.db", url), encoding="utf-8")
    return path


# ----- the database ------------------------------------------------------------------------------


def test_unreachable_server_names_the_url_with_the_password_masked(
    small_config: Path, tmp_path: Path
) -> None:
    config = config_with_url(small_config, "postgresql+psycopg://watchdog:s3cret@127.0.0.1:1/wd")
    for command in (["check"], ["cases"], ["run", "--once", "--now", NOW], ["db", "upgrade"]):
        r = watchdog("--config", str(config), *command, cwd=tmp_path)
        line = one_line(
            r,
            1,
            "postgresql+psycopg://watchdog:***@127.0.0.1:1/wd",
            "cannot connect to the database server",
            "Connection refused",
        )
        assert "s3cret" not in line


def test_unknown_url_scheme_is_a_configuration_error(small_config: Path, tmp_path: Path) -> None:
    config = config_with_url(small_config, "foo://x")
    for command in ("check", "cases"):
        r = watchdog("--config", str(config), command, cwd=tmp_path)
        one_line(r, 2, "foo://x", "unknown database URL scheme 'foo'", "sqlite:///")


def test_a_database_watchdog_does_not_support_or_a_driver_not_installed(
    small_config: Path, tmp_path: Path
) -> None:
    config = config_with_url(small_config, "mysql://wd:s3cret@db.example/wd")
    r = watchdog("--config", str(config), "cases", cwd=tmp_path)
    line = one_line(r, 2, "mysql://wd:***@db.example/wd", "does not support mysql")
    assert "s3cret" not in line

    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg2 is installed here")
    config = config_with_url(small_config, "postgresql+psycopg2://wd:s3cret@db.example/wd")
    r = watchdog("--config", str(config), "check", cwd=tmp_path)
    one_line(r, 2, "postgresql+psycopg2://wd:***@db.example/wd", "psycopg2 is not installed")


def test_a_directory_as_the_sqlite_database(small_config: Path, tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    config = config_with_url(small_config, "sqlite:///var")
    for command in ("check", "cases"):
        r = watchdog("--config", str(config), command, cwd=tmp_path)
        one_line(r, 2, f"sqlite:///{tmp_path / 'var'}", "is a directory, not a database file")


def test_a_text_file_as_the_database(small_config: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("meeting notes, not a database\n" * 50, encoding="utf-8")
    config = config_with_url(small_config, "sqlite:///notes.txt")
    for command in ("check", "cases", "findings"):
        r = watchdog("--config", str(config), command, cwd=tmp_path)
        one_line(r, 1, str(tmp_path / "notes.txt"), "is not a SQLite database")
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8").startswith("meeting notes")


def test_a_read_only_database(small_config: Path, tmp_path: Path) -> None:
    r = watchdog(
        "--config", str(small_config), "run", "--once", "--demo", "--now", NOW, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    # Tests run as root, whom file modes do not stop: SQLite's read-only open mode stands in.
    db = tmp_path / "var" / "test.db"
    config = config_with_url(small_config, f"sqlite:///{db}?mode=ro&uri=true")
    csv = tmp_path / "cases.csv"
    csv.write_text(
        "Mã hồ sơ,Mã TTHC,Đơn vị,Ngày tiếp nhận,Trạng thái\nN1,2.000488,STP.HC,19/11/2026,2\n",
        encoding="utf-8",
    )
    for command in (["check"], ["import", str(csv)], ["run", "--once", "--now", "23/11/2026"]):
        r = watchdog("--config", str(config), *command, cwd=tmp_path)
        one_line(r, 1, str(db), "the database is read-only")
    # reading still works
    r = watchdog("--config", str(config), "cases", "--now", NOW, cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_check_opens_the_database_and_reports_it(small_config: Path, tmp_path: Path) -> None:
    db = tmp_path / "var" / "test.db"
    r = watchdog("--config", str(small_config), "check", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == (
        f"database: OK (sqlite:///{db}: a new file, created on first use)"
    )
    assert not db.exists()  # check creates nothing
    assert watchdog("--config", str(small_config), "findings", cwd=tmp_path).returncode == 0
    r = watchdog("--config", str(small_config), "check", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"database: OK (sqlite:///{db}, schema {head_revision()})"


def test_check_reports_a_postgresql_schema_to_upgrade(
    small_config: Path, tmp_path: Path, postgres_url: str
) -> None:
    config = config_with_url(small_config, postgres_url)
    r = watchdog("--config", str(config), "check", cwd=tmp_path)
    one_line(r, 2, "has no watchdog tables yet", "run `watchdog db upgrade`")
    r = watchdog("--config", str(config), "db", "upgrade", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = watchdog("--config", str(config), "check", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].startswith("database: OK (postgresql")


# ----- the configuration file --------------------------------------------------------------------


def test_a_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    config = tmp_path / "cp1258.yaml"
    config.write_bytes(
        "database: {url: sqlite:///var/x.db}\nunits:\n  - {code: STP, name: Tư pháp}\n".encode(
            "cp1258"
        )
    )
    r = watchdog("--config", str(config), "check", cwd=tmp_path)
    one_line(r, 2, f"{config}:3:", "not UTF-8", "save the file as UTF-8")


def test_a_config_file_that_is_not_yaml(small_config: Path, tmp_path: Path) -> None:
    tabs = tmp_path / "tabs.yaml"
    tabs.write_text("database:\n\turl: sqlite:///var/x.db\n", encoding="utf-8")
    r = watchdog("--config", str(tabs), "check", cwd=tmp_path)
    one_line(r, 2, f"{tabs}:2:", "invalid YAML", "indent with spaces, not tabs")

    binary = tmp_path / "binary.yaml"
    binary.write_bytes(Path(sys.executable).resolve().read_bytes()[:4096])
    r = watchdog("--config", str(binary), "cases", cwd=tmp_path)
    one_line(r, 2, f"{binary}:1:", "not a text file")

    controls = tmp_path / "controls.yaml"
    controls.write_text("units:\n  - code: \x01\n", encoding="utf-8")
    r = watchdog("--config", str(controls), "check", cwd=tmp_path)
    one_line(r, 2, f"{controls}:2:", "not a YAML file")

    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    r = watchdog("--config", str(folder), "check", cwd=tmp_path)
    one_line(r, 2, f"{folder}: cannot read")


def test_an_output_file_that_cannot_be_written(small_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "folder" / "r.csv"
    r = watchdog(
        "--config",
        str(small_config),
        "report",
        "--from",
        "01/11/2026",
        "--to",
        "30/11/2026",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    one_line(r, 2, f"--out {out}: cannot write")


# ----- unexpected errors and readers that go away ------------------------------------------------

BOOM = """\
import sys
from watchdog import cli

def boom(args):
    raise ZeroDivisionError("the numbers\\nwent wrong")

cli.cmd_check = boom
raise SystemExit(cli.main(sys.argv[1:]))
"""


def test_an_unexpected_error_is_one_line_with_the_debug_hint(tmp_path: Path) -> None:
    def run(env: dict[str, str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", BOOM, "check"],
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if k != "WATCHDOG_DEBUG"} | env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    r = run({})
    assert r.stderr == (
        "watchdog: unexpected error: ZeroDivisionError: the numbers went wrong "
        "(set WATCHDOG_DEBUG=1 for the traceback)\n"
    )
    assert r.returncode == 1
    r = run({"WATCHDOG_DEBUG": "1"})
    assert r.returncode == 1
    assert r.stderr.startswith("Traceback") and "in boom" in r.stderr


@pytest.fixture
def full_database(small_config: Path, tmp_path: Path) -> Path:
    """The demo province loaded into the small config's database: a few hundred cases."""
    r = watchdog(
        "--config", str(small_config), "run", "--once", "--demo", "--now", NOW, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    return small_config


def test_cases_piped_into_head_exits_quietly(full_database: Path, tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("needs bash")
    # The demo alone prints about 40 KB, which fits in a pipe (64 KiB): the command then never
    # meets the closed pipe, and the test passed without the handling. 800 more open cases
    # make the output several times larger than the pipe, so `head` is gone before the end.
    more = tmp_path / "more.csv"
    more.write_text(
        "Mã hồ sơ,Mã TTHC,Đơn vị,Ngày tiếp nhận,Trạng thái\n"
        + "".join(f"P{i:04d},2.000488,STP.HC,19/11/2026,2\n" for i in range(800)),
        encoding="utf-8",
    )
    r = watchdog("--config", str(full_database), "import", str(more), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    command = (
        f"{sys.executable} -m watchdog --config {full_database} cases --format jsonl --now '{NOW}'"
    )
    size = len(subprocess.run(command, shell=True, capture_output=True, cwd=tmp_path).stdout)
    assert size > 3 * 64 * 1024
    r = subprocess.run(
        [bash, "-c", f"{command} | head -1; echo status=${{PIPESTATUS[0]}} >&2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.stderr == "status=141\n", r.stderr  # the reader went away; nothing else said
    assert len(r.stdout.splitlines()) == 1 and json.loads(r.stdout)["case_code"]


def test_a_reader_that_goes_away_mid_output(full_database: Path, tmp_path: Path) -> None:
    """A pipe smaller than the output: the command is still writing when the reader closes."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    args = ["--config", str(full_database), "cases", "--format", "jsonl", "--now", NOW]
    child = subprocess.Popen(
        [sys.executable, "-m", "watchdog", *args],
        cwd=tmp_path,
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        first = reader.readline()
    _, err = child.communicate(timeout=120)
    assert json.loads(first)["case_code"]
    assert err == ""
    assert child.returncode == 141
