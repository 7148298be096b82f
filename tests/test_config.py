import json
from dataclasses import replace

import pytest

from weak_to_strong import config, results
from weak_to_strong.config import RunConfig, resolve_run, short_keys
from weak_to_strong.models import get_model_spec
from weak_to_strong.precision import CPU, CUDA_BF16, DeviceKind
from weak_to_strong.results import run_dir


def registry_context(model: str) -> int | None:
    """The registry's context lengths only: offline, no model config loaded (None: not clipped)."""
    return get_model_spec(model).context


def config_name(cfg: RunConfig, device: DeviceKind = CPU) -> str:
    """A run's folder name as a CPU run names it, whatever machine the tests run on."""
    return results.config_name(resolve_run(cfg, device, registry_context))


def result_dict(cfg: RunConfig, device: DeviceKind = CPU) -> dict:
    """config.json's content, as a CPU run writes it."""
    return config.result_dict(resolve_run(cfg, device, registry_context))


def test_reference_flag_names_and_defaults():
    cfg = RunConfig()
    expected = dict(batch_size=32, max_ctx=1024, ds_name="sciq", loss="xent", n_docs=20000, n_test_docs=10000,
                    model_size="gpt2", lr=None, optim=None, epochs=2, force_retrain=False, seed=0,
                    minibatch_size_per_device=None, train_with_dropout=False, linear_probe=False,
                    lr_schedule="cosine_anneal", weak_model_size=None, weak_labels_path=None,
                    sweep_subfolder="default", eval_every=None, sync_command=None)
    assert {k: getattr(cfg, k) for k in expected} == expected


def test_short_keys_are_unique_and_cover_result_fields():
    keys = short_keys()
    assert len(set(keys.values())) == len(keys)
    assert {"loss", "lr"} <= set(keys)
    assert keys["loss"] != keys["lr"]


def test_non_result_fields_are_left_out():
    names = set(result_dict(RunConfig()))
    for name in ("force_retrain", "minibatch_size_per_device", "results_folder", "sweep_subfolder", "sync_command",
                 "data_dir", "save_model", "eval_every", "pack"):
        assert name not in names
    assert config_name(RunConfig(minibatch_size_per_device=4)) == config_name(RunConfig())


@pytest.mark.parametrize("change", [dict(lr=1e-4), dict(loss="logconf"), dict(seed=1), dict(linear_probe=True),
                                    dict(optim="adafactor"), dict(n_docs=100), dict(weak_model_size="gpt2")])
def test_every_result_change_gets_its_own_folder(change):
    assert config_name(RunConfig(**change)) != config_name(RunConfig())


def test_defaults_are_resolved_into_the_config():
    config = result_dict(RunConfig(model_size="gpt2-large"))
    assert config["lr"] == 1e-5 and config["optim"] == "adam"
    assert result_dict(RunConfig(model_size="Qwen/Qwen-72B"))["optim"] == "adafactor"


def test_a_linear_probe_takes_the_registrys_probe_lr_where_it_has_one():
    from weak_to_strong.testbed.ladder import rung

    probe = dict(model_size="tb-l", ds_name="testbed_knowledge", linear_probe=True)
    assert result_dict(RunConfig(**probe))["lr"] == rung("tb-l").probe_lr != rung("tb-l").finetune_lr
    assert result_dict(RunConfig(**{**probe, "linear_probe": False}))["lr"] == rung("tb-l").finetune_lr
    assert result_dict(RunConfig(**{**probe, "lr": 3e-3}))["lr"] == 3e-3  # a given lr wins
    assert result_dict(RunConfig(model_size="gpt2-large", linear_probe=True))["lr"] == 1e-5  # none: default_lr


def test_optim_is_accepted_in_any_case_and_recorded_lowercase():
    # The reference lowercased --optim before choosing the optimizer.
    for given, canonical in (("Adam", "adam"), ("ADAFACTOR", "adafactor"), ("adam", "adam")):
        cfg = RunConfig(optim=given)
        assert cfg.optim == canonical and result_dict(cfg)["optim"] == canonical
        assert config_name(cfg) == config_name(RunConfig(optim=canonical)) and f"opt={canonical}-" in config_name(cfg)


def test_transfer_config_embeds_the_weak_runs_config():
    cfg = RunConfig(model_size="Qwen/Qwen-72B", weak_model_size="gpt2")
    config = result_dict(cfg)
    assert config["weak_model_size"] == "gpt2"
    # The weak run: weak model, xent, and its own default lr and optimizer (not the strong model's).
    assert config["weak_model"] == result_dict(RunConfig(model_size="gpt2"))
    assert config["weak_model"]["optim"] == "adam" and config["weak_model"]["lr"] == 5e-5
    assert result_dict(RunConfig(lr=3e-4, weak_model_size="gpt2"))["weak_model"]["lr"] == 3e-4


def test_model_ids_with_slashes_make_one_folder(tmp_path):
    cfg = RunConfig(model_size="meta-llama/Llama-3.2-1B", weak_model_size="Qwen/Qwen2.5-0.5B",
                    results_folder=str(tmp_path))
    path = run_dir(resolve_run(cfg, CPU, registry_context))
    assert path.parent == tmp_path / "default"
    assert "model=meta-llama--Llama-3.2-1B" in path.name and "weak=Qwen--Qwen2.5-0.5B" in path.name
    long_id = "org/" + "x" * 300
    name = config_name(RunConfig(model_size=long_id))
    assert "/" not in name and len(name) < 255 and name != config_name(RunConfig(model_size=long_id + "y"))


def test_weak_labels_path_runs_are_named_by_their_labels(tmp_path):
    a, b = tmp_path / "a" / "weak_labels", tmp_path / "b" / "weak_labels"
    for path, model in ((a, "gpt2"), (b, "gpt2-medium")):
        path.mkdir(parents=True)
        (path.parent / "config.json").write_text(json.dumps({"model_size": model}))
    name_a = config_name(RunConfig(weak_labels_path=str(a)))
    assert name_a != config_name(RunConfig(weak_labels_path=str(b)))
    assert result_dict(RunConfig(weak_labels_path=str(a)))["weak_model_size"] == "gpt2"


def test_a_run_folder_as_weak_labels_path_stands_for_its_weak_labels(tmp_path):
    # The reference appended weak_labels/ to a --weak_labels_path that did not end in it.
    run = tmp_path / "default" / "some_run"
    (run / "weak_labels").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model_size": "gpt2"}))
    by_folder, by_labels = RunConfig(weak_labels_path=str(run)), RunConfig(weak_labels_path=str(run / "weak_labels"))
    assert by_folder.weak_labels_path == by_labels.weak_labels_path == str(run / "weak_labels")
    assert config_name(by_folder) == config_name(by_labels)
    assert result_dict(by_folder)["weak_model_size"] == "gpt2"
    other = tmp_path / "my_labels"  # labels saved under another name are taken as they are
    other.mkdir()
    assert RunConfig(weak_labels_path=str(other)).weak_labels_path == str(other)


@pytest.mark.parametrize("flags, message", [
    (dict(ds_name="imdb"), "unknown dataset 'imdb'; choose one of: amazon_polarity"),
    (dict(model_size="gpt5"), "unknown model 'gpt5'"),
    (dict(weak_model_size="gpt5"), "unknown model 'gpt5'"),
    (dict(loss="mse"), "unknown loss 'mse'; choose one of: xent, product, logconf"),
    (dict(lr_schedule="linear"), "unknown lr_schedule 'linear'; choose one of: cosine_anneal, constant"),
    (dict(optim="sgd"), "unknown optim 'sgd'; choose one of: adam, adafactor"),
    (dict(weak_model_size="gpt2", weak_labels_path="/x"), "either --weak_model_size or --weak_labels_path"),
    (dict(batch_size=32, minibatch_size_per_device=5), "--batch_size=32 is not a multiple of"),
    (dict(n_docs=1), "--n_docs=1 is too small to split"),
    (dict(batch_size=0), "--batch_size must be a positive integer"),
    (dict(lr=-1.0), "--lr must be a positive finite number"),
    (dict(lr=float("inf")), "--lr must be a positive finite number, got inf"),  # fire reads --lr=1e999 as inf
    (dict(lr=float("nan")), "--lr must be a positive finite number, got nan"),
    (dict(pack="maybe"), "--pack must be True or False, got 'maybe'"),
])
def test_bad_config_raises_a_clear_error(flags, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("-", r"\-")):
        RunConfig(**flags)


GOLDEN_DEFAULT_NAME = ("bs=32-ctx=1024-ds=sciq-loss=xent-nd=20000-ntd=10000-model=gpt2-lr=5e-05-opt=adam-ep=2-seed=0"
                       "-drop=0-lp=0-sched=cosine_anneal-lora=0-prec=fp32")


def test_golden_run_folder_name_and_config_of_the_defaults():
    """Pinned, not derived: a field added to RunConfig must not rename the folders of existing runs."""
    assert config_name(RunConfig()) == GOLDEN_DEFAULT_NAME
    assert config_name(RunConfig(ds_name="sciq", balance=False)) == GOLDEN_DEFAULT_NAME
    assert "balance" not in result_dict(RunConfig())


@pytest.mark.parametrize("flags, named", [
    (dict(ds_name="sciq"), False), (dict(ds_name="amazon_polarity"), False), (dict(ds_name="synthetic"), False),
    (dict(ds_name="cola"), True), (dict(ds_name="hellaswag"), True), (dict(ds_name="cola", balance=False), False),
    (dict(ds_name="sciq", balance=True), True),
])
def test_balance_is_named_in_the_folder_and_config_when_on(flags, named):
    cfg = RunConfig(**flags)
    assert config_name(cfg).endswith("-prec=fp32-bal=1") == named
    assert result_dict(cfg).get("balance", False) == named


def test_balance_gets_its_own_folder_and_is_checked():
    assert config_name(RunConfig(ds_name="cola")) != config_name(RunConfig(ds_name="cola", balance=False))
    with pytest.raises(ValueError, match="--balance must be True or False, got 'yes'"):
        RunConfig(balance="yes")


@pytest.mark.parametrize("flags, named", [
    (dict(), False), (dict(stratify=False), False), (dict(stratify=True), True),
    (dict(ds_name="testbed_knowledge"), True), (dict(ds_name="testbed_binding"), True),
    (dict(ds_name="testbed_knowledge", stratify=False), False), (dict(ds_name="cola"), False),
])
def test_stratified_halves_are_the_testbeds_default_and_named_only_when_on(flags, named):
    cfg = RunConfig(**flags)
    assert config_name(cfg).endswith("-strat=1") == named
    assert result_dict(cfg).get("stratify", False) == named
    if not flags:
        assert config_name(cfg) == GOLDEN_DEFAULT_NAME and "stratify" not in result_dict(cfg)


@pytest.mark.parametrize("flags, expected", [(dict(), True), (dict(stratify=False), False)])
def test_a_transfer_runs_weak_run_and_ceiling_split_as_it_does(flags, expected):
    from weak_to_strong.config import ground_truth, weak_run_config, with_defaults

    cfg = RunConfig(ds_name="testbed_knowledge", model_size="tb-m", weak_model_size="tb-s", **flags)
    for run in (cfg, weak_run_config(cfg), ground_truth(cfg, "tb-m")):
        assert with_defaults(run).stratify is expected and ("-strat=1" in config_name(run)) is expected


def test_stratify_is_checked():
    with pytest.raises(ValueError, match="--stratify must be True or False, got 'yes'"):
        RunConfig(stratify="yes")


def test_doc_counts_are_lowered_to_what_the_dataset_gives():
    from weak_to_strong.config import with_doc_counts

    cfg = RunConfig(n_docs=20000, n_test_docs=10000)
    used = with_doc_counts(cfg, 11679, 1000)
    assert (used.n_docs, used.n_test_docs) == (11679, 1000)
    assert "-nd=11679-ntd=1000-" in config_name(used)
    assert with_doc_counts(RunConfig(n_docs=200, n_test_docs=50), 11679, 1000) == RunConfig(n_docs=200, n_test_docs=50)
    with pytest.raises(ValueError, match="dataset 'sciq' gives 1 training document"):
        with_doc_counts(cfg, 1, 1000)


def test_every_loss_has_its_own_transfer_run_folder():
    from weak_to_strong.loss import LOSSES

    names = {loss: config_name(RunConfig(loss=loss, weak_model_size="gpt2", model_size="gpt2-medium"))
             for loss in LOSSES}
    assert len(set(names.values())) == len(LOSSES)
    for loss, name in names.items():
        assert f"-loss={loss}-" in name


def test_folder_names_of_the_existing_losses_are_pinned():
    """New losses must not rename the runs of the old ones (finished runs would be redone, analysis split)."""
    common = "ctx=1024-ds=sciq-loss={}-nd=20000-ntd=10000-model=gpt2-medium-lr=5e-05-opt=adam-ep=2-seed=0-drop=0" \
             "-lp=0-sched=cosine_anneal-lora=0-prec=fp32-weak=gpt2"
    for loss in ("xent", "product", "logconf"):
        cfg = RunConfig(loss=loss, weak_model_size="gpt2", model_size="gpt2-medium")
        assert config_name(cfg) == "bs=32-" + common.format(loss)


def test_a_bootstrapping_link_has_its_own_folder_and_off_changes_no_name():
    plain = RunConfig(model_size="tb-l", weak_model_size="tb-m")
    link = RunConfig(model_size="tb-l", weak_model_size="tb-m", bootstrap_chain="tb-s,tb-m,tb-l")
    longer = RunConfig(model_size="tb-m", weak_model_size="tb-s", bootstrap_chain="tb-s,tb-m,tb-l,tb-xl")
    names = {config_name(c) for c in (plain, link, longer, RunConfig(model_size="tb-m", weak_model_size="tb-s",
                                                                     bootstrap_chain="tb-s,tb-m,tb-l"))}
    assert len(names) == 4 and "chain" not in config_name(plain) and "bootstrap_chain" not in result_dict(plain)
    assert "-chain=tb-s,tb-m,tb-l-" in config_name(link)
    # The link before is itself a chain link (its own loss), down to the weak model's ground-truth run (xent).
    weak = result_dict(replace(link, loss="logconf"))["weak_model"]
    assert weak["model_size"] == "tb-m" and weak["loss"] == "logconf" and weak["weak_model"]["loss"] == "xent"


@pytest.mark.parametrize("change, message", [
    (dict(bootstrap_chain="tb-m,tb-s,tb-l"), "--bootstrap_chain='tb-m,tb-s,tb-l' is not in size order"),
    (dict(bootstrap_chain="tb-s,tb-l"), "needs at least 3 models"),
    (dict(bootstrap_chain="tb-s,org/model,tb-l"), "the size of org/model is unknown"),
    (dict(bootstrap_chain="tb-s,tb-l,tb-xl"), "is not a link of it"),
])
def test_bad_chains_name_the_value(change, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        RunConfig(model_size="tb-l", weak_model_size="tb-m", **change)


def test_ensemble_and_train_seed_runs_have_their_own_folders_and_off_changes_no_name():
    plain = RunConfig(model_size="gpt2-medium", weak_model_size="gpt2")
    ensemble = RunConfig(model_size="gpt2-medium", weak_ensemble="gpt2,gpt2@1")
    others = (RunConfig(model_size="gpt2-medium", weak_ensemble="gpt2@1,gpt2@2"),
              RunConfig(model_size="gpt2-medium", weak_ensemble="gpt2,EleutherAI/pythia-70m"))
    names = {config_name(c) for c in (plain, ensemble, *others, RunConfig(), RunConfig(train_seed=1))}
    assert len(names) == 6 and "tseed" not in config_name(RunConfig()) and "ens=" not in config_name(plain)
    # The members: the plain ground-truth run (train seed = --seed, so also "gpt2@0") and the train-seed-1 run.
    members = result_dict(ensemble)["weak_ensemble_members"]
    assert members == [result_dict(RunConfig(model_size="gpt2")),
                       result_dict(RunConfig(model_size="gpt2", train_seed=1))]
    assert result_dict(ensemble)["weak_model"] == members[0]
    assert result_dict(RunConfig(model_size="gpt2-medium", weak_ensemble="gpt2@0,gpt2@1")) == result_dict(ensemble)


@pytest.mark.parametrize("change, message", [
    (dict(weak_ensemble="gpt2"), "--weak_ensemble='gpt2': give at least two different members"),
    (dict(weak_ensemble="gpt2@1,gpt2@1"), "give at least two different members"),
    (dict(weak_ensemble="gpt2@x,gpt2"), "'gpt2@x' is not MODEL or MODEL@TRAIN_SEED"),
    (dict(weak_ensemble="gpt2,nope"), "unknown model 'nope'"),
    (dict(weak_ensemble="gpt2,gpt2@1", weak_model_size="gpt2"), "give either --weak_ensemble or a single weak run"),
    (dict(train_seed=-1), "--train_seed must be an integer"),
    (dict(weak_ensemble="gpt2,gpt2@0"), "names the same run twice"),
])
def test_bad_ensembles_name_the_value(change, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        RunConfig(model_size="gpt2-medium", **change)


def test_s2s_rounds_have_their_own_folders_and_read_the_round_before():
    plain = RunConfig(model_size="gpt2-medium", weak_model_size="gpt2")
    rounds = [RunConfig(model_size="gpt2-medium", weak_model_size="gpt2", s2s_round=k, s2s_total=2) for k in range(3)]
    assert len({config_name(c) for c in (plain, *rounds)}) == 4 and "round" not in config_name(plain)
    assert result_dict(rounds[2])["weak_model"] == result_dict(rounds[1])
    assert result_dict(rounds[0])["weak_model"] == result_dict(RunConfig(model_size="gpt2"))


@pytest.mark.parametrize("change, message", [
    (dict(s2s_round=3, s2s_total=2), "--s2s_round must be an integer from 0 to --s2s_total=2, got 3"),
    (dict(s2s_round=0), "--s2s_total must be a positive integer, got None"),
    (dict(s2s_round=0, s2s_total=1, weak_model_size=None), "need --weak_model_size"),
])
def test_bad_s2s_rounds_name_the_value(change, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**{"model_size": "gpt2-medium", "weak_model_size": "gpt2", **change})


def test_every_stage_run_has_a_folder_of_its_own():
    """A run of each new method never shares a folder with another method's run or the plain one."""
    transfer = dict(model_size="tb-l", weak_model_size="tb-m")
    runs = [RunConfig(**transfer), RunConfig(**transfer, bootstrap_chain="tb-s,tb-m,tb-l"),
            RunConfig(model_size="tb-l", weak_ensemble="tb-m,tb-m@1"), RunConfig(**transfer, s2s_round=0, s2s_total=1),
            RunConfig(**transfer, early_stop=0.2), RunConfig(**transfer, unsup_epochs=1),
            RunConfig(model_size="tb-m", train_seed=1), RunConfig(model_size="tb-m")]
    assert len({config_name(c) for c in runs}) == len(runs)


# ---------------------------------------------------------------- identity: a run is named as resolved


def test_precision_is_named_as_resolved_for_the_device():
    """auto runs in fp32 on CPU and in bf16 on a CUDA GPU with bf16: two results, two folders."""
    cpu, gpu = config_name(RunConfig()), config_name(RunConfig(), CUDA_BF16)
    assert cpu.endswith("-prec=fp32") and gpu.endswith("-prec=bf16") and cpu != gpu
    assert config_name(RunConfig(), DeviceKind("cuda", bf16=False)).endswith("-prec=fp32")
    assert result_dict(RunConfig(), CUDA_BF16)["precision"] == "bf16"
    # A precision given outright is the same run on any device.
    assert config_name(RunConfig(precision="fp16")) == config_name(RunConfig(precision="fp16"), CUDA_BF16)
    assert config_name(RunConfig(precision="fp32")) == cpu


def test_max_ctx_is_named_as_clipped_to_the_models_context():
    from weak_to_strong.model import model_context

    assert model_context("toy-small") == 256
    resolved = resolve_run(RunConfig(model_size="toy-small", ds_name="synthetic"), CPU, model_context)
    assert resolved.config.max_ctx == 256 and resolved.identity()["max_ctx"] == 256
    assert "-ctx=256-" in results.config_name(resolved)
    # Asking for 1024 or 256 is one run; asking for less is another.
    same = resolve_run(RunConfig(model_size="toy-small", ds_name="synthetic", max_ctx=256), CPU, model_context)
    less = resolve_run(RunConfig(model_size="toy-small", ds_name="synthetic", max_ctx=128), CPU, model_context)
    assert results.config_name(same) == results.config_name(resolved) != results.config_name(less)
    assert "-ctx=1024-" in config_name(RunConfig(model_size="gpt2"))


def test_a_transfer_runs_weak_model_is_resolved_for_its_own_model():
    run = resolve_run(RunConfig(model_size="toy-large", weak_model_size="gpt2", ds_name="synthetic"), CPU,
                      lambda model: {"toy-large": 256, "gpt2": 1024}[model])
    assert run.config.max_ctx == 256 and run.weak.config.max_ctx == 1024
    assert run.weak.config.lr == 5e-5 and run.config.lr == 1e-3  # each model's own default


def test_weak_labels_path_names_do_not_depend_on_what_lies_beside_the_labels(tmp_path):
    labels = tmp_path / "run" / "weak_labels"
    labels.mkdir(parents=True)
    cfg = RunConfig(weak_labels_path=str(labels))
    before = config_name(cfg)
    (labels.parent / "config.json").write_text(json.dumps({"model_size": "gpt2"}))
    assert config_name(cfg) == before
    assert result_dict(cfg)["weak_model"] == {"model_size": "gpt2"}  # recorded, as provenance


def test_stage_constructors_are_the_only_source_of_the_ground_truth_loss():
    from weak_to_strong.config import GROUND_TRUTH_LOSS, ground_truth, transfer, weak_run_config

    base = RunConfig(loss="logconf", weak_labels_path=None)
    gt, tr = ground_truth(base, "gpt2"), transfer(base, "gpt2-medium", "gpt2")
    assert (gt.model_size, gt.loss, gt.weak_model_size) == ("gpt2", GROUND_TRUTH_LOSS, None)
    assert (tr.model_size, tr.loss, tr.weak_model_size) == ("gpt2-medium", "logconf", "gpt2")
    assert weak_run_config(tr) == gt


STAGE_FIELDS = ("bootstrap_chain", "s2s_round", "s2s_total", "unsup_epochs", "early_stop", "train_seed",
                "weak_ensemble")


def test_stage_fields_are_in_the_identity_when_on_and_omitted_when_off():
    def identity(**flags):
        return resolve_run(RunConfig(**flags), CPU, registry_context).identity()

    plain = identity(model_size="gpt2-large", weak_model_size="gpt2-medium")
    assert not set(STAGE_FIELDS) & set(plain) and not set(STAGE_FIELDS) & set(plain["weak_model"])
    on = {**identity(model_size="gpt2-large", weak_model_size="gpt2-medium",
                     bootstrap_chain="gpt2,gpt2-medium,gpt2-large", early_stop=0.2, unsup_epochs=1),
          **identity(model_size="gpt2-large", weak_model_size="gpt2", s2s_round=1, s2s_total=2),
          **identity(model_size="gpt2-large", weak_ensemble="gpt2,gpt2@1"),
          **identity(model_size="gpt2", train_seed=3)}
    assert {name: on[name] for name in STAGE_FIELDS} == dict(
        bootstrap_chain="gpt2,gpt2-medium,gpt2-large", s2s_round=1, s2s_total=2, unsup_epochs=1, early_stop=0.2,
        train_seed=3, weak_ensemble="gpt2,gpt2@1")


def test_a_series_runs_weak_runs_are_resolved_recursively_each_for_its_own_model():
    from weak_to_strong.config import GROUND_TRUTH_LOSS

    chain = resolve_run(RunConfig(model_size="gpt2-large", weak_model_size="gpt2-medium", loss="logconf",
                                  bootstrap_chain="gpt2,gpt2-medium,gpt2-large", early_stop=0.2), CPU,
                        registry_context)
    link = chain.weak  # the link before: a transfer run of the chain, with the run's own loss and options
    assert (link.config.model_size, link.config.weak_model_size, link.config.loss) == ("gpt2-medium", "gpt2", "logconf")
    assert link.config.bootstrap_chain == chain.config.bootstrap_chain and link.config.early_stop == 0.2
    root = link.weak  # the weak model's ground-truth run: no stage fields
    assert root is chain.series_root() and root.weak is None
    assert (root.config.model_size, root.config.loss) == ("gpt2", GROUND_TRUTH_LOSS)
    assert all(getattr(root.config, name) is None for name in STAGE_FIELDS)
    assert (chain.config.lr, link.config.lr, root.config.lr) == (1e-5, 5e-5, 5e-5)  # each model's default

    s2s = resolve_run(RunConfig(model_size="gpt2-large", weak_model_size="gpt2", s2s_round=2, s2s_total=2,
                                unsup_epochs=1), CPU, registry_context)
    rounds = [s2s, s2s.weak, s2s.weak.weak]
    assert [r.config.s2s_round for r in rounds] == [2, 1, 0] and {r.config.lr for r in rounds} == {1e-5}
    assert s2s.series_root() is rounds[2].weak and s2s.series_root().config.model_size == "gpt2"
    assert s2s.series_root().config.unsup_epochs is None and s2s.series_root().config.lr == 5e-5
    assert s2s.identity()["weak_model"] == rounds[1].identity()

    ensemble = resolve_run(RunConfig(model_size="gpt2-large", weak_ensemble="gpt2,gpt2-medium@1", early_stop=0.2),
                           CPU, registry_context)
    assert ensemble.weak is None and [(m.config.model_size, m.config.train_seed, m.config.early_stop)
                                      for m in ensemble.members] == [("gpt2", None, None), ("gpt2-medium", 1, None)]
    assert ensemble.identity()["weak_ensemble_members"] == [m.identity() for m in ensemble.members]
