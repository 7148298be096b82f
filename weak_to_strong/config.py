"""The run config: its fields, which of them affect results, validation, defaults and resolution.

Fields with a `short` key affect results: they go into config.json and the run
folder's name, as `resolve_run` resolves them for the device the run runs on
(defaults filled in, a concrete precision, the max_ctx the model allows). The others (where results go, how work is chunked, whether to
retrain) cannot change a run's results and are left out of both. A result field
added after run folders were first named (`omit_if`) is left out of both while it
holds the value every earlier run had, so earlier runs keep their folders.

Config knows no trainer: it imports neither torch nor the modules that train (names of losses and
schedules come from names.py), so a sweep plans runs, and analysis reads them, without either
(tests/test_layers.py). Only `resolve_here`, which asks this machine for its device, imports torch.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

from weak_to_strong.datasets import get_dataset_spec
from weak_to_strong.models import OPTIMIZERS, get_model_spec
from weak_to_strong.names import LOSS_NAMES, LR_SCHEDULE_NAMES
from weak_to_strong.precision import DeviceKind, check_precision, device_kind, resolve_precision


NOT_OMITTED = object()


def result_field(default, short: str, omit_if=NOT_OMITTED):
    """A field that affects results; `short` names it in run folder names. `omit_if`: the value every run had
    before the field existed; config.json and the folder name leave the field out while it holds it."""
    metadata = {"short": short} if omit_if is NOT_OMITTED else {"short": short, "omit_if": omit_if}
    return field(default=default, metadata=metadata)


@dataclass
class RunConfig:
    """One train_simple.py run. Names and defaults follow the reference implementation."""

    batch_size: int = result_field(32, "bs")
    """Examples per optimizer step (the learning rates were tuned for 32)."""
    max_ctx: int = result_field(1024, "ctx")
    """Only documents shorter than this many tokens are kept (as the reference: one of exactly max_ctx is dropped).
    Lowered to the model's context length where that is shorter, and named and recorded as lowered."""
    ds_name: str = result_field("sciq", "ds")
    loss: str = result_field("xent", "loss")
    n_docs: int = result_field(20000, "nd")
    """Training documents; a ground-truth run trains on the first half and labels the second. Where the dataset
    gives fewer, the run uses all it gives, says so, and is named after that count (`with_doc_counts`)."""
    n_test_docs: int = result_field(10000, "ntd")
    """Test documents; as n_docs, lowered to what the dataset gives."""
    model_size: str = result_field("gpt2", "model")
    lr: float | None = result_field(None, "lr")
    """None: the model's default learning rate. Adam only: Adafactor ignores it (as in the reference), though it
    still names the run."""
    optim: str | None = result_field(None, "opt")
    """adam or adafactor, in any case; None: the model's default. Adafactor runs in the reference's mode: relative step
    size min(1e-2, 1/sqrt(step)) scaled by each parameter's RMS, no lr, no schedule."""
    epochs: int = result_field(2, "ep")
    seed: int = result_field(0, "seed")
    train_with_dropout: bool = result_field(False, "drop")
    linear_probe: bool = result_field(False, "lp")
    """Train only the head; the backbone stays frozen."""
    lr_schedule: str = result_field("cosine_anneal", "sched")
    lora_rank: int | None = result_field(None, "lora")
    """Train rank-r LoRA adapters (peft) and the head instead of every weight; 0: full fine-tuning.
    None: the model's default (full fine-tuning unless the registry says otherwise)."""
    precision: str = result_field("auto", "prec")
    """Autocast dtype of the forward pass: fp32, bf16, fp16, or auto (bf16 on a CUDA GPU that supports it, else fp32).
    Named and recorded as resolved: an auto run on CPU is prec=fp32."""
    balance: bool | None = result_field(None, "bal", omit_if=False)
    """Undersample the majority class of the train and test documents to 50/50. None: the dataset's default
    (on for the tasks added beyond the reference's; off for its 5 datasets and the built-in ones, so their
    results stay comparable). Named in the folder (bal=1) only when on."""
    stratify: bool | None = result_field(None, "strat", omit_if=False)
    """Split the training documents into the weak model's half and the half it labels stratified by label, so
    both halves hold the same share of each class (to one document). Off: the reference's random split. With a
    few hundred documents its halves' shares differ by several points; the weak model learns its own half's
    share, and its labels pass the difference on to the student (README, the testbed's "Measured"). None: the
    dataset's default (on for the testbed's tasks, off for every other). Named in the folder (strat=1) only
    when on."""
    bootstrap_chain: str | None = result_field(None, "chain", omit_if=None)
    """Bootstrapping (set by `sweep.py --bootstrap=True`): the whole ladder "w,m1,...,s" this transfer run is a
    link of, smallest first; --weak_model_size is the link before this run's model. See `pipeline.label_slices`."""
    s2s_round: int | None = result_field(None, "round", omit_if=None)
    """Strong-to-strong rounds (set by `sweep.py --s2s_rounds=K`): this run's round k of s2s_total. Round 0 trains
    on --weak_model_size's labels, round k on round k - 1's predictions. See `pipeline.label_slices`."""
    s2s_total: int | None = result_field(None, "rounds", omit_if=None)
    """The number of strong-to-strong rounds after round 0 in this run's series (K)."""
    unsup_epochs: int | None = result_field(None, "uft", omit_if=None)
    """Unsupervised task fine-tuning: first this many epochs of causal-LM training (next-token prediction, no
    labels) on the texts of the run's own training documents, then the usual training from those weights.
    Sweeps apply it to transfer runs only. See weak_to_strong/unsupervised.py."""
    early_stop: float | None = result_field(None, "es", omit_if=None)
    """Transfer runs: hold out this share of the weak labels (never ground truth) and keep the checkpoint, of
    those at the ends of epochs, with the lowest cross-entropy against them. See `pipeline.early_stopping`."""
    train_seed: int | None = result_field(None, "tseed", omit_if=None)
    """Seed of training alone (data order, dropout); None: --seed. The documents,
    their halves and the test set still follow --seed, so runs that differ only here label the same
    documents: the members of a seed ensemble (--weak_ensemble)."""
    weak_ensemble: str | None = result_field(None, "ens", omit_if=None)
    """Train on the mean soft labels of several ground-truth runs (same flags otherwise): members
    "model" or "model@train_seed", comma-separated, e.g. "gpt2@1,gpt2@2,gpt2@3" or "gpt2,EleutherAI/pythia-160m"."""
    weak_model_size: str | None = None
    """Train on the weak labels of this model's ground-truth run (same flags otherwise)."""
    weak_labels_path: str | None = None
    """Train on the weak labels saved in this folder instead."""
    force_retrain: bool = False
    minibatch_size_per_device: int | None = None
    """None: automatic, length-grouped minibatches within the model's memory budget (only memory and speed
    depend on it)."""
    pack: bool | None = None
    """Automatic minibatches: several documents per row where the backbone supports it (see README,
    Performance). None: on CPU only. Only speed depends on it."""
    compile: bool = False
    """torch.compile the backbone (faster steps after a compile of tens of seconds)."""
    gradient_checkpointing: bool | None = None
    """Recompute activations in the backward pass to save memory; None: the model registry's setting."""
    results_folder: str = "results"
    sweep_subfolder: str = "default"
    eval_every: int | None = None
    """Evaluate on the test set every this many steps (logged); None: final eval only."""
    sync_command: str | None = None
    """Run as `CMD download|upload PATH RESULTS_FOLDER` to fetch weak labels / push results."""
    data_dir: str | None = None
    """Local copies of datasets (else $W2S_DATA_DIR, else the hub)."""
    save_model: bool = False
    """Also save the trained weights (model.safetensors) in the run folder."""
    log_prefix: str = ""
    """Prefix of the run's name in the logger (W&B), e.g. to tell experiments apart."""
    fsdp: bool | None = None
    """Under torchrun: shard the model over the GPUs (FSDP2) rather than replicate it (DDP).
    None: the model's default. Only memory and speed depend on it."""

    def __post_init__(self):
        coerce_text_flags(self)
        self.optim = canonical_optim(self.optim)
        validate_config(self)
        if self.weak_ensemble is not None:
            self.weak_ensemble = canonical_ensemble(self.weak_ensemble, self.seed)
        expand_paths(self)
        if self.weak_labels_path is not None:
            self.weak_labels_path = locate_weak_labels(self.weak_labels_path)


LIST_FIELDS = ("bootstrap_chain", "weak_ensemble")
"""Comma-separated lists: fire reads "a,b,c" as a tuple."""
TEXT_FIELDS = (*LIST_FIELDS, "ds_name", "loss", "model_size", "optim", "lr_schedule", "precision", "weak_model_size",
               "weak_labels_path", "results_folder", "sweep_subfolder", "sync_command", "data_dir", "log_prefix")
"""Fields that hold text: fire reads `--sweep_subfolder=20240101` or `--model_size=123` as numbers."""
PATH_FIELDS = ("results_folder", "weak_labels_path", "data_dir")


def coerce_text_flags(cfg: "RunConfig") -> None:
    for name in LIST_FIELDS:
        if isinstance(getattr(cfg, name), (list, tuple)):
            setattr(cfg, name, ",".join(map(str, getattr(cfg, name))))
    for name in TEXT_FIELDS:
        value = getattr(cfg, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(cfg, name, str(value))


def canonical_optim(name):
    """An optimizer name in any case, lowercased (the reference lowercased it too): `Adam` runs, and names
    its run folder, as `adam`."""
    return name.lower() if isinstance(name, str) else name


def expand_paths(cfg: "RunConfig") -> None:
    """`~` expanded and made absolute once, up front, so every file of a run goes where its folder is
    (a `~` the shell left alone would otherwise make a literal `./~` folder for some files and not others)."""
    for name in PATH_FIELDS:
        value = getattr(cfg, name)
        if value is not None:
            setattr(cfg, name, os.path.abspath(os.path.expanduser(value)))


def check_positive_int(cfg: RunConfig, name: str, allow_none: bool = False) -> None:
    value = getattr(cfg, name)
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"--{name} must be a positive integer, got {value!r}")


def check_seed(seed, flag: str) -> None:
    """A seed numpy and torch both take: an integer in [0, 2**32)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"--{flag} must be an integer from 0 to 2**32 - 1, got {seed!r}")


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")


def check_lora_rank(cfg: RunConfig) -> None:
    rank = cfg.lora_rank
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 0):
        raise ValueError(f"--lora_rank must be a non-negative integer (0: full fine-tuning), got {rank!r}")
    if rank and cfg.linear_probe:
        raise ValueError("give either --lora_rank or --linear_probe, not both (a linear probe trains only the head)")


def validate_config(cfg: RunConfig) -> None:
    """Every user error we can see before loading anything, as a ValueError naming the flag."""
    for name in ("batch_size", "max_ctx", "n_docs", "n_test_docs", "epochs"):
        check_positive_int(cfg, name)
    check_seed(cfg.seed, "seed")
    for name in ("minibatch_size_per_device", "eval_every", "unsup_epochs"):
        check_positive_int(cfg, name, allow_none=True)
    check_lora_rank(cfg)
    get_dataset_spec(cfg.ds_name)
    check_choice("loss", cfg.loss, LOSS_NAMES)
    check_choice("lr_schedule", cfg.lr_schedule, LR_SCHEDULE_NAMES)
    check_precision(cfg.precision)
    if cfg.optim is not None:
        check_choice("optim", cfg.optim, OPTIMIZERS)
    get_model_spec(cfg.model_size)
    if cfg.weak_model_size is not None:
        get_model_spec(cfg.weak_model_size)
    if cfg.lr is not None and (isinstance(cfg.lr, bool) or not isinstance(cfg.lr, (int, float)) or cfg.lr <= 0
                               or not math.isfinite(cfg.lr)):
        raise ValueError(f"--lr must be a positive finite number, got {cfg.lr!r}")
    if cfg.weak_model_size is not None and cfg.weak_labels_path is not None:
        raise ValueError("give either --weak_model_size or --weak_labels_path, not both")
    if cfg.weak_ensemble is not None and (cfg.weak_model_size is not None or cfg.weak_labels_path is not None):
        raise ValueError("give either --weak_ensemble or a single weak run (--weak_model_size, --weak_labels_path), "
                         "not both")
    if cfg.train_seed is not None:
        check_seed(cfg.train_seed, "train_seed")
    if cfg.minibatch_size_per_device is not None and cfg.batch_size % cfg.minibatch_size_per_device:
        raise ValueError(
            f"--batch_size={cfg.batch_size} is not a multiple of --minibatch_size_per_device="
            f"{cfg.minibatch_size_per_device}"
        )
    for name in ("pack", "fsdp", "gradient_checkpointing", "balance", "stratify"):
        if getattr(cfg, name) not in (None, True, False):
            raise ValueError(f"--{name} must be True or False, got {getattr(cfg, name)!r}")
    if cfg.n_docs < 2:
        raise ValueError(f"--n_docs={cfg.n_docs} is too small to split into two halves (need at least 2)")
    if cfg.bootstrap_chain is not None:
        check_chain_link(cfg)
    check_s2s_round(cfg)
    check_early_stop(cfg)
    if cfg.weak_ensemble is not None:
        parse_ensemble(cfg.weak_ensemble)


def parse_ensemble(value: str) -> list[tuple[str, int | None]]:
    """A weak ensemble's members as (model, train_seed or None): at least two, none twice."""
    members = []
    for spec in (m.strip() for m in str(value).split(",") if m.strip()):
        model, _, seed = spec.partition("@")
        if seed and not seed.isdigit():
            raise ValueError(f"--weak_ensemble={value!r}: {spec!r} is not MODEL or MODEL@TRAIN_SEED (a non-negative "
                             "integer)")
        get_model_spec(model)
        members.append((model, int(seed) if seed else None))
    if len(members) < 2 or len(set(members)) < len(members):
        raise ValueError(f"--weak_ensemble={value!r}: give at least two different members (MODEL or "
                         "MODEL@TRAIN_SEED), e.g. gpt2@1,gpt2@2")
    for _, seed in members:
        if seed is not None:
            check_seed(seed, "weak_ensemble's train seeds")
    return members


def canonical_ensemble(value: str, seed: int) -> str:
    """Members as named in the folder: a train seed equal to --seed is the plain run, written "model"."""
    members = [(model, None if t == seed else t) for model, t in parse_ensemble(value)]
    if len(set(members)) < len(members):
        raise ValueError(f"--weak_ensemble={value!r} names the same run twice (MODEL@{seed} is MODEL's run "
                         f"with --seed={seed})")
    return ",".join(model if t is None else f"{model}@{t}" for model, t in members)


def ensemble_member_configs(cfg: RunConfig) -> list[RunConfig]:
    """The ground-truth runs whose labels a weak ensemble averages. A member's train seed equal to --seed is
    the plain ground-truth run (train_seed None), so the sweep's own weak run is reused."""
    return [weak_run_config(replace(cfg, weak_model_size=model, weak_ensemble=None,
                                    train_seed=None if seed in (None, cfg.seed) else seed))
            for model, seed in parse_ensemble(cfg.weak_ensemble)]


def training_seed(cfg: RunConfig) -> int:
    return cfg.seed if cfg.train_seed is None else cfg.train_seed


def parse_chain(value: str, flag: str = "bootstrap_chain") -> list[str]:
    """A bootstrapping ladder: at least three registered models (weak, intermediates, strong) in size order."""
    models = [m.strip() for m in str(value).split(",") if m.strip()]
    if len(models) < 3:
        raise ValueError(f"--{flag}={value!r}: a bootstrapping chain needs at least 3 models (weak, "
                         "intermediate, strong); with 2 it is plain weak-to-strong transfer")
    sizes = [get_model_spec(m).params_m for m in models]
    unknown = [m for m, size in zip(models, sizes) if size is None]
    if unknown:
        raise ValueError(f"--{flag}={value!r}: the size of {', '.join(unknown)} is unknown (no params_m in the "
                         "model registry), so the chain's order cannot be checked")
    if any(a >= b for a, b in zip(sizes, sizes[1:])):
        raise ValueError(f"--{flag}={value!r} is not in size order (smallest first, each model larger than the one "
                         f"before it): {', '.join(f'{m} {s:g}M' for m, s in zip(models, sizes))}")
    return models


def check_chain_link(cfg: RunConfig) -> None:
    """A chain link is a transfer run from the link before it."""
    models = parse_chain(cfg.bootstrap_chain)
    if cfg.model_size not in models[1:] or cfg.weak_model_size != models[models.index(cfg.model_size) - 1]:
        raise ValueError(f"--bootstrap_chain={cfg.bootstrap_chain!r}: --model_size={cfg.model_size!r} with "
                         f"--weak_model_size={cfg.weak_model_size!r} is not a link of it")


def check_early_stop(cfg: RunConfig) -> None:
    value = cfg.early_stop
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"--early_stop must be a share of the weak labels strictly between 0 and 1, got {value!r}")


def check_runnable(cfg: RunConfig) -> None:
    """What a run refuses that a sweep's shared flags may hold: a sweep forwards --early_stop to its transfer
    runs only, so the base config of a sweep may carry it."""
    if cfg.early_stop is not None and not is_transfer(cfg):
        raise ValueError(f"--early_stop={cfg.early_stop} applies to transfer runs: it picks a checkpoint by held-out "
                         "weak labels, and a ground-truth run has none (give --weak_model_size)")


def check_s2s_round(cfg: RunConfig) -> None:
    """A strong-to-strong round: 0 <= round <= total, a plain transfer run's series (one weak model)."""
    if cfg.s2s_round is None and cfg.s2s_total is None:
        return
    total, k = cfg.s2s_total, cfg.s2s_round
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise ValueError(f"--s2s_total must be a positive integer, got {total!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= total:
        raise ValueError(f"--s2s_round must be an integer from 0 to --s2s_total={total}, got {k!r}")
    if cfg.weak_model_size is None or cfg.bootstrap_chain is not None:
        raise ValueError("strong-to-strong rounds (--s2s_round) need --weak_model_size, and no --bootstrap_chain")


def chain_hop(cfg: RunConfig) -> int:
    """A chain link's place: 1 for the model trained on the weak model's labels, up to the chain's length - 1."""
    return parse_chain(cfg.bootstrap_chain).index(cfg.model_size)


def chain_length(cfg: RunConfig) -> int:
    """The number of transfer steps (links) in the run's chain."""
    return len(parse_chain(cfg.bootstrap_chain)) - 1


def label_slice(cfg: RunConfig) -> tuple[int, int] | None:
    """For a run of a series that passes labels on (a bootstrapping chain, strong-to-strong rounds): its place
    in the series, from 1, and the series' length; the weak model's held-out half is cut into that many
    slices (`pipeline.label_slices`). None for other runs."""
    if cfg.bootstrap_chain is not None:
        return chain_hop(cfg), chain_length(cfg)
    if cfg.s2s_round is not None:
        return cfg.s2s_round + 1, cfg.s2s_total + 1
    return None


def hands_on_labels(cfg: RunConfig) -> bool:
    """A chain link or s2s round before the last labels documents for the next."""
    place = label_slice(cfg)
    return place is not None and place[0] < place[1]


def writes_weak_labels(cfg: RunConfig) -> bool:
    """Ground-truth runs, and all but the last run of a bootstrapping chain or s2s series, write weak_labels/."""
    return not is_transfer(cfg) or hands_on_labels(cfg)


def is_transfer(cfg: RunConfig) -> bool:
    return cfg.weak_model_size is not None or cfg.weak_labels_path is not None or cfg.weak_ensemble is not None


def with_defaults(cfg: RunConfig) -> RunConfig:
    """lr, optim and lora_rank filled in from the model registry, balance and stratify from the dataset's, where
    not given."""
    spec = get_model_spec(cfg.model_size)
    return replace(cfg, lr=registry_lr(cfg, spec) if cfg.lr is None else float(cfg.lr),
                   optim=spec.default_optimizer if cfg.optim is None else cfg.optim,
                   lora_rank=lora_rank(cfg), balance=balance(cfg), stratify=stratify(cfg))


def registry_lr(cfg: RunConfig, spec) -> float:
    """The registry's learning rate for the run: its linear-probe rate under --linear_probe, where it has one."""
    return spec.probe_lr if cfg.linear_probe and spec.probe_lr is not None else spec.default_lr


def dataset_default(cfg: RunConfig, name: str) -> bool:
    """A switch of the run (`balance`, `stratify`): as given, else the dataset's default of the same name."""
    given = getattr(cfg, name)
    return getattr(get_dataset_spec(cfg.ds_name), name) if given is None else bool(given)


def balance(cfg: RunConfig) -> bool:
    return dataset_default(cfg, "balance")


def stratify(cfg: RunConfig) -> bool:
    return dataset_default(cfg, "stratify")


def with_doc_counts(cfg: RunConfig, n_train: int, n_test: int) -> RunConfig:
    """The config named after the documents a run uses: n_docs and n_test_docs lowered to the counts the
    dataset gave (after balancing), so a run folder never claims more documents than the run had.

    Loading the same dataset with the lowered counts gives the same documents, so this is resolved the
    same way wherever a run's name is needed (the run itself, a sweep's plan, train_weak_to_strong)."""
    if n_train < 2:
        raise ValueError(f"dataset {cfg.ds_name!r} gives {n_train} training document(s): too few to split into "
                         "the halves a ground-truth run trains on and labels")
    if n_test < 1:
        raise ValueError(f"dataset {cfg.ds_name!r} gives no test documents")
    return replace(cfg, n_docs=min(cfg.n_docs, n_train), n_test_docs=min(cfg.n_test_docs, n_test))


def lora_rank(cfg: RunConfig) -> int:
    """The given rank; else the registry's, except under --linear_probe, which trains only the head."""
    if cfg.lora_rank is not None:
        return cfg.lora_rank
    return 0 if cfg.linear_probe else get_model_spec(cfg.model_size).lora_rank


def use_fsdp(cfg: RunConfig) -> bool:
    return get_model_spec(cfg.model_size).fsdp if cfg.fsdp is None else bool(cfg.fsdp)


def token_budgets(cfg: RunConfig) -> tuple[int, int]:
    """Padded tokens per automatic training minibatch and per eval batch.

    What the registry's minibatch and eval batch sizes hold at the longest
    allowed document (`cfg.max_ctx`, as resolved for the model): the same memory,
    spent on more documents when they are short.
    """
    spec = get_model_spec(cfg.model_size)
    return spec.minibatch_size * cfg.max_ctx, spec.eval_batch_size * cfg.max_ctx


GROUND_TRUTH_LOSS = "xent"
"""The loss of the ground-truth runs that weak labels come from (and of a sweep's ceilings): the paper's.
Only `ground_truth` uses it."""


def ground_truth(base: RunConfig, model: str) -> RunConfig:
    """A ground-truth run of `model`: trained with GROUND_TRUTH_LOSS on the first half of the training
    documents, labelling the second. Every other flag is `base`'s (a `--loss` in it is a transfer run's).

    The one place that knows what a ground-truth run is: train_simple, sweeps and train_weak_to_strong
    build their weak floors, ceilings and the runs that transfer runs take labels from with it, so they
    all name (and share) the same folders. A ground-truth run is no stage of a series and uses no transfer
    run's options: the bootstrapping chain, s2s round, weak ensemble, early stopping and unsupervised
    fine-tuning are cleared (its --train_seed is kept: an ensemble member is a ground-truth run)."""
    return replace(base, model_size=model, loss=GROUND_TRUTH_LOSS, weak_model_size=None, weak_labels_path=None,
                   weak_ensemble=None, bootstrap_chain=None, s2s_round=None, s2s_total=None, early_stop=None,
                   unsup_epochs=None)


def transfer(base: RunConfig, strong: str, weak: str) -> RunConfig:
    """`strong` trained, with `base`'s loss, on the weak labels of `ground_truth(base, weak)`."""
    return replace(base, model_size=strong, weak_model_size=weak, weak_labels_path=None)


def weak_run_config(cfg: RunConfig) -> RunConfig:
    """The run whose labels a transfer run trains on: a ground-truth run, a bootstrapping chain's link before,
    or the s2s round before.

    Same flags, with the weak model, xent, no early stopping or unsupervised fine-tuning, and the weak model's
    own default lr and optimizer where the user gave none (so give it the unresolved config). A chain's
    middle links train with the run's own loss, as its last link does.
    """
    assert cfg.weak_model_size is not None
    if cfg.bootstrap_chain is not None and chain_hop(cfg) > 1:  # the link before: a transfer run of the chain
        models = parse_chain(cfg.bootstrap_chain)
        return replace(cfg, model_size=cfg.weak_model_size, weak_model_size=models[chain_hop(cfg) - 2])
    if cfg.s2s_round:  # the round before: the same strong model's transfer run
        return replace(cfg, s2s_round=cfg.s2s_round - 1)
    return ground_truth(cfg, cfg.weak_model_size)


# ---------------------------------------------------------------- resolution: a run's identity

def result_fields() -> list:
    """RunConfig's result-affecting fields (those with a short name), in folder-name order."""
    return [f for f in fields(RunConfig) if "short" in f.metadata]


def result_field_names() -> tuple[str, ...]:
    return tuple(f.name for f in result_fields())


@dataclass(frozen=True)
class ResolvedRun:
    """A run resolved once, for the device it runs on: `config` has every default filled in (lr, optim,
    lora_rank, balance, stratify), a concrete precision and the max_ctx the model allows. What it uses is what
    `identity` says, and that names its folder and is its config.json."""

    config: RunConfig
    weak: ResolvedRun | None = None
    """A --weak_model_size run's weak run (`weak_run_config`: its ground-truth run, a bootstrapping chain's link
    before or the s2s round before), resolved in its own right (its model's defaults and context)."""
    members: tuple[ResolvedRun, ...] = ()
    """A --weak_ensemble run's members (`ensemble_member_configs`), each resolved in its own right."""

    def identity(self) -> dict:
        """The result fields (see `omit_if`), and what the weak labels are: the weak run's identity, or the
        labels' path. Never read from disk, so a name cannot depend on what happens to lie beside the labels."""
        cfg = self.config
        out = {f.name: getattr(cfg, f.name) for f in result_fields()
               if getattr(cfg, f.name) != f.metadata.get("omit_if", NOT_OMITTED)}
        if self.weak is not None:
            out["weak_model_size"] = cfg.weak_model_size
            out["weak_model"] = self.weak.identity()
        elif cfg.weak_labels_path is not None:
            out["weak_labels_path"] = cfg.weak_labels_path
        elif self.members:
            out["weak_ensemble_members"] = [member.identity() for member in self.members]
        return out

    def series_root(self) -> ResolvedRun:
        """The ground-truth run at the start of this run's chain of weak runs (for a bootstrapping link or an
        s2s round: the series' weak model's, whose weak labels hold every document the series uses)."""
        run = self
        while run.weak is not None:
            run = run.weak
        return run


ModelContext = Callable[[str], "int | None"]
"""A model name -> its context length in tokens (None: unlimited); `model.model_context` reads it."""


def resolve_run(cfg: RunConfig, device: DeviceKind, context: ModelContext) -> ResolvedRun:
    """The one resolution of a run: defaults (`with_defaults`), precision for `device` ("auto": bf16 on a CUDA
    GPU with bf16, else fp32) and max_ctx clipped to the model's context. The device need not be here: a sweep
    resolves its runs for the device its executor runs them on (`sweep.planning_device`).

    Document counts are not resolved here: they need the dataset (`with_doc_counts`, before this)."""
    if isinstance(cfg, ResolvedRun):
        return cfg
    model_ctx = context(cfg.model_size)
    resolved = replace(with_defaults(cfg), precision=resolve_precision(cfg.precision, device),
                       max_ctx=min(cfg.max_ctx, model_ctx or cfg.max_ctx))
    # The weak run(s), recursively: a chain's links and s2s rounds down to their ground-truth run.
    weak = resolve_run(weak_run_config(cfg), device, context) if cfg.weak_model_size is not None else None
    members = (tuple(resolve_run(member, device, context) for member in ensemble_member_configs(cfg))
               if cfg.weak_ensemble is not None else ())
    return ResolvedRun(resolved, weak, members)


def resolve_here(cfg: RunConfig | ResolvedRun) -> ResolvedRun:
    """Resolved as a run started in this process would resolve it: this machine's device (as `pick_device`
    picks it) and the model's context from its registry entry or config (a small file; toy models are built)."""
    if isinstance(cfg, ResolvedRun):
        return cfg
    from weak_to_strong.model import model_context
    from weak_to_strong.models import pick_device

    return resolve_run(cfg, device_kind(pick_device()), model_context)


WEAK_LABELS_DIR = "weak_labels"
"""A ground-truth run's weak labels: this folder in its run folder, beside its config.json."""


def locate_weak_labels(path: str) -> str:
    """The weak labels a --weak_labels_path names: a run folder stands for its `weak_labels/`.

    The reference appended `/weak_labels` to any path not ending in it; here only to a folder that
    holds one, so labels saved in a folder of another name still load.
    """
    if Path(path).name != WEAK_LABELS_DIR and (Path(path) / WEAK_LABELS_DIR).is_dir():
        return str(Path(path) / WEAK_LABELS_DIR)
    return path


def read_weak_labels_config(weak_labels_path: str) -> dict:
    """The config of the run that wrote these labels (config.json beside them), else their path."""
    config_file = Path(weak_labels_path).parent / "config.json"
    if config_file.exists():
        return json.loads(config_file.read_text())
    return {"weak_labels_path": os.path.abspath(weak_labels_path)}


def result_dict(run: RunConfig | ResolvedRun) -> dict:
    """config.json's content: the run's identity (a RunConfig is resolved for this machine, `resolve_here`).
    A --weak_labels_path run adds, as provenance, the config of the run that wrote the labels (read beside
    them, where there is one) and its model as weak_model_size."""
    run = resolve_here(run)
    out = run.identity()
    if run.config.weak_labels_path is not None:
        out["weak_model"] = read_weak_labels_config(run.config.weak_labels_path)
        out["weak_model_size"] = out["weak_model"].get("model_size")
    elif run.members:  # the first member stands for the ensemble as the PGR floor
        out["weak_model"] = out["weak_ensemble_members"][0]
        out["weak_model_size"] = out["weak_model"]["model_size"]
    return out


def short_keys() -> dict[str, str]:
    return {f.name: f.metadata["short"] for f in result_fields()}
