"""The report's opening: which study run, its definition, which devices measured (with their fingerprints and
runtimes), and what could not be exported or measured."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import csibench
from csibench.files import content_key
from csibench.reports.view import StudyView

# Host fields that change from run to run on the same machine: left out of its fingerprint.
_VOLATILE = ("temperature_c", "throttled", "cpu_freq_current_mhz", "device", "runtime_versions")


def devices(view: StudyView) -> dict[str, dict[str, Any]]:
    """Per device: its host record (newest measurement), a short fingerprint of the stable part, the runtimes used."""
    found: dict[str, dict[str, Any]] = {}
    for m in view.data.measurements:
        d = found.setdefault(m.device or "?", {"runtimes": {}})
        d["host"] = dict(m.host)
        d["state"] = {**{k: m.host.get(k) for k in _VOLATILE if k in m.host}, **m.host_state}  # older rows kept it in host
        if m.runtime:
            d["runtimes"][m.runtime] = {"impl": m.runtime_impl or m.runtime, "version": m.runtime_version}
    for d in found.values():
        d["fingerprint"] = content_key({k: v for k, v in d["host"].items() if k not in _VOLATILE})[:12]
    return found


# ---------------------------------------------------------------- user text inside the Markdown it writes

_MD_SPECIAL = re.compile(r"([\\`*<>|])")
_MD_LINK = re.compile(r"\]([(\[])")  # "[a](url)", "![a](src)", "[a][ref]": a bracket alone ("[ms]") stays as typed
# "# x", "> x", "- x", "1. x", "[a]: url" open a block (or define a link) at a line's start
_MD_BLOCK_START = re.compile(r"^(\s*\d*)([#>+=.)\[-])")


def md_text(value: Any, *, line_start: bool = True) -> str:
    """A user's string (a label, a description, a device name, a path, a reason) as Markdown that prints it as typed
    on one line: no HTML tag, link, image, code span, emphasis or table cell border of its own, and no block (a
    heading, a quote, a list) where it starts a line. :func:`inline` reads the escapes back for HTML and LaTeX."""
    flat = " ".join(str(value).splitlines())
    escaped = _MD_LINK.sub(r"\\]\1", _MD_SPECIAL.sub(r"\\\1", flat))
    return _MD_BLOCK_START.sub(r"\1\\\2", escaped, count=1) if line_start else escaped  # a table cell starts no block


def md_inner(value: Any) -> str:
    """A user's string inside a line of csibench's own text (after "version ", inside **bold**): :func:`md_text`
    without the block-start escapes, which only a line's first characters need ("004-III" stays as typed)."""
    return md_text(value, line_start=False)


def md_code(value: Any) -> str:
    """A user's string as a code span where it holds no backtick (nothing in a span is markup), else :func:`md_text`."""
    text = " ".join(str(value).splitlines())
    return f"`{text}`" if text and "`" not in text else md_inner(text)


def _study_heading(view: StudyView, source: str) -> list[str]:
    s = view.study
    if s.id is None:  # rows from before studies
        what = f"sweep {md_code(s.sweep)}" if s.sweep else f"every measurement in {md_inner(source)}"
        return [f"# csibench report: {what}", "",
                "Recorded before studies existed: no study definition; models are named by their model names."]
    lines = [f"# csibench report: study {md_inner(s.name)}", ""]
    for paragraph in (s.description or "").splitlines():  # each line its own paragraph, never a heading or a list
        lines += [md_text(paragraph), ""] if paragraph.strip() else []
    lines.append(f"Study run {s.id} (database row), started {s.created_at}, sweep {md_code(s.sweep)}, recorded by "
                 f"csibench {md_inner(s.csibench_version)}.")
    return lines


def _definition(view: StudyView) -> list[str]:
    d = view.study.definition
    if not d:
        return []
    def listed(key: str) -> str:
        return md_inner(", ".join(map(str, d.get(key) or [])))

    measure = md_inner(", ".join(f"{k} {v}" for k, v in (d.get("measure") or {}).items() if v is not None))
    lines = ["", "## Definition", "",
             f"- baseline: {md_inner(d.get('baseline') or 'none')}; templates: {listed('tables') or 'none'}",
             f"- formats: {listed('formats')}; runtimes: {listed('runtimes')}; threads: {listed('threads')}; devices: "
             f"{listed('devices')}",
             f"- measurement: {measure or 'defaults'}; seed {md_inner(d.get('seed'))}", "- models:"]
    for m in view.study.models:
        if m.artifact:
            ref = f"validated against {md_inner(m.reference)}" if m.reference else "no reference: unvalidated"
            what = f"bare artifact {md_inner(m.artifact)}, {ref}"
        else:
            settings = [f"CR {', '.join(m.crs)}" if m.crs else None, f"sides {', '.join(m.sides)}" if m.sides else None,
                        ", ".join(f"{k}={v}" for k, v in m.set.items()) or None]
            what = f"model {md_inner(m.model)} ({md_inner('; '.join(s for s in settings if s) or 'defaults')})"
        lines.append(f"  - **{md_inner(m.label)}**: {what}; weights: {md_inner(m.weights_label or 'as the model builds them')}")
    return lines


def _devices(found: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["", "## Devices", ""]
    for name, d in found.items():
        host = d["host"]
        board = f"{host['board']}, " if host.get("board") else ""
        state = d.get("state", {})
        thermal = ", ".join(f"{k} {state[k]:.3g}" if isinstance(state[k], float) else f"{k} {state[k]}"
                            for k in ("temperature_c", "throttled", "cpu_freq_current_mhz", "load_avg_1min") if state.get(k) is not None)
        runtimes = ", ".join(f"{r['impl']} {r['version']}" for r in d["runtimes"].values())
        facts = (f"{board}{host.get('cpu_model')}, {host.get('logical_cores')} logical cores, governor "
                 f"{host.get('governor') or 'unreadable'}, {host.get('os')}, Python {host.get('python')}"
                 + (f"; {thermal}" if thermal else "") + f"; runtimes used: {runtimes or 'none'}")
        lines.append(f"- device **{md_inner(name)}** (fingerprint {d['fingerprint']}): {md_inner(facts)}")  # a device's facts are its own words
    if not found:
        lines.append("- nothing was measured in this run")
    return lines


def _failures(view: StudyView) -> list[str]:
    lines = []
    failed_exports = [a for a in view.data.artifacts if a.status == "export-failed"]
    if failed_exports:
        lines += ["", f"{len(failed_exports)} artifact(s) could not be exported:"]
        lines += ["- " + md_text(f"{a.label} {a.format}{f' {a.precision}' if a.precision and a.precision != 'fp32' else ''} "
                                 f"({f'CR {a.cr}, ' if a.cr else ''}{a.side}): {a.reason}") for a in failed_exports]
    stops = [f for f in view.data.failures if f.runtime is None]  # the run itself stopped (recorded by the runner)
    lines += [line for f in stops for line in ("", f"**This run did not finish:** {md_inner(f.reason)}")]
    failures = [f for f in view.data.failures if f.runtime is not None and f.id not in view.superseded]
    if failures:
        lines += ["", f"{len(failures)} measurement(s) could not be made:"]
        lines += ["- " + md_text(f"{f.device}: {f.model}{f' CR {f.cr}' if f.cr else ''} on {f.runtime}, {f.threads} "
                                 f"thread(s): {f.reason}") for f in failures[-10:]]
    return lines


def preamble(view: StudyView, source: str) -> tuple[str, dict[str, Any]]:
    """The Markdown opening, and the same facts for report.json (study definition, devices)."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    found = devices(view)
    lines = _study_heading(view, source)
    lines += [f"Report generated {now} by csibench {csibench.__version__} from {len(view.data.measurements)} "
              f"measurement(s) of this run only.",
              "Latencies are measured by csibench on the devices below; complexity is counted from each artifact's "
              "graph; published values are labelled as such; unvalidated artifacts are marked †."]
    lines += _definition(view) + _devices(found) + _failures(view)
    s = view.study
    meta = {"generated_at": now, "csibench_version": csibench.__version__, "source": source,
            "study": {"id": s.id, "name": s.name, "sweep": s.sweep, "created_at": s.created_at,
                      "csibench_version": s.csibench_version, "definition": dict(s.definition)},
            "devices": found,
            "failures": [{"id": f.id, "device": f.device, "model": f.model, "cr": f.cr, "runtime": f.runtime,
                          "reason": f.reason} for f in view.data.failures]}
    return "\n".join(lines) + "\n", meta


# ---------------------------------------------------------------- what the other renderers need of it

# A column's kind as a mark after its header in LaTeX and HTML (Markdown keeps plain headers: tests and readers key on
# them); "label" columns carry none.
KIND_MARKS = {"measured": "m", "counted": "c", "published": "p", "computed": "d"}
KIND_WORDS = {"measured": "measured by csibench on the device named", "counted": "counted from the artifact's graph",
              "published": "published in the paper (not measured here)", "computed": "derived from other cells"}
UNVALIDATED_WORDS = "unvalidated artifact (not checked against a PyTorch reference)"
UNSTABLE_WORDS = "unstable measurement (its reasons are in the notes)"
ROW_MARKS = {"†": UNVALIDATED_WORDS, "⚠": UNSTABLE_WORDS}


def legend(kinds: set[str], row_marks: str) -> list[tuple[str, str]]:
    """(mark, meaning) for the column kinds present, then each row mark (†, ⚠) that a row carries."""
    pairs = [(KIND_MARKS[k], KIND_WORDS[k]) for k in KIND_MARKS if k in kinds]
    return pairs + [(m, w) for m, w in ROW_MARKS.items() if m in row_marks]


def blocks(markdown: str) -> list[tuple[str, int, str]]:
    """The preamble's Markdown (the small subset it writes) as blocks for LaTeX and HTML: ("h", level, text),
    ("li", depth, text) and ("p", 0, text), with the list nesting resolved once for both renderers: ("open", depth, "")
    before the first item of a (nested) list and ("close", depth, "") after its last."""
    out: list[tuple[str, int, str]] = []
    depth = -1
    for line in markdown.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            level = len(stripped) - len(stripped.lstrip("#"))
            block = ("h", level, stripped[level:].strip())
        elif stripped.startswith("- "):
            block = ("li", (len(line) - len(line.lstrip(" "))) // 2, stripped[2:])
        else:
            block = ("p", 0, stripped)
        kind, level, _ = block
        while depth >= 0 and (kind != "li" or depth > level):
            out.append(("close", depth, ""))
            depth -= 1
        while kind == "li" and depth < level:
            depth += 1
            out.append(("open", depth, ""))
        out.append(block)
    out += [("close", d, "") for d in range(depth, -1, -1)]
    return out


_ESCAPED = r"\\[!-/:-@\[-`{-~]"  # a backslash before ASCII punctuation: that character, as typed (CommonMark)
_INLINE = re.compile(rf"(?P<code>`[^`]+`)|\*\*(?P<strong>(?:{_ESCAPED}|[^*\\]|\\)+?)\*\*|(?P<esc>{_ESCAPED})|(?P<text>[^`*\\]+|.)")


def _unescape(text: str) -> str:
    return re.sub(_ESCAPED, lambda m: m[0][1], text)


def inline(text: str) -> list[tuple[str, str]]:
    """``**bold**`` and ```code``` spans of one line, with :func:`md_text`'s escapes read back: (style, text) with
    style "", "strong" or "code"."""
    spans: list[tuple[str, str]] = []
    for m in _INLINE.finditer(text):
        style, part = ("code", m["code"][1:-1]) if m["code"] else ("strong", _unescape(m["strong"])) if m["strong"] \
            else ("", m["esc"][1] if m["esc"] else m["text"])
        if style == "" and spans and spans[-1][0] == "":
            spans[-1] = ("", spans[-1][1] + part)
        else:
            spans.append((style, part))
    return spans


def md_rich(text: str, *, line_start: bool = True) -> str:
    """A line of csibench's own Markdown (a table note, a caption, a table's title) that may quote user strings,
    re-emitted so that only its bold and code spans are markup: a label inside it cannot open a link, a tag or a
    table cell. ``line_start``: the text starts a line (False after "### ")."""
    wrap = {"": "{}", "strong": "**{}**", "code": "`{}`"}
    return "".join(wrap[style].format(part if style == "code" else md_text(part, line_start=line_start and i == 0))
                   for i, (style, part) in enumerate(inline(text)))


FIGURE_NOTES = 5  # a caption is no list: beyond this many notes, a count and where the rest are


def figure_notes(notes: tuple[str, ...] | list[str]) -> list[str]:
    """A figure's notes for its caption: the first few, then how many more report.json holds."""
    shown = list(notes[:FIGURE_NOTES])
    if len(notes) > FIGURE_NOTES:
        shown.append(f"… and {len(notes) - FIGURE_NOTES} more note(s), listed with the figure in report.json.")
    return shown
