"""Bad input over the real CLI, table-driven: each row is one thing a new user or a hostile tester may type.

Every row asserts the exit code (2: bad input, 1: a failure csibench explains), exactly one ``error:`` line on
stderr with the fragments that make it useful (the key, the value, the path, what is valid), no traceback, no temp
file left behind, and — where a results database is given to the command — that the database is byte-identical
afterwards (sha256 before and after).

Classes: wrong type, out of range, NaN/inf, a file where a directory belongs, a directory that is not writable, a
path under /proc, a full disk, conflicting options, malformed config files (and files that are not a csibench
database). The full-disk rows use a real tmpfs of 64 KiB mounted by the test, filled to the last byte; the
"not writable" rows use a real read-only tmpfs. Both need root (mount); without it the full-disk rows are skipped
with the reason, and "not writable" falls back to a directory with mode 0555 (which root would bypass).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_helpers import assert_one_line_error, invoke

CORES = os.cpu_count() or 1
FAST = ("--min-time", "0.05", "--min-samples", "5", "--max-time", "2")
NO_DEVICES = b'{"version": 1, "devices": {}}'  # a private, empty devices file (rows that would add one)


@dataclass(frozen=True)
class Row:
    kind: str
    args: tuple[str, ...]
    code: int
    fragments: tuple[str, ...] = ()
    needs: str | None = None  # "full": the full tmpfs; "ro": the unwritable directory
    devices: bytes | None = None  # content of devices.json in a private CSIBENCH_CONFIG_DIR
    guard: str | None = None  # a placeholder whose file must come out byte-identical (besides {db})
    xfail: str | None = None  # a known gap in a file another part owns (reported; the mark goes when it is fixed)


def R(kind, args, code, *fragments, **kw) -> Row:
    return Row(kind, tuple(args.split()), code, fragments, **kw)


ROWS = [
    # --- wrong type -------------------------------------------------------------------------------------------
    R("type", "profile crnet --set negative_slope=abc", 2, "negative_slope='abc'", "'crnet'", "a finite number"),
    R("type", "profile crnet --set decoder_width=wide", 2, "decoder_width='wide'", "a whole number"),
    R("type", "profile crnet --set decoder_width=2.5", 2, "decoder_width=2.5", "a whole number"),
    R("type", "profile crnet --set decoder_width=true", 2, "decoder_width=True", "a whole number"),
    R("type", "profile crnet --set decoder_width=[1,2]", 2, "decoder_width=[1, 2]", "a whole number"),
    R("type", "profile csinet --set decoder_norm=maybe", 2, "decoder_norm='maybe'", "true or false"),
    R("type", "profile csinet --set decoder_norm=2", 2, "decoder_norm=2", "true or false"),
    R("type", "profile crnet --set cr=abc", 2, "compression ratio 'abc'", "1/16"),
    R("type", "profile crnet --set cr=true", 2, "cr=True", "compression ratio"),
    R("type", "profile pm-csinet+ --set first_cr=half", 2, "first_cr='half'", "1/16"),
    R("type", "profile jefpnet --set snr_db=loud", 2, "snr_db='loud'", "a finite number"),
    R("type", "profile rvq-egat --set deploy_bits=some", 2, "deploy_bits='some'", "a whole number"),
    R("type", "profile crnet --set nosuch=1", 2, "no parameter nosuch", "decoder_width"),
    R("type", "profile crnet --set novalue", 2, "'novalue'", "KEY=VALUE"),
    R("type", "profile crnet --cr sixteenth", 2, "'sixteenth'", "1/16"),
    R("type", "export crnet-se --set decoder_width=x --out {tmp}/never", 2, "decoder_width='x'"),
    R("type", "run seed-004 --no-train --db {db} --out {tmp}/rep --crs half", 2, "'half'", "1/16"),
    R("type", "run seed-004 --no-train --db {db} --out {tmp}/rep --runtimes tflite", 2, "unknown runtime 'tflite'"),
    # --- out of range -----------------------------------------------------------------------------------------
    R("range", "profile crnet --set decoder_width=0", 2, "decoder_width=0", "≥ 1"),
    R("range", "profile crnet --set encoder_width=-3", 2, "encoder_width=-3", "≥ 1"),
    R("range", "profile jefpnet --set users=0", 2, "users=0", "≥ 1"),
    R("range", "profile rvq-egat --set bits=-8", 2, "bits=-8", "≥ 1"),
    R("range", "profile rcamunet --set heads=7", 2, "heads 7"),
    R("range", "profile crnet --cr 2", 2, "'2'", "(0, 1]"),
    R("range", "profile crnet --cr 1/3", 2, "'1/3'", "not whole"),
    R("range", "profile crnet --cr 0", 2, "'0'", "(0, 1]"),
    R("range", "bench {art} --db {db} --threads 0", 2, "--threads 0", f"[1, {CORES}]"),
    R("range", f"bench {{art}} --db {{db}} --threads {CORES + 1}", 2, f"--threads {CORES + 1}", "logical cores"),
    R("range", "bench {art} --db {db} --threads 10000", 2, "--threads 10000", f"[1, {CORES}]"),
    R("range", "bench {art} --db {db} --repeat 0", 2, "--repeat 0", "at least 1"),
    R("range", "bench {art} --db {db} --min-time -1", 2, "min_time_s (--min-time) -1", "≥ 0"),
    R("range", "bench {art} --db {db} --min-samples 0", 2, "min_samples (--min-samples) 0", "≥ 1"),
    R("range", "bench {art} --db {db} --certify 0", 2, "--certify 0", "(0, 1)"),  # issue 12: --precision → --certify
    R("range", "bench {art} --db {db} --certify 1.5", 2, "--certify 1.5", "(0, 1)"),
    R("range", "bench {art} --db {db} --max-time 0", 2, "max_time_s (--max-time) 0", "> 0"),
    R("range", "train crnet-se --data {tmp}/none --out {tmp}/run --epochs 0", 2, "--epochs 0", "≥ 1"),
    R("range", "train crnet-se --data {tmp}/none --out {tmp}/run --batch-size 0", 2, "--batch-size 0", "≥ 1"),
    R("range", "train crnet-se --data {tmp}/none --out {tmp}/run --lr -0.1", 2, "--lr -0.1", "> 0"),
    R("range", "train crnet-se --data {tmp}/none --out {tmp}/run --threads 100000", 2, "--threads 100000", "logical cores"),
    R("range", "distill --data {tmp}/none --out {tmp}/run --alpha 2", 2, "--alpha 2", "[0, 1]"),
    R("range", "data generate --train 0 --out {tmp}/ds0", 2, "--train 0", "≥ 1"),
    R("range", f"run seed-004 --no-train --db {{db}} --out {{tmp}}/rep --threads {CORES + 1}", 2, f"--threads {CORES + 1}", "logical cores"),
    R("range", "run seed-004 --db {db} --out {tmp}/rep --epochs 0", 2, "--epochs 0", "at least 1"),
    R("range", "run seed-004 --no-train --db {db} --out {tmp}/rep --min-time -1", 2, "min_time_s (--min-time) -1", "≥ 0"),
    R("range", "run seed-004 --no-train --db {db} --out {tmp}/rep --certify 2", 2, "precision 2", "(0, 1)"),
    R("range", "run seed-004 --no-train --db {db} --out {tmp}/rep --crs 1/3", 2, "'1/3'", "not whole"),
    # --- NaN and infinity -------------------------------------------------------------------------------------
    R("nan", "profile crnet --set negative_slope=nan", 2, "negative_slope='nan'", "not NaN or infinity"),
    R("nan", "profile crnet --set negative_slope=NaN", 2, "negative_slope=nan", "not NaN or infinity"),
    R("nan", "profile crnet --set negative_slope=inf", 2, "negative_slope='inf'", "not NaN or infinity"),
    R("nan", "profile crnet --set negative_slope=-Infinity", 2, "negative_slope=-inf", "not NaN or infinity"),
    R("nan", "profile crnet --set decoder_width=Infinity", 2, "decoder_width=inf", "a whole number"),
    R("nan", "profile crnet --set decoder_width=1e400", 2, "decoder_width=inf", "a whole number"),
    R("nan", "bench {art} --db {db} --min-time nan", 2, "min_time_s (--min-time) nan", "finite"),
    R("nan", "bench {art} --db {db} --min-time inf", 2, "min_time_s (--min-time) inf", "finite"),
    R("nan", "bench {art} --db {db} --max-time nan", 2, "max_time_s (--max-time) nan", "finite"),
    R("nan", "bench {art} --db {db} --max-time inf", 2, "max_time_s (--max-time) inf", "finite"),
    R("nan", "bench {art} --db {db} --certify nan", 2, "--certify nan", "(0, 1)"),
    R("nan", "train crnet-se --data {tmp}/none --out {tmp}/run --lr nan", 2, "--lr nan", "finite"),
    R("nan", "distill --data {tmp}/none --out {tmp}/run --temperature inf", 2, "--temperature inf", "finite"),
    R("nan", "run seed-004 --no-train --db {db} --out {tmp}/rep --min-time nan", 2, "min_time_s (--min-time) nan", "finite"),
    R("nan", "run seed-004 --no-train --db {db} --out {tmp}/rep --certify nan", 2, "precision nan", "(0, 1)"),
    # --- a file where a directory belongs (and the reverse) ---------------------------------------------------
    R("file", "export crnet-se --format onnx --out {file}", 1, "{file}", "it is a file, not a directory"),
    R("file", "export crnet-se --format onnx --out {file}/sub", 1, "{file}/sub", "is a file, not a directory"),
    R("file", "report --db {db} --out {file}", 1, "{file}", "it is a file, not a directory"),
    R("file", "report --db {db} --out {file}/rep", 1, "{file}/rep", "is a file, not a directory"),
    R("file", "bench {art} --db {file}/r.db", 1, "{file}/r.db", "is a file, not a directory"),
    R("file", "bench {art} --db {tmp}", 1, "{tmp}", "it is a directory, not a file"),
    R("file", "run seed-004 --no-train --db {db} --out {file}", 1, "{file}", "it is a file, not a directory"),
    R("file", "run seed-004 --no-train --db {tmp} --out {tmp}/rep", 1, "{tmp}", "it is a directory, not a file"),
    R("file", "run seed-004 --no-train --db {db} --out {tmp}/rep --cache {file}", 1, "{file}", "it is a file, not a directory"),
    R("file", "train crnet-se --data {tmp}/none --out {file}", 1, "{file}", "it is a file, not a directory"),
    R("file", "data generate --out {tmp}", 2, "--out {tmp} is a directory", "NAME.safetensors"),
    R("file", "data generate --out {file}/ds", 1, "{file}/ds", "is a file, not a directory"),
    # --- a directory that is not writable ---------------------------------------------------------------------
    R("ro", "export crnet-se --format onnx --out {ro}/arts", 1, "{ro}/arts", "not writable", needs="ro"),
    R("ro", "report --db {db} --out {ro}/rep", 1, "{ro}/rep", "not writable", needs="ro"),
    R("ro", "bench {art} --db {ro}/r.db", 1, "{ro}/r.db", "not writable", needs="ro"),
    R("ro", "data generate --out {ro}/ds", 1, "{ro}/ds", "not writable", needs="ro"),
    R("ro", "train crnet-se --data {tmp}/none --out {ro}/run", 1, "{ro}/run", "not writable", needs="ro"),
    # --- a path under /proc -----------------------------------------------------------------------------------
    R("proc", "export crnet-se --format onnx --out /proc/csibench-artifacts", 1, "/proc/csibench-artifacts", "virtual file system"),
    R("proc", "report --db {db} --out /proc/csibench-report", 1, "/proc/csibench-report", "virtual file system"),
    R("proc", "bench {art} --db /proc/csibench.db", 1, "/proc/csibench.db", "virtual file system"),
    R("proc", "data generate --out /proc/csibench-data", 1, "/proc/csibench-data", "virtual file system"),
    R("proc", "train crnet-se --data {tmp}/none --out /proc/csibench-run", 1, "/proc/csibench-run", "virtual file system"),
    # --- a full disk (a real 64 KiB tmpfs, filled) ------------------------------------------------------------
    R("full", "report --db {db} --out {full}/rep", 1, "{full}/rep", "no space left on the device", needs="full"),
    R("full", "bench {art} --db {full}/new.db", 1, "{full}/new.db", "full", needs="full"),
    R("full", "data generate --train 20 --val 10 --test 10 --out {full}/ds", 1, "{full}/ds.safetensors",
      "no space left on the device", needs="full"),
    R("full", "train crnet-se --data {ds} --out {full}/run --epochs 1 --batch-size 10", 1, "{full}/run/",
      "no space left on the device", needs="full"),
    # --- conflicting options ----------------------------------------------------------------------------------
    R("conflict", "profile crnet --cr 1/32 --set cr=1/16", 2, "--cr 1/32 and --set cr=1/16 conflict"),
    R("conflict", "profile rvq-egat --bits 8 --set bits=4", 2, "--bits 8 and --set bits=4 conflict"),
    R("conflict", "profile jefpnet --users 2 --set users=3", 2, "--users 2 and --set users=3 conflict"),
    R("conflict", "profile crnet --set decoder_width=4 --set decoder_width=8", 2, "--set decoder_width given twice"),
    R("conflict", "profile crnet-se --checkpoint {ckpt} --cr 1/16", 2, "cr=1/32, not 1/16"),
    R("conflict", "data generate --users 2 --out {tmp}/ds1", 2, "--users needs --for"),
    # --- malformed config files and files that are not a csibench database ------------------------------------
    R("config", "profile crnet-se --checkpoint {bad_utf8}", 1, "{bad_utf8}.json", "not UTF-8"),
    R("config", "profile crnet-se --checkpoint {bad_json}", 1, "{bad_json}.json", "not valid JSON"),
    R("config", "profile crnet-se --checkpoint {bad_list}", 1, "{bad_list}.json", "'model' and 'config'"),
    R("config", "profile crnet-se --checkpoint {bad_type}", 1, "{bad_type}.json", "decoder_width='abc'", "a whole number"),
    R("config", "profile crnet-se --checkpoint {bad_nan}", 1, "{bad_nan}.json", "negative_slope=nan", "not NaN"),
    R("config", "profile crnet-se --checkpoint {bad_key}", 1, "{bad_key}.json", "no parameter colour"),
    R("config", "devices list", 1, "devices.json", devices=b"\xff\xfe{not utf-8"),
    R("config", "devices list", 1, "devices.json", devices=b"{not json"),
    R("config", "devices list", 1, "devices.json", devices=b"[1, 2]"),
    R("config", "bench {art} --db {db} --device pi", 1, "devices.json", devices=b"\xff\xfe{not utf-8"),
    R("config", "devices list", 1, "devices.json", devices=b'{"devices": [1]}'),
    R("config", "run {bad_toml} --db {db} --out {tmp}/rep", 2, "{bad_toml}", "not UTF-8"),
    R("config", "run {bad_toml2} --db {db} --out {tmp}/rep", 2, "{bad_toml2}", "not valid TOML"),
    R("config", "report --db {text_db} --out {tmp}/rep", 1, "{text_db}", "not a csibench results database", guard="text_db"),
    R("config", "report --db {foreign_db} --out {tmp}/rep", 1, "{foreign_db}", "SQLite file of something else", guard="foreign_db"),
    R("config", "report --list --db {foreign_db}", 1, "{foreign_db}", "SQLite file of something else", guard="foreign_db"),
    R("config", "report --db {empty_db} --out {tmp}/rep", 2, "{empty_db}", "empty file", guard="empty_db"),
    R("config", "bench {art} --db {text_db}", 1, "{text_db}", "not an SQLite file", guard="text_db"),
    # --- issue 10: click's own usage errors (wrong type, missing argument, unknown option): one line, exit 2 ------
    R("type", "bench {art} --db {db} --threads abc", 2, "Invalid value for '--threads'", "(got 'abc')", "see `csibench bench --help`"),
    R("type", "bench {art} --db {db} --min-time=soon", 2, "Invalid value for '--min-time'", "(got 'soon')"),
    R("type", "run seed-004 --no-train --db {db} --out {tmp}/rep --min-time soon", 2, "'--min-time'", "(got 'soon')", "csibench run --help"),
    R("type", "train crnet-se --data {tmp}/none --out {tmp}/run --epochs two", 2, "'--epochs'", "(got 'two')", "csibench train --help"),
    R("type", "data generate --train many --out {tmp}/ds2", 2, "'--train'", "(got 'many')", "csibench data generate --help"),
    R("type", "devices calibrate local --seconds x --db {db}", 2, "'--seconds'", "(got 'x')", "csibench devices calibrate --help"),
    R("type", "profile", 2, "Missing argument 'model'", "see `csibench profile --help`"),
    R("type", "bench --db {db}", 2, "Missing argument 'artifact'", "csibench bench --help"),
    R("type", "devices add pi2", 2, "Missing option '--host'", "csibench devices add --help"),
    R("type", "profile crnet --nope", 2, "No such option: --nope", "csibench profile --help"),
    R("type", "bench {art} --db {db} --thread 2", 2, "No such option: --thread", "--threads"),
    R("type", "bench {art} --db {db} --threads", 2, "'--threads' requires an argument", "csibench bench --help"),
    R("type", "report --db {db} --out {tmp}/rep a-run another", 2, "unexpected extra argument", "another"),
    R("type", "nosuch", 2, "No such command 'nosuch'", "see `csibench --help`"),
    R("type", "devices nosuch", 2, "No such command 'nosuch'", "see `csibench devices --help`"),
    R("type", "--versio", 2, "No such option: --versio", "--version"),
    # --- issue 12: quantised export (precisions, routes, tolerances, weights and calibration data) ------------
    R("range", "export crnet-se --precision int4 --out {tmp}/q", 2, "'int4'", "fp32, fp16, int8-dynamic, int8"),
    R("conflict", "export crnet-se --format torch --precision int8 --out {tmp}/q", 2, "format torch", "int8", "produces fp32"),
    R("config", "export crnet-se --precision int8 --out {tmp}/q", 2, "needs trained weights", "seeded random", "csibench train"),
    R("config", "export crnet-se --cr 1/32 --checkpoint {ckpt} --precision int8 --out {tmp}/q", 2, "without a training record"),
    R("conflict", "export crnet-se --side bs --precision fp16 --out {tmp}/q", 2, "UE encoder", "fp32 only"),
    R("type", "export crnet-se --precision int8 --tolerance delta_nmse_db=abc --out {tmp}/q", 2, "delta_nmse_db=abc", "≥ 0"),
    R("range", "export crnet-se --precision int8 --tolerance speed=1 --out {tmp}/q", 2, "speed=1", "delta_nmse_db, codeword_rel_error"),
    R("conflict", "export crnet-se --tolerance delta_nmse_db=1 --out {tmp}/q", 2, "--tolerance", "quantised precisions"),
    R("nan", "export crnet-se --precision int8 --tolerance delta_nmse_db=nan --out {tmp}/q", 2, "delta_nmse_db=nan", "finite"),
    R("range", "export crnet-se --precision int8 --calibration-samples 4 --out {tmp}/q", 2, "--calibration-samples 4", "at least 16"),
    R("type", "export crnet-se --precision int8 --calibration-samples many --out {tmp}/q", 2, "'--calibration-samples'", "(got 'many')"),
    R("conflict", "export crnet-se --calibration-samples 200 --out {tmp}/q", 2, "--calibration-samples", "quantised precisions"),
    R("file", "export crnet-se --cr 1/32 --checkpoint {trained} --precision int8 --calibration-data {file} --out {tmp}/q", 2,
      "a-file.txt.safetensors: no such dataset file", "NAME.safetensors beside NAME.json"),
    R("file", "export crnet-se --cr 1/32 --checkpoint {trained} --precision int8 --calibration-data {tmp} --out {tmp}/q", 2,
      "no such dataset file", "NAME.safetensors beside NAME.json"),
    R("type", "bench {art} --db {db} --precision 0.01", 2, "No such option: --precision", "--certify"),
    # --- issue 11: report formats and filters (unknown names list the valid ones) ------------------------------
    R("range", "report --db {db} --out {tmp}/rep --format md,pdf", 2, "'pdf'", "valid: md, csv, tex, html, json"),
    R("range", "run --format docx --db {tmp}/r.db --out {tmp}/rep", 2, "'docx'", "valid: md, csv, tex, html, json"),
    R("range", "report --db {db} --out {tmp}/rep --models nope", 2, "unknown model(s) 'nope' in --models", "crnet-se"),
    R("range", "report --db {db} --out {tmp}/rep --device mars", 2, "unknown device(s) 'mars' in --device", "local"),
    R("range", "report --db {db} --out {tmp}/rep --runtimes tvm", 2, "unknown runtime(s) 'tvm' in --runtimes", "onnxruntime"),
    R("file", "report --db {db} --out {file} --format tex", 1, "{file}", "it is a file, not a directory"),
    # --- issue 16, validation (items 1, 10, 11) ---------------------------------------------------------------------------
    R("nan", "profile {bare_onnx} --reference {nan_npz}", 1, "{bare_onnx} failed validation",
      "reference nan_ref.npz output 'codeword' has 3 NaN values (of 256)"),
    R("nan", "bench {bare_onnx} --db {db} --reference {nan_npz}", 1, "status failed",
      "reference nan_ref.npz output 'codeword' has 3 NaN values (of 256)"),
    R("nan", "profile {bare_onnx} --reference {inf_npz}", 1, "failed validation",
      "reference inf_ref.npz input 'csi' has 1 Inf value (of 4096)"),
    R("size", "profile {bare_onnx} --reference {bomb_npz}", 2, "--reference {bomb_npz} unpacks to 293,601,408 bytes", "over the 256 MiB"),
    # (end of validation (items 1, 10, 11) rows)
    # --- issue 16, reports (items 2, 7) ---------------------------------------------------------------------------
    R("config", "report --db {db} --out {forged}", 1, "{forged}", ".csibench-report.json there is not a marker csibench wrote",
      "'../victim.csv'", "move it away or choose another --out", guard="victim"),  # a forged marker deletes nothing
    # (end of reports (items 2, 7) rows)
    # --- issue 16, studies and resume (items 3, 6, 11) ---------------------------------------------------------------------------
    R("range", "run {study_thr} --no-train --db {db} --out {tmp}/rep", 2, "{study_thr}:1: threads: 999 threads on device local",
      "logical cores", "[1, "),
    R("range", "run {study_minmax} --no-train --db {db} --out {tmp}/rep", 2, "{study_minmax}:4: measure.min_time: 5 s is more than "
      "measure.max_time 2 s", "min_time ≤ max_time"),
    R("range", "run {study_seed} --no-train --db {db} --out {tmp}/rep", 2, "{study_seed}:1: seed", "[0, 9223372036854775807]",
      "got -1"),
    R("range", "run seed-004 --no-train --seed -1 --db {db} --out {tmp}/rep", 2, "--seed -1", "[0, 9223372036854775807]"),
    R("range", "run seed-004 --no-train --min-time 40 --db {db} --out {tmp}/rep", 2, "--min-time 40", "measure.max_time 30 s"),
    R("conflict", "run {study_crset} --no-train --db {db} --out {tmp}/rep", 2, "{study_crset}:4: models[0].set",
      "both in `crs` (1/4) and in `set` (cr = '1/8')", "give it once"),
    R("special", "run {study_fifo} --db {db} --out {tmp}/rep", 2, "study file {study_fifo} is a FIFO", "regular file"),
    R("size", "run {study_big} --db {db} --out {tmp}/rep", 2, "study file {study_big} is 5 MiB", "over the 4 MiB"),
    R("resume", "run --resume nosuch --db {db} --out {tmp}/rep", 2, "--resume nosuch: no study run 'nosuch' in {db}", "report --list"),
    R("resume", "run --resume seed-004@1 --db {tmp}/none.db", 2, "no results database {tmp}/none.db", "--db the run was recorded in"),
    R("resume", "run --resume seed-004@1 --db {resume_db} --crs 1/16", 2, "--crs 1/16 contradicts the stored run (--crs 1/32)",
      "drop --crs", guard="resume_db"),
    R("resume", "run --resume seed-004@1 --db {resume_db} --train", 2, "--train contradicts the stored run (--no-train)",
      guard="resume_db"),
    R("resume", "run --resume seed-004@1 --db {resume_db} --runtimes litert,onnxruntime", 2,
      "--runtimes litert,onnxruntime contradicts the stored run (--runtimes onnxruntime)", guard="resume_db"),
    R("resume", "run seed-003 --resume seed-004@1 --db {resume_db}", 2, "STUDY seed-003 contradicts the stored run (study seed-004)",
      guard="resume_db"),
    R("resume", "run --resume seed-004@2 --db {resume_db} --cache {tmp}/other", 2,
      "--cache {tmp}/other contradicts the stored run (--cache {resume_default_cache})", "drop --cache", guard="resume_db"),
    # (end of studies and resume (items 3, 6, 11) rows)
    # --- issue 16, signals and devices (items 4, 8) ---------------------------------------------------------------------------
    # Hand-edited devices.json entries checked as `devices add` checks them; a known_hosts that is a device file.
    # (A closed port is retried, each retry reported: tests/test_ssh_hardening.py; a non-SSH endpoint: there too.)
    R("config", "devices check nonssh", 1, "devices.json", "device 'nonssh' has port 70000 (valid: 1–65535)",
      devices=b'{"version": 1, "devices": {"nonssh": {"name": "nonssh", "profile": "rpi4", "host": "127.0.0.1", "port": 70000}}}'),
    R("config", "bench {art} --db {db} --device nonssh", 1, "devices.json", "device 'nonssh': port '22' is not a whole number",
      devices=b'{"version": 1, "devices": {"nonssh": {"name": "nonssh", "profile": "rpi4", "host": "127.0.0.1", "port": "22"}}}'),
    R("config", "devices check pi", 1, "devices.json", "device 'pi' has unknown profile 'rpi9'",
      devices=b'{"version": 1, "devices": {"pi": {"name": "pi", "profile": "rpi9", "host": "127.0.0.1", "port": 22}}}'),
    R("special", "devices check kh", 2, "known_hosts file /dev/zero",
      devices=b'{"version": 1, "devices": {"kh": {"name": "kh", "profile": "rpi4", "host": "127.0.0.1", "port": 1, '
              b'"known_hosts": "/dev/zero"}}}'),
    # injection: a destination is a hostname/address and a login name, refused where typed (or hand-edited), never passed on
    R("inject", "devices add pi9 --host 127.0.0.1;id", 2, "--host '127.0.0.1;id' is not a hostname", "--user", devices=NO_DEVICES),
    R("inject", "devices add pi9 --host=-oProxyCommand=id", 2, "--host '-oProxyCommand=id'", "not starting with '-'", devices=NO_DEVICES),
    R("inject", "devices add pi9 --host 127.0.0.1 --user $(id)", 2, "--user '$(id)' is not a login name", devices=NO_DEVICES),
    R("inject", "devices add pi\x1b[31m --host 127.0.0.1", 2, "invalid device name", "control characters", devices=NO_DEVICES),
    R("inject", "devices list", 1, "devices.json", "device 'pi': host 'h;id' is not a hostname",
      devices=b'{"version": 1, "devices": {"pi": {"name": "pi", "profile": "rpi4", "host": "h;id", "port": 22}}}'),
    # (end of signals and devices (items 4, 8) rows)
    # --- issue 16, bounded reads and databases (items 5, 11) ---------------------------------------------------------------------------
    R("special", "profile {fifo_onnx}", 2, "artifact {fifo_onnx} is a FIFO (named pipe); give a regular file"),
    R("special", "bench {fifo_onnx} --db {db}", 2, "artifact {fifo_onnx} is a FIFO (named pipe)"),
    R("size", "profile {big_onnx}", 2, "artifact {big_onnx} is 2,147,483,649 bytes", "over the 2,048 MiB csibench reads"),
    R("size", "bench {big_onnx} --db {db}", 2, "artifact {big_onnx} is 2,147,483,649 bytes", "over the 2,048 MiB csibench reads"),
    R("special", "bench {fifo_manifest} --db {db}", 2, "manifest {fifo_manifest}.json is a FIFO (named pipe)"),
    R("size", "bench {big_manifest} --db {db}", 2, "manifest {big_manifest}.json is 4,194,305 bytes", "over the 4 MiB"),
    R("special", "profile crnet-se --checkpoint {fifo_sidecar}", 2, "checkpoint config {fifo_sidecar}.json is a FIFO (named pipe)"),
    R("special", "profile crnet-se --checkpoint {fifo_ckpt}", 2, "checkpoint {fifo_ckpt} is a FIFO (named pipe)"),
    R("special", "profile crnet-se --checkpoint {tmp}", 2, "checkpoint {tmp} is a directory; give a regular file"),
    R("size", "profile crnet-se --checkpoint {big_sidecar}", 2, "checkpoint config {big_sidecar}.json is 4,194,305 bytes", "over the 4 MiB"),
    R("special", "data show {fifo_meta}", 2, "dataset metadata {fifo_meta}.json is a FIFO (named pipe)"),
    R("special", "data show {fifo_data}", 2, "dataset {fifo_data}.safetensors is a FIFO (named pipe)"),
    R("special", "profile {fifo_py}:Enc", 2, "{fifo_py} is a FIFO (named pipe)", "model reference"),
    R("special", "bench {art} --db {fifo}", 2, "results database {fifo} is a FIFO (named pipe); give a regular file"),
    R("special", "report --db {fifo} --out {tmp}/rep", 2, "results database {fifo} is a FIFO (named pipe)"),
    R("special", "report --db /dev/zero --out {tmp}/rep", 2, "results database /dev/zero is a character device"),
    R("special", "bench {art} --db /dev/zero", 1, "/dev/zero", "virtual file system"),
    R("config", "bench {art} --db {corrupt_db}", 1, "results database {corrupt_db} is damaged (SQLite quick_check: ",
      "will not append to it", guard="corrupt_db"),
    R("config", "report --db {corrupt_db} --out {tmp}/rep", 1, "{corrupt_db} is damaged", "report from it", guard="corrupt_db"),
    R("config", "report --list --db {corrupt_db}", 1, "{corrupt_db} is damaged", guard="corrupt_db"),
    R("file", "--import-path {file} profile crnet", 2, "--import-path {file}: a file, not a directory", "repository root"),
    R("file", "--import-path {tmp}/nope profile crnet", 2, "--import-path {tmp}/nope: no such directory"),
    R("config", "report --db {edited_db} --out {tmp}/rep", 1, "results database {edited_db}: measurements row 1 column median_s "
      "holds 'NaN' (text), not a number", "edited by hand or damaged", guard="edited_db"),
    # (end of bounded reads and databases (items 5, 11) rows)
    # --- issue 16, roofline (item 9) ---------------------------------------------------------------------------
    # (end of roofline (item 9) rows)
    # --- issue 17, device protocol ---------------------------------------------------------------------------
    # `devices add` takes its kind's options only; a devices file entry's kind is one the registry has
    R("type", "devices add pi9 --kind bogus --host 127.0.0.1", 2, "invalid --kind 'bogus'", "one of local, ssh", devices=NO_DEVICES),
    R("conflict", "devices add box --kind local --host 127.0.0.1", 2, "--host is not an option of kind 'local'",
      "(its options: --profile)", devices=NO_DEVICES),
    R("conflict", "devices add pi9 --host 127.0.0.1 --region eu", 2, "--region is not an option of kind 'ssh'", "--host, --port",
      devices=NO_DEVICES),
    R("type", "devices add pi9 --kind ssh --user pi", 2, "Missing option '--host': kind 'ssh' needs it", devices=NO_DEVICES),
    R("config", "devices list", 1, "devices.json", "device 'pi': kind 3 is not one of local, ssh",
      devices=b'{"version": 1, "devices": {"pi": {"kind": 3, "name": "pi", "profile": "rpi4", "host": "127.0.0.1"}}}'),
    R("config", "devices check box", 1, "devices.json", "device 'box' (kind local): unknown field(s) 'host'",
      devices=b'{"version": 1, "devices": {"box": {"kind": "local", "name": "box", "profile": "rpi5", "host": "h"}}}'),
    R("config", "devices list", 1, "devices.json", "device 'pi' (kind ssh): missing field(s) 'host'",
      devices=b'{"version": 1, "devices": {"pi": {"kind": "ssh", "name": "pi", "profile": "rpi4"}}}'),
    R("config", "devices list", 1, "devices.json", "an entry is named 'local', the built-in name of this machine; rename it",
      devices=b'{"version": 1, "devices": {"local": {"kind": "local", "name": "local", "profile": "rpi5"}}}'),
    # (end of device protocol rows)
    # --- issue 17, engines ---------------------------------------------------------------------------
    # `run --engine/--workers/--ray-address` and a study's [execution]: checked before any work; a flag meant for the
    # other engine is refused (never silently ignored)
    R("type", "run seed-004 --no-train --db {db} --out {tmp}/rep --engine bogus", 2, "invalid --engine 'bogus'", "valid: local, ray"),
    R("range", "run seed-004 --no-train --db {db} --out {tmp}/rep --workers 0", 2, "invalid --workers 0", "an integer in [1, 1024]"),
    R("range", "run seed-004 --no-train --db {db} --out {tmp}/rep --workers -1", 2, "invalid --workers -1", "an integer in [1, 1024]"),
    R("nan", "run seed-004 --no-train --db {db} --out {tmp}/rep --workers nan", 2, "Invalid value for '--workers'", "(got 'nan')"),
    R("type", "run seed-004 --no-train --db {db} --out {tmp}/rep --workers abc", 2, "Invalid value for '--workers'", "(got 'abc')"),
    R("conflict", "run seed-004 --no-train --db {db} --out {tmp}/rep --ray-address 10.0.0.5:6379", 2,
      "--ray-address 10.0.0.5:6379 is for --engine ray, not the local engine", "add --engine ray or drop --ray-address"),
    R("range", "run seed-004 --no-train --db {db} --out {tmp}/rep --gpu", 2, "--gpu: torch", "sees no CUDA device on this machine",
      "drop --gpu"),  # no CUDA here; a GPU machine of this kind would run it
    R("conflict", "run seed-004 --no-train --db {db} --out {tmp}/rep --engine ray --workers 2", 2,
      "--workers is for the local engine's worker processes, not --engine ray", "drop --workers"),
    R("config", "run {study_exec_type} --db {db} --out {tmp}/rep", 2, "{study_exec_type}:4: execution.workers",
      "expected an integer in [1, 1024], got 'two'"),
    R("config", "run {study_exec_key} --db {db} --out {tmp}/rep", 2, "{study_exec_key}:4: execution.nodes", "unknown key",
      "address, engine, gpu, workers"),
    R("conflict", "run {study_exec_rayworkers} --db {db} --out {tmp}/rep", 2, "{study_exec_rayworkers}:5: execution.workers",
      "worker processes are the local engine's, not 'ray''s", "drop it or set engine = \"local\""),
    R("type", "run {study_exec_badaddr} --db {db} --out {tmp}/rep", 2, "{study_exec_badaddr}:5: execution.address",
      "expected HOST:PORT of a Ray head", "got 'garbage'"),
    R("type", "run {study_exec_gpu} --db {db} --out {tmp}/rep", 2, "{study_exec_gpu}:4: execution.gpu",
      "expected true (train on a GPU, refused where there is none) or false (never), got 'yes'"),
    R("conflict", "run {study_exec_addr} --db {db} --out {tmp}/rep", 2, "{study_exec_addr}:5: execution.address",
      'a Ray cluster address is for engine = "ray", not \'local\''),
    # (end of engines rows)
    # --- issue 17, ray ---------------------------------------------------------------------------
    # A cluster address that is not one, or where nothing listens: one line at once (Ray itself would retry forever);
    # a board name Ray cannot use as a resource; `devices serve` checks what it offers before starting anything.
    # (Rows that need a running cluster, and `run --engine ray`, which imports Ray, are in tests/test_ray_engine.py.)
    R("proc", "devices cluster --ray-address 127.0.0.1:1", 1, "no Ray cluster at 127.0.0.1:1: Connection refused",
      "start one with `csibench devices serve`"),
    R("type", "devices cluster --ray-address nowhere", 2, "invalid --ray-address 'nowhere'", "HOST:PORT of a Ray head"),
    R("type", "devices add pi:3 --kind ray-board", 2, "invalid board name 'pi:3'", "the Ray resource board:NAME", devices=NO_DEVICES),
    R("type", "devices add pi9 --kind ray-board --ray-address 10.0.0.5", 2, "invalid --ray-address '10.0.0.5'",
      "HOST:PORT of a Ray head", devices=NO_DEVICES),
    R("type", "devices serve pi:3", 2, "invalid board name 'pi:3'", "letters, digits", devices=NO_DEVICES),
    R("config", "devices serve nosuch", 2, "unknown device 'nosuch'", devices=NO_DEVICES),
    R("range", "devices serve --port 0", 2, "invalid --port 0", "1–65535", devices=NO_DEVICES),
    R("proc", "devices serve local --ray-address 127.0.0.1:1", 1, "no Ray cluster at 127.0.0.1:1: Connection refused",
      "start its head first", devices=NO_DEVICES),
    # (end of ray rows)
]


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _mount(target: Path, *options: str, size_k: int = 64) -> str | None:
    """Mount a tmpfs on ``target``; None when done, else why it could not be (not root, no CAP_SYS_ADMIN)."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join((f"size={size_k}k", *options)), "tmpfs", str(target)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else f"mount -t tmpfs failed: {done.stderr.strip()}"


def _fill(directory: Path) -> None:
    """Write until the file system says ENOSPC: every later write there fails for want of space."""
    fh = open(directory / "filler", "ab", buffering=0)
    try:
        while True:
            fh.write(b"\0" * 1024)
    except OSError:
        pass
    finally:
        fh.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from csibench.export import export_side, parse_formats
    from csibench.models import create_model
    from csibench.models.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("bad_input")
    tmp = root / "work"
    tmp.mkdir()
    paths = {"tmp": tmp}
    [(art, _)] = export_side(create_model("crnet-se", cr="1/16"), "ue", parse_formats("onnx"), root / "artifacts")
    paths["art"] = art
    paths["db"] = root / "results.db"
    made = invoke("bench", art, "--db", paths["db"], *FAST)
    assert made.exit_code == 0, made.output
    paths["file"] = root / "a-file.txt"
    paths["file"].write_text("I am a file\n")
    paths["ckpt"] = root / "student.safetensors"
    save_checkpoint(create_model("crnet-se", cr="1/32", seed=1), paths["ckpt"])
    good = json.loads((root / "student.safetensors.json").read_text())
    sidecars = {"bad_utf8": b"\xff\xfe{\"model\": 1}", "bad_json": b"{\"model\": \"crnet-se\",", "bad_list": b"[1, 2, 3]",
                "bad_type": json.dumps({**good, "config": {**good["config"], "decoder_width": "abc"}}).encode(),
                "bad_nan": json.dumps({**good, "config": {**good["config"], "negative_slope": float("nan")}}).encode(),
                "bad_key": json.dumps({**good, "config": {**good["config"], "colour": "red"}}).encode()}
    for name, content in sidecars.items():
        ckpt = root / f"{name}.safetensors"
        shutil.copy(paths["ckpt"], ckpt)
        (root / f"{name}.safetensors.json").write_bytes(content)
        paths[name] = ckpt
    paths["bad_toml"] = root / "study.toml"
    paths["bad_toml"].write_bytes(b"\xff\xfe[study]")
    paths["bad_toml2"] = root / "study2.toml"
    paths["bad_toml2"].write_text("[study\nname=")
    paths["text_db"] = root / "notes.db"
    paths["text_db"].write_text("my notes, not a database\n")
    paths["foreign_db"] = root / "foreign.db"
    with sqlite3.connect(paths["foreign_db"]) as conn:
        conn.execute("CREATE TABLE inventory (item TEXT, count INTEGER)")
        conn.execute("INSERT INTO inventory VALUES ('apples', 3)")
    conn.close()
    paths["empty_db"] = root / "empty.db"
    paths["empty_db"].touch()

    made = invoke("data", "generate", "--train", "20", "--val", "10", "--test", "10", "--out", root / "ds")
    assert made.exit_code == 0, made.output
    paths["ds"] = root / "ds"
    from csibench.data import load_dataset

    # A checkpoint whose training record names that dataset: what quantised export calibrates on.
    paths["trained"] = save_checkpoint(create_model("crnet-se", cr="1/32", seed=1), root / "trained.safetensors",
                                       training={"method": "vanilla", "data": {"path": str(paths["ds"]),
                                                                               "content_hash": load_dataset(paths["ds"]).content_hash}})

    _studies_and_resume(root, paths)
    _bounded_reads(root, paths)

    # issue 16, validation: the exported .onnx copied without its manifest (a bare file) and .npz references for it
    # whose second array holds NaN / whose input holds Inf (NaN never validates, in any output of any artifact).
    paths["bare_onnx"] = root / "bare" / "colleague.onnx"
    paths["bare_onnx"].parent.mkdir()
    shutil.copy(art, paths["bare_onnx"])
    import numpy as np

    csi = np.full((2, 2, 32, 32), 0.5, np.float32)
    codeword = np.zeros((2, 128), np.float32)
    codeword[1, :3] = np.nan
    np.savez(root / "nan_ref.npz", csi=csi, codeword=codeword)
    paths["nan_npz"] = root / "nan_ref.npz"
    csi_inf = csi.copy()
    csi_inf[0, 0, 0, 0] = np.inf
    np.savez(root / "inf_ref.npz", csi=csi_inf, codeword=np.zeros((2, 128), np.float32))
    paths["inf_npz"] = root / "inf_ref.npz"
    # a zip bomb: 280 MiB of zeros compress to ~0.3 MB; its directory declares the unpacked size, checked before np.load
    np.savez_compressed(root / "bomb_ref.npz", csi=np.zeros((70, 1024, 1024), np.float32))
    paths["bomb_npz"] = root / "bomb_ref.npz"

    paths["victim"] = root / "victim.csv"  # issue 16: a forged report marker names it for deletion
    paths["victim"].write_text("precious\n")
    paths["forged"] = root / "forged-report"
    paths["forged"].mkdir()
    (paths["forged"] / ".csibench-report.json").write_text(json.dumps(
        {"tool": "csibench report", "files": {"../victim.csv": hashlib.sha256(b"precious\n").hexdigest()}}))

    paths["edited_db"] = root / "edited.db"  # issue 16: text in a REAL column (a hand edit quick_check accepts)
    shutil.copy(paths["db"], paths["edited_db"])
    with sqlite3.connect(paths["edited_db"]) as conn:
        conn.execute("UPDATE measurements SET median_s='NaN' WHERE id=1")
    conn.close()

    mounted = []  # mounted last: nothing after this can fail before the teardown unmounts them
    full = root / "full"
    paths["full_skip"] = _mount(full)
    if paths["full_skip"] is None:
        mounted.append(full)
        _fill(full)
    paths["full"] = full
    ro = root / "ro"
    paths["ro_skip"] = _mount(ro, "ro")
    if paths["ro_skip"] is None:
        mounted.append(ro)
    else:  # not root: a directory without write permission (root would bypass it, hence the mount above)
        ro.mkdir()
        ro.chmod(0o555)
        paths["ro_skip"] = None
    paths["ro"] = ro
    yield paths
    for target in mounted:
        subprocess.run(["umount", str(target)], check=False)
    if ro.exists() and not mounted:
        ro.chmod(0o755)


def _studies_and_resume(root: Path, paths: dict) -> None:
    """Study files a CLI flag would refuse, a FIFO and an oversize one, and a database holding a narrowed stored run."""
    from csibench.bench.results import ResultsDB
    from csibench.studies.resume import Overrides, start

    model = '[[models]]\nmodel = "crnet"\n'
    for name, text in {"study_thr": f"threads = 999\n{model}", "study_minmax": f"{model}[measure]\nmin_time = 5\nmax_time = 2\n",
                       "study_seed": f"seed = -1\n{model}", "study_crset": f'{model}crs = ["1/4"]\nset = {{ cr = "1/8" }}\n'}.items():
        paths[name] = root / f"{name}.toml"
        paths[name].write_text(text)
    paths["study_fifo"] = root / "fifo.toml"
    os.mkfifo(paths["study_fifo"])
    paths["study_big"] = root / "big.toml"
    with open(paths["study_big"], "wb") as fh:
        fh.truncate(5 << 20)
    paths["resume_db"] = root / "resume.db"
    study, options, _ = start("seed-004", Overrides(crs=("1/32",), train=False, runtimes=("onnxruntime",)), cache=root / "c",
                              out=root / "rep", report_formats=None)
    with ResultsDB(paths["resume_db"]) as results:
        results.append_study(sweep="seed-004@1", name=study.name, definition=study.to_dict(), options=options.to_dict())
        # A run started without --cache: its default cache is recorded resolved, and another --cache is refused.
        default_study, default_options, _ = start("seed-004", Overrides(train=False), cache=None, out=root / "rep", report_formats=None)
        results.append_study(sweep="seed-004@2", name=default_study.name, definition=default_study.to_dict(),
                             options=default_options.to_dict())
    paths["resume_default_cache"] = Path(str(default_options.cache))
    for name, text in {"study_exec_type": 'workers = "two"', "study_exec_key": "nodes = 2", "study_exec_gpu": 'gpu = "yes"',  # issue 17
                       "study_exec_rayworkers": 'engine = "ray"\nworkers = 2', "study_exec_badaddr": 'engine = "ray"\naddress = "garbage"',
                       "study_exec_addr": 'engine = "local"\naddress = "10.0.0.5:6379"'}.items():
        paths[name] = root / f"{name}.toml"
        paths[name].write_text(f"{model}[execution]\n{text}\n")


def _bounded_reads(root: Path, paths: dict) -> None:
    """Special files where csibench reads a regular file (FIFOs: one with no writer blocks any open of it), files over
    the caps (sparse: no disk used) and a results database with a damaged b-tree page."""
    from tests.test_results_db import corrupt_btree_page

    special = root / "special"
    special.mkdir()

    def fifo(name: str) -> Path:
        os.mkfifo(special / name)
        return special / name

    def sparse(path: Path, size: int) -> Path:
        with open(path, "wb") as fh:
            fh.truncate(size)
        return path

    def beside(name: str, src: Path, suffix: str, make) -> Path:
        """A copy of ``src`` named ``name`` whose ``name + suffix`` companion is ``make(path)``."""
        path = special / name
        shutil.copy(src, path)
        make(path.with_name(path.name + suffix))
        return path

    paths["fifo"] = fifo("pipe.db")
    paths["fifo_onnx"] = fifo("x.onnx")
    paths["fifo_py"] = fifo("model.py")
    paths["big_onnx"] = sparse(special / "big.onnx", (2048 << 20) + 1)
    paths["corrupt_db"] = special / "damaged.db"
    corrupt_btree_page(paths["db"], paths["corrupt_db"])
    paths["fifo_sidecar"] = beside("pipe-cfg.safetensors", paths["ckpt"], ".json", os.mkfifo)
    paths["fifo_ckpt"] = fifo("pipe-weights.safetensors")
    shutil.copy(paths["ckpt"].with_name(paths["ckpt"].name + ".json"), special / "pipe-weights.safetensors.json")
    paths["big_sidecar"] = beside("big-cfg.safetensors", paths["ckpt"], ".json", lambda p: sparse(p, (4 << 20) + 1))
    paths["fifo_manifest"] = beside("pipe-manifest.onnx", paths["art"], ".json", os.mkfifo)
    paths["big_manifest"] = beside("big-manifest.onnx", paths["art"], ".json", lambda p: sparse(p, (4 << 20) + 1))
    shutil.copy(paths["ds"].with_name("ds.safetensors"), special / "pipe-meta.safetensors")
    paths["fifo_meta"] = fifo("pipe-meta.json").with_suffix("")
    shutil.copy(paths["ds"].with_name("ds.json"), special / "pipe-data.json")
    paths["fifo_data"] = fifo("pipe-data.safetensors").with_suffix("")


def _fill_in(text: str, paths: dict) -> str:
    return text.format(**{k: v for k, v in paths.items() if isinstance(v, Path)}) if "{" in text else text


def _temp_files(*roots: Path) -> list[str]:
    found = []
    for root in roots:
        if root.is_dir():
            found += [str(p) for p in root.rglob("*") if ".tmp-" in p.name]
    return found


@pytest.mark.parametrize("row", [pytest.param(r, marks=pytest.mark.xfail(reason=r.xfail)) if r.xfail else r for r in ROWS],
                         ids=[f"{r.kind}-{i:02d}" for i, r in enumerate(ROWS)])
def test_bad_input_is_one_line(row: Row, env, tmp_path, monkeypatch):
    if row.needs == "full" and env["full_skip"]:
        pytest.skip(f"no full-disk test: {env['full_skip']}")
    if row.needs == "ro" and env["ro_skip"]:
        pytest.skip(env["ro_skip"])
    if row.devices is not None:
        monkeypatch.setenv("CSIBENCH_CONFIG_DIR", str(tmp_path))
        (tmp_path / "devices.json").write_bytes(row.devices)
    args = [_fill_in(a, env) for a in row.args]
    guarded = [env["db"]] + ([env[row.guard]] if row.guard else [])
    before = {p: _sha(p) for p in guarded}
    result = invoke(*args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)  # not raised through
    assert_one_line_error(result, row.code, *(_fill_in(f, env) for f in row.fragments))
    assert {p: _sha(p) for p in guarded} == before, "a database given to the command changed"
    assert not _temp_files(env["tmp"], env["full"], env["ro"], env["db"].parent), "temp files left behind"
    if row.needs == "full" and "new.db" in " ".join(args):  # a database it could not create is not left behind empty
        assert not (env["full"] / "new.db").exists()


def test_table_covers_every_class():
    kinds = {r.kind for r in ROWS}
    assert len(ROWS) >= 60
    # issue 16 adds: "special" (a FIFO, a device or a directory where a regular file belongs), "size" (a file over the
    # cap csibench reads whole), "inject" (user strings reaching a report), "resume" (flags that contradict a stored run)
    assert kinds == {"type", "range", "nan", "file", "ro", "proc", "full", "conflict", "config", "special", "size", "inject", "resume"}


def test_full_disk_keeps_the_measurement_and_the_old_report(env):
    """A report that cannot be written leaves the previous one whole; a database on a full disk keeps its rows."""
    if env["full_skip"]:
        pytest.skip(f"no full-disk test: {env['full_skip']}")
    full = env["full"]
    rep = env["tmp"] / "kept-report"
    first = invoke("report", "--db", env["db"], "--out", rep, "--format", "csv,json")  # issue 11: page + figures exceed 64 KiB
    assert first.exit_code == 0, first.output
    before = {p.name: _sha(p) for p in rep.iterdir()}
    # the same report again, onto a disk with no room: staged beside rep, so put rep on the full disk
    os.unlink(full / "filler")
    shutil.copytree(rep, full / "rep")
    _fill(full)
    on_full = {p.name: _sha(p) for p in (full / "rep").iterdir()}
    assert on_full == before
    assert_one_line_error(invoke("report", "--db", env["db"], "--out", full / "rep", "--format", "csv,json"), 1, str(full / "rep"),
                          "no space left")
    assert {p.name: _sha(p) for p in (full / "rep").iterdir()} == before  # the old report, whole
    assert not _temp_files(full)
    shutil.rmtree(full / "rep")


def test_full_disk_keeps_the_database_as_it_was(env, tmp_path):
    """A measurement that cannot be appended to a database on a full disk: one line naming it, every row it held
    kept, byte for byte (SQLite's rollback journal)."""
    if env["full_skip"]:
        pytest.skip(f"no full-disk test: {env['full_skip']}")
    disk = tmp_path / "disk"
    why = _mount(disk, size_k=env["db"].stat().st_size // 1024 + 64)
    if why:
        pytest.skip(why)
    try:
        shutil.copy(env["db"], disk / "kept.db")
        _fill(disk)
        db_before = _sha(disk / "kept.db")
        result = invoke("bench", env["art"], "--db", disk / "kept.db", *FAST)
        assert_one_line_error(result, 1, str(disk / "kept.db"))
        assert _sha(disk / "kept.db") == db_before
        assert not _temp_files(disk)
    finally:
        subprocess.run(["umount", str(disk)], check=False)
