"""train_simple's recipe: setup -> data -> train -> evaluate -> save.

A ground-truth run trains on the first half of the training docs and writes its
predictions on the second half as weak labels. A transfer run trains on such
weak labels. Every check a user can fail runs before anything is written.
"""

from __future__ import annotations

import functools
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

from weak_to_strong import atomic, metrics, results
from weak_to_strong.batching import Examples
from weak_to_strong.checks import check_predictions
from weak_to_strong.config import (ResolvedRun, RunConfig, balance, is_transfer, resolve_run, result_dict,
                                   token_budgets, use_fsdp, with_doc_counts)
from weak_to_strong.datasets import column_list, data_revision, load_dataset
from weak_to_strong.distributed import DataParallel, check_fsdp_optimizer, init_data_parallel
from weak_to_strong.eval import accuracy, eval_token_budget, predict_probs
from weak_to_strong.locks import hold_lock
from weak_to_strong.logger import NullLogger, make_run_logger
from weak_to_strong.lora import add_lora
from weak_to_strong.loss import check_train_size, make_loss
from weak_to_strong.model import load_model, load_tokenizer, model_context
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


def find_weak_labels(run: ResolvedRun) -> Path:
    """The weak labels a transfer run trains on; a ValueError says which run to do first."""
    cfg = run.config
    if cfg.weak_labels_path is not None:
        path = Path(cfg.weak_labels_path)
        if not path.is_dir():
            raise ValueError(f"--weak_labels_path={cfg.weak_labels_path!r} does not exist")
        check_weak_labels_dataset(path, cfg.ds_name)
        return path
    path = results.weak_labels_dir(run.weak)
    if not path.is_dir():
        sync(cfg, "download", path.parent)
    if not path.is_dir():
        raise ValueError(
            f"no weak labels at {str(path)!r}; run the ground-truth run first: "
            f"python train_simple.py --model_size={cfg.weak_model_size} --ds_name={cfg.ds_name} (with the same flags)"
        )
    if not results.is_finished(path.parent):
        raise ValueError(
            f"the ground-truth run {str(path.parent)!r} has weak labels but no {results.SUMMARY_FILE} (was it "
            f"killed?); finish it first: python train_simple.py --model_size={cfg.weak_model_size} "
            f"--ds_name={cfg.ds_name} (with the same flags)"
        )
    return path


def check_weak_labels_dataset(path: Path, ds_name: str) -> None:
    """Weak labels of another dataset would train silently on the wrong texts: compare the recorded ds_name."""
    config = path.parent / results.CONFIG_FILE
    if not config.exists():
        return  # labels written elsewhere (e.g. by the reference code): nothing recorded to compare
    recorded = results.read_json_file(config).get("ds_name")
    if recorded is not None and recorded != ds_name:
        raise ValueError(f"--weak_labels_path={str(path)!r} holds weak labels of {recorded!r} (its run's "
                         f"{results.CONFIG_FILE}), not of --ds_name={ds_name!r}")


def load_splits(cfg: RunConfig) -> dict:
    """The run's formatted (untokenized) train and test documents."""
    return load_dataset(cfg.ds_name, seed=cfg.seed, data_dir=cfg.data_dir, balance=balance(cfg),
                        split_sizes={"train": cfg.n_docs, "test": cfg.n_test_docs})


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


def load_run_data(cfg: RunConfig, splits: dict, tokenizer, max_ctx: int, weak_labels: Path | None) -> RunData:
    if weak_labels is not None:
        train, to_label = results.load_weak_labels(weak_labels), None
    else:
        halves = splits["train"].train_test_split(test_size=0.5, seed=cfg.seed)
        train, to_label = halves["train"], halves["test"]
    data = RunData(*(None if ds is None else tokenize_cached(ds, tokenizer, max_ctx)
                     for ds in (train, splits["test"], to_label)))
    for name, ds in (("train", data.train), ("test", data.test)):
        if len(ds) == 0:
            raise ValueError(f"no {name} docs of {cfg.ds_name!r} are left after the max_ctx={max_ctx} token filter")
    for name, ds in (("train", data.train), ("test", data.test), ("to label", data.to_label)):
        check_no_empty_documents(ds, f"{cfg.ds_name!r} ({name})", cfg.model_size)
    count_steps(len(data.train), cfg.batch_size, cfg.epochs)  # at least one full batch, else a ValueError now
    check_train_size(cfg.loss, len(data.train))
    if weak_labels is not None:
        data.weak_predictions = results.read_predictions(Path(weak_labels).parent)
    return data


def check_no_empty_documents(ds, what: str, model_size: str) -> None:
    """A document the tokenizer turns into no tokens has no last token to classify from."""
    import pyarrow.compute as pc

    if ds is None or len(ds) == 0:
        return
    first = pc.index(pc.list_value_length(ds.with_format("arrow")["input_ids"]), 0).as_py()
    if first >= 0:
        raise ValueError(f"document {first} of {what}, {ds[first]['txt']!r}, has no tokens for {model_size!r}'s "
                         "tokenizer; remove empty documents from the dataset")


def make_weak_labels(to_label, probs: torch.Tensor):
    """The labelled half, with the weak model's soft and hard labels and the ground truth kept as gt_label."""
    from datasets import Dataset

    columns = {c: column_list(to_label, c) for c in ("id", "txt") if c in to_label.column_names}
    return Dataset.from_dict({**columns, "soft_label": probs.tolist(), "hard_label": probs.argmax(dim=-1).tolist(),
                              "gt_label": column_list(to_label, "hard_label")})


def run_train_simple(cfg: RunConfig) -> dict:
    """Train (or reuse) one run and return its results summary.

    Bad input fails before anything is written. The run's lock is then held from a second finished
    check to the upload: a process starting a run that another process is running waits, finds it
    finished and reuses it, and never empties a finished folder. Under torchrun every rank trains its
    share; only rank 0 prints, locks and writes.
    """
    dp = init_data_parallel()
    results.check_folder_path(cfg.results_folder)
    check_sync_program(cfg)
    # The documents first: the run's name counts the documents the dataset gives, and a bad dataset fails
    # in seconds, before anything is written or a large model loads. Rank 0 downloads first.
    splits = dp.main_first(lambda: load_splits(cfg))
    cfg = resolve_doc_counts(cfg, splits, announce=dp.is_main)
    # Resolved once, for this device and model (rank 0 builds a toy model's files first): its identity names
    # the folder and is config.json, and the run uses exactly what it says.
    run = dp.main_first(lambda: resolve_run(cfg, device_kind(dp.device), model_context))
    run_path = results.run_dir(run)
    summary = reusable_summary(cfg, run_path, dp)
    if summary is None:
        return train_run(run, splits, run_path, dp)
    if dp.is_main and not results.is_done(run_path, not is_transfer(cfg), cfg.sync_command):
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
    if cfg.force_retrain or not results.is_finished(run_path):
        return None
    if not results.is_done(run_path, ground_truth=not is_transfer(cfg)):
        if dp.is_main and not quiet:
            print(f"{run_path} is finished but its weak labels are missing: training it again")
        return None
    summary = results.read_summary(run_path)
    if dp.is_main:
        print(f"skipping {run_path} (finished; --force_retrain to redo): accuracy {summary['accuracy']:.4f}")
    return summary


def train_run(run: ResolvedRun, splits: dict, run_path: Path, dp: DataParallel) -> dict:
    """Every check a user can fail, then the model, then an emptied run folder, training and the results."""
    cfg = run.config
    weak_labels = dp.main_first(lambda: find_weak_labels(run)) if is_transfer(cfg) else None
    config = result_dict(run)
    revision = data_revision(cfg.ds_name, cfg.data_dir)
    if revision is not None:
        config["data_revision"] = revision  # provenance only: not in the folder name
    fsdp = use_fsdp(cfg) and dp.world_size > 1
    if fsdp:
        check_fsdp_optimizer(cfg.optim)
    spec = get_model_spec(cfg.model_size)
    seed_everything(cfg.seed)
    # Rank 0 fetches (or builds) the model files first; the other ranks then find them in place.
    tokenizer = dp.main_first(lambda: load_tokenizer(spec))
    # The data before the weights: a bad dataset or path fails in seconds, not after a large model loads.
    # Rank 0 tokenizes into the shared cache first; the other ranks then read it.
    data = dp.main_first(lambda: load_run_data(cfg, splits, tokenizer, cfg.max_ctx, weak_labels))
    model = load_model(spec, dp.device, linear_probe=cfg.linear_probe, gradient_checkpointing=cfg.gradient_checkpointing,
                       load_device=dp.load_device(fsdp))
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


def train_in_empty_folder(model, data: RunData, cfg: RunConfig, pad_id: int, dp: DataParallel, run_path: Path,
                          config: dict) -> dict:
    """`cfg`: the resolved run's config (`ResolvedRun.config`)."""
    if dp.is_main:
        results.reset_run_dir(run_path)
        atomic.write_json(run_path / results.CONFIG_FILE, config)
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
                             epochs=cfg.epochs, lr=cfg.lr, optim=cfg.optim, lr_schedule=cfg.lr_schedule, seed=cfg.seed,
                             train_with_dropout=cfg.train_with_dropout, eval_every=cfg.eval_every,
                             precision=cfg.precision, minibatch_token_budget=minibatch_tokens, pack=cfg.pack)
    logger.log({"precision": cfg.precision, "device": str(device)})
    start = time.time()
    train_model(model, train_ex, make_loss(cfg.loss), settings, device, pad_id, logger, evaluate, dp)
    test_probs = predict(test_ex)  # kept: agreement with the weak model is measured on them
    check_predictions(test_probs, "test predictions")
    final = {"eval_accuracy": accuracy(test_probs, test_ex.labels)}
    logger.log({"final": True, "train_seconds": time.time() - start, **final})
    if data.to_label is not None:
        to_label = Examples.from_dataset(data.to_label)
        probs = predict(to_label, desc="weak labels")
        check_predictions(probs, "weak labels")
        if dp.is_main:
            results.save_weak_labels(make_weak_labels(data.to_label, probs), run_path / results.WEAK_LABELS_DIR)
    if cfg.save_model:
        state = dp.full_state_dict(model)  # a collective under FSDP
        if dp.is_main:
            results.save_state_dict(state, run_path / results.MODEL_FILE)
    predictions = {"id": column_list(data.test, "id"), "prob": test_probs[:, 1].tolist(),
                   "label": column_list(data.test, "hard_label")}
    summary = {"accuracy": final["eval_accuracy"], **metrics.summary_metrics(predictions, data.weak_predictions)}
    if dp.is_main:
        results.write_predictions(run_path, predictions["id"], predictions["prob"], predictions["label"])
        atomic.write_json(run_path / results.SUMMARY_FILE, summary)
    dp.barrier()  # the run is finished for every rank once rank 0 has written it
    return summary
