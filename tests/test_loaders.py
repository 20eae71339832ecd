"""Loaders for real data: the real files in ../shared/data and tiny fixtures in the same formats."""

import json
import logging
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest

from humocon_hf.data.loaders import (
    QA_FEATURES,
    babel_relation_type,
    load_activitynet_qa,
    load_babel_qa,
    load_cmu_bvh,
    load_custom_qa,
    load_humanml3d,
    load_kitml,
    select_qa_columns,
)

# ------------------------------------------------------------------------------------------- BABEL-QA


def test_babel_qa_real_counts_and_types(shared_data):
    root = shared_data / "babel_qa"
    dd = load_babel_qa(root)
    assert {k: len(v) for k, v in dd.items()} == {"train": 1800, "validation": 384, "test": 393}
    # Independent derivation from the raw programs: the query op of the last step, and the relate steps.
    raw = {}
    for split in ("train", "val", "test"):
        for rec in json.loads((root / f"BABELQA_{split}.json").read_text()):
            prog = " ".join(rec[2])
            if "intersect" in prog:
                rel = "in between"
            elif "relate" in prog:
                rel = "before" if ", before)" in prog else "after"
            else:
                rel = "none"
            raw[rec[0]] = (rec[2][-1].split("query_")[1].split("(")[0], rel, rec[4])
    for split in dd:
        for row in dd[split]:
            assert (row["query_type"], row["relation_type"], row["answer"]) == raw[row["id"]]
    all_q = Counter(q for q, _, _ in raw.values())
    assert all_q == {"action": 1733, "direction": 512, "body_part": 332}
    # official split ids are the split membership
    official = json.loads((root / "split_question_ids.json").read_text())
    assert set(dd["validation"]["id"]) == set(official["val"])
    # amass_to_babel.json maps AMASS path -> BABEL id; the loader inverts it
    row = dd["test"][0]
    amass = json.loads((root / "amass_to_babel.json").read_text())
    assert amass[row["amass_path"]] == row["babel_id"]
    assert row["motion_path"] is None and row["video_path"] is None
    assert row["conversations"] == [
        {"role": "user", "content": row["question"]},
        {"role": "assistant", "content": row["answer"]},
    ]


def test_babel_relation_type_rejects_unknown_relation():
    with pytest.raises(ValueError, match="relation 'during'"):
        babel_relation_type(["[0]=scene([0])", "[1]=relate([0], during)", "?=query_action([1])"])


def test_babel_qa_motion_join_and_missing_report(shared_data, tmp_path, caplog):
    root = shared_data / "babel_qa"
    test_records = json.loads((root / "BABELQA_test.json").read_text())
    amass = {v: k for k, v in json.loads((root / "amass_to_babel.json").read_text()).items()}
    first_id, second_id = test_records[0][3], next(r[3] for r in test_records if r[3] != test_records[0][3])
    motions = tmp_path / "joints"
    motions.mkdir()
    np.save(motions / f"{first_id}.npy", np.zeros((30, 22, 3), np.float32))  # keyed by BABEL id
    by_path = motions / (amass[second_id] + ".npy")  # keyed by AMASS path
    by_path.parent.mkdir(parents=True)
    np.save(by_path, np.zeros((12, 22, 3), np.float32))
    expected = sum(r[3] in (first_id, second_id) for r in test_records)

    with caplog.at_level(logging.WARNING):
        dd, report = load_babel_qa(root, motions, return_report=True)
    assert len(dd["test"]) == expected and len(dd["train"]) + len(dd["validation"]) + expected < 2577
    assert report.total == 2577 and report.count == 2577 - sum(len(v) for v in dd.values())
    assert "have no motion file" in caplog.text and report.missing_ids[0] in caplog.text
    paths = set(dd["test"]["motion_path"])
    assert paths <= {str(motions / f"{first_id}.npy"), str(by_path)} and len(paths) == 2

    kept = load_babel_qa(root, motions, on_missing="keep")
    assert len(kept["test"]) == 393 and kept["test"]["motion_path"].count(None) == 393 - expected
    with pytest.raises(FileNotFoundError, match="BABEL-QA: .* have no motion file"):
        load_babel_qa(root, motions, on_missing="raise")

    np.save(motions / f"{first_id}.npy", np.zeros((30, 21, 3), np.float32))
    with pytest.raises(ValueError, match=rf"{first_id}\.npy: motion array has shape \(30, 21, 3\)"):
        load_babel_qa(root, motions)


def _babel_fixture(folder: Path, train_records, amass=None) -> Path:
    """A tiny BABEL-QA folder in the published format."""
    folder.mkdir(parents=True, exist_ok=True)
    ok = ["009001", "What action does the person do?", ["[0]=scene([0])", "?=query_action([0])"], "77", "walk"]
    (folder / "BABELQA_train.json").write_text(json.dumps(train_records))
    (folder / "BABELQA_val.json").write_text(json.dumps([ok]))
    (folder / "BABELQA_test.json").write_text(json.dumps([]))
    ids = {"train": [r[0] for r in train_records if isinstance(r, list) and r], "val": ["009001"], "test": []}
    (folder / "split_question_ids.json").write_text(json.dumps(ids))
    (folder / "amass_to_babel.json").write_text(json.dumps(amass or {"CMU/01/01_01_poses": "77"}))
    return folder


_GOOD_BABEL_RECORD = ["000001", "What direction does the person move?", ["[0]=scene([0])", "?=query_direction([0])"],
                      "77", "left"]


@pytest.mark.parametrize(
    "train_records, match",
    [
        pytest.param([_GOOD_BABEL_RECORD, ["000002", "What?", ["?=query_action([0])"], "77"]],
                     r"BABELQA_train\.json: record 1: expected \[question_id", id="record_of_four_fields"),
        pytest.param([_GOOD_BABEL_RECORD,
                      ["000003", "What?", ["[0]=scene([0])", "[1]=filter_action([0], walk)"], "77", "walk"]],
                     r"record 1 \(question_id 000003\): the last program step", id="program_without_a_query"),
        pytest.param([["000004", "What?", ["scene", "?=query_action([0])"], "77", "walk"]],
                     r"record 0 \(question_id 000004\): program step 'scene'", id="malformed_program_step"),
        pytest.param([["000005", "What?", ["[0]=scene([0])", "?=query_action([0])"], "77", ""]],
                     "record 0: answer must be a non-empty string", id="empty_answer"),
    ],
)
def test_babel_qa_malformed_records(tmp_path, train_records, match):
    root = _babel_fixture(tmp_path / "babel_qa", train_records)
    with pytest.raises(ValueError, match=match):
        load_babel_qa(root)


def test_babel_qa_amass_conversion_is_cached(tmp_path):
    rec = ["000001", "What direction does the person move?", ["[0]=scene([0])", "?=query_direction([0])"], "77", "left"]
    root = _babel_fixture(tmp_path / "babel", [rec])
    amass = tmp_path / "amass" / "CMU" / "01"
    amass.mkdir(parents=True)
    np.savez(amass / "01_01_poses.npz", poses=np.zeros((5, 156)))
    calls = []

    def fake_amass_loader(npz_path, body_model_dir):  # stands in for motion_io.load_amass_npz
        calls.append(npz_path)
        return np.full((7, 22, 3), 0.5, np.float32)

    cache = tmp_path / "cache"
    dd = load_babel_qa(root, amass_dir=tmp_path / "amass", joints_cache_dir=cache, amass_loader=fake_amass_loader)
    assert dd["train"][0]["motion_path"] == str(cache / "77.npy")
    assert np.load(cache / "77.npy").shape == (7, 22, 3)
    load_babel_qa(root, amass_dir=tmp_path / "amass", joints_cache_dir=cache, amass_loader=fake_amass_loader)
    assert len(calls) == 1  # second load reads the cache
    # Without a converter, motion_path points at the .npz itself.
    dd = load_babel_qa(root, amass_dir=tmp_path / "amass")
    assert dd["train"][0]["motion_path"].endswith("01_01_poses.npz")


# ------------------------------------------------------------------------------------------- HumanML3D


def _humanml3d_fixture(root: Path, shared_data: Path) -> Path:
    sample = shared_data / "humanml3d_sample"
    for sub, name in (("new_joints", "new_joints_012314.npy"), ("new_joint_vecs", "new_joint_vecs_012314.npy")):
        (root / sub).mkdir(parents=True)
        (root / sub / "012314.npy").symlink_to(sample / name)
    (root / "texts").mkdir()
    (root / "texts" / "012314.txt").write_text(
        "a person walks forward.#a/DET person/NOUN walk/VERB forward/ADV#0.0#0.0\n"
        "someone steps ahead then stops#someone/PRON step/VERB ahead/ADV#1.5#4.0\n"
    )
    (root / "train.txt").write_text("012314\n")
    return root


def test_humanml3d_layout_with_real_sample(shared_data, tmp_path):
    root = _humanml3d_fixture(tmp_path / "hml", shared_data)
    ds = load_humanml3d(root, split="train")
    assert len(ds) == 1
    row = ds[0]
    assert row["id"] == "012314" and row["num_frames"] == 170
    assert row["captions"] == ["a person walks forward.", "someone steps ahead then stops"]
    assert row["starts"] == [0.0, 1.5] and row["ends"] == [0.0, 4.0]
    assert row["motion_path"].endswith("new_joints/012314.npy") and row["features_path"].endswith("012314.npy")
    per_caption = load_humanml3d(root, one_row_per_caption=True)
    assert per_caption["id"] == ["012314#0", "012314#1"] and per_caption["caption"][1] == "someone steps ahead then stops"


def test_humanml3d_malformed(shared_data, tmp_path):
    root = _humanml3d_fixture(tmp_path / "hml", shared_data)
    (root / "texts" / "012314.txt").write_text("a person walks#tokens#0.0\n")
    with pytest.raises(ValueError, match=r"012314\.txt: line 1: expected 'caption#tokens#start#end'"):
        load_humanml3d(root)
    (root / "texts" / "012314.txt").write_text("a person walks#a/DET#0.0#0.0\n")
    (root / "new_joints" / "012314.npy").unlink()
    np.save(root / "new_joints" / "012314.npy", np.zeros((170, 21, 3), np.float32))
    with pytest.raises(ValueError, match=r"012314\.npy: motion array has shape \(170, 21, 3\)"):
        load_humanml3d(root)
    (root / "train.txt").write_text("012314\n999999\n")
    (root / "new_joints" / "012314.npy").unlink()
    with pytest.raises(FileNotFoundError, match="1 of 2 examples have no motion or text file"):
        load_humanml3d(root, split="train", on_missing="raise")


# ---------------------------------------------------------------------------------------------- KIT-ML


def test_kitml_real(shared_data):
    dd = load_kitml(shared_data / "kitml")
    assert {k: len(v) for k, v in dd.items()} == {"train": 4688, "validation": 292, "test": 786}
    everything = load_kitml(shared_data / "kitml" / "annotations.json", split="all")
    assert len(everything) == 5766
    assert len(load_kitml(shared_data / "kitml", split="all", include_mirrored=False)) == 2883
    raw = json.loads((shared_data / "kitml" / "annotations.json").read_text())
    row = dd["train"][0]
    assert row["captions"] == [a["text"] for a in raw[row["id"]]["annotations"]]
    assert row["amass_path"] == raw[row["id"]]["path"]
    n_cmu = sum(p.startswith("CMU/") for p in everything["amass_path"])
    assert n_cmu == 790


@pytest.mark.parametrize(
    "annotations, match",
    [
        pytest.param({"00001": {"path": "KIT/1/a_poses", "duration": 2.0, "annotations": [{"seg_id": "x", "start": 0, "end": 2}]}},
                     r"annotations\.json: record '00001': annotation 0 must have a non-empty 'text'",
                     id="annotation_without_text"),
        pytest.param({"00002": {"path": "KIT/1/a_poses", "duration": -1, "annotations": []}},
                     r"record '00002': 'duration' must be a positive number", id="negative_duration"),
    ],
)
def test_kitml_malformed(tmp_path, annotations, match):
    file = tmp_path / "annotations.json"
    file.write_text(json.dumps(annotations))
    with pytest.raises(ValueError, match=match):
        load_kitml(file)


def test_kitml_motion_join(tmp_path):
    file = tmp_path / "annotations.json"
    file.write_text(json.dumps({
        "00001": {"path": "KIT/1/a_poses", "duration": 2.0, "annotations": [{"seg_id": "00001_0", "text": "walks", "start": 0, "end": 2}]},
        "00002": {"path": "CMU/07/07_05_poses", "duration": 3.0, "annotations": [{"seg_id": "00002_0", "text": "runs", "start": 0, "end": 3}]},
    }))
    motions = tmp_path / "m"
    (motions / "CMU" / "07").mkdir(parents=True)
    np.save(motions / "CMU" / "07" / "07_05_poses.npy", np.zeros((4, 22, 3)))
    ds, = [load_kitml(file, motion_dir=motions)]
    assert ds["id"] == ["00002"] and ds[0]["motion_path"].endswith("07_05_poses.npy")


# ------------------------------------------------------------------------------------------------- CMU


def test_cmu_bvh_real(shared_data):
    ds = load_cmu_bvh(shared_data / "cmu_bvh", shared_data / "cmu_index" / "CMU_data.csv")
    assert len(ds) == 41 == len(list((shared_data / "cmu_bvh").glob("*.bvh")))
    captions = dict(zip(ds["id"], ds["caption"]))
    assert captions["02_01"] == "walk" and captions["09_01"] == "run" and captions["16_01"] == "jump"
    assert all(c for c in ds["caption"])
    assert set(ds["source_fps"]) == {120.0}  # 16_01's BVH header says 30 fps; the CSV knows better
    actions = dict(zip(ds["id"], ds["action"]))
    assert actions["02_01"] == "walk" and actions["09_01"] == "run" and actions["16_01"] == "jump"
    assert actions["13_10"] == "jump" and actions["08_05"] == "walk"  # "jump up to grab, reach for...", "walk/stride"
    assert set(actions.values()) == {"walk", "run", "jump"}
    iclone = load_cmu_bvh(shared_data / "cmu_bvh_iclone", shared_data / "cmu_index" / "CMU_data.csv")
    assert dict(zip(iclone["id"], iclone["caption"]))["02_01"] == "walk"


def test_cmu_bvh_missing_and_malformed(tmp_path):
    csv_file = tmp_path / "CMU_data.csv"
    csv_file.write_text('"Subject","Trial #","Motion Description","framerate"\n2,1,"walk",120\n')
    bvh = tmp_path / "bvh"
    bvh.mkdir()
    (bvh / "02_01.bvh").write_text("HIERARCHY\n")
    (bvh / "99_99.bvh").write_text("HIERARCHY\n")
    (bvh / "notes.bvh").write_text("HIERARCHY\n")
    ds = load_cmu_bvh(bvh, csv_file)
    assert ds["id"] == ["02_01"]
    assert load_cmu_bvh(bvh, csv_file, on_missing="keep")["caption"] == ["walk", None]
    with pytest.raises(ValueError, match=r"1 of 2 examples have no description .*99_99"):
        load_cmu_bvh(bvh, csv_file, on_missing="raise")
    csv_file.write_text('"Subject","Trial #","Motion Description","framerate"\n2,1,"walk",120\nx,2,"run",120\n')
    with pytest.raises(ValueError, match=r"CMU_data\.csv: line 3: Subject / Trial # must be integers"):
        load_cmu_bvh(bvh, csv_file)


# -------------------------------------------------------------------------------------- ActivityNet-QA


def test_activitynet_qa_real_and_video_matching(shared_data, tmp_path):
    q = shared_data / "activitynet_qa" / "test_q_sample.json"
    a = shared_data / "activitynet_qa" / "test_a_sample.json"
    ds = load_activitynet_qa(q, a)
    assert len(ds) == 300 and ds.features["conversations"] == QA_FEATURES["conversations"]
    assert Counter(ds["query_type"]) == {"yes_no": 198, "number": 69, "other": 32, "location": 1}
    videos = tmp_path / "videos"
    videos.mkdir()
    names = list(dict.fromkeys(ds["video_id"]))
    (videos / f"v_{names[0]}.mp4").write_bytes(b"")
    (videos / f"{names[1]}.mkv").write_bytes(b"")
    expected = sum(v in names[:2] for v in ds["video_id"])
    with_videos, report = load_activitynet_qa(q, a, videos, return_report=True)
    assert len(with_videos) == expected and report.count == 300 - expected
    assert {Path(p).name for p in with_videos["video_path"]} == {f"v_{names[0]}.mp4", f"{names[1]}.mkv"}
    with pytest.raises(FileNotFoundError, match=f"ActivityNet-QA: {300 - expected} of 300 examples have no video"):
        load_activitynet_qa(q, a, videos, on_missing="raise")


@pytest.mark.parametrize(
    "answers, match",
    [
        pytest.param([{"answer": "no", "type": 12, "question_id": "v_abc_1"}],
                     r"a\.json: record 0 \(question_id v_abc_1\): type 12 not in 0\.\.8", id="unknown_type"),
        pytest.param([{"answer": "no", "type": 3, "question_id": "v_other"}],
                     r"q\.json: record 0: question_id v_abc_1 has no answer", id="question_without_answer"),
    ],
)
def test_activitynet_qa_malformed(tmp_path, answers, match):
    q, a = tmp_path / "q.json", tmp_path / "a.json"
    q.write_text(json.dumps([{"video_name": "abc", "question": "is it red", "question_id": "v_abc_1"}]))
    a.write_text(json.dumps(answers))
    with pytest.raises(ValueError, match=match):
        load_activitynet_qa(q, a)


# ----------------------------------------------------------------------------------------------- custom


def test_custom_qa_jsonl_and_conversations(tmp_path):
    (tmp_path / "m.npy").write_bytes(b"x")
    (tmp_path / "v.mp4").write_bytes(b"x")
    lines = [
        {"id": "a", "motion": "m.npy", "question": "What does the person do?", "answer": "walk"},
        {"video": "v.mp4", "conversations": [
            {"from": "human", "value": "Describe the video."}, {"from": "gpt", "value": "A man runs."},
            {"from": "human", "value": "How fast?"}, {"from": "gpt", "value": "Fast."}]},
        {"motion_path": "gone.npy", "question": "q", "answer": "x"},
    ]
    file = tmp_path / "qa.jsonl"
    file.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    ds, report = load_custom_qa(file, return_report=True)
    assert ds.features == QA_FEATURES and len(ds) == 2 and report.missing_ids == ["2"]
    assert ds[0]["motion_path"] == str(tmp_path / "m.npy") and ds[0]["video_path"] is None
    assert ds[0]["conversations"] == [{"role": "user", "content": "What does the person do?"},
                                      {"role": "assistant", "content": "walk"}]
    assert ds[1]["question"] == "Describe the video." and ds[1]["answer"] == "A man runs."
    assert [m["role"] for m in ds[1]["conversations"]] == ["user", "assistant", "user", "assistant"]
    with pytest.raises(FileNotFoundError, match="gone.npy"):
        load_custom_qa(file, on_missing="raise")
    # The same records as a datasets.Dataset, and as a local data set folder read by load_dataset
    as_ds = load_custom_qa(datasets.Dataset.from_list(lines[:1]), base_dir=tmp_path)
    assert as_ds[0]["motion_path"] == str(tmp_path / "m.npy")
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "m.npy").write_bytes(b"x")
    (folder / "train.jsonl").write_text(json.dumps(lines[0]) + "\n")
    from_folder = load_custom_qa(folder, split="train")
    assert from_folder[0]["motion_path"] == str(folder / "m.npy")


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        pytest.param(json.dumps({"motion": "m.npy", "question": "q", "answer": "a"}) + "\n{not json\n", {},
                     r"qa\.jsonl: line 2 is not valid JSON", id="line_not_json"),
        pytest.param(json.dumps({"question": "q", "answer": "a"}) + "\n", {},
                     r"qa\.jsonl: line 1: needs a 'motion' and/or 'video' path", id="no_media"),
        pytest.param(json.dumps({"motion": "m.npy", "conversations": [{"role": "narrator", "content": "hi"}]}) + "\n",
                     {"check_files": False}, r"qa\.jsonl: line 1: message 0 has role 'narrator'", id="unknown_role"),
    ],
)
def test_custom_qa_malformed(tmp_path, text, kwargs, match):
    file = tmp_path / "qa.jsonl"
    file.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_custom_qa(file, **kwargs)


def test_qa_loaders_share_a_schema(shared_data):
    babel = select_qa_columns(load_babel_qa(shared_data / "babel_qa"))["test"]
    anet = select_qa_columns(load_activitynet_qa(shared_data / "activitynet_qa" / "test_q_sample.json",
                                                 shared_data / "activitynet_qa" / "test_a_sample.json"))
    both = datasets.concatenate_datasets([babel, anet])
    assert len(both) == 393 + 300 and both.features == QA_FEATURES


# ----------------------------------------------------------------------------------------------- Bandai Namco


def test_bandai_namco_real(shared_data):
    from humocon_hf.data.loaders import load_bandai_namco

    ds = load_bandai_namco(shared_data / "bandai_namco_1")
    assert len(ds) == 174
    assert Counter(ds["style"])["happy"] == 11 and len(set(ds["content"])) == 16 and len(set(ds["style"])) == 15
    rows = {r["id"]: r for r in ds}
    assert rows["walk-back_angry_001"]["caption"] == "a person walks backwards angrily"
    assert (rows["walk-back_angry_001"]["action"], rows["walk-back_angry_001"]["direction"]) == ("walk", "backwards")
    assert rows["bye_normal_001"]["caption"] == "a person waves goodbye with one hand"
    assert rows["bye_normal_001"]["action"] == "wave" and rows["bow_old_001"]["action"] is None
    assert all(Path(p).is_file() for p in ds["motion_path"])


def test_bandai_namco_label_errors(shared_data, tmp_path):
    from humocon_hf.data.loaders import load_bandai_namco

    source = shared_data / "bandai_namco_1"
    (tmp_path / "data").mkdir()
    (tmp_path / "cfg").symlink_to(source / "cfg")
    take = "dataset-1_kick_tired_001"
    (tmp_path / "data" / f"{take}.bvh").symlink_to(source / "data" / f"{take}.bvh")
    (tmp_path / "data" / f"{take}.json").write_text(json.dumps({"content": 0, "style": 0}))  # walk, normal
    with pytest.raises(ValueError, match=r"disagree with the file name \(kick, tired\)"):
        load_bandai_namco(tmp_path)
    (tmp_path / "data" / f"{take}.json").write_text(json.dumps({"content": "x"}))
    with pytest.raises(ValueError, match="expected"):
        load_bandai_namco(tmp_path)
    (tmp_path / "data" / f"{take}.json").unlink()
    assert load_bandai_namco(tmp_path)[0]["caption"] == "a person kicks tiredly"
    (tmp_path / "data" / "walk.bvh").write_text("HIERARCHY\n")
    with pytest.raises(ValueError, match="not a Bandai Namco take name"):
        load_bandai_namco(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_bandai_namco(tmp_path / "missing")


@pytest.mark.parametrize("description,action", [
    ("walk", "walk"), ("slow walk/stride", "walk"), ("Walking on uneven terrain", "walk"), ("run", "run"),
    ("forward jump", "jump"), ("playground - forward jumps, turn around", "jump"), ("jumping jacks", "jumping jacks"),
    ("run/jog", None), ("walk, then run", None), ("playground - climb", None), ("", None), (None, None),
])
def test_cmu_action_label_only_answers_unambiguous_descriptions(description, action):
    from humocon_hf.data import cmu_action_label

    assert cmu_action_label(description) == action
