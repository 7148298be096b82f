"""The testbed's measured results: pairs of the ladder, logconf against xent, and the random-weights control.

    python -m weak_to_strong.testbed measure --seeds=0,1,2   # runs the sweeps below, then writes the report
    python -m weak_to_strong.testbed report RESULTS_FOLDER   # the report only, from finished runs

For each weak -> strong pair of pretrained rungs: the weak floor, the strong
ceiling, the transfer accuracy with xent and with logconf, PGR (mean ± standard
error over seeds), and how often the student repeats the weak model's answer on
the test documents the weak model gets wrong. The control trains each strong
rung's `-random` twin (same architecture and tokenizer, never pretrained) on the
same weak labels; its PGR is measured against the pretrained pair's floor and
ceiling, so the two PGRs are shares of the same gap. A third table and a second
figure show how much of its weak labels' class prior each student takes on.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from weak_to_strong import plot, readers
from weak_to_strong.metrics import pgr
from weak_to_strong.names import LOSS_NAMES
from weak_to_strong.testbed.ladder import LADDER, RANDOM_SUFFIX

LOSSES = ("xent", "logconf")
QUICKSTART_TASK = "testbed_knowledge"
MIN_GAP = 0.05
"""Pairs whose ceiling is less than this above the floor: their PGR divides by a gap of a few test documents
and is noise; tables mark them and the figure leaves them out."""


def has_gap(groups: dict, weak: str, strong: str) -> bool:
    rows = groups.get((weak, strong, "xent"))
    if not rows:
        return False
    stats = summarize(rows)
    return stats["strong_acc"][0] - stats["weak_acc"][0] >= MIN_GAP


def sweep_model_sizes() -> list[str]:
    """The ladder, smallest first, then the random twins of every rung above the smallest."""
    names = list(LADDER)
    return names + [name + RANDOM_SUFFIX for name in names[1:]]


def run_measurement(results_folder: str, seeds: list[int], ds_name: str = QUICKSTART_TASK,
                    linear_probe: bool = False, stratify: bool | None = None) -> str:
    """One sweep per loss over the ladder and its random twins (ground-truth runs are shared), then the report.

    `linear_probe`: every run trains the head alone on frozen features (the twins' features are random).
    `stratify`: --stratify for every run (None: the dataset's default)."""
    from weak_to_strong.sweep import run_sweep

    check_folder_setting(results_folder, ds_name, linear_probe, stratify)
    for loss in LOSSES:
        run_sweep(",".join(sweep_model_sizes()), ds_name=ds_name, seeds=",".join(map(str, seeds)), loss=loss,
                  results_folder=results_folder, linear_probe=linear_probe, stratify=stratify)
    return write_report(results_folder, ds_name)


def check_folder_setting(results_folder: str, ds_name: str, linear_probe: bool, stratify: bool | None) -> None:
    """A ValueError before any training if the folder already holds runs of this task with other linear_probe
    or stratify settings: the report reads a folder of one setting, and would refuse it only after the sweeps."""
    from weak_to_strong.config import RunConfig
    from weak_to_strong.config import stratify as resolved_stratify

    wanted = {"linear_probe": bool(linear_probe),
              "stratify": resolved_stratify(RunConfig(ds_name=ds_name, stratify=stratify))}
    runs, _ = readers.load_runs(results_folder) if Path(results_folder).is_dir() else ([], [])
    for run in (r for r in runs if r.get("ds_name") == ds_name):
        found = {name: bool(run.get(name, False)) for name in wanted}
        if found != wanted:
            raise ValueError(f"{results_folder} already holds {ds_name} runs with {found}, not {wanted} "
                             f"(e.g. {run['path']}); the report reads a folder of one setting: give another "
                             "--results_folder (--stratify=False defaults to results/testbed_random_halves)")


def pair_table(results_folder: str, ds_name: str) -> list[dict]:
    runs, _ = readers.load_runs(results_folder)
    rows, _ = plot.pair_rows_from_runs([r for r in runs if r.get("ds_name") == ds_name])
    return rows


def by_key(rows: list[dict]) -> dict[tuple, list[dict]]:
    """(weak, strong, loss) -> its rows, one per seed (plot.group_rows: a seed found twice counts once)."""
    grouped, _ = plot.group_rows(rows)
    variants = sorted({key[1] for key in grouped})
    if len(variants) > 1:
        raise ValueError(f"the results hold runs of several settings ({'; '.join(variants)}); the testbed report "
                         "reads a folder of one setting")
    return {key[2:]: group for key, group in grouped.items()}


def summarize(group: list[dict]) -> dict:
    """Mean ± SE of the accuracies, PGR and agreement of one pair and loss over its seeds (the PGR table's
    aggregation, as (mean, se) pairs)."""
    first = group[0]
    row = plot.aggregate_group((first["ds_name"], "", first["weak_model_size"], first["strong_model_size"],
                                first["loss"]), group)
    names = ("weak_acc", "strong_acc", "transfer_acc", "weak_error_agreement", "pgr", "strong_log_loss",
             "transfer_log_loss")
    return {"n": row["n_seeds"], **{name: (row[name], row[f"{name}_se"]) for name in names}}


def control_pgr(control: list[dict], pretrained: list[dict]) -> tuple[float, float]:
    """The random twin's PGR per seed against the pretrained pair's floor and ceiling of the same seed."""
    ceilings = {r["seed"]: r["strong_acc"] for r in pretrained}
    values = [pgr(r["weak_acc"], r["transfer_acc"], ceilings[r["seed"]]) for r in control if r["seed"] in ceilings]
    return plot.mean_se([v for v in values if not math.isnan(v)])


def fmt(pair: tuple[float, float], digits: int = 3) -> str:
    mean, se = pair
    if math.isnan(mean):
        return "—"
    return f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def pretrained_pairs() -> list[tuple[str, str]]:
    names = list(LADDER)
    return [(w, s) for i, w in enumerate(names) for s in names[i + 1:]]


def effect_table(groups: dict) -> str:
    header = ["weak → strong", "seeds", "weak floor", "ceiling", "xent transfer", "xent PGR", "logconf transfer",
              "logconf PGR", "agrees on weak errors (xent / logconf)",
              "test log-loss: ceiling / xent / logconf student", "note"]
    rows = []
    for weak, strong in pretrained_pairs():
        got = {loss: summarize(groups[(weak, strong, loss)]) for loss in LOSSES if (weak, strong, loss) in groups}
        if "xent" not in got:
            continue
        x, lc = got["xent"], got.get("logconf")
        rows.append([f"{weak} → {strong}", x["n"], fmt(x["weak_acc"]), fmt(x["strong_acc"]), fmt(x["transfer_acc"]),
                     fmt(x["pgr"], 2), fmt(lc["transfer_acc"]) if lc else "—", fmt(lc["pgr"], 2) if lc else "—",
                     f"{fmt(x['weak_error_agreement'], 2)} / {fmt(lc['weak_error_agreement'], 2) if lc else '—'}",
                     f"{fmt(x['strong_log_loss'], 2)} / {fmt(x['transfer_log_loss'], 2)} / "
                     f"{fmt(lc['transfer_log_loss'], 2) if lc else '—'}",
                     "" if has_gap(groups, weak, strong) else f"gap < {MIN_GAP:.2f}: PGR is noise"])
    return plot.markdown_grid(header, rows)


def control_table(groups: dict) -> str:
    header = ["weak → strong", "loss", "pretrained PGR", "random-weights twin: ceiling", "twin transfer",
              "twin PGR (of the pretrained gap)", "twin agrees on weak errors"]
    rows = []
    for weak, strong in pretrained_pairs():
        for loss in LOSSES:
            pretrained = groups.get((weak, strong, loss))
            control = groups.get((weak, strong + RANDOM_SUFFIX, loss))
            if not pretrained or not control:
                continue
            twin = summarize(control)
            rows.append([f"{weak} → {strong}", loss, fmt(summarize(pretrained)["pgr"], 2), fmt(twin["strong_acc"]),
                         fmt(twin["transfer_acc"]), fmt(control_pgr(control, pretrained), 2),
                         fmt(twin["weak_error_agreement"], 2)])
    return plot.markdown_grid(header, rows)


def inheritance(group: list[dict]) -> dict:
    """How a pair's students take on the class prior of the weak labels they train on, over its seeds: the
    mean absolute prior shift of the labels (metrics.prior_shift) and base-rate shift of the student on the
    test set (metrics.base_rate_shift), the least-squares slope and correlation of the student's shift on the
    labels' (NaN under three seeds or without variation), and the seeds where the student ends below its
    weak floor."""
    pairs = [(r["weak_labels_prior_shift"], r["transfer_base_rate_shift"]) for r in group
             if not math.isnan(r["weak_labels_prior_shift"]) and not math.isnan(r["transfer_base_rate_shift"])]
    weak, student = [w for w, _ in pairs], [t for _, t in pairs]
    slope = r = math.nan
    if len(pairs) >= 3 and len(set(weak)) > 1:  # a student whose shift never moves has slope 0, r undefined
        slope = statistics.linear_regression(weak, student).slope
        r = statistics.correlation(weak, student) if len(set(student)) > 1 else math.nan
    return {"n": len(pairs), "weak": plot.mean_se([abs(w) for w in weak]),
            "student": plot.mean_se([abs(t) for t in student]), "slope": slope, "r": r,
            "below_floor": sorted(row["seed"] for row in group if below_floor(row))}


def below_floor(row: dict) -> bool:
    """Whether the student ended less accurate than the weak model that supervised it."""
    return row["transfer_acc"] < row["weak_acc"]


def inheritance_table(groups: dict) -> str:
    header = ["weak → strong", "loss", "seeds with both shifts", "weak labels' prior shift (mean absolute)",
              "student's base-rate shift (mean absolute)", "slope (student on labels)", "correlation",
              "seeds below the weak floor"]
    rows = []
    for weak, strong in pretrained_pairs():
        if not has_gap(groups, weak, strong):
            continue
        for loss in LOSSES:
            group = groups.get((weak, strong, loss))
            if not group:
                continue
            found = inheritance(group)
            rows.append([f"{weak} → {strong}", loss, found["n"], fmt(found["weak"]), fmt(found["student"]),
                         fmt((found["slope"], math.nan), 2), fmt((found["r"], math.nan), 2),
                         ", ".join(map(str, found["below_floor"])) or "none"])
    return plot.markdown_grid(header, rows)


def loss_panels(height: float, **share):
    """A figure with a panel per loss of LOSSES, and a colour per rung of the ladder (smallest first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(LOSSES), figsize=(5.2 * len(LOSSES), height), **share)
    n = len(LADDER)
    return fig, axes, plt.get_cmap("viridis")([i / max(1, n - 1) for i in range(n)])


def finish_panels(fig, axes, ylabel: str, title: str):
    axes[0].set_ylabel(ylabel)
    axes[-1].legend(fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_pgr(groups: dict, ds_name: str):
    """PGR against the strong rung, a line per weak rung; solid: pretrained student, dashed: its random twin."""
    names = list(LADDER)
    fig, axes, colors = loss_panels(4.2, sharey=True)
    for ax, loss in zip(axes, LOSSES):
        for i, weak in enumerate(names[:-1]):
            stronger = [s for s in names[i + 1:] if has_gap(groups, weak, s)]
            for suffix, style in (("", "-"), (RANDOM_SUFFIX, "--")):
                points = [(names.index(s), summarize(groups[(weak, s + suffix, loss)])["pgr"] if not suffix else
                           control_pgr(groups[(weak, s + suffix, loss)], groups.get((weak, s, loss), [])))
                          for s in stronger if (weak, s + suffix, loss) in groups]
                if not points:
                    continue
                xs, ys = [x for x, _ in points], [p[0] for _, p in points]
                ax.errorbar(xs, ys, yerr=[0 if math.isnan(p[1]) else p[1] for _, p in points], color=colors[i],
                            linestyle=style, marker="o" if not suffix else "x", capsize=3,
                            label=f"weak {weak}" + (" (random-weights student)" if suffix else ""))
        ax.axhline(0, color="gray", linewidth=0.8)
        ax.set_xticks(range(len(names)), names)
        ax.set_xlabel("strong student")
        ax.set_title(f"{loss}")
        ax.grid(alpha=0.3)
    return finish_panels(fig, axes, "PGR (mean ± SE over seeds)",
                         f"{ds_name}: performance gap recovered (pairs with a gap of at least {MIN_GAP:.2f})")


def plot_inheritance(groups: dict, ds_name: str):
    """Per seed, the student's base-rate shift against its weak labels' prior shift, a colour per pair, a panel
    per loss; a cross where the student ended below its weak floor. On the diagonal a student copies the
    shift."""
    import matplotlib.pyplot as plt

    fig, axes, _ = loss_panels(4.4, sharex=True, sharey=True)
    pair_colors = plt.get_cmap("tab10")
    for ax, loss in zip(axes, LOSSES):
        for k, (weak, strong) in enumerate(pretrained_pairs()):
            group = groups.get((weak, strong, loss))
            if not group or not has_gap(groups, weak, strong):
                continue
            color = pair_colors(k % 10)
            for below in (False, True):
                rows = [r for r in group if below_floor(r) == below]
                ax.scatter([r["weak_labels_prior_shift"] for r in rows], [r["transfer_base_rate_shift"] for r in rows],
                           color=color, marker="x" if below else "o", s=40 if below else 22,
                           label=None if below else f"{weak} → {strong}")
        limit = max([abs(v) for v in ax.get_xlim() + ax.get_ylim()] + [0.05])
        ax.plot([-limit, limit], [-limit, limit], color="gray", linestyle="--", linewidth=0.8)
        ax.axhline(0, color="gray", linewidth=0.5)
        ax.axvline(0, color="gray", linewidth=0.5)
        ax.set_xlabel("weak labels' prior shift (mean P(1) − true share of class 1)")
        ax.set_title(f"{loss} (x: student below its weak floor)")
        ax.grid(alpha=0.3)
    return finish_panels(fig, axes, "student's base-rate shift (share predicted 1 − true share)",
                         f"{ds_name}: students inherit their supervisor's class prior (one point per seed)")


def load_groups(results_folder: str, ds_name: str) -> dict:
    groups = by_key(pair_table(results_folder, ds_name))
    if not groups:
        raise ValueError(f"no finished {ds_name} weak-to-strong runs under {str(results_folder)!r}")
    return groups


def write_tables_and_figure(results_folder: str, paths: tuple, text: str, fig) -> str:
    """The Markdown text and the figure under RESULTS_FOLDER/plots (`paths`: their names there); returns text."""
    readers.plots_dir(results_folder).mkdir(parents=True, exist_ok=True)
    md, png = paths
    md.write_text(text)
    save_figure(fig, png)
    return text


def save_figure(fig, path) -> None:
    """Save and close: a process that writes many reports does not keep every figure open."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=150)
    plt.close(fig)


def write_report(results_folder: str, ds_name: str = QUICKSTART_TASK) -> str:
    """Markdown tables, the PGR figure and the prior-inheritance figure under RESULTS_FOLDER/plots; returns the
    tables."""
    groups = load_groups(results_folder, ds_name)
    text = (f"## {ds_name}: weak-to-strong on the pretrained ladder\n\n{effect_table(groups)}\n"
            f"## {ds_name}: control, strong rungs with random weights\n\n{control_table(groups)}\n"
            f"## {ds_name}: the weak labels' prior shift, inherited\n\n{inheritance_table(groups)}")
    out_dir = readers.plots_dir(results_folder)
    written = write_tables_and_figure(results_folder, readers.testbed_report_paths(out_dir, ds_name), text,
                                      plot_pgr(groups, ds_name))
    save_figure(plot_inheritance(groups, ds_name), readers.testbed_inheritance_path(out_dir, ds_name))
    return written


# ---------------------------------------------------------------- methods: every loss of the registry, compared

def method_names() -> list[str]:
    return list(LOSS_NAMES)


def run_methods(results_folder: str, seeds: list[int], ds_name: str = QUICKSTART_TASK, losses=None,
                linear_probe: bool = False, stratify: bool | None = None) -> str:
    """One sweep per transfer loss over the pretrained ladder (ground-truth runs are shared), then the table."""
    from weak_to_strong.sweep import run_sweep

    check_folder_setting(results_folder, ds_name, linear_probe, stratify)
    for loss in losses or method_names():
        run_sweep(",".join(LADDER), ds_name=ds_name, seeds=",".join(map(str, seeds)), loss=loss,
                  results_folder=results_folder, linear_probe=linear_probe, stratify=stratify)
    return write_methods_report(results_folder, ds_name)


def paired_pgr_gain(group: list[dict], baseline: list[dict]) -> tuple[float, float]:
    """Mean ± SE over seeds of (PGR with this loss − PGR with xent) on the same seed: the same floor and ceiling."""
    base = {r["seed"]: pgr(r["weak_acc"], r["transfer_acc"], r["strong_acc"]) for r in baseline}
    gains = [pgr(r["weak_acc"], r["transfer_acc"], r["strong_acc"]) - base[r["seed"]] for r in group
             if r["seed"] in base]
    return plot.mean_se([g for g in gains if not math.isnan(g)])


def methods_table(groups: dict) -> str:
    header = ["weak → strong", "loss", "seeds", "transfer", "PGR", "PGR − xent PGR (paired by seed)", "PGR (AUROC)",
              "agrees on weak errors"]
    rows = []
    for weak, strong in pretrained_pairs():
        if not has_gap(groups, weak, strong):
            continue
        for loss in method_names():
            group = groups.get((weak, strong, loss))
            if not group:
                continue
            row = plot.aggregate_group((group[0]["ds_name"], "", weak, strong, loss), group)
            gain = paired_pgr_gain(group, groups[(weak, strong, "xent")]) if loss != "xent" else (math.nan, math.nan)
            rows.append([f"{weak} → {strong}", loss, row["n_seeds"], fmt((row["transfer_acc"], row["transfer_acc_se"])),
                         fmt((row["pgr"], row["pgr_se"]), 2), fmt(gain, 2),
                         fmt((row["pgr_auroc"], row["pgr_auroc_se"]), 2),
                         fmt((row["weak_error_agreement"], row["weak_error_agreement_se"]), 2)])
    return plot.markdown_grid(header, rows)


def plot_methods(groups: dict, ds_name: str):
    """PGR against the strong rung for each loss, from the smallest rung's labels (the pairs with a real gap)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(LADDER)
    weak = names[0]
    stronger = [s for s in names[1:] if has_gap(groups, weak, s)]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    markers = "osD^v<>ph*"
    for i, loss in enumerate(method_names()):
        points = [(names.index(s), summarize(groups[(weak, s, loss)])["pgr"]) for s in stronger
                  if (weak, s, loss) in groups]
        if not points:
            continue
        xs = [x + (i - len(method_names()) / 2) * 0.03 for x, _ in points]  # side by side, error bars readable
        ax.errorbar(xs, [p[0] for _, p in points], yerr=[0 if math.isnan(p[1]) else p[1] for _, p in points],
                    marker=markers[i % len(markers)], linestyle="-" if loss == "xent" else ":", capsize=3,
                    linewidth=2 if loss == "xent" else 1, label=loss)
    ax.set_xticks([names.index(s) for s in stronger], stronger)
    ax.set_xlabel(f"strong student (weak supervisor {weak})")
    ax.set_ylabel("PGR (mean ± SE over seeds)")
    ax.set_title(f"{ds_name}: PGR per transfer loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def write_methods_report(results_folder: str, ds_name: str = QUICKSTART_TASK) -> str:
    """The methods table (Markdown) and figure under RESULTS_FOLDER/plots; returns the table."""
    groups = load_groups(results_folder, ds_name)
    text = f"## {ds_name}: transfer losses on the pretrained ladder\n\n{methods_table(groups)}"
    paths = readers.testbed_methods_paths(readers.plots_dir(results_folder), ds_name)
    return write_tables_and_figure(results_folder, paths, text, plot_methods(groups, ds_name))
