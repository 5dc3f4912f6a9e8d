"""LaTeX: one ``<id>.tex`` per table (booktabs, plain numbers, IEEE-style caption above) to paste into a paper,
and ``report.tex`` that inputs them, includes the figures (PNG) and compiles on its own with pdflatex.

Only packages of texlive-latex-base/-recommended/-extra are used (booktabs, longtable, adjustbox, graphicx,
placeins, geometry); no siunitx (texlive-science) and no fonts beyond Computer Modern, so a bare TeX Live install
compiles it. Every piece of text goes through :func:`escape`, which also turns the Unicode the tables use (–, †, ±,
Greek letters) into LaTeX, since pdflatex stops at a Unicode character it has no definition for.
"""

from __future__ import annotations

import struct
import unicodedata

from csibench.reports.figure import Figure
from csibench.reports.preamble import KIND_MARKS, blocks, figure_notes, inline, legend
from csibench.reports.table import Table

# Above this many rows a table cannot fit a page as a float: it becomes a longtable (breaks across pages).
LONG_ROWS = 40
MAX_FIGURE_IN = 200  # a figure's printed size beyond which TeX cannot scale it (its dimensions overflow)
LONG_NOTES = 6  # notes beyond this many would push a float off its page: set the table as a longtable too
# Header lines and label cells wrap at about these many characters (a label column becomes a paragraph column).
HEADER_WIDTH, LABEL_WIDTH = 12, 24
# Packages report.tex loads; a table file pasted into a paper needs array, booktabs and adjustbox (longtable if long).
PACKAGES = ("geometry", "array", "booktabs", "longtable", "adjustbox", "graphicx", "placeins")

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
            "|": r"\textbar{}", "[": "{[}", "]": "{]}",  # braced: never read as the optional argument of a preceding line break
            '"': r"\texttt{\char`\"}"}
_UNICODE = {"–": "--{}", "—": "---{}", "†": r"\dag{}", "‡": r"\ddag{}", "±": r"$\pm$", "×": r"$\times$", "≥": r"$\geq$",
            "≤": r"$\leq$", "≈": r"$\approx$", "≠": r"$\neq$", "→": r"$\rightarrow$", "←": r"$\leftarrow$",
            "·": r"$\cdot$", "°": r"$^\circ$", "²": r"$^2$", "³": r"$^3$", "…": r"\ldots{}", "‘": "`", "’": "'",
            "“": "``", "”": "''", "√": r"$\surd$", "∞": r"$\infty$", "−": "$-$", "µ": r"$\mu$", "\u00a0": "~",
            "\u2009": r"\,", "\u202f": r"\,", "✓": "yes", "✗": "no", "⚠": r"\textbf{(!)}", "§": r"\S{}", "¶": r"\P{}"}
# Greek letters LaTeX names (omicron and most capitals look like Latin letters and have no command).
_GREEK_CAPITALS = {"GAMMA", "DELTA", "THETA", "LAMBDA", "XI", "PI", "SIGMA", "UPSILON", "PHI", "PSI", "OMEGA"}


def _char(ch: str) -> str:
    if ch in _SPECIAL:
        return _SPECIAL[ch]
    if unicodedata.category(ch) == "Cc":  # a newline, tab or other control character: a blank line would end a table row
        return " "
    if ch.isascii():
        return ch
    if ch in _UNICODE:
        return _UNICODE[ch]
    name = unicodedata.name(ch, "")
    for prefix, capital in (("GREEK SMALL LETTER ", False), ("GREEK CAPITAL LETTER ", True)):
        letter = name.removeprefix(prefix).replace("LAMDA", "LAMBDA")
        if letter != name and " " not in letter and letter != "OMICRON" and (not capital or letter in _GREEK_CAPITALS):
            return f"$\\{letter.capitalize() if capital else letter.lower()}$"
    plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()  # é → e
    return escape(plain) if plain else f"\\texttt{{U+{ord(ch):04X}}}"


def escape(text: str) -> str:
    """``text`` as LaTeX that prints it as typed in running text: specials escaped, Unicode translated, and the
    ligatures ``--``, ````` and ``''`` broken so a model named "a--b" keeps both hyphens."""
    text = str(text)
    out = []
    for i, ch in enumerate(text):
        out.append(_char(ch))
        if ch in "-`'" and text[i + 1:i + 2] == ch:
            out.append("{}")
    return "".join(out)


def _rich(text: str) -> str:
    """One line of the preamble's Markdown: escaped, with its bold and code spans."""
    wrap = {"": "{}", "strong": r"\textbf{{{}}}", "code": r"\texttt{{{}}}"}
    return "".join(wrap[style].format(escape(part)) for style, part in inline(text))


def label(kind: str, text: str) -> str:
    return f"{kind}:{''.join(c if c.isalnum() else '-' for c in text.lower())}"


def _lines(text: str, width: int) -> list[str]:
    """Words of ``text`` in lines of about ``width`` characters (a long word keeps its own line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def _header(table: Table, i: int) -> str:
    """A header cell, broken into short lines (a nested tabular: no package) so long headers do not widen the table."""
    col = table.columns[i]
    mark = KIND_MARKS.get(col.kind)
    lines = [escape(line) for line in _lines(col.header, HEADER_WIDTH)]
    if mark:
        lines[-1] += f"\\textsuperscript{{{mark}}}"
    if len(lines) == 1:
        return lines[0]
    align = "l" if col.kind == "label" else "r"
    return f"\\begin{{tabular}}[b]{{@{{}}{align}@{{}}}}" + r" \\ ".join(lines) + "\\end{tabular}"


def _spec(table: Table) -> str:
    """Numbers right-aligned; a label column with long values wraps in a fixed-width paragraph column."""
    spec = []
    for i, col in enumerate(table.columns):
        longest = max((len(str(r.cells[i] or "")) for r in table.rows), default=0)
        if col.kind != "label":
            spec.append("r")
        elif longest > LABEL_WIDTH:
            spec.append(f">{{\\raggedright\\arraybackslash}}p{{{LABEL_WIDTH * 0.5:.0f}em}}")
        else:
            spec.append("l")
    return "".join(spec)


def _notes(table: Table) -> list[str]:
    kinds = {c.kind for c in table.columns}
    marks = "; ".join(f"{m}: {w}" for m, w in legend(kinds, "".join(r.mark for r in table.rows)))
    return ([escape(f"Marks — {marks}.")] if marks and table.rows else []) + [_rich(n) for n in table.notes]


def to_latex(table: Table) -> str:
    """The table as a self-contained LaTeX fragment (a ``table`` float, or a ``longtable`` when long)."""
    head = [f"% csibench table {table.id}: needs \\usepackage{{array,booktabs,adjustbox,longtable}}; generated, do not edit"]
    caption = f"\\caption{{{escape(table.title)}}}\\label{{{label('tab', table.id)}}}"
    notes = _notes(table)
    note_text = "\\par\n".join(notes)  # one paragraph per note: thousands of warnings stay within TeX's limits
    if not table.rows:
        return "\n".join(head + ["\\begin{table}[htbp]", "\\centering", caption, "\\emph{No data in this run.}",
                                 *([f"\\par\\smallskip{{\\footnotesize {note_text}\\par}}"] if notes else []), "\\end{table}", ""])
    spec = _spec(table)
    header = " & ".join(_header(table, i) for i in range(len(table.columns))) + r" \\"
    body = []
    for row in table.rows:
        cells = [escape(col.markdown(v)) for col, v in zip(table.columns, row.cells, strict=True)]
        if row.mark and cells:
            cells[0] += f"~{escape(row.mark)}"
        body.append(" & ".join(cells) + r" \\")
    if len(table.rows) > LONG_ROWS:  # a float cannot break across pages
        lines = head + ["\\begingroup\\footnotesize\\setlength{\\tabcolsep}{3pt}", f"\\begin{{longtable}}{{{spec}}}",
                        caption + r" \\", "\\toprule", header, "\\midrule", "\\endfirsthead",
                        "\\toprule", header, "\\midrule", "\\endhead", "\\bottomrule", "\\endlastfoot", *body,
                        "\\end{longtable}", *([f"{{\\footnotesize {note_text}\\par}}"] if notes else []), "\\endgroup", ""]
        return "\n".join(lines)
    # wide or tall: scaled to fit a page
    lines = head + ["\\begin{table}[htbp]", "\\centering", caption, "\\begin{adjustbox}{max totalsize={\\linewidth}{0.8\\textheight}}",
                    f"\\begin{{tabular}}{{{spec}}}", "\\toprule", header, "\\midrule", *body, "\\bottomrule",
                    "\\end{tabular}", "\\end{adjustbox}",
                    *([f"\\par\\smallskip\\parbox{{\\linewidth}}{{\\footnotesize {note_text}}}"] if notes and len(notes) <= LONG_NOTES else []),
                    "\\end{table}",
                    # Many notes would make the float taller than a page: they follow it as text, which can break.
                    *([f"{{\\footnotesize {note_text}\\par}}"] if len(notes) > LONG_NOTES else []), ""]
    return "\n".join(lines)


def png_inches(png: bytes) -> tuple[float, float] | None:
    """A PNG's printed size in inches (IHDR pixels over the pHYs density; 72 dpi without one); None if not a PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", png[16:24])
    dpi_x = dpi_y = 72.0
    at = png.find(b"pHYs", 33)
    if at > 0:
        px, py, unit = struct.unpack(">IIB", png[at + 4:at + 13])
        if unit == 1 and px and py:  # pixels per metre
            dpi_x, dpi_y = px * 0.0254, py * 0.0254
    return width / dpi_x, height / dpi_y


def _figure(fig: Figure) -> list[str]:
    caption = escape(fig.title) + ". " + escape(fig.caption) + "".join(" " + escape(n) for n in figure_notes(fig.notes))
    size = png_inches(fig.png)
    if size is None or max(size) > MAX_FIGURE_IN:  # TeX's dimensions end at about 226 in: graphicx would stop there
        what = "not a PNG" if size is None else f"{size[0]:.0f} in × {size[1]:.0f} in, beyond what TeX can scale"
        return ["\\begin{figure}[htbp]", "\\centering", f"\\fbox{{\\parbox{{0.8\\linewidth}}{{\\centering Figure too large to "
                f"include ({escape(what)}): see \\texttt{{{escape(f'figures/{fig.id}.png')}}} and \\texttt{{.svg}}.}}}}",
                f"\\caption{{{caption}}}\\label{{{label('fig', fig.id)}}}", "\\end{figure}", "\\FloatBarrier"]
    return ["\\begin{figure}[htbp]", "\\centering", f"\\includegraphics[width=\\linewidth,height=0.72\\textheight,keepaspectratio]{{figures/{fig.id}.png}}",
            f"\\caption{{{caption}}}\\label{{{label('fig', fig.id)}}}", "\\end{figure}", "\\FloatBarrier"]


def _opening(preamble_md: str) -> list[str]:
    lines = []
    for kind, level, text in blocks(preamble_md):
        if kind in ("open", "close"):
            lines.append(f"\\{'begin' if kind == 'open' else 'end'}{{itemize}}")
        elif kind == "h":
            lines.append(f"\\{'section' if level <= 1 else 'subsection'}*{{{_rich(text)}}}")
        elif kind == "li":
            lines.append(f"\\item {_rich(text)}")
        else:
            lines.append(_rich(text) + "\n")
    return lines


def report_tex(tables: list[Table], table_files: dict[str, str], figures: list[Figure], preamble_md: str) -> str:
    """The whole report: the preamble (study, devices, failures), each table by ``\\input`` of its own file
    (``table_files``: table id → file name), then the figures."""
    lines = ["% csibench report: compile with `pdflatex report.tex` in this directory; generated, do not edit",
             "\\documentclass[10pt]{article}", "\\usepackage[utf8]{inputenc}",
             "\\usepackage[a4paper,landscape,margin=1.5cm]{geometry}",  # landscape: the wide tables stay readable
             f"\\usepackage{{{','.join(PACKAGES[1:])}}}",
             "\\setlength{\\parindent}{0pt}\\setlength{\\parskip}{4pt}", "\\begin{document}", *_opening(preamble_md)]
    if tables:
        lines.append("\\section*{Tables}")
    for table in tables:
        stem = table_files[table.id].removesuffix(".tex")
        lines += [f"\\input{{{stem}}}", "\\FloatBarrier"]
    if figures:
        lines.append("\\section*{Figures}")
    for fig in figures:
        lines += _figure(fig)
    lines += ["\\end{document}", ""]
    return "\n".join(lines)
