"""HTML: ``index.html``, one self-contained page (no network: the style is inline, figures are base64 data URIs, no
script) with the preamble (study, its definition, devices with fingerprints, runtimes, csibench version, date),
every table and every figure.

Every piece of text is escaped with :func:`html.escape` (a model named ``<script>`` prints as typed). A number's
kind shows as a mark after its column header and as a cell style (measured upright, counted in grey, published in
italics, derived in blue); a row's DB ids are its tooltip (``title``), and ``data-ids`` carries them for tools.
"""

from __future__ import annotations

import base64
import html

from csibench.reports.figure import Figure
from csibench.reports.preamble import KIND_MARKS, KIND_WORDS, ROW_MARKS, blocks, figure_notes, inline, legend
from csibench.reports.table import Table

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:72rem;margin:1.5rem auto;padding:0 1rem;
color:#1a1a1a;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.3rem}h2{font-size:1.25rem;margin-top:1.6rem;border-bottom:1px solid #ccc}
h3{font-size:1.05rem;margin:1.4rem 0 .4rem}
table{border-collapse:collapse;margin:.3rem 0;font-size:.88rem;font-variant-numeric:tabular-nums}
thead th{border-top:2px solid #222;border-bottom:1px solid #222;padding:.25rem .6rem;text-align:left;vertical-align:bottom}
tbody td{padding:.15rem .6rem;border-bottom:1px solid #eee}tbody tr:last-child td{border-bottom:2px solid #222}
td.num,th.num{text-align:right}td.counted{color:#555}td.published{font-style:italic;color:#7a4100}
td.computed{color:#0b4f8a}td.missing{color:#999}sup.kind{color:#555;margin-left:.1rem}
.mark{color:#b00020;margin-left:.2rem}.notes{font-size:.82rem;color:#444;margin:.2rem 0 .8rem}.notes p{margin:.1rem 0}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.85rem;color:#333}
code{background:#f4f4f4;padding:0 .2rem}.scroll{overflow-x:auto}
nav ol{columns:2;column-gap:3rem;padding-left:2.2rem;font-size:.88rem}nav li{break-inside:avoid}.legend{font-size:.85rem}
@media print{nav{display:none}section{break-inside:avoid}}
"""


def _rich(text: str) -> str:
    wrap = {"": "{}", "strong": "<strong>{}</strong>", "code": "<code>{}</code>"}
    return "".join(wrap[style].format(html.escape(part)) for style, part in inline(text))


def anchor(kind: str, ident: str) -> str:
    return f"{kind}-{''.join(c if c.isalnum() else '-' for c in ident.lower())}"


def _ids(ids) -> str:
    return "; ".join(f"{table} {', '.join(map(str, rows))}" for table, rows in ids.items())


def to_html(table: Table) -> str:
    """One table as a <section>: title, the table (or "no data"), the column-kind legend and the notes."""
    out = [f'<section id="{anchor("table", table.id)}">', f"<h3>{html.escape(table.title)}</h3>"]
    if not table.rows:
        out.append("<p><em>No data in this run.</em></p>")
    else:
        heads = []
        for col in table.columns:
            mark = KIND_MARKS.get(col.kind)
            sup = f'<sup class="kind" title="{html.escape(KIND_WORDS[col.kind])}">{mark}</sup>' if mark else ""
            note = f' title="{html.escape(col.note)}"' if col.note else ""
            heads.append(f'<th class="{"num" if col.kind != "label" else "label"}"{note}>{html.escape(col.header)}{sup}</th>')
        out += ['<div class="scroll"><table>', "<thead><tr>" + "".join(heads) + "</tr></thead>", "<tbody>"]
        for row in table.rows:
            cells = []
            for i, (col, value) in enumerate(zip(table.columns, row.cells, strict=True)):
                classes = [col.kind] + (["num"] if col.kind != "label" else []) + (["missing"] if value is None else [])
                text = html.escape(col.markdown(value))
                if i == 0 and row.mark:
                    words = "; ".join(ROW_MARKS.get(m, m) for m in row.mark)
                    text += f'<span class="mark" title="{html.escape(words)}">{html.escape(row.mark)}</span>'
                cells.append(f'<td class="{" ".join(classes)}">{text}</td>')
            ids = _ids(row.ids)
            attrs = f' title="DB rows: {html.escape(ids)}" data-ids="{html.escape(ids)}"' if ids else ""
            out.append(f"<tr{attrs}>" + "".join(cells) + "</tr>")
        out += ["</tbody>", "</table></div>"]
    kinds = {c.kind for c in table.columns}
    marks = legend(kinds, "".join(r.mark for r in table.rows)) if table.rows else []
    notes = ([f"Marks — {'; '.join(f'{html.escape(m)}: {html.escape(w)}' for m, w in marks)}."] if marks else []) \
        + [_rich(n) for n in table.notes]
    if notes:
        out.append('<div class="notes">' + "".join(f"<p>{n}</p>" for n in notes) + "</div>")
    out.append("</section>")
    return "\n".join(out)


def _figure(fig: Figure) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    notes = "".join(f" {html.escape(n)}" for n in figure_notes(fig.notes))
    return (f'<figure id="{anchor("figure", fig.id)}"><img src="data:image/png;base64,{data}" alt="{html.escape(fig.title)}">'
            f"<figcaption><strong>{html.escape(fig.title)}.</strong> {html.escape(fig.caption)}{notes}</figcaption></figure>")


def _opening(preamble_md: str) -> tuple[str, list[str]]:
    """The page's title (the preamble's first heading) and the rest of the preamble as HTML."""
    title, out = "csibench report", []
    for kind, level, text in blocks(preamble_md):
        if kind in ("open", "close"):
            out.append("<ul>" if kind == "open" else "</ul>")
        elif kind == "h" and level <= 1:
            title = text
            out.append(f"<h1>{_rich(text)}</h1>")
        elif kind == "h":
            out.append(f"<h2>{_rich(text)}</h2>")
        elif kind == "li":
            out.append(f"<li>{_rich(text)}</li>")
        else:
            out.append(f"<p>{_rich(text)}</p>")
    return title, out


def page(tables: list[Table], figures: list[Figure], preamble_md: str) -> str:
    title, opening = _opening(preamble_md)
    toc = [f'<li><a href="#{anchor("table", t.id)}">{html.escape(t.title)}</a></li>' for t in tables]
    toc += [f'<li><a href="#{anchor("figure", f.id)}">{html.escape(f.title)}</a></li>' for f in figures]
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', '<link rel="icon" href="data:,">',  # no favicon request
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(''.join(part for _, part in inline(title)))}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
             "<header>", *opening, "</header>", "<nav><h2>Contents</h2><ol>", *toc, "</ol></nav>",
             "<main>", "<h2>Tables</h2>" if tables else "", *(to_html(t) for t in tables),
             "<h2>Figures</h2>" if figures else "", *(_figure(f) for f in figures), "</main>", "</body>", "</html>", ""]
    return "\n".join(p for p in parts if p != "")
