"""The benchmark: FLOP counting on a known model, one measured row, the grid and the CLI. No timing assertions."""

import json
import statistics
import subprocess
import sys
import time

import pytest
import torch
from transformers import GPT2Config, GPT2Model

from weak_to_strong import bench
from weak_to_strong.model import wrap_backbone

CPU = torch.device("cpu")


def test_non_embedding_params_and_flops_of_a_known_gpt2():
    layers, d, vocab, positions = 2, 32, 100, 64
    model = wrap_backbone(GPT2Model(GPT2Config(n_layer=layers, n_embd=d, n_head=2, vocab_size=vocab,
                                               n_positions=positions)), CPU)
    # Per layer: 2 layer norms (2d each), qkv (d x 3d + 3d), attention out (d x d + d),
    # MLP in (d x 4d + 4d) and out (4d x d + d) = 12 d^2 + 13 d; then the final norm (2d) and the head (2d).
    per_layer = 12 * d * d + 13 * d
    expected = layers * per_layer + 2 * d + 2 * d
    assert expected == 25536
    assert bench.non_embedding_params(model) == expected
    total = sum(p.numel() for p in model.parameters())
    assert total - expected == vocab * d + positions * d  # exactly the two embedding tables are left out
    assert bench.model_flops(expected, 1000, "train") == 6 * 25536 * 1000
    assert bench.model_flops(expected, 1000, "eval") == 2 * 25536 * 1000


def test_tied_parameters_are_counted_once():
    lin = torch.nn.Linear(4, 4, bias=False)
    model = torch.nn.Sequential(lin, lin)
    assert bench.non_embedding_params(model) == 16


def test_one_row_counts_the_tokens_it_trained_and_evaluated_on():
    settings = bench.BenchSettings(arch="1x64", min_len=3, max_len=9, batch_size=8, minibatch_size=4, steps=2,
                                   warmup_steps=1, eval_examples=20, repeats=2, eval_tokens=32,
                                   matmul_size=256)
    row = bench.run_row(settings)
    # The same seeded draws as the row: warmup, train, eval examples.
    gen = torch.Generator().manual_seed(settings.seed)
    make = lambda n: bench.synthetic_examples(n, 3, 9, bench.GPT2_VOCAB_SIZE, gen)  # noqa: E731
    make(8)
    train, evaluated = make(16), make(20)
    assert row["train_real_tokens"] == int(train.lengths.sum())
    assert row["eval_real_tokens"] == int(evaluated.lengths.sum())
    assert row["non_embedding_params"] == 12 * 64 * 64 + 13 * 64 + 2 * 64 + 2 * 64
    assert row["train_flops"] == pytest.approx(6 * row["non_embedding_params"] * row["train_tokens_per_s"])
    # Each repeat against the higher of the peaks measured just before and after it; the median repeat.
    peaks, flops = row["matmul_peaks"], 6 * row["non_embedding_params"] * row["train_real_tokens"]
    assert row["matmul_peak_flops"] == max(peaks) and len(peaks) == 3
    expected = [flops / s / max(a, b) for s, a, b in zip(row["train_seconds"], peaks, peaks[1:])]
    assert row["train_mfus"] == pytest.approx(expected) and row["train_mfu"] == pytest.approx(statistics.median(expected))
    assert row["train_mfu_vs_row_peak"] == pytest.approx(row["train_flops"] / max(peaks))
    assert row["train_mfu_vs_row_peak"] <= row["train_mfu"] * (1 + 1e-9)
    assert 0 <= row["train_pad_share"] < 1 and 0 <= row["eval_pad_share"] < 1
    assert row["precision_resolved"] == "fp32" and row["attn_implementation"] == "sdpa"
    assert row["peak_memory_train_mib"] > 0 and row["memory_kind"] == "rss"
    assert len(row["train_seconds"]) == 2
    assert row["train_cpu_share"] == pytest.approx(statistics.median(row["train_cpu_shares"]))
    assert all(0 < share < 1.5 for share in row["train_cpu_shares"] + row["eval_cpu_shares"])


def test_stopwatch_tells_busy_cores_from_idle_waiting():
    with bench.Stopwatch(torch.device("cpu")) as busy:
        end = time.perf_counter() + 0.2
        while time.perf_counter() < end:  # one thread spinning: all of its own time on the CPU
            pass
    with bench.Stopwatch(torch.device("cpu")) as idle:
        time.sleep(0.2)  # off the CPU, as when other processes hold the cores
    threads = torch.get_num_threads()
    assert busy.wall >= 0.2 and 0.25 / threads < busy.cpu_share <= 1.05 / threads  # one of `threads` threads
    assert idle.cpu_share < 0.02


def test_grid_expands_comma_lists_and_rejects_bad_settings():
    grid = bench.expand_grid(batch_size=(32, 512), minibatch_size=8, precision=("fp32", "bf16"))
    assert [(s.batch_size, s.precision) for s in grid] == [(32, "fp32"), (32, "bf16"), (512, "fp32"), (512, "bf16")]
    assert all(s.minibatch_size == 8 for s in grid)
    with pytest.raises(ValueError, match="unknown flag"):
        bench.expand_grid(batchsize=3)
    with pytest.raises(ValueError, match="unknown --arch"):
        bench.check_settings(bench.BenchSettings(arch="big"))
    with pytest.raises(ValueError, match="not a multiple"):
        bench.check_settings(bench.BenchSettings(batch_size=32, minibatch_size=5))
    assert bench.parse_arch("gpt2-medium") == (24, 1024, 16) and bench.parse_arch("4x256") == (4, 256, 4)


@pytest.mark.slow
def test_cli_runs_rows_in_fresh_processes_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "weak_to_strong.bench", "--arch=1x64", "--min_len=3", "--max_len=9",
           "--batch_size=4,8", "--minibatch_size=4", "--steps=1", "--warmup_steps=1", "--repeats=1",
           "--eval_examples=8", "--matmul_size=256", f"--out={out}"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    assert [r["batch_size"] for r in rows] == [4, 8]
    assert "train MFU %" in result.stdout and "eval/train" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "weak_to_strong.bench", "--precision=fp8"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown precision 'fp8'" in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "weak_to_strong.bench", "--help"],
                           capture_output=True, text=True, timeout=120)
    text = usage.stdout + usage.stderr  # fire writes help to stderr when not on a terminal
    assert usage.returncode == 0 and "--minibatch_size" in text and "--precision" in text


def test_packed_rows_count_real_and_padded_tokens():
    """Automatic minibatches pack on CPU: real tokens are still every document's tokens once, and the
    padded count is the packed rows' area, less padding than one document per row would carry."""
    common = dict(arch="1x64", min_len=3, max_len=30, batch_size=16, steps=2, warmup_steps=1, eval_examples=8,
                  repeats=1, matmul_size=128)
    packed = bench.run_row(bench.BenchSettings(**common))
    padded = bench.run_row(bench.BenchSettings(**common, pack=False))
    gen = torch.Generator().manual_seed(0)
    bench.synthetic_examples(16, 3, 30, bench.GPT2_VOCAB_SIZE, gen)  # the warmup draw
    train = bench.synthetic_examples(32, 3, 30, bench.GPT2_VOCAB_SIZE, gen)
    assert packed["train_real_tokens"] == padded["train_real_tokens"] == int(train.lengths.sum())
    assert 0 <= packed["train_pad_share"] < padded["train_pad_share"]
