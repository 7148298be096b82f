"""Run loggers: a jsonl file per run, Weights & Biases when WANDB_PROJECT is set, or nothing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class NullLogger:
    def log(self, record: dict) -> None:
        pass

    def close(self) -> None:
        pass


class JsonlLogger:
    """One JSON object per line, flushed per record, so a crashed run keeps its log."""

    def __init__(self, path: str | Path):
        self.file = open(path, "w")

    def log(self, record: dict) -> None:
        self.file.write(json.dumps({"time": time.time(), **record}) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class WandbLogger:
    """Weights & Biases, imported only when used (the `wandb` extra)."""

    def __init__(self, project: str, name: str, config: dict):
        import wandb

        self.run = wandb.init(project=project, name=name, config=config, reinit="finish_previous")

    def log(self, record: dict) -> None:
        self.run.log(record)

    def close(self) -> None:
        self.run.finish()


class MultiLogger:
    def __init__(self, *loggers):
        self.loggers = loggers

    def log(self, record: dict) -> None:
        for logger in self.loggers:
            logger.log(record)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def make_run_logger(log_path: Path, run_name: str, config: dict):
    """jsonl always; W&B too when WANDB_PROJECT is set."""
    loggers = [JsonlLogger(log_path)]
    if os.environ.get("WANDB_PROJECT"):
        loggers.append(WandbLogger(os.environ["WANDB_PROJECT"], run_name, config))
    return MultiLogger(*loggers)
