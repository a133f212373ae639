"""``mint run`` / ``mint demo``: the whole pipeline from one config, each stage cached by its inputs."""

from mint.pipeline.config import DEFAULTS, RunConfig, load_run_config
from mint.pipeline.run import run_pipeline, summary_table
from mint.pipeline.stages import StageCache, input_hash

__all__ = [
    "DEFAULTS",
    "RunConfig",
    "load_run_config",
    "run_pipeline",
    "summary_table",
    "StageCache",
    "input_hash",
]
