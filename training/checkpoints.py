"""Resuming after a hard kill: find the last checkpoint that was written completely.

`Trainer._save_checkpoint` writes a checkpoint folder file by file (weights, optimizer, scheduler, RNG state) and
`trainer_state.json` last, with nothing atomic about the folder. A process killed with SIGKILL (or by the OOM
killer, or a pre-empted node) in the middle of a save leaves a `checkpoint-N` folder without `trainer_state.json`;
`transformers.trainer_utils.get_last_checkpoint` would still pick it (it only compares step numbers) and the
resumed run would crash or start from half-written weights. `last_complete_checkpoint` skips and removes such
folders, so re-running the same command resumes from the newest checkpoint that is whole.
"""

from __future__ import annotations

import logging
import os
import re
import shutil

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

logger = logging.getLogger(__name__)

TRAINER_STATE_NAME = "trainer_state.json"  # transformers.trainer's name for it (importing trainer.py is slow)
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def last_complete_checkpoint(folder: str | os.PathLike, remove_incomplete: bool = True) -> str | None:
    """The newest `checkpoint-N` in `folder` that holds `trainer_state.json` (written last by the Trainer), or None.

    Newer folders without it are interrupted saves: removed (with a warning) when `remove_incomplete`, so that
    checkpoint rotation and the next save of the same step do not trip over them."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return None
    steps = sorted(
        ((int(m.group(1)), name) for name in os.listdir(folder)
         if (m := _CHECKPOINT.match(name)) and os.path.isdir(os.path.join(folder, name))),
        reverse=True,
    )
    for _, name in steps:
        path = os.path.join(folder, name)
        if os.path.isfile(os.path.join(path, TRAINER_STATE_NAME)):
            return path
        logger.warning("%s was not written completely (no %s: the process was killed while saving); %s",
                       path, TRAINER_STATE_NAME, "removing it" if remove_incomplete else "skipping it")
        if remove_incomplete:
            shutil.rmtree(path, ignore_errors=True)
    return None


__all__ = ["last_complete_checkpoint"]
