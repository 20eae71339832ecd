"""ActivityNet-QA: video questions and answers joined by question id, with the user's videos."""

from __future__ import annotations

from pathlib import Path

import datasets

from humocon_hf.data.loader_common import (
    QA_FEATURES,
    MissingMediaReport,
    _apply_missing_policy,
    _check_on_missing,
    _from_rows,
    _index_files,
    _qa_conversation,
    _read_json,
)
from humocon_hf.processing.video_processing_humocon import VIDEO_EXTENSIONS

__all__ = ["ACTIVITYNET_QA_TYPES", "load_activitynet_qa"]

# ActivityNet-QA `type` field (DATASET_README): 0-2 question types, 3-8 answer types of free questions.
ACTIVITYNET_QA_TYPES = {
    0: "motion",
    1: "spatial_relation",
    2: "temporal_relation",
    3: "yes_no",
    4: "color",
    5: "object",
    6: "location",
    7: "number",
    8: "other",
}


def load_activitynet_qa(
    questions_json: str | Path,
    answers_json: str | Path,
    video_dir: str | Path | None = None,
    *,
    on_missing: str = "drop",
    return_report: bool = False,
):
    """ActivityNet-QA (`*_q.json`: [{video_name, question, question_id}], `*_a.json`: [{answer, type,
    question_id}]) joined by question id, with videos from the user's `video_dir` matched as
    `v_<video_name>.<ext>` or `<video_name>.<ext>` (mp4, mkv, webm, avi, mov, ...).

    Columns: the QA schema (`query_type` = the ActivityNet type name, see `ACTIVITYNET_QA_TYPES`;
    `relation_type` None) plus `video_id` and `answer_type` (the raw int).
    """
    _check_on_missing(on_missing)
    qfile, afile = Path(questions_json), Path(answers_json)
    questions, answers = _read_json(qfile), _read_json(afile)
    for file, data in ((qfile, questions), (afile, answers)):
        if not isinstance(data, list):
            raise ValueError(f"{file}: expected a JSON list of records")
    by_id: dict[str, dict] = {}
    for i, a in enumerate(answers):
        if not isinstance(a, dict) or not isinstance(a.get("question_id"), str) or not isinstance(a.get("answer"), str):
            raise ValueError(f"{afile}: record {i}: expected {{answer: str, type: int, question_id: str}}, got {a!r}")
        if a.get("type") not in ACTIVITYNET_QA_TYPES:
            raise ValueError(f"{afile}: record {i} (question_id {a['question_id']}): type {a.get('type')!r} not in 0..8")
        if a["question_id"] in by_id:
            raise ValueError(f"{afile}: record {i}: duplicate question_id {a['question_id']}")
        by_id[a["question_id"]] = a
    index = _index_files(Path(video_dir), VIDEO_EXTENSIONS)[1] if video_dir is not None else None
    rows, seen = [], set()
    for i, q in enumerate(questions):
        if not isinstance(q, dict) or not all(isinstance(q.get(k), str) and q.get(k) for k in ("video_name", "question", "question_id")):
            raise ValueError(f"{qfile}: record {i}: expected {{video_name, question, question_id}} strings, got {q!r}")
        qid = q["question_id"]
        if qid in seen:
            raise ValueError(f"{qfile}: record {i}: duplicate question_id {qid}")
        seen.add(qid)
        if qid not in by_id:
            raise ValueError(f"{qfile}: record {i}: question_id {qid} has no answer in {afile}")
        a = by_id[qid]
        video = None
        if index is not None:
            vid = q["video_name"]
            video = index.get(f"v_{vid}") or index.get(vid)
        rows.append({
            "id": qid,
            "question": q["question"],
            "answer": a["answer"],
            "motion_path": None,
            "video_path": str(video) if video is not None else None,
            "query_type": ACTIVITYNET_QA_TYPES[a["type"]],
            "relation_type": None,
            "conversations": _qa_conversation(q["question"], a["answer"]),
            "video_id": q["video_name"],
            "answer_type": a["type"],
        })
    report = MissingMediaReport("ActivityNet-QA", "video", len(rows), [], str(video_dir or ""))
    if index is not None:
        report.missing_ids = [r["id"] for r in rows if r["video_path"] is None]
        rows = _apply_missing_policy(rows, "video_path", report, on_missing)
    features = datasets.Features({**QA_FEATURES, "video_id": datasets.Value("string"), "answer_type": datasets.Value("int32")})
    ds = _from_rows(rows, features=features)
    return (ds, report) if return_report else ds
