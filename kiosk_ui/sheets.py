"""Printable and exportable sheets (签到表, 台账, 劳务费发放表) as venues file them: the venue's
name, the sheet's title, the session's details, a table, and the lines for signatures. One
`Sheet` goes out as an A4 PDF (printed by headless chromium, as the evaluation report is), as
an .xlsx workbook (openpyxl) for the venue's own spreadsheets, or as the HTML it is printed
from (a print preview)."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from flask import Response, abort, render_template
from flask_babel import gettext as _

# Printing starts a chromium: at most two at once, so a burst of clicks cannot stop the venue.
_PRINTERS = threading.BoundedSemaphore(2)
FORMATS = ("pdf", "xlsx", "html")  # html: the print preview, the very page the PDF is printed from


@dataclass
class Sheet:
    title: str
    venue: str
    details: list[tuple[str, str]]  # (label, value): section, session, room, day
    columns: list[str]
    rows: list[list[str]]
    signatures: list[str] = field(default_factory=list)  # 经办人, 监督人 …: lines to sign on paper
    note: str = ""
    landscape: bool = False


def as_pdf(sheet: Sheet) -> bytes:
    from appliance.evaluation.report import render_pdf

    css = (Path(__file__).parent / "static" / "print.css").read_text(encoding="utf-8")
    html = render_template("print_sheet.html", sheet=sheet, inline_css=css)
    if not _PRINTERS.acquire(timeout=30):
        abort(503)
    try:
        return render_pdf(html)
    finally:
        _PRINTERS.release()


def as_xlsx(sheet: Sheet) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.utils import get_column_letter

    book = Workbook()
    ws = book.active
    ws.title = sheet.title[:31]
    width = max(len(sheet.columns), 2)
    ws.append([sheet.venue])
    ws.append([sheet.title])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=width)
    ws["A1"].font, ws["A2"].font = Font(size=12), Font(size=16, bold=True)
    ws["A1"].alignment = ws["A2"].alignment = Alignment(horizontal="center")
    for label, value in sheet.details:
        ws.append([label, value])
    ws.append([])
    header = ws.max_row + 1
    ws.append(sheet.columns)
    thin = Side(style="thin")
    for row in sheet.rows:
        ws.append(["" if v is None else str(v) for v in row])
    for r in ws.iter_rows(min_row=header, max_row=ws.max_row, max_col=len(sheet.columns)):
        for cell in r:
            cell.border = Border(left=thin, right=thin, top=thin, bottom=thin)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    for cell in ws[header]:
        cell.font = Font(bold=True)
    if sheet.note:
        ws.append([])
        ws.append([sheet.note])
    if sheet.signatures:
        ws.append([])
        ws.append([f"{s}：" for s in sheet.signatures])
    for r in ws.iter_rows():  # text stays text: "=…", "+…", "-…", "@…" would be formulas in a spreadsheet
        for cell in r:
            if isinstance(cell.value, str) and cell.value[:1] in ("=", "+", "-", "@"):
                cell.data_type = "s"
    for i, name in enumerate(sheet.columns, start=1):
        longest = max([len(str(name))] + [len(str(row[i - 1])) for row in sheet.rows if len(row) >= i])
        ws.column_dimensions[get_column_letter(i)].width = min(60, max(10, 2 * longest + 2))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def send(sheet: Sheet, fmt: str, filename: str) -> Response:
    if fmt not in FORMATS:
        abort(404)
    if fmt == "html":
        return Response(render_template("print_sheet.html", sheet=sheet), mimetype="text/html")
    data = as_pdf(sheet) if fmt == "pdf" else as_xlsx(sheet)
    mime = "application/pdf" if fmt == "pdf" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    name = f"{filename}.{fmt}"
    response = Response(data, mimetype=mime)
    response.headers["Content-Disposition"] = (f"{'inline' if fmt == 'pdf' else 'attachment'}; "
                                               f"filename=\"sheet.{fmt}\"; filename*=UTF-8''{quote(name)}")
    return response


def signature_lines() -> list[str]:
    return [_("Prepared by (staff)"), _("Checked by (supervisor)"), _("Date")]
