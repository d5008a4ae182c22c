"""Helpers for tests that send what well-behaved clients never send."""

from __future__ import annotations

import io
import json
import socket
import zipfile
from typing import Any
from urllib.parse import urlsplit


def run_sql(database_url: str, statements: list[str]) -> list[Any]:
    """Run statements in one transaction on a service's database (what an operator, a
    schema drift or another client would do); return the rows of the last SELECT."""
    import asyncio

    from sqlalchemy import text

    from shared.db import Database

    async def run() -> list[Any]:
        db = Database(database_url)
        rows: list[Any] = []
        try:
            async with db.engine.begin() as conn:
                for stmt in statements:
                    result = await conn.execute(text(stmt))
                    if stmt.lstrip().upper().startswith("SELECT"):
                        rows = list(result.all())
        finally:
            await db.dispose()
        return rows

    return asyncio.run(run())


def raw_exchange(
    url: str, head: str, chunks: list[bytes], timeout: float = 30.0
) -> tuple[int, dict[str, Any]]:
    """Send a request head and body pieces over a plain socket, stop sending as soon as
    the server answers (it may refuse before the body ends), return (status, JSON body)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed: read the answer
        data = b""
        while True:
            try:
                got = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not got:
                break
            data += got
            if b"\r\n\r\n" in data:
                header, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in header.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")),
                    None,
                )  # fmt: skip
                if length is not None and len(body) >= length:
                    break
    header, _, body = data.partition(b"\r\n\r\n")
    status = int(header.split(b" ")[1])
    return status, json.loads(body) if body else {}


def chunked(piece: bytes, count: int) -> list[bytes]:
    """`count` HTTP/1.1 chunks of `piece` (no terminating chunk: the sender never ends)."""
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return [frame] * count


def zip_bomb_xlsx(expanded: int) -> bytes:
    """A workbook whose first sheet expands to `expanded` bytes of whitespace (deflate
    shrinks it ~1000x), built in memory a megabyte at a time."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", RELS)
        zf.writestr("xl/workbook.xml", WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            part.write(b'<?xml version="1.0"?><worksheet xmlns="' + NS + b'"><sheetData>')
            mb = b" " * (1024 * 1024)
            for _ in range(expanded // len(mb)):
                part.write(mb)
            part.write(b"</sheetData></worksheet>")
    return buf.getvalue()


def xlsx_with_dimension(ref: str) -> bytes:
    """A tiny valid workbook whose sheet claims the dimension `ref` (e.g. A1:B2000000)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", RELS)
        zf.writestr("xl/workbook.xml", WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        zf.writestr(
            "xl/worksheets/sheet1.xml",
            b'<?xml version="1.0"?><worksheet xmlns="' + NS + b'"><dimension ref="'
            + ref.encode() + b'"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>'
            + "申请号".encode() + b"</t></is></c></row></sheetData></worksheet>",
        )  # fmt: skip
    return buf.getvalue()


NS = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
CONTENT_TYPES = (
    '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
    'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
    'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
    'worksheet+xml"/></Types>'
)
RELS = (
    '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
    '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
WORKBOOK = (
    '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
    '2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
    '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    "</Relationships>"
)


def probe_parameters(base_url: str, key: str) -> list[str]:
    """Every GET operation of a service, every integer parameter set to 2**64 (and a year
    to 2**31), every string parameter given a NUL: each must be a 4xx, the integers and
    NULs a 422. Returns what went wrong (empty when all is well)."""
    import httpx

    headers = {"Authorization": f"Bearer {key}", "Accept-Language": "en"}
    failures: list[str] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as c:
        spec = c.get("/openapi.json").json()
        for path, ops in spec["paths"].items():
            op = ops.get("get")
            if not op:
                continue
            params = op.get("parameters", [])
            base_path = {p["name"]: "1" for p in params if p["in"] == "path"}
            for p in params:
                schema = p.get("schema", {})
                types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
                values: list[str] = []
                if "integer" in types:
                    values = [str(2**64), str(-(2**64))]
                    if p["name"] == "year":
                        values.append(str(2**31))
                elif "string" in types and not schema.get("enum"):
                    values = ["a\x00b"]
                for value in values:
                    path_values = dict(base_path)
                    query = {}
                    if p["in"] == "path":
                        path_values[p["name"]] = value.replace("\x00", "%00")
                    elif p["in"] == "query":
                        query[p["name"]] = value
                    else:
                        continue
                    url = path.format(**path_values)
                    try:
                        r = c.get(url, params=query)
                    except httpx.TransportError as exc:  # a 500 that dropped the connection
                        failures.append(f"GET {url} {query} -> {type(exc).__name__}")
                        continue
                    # A negative id in a path an `{id:int}` route does not match: no such
                    # resource (404) is as true an answer as 422.
                    negative_path = p["in"] == "path" and value.startswith("-")
                    if r.status_code != 422 and not (negative_path and r.status_code == 404):
                        failures.append(f"GET {url} {query} -> {r.status_code}: {r.text[:200]}")
    return failures


def refusal_rule(
    database_url: str, table: str, column: str, prefix: str
) -> tuple[list[str], list[str]]:
    """SQL that makes a service's database refuse rows whose `column` starts with `prefix`
    (a CHECK constraint on PostgreSQL, an ABORT trigger on SQLite: a real, non-unique
    integrity rule, as a schema drift or a bad deploy would add), and the SQL that lifts it."""
    name = f"test_refuse_{table}_{column}"
    if database_url.startswith("postgresql"):
        return (
            [f"ALTER TABLE {table} ADD CONSTRAINT ck_{name} CHECK ({column} NOT LIKE '{prefix}%')"],
            [f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS ck_{name}"],
        )
    return (
        [
            f"CREATE TRIGGER tr_{name} BEFORE INSERT ON {table} WHEN NEW.{column} LIKE '{prefix}%' "
            f"BEGIN SELECT RAISE(ABORT, 'refused by {name}'); END"
        ],
        [f"DROP TRIGGER IF EXISTS tr_{name}"],
    )
