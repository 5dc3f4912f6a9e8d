"""Parameters and operation counts read off the real module graph, in every convention the papers use.

Conventions (each number in the output carries one of these names and its unit):

- ``macs``: multiply-accumulates from ``torch.utils.flop_counter.FlopCounterMode`` run over a
  ``torch.export``-ed, decomposed graph, so LSTMs and attention are seen too (FLOPs/2 of its formulas).
- ``flops``: 2·MACs.
- ``paper-004``: seed 004 eq. 13 (conv = 2·Hout·Wout·(Cin·Kh·Kw+1)·Cout, the +1 always counted) and
  eq. 14 (dense = (2·Lin−1)·Lout per row); BN, activations and everything else ignored.
- ``thop``: the MACs of thop 0.1.1 (run itself, as the authors of 003 and 001 did), with its own
  parameter count (only hooked leaf modules that ran; raw parameters and matmuls count 0).
- ``analytic``: a closed-form count for non-neural parts (SVD, zero-forcing), where a model gives one.

fvcore's ``FlopCountAnalysis`` (1 "flop" = 1 MAC) runs as an independent cross-check. Every counter lists
the compute ops it did not count.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections import Counter
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from csibench.errors import CsibenchError
from csibench.models.base import CsiModel
from csibench.quiet import captured_output

CONVENTIONS = {
    "macs": ("MAC", "multiply-accumulates, torch FlopCounterMode over torch.export (decomposed)"),
    "flops": ("FLOP", "2·MACs"),
    "paper-004": ("FLOP", "seed 004 eq. 13 (conv, +1 always) / eq. 14 (dense); BN and activations ignored"),
    "thop": ("MAC", "thop 0.1.1 rules: Linear/conv ignore bias, norms 2·numel (×2 affine), nn.Softmax rows·(3n−1), LSTM per cell"),
}
THOP_RULE = CONVENTIONS["thop"][1]

# Ops that only move or reshape data: never "skipped" by a counter, they have no arithmetic.
_DATA_MOVEMENT = {
    "view", "_unsafe_view", "reshape", "permute", "t", "transpose", "expand", "clone", "cat", "stack", "split",
    "split_with_sizes", "slice", "select", "unsqueeze", "squeeze", "_to_copy", "alias", "detach", "getitem",
    "empty", "zeros", "full", "ones", "arange", "unbind", "contiguous", "copy", "lift_fresh_copy", "index",
    "zeros_like", "ones_like", "empty_like", "full_like", "scalar_tensor",
}
_DENSE_OPS = {"addmm", "mm"}
# Readable names for ops whose aten names are internal spellings.
_ALIASES = {"_native_batch_norm_legit_no_training": "batch_norm", "_native_batch_norm_legit": "batch_norm", "native_batch_norm": "batch_norm"}


def _op_name(node: torch.fx.Node) -> str:
    target = node.target
    name = getattr(target, "__name__", str(target)).split(".")[0]
    return _ALIASES.get(name, name)


def _layer_name(node: torch.fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else node.name


def _shape(node: Any) -> tuple[int, ...]:
    return tuple(node.meta["val"].shape)


def _reads_parameter(node: torch.fx.Node, params: set[str]) -> bool:
    """Whether ``node`` is a parameter seen through views/transposes (a dense layer's weight)."""
    while node.op == "call_function" and _op_name(node) in _DATA_MOVEMENT:
        source = node.args[0]
        if not isinstance(source, torch.fx.Node):  # a view of a constant, not of a placeholder
            return False
        node = source
    return node.op == "placeholder" and node.name in params


def _paper004(graph: torch.fx.Graph, params: set[str]) -> tuple[int, list[dict], Counter[str]]:
    total, layers, skipped = 0, [], Counter[str]()
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        op = _op_name(node)
        if op == "convolution":
            cout, cin_g, kh, kw = _shape(node.args[1])
            n, _, hout, wout = _shape(node)
            value = n * 2 * hout * wout * (cin_g * kh * kw + 1) * cout
            layers.append({"layer": _layer_name(node), "op": "conv", "kernel": [kh, kw], "cin": cin_g, "cout": cout, "flops": value})
        elif op in _DENSE_OPS and _reads_parameter(node.args[-1], params):
            rows, lin = _shape(node.args[-2])
            lout = _shape(node.args[-1])[1]
            value = rows * (2 * lin - 1) * lout
            layers.append({"layer": _layer_name(node), "op": "dense", "in": lin, "out": lout, "flops": value})
        else:
            if op not in _DATA_MOVEMENT:
                skipped[op] += 1
            continue
        total += value
    return total, layers, skipped


def _torch_counter(module: torch.nn.Module, inputs: tuple, graph: torch.fx.Graph) -> tuple[int, dict, Counter[str]]:
    with FlopCounterMode(display=False) as counter:
        module(*inputs)
    by_op = {str(k).removeprefix("aten."): int(v) // 2 for k, v in counter.get_flop_counts().get("Global", {}).items()}
    counted = set(by_op)
    skipped = Counter(
        op for node in graph.nodes if node.op == "call_function"
        for op in [_op_name(node)] if op not in counted and op not in _DATA_MOVEMENT
    )
    return counter.get_total_flops() // 2, by_op, skipped


def _fvcore(module: torch.nn.Module, inputs: tuple) -> dict[str, Any]:
    try:
        from fvcore.nn import FlopCountAnalysis
    except ImportError:
        return {"available": False}
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(module, inputs).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_op = dict(analysis.by_operator())
        skipped = dict(analysis.unsupported_ops())
    return {
        "available": True,
        "unit": "MAC (fvcore counts one multiply-add as one flop)",
        "total": int(sum(by_op.values())),
        "by_op": {k: int(v) for k, v in by_op.items()},
        "skipped_ops": {k.removeprefix("aten::"): int(v) for k, v in skipped.items()},
    }


def _thop(module: torch.nn.Module, inputs: tuple) -> dict[str, Any]:
    """Run thop 0.1.1 itself on a copy (it adds and removes buffers on the modules it hooks)."""
    import copy

    from thop import profile as thop_profile
    from thop.profile import register_hooks

    clone = copy.deepcopy(module)
    seen = {type(m).__name__ for m in clone.modules() if not list(m.children())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        macs, params = thop_profile(clone, inputs, verbose=False)
    unhooked = sorted(seen - {t.__name__ for t in register_hooks})
    return {"value": int(macs), "unit": "MAC", "params": int(params), "skipped_modules": unhooked}


def count_params(module: torch.nn.Module) -> dict[str, int]:
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers() if b.is_floating_point())
    return {"params": params, "param_bytes_fp32": 4 * params, "buffers": buffers}


GRAPH_CONVENTIONS = ("macs", "flops", "paper-004")


def _graph_counts(module: torch.nn.Module, inputs: tuple) -> dict[str, dict[str, Any]]:
    """macs, flops and paper-004, all read off one torch.export-ed, decomposed graph."""
    try:  # quiet: on failure torch prints the partial graph and a logging line to fds 1 and 2
        with torch.no_grad(), warnings.catch_warnings(), captured_output(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            exported = torch.export.export(module, inputs).run_decompositions()
    except Exception as exc:  # a user's module (file.py:Name) may not be traceable; the zoo's all are
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise CsibenchError(f"torch.export cannot trace {type(module).__name__}, so its MACs cannot be counted: "
                            f"{type(exc).__name__}: {lines[0][:300] if lines else ''}") from None
    sig = exported.graph_signature
    params = set(sig.inputs_to_parameters) | set(sig.inputs_to_buffers)
    graph = exported.graph
    with torch.no_grad():
        macs, macs_by_op, macs_skipped = _torch_counter(exported.module(), inputs, graph)
    p004, p004_layers, p004_skipped = _paper004(graph, params)
    return {
        "macs": {"value": macs, "unit": "MAC", "by_op": macs_by_op, "skipped_ops": dict(macs_skipped)},
        "flops": {"value": 2 * macs, "unit": "FLOP", "by_op": {k: 2 * v for k, v in macs_by_op.items()}, "skipped_ops": dict(macs_skipped)},
        "paper-004": {"value": p004, "unit": "FLOP", "layers": p004_layers, "skipped_ops": dict(p004_skipped)},
    }


def profile(model: CsiModel, side: str, *, cross_check: bool = True, conventions: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Count one side (``ue``, ``bs`` or ``all``) of ``model`` at batch 1 in every convention (or only ``conventions``:
    the graph-based ones share one torch.export, which is the slow part for unrolled decoders)."""
    wanted = set(conventions or (*CONVENTIONS, "analytic"))
    module = model.side_module(side).eval()
    inputs = model.example_inputs(side, batch=1)
    counts: dict[str, dict[str, Any]] = {}
    if wanted & set(GRAPH_CONVENTIONS) or cross_check:
        counts.update(_graph_counts(module, inputs))
    if "thop" in wanted:
        thop_counts = _thop(module, inputs)
        thop_counts["skipped_ops"] = {m: 1 for m in thop_counts.pop("skipped_modules")}  # thop skips by module type
        counts["thop"] = thop_counts
    for name, (_, rule) in CONVENTIONS.items():
        if name in counts:
            counts[name]["rule"] = rule
    analytic = model.analytic_counts(side) if "analytic" in wanted else None
    if analytic is not None:
        counts["analytic"] = {**analytic, "skipped_ops": {}}
    result: dict[str, Any] = {
        "model": model.name,
        "side": side,
        "batch": 1,
        "inputs": [t.to_dict() for t in model.side_spec(side).inputs],
        **count_params(module),
        "counts": counts,
    }
    if cross_check:
        fv = _fvcore(module, inputs)
        if fv["available"]:
            fv_dense = sum(v for k, v in fv["by_op"].items() if k in ("conv", "linear", "matmul", "addmm", "bmm", "einsum"))
            fv["conv_dense_total"] = fv_dense
            fv["agrees_with_macs"] = fv_dense == counts["macs"]["value"]
        result["cross_checks"] = {"fvcore": fv}
    return result
