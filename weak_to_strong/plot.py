"""PGR tables and the paper's figure for a results folder.

    python -m weak_to_strong.plot RESULTS_FOLDER [--out_dir=DIR]   # default DIR: RESULTS_FOLDER/plots

Per dataset it writes `<dataset>.png` (test accuracy against the strong model's
ground-truth accuracy: a line per weak model, a marker per loss, and the
ground-truth line), `<dataset>_pgr.csv` and `<dataset>_pgr.md`.

PGR = (transfer - weak) / (strong - weak), where weak is the accuracy of the very
run whose labels the transfer run trained on (the floor) and strong the strong
model's ground-truth run (the ceiling). It is computed per seed, then reported as
mean ± standard error over seeds; seeds whose ceiling is not above the floor are
left out, and the table says so. The same PGR on AUROC (from the runs'
results_summary.json) has columns of its own, over the seeds whose runs wrote one.

Reads results only through readers.py (no torch, no trainer): `readers.load_runs` (every run) or
`readers.load_pair_summaries` (train_weak_to_strong.py's summaries); both give
"pair rows" (ds_name, weak/strong model size, loss, seed, weak_acc, strong_acc,
transfer_acc, setting; from runs also their AUROCs) that `aggregate_pgr` turns into the table.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

from weak_to_strong import metrics, readers
from weak_to_strong.cli import exit_on_user_error
from weak_to_strong.config import short_keys
from weak_to_strong.names import LOSS_NAMES

MATCH_FREE = ("model_size", "lr", "optim")
"""Fields in which a ceiling may differ from the weak run: each model has its own default lr and optimizer."""
NOT_SETTINGS = ("ds_name", "seed", "model_size", "loss")
"""Config fields that are not part of a pair's "setting": they are the pair's coordinates."""
LOSS_MARKERS = {"xent": "o", "logconf": "s", "product": "^", "logconf_buffer": "D", "logconf_balanced": "v",
                "window": "P", "confident": "*", "adaptconf": "X", "kl": "h"}
OTHER_MARKERS = "<>pd8"
LINESTYLES = ("-", "--", ":", "-.")
RUN_COLUMNS = ("ds_name", "model_size", "weak_model_size", "loss", "seed", "accuracy")
TABLE_COLUMNS = ("ds_name", "variant", "weak_model_size", "strong_model_size", "loss", "n_seeds",
                 "weak_acc", "weak_acc_se", "strong_acc", "strong_acc_se", "transfer_acc", "transfer_acc_se",
                 "pgr", "pgr_se", "n_pgr_seeds", "weak_error_agreement", "weak_error_agreement_se", "note",
                 "weak_auroc", "weak_auroc_se", "strong_auroc", "strong_auroc_se", "transfer_auroc",
                 "transfer_auroc_se", "pgr_auroc", "pgr_auroc_se", "n_pgr_auroc_seeds")
"""The PGR table's columns; those on AUROC come last, so the accuracy columns keep their places."""
AUROC_FIELDS = ("weak_auroc", "strong_auroc", "transfer_auroc")
"""A pair row's AUROCs: of the floor, the ceiling and the transfer run (NaN where a run's summary has none)."""


# ---------------------------------------------------------------- runs -> pair rows

def result_key(config: dict) -> str:
    """A run's identity: its result-affecting fields (what config.json and a transfer's weak_model hold)."""
    return json.dumps({k: config.get(k) for k in short_keys()}, sort_keys=True)


def is_ground_truth(run: dict) -> bool:
    return run.get("weak_model") is None


def floor_config(weak_model: dict) -> dict:
    """The ground-truth run at the bottom of a transfer run's labels: a bootstrapping link's labels come from
    the link before, whose own weak_model leads on down to the chain's weak model."""
    while isinstance(weak_model.get("weak_model"), dict):
        weak_model = weak_model["weak_model"]
    return weak_model


def find_ceiling(ground_truth: list[dict], transfer: dict, weak: dict) -> dict | None:
    """The strong model's ground-truth run in the weak run's setting.

    Several candidates (e.g. an lr sweep of the strong model): the one trained with
    the transfer run's lr and optimizer, else None (ambiguous).
    """
    fixed = [k for k in short_keys() if k not in MATCH_FREE]
    candidates = [g for g in ground_truth if g["model_size"] == transfer["model_size"]
                  and all(g.get(k) == weak.get(k) for k in fixed)]
    if len(candidates) > 1:
        same_training = (transfer.get("lr"), transfer.get("optim"))
        candidates = [g for g in candidates if (g.get("lr"), g.get("optim")) == same_training]
    return candidates[0] if len(candidates) == 1 else None


def run_setting(transfer: dict, weak: dict) -> dict:
    """What, besides dataset, seed, models and loss, a pair's result depends on."""
    setting = {k: transfer.get(k) for k in short_keys() if k not in NOT_SETTINGS}
    setting.update({f"weak_{k}": weak.get(k) for k in short_keys() if k not in NOT_SETTINGS})
    if setting.get("weak_ensemble"):
        setting["weak_ensemble"] = seed_free_ensemble(setting["weak_ensemble"], transfer["seed"])
        setting.pop("weak_train_seed", None)  # the floor is a member, named above
    return setting


def seed_free_ensemble(members: str, seed: int) -> str:
    """An ensemble's members with every train seed written out and sorted. A run names the member that trains
    with its own --seed bare ("tb-s" at seed 1 is tb-s@1), so the seeds of one sweep's ensemble read alike
    only in this form."""
    spelled = []
    for member in members.split(","):
        model, _, train_seed = member.partition("@")
        spelled.append(f"{model}@{train_seed or seed}")
    return ",".join(sorted(spelled))


def pair_rows_from_runs(runs: list[dict]) -> tuple[list[dict], list[str]]:
    """One pair row per transfer run with its weak floor (a bootstrapping chain's first model) and strong
    ceiling, and a note per transfer run left out because a floor or ceiling is missing.

    `weak_labels_prior_shift` is the floor run's, of all the labels it wrote: for a plain transfer run, the
    labels it trained on (not so for an ensemble, a chain's later links, s2s rounds or early stopping)."""
    ground_truth = [r for r in runs if is_ground_truth(r)]
    by_key = {result_key(r): r for r in ground_truth}
    # A floor's predictions serve every transfer run it supervised: read each file once.
    read_predictions = functools.lru_cache(maxsize=None)(lambda path: readers.read_predictions(Path(path)))
    rows, notes = [], []
    for transfer in (r for r in runs if not is_ground_truth(r)):
        weak = by_key.get(result_key(floor_config(transfer["weak_model"])))
        if weak is None:
            notes.append(f"{transfer['path']}: no finished run for its weak labels (the weak floor); left out")
            continue
        ceiling = find_ceiling(ground_truth, transfer, weak)
        if ceiling is None:
            notes.append(f"{transfer['path']}: no single ground-truth run of {transfer['model_size']} "
                         "in its setting (the ceiling); left out")
            continue
        rows.append({"ds_name": transfer["ds_name"], "weak_model_size": weak["model_size"],
                     "strong_model_size": transfer["model_size"], "loss": transfer["loss"], "seed": transfer["seed"],
                     "weak_acc": weak["accuracy"], "strong_acc": ceiling["accuracy"],
                     "transfer_acc": transfer["accuracy"], "weak_auroc": weak.get("auroc", math.nan),
                     "strong_auroc": ceiling.get("auroc", math.nan), "transfer_auroc": transfer.get("auroc", math.nan),
                     "strong_log_loss": ceiling.get("log_loss", math.nan),
                     "transfer_log_loss": transfer.get("log_loss", math.nan),
                     "setting": run_setting(transfer, weak),
                     "weak_error_agreement": weak_error_agreement(weak["path"], transfer["path"], read_predictions),
                     "weak_labels_prior_shift": weak.get("weak_labels_prior_shift", math.nan),
                     "transfer_base_rate_shift": run_base_rate_shift(transfer["path"], read_predictions),
                     "path": transfer["path"]})
    return rows, notes


def weak_error_agreement(weak_path: str, transfer_path: str, read_predictions=None) -> float:
    """On the test documents the weak model gets wrong, the share where the student gives the same (wrong)
    answer: 1 means it imitated every error, 0 that it corrected every one. NaN without predictions.
    (metrics.agreement, which also writes it into a transfer run's summary, on the kept predictions.)"""
    read = read_predictions or (lambda path: readers.read_predictions(Path(path)))
    weak, student = read(weak_path), read(transfer_path)
    if weak is None or student is None:
        return math.nan
    return metrics.agreement(weak, student)["agreement_on_weak_errors"]


def run_base_rate_shift(run_path: str, read_predictions) -> float:
    """metrics.base_rate_shift of a run's kept test predictions; NaN without them."""
    found = read_predictions(run_path)
    return math.nan if found is None else metrics.base_rate_shift(found["prob"], found["label"])


# ---------------------------------------------------------------- aggregation

def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (NaN for a single value or none)."""
    if not values:
        return math.nan, math.nan
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return statistics.fmean(values), se


def setting_key(row: dict) -> str:
    return json.dumps(row.get("setting") or {}, sort_keys=True, default=str)


def variant_labels(rows: list[dict]) -> dict[str, str]:
    """Short labels for the settings of one dataset: the fields in which runs of the same pair differ.

    Per-model defaults (each strong model its own lr) differ between pairs and need no label.
    """
    by_pair = defaultdict(list)
    for row in rows:
        by_pair[(row["weak_model_size"], row["strong_model_size"], row["loss"])].append(row.get("setting") or {})
    varying = set()
    for settings in by_pair.values():
        for key in {k for s in settings for k in s}:
            if len({json.dumps(s.get(key), default=str) for s in settings}) > 1:
                varying.add(key)
    return {setting_key(r): variant_label(r.get("setting") or {}, varying) for r in rows}


def variant_label(setting: dict, varying: set[str]) -> str:
    """`n_docs=4000, lr=0.001`; a weak_ field only where it differs from the transfer run's own."""
    shown = [k for k in sorted(varying) if not (k.startswith("weak_") and k[5:] in varying
                                                and setting.get(k) == setting.get(k[5:]))]
    return ", ".join(f"{k}={setting.get(k)}" for k in shown)


def group_rows(rows: list[dict]) -> tuple[dict[tuple, list[dict]], dict[tuple, int]]:
    """Rows grouped by (dataset, variant, weak, strong, loss), and how many rows each group dropped as
    duplicates: the same experiment and seed found twice (e.g. summaries copied into two folders)."""
    groups, duplicates = defaultdict(dict), defaultdict(int)
    for ds_name in sorted({r["ds_name"] for r in rows}):
        ds_rows = [r for r in rows if r["ds_name"] == ds_name]
        labels = variant_labels(ds_rows)
        for row in ds_rows:
            key = (ds_name, labels[setting_key(row)], row["weak_model_size"], row["strong_model_size"], row["loss"])
            if row["seed"] in groups[key]:
                duplicates[key] += 1
            else:
                groups[key][row["seed"]] = row
    return {key: list(by_seed.values()) for key, by_seed in groups.items()}, duplicates


def pgr_note(group: list[dict], n_kept: int) -> str:
    n = len(group)
    if group[0]["weak_model_size"] == group[0]["strong_model_size"]:
        return "weak = strong: no gap to recover"
    if n_kept == 0:
        floor, ceiling = mean_se([r["weak_acc"] for r in group])[0], mean_se([r["strong_acc"] for r in group])[0]
        return f"PGR left out: ceiling {ceiling:.4f} not above weak floor {floor:.4f}"
    if n_kept < n:
        return f"{n - n_kept} of {n} seeds left out of PGR: ceiling not above weak floor"
    return ""


def aggregate_group(key: tuple, group: list[dict]) -> dict:
    ds_name, variant, weak, strong, loss = key
    row = {"ds_name": ds_name, "variant": variant, "weak_model_size": weak, "strong_model_size": strong,
           "loss": loss, "n_seeds": len(group)}
    for name in ("weak_acc", "strong_acc", "transfer_acc"):
        row[name], row[f"{name}_se"] = mean_se([r[name] for r in group])
    for name in ("weak_error_agreement", "strong_log_loss", "transfer_log_loss"):  # NaN-free seeds only
        row[name], row[f"{name}_se"] = mean_se(known(group, name))
    kept = seed_pgrs(group, "acc")
    row["pgr"], row["pgr_se"] = mean_se(kept)
    row["n_pgr_seeds"] = len(kept)
    row["note"] = pgr_note(group, len(kept))
    row.update(aggregate_auroc(group))
    return row


def seed_pgrs(group: list[dict], metric: str) -> list[float]:
    """PGR per seed on `metric` (acc, auroc), leaving out seeds where it is undefined (no gap, a missing run)."""
    pgrs = [metrics.pgr(r.get(f"weak_{metric}", math.nan), r.get(f"transfer_{metric}", math.nan),
                r.get(f"strong_{metric}", math.nan)) for r in group]
    return [p for p in pgrs if not math.isnan(p)]


def known(rows, name: str) -> list[float]:
    """A field's values over rows, leaving out rows without it (NaN or missing: e.g. runs from before it)."""
    return [r[name] for r in rows if not math.isnan(r.get(name, math.nan))]


def aggregate_auroc(group: list[dict]) -> dict:
    """AUROC of floor, ceiling and transfer, and PGR on AUROC, over the seeds whose three runs wrote one."""
    row = {}
    for name in AUROC_FIELDS:
        row[name], row[f"{name}_se"] = mean_se(known(group, name))
    kept = seed_pgrs(group, "auroc")
    row["pgr_auroc"], row["pgr_auroc_se"] = mean_se(kept)
    row["n_pgr_auroc_seeds"] = len(kept)
    return row


def aggregate_pgr(pair_rows: list[dict]) -> list[dict]:
    """The PGR table: per dataset, setting variant, weak->strong pair and loss, accuracies and PGR as
    mean and standard error over seeds (columns TABLE_COLUMNS), weakest pairs first."""
    groups, duplicates = group_rows(pair_rows)
    table = [aggregate_group(key, group) for key, group in groups.items()]
    for row, key in zip(table, groups):
        if duplicates[key]:
            extra = f"{duplicates[key]} duplicate seed row(s) ignored"
            row["note"] = f"{row['note']}; {extra}" if row["note"] else extra
    return sorted(table, key=lambda r: (r["ds_name"], r["variant"], r["weak_acc"], r["strong_acc"],
                                        registry_order(r["loss"])))


def datasets(table: list[dict]) -> list[str]:
    return sorted({r["ds_name"] for r in table})


def median_pgr_by_loss(table: list[dict]) -> dict[str, float]:
    """The paper's one-number summary: the median PGR over a dataset's pairs, per loss."""
    by_loss = defaultdict(list)
    for row in table:
        if not math.isnan(row["pgr"]):
            by_loss[row["loss"]].append(row["pgr"])
    return {loss: statistics.median(values) for loss, values in sorted(by_loss.items())}


# ---------------------------------------------------------------- tables

def format_number(value: float, se: float = math.nan) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:.4f}" if math.isnan(se) else f"{value:.4f} ± {se:.4f}"


def markdown_grid(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def markdown_table(table: list[dict]) -> str:
    """The PGR table as Markdown (mean ± standard error; — where PGR is left out)."""
    show_variant = any(r["variant"] for r in table)
    header = ["dataset"] + ["setting"] * show_variant + ["weak", "strong", "loss", "seeds", "weak acc",
                                                          "strong acc", "transfer acc", "PGR", "transfer AUROC",
                                                          "PGR (AUROC)", "agrees on weak errors", "note"]
    rows = [[r["ds_name"]] + [r["variant"]] * show_variant + [
        r["weak_model_size"], r["strong_model_size"], r["loss"], r["n_seeds"],
        format_number(r["weak_acc"], r["weak_acc_se"]), format_number(r["strong_acc"], r["strong_acc_se"]),
        format_number(r["transfer_acc"], r["transfer_acc_se"]), format_number(r["pgr"], r["pgr_se"]),
        format_number(r["transfer_auroc"], r["transfer_auroc_se"]), format_number(r["pgr_auroc"], r["pgr_auroc_se"]),
        format_number(r["weak_error_agreement"], r["weak_error_agreement_se"]), r["note"]]
        for r in table]
    return markdown_grid(header, rows)


def rows_markdown(rows: list[dict], columns: tuple[str, ...] = RUN_COLUMNS) -> str:
    """Table rows (e.g. readers.load_runs's) as Markdown, sorted by the given columns."""
    rows = sorted(rows, key=lambda r: tuple(str(r.get(c)) for c in columns))
    return markdown_grid(list(columns), [[format_cell(r.get(c)) for c in columns] for r in rows])


def format_cell(value) -> str:
    if isinstance(value, float):
        return format_number(value)
    return "—" if value is None else str(value)


def write_csv(table: list[dict], path: Path) -> None:
    """Full precision; NaN (no standard error, PGR left out) as an empty cell."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        for row in table:
            writer.writerow({k: "" if isinstance(row[k], float) and math.isnan(row[k]) else row[k]
                             for k in TABLE_COLUMNS})


# ---------------------------------------------------------------- figure

def ground_truth_points(table: list[dict]) -> dict[str, float]:
    """Each model's ground-truth accuracy: as a ceiling where it is a strong model, else as a floor."""
    ceilings, floors = defaultdict(list), defaultdict(list)
    for row in table:
        ceilings[row["strong_model_size"]].append(row["strong_acc"])
        floors[row["weak_model_size"]].append(row["weak_acc"])
    points = {m: statistics.fmean(v) for m, v in floors.items()}
    points.update({m: statistics.fmean(v) for m, v in ceilings.items()})
    return dict(sorted(points.items(), key=lambda item: item[1]))


def registry_order(loss: str) -> tuple[int, str]:
    """Losses in registry order (xent first, so it gets the solid line), unknown ones after."""
    names = list(LOSS_NAMES)
    return (names.index(loss) if loss in names else len(names), loss)


def loss_marker(loss: str, losses: list[str]) -> str:
    others = [name for name in losses if name not in LOSS_MARKERS]
    return LOSS_MARKERS.get(loss) or OTHER_MARKERS[others.index(loss) % len(OTHER_MARKERS)]


def loss_linestyle(loss: str, losses: list[str]) -> str:
    return LINESTYLES[losses.index(loss) % len(LINESTYLES)]


def plot_dataset(table: list[dict], ds_name: str):
    """The paper's figure for one dataset, as a matplotlib Figure (Agg canvas: no display needed).

    Colour: weak model; marker and line style: loss; open markers: a second setting (variant).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in table if r["ds_name"] == ds_name]
    gt = ground_truth_points(rows)
    weak_models = [m for m in gt if any(r["weak_model_size"] == m for r in rows)]
    colors = {m: f"C{i % 10}" for i, m in enumerate(weak_models)}
    losses = sorted({r["loss"] for r in rows}, key=registry_order)
    variants = sorted({r["variant"] for r in rows})

    fig = Figure(figsize=(7.5, 6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(list(gt.values()), list(gt.values()), color="black", marker="o", lw=2, ms=7, zorder=3)
    for weak in weak_models:
        for loss in losses:
            for v, variant in enumerate(variants):
                line = [r for r in rows if (r["weak_model_size"], r["loss"], r["variant"]) == (weak, loss, variant)]
                if line:
                    draw_transfer_line(ax, line, colors[weak], loss, losses, filled=v == 0)
    style_axes(ax, gt, rows, ds_name)
    ax.legend(handles=legend_handles(colors, losses, variants), loc="upper left", fontsize=9, framealpha=0.9)
    return fig


def draw_transfer_line(ax, line: list[dict], color: str, loss: str, losses: list[str], filled: bool) -> None:
    """One weak model's transfer accuracies against each strong model's ceiling, ± standard error."""
    line = sorted(line, key=lambda r: r["strong_acc"])
    yerr = [0.0 if math.isnan(r["transfer_acc_se"]) else r["transfer_acc_se"] for r in line]
    ax.errorbar([r["strong_acc"] for r in line], [r["transfer_acc"] for r in line], yerr=yerr, color=color,
                marker=loss_marker(loss, losses), ls=loss_linestyle(loss, losses), mfc=color if filled else "white",
                ms=7, lw=1.8, capsize=3, alpha=0.9)


def legend_handles(colors: dict[str, str], losses: list[str], variants: list[str]) -> list:
    """Colours (weak models) and markers (losses) explained apart, so the legend stays short."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="black", marker="o", lw=2, label="ground truth (strong ceiling)")]
    handles += [Line2D([], [], color=color, lw=3, label=f"weak: {m}") for m, color in colors.items()]
    handles += [Line2D([], [], color="gray", marker=loss_marker(loss, losses), ls=loss_linestyle(loss, losses), ms=7,
                       label=f"loss: {loss}") for loss in losses]
    if len(variants) > 1:
        handles += [Line2D([], [], color="gray", marker="o", ls="none", mfc="gray" if v == 0 else "white",
                           label=variant) for v, variant in enumerate(variants)]
    return handles


def style_axes(ax, gt: dict[str, float], rows: list[dict], ds_name: str) -> None:
    """Equal ranges on both axes (the ground-truth line is the diagonal), models named at their accuracy."""
    values = list(gt.values())
    for r in rows:  # room for the error bars
        se = 0.0 if math.isnan(r["transfer_acc_se"]) else r["transfer_acc_se"]
        values += [r["transfer_acc"] - se, r["transfer_acc"] + se]
    pad = max(0.02, 0.08 * (max(values) - min(values)))
    lo, hi = min(values) - pad, max(values) + pad
    ax.plot([lo, hi], [lo, hi], color="lightgray", lw=1, ls=":", zorder=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xticks(list(gt.values()), [f"{m}\n{acc:.3f}" for m, acc in gt.items()], rotation=30, ha="right", fontsize=9)
    ax.grid(alpha=0.3)
    ax.set_xlabel("strong model's ground-truth accuracy")
    ax.set_ylabel("test accuracy")
    medians = median_pgr_by_loss(rows)
    subtitle = ", ".join(f"{loss} {value:.2f}" for loss, value in medians.items()) or "none (no gap to recover)"
    ax.set_title(f"{ds_name}: weak-to-strong\nmedian PGR: {subtitle}", fontsize=11)


# ---------------------------------------------------------------- outputs and command

def write_dataset_report(table: list[dict], ds_name: str, out_dir: Path) -> list[Path]:
    """PNG, CSV and Markdown for one dataset; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [r for r in table if r["ds_name"] == ds_name]
    png, csv_path, md = (readers.figure_path(out_dir, ds_name), readers.pgr_table_path(out_dir, ds_name, "csv"),
                         readers.pgr_table_path(out_dir, ds_name, "md"))
    plot_dataset(rows, ds_name).savefig(png, dpi=150)
    write_csv(rows, csv_path)
    md.write_text(f"# {ds_name}: PGR (mean ± standard error over seeds)\n\n" + markdown_table(rows))
    return [png, csv_path, md]


def print_problems(problems: list[dict]) -> None:
    if problems:
        print(f"skipped {len(problems)} folder(s) or file(s):")
        for p in problems:
            print(f"  {p['path']}: {p['problem']}")


@exit_on_user_error
def plot_results(results_folder: str, out_dir: str | None = None) -> None:
    """Write each dataset's figure (PNG) and PGR table (CSV, Markdown) for every run under RESULTS_FOLDER.

    Args:
        results_folder: the --results_folder of train_simple.py / sweep.py / train_weak_to_strong.py.
        out_dir: where to write; default RESULTS_FOLDER/plots.
    """
    runs, problems = readers.load_runs(results_folder)
    print_problems(problems)
    if not runs:
        raise ValueError(f"no finished runs under {str(results_folder)!r}")
    pair_rows, notes = pair_rows_from_runs(runs)
    for note in notes:
        print(note)
    table = aggregate_pgr(pair_rows)
    if not table:
        raise ValueError(f"no weak-to-strong runs with a finished floor and ceiling under {str(results_folder)!r}; "
                         "run sweep.py or train_weak_to_strong.py first")
    for ds_name in datasets(table):
        paths = write_dataset_report(table, ds_name, readers.plots_dir(results_folder, out_dir))
        print(f"\n{markdown_table([r for r in table if r['ds_name'] == ds_name])}")
        print("wrote " + ", ".join(str(p) for p in paths))


def main() -> None:
    import fire

    fire.Fire(plot_results)


if __name__ == "__main__":
    main()
