"""Turn a converter's exception into one line that names the route and, where it can be found, the op."""

from __future__ import annotations

import re

from csibench.errors import ExportError

# Converters name the failing op in different spellings: aten._linalg_svd.default, aten::lstm, 'tfl.foo' op.
_OP_PATTERNS = (r"\baten[.:]{1,2}[A-Za-z_][\w]*", r"'([a-z_]+\.[\w.]+)' op\b")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CLASS_REPR = re.compile(r"<class '[^']+'>:\s*")


def failing_op(text: str) -> str | None:
    for pattern in _OP_PATTERNS:
        match = re.search(pattern, text)
        if match:
            return (match.group(1) if match.groups() else match.group(0)).replace("::", ".")
    return None


def conversion_error(route: str, exc: BaseException) -> ExportError:
    text = _ANSI.sub("", str(exc))
    op = failing_op(text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    summary = next((ln for ln in lines if "No ONNX function" in ln or "Lowering not found" in ln), lines[0] if lines else type(exc).__name__)
    summary = _CLASS_REPR.sub("", summary)
    summary = summary.split(". ")[0].rstrip(" .:")[:240]  # one complete sentence, never a cut-off "Next steps:"
    where = f"cannot convert op {op}" if op else "failed"
    advice = ("export the other formats (--format), or express that op differently in the model" if op
              else "export the other formats (--format), or report the model to the converter's maintainers")
    return ExportError(f"route {route} {where} ({summary}); {advice}")
