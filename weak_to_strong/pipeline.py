"""train_simple's recipe: setup -> data -> train -> evaluate -> save.

A ground-truth run trains on the first half of the training docs and writes its
predictions on the second half as weak labels. A transfer run trains on such
weak labels (or the mean of several runs' labels: `average_weak_labels`); a link
of a bootstrapping chain trains on one slice of them and labels the next
(`label_slices`), as does a strong-to-strong round. Every check a user can fail runs before
anything is written.
"""

from __future__ import annotations

import functools
import math
import random
import shlex
import shutil
import subprocess
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from weak_to_strong import atomic, metrics, readers, results
from weak_to_strong.batching import Examples
from weak_to_strong.checks import check_predictions
from weak_to_strong.config import (ResolvedRun, RunConfig, balance, check_runnable, hands_on_labels, is_transfer,
                                   label_slice, read_weak_labels_config, resolve_run, result_dict, stratify,
                                   token_budgets, training_seed, use_fsdp, with_doc_counts, writes_weak_labels)
from weak_to_strong.datasets import column_list, data_revision, get_dataset_spec, load_dataset, split_in_halves
from weak_to_strong.distributed import DataParallel, check_fsdp_optimizer, init_data_parallel
from weak_to_strong.eval import accuracy, eval_token_budget, predict_probs
from weak_to_strong.locks import hold_lock
from weak_to_strong.logger import NullLogger, make_run_logger
from weak_to_strong.lora import add_lora
from weak_to_strong.loss import check_train_size, make_loss
from weak_to_strong.model import load_causal_lm, load_model, load_tokenizer, model_context, wrap_backbone
from weak_to_strong.models import get_model_spec
from weak_to_strong.precision import device_kind
from weak_to_strong.token_cache import tokenize_cached
from weak_to_strong.train import TrainSettings, count_steps, train_model


@dataclass
class RunData:
    train: object  # datasets.Dataset, formatted and tokenized
    test: object
    to_label: object | None  # second half of the training docs (ground-truth runs)
    weak_predictions: dict | None = None
    """A transfer run's weak run's test predictions (agreement with the supervisor), where that run kept them."""
    weak_val: object | None = None
    """--early_stop: the held-out share of the weak labels that picks the checkpoint."""
    unsup_losses: list[float] | None = None
    """--unsup_epochs: the causal-LM loss of every step of the unsupervised pass (logged with the run)."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def sync(cfg: RunConfig, verb: str, path: Path) -> None:
    """`sync_command download|upload PATH RESULTS_FOLDER`, e.g. to a bucket shared by a cluster."""
    if cfg.sync_command:
        cmd = shlex.split(cfg.sync_command) + [verb, str(path), cfg.results_folder]
        subprocess.run(cmd, check=True)


def check_sync_program(cfg: RunConfig) -> None:
    """A missing sync program fails before training, not after."""
    if cfg.sync_command:
        words = shlex.split(cfg.sync_command)
        if not words or shutil.which(words[0]) is None:
            raise ValueError(f"--sync_command={cfg.sync_command!r}: {words[0] if words else ''!r} is not a program "
                             "on PATH")


def upload_run(cfg: RunConfig, run_path: Path) -> None:
    """Upload a finished run once per sync command; a failed upload is retried by the next invocation."""
    if not cfg.sync_command or results.uploaded_with(run_path) == cfg.sync_command:
        return
    try:
        sync(cfg, "upload", run_path)
    except subprocess.CalledProcessError as e:
        raise ValueError(f"{run_path} is finished, but its upload failed (--sync_command exited with status "
                         f"{e.returncode}); rerun the same command to retry the upload") from None
    results.mark_uploaded(run_path, cfg.sync_command)


def find_all_weak_labels(run: ResolvedRun) -> list[Path]:
    """The weak labels a transfer run trains on: one run's, or each member's of a weak ensemble."""
    cfg = run.config
    if run.members:
        return [find_weak_labels(cfg, member) for member in run.members]
    if hands_on_labels(cfg) and label_slice(cfg)[0] > 1:
        # The documents it labels for the next run come from the series' ground-truth run (downloaded with
        # --sync_command where missing, like any weak labels).
        find_weak_labels(cfg, run.series_root())
    return [find_weak_labels(cfg, run.weak)]


def find_weak_labels(cfg: RunConfig, weak: ResolvedRun | None) -> Path:
    """The weak labels a transfer run trains on (`weak`: the resolved run that wrote them); a ValueError says
    which run to do first."""
    if cfg.weak_labels_path is not None:
        path = Path(cfg.weak_labels_path)
        if not path.is_dir():
            raise ValueError(f"--weak_labels_path={cfg.weak_labels_path!r} does not exist")
        check_weak_labels_dataset(path, cfg.ds_name)
        return path
    weak_cfg = weak.config
    path = results.weak_labels_dir(weak)
    if not path.is_dir():
        sync(cfg, "download", path.parent)
    if not path.is_dir():
        raise ValueError(f"no weak labels at {str(path)!r}; run the {describe_run(weak_cfg)} first: "
                         f"{rerun_command(weak_cfg)}")
    if not readers.is_finished(path.parent):
        raise ValueError(f"the {describe_run(weak_cfg)} {str(path.parent)!r} has weak labels but no "
                         f"{readers.SUMMARY_FILE} (was it killed?); finish it first: {rerun_command(weak_cfg)}")
    return path


def rerun_command(weak_cfg: RunConfig) -> str:
    """The train_simple.py command of the run whose labels are missing (beyond the flags the runs share)."""
    flags = "".join(f" --{name}={getattr(weak_cfg, name)}"
                    for name in ("weak_model_size", "train_seed", "s2s_round", "s2s_total")
                    if getattr(weak_cfg, name) is not None)
    shared = " (with the same flags, and --bootstrap_chain)" if weak_cfg.bootstrap_chain else " (with the same flags)"
    return f"python train_simple.py --model_size={weak_cfg.model_size} --ds_name={weak_cfg.ds_name}{flags}{shared}"


def describe_run(cfg: RunConfig) -> str:
    if cfg.bootstrap_chain:
        return "bootstrapping link before"
    return "strong-to-strong round before" if cfg.s2s_round is not None else "ground-truth run"


def check_weak_labels_dataset(path: Path, ds_name: str) -> None:
    """Weak labels of another dataset would train silently on the wrong texts: compare the recorded ds_name."""
    recorded = read_weak_labels_config(str(path)).get("ds_name")  # None: written elsewhere, nothing to compare
    if recorded is not None and recorded != ds_name:
        raise ValueError(f"--weak_labels_path={str(path)!r} holds weak labels of {recorded!r} (its run's "
                         f"{readers.CONFIG_FILE}), not of --ds_name={ds_name!r}")


def load_splits(cfg: RunConfig) -> dict:
    """The run's formatted (untokenized) train and test documents.

    A built-in dataset's splits are kept for the rest of the process: its rows are fixed by code, and
    the runs of a serial sweep (and its planning) load the same seed's splits over and over (~0.03 s
    each, a tenth of a testbed run). Datasets read from files or the hub are read again every time, so
    a file changed between runs is never served stale."""
    key = (cfg.ds_name, cfg.seed, cfg.data_dir, balance(cfg), cfg.n_docs, cfg.n_test_docs)
    if get_dataset_spec(cfg.ds_name).generator is not None:
        return dict(load_built_in_splits(*key))  # a fresh dict: callers may replace a split
    return read_splits(*key)


def read_splits(ds_name: str, seed: int, data_dir: str | None, balanced: bool, n_docs: int,
                n_test_docs: int) -> dict:
    return load_dataset(ds_name, seed=seed, data_dir=data_dir, balance=balanced,
                        split_sizes={"train": n_docs, "test": n_test_docs})


load_built_in_splits = functools.lru_cache(maxsize=32)(read_splits)
"""`read_splits`, kept per process for the built-in (generated) datasets; Dataset objects are immutable."""


@functools.lru_cache(maxsize=None)
def announce_doc_count(ds_name: str, flag: str, asked: int, used: int, what: str) -> None:
    """Once per process: a sweep's runs all hear it otherwise."""
    print(f"dataset {ds_name!r} gives {used} {what} documents, fewer than --{flag}={asked}: the runs use all "
          f"{used} and are named after them")


def resolve_doc_counts(cfg: RunConfig, splits: dict | None = None, announce: bool = True) -> RunConfig:
    """The config with n_docs / n_test_docs lowered to what the dataset gives (see `with_doc_counts`): the
    counts the run's folder is named after. Loads the documents unless given them."""
    splits = load_splits(cfg) if splits is None else splits
    resolved = with_doc_counts(cfg, len(splits["train"]), len(splits["test"]))
    if announce:
        for flag, asked, used, what in (("n_docs", cfg.n_docs, resolved.n_docs, "training"),
                                        ("n_test_docs", cfg.n_test_docs, resolved.n_test_docs, "test")):
            if used < asked:
                announce_doc_count(cfg.ds_name, flag, asked, used, what)
    return resolved


def load_run_data(cfg: RunConfig, splits: dict, tokenizer, max_ctx: int, weak_labels: list[Path] | None,
                  series_labels: Path | None = None) -> RunData:
    """`series_labels`: for a series' run that labels for the next, its ground-truth run's weak labels."""
    if weak_labels is not None:
        train = average_weak_labels([results.load_weak_labels(path) for path in weak_labels], weak_labels)
        to_label = None
        if label_slice(cfg) is not None:
            train, to_label = label_slices(cfg, train, series_labels)
    else:
        train, to_label = split_in_halves(splits["train"], cfg.seed, stratify(cfg))
    weak_val = None
    if cfg.early_stop is not None:
        if len(train) < 2:
            raise ValueError(f"--early_stop={cfg.early_stop}: {len(train)} weak label(s) cannot be split into "
                             "training and validation")
        parts = train.train_test_split(test_size=cfg.early_stop, seed=cfg.seed)
        train, weak_val = parts["train"], parts["test"]
    data = RunData(*(None if ds is None else tokenize_cached(ds, tokenizer, max_ctx)
                     for ds in (train, splits["test"], to_label)))
    data.weak_val = None if weak_val is None else tokenize_cached(weak_val, tokenizer, max_ctx)
    for name, ds in (("train", data.train), ("test", data.test), ("weak validation", data.weak_val)):
        if ds is not None and len(ds) == 0:
            raise ValueError(f"no {name} docs of {cfg.ds_name!r} are left after the max_ctx={max_ctx} token filter")
    for name, ds in (("train", data.train), ("test", data.test), ("to label", data.to_label),
                     ("weak validation", data.weak_val)):
        check_no_empty_documents(ds, f"{cfg.ds_name!r} ({name})", cfg.model_size)
    count_steps(len(data.train), cfg.batch_size, cfg.epochs)  # at least one full batch, else a ValueError now
    check_train_size(cfg.loss, len(data.train))
    if weak_labels is not None:  # a weak ensemble's first member stands for it (as in config.json)
        data.weak_predictions = readers.read_predictions(Path(weak_labels[0]).parent)
    return data


def average_weak_labels(members: list, paths: list[Path]):
    """One run's weak labels as they are; several runs' (a weak ensemble) as the mean of their soft labels,
    hard labels their argmax. The members labelled the same documents (same --seed, so the same halves),
    which is checked by id."""
    if len(members) == 1:
        return members[0]
    first = members[0]
    for ds, path in zip(members[1:], paths[1:]):
        if column_list(ds, "id") != column_list(first, "id"):
            raise ValueError(f"the weak ensemble's members labelled different documents: {str(path)!r} and "
                             f"{str(paths[0])!r} (members must share every flag but the model and --train_seed)")
    mean = torch.tensor([column_list(ds, "soft_label") for ds in members], dtype=torch.float64).mean(dim=0)
    return first.remove_columns(["soft_label", "hard_label"]).add_column("soft_label", mean.tolist()) \
        .add_column("hard_label", mean.argmax(dim=-1).tolist())


def label_slices(cfg: RunConfig, weak_labels, series_labels: Path | None):
    """The training set of a run in a series that passes labels on (the links of a bootstrapping chain, or
    strong-to-strong rounds 0..K), and the documents it labels for the next (None for the series' last run).

    The series' weak model's ground-truth run labels the held-out half of the training documents. That half,
    in its saved order, is cut into as many contiguous slices as the series has runs: run k trains on
    slice k (labelled by the weak model for k = 1, else by run k - 1) and labels slice k + 1. So no run
    labels a document it trained on, every run trains on the same number of documents, and none sees the
    weak model's training half or the test set. (Direct weak-to-strong transfer trains on the whole half.)
    """
    hop, links = label_slice(cfg)
    if hop == 1:
        train = weak_labels.shard(num_shards=links, index=0, contiguous=True)
    else:
        train = weak_labels  # the run before labelled exactly slice `hop` of the weak model's half
    if not hands_on_labels(cfg):
        return train, None
    # The series' ground-truth run's labels (`ResolvedRun.series_root`): for the first run, those it trains on.
    held_out = weak_labels if hop == 1 else results.load_weak_labels(series_labels)
    to_label = held_out.shard(num_shards=links, index=hop, contiguous=True)
    # The next link's documents with their ground truth as labels, as a ground-truth run's to-label half has.
    truth = column_list(to_label, "gt_label")
    to_label = to_label.remove_columns(["soft_label", "hard_label", "gt_label"])
    to_label = to_label.add_column("hard_label", truth).add_column("soft_label", [[1.0 - y, float(y)] for y in truth])
    return train, to_label


@dataclass
class BestCheckpoint:
    """Early stopping: the weights, at the ends of epochs, with the lowest loss on the held-out weak labels."""
    loss: float = math.inf
    epoch: int | None = None
    state: dict | None = None


def weak_label_loss(probs: torch.Tensor, soft_labels: torch.Tensor) -> float:
    """Cross-entropy of predictions against (held-out) weak soft labels: early stopping's criterion."""
    return -(soft_labels * probs.double().clamp_min(1e-12).log()).sum(-1).mean().item()


def early_stopping(model, val_ex: Examples, predict, logger) -> tuple:
    """The `after_epoch` hook that keeps the best checkpoint (on the CPU), and that checkpoint."""
    best = BestCheckpoint()

    def after_epoch(epoch: int) -> None:
        loss = weak_label_loss(predict(val_ex, "weak val"), val_ex.labels)
        logger.log({"epoch": epoch, "weak_val_loss": loss})
        if loss < best.loss:  # ties keep the earlier checkpoint
            best.loss, best.epoch = loss, epoch
            best.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    return after_epoch, best


def check_no_empty_documents(ds, what: str, model_size: str) -> None:
    """A document the tokenizer turns into no tokens has no last token to classify from."""
    import pyarrow.compute as pc

    if ds is None or len(ds) == 0:
        return
    first = pc.index(pc.list_value_length(ds.with_format("arrow")["input_ids"]), 0).as_py()
    if first >= 0:
        raise ValueError(f"document {first} of {what}, {ds[first]['txt']!r}, has no tokens for {model_size!r}'s "
                         "tokenizer; remove empty documents from the dataset")


def make_weak_labels(to_label, probs: torch.Tensor, gt_labels: list[int]):
    """The labelled half, with the weak model's soft and hard labels and the ground truth kept as gt_label."""
    from datasets import Dataset

    columns = {c: column_list(to_label, c) for c in ("id", "txt") if c in to_label.column_names}
    return Dataset.from_dict({**columns, "soft_label": probs.tolist(), "hard_label": probs.argmax(dim=-1).tolist(),
                              "gt_label": gt_labels})


def run_train_simple(cfg: RunConfig, splits: dict | None = None) -> dict:
    """Train (or reuse) one run and return its results summary.

    Bad input fails before anything is written. The run's lock is then held from a second finished
    check to the upload: a process starting a run that another process is running waits, finds it
    finished and reuses it, and never empties a finished folder. Under torchrun every rank trains its
    share; only rank 0 prints, locks and writes. `splits`: the run's documents (`load_splits`), where the
    caller has them already (train_weak_to_strong's stages share one dataset).
    """
    dp = init_data_parallel()
    check_runnable(cfg)
    results.check_folder_path(cfg.results_folder)
    check_sync_program(cfg)
    # The documents first: the run's name counts the documents the dataset gives, and a bad dataset fails
    # in seconds, before anything is written or a large model loads. Rank 0 downloads first.
    if splits is None:
        splits = dp.main_first(lambda: load_splits(cfg))
    cfg = resolve_doc_counts(cfg, splits, announce=dp.is_main)
    # Resolved once, for this device and model (rank 0 builds a toy model's files first): its identity names
    # the folder and is config.json, and the run uses exactly what it says.
    run = dp.main_first(lambda: resolve_run(cfg, device_kind(dp.device), model_context))
    run_path = results.run_dir(run)
    summary = reusable_summary(cfg, run_path, dp)
    if summary is None:
        return train_run(run, splits, run_path, dp)
    if dp.is_main and not results.is_done(run_path, writes_weak_labels(cfg), cfg.sync_command):
        with hold_run_lock(run_path, dp):
            upload_run(cfg, run_path)
    return summary


@contextmanager
def hold_run_lock(run_path: Path, dp: DataParallel):
    """Rank 0 takes the lock (waiting for another process that holds it) before any rank looks at the folder."""
    with ExitStack() as stack:
        waiting = f"waiting for another process that is running {run_path} (lock {results.run_lock_path(run_path)})"
        dp.main_first(lambda: stack.enter_context(hold_lock(results.run_lock_path(run_path), waiting))
                      if dp.is_main else None)
        yield


def reusable_summary(cfg: RunConfig, run_path: Path, dp: DataParallel, quiet: bool = False) -> dict | None:
    """The summary of an earlier finished run of this config, or None when it must (re)train."""
    if cfg.force_retrain or not readers.is_finished(run_path):
        return None
    if not results.is_done(run_path, ground_truth=writes_weak_labels(cfg)):
        if dp.is_main and not quiet:
            print(f"{run_path} is finished but its weak labels are missing: training it again")
        return None
    summary = readers.read_summary(run_path)
    if dp.is_main:
        print(f"skipping {run_path} (finished; --force_retrain to redo): accuracy {summary['accuracy']:.4f}")
    return summary


def train_run(run: ResolvedRun, splits: dict, run_path: Path, dp: DataParallel) -> dict:
    """Every check a user can fail, then the model, then an emptied run folder, training and the results."""
    cfg = run.config
    weak_labels = dp.main_first(lambda: find_all_weak_labels(run)) if is_transfer(cfg) else None
    # A series' run that labels for the next slices its ground-truth run's labels (`label_slices`).
    series_labels = results.weak_labels_dir(run.series_root()) if hands_on_labels(cfg) else None
    config = result_dict(run)
    revision = data_revision(cfg.ds_name, cfg.data_dir)
    if revision is not None:
        config["data_revision"] = revision  # provenance only: not in the folder name
    fsdp = use_fsdp(cfg) and dp.world_size > 1
    if fsdp:
        check_fsdp_optimizer(cfg.optim)
    spec = get_model_spec(cfg.model_size)
    seed_everything(training_seed(cfg))
    # Rank 0 fetches (or builds) the model files first; the other ranks then find them in place.
    tokenizer = dp.main_first(lambda: load_tokenizer(spec))
    # The data before the weights: a bad dataset or path fails in seconds, not after a large model loads.
    # Rank 0 tokenizes into the shared cache first; the other ranks then read it.
    data = dp.main_first(lambda: load_run_data(cfg, splits, tokenizer, cfg.max_ctx, weak_labels, series_labels))
    if cfg.unsup_epochs:
        model = load_unsup_finetuned(cfg, spec, data, tokenizer.pad_token_id, dp, fsdp)
    else:
        model = load_model(spec, dp.device, linear_probe=cfg.linear_probe,
                           gradient_checkpointing=cfg.gradient_checkpointing, load_device=dp.load_device(fsdp))
    model = add_lora(model, cfg.lora_rank)
    if cfg.compile:
        model.backbone.compile(dynamic=True)  # in place: parameter names and the saved state_dict stay the same
    model = dp.wrap(model, fsdp=fsdp)

    with hold_run_lock(run_path, dp):
        summary = reusable_summary(cfg, run_path, dp, quiet=True)  # finished meanwhile by another process?
        if summary is None:
            summary = train_in_empty_folder(model, data, cfg, tokenizer.pad_token_id, dp, run_path, config)
        if dp.is_main:
            upload_run(cfg, run_path)
    return summary


def load_unsup_finetuned(cfg: RunConfig, spec, data: RunData, pad_id: int, dp: DataParallel, fsdp: bool):
    """The model after a causal-LM pass over the run's training texts (`unsupervised.train_causal_lm`), with the
    classification head on its backbone. Every rank makes the same pass (DDP then starts from rank 0's
    weights); under FSDP the pass runs unsharded, so the model must fit one device. `cfg`: the resolved run's
    config (defaults and precision filled in)."""
    from weak_to_strong.unsupervised import train_causal_lm

    lm = load_causal_lm(spec, dp.device)
    minibatch = cfg.minibatch_size_per_device or spec.minibatch_size
    data.unsup_losses = train_causal_lm(lm, Examples.from_dataset(data.train), cfg.unsup_epochs, cfg.batch_size,
                                        minibatch, cfg.lr, dp.device, pad_id, training_seed(cfg),
                                        cfg.precision, cfg.optim)
    use_ckpt = spec.gradient_checkpointing if cfg.gradient_checkpointing is None else cfg.gradient_checkpointing
    return wrap_backbone(lm.base_model, dp.load_device(fsdp), linear_probe=cfg.linear_probe,
                         gradient_checkpointing=use_ckpt)


def train_in_empty_folder(model, data: RunData, cfg: RunConfig, pad_id: int, dp: DataParallel, run_path: Path,
                          config: dict) -> dict:
    """`cfg`: the resolved run's config (`ResolvedRun.config`)."""
    if dp.is_main:
        results.reset_run_dir(run_path)
        atomic.write_json(run_path / readers.CONFIG_FILE, config)
    logger = make_run_logger(run_path / results.LOG_FILE, cfg.log_prefix + run_path.name, config) \
        if dp.is_main else NullLogger()
    try:
        summary = train_and_evaluate(model, data, cfg, pad_id, dp, logger, run_path)
    finally:
        logger.close()
    if dp.is_main:
        print(f"{run_path}: accuracy {summary['accuracy']:.4f}")
    return summary


def train_and_evaluate(model, data: RunData, cfg: RunConfig, pad_id: int, dp: DataParallel, logger,
                       run_path: Path) -> dict:
    """Train, evaluate, label the held-out half; every rank computes, rank 0 writes."""
    train_ex, test_ex = Examples.from_dataset(data.train), Examples.from_dataset(data.test)
    device = dp.device
    minibatch_tokens, eval_tokens = token_budgets(cfg)
    eval_tokens = eval_token_budget(eval_tokens, dp.unwrap(model).backbone.config.hidden_size, device)
    eval_batch = get_model_spec(cfg.model_size).eval_batch_size

    def predict(examples: Examples, desc: str = "eval") -> torch.Tensor:
        return predict_probs(model, examples, eval_batch, device, pad_id, desc, cfg.precision, eval_tokens, dp)

    def evaluate() -> dict:
        return {"eval_accuracy": accuracy(predict(test_ex), test_ex.labels)}

    settings = TrainSettings(batch_size=cfg.batch_size, minibatch_size=cfg.minibatch_size_per_device,
                             epochs=cfg.epochs, lr=cfg.lr, optim=cfg.optim, lr_schedule=cfg.lr_schedule,
                             seed=training_seed(cfg),
                             train_with_dropout=cfg.train_with_dropout, eval_every=cfg.eval_every,
                             precision=cfg.precision, minibatch_token_budget=minibatch_tokens, pack=cfg.pack)
    logger.log({"precision": cfg.precision, "device": str(device)})
    for step, loss in enumerate(data.unsup_losses or [], 1):
        logger.log({"unsup_step": step, "lm_loss": loss})
    start = time.time()
    val_ex = None if data.weak_val is None else Examples.from_dataset(data.weak_val)
    after_epoch, best = (None, None) if val_ex is None else early_stopping(model, val_ex, predict, logger)
    train_model(model, train_ex, make_loss(cfg.loss), settings, device, pad_id, logger, evaluate, dp, after_epoch)
    if best is not None:
        model.load_state_dict(best.state)
        # Measured again on the restored weights: the log shows the checkpoint really came back.
        logger.log({"early_stop_epoch": best.epoch,
                    "weak_val_loss_restored": weak_label_loss(predict(val_ex, "weak val"), val_ex.labels)})
    test_probs = predict(test_ex)  # kept: agreement with the weak model is measured on them
    check_predictions(test_probs, "test predictions")
    final = {"eval_accuracy": accuracy(test_probs, test_ex.labels)}
    logger.log({"final": True, "train_seconds": time.time() - start, **final})
    labels_shift = {}
    if data.to_label is not None:
        to_label = Examples.from_dataset(data.to_label)
        probs = predict(to_label, desc="weak labels")
        check_predictions(probs, "weak labels")
        # How far the labels' class prior is from the truth: a student that learns little more than the prior
        # from them inherits this shift (the testbed report's third table).
        gt_labels = column_list(data.to_label, "hard_label")
        shift = metrics.prior_shift(probs[:, 1].tolist(), gt_labels)
        labels_shift = {} if math.isnan(shift) else {"weak_labels_prior_shift": shift}
        if dp.is_main:
            results.save_weak_labels(make_weak_labels(data.to_label, probs, gt_labels),
                                     run_path / results.WEAK_LABELS_DIR)
    if cfg.save_model:
        state = dp.full_state_dict(model)  # a collective under FSDP
        if dp.is_main:
            results.save_state_dict(state, run_path / results.MODEL_FILE)
    predictions = {"id": column_list(data.test, "id"), "prob": test_probs[:, 1].tolist(),
                   "label": column_list(data.test, "hard_label")}
    summary = {"accuracy": final["eval_accuracy"], **metrics.summary_metrics(predictions, data.weak_predictions),
               **labels_shift}
    if best is not None:
        summary["early_stop_epoch"] = best.epoch
    if dp.is_main:
        results.write_predictions(run_path, predictions["id"], predictions["prob"], predictions["label"])
        atomic.write_json(run_path / readers.SUMMARY_FILE, summary)
    dp.barrier()  # the run is finished for every rank once rank 0 has written it
    return summary
