"""Data sets: the built-in procedural motion-QA benchmark and loaders for the real data sets users have.

Every function returns a `datasets` object whose QA rows share one schema (question, answer, motion_path,
video_path, query_type, relation_type, conversations), so the same collator and evaluation work on all.
"""

from .augmentation import mirror_joints, mirror_qa_split, mirror_segments, mirror_text
from .loaders import (
    MissingMediaReport,
    cmu_action_label,
    load_activitynet_qa,
    load_babel_qa,
    load_bandai_namco,
    load_cmu_bvh,
    load_custom_qa,
    load_humanml3d,
    load_kitml,
    select_qa_columns,
)
from .procedural import (
    MotionQAGenerator,
    MotionSpec,
    SegmentSpec,
    enumerate_questions,
    generate_motion,
    generate_motion_qa,
    make_caption,
)
from .sampling import oversample_to_balance

__all__ = [
    "MissingMediaReport",
    "MotionQAGenerator",
    "MotionSpec",
    "SegmentSpec",
    "cmu_action_label",
    "enumerate_questions",
    "generate_motion",
    "generate_motion_qa",
    "load_activitynet_qa",
    "load_babel_qa",
    "load_bandai_namco",
    "load_cmu_bvh",
    "load_custom_qa",
    "load_humanml3d",
    "load_kitml",
    "make_caption",
    "mirror_joints",
    "mirror_qa_split",
    "mirror_segments",
    "mirror_text",
    "oversample_to_balance",
    "select_qa_columns",
]
