"""Knowledge distillation from a trained teacher autoencoder to a lightweight student (seed 004 §III–IV, Table XII).

==========================  ==============================================================================================
method                      what it does (stage directories under ``--out``; the final model is ``OUT/best.safetensors``)
==========================  ==============================================================================================
``ae-kd``                   eq. 10: the student autoencoder is trained from scratch on
                            ``α·MSE(y, ŷ_s) + (1−α)·H(σ(ŷ_t; T), σ(ŷ_s; T))`` (stage ``ae-kd``)
``encoder-kd``              eq. 11: the student encoder learns the frozen teacher encoder's codewords (MSE, stage
                            ``distill``; the student's decoder is a copy of the teacher's), then the student encoder
                            plus the copied decoder are fine-tuned end to end on MSE(y, ŷ) (stage ``finetune``)
``variant-encoder-kd``      Fig. 5: the BS vendor sends teacher CSI–codeword pairs, the UE vendor trains its encoder on
                            them with eq. 11 (``ue-encoder``) and sends back its own pairs, on which the BS fine-tunes
                            its copy of the teacher decoder (``bs-decoder``); see :mod:`csibench.train.vendors`
``sequential``              Table XII's BS-first sequential training: the BS trains its own autoencoder (``--teacher``
                            if given, else a vanilla ``bs_model``, by default the student's architecture, footnote 6;
                            stage ``bs-autoencoder``), sends pairs, the UE trains its encoder on them; no fine-tuning
==========================  ==============================================================================================

**What eq. 9's softmax runs over.** ``z`` in eq. 9 is "the outputs of the teacher network", and the network's output
is the reconstructed CSI *after* the final sigmoid (§III-B-1), so the softmax runs over the **2048 post-sigmoid
outputs of each sample** (the flattened 2×32×32, real and imaginary together), separately per sample; ``H`` is the
cross-entropy ``−Σ_i p_t,i log p_s,i`` summed over those 2048 elements and averaged over the batch. This also needs no
access to a model's pre-activation internals, so any registered autoencoder can be teacher or student. Because the
outputs lie in [0, 1], ``z/T`` spans at most ``1/T``, so the soft targets are close to uniform and the distillation
gradient is about ``1/T²`` of the MSE term's per element; eq. 10 has no ``T²`` factor (Hinton's correction), so none
is applied. α = 0 therefore leaves the output offset undetermined (softmax is shift-invariant), as Table V's +28.6 dB shows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from csibench.data import CsiDataset
from csibench.errors import CsibenchError, UsageError, suggest
from csibench.models import create_model
from csibench.models.base import CsiModel
from csibench.models.checkpoint import load_checkpoint, read_sidecar
from csibench.models.registry import cfg_to_dict, get_entry
from csibench.train.evaluate import check_autoencoder, check_fits, codeword_length
from csibench.train.trainer import ProgressFn, Stage, StageResult, TrainConfig, run_stage, torch_threads
from csibench.train.vanilla import (
    TrainResult,
    as_tensor,
    data_record,
    finalize,
    match_output_scale,
    reconstruction_stage,
    resolve_data,
    teacher_record,
)
from csibench.train.vendors import BsVendor, CodewordPairs, UeVendor

METHODS = ("ae-kd", "encoder-kd", "variant-encoder-kd", "sequential")
BS_SEED_OFFSET = 1000  # sequential training without --teacher: the BS vendor's own model is seeded apart from the UE's


@dataclass(frozen=True)
class KDConfig:
    """KD hyper-parameters: eq. 10's T and α (004 defaults 5 and 0.3) and the fine-tuning of the encoder-KD methods.

    ``finetune_epochs`` None means ``ceil(epochs / 4)`` (004 only says fine-tuning takes "a small number of epochs";
    Table VIII: 0.32 h of fine-tuning against 0.91 h of distillation). ``finetune_lr`` (constant, no warm-up) is 1e-4,
    004's lower rate, because the decoder being fine-tuned is already trained.
    """

    temperature: float = 5.0
    alpha: float = 0.3
    finetune_epochs: int | None = None
    finetune_lr: float = 1e-4

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0 and math.isfinite(self.temperature)):
            raise UsageError(f"--temperature must be a positive number, got {self.temperature!r}")
        if not (isinstance(self.alpha, (int, float)) and 0 <= self.alpha <= 1):
            raise UsageError(f"--alpha must lie in [0, 1], got {self.alpha!r}")
        if self.finetune_epochs is not None and (not isinstance(self.finetune_epochs, int) or self.finetune_epochs < 1):
            raise UsageError(f"--finetune-epochs must be a positive integer, got {self.finetune_epochs!r}")
        if not 0 < self.finetune_lr < 1:
            raise UsageError(f"--finetune-lr must lie in (0, 1), got {self.finetune_lr!r}")

    def finetune_cfg(self, cfg: TrainConfig) -> TrainConfig:
        epochs = self.finetune_epochs or max(1, math.ceil(cfg.epochs / 4))
        return dataclasses.replace(cfg, epochs=epochs, lr=self.finetune_lr, lr_low=self.finetune_lr, warmup_epochs=0.0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """What must not change across ``--resume`` (epoch counts may)."""
        return {k: v for k, v in self.to_dict().items() if k != "finetune_epochs"}


def soft_cross_entropy(teacher_out: torch.Tensor, student_out: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 10's H₂: cross-entropy between eq. 9 softmaxes (temperature T) over each sample's flattened outputs."""
    p_t = torch.softmax(teacher_out.flatten(1) / temperature, dim=1)
    log_p_s = torch.log_softmax(student_out.flatten(1) / temperature, dim=1)
    return -(p_t * log_p_s).sum(dim=1).mean()


def ae_kd_loss(student_out: torch.Tensor, target: torch.Tensor, teacher_out: torch.Tensor, alpha: float, temperature: float) -> torch.Tensor:
    """Eq. 10: ``α·MSE(y, ŷ_s) + (1−α)·H₂(σ(ŷ_t; T), σ(ŷ_s; T))``."""
    return alpha * F.mse_loss(student_out, target) + (1 - alpha) * soft_cross_entropy(teacher_out, student_out, temperature)


def load_teacher(path: str | Path) -> CsiModel:
    """A full-autoencoder checkpoint (side ``all``) as a frozen model in eval mode."""
    path = Path(path)
    teacher = load_checkpoint(path)
    side = read_sidecar(path).get("side", "all")
    if side != "all":
        raise UsageError(f"teacher checkpoint {path.name} holds only the {side} side; KD needs a full autoencoder (side all)")
    check_autoencoder(teacher)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


def student_overrides(student: str, reference: CsiModel, cr: str | None, share_decoder: bool) -> dict[str, Any]:
    """Student config: the teacher's CR unless ``cr`` is given; with ``share_decoder``, every config field the two
    families share (e.g. CRNet's decoder width) is taken from the teacher, whose decoder the student reuses."""
    ref = cfg_to_dict(reference.cfg)
    fields = set(get_entry(student).configurable())
    out = {k: v for k, v in ref.items() if k in fields} if share_decoder else {}
    if "cr" in ref and "cr" in fields:
        out["cr"] = cr if cr is not None else ref["cr"]
    elif cr is not None:
        out["cr"] = cr
    return out


def check_codewords(teacher: CsiModel, student: CsiModel) -> None:
    nt, ns = codeword_length(teacher), codeword_length(student)
    if nt != ns:
        raise UsageError(f"student {student.name} has codeword length {ns}, the teacher {teacher.name} has {nt}; "
                         f"KD needs equal codeword lengths (omit --cr to use the teacher's)")


def copy_decoder(teacher: CsiModel, student: CsiModel) -> None:
    try:
        student.bs.load_state_dict(teacher.bs.state_dict(), strict=True)
    except RuntimeError as exc:
        raise CsibenchError(f"the teacher's decoder ({teacher.name}) does not fit the student {student.name}'s decoder "
                            f"({str(exc).strip().splitlines()[0]})") from None


def _forward(module: torch.nn.Module, x: torch.Tensor, device: str) -> torch.Tensor:
    """Frozen ``module`` over ``x`` on ``device`` in batches; no_grad (not inference_mode: the result is a loss target)."""
    module.to(device).eval()
    with torch.no_grad():
        return torch.cat([module(x[i : i + 500].to(device)).cpu() for i in range(0, x.shape[0], 500)])


def _ae_kd(teacher: CsiModel, student: CsiModel, ds: CsiDataset, out: Path, cfg: TrainConfig, kd: KDConfig, common: dict,
           resume: bool, progress: ProgressFn | None) -> list[StageResult]:
    x_train, x_val = as_tensor(ds.train), as_tensor(ds.val)
    soft = _forward(teacher, x_train, cfg.device)  # the frozen teacher's outputs, once (eval mode: identical every epoch)
    t, a = kd.temperature, kd.alpha
    stage = Stage(
        name="ae-kd", model=student, side="all", trainable=student, train=(x_train, soft), val=(x_val,),
        loss=lambda x, z_t: ae_kd_loss(student(x), x, z_t, a, t), val_loss=lambda x: F.mse_loss(student(x), x),
        identity={"method": "ae-kd", "data": ds.content_hash, "kd": kd.identity()}, training=common,
    )
    return [run_stage(stage, cfg, out / "ae-kd", resume=resume, progress=progress)]


def _encoder_kd(teacher: CsiModel, student: CsiModel, ds: CsiDataset, out: Path, cfg: TrainConfig, kd: KDConfig, common: dict,
                resume: bool, progress: ProgressFn | None) -> list[StageResult]:
    copy_decoder(teacher, student)
    x_train, x_val = as_tensor(ds.train), as_tensor(ds.val)
    s_train, s_val = _forward(teacher.ue, x_train, cfg.device), _forward(teacher.ue, x_val, cfg.device)
    ident = {"method": "encoder-kd", "data": ds.content_hash, "kd": kd.identity()}
    distill = Stage(
        name="distill", model=student, side="all", trainable=student.ue, train=(x_train, s_train), val=(x_val, s_val),
        loss=lambda x, s: F.mse_loss(student.ue(x), s), val_loss=lambda x, s: F.mse_loss(student.ue(x), s),
        val_metric="codeword_mse", identity=ident, training=common,
    )
    first = run_stage(distill, cfg, out / "distill", resume=resume, progress=progress)
    finetune = reconstruction_stage("finetune", student, ds, training=common, identity=ident)
    return [first, run_stage(finetune, kd.finetune_cfg(cfg), out / "finetune", resume=resume, progress=progress)]


def _two_vendors(bs_model: CsiModel, student_name: str, overrides: dict, ds: CsiDataset, out: Path, cfg: TrainConfig,
                 kd: KDConfig, common: dict, resume: bool, progress: ProgressFn | None, finetune: bool) -> tuple[CsiModel, list[StageResult], list[dict]]:
    """Fig. 5 (``finetune``) or sequential training: the sides exchange only :class:`CodewordPairs`."""
    bs = BsVendor(bs_model, device=cfg.device)
    ue = UeVendor(student_name, seed=cfg.seed, device=cfg.device, **{k: v for k, v in overrides.items() if k == "cr"})
    if ue.codeword_length != bs.codeword_length:
        raise UsageError(f"student {student_name} has codeword length {ue.codeword_length}, the BS model {bs_model.name} has "
                         f"{bs.codeword_length}; KD needs equal codeword lengths (omit --cr to use the teacher's)")
    exchanged: list[dict] = []

    def send(sender: str, receiver: str, what: str, pairs: CodewordPairs) -> CodewordPairs:
        exchanged.append({"from": sender, "to": receiver, "what": what, "n": pairs.n, "codeword_length": pairs.codeword_length,
                          "bytes": pairs.nbytes})
        return pairs

    x_train, x_val = as_tensor(ds.train), as_tensor(ds.val)
    ue_train, ue_val = (send("bs", "ue", f"{s} csi-codeword pairs", bs.codeword_pairs(x)) for s, x in (("train", x_train), ("val", x_val)))
    stages = [ue.train_encoder(ue_train, ue_val, cfg, out / "ue-encoder", resume=resume, progress=progress, training=common)]
    if finetune:
        bs_train, bs_val = (send("ue", "bs", f"{p} csi-codeword pairs", ue.codeword_pairs(pairs.csi)) for p, pairs in (("train", ue_train), ("val", ue_val)))
        stages.append(bs.finetune_decoder(bs_train, bs_val, kd.finetune_cfg(cfg), out / "bs-decoder", resume=resume, progress=progress,
                                          training=common))
    final = create_model(student_name, seed=cfg.seed, **overrides)  # evaluation harness: the two vendors' deployed weights
    final.ue.load_state_dict(ue.encoder_state())
    try:
        final.bs.load_state_dict(bs.decoder_state())
    except RuntimeError as exc:
        raise CsibenchError(f"the BS decoder ({bs_model.name}) does not fit {student_name}'s decoder ({str(exc).strip().splitlines()[0]})") from None
    return final, stages, exchanged


def distill(teacher: str | Path | None, student: str, method: str, data: CsiDataset | str | Path, out_dir: str | Path,
            cfg: TrainConfig | None = None, kd: KDConfig | None = None, *, cr: str | None = None, resume: bool = False,
            progress: ProgressFn | None = None, bs_model: str | None = None) -> TrainResult:
    """Run one KD ``method`` (see the module docstring) into ``out_dir``; the final student is ``out_dir/best.safetensors``."""
    if method not in METHODS:
        raise UsageError(f"unknown --method {method!r}; {suggest(method, list(METHODS))}")
    cfg, kd = cfg or TrainConfig(), kd or KDConfig()
    with torch_threads(cfg.threads):
        return _distill(teacher, student, method, data, Path(out_dir), cfg, kd, cr, resume, progress, bs_model)


def _distill(teacher: str | Path | None, student: str, method: str, data: CsiDataset | str | Path, out_dir: Path, cfg: TrainConfig,
             kd: KDConfig, cr: str | None, resume: bool, progress: ProgressFn | None, bs_model: str | None) -> TrainResult:
    ds, out = resolve_data(data), Path(out_dir)
    teacher_path = Path(teacher) if teacher is not None else None
    if teacher_path is None and method != "sequential":
        raise UsageError(f"--method {method} needs --teacher (a trained autoencoder checkpoint)")
    common = {"method": method, "teacher": teacher_record(teacher_path), "data": data_record(ds),
              "hyperparameters": kd.to_dict() if method != "sequential" else {}}
    stages: list[StageResult] = []
    extra: dict[str, Any] = {}
    if teacher_path is not None:
        ref = load_teacher(teacher_path)
    else:  # sequential, BS-first: the BS vendor trains its own autoencoder first (footnote 6: the student's architecture)
        ref = create_model(bs_model or student, seed=cfg.seed + BS_SEED_OFFSET, **({"cr": cr} if cr else {}))
        check_autoencoder(ref)
        check_fits(ref, ds)
        bs_cfg = dataclasses.replace(cfg, seed=cfg.seed + BS_SEED_OFFSET)
        extra["bs_output_init"] = match_output_scale(ref, as_tensor(ds.train), bs_cfg)
        stage = reconstruction_stage("bs-autoencoder", ref, ds, training={**common, "method": "vanilla (BS side of sequential)",
                                                                         "output_init": extra["bs_output_init"]},
                                     identity={"method": "sequential"})
        stages.append(run_stage(stage, bs_cfg, out / "bs-autoencoder", resume=resume, progress=progress))
        ref.cpu().eval()
    check_fits(ref, ds)
    shares = method in ("encoder-kd", "variant-encoder-kd", "sequential")
    overrides = student_overrides(student, ref, cr, share_decoder=shares)
    built = create_model(student, seed=cfg.seed, **overrides)
    check_autoencoder(built)
    check_fits(built, ds)
    check_codewords(ref, built)
    if method == "ae-kd":  # the only method whose student decoder starts from scratch (the others reuse a trained one)
        extra["output_init"] = match_output_scale(built, as_tensor(ds.train), cfg)
        stages += _ae_kd(ref, built, ds, out, cfg, kd, {**common, "output_init": extra["output_init"]}, resume, progress)
    elif method == "encoder-kd":
        stages += _encoder_kd(ref, built, ds, out, cfg, kd, common, resume, progress)
    else:
        built, more, exchanged = _two_vendors(ref, student, overrides, ds, out, cfg, kd, common, resume, progress,
                                              finetune=method == "variant-encoder-kd")
        stages += more
        extra["exchanged"] = exchanged
    hyper = {**kd.to_dict(), "finetune": kd.finetune_cfg(cfg).to_dict()} if method != "sequential" else {}
    if method == "sequential" and teacher_path is None:
        hyper["bs_model"] = bs_model or student
    return finalize(built, ds, out, method, stages, cfg, teacher=teacher_path, hyperparameters=hyper, extra=extra)
