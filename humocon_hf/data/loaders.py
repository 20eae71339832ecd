"""Loaders that turn the real data sets users have into `datasets` objects: the stable import path.

`from humocon_hf.data.loaders import load_babel_qa` (or from `humocon_hf.data`) keeps working; the code lives in one
module per data set family:

* `humocon_hf.data.loader_common`: the QA and caption schemas (`QA_FEATURES`, `CAPTION_FEATURES`,
  `select_qa_columns`), `MissingMediaReport` and the missing-media policy, the file checks every loader uses;
* `humocon_hf.data.babel_qa`: BABEL-QA (`load_babel_qa`, `babel_query_type`, `babel_relation_type`);
* `humocon_hf.data.text_motion`: the text-motion corpora HumanML3D and KIT-ML (`load_humanml3d`, `load_kitml`);
* `humocon_hf.data.real_mocap`: real mocap BVH, CMU (`load_cmu_bvh`, `cmu_action_label`) and Bandai Namco
  (`load_bandai_namco`, `BANDAI_CONTENT`, `BANDAI_STYLE`);
* `humocon_hf.data.activitynet_qa`: ActivityNet-QA (`load_activitynet_qa`, `ACTIVITYNET_QA_TYPES`);
* `humocon_hf.data.custom_qa`: a user's own QA data (`load_custom_qa`) and `ROLE_ALIASES`.

Every loader validates its input records and raises a `ValueError` naming the file and the record when
one is malformed, so a corrupt download fails at load time and not in the middle of training. The schemas and the
missing-media policy are described in `humocon_hf.data.loader_common`.

A test that monkeypatches a loader's helper must patch it in the module that defines it, not here.
"""

from __future__ import annotations

from humocon_hf.data.activitynet_qa import ACTIVITYNET_QA_TYPES, load_activitynet_qa
from humocon_hf.data.babel_qa import babel_query_type, babel_relation_type, load_babel_qa
from humocon_hf.data.custom_qa import ROLE_ALIASES, load_custom_qa
from humocon_hf.data.loader_common import CAPTION_FEATURES, QA_FEATURES, MissingMediaReport, select_qa_columns
from humocon_hf.data.real_mocap import BANDAI_CONTENT, BANDAI_STYLE, cmu_action_label, load_bandai_namco, load_cmu_bvh
from humocon_hf.data.text_motion import load_humanml3d, load_kitml

__all__ = [
    "ACTIVITYNET_QA_TYPES",
    "BANDAI_CONTENT",
    "BANDAI_STYLE",
    "CAPTION_FEATURES",
    "QA_FEATURES",
    "ROLE_ALIASES",
    "MissingMediaReport",
    "babel_query_type",
    "babel_relation_type",
    "cmu_action_label",
    "load_activitynet_qa",
    "load_babel_qa",
    "load_bandai_namco",
    "load_cmu_bvh",
    "load_custom_qa",
    "load_humanml3d",
    "load_kitml",
    "select_qa_columns",
]
