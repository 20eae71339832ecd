"""`python -m humocon_hf.pipeline <options.json> <stage>`: run one stage of the pipeline the options describe, on one
thread. It is the second process of `side_process` (the text-only baseline alongside stage 3); living here, not in
`side_process`, keeps the launch code free of the pipeline it launches (no import cycle)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from humocon_hf.pipeline.side_process import PARENT_PID_ENV, tie_to_parent


def main(argv: list[str] | None = None) -> int:
    if os.environ.get(PARENT_PID_ENV):  # started by `SideStage`: live no longer than the main process
        tie_to_parent(int(os.environ[PARENT_PID_ENV]))
    import torch

    from humocon_hf.auto import register_auto_classes
    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m humocon_hf.pipeline <options.json> <stage>", file=sys.stderr)
        return 2
    options_path, stage = argv
    torch.set_num_threads(1)
    register_auto_classes()
    options = PipelineOptions(**json.loads(Path(options_path).read_text()))
    HuMoConPipeline(options).run_single_stage(stage)
    return 0


if __name__ == "__main__":
    sys.exit(main())
