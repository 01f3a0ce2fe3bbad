"""The encoding of a CSV file (issue 10, item 5): the byte order mark, the codec asked for, and
the streaming check that finds the first undecodable byte, by row and byte offset, before the
import writes anything. No database: `TextEncoding` and `read_rows` on files in tmp_path.
"""

from __future__ import annotations

import codecs
import unicodedata
from pathlib import Path

import pytest

from watchdog.sources import fileimport
from watchdog.sources.fileimport import ImportFileError, TextEncoding, read_rows


def write(tmp_path: Path, data: bytes, name: str = "c.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("bom", "codec"),
    [
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
    ],
)
@pytest.mark.parametrize("asked", ["utf-8", "cp1258", "utf-16"])
def test_a_bom_decides_the_encoding(tmp_path: Path, bom: bytes, codec: str, asked: str) -> None:
    text = "Mã hồ sơ,Mã TTHC\nA,2.000488\n"
    path = write(tmp_path, bom + text.encode(codec))
    enc = TextEncoding.of(path, asked)
    assert (enc.codec, enc.bom) == (codec, len(bom))
    enc.validate(path)
    assert [cells for _, cells in read_rows(path, asked)] == [
        ["Mã hồ sơ", "Mã TTHC"],
        ["A", "2.000488"],
    ]  # the BOM is not part of the first header


@pytest.mark.parametrize(
    ("asked", "codec"),
    [("utf-8", "utf-8"), ("UTF8", "utf-8"), ("utf-8-sig", "utf-8"), ("CP1258", "cp1258")],
)
def test_without_a_bom_the_encoding_asked_for(tmp_path: Path, asked: str, codec: str) -> None:
    path = write(tmp_path, b"a,b\n")
    assert TextEncoding.of(path, asked) == TextEncoding(codec, 0)


@pytest.mark.parametrize("name", ["tcvn3", "vni-windows", "base64", "rot13", ""])
def test_unknown_or_non_text_encoding_is_a_file_error(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, b"a,b\n")
    with pytest.raises(ImportFileError, match=f"c\\.csv: unknown encoding '{name}'; use utf-8"):
        read_rows(path, name)


def test_bad_byte_is_named_by_row_and_offset(tmp_path: Path) -> None:
    data = "Mã hồ sơ,Chủ hồ sơ\nA,Lê Văn An\nB,Tr".encode() + b"\xe2\xa7n\nC,x\n"
    path = write(tmp_path, data)
    with pytest.raises(ImportFileError) as caught:
        read_rows(path)
    offset = data.index(b"\xe2\xa7")
    assert str(caught.value) == (
        f"{path}: row 3 is not valid UTF-8 (byte offset {offset:,}: 0xe2 0xa7, a multi-byte "
        "character broken off); nothing was imported; if it comes from older Vietnamese software, "
        "try --encoding cp1258; otherwise re-save it as UTF-8 (CSV UTF-8)"
    )


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_row_and_offset_do_not_depend_on_where_reads_split_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """The check reads the file in chunks; a character split across two reads is fine and the
    bad byte is found at the same place whatever the chunk size."""
    monkeypatch.setattr(fileimport, "_CHUNK", chunk)
    good = "Mã hồ sơ\nNguyễn Văn Ân\r\nĐặng\n\n".encode()
    path = write(tmp_path, codecs.BOM_UTF8 + good + b"x\xff\n")
    with pytest.raises(ImportFileError, match=r"row 5 is not valid UTF-8 \(byte offset ([\d,]+)"):
        read_rows(path)
    with pytest.raises(ImportFileError) as caught:
        read_rows(path)
    assert f"byte offset {3 + len(good) + 1:,}: 0xff" in str(caught.value)


def test_truncated_character_at_the_end_is_found(tmp_path: Path) -> None:
    data = "Mã hồ sơ\nNguy".encode() + "ễ".encode()[:2]
    path = write(tmp_path, data)
    with pytest.raises(
        ImportFileError, match=f"row 2 is not valid UTF-8 \\(byte offset {len(data) - 2}:"
    ):
        read_rows(path)


def test_utf16_bad_surrogate_is_named_by_row_and_offset(tmp_path: Path) -> None:
    good = codecs.BOM_UTF16_LE + "a,b\nc,d\n".encode("utf-16-le")
    path = write(tmp_path, good + b"\x00\xdc" + "x\n".encode("utf-16-le"))  # a lone low surrogate
    with pytest.raises(
        ImportFileError, match=f"row 3 is not valid UTF-16-LE \\(byte offset {len(good)}:"
    ):
        read_rows(path)


def test_cp1258_is_composed_to_nfc(tmp_path: Path) -> None:
    """Windows-1258 writes tone marks as combining characters; the rows hold composed text."""
    raw = b"Chu\xd2 h\xf4\xcc s\xf5\nNguy\xea\xden V\xe3n \xc2n\n"  # Chủ hồ sơ / Nguyễn Văn Ân
    assert not unicodedata.is_normalized("NFC", raw.decode("cp1258"))
    path = write(tmp_path, raw)
    assert [cells for _, cells in read_rows(path, "cp1258")] == [["Chủ hồ sơ"], ["Nguyễn Văn Ân"]]


def test_undecodable_cp1258_suggests_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, b"a\nb\xec\x81\n")  # 0x81 is not a cp1258 character
    with pytest.raises(ImportFileError) as caught:
        read_rows(path, "cp1258")
    message = str(caught.value)
    assert "row 2 is not valid cp1258 (byte offset 4: 0x81" in message
    assert "--encoding cp1258" not in message and "re-save it as UTF-8" in message


def test_the_check_runs_before_the_first_row_is_read(tmp_path: Path) -> None:
    """read_rows raises at once, not when the reader reaches the bad row."""
    data = b"a,b\n" + b"1,2\n" * 50_000 + b"\xff\n"
    path = write(tmp_path, data)
    with pytest.raises(ImportFileError, match="row 50002 is not valid UTF-8"):
        read_rows(path)


def test_huge_cells_are_read(tmp_path: Path) -> None:
    """The csv module's default limit (128 KiB per cell) would stop the file."""
    big = "x" * (300 * 1024)
    path = write(tmp_path, f"a,b\n1,{big}\n2,y\n".encode())
    rows = list(read_rows(path))
    assert [(n, len(cells[1])) for n, cells in rows] == [(1, 1), (2, len(big)), (3, 1)]
