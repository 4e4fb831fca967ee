"""The synthetic dataset: deterministic, faithful to its scene descriptions, balanced, and long-range by construction."""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hierarchicalvlm.data.base import IGNORE_INDEX
from hierarchicalvlm.data.synthetic import (
    FAMILIES,
    NUMBERS,
    LengthCurriculum,
    Scene,
    SyntheticVideoQADataModule,
    SyntheticVideoQADataset,
    SyntheticVideoSpec,
    max_count,
    min_match_gap,
    min_order_separation,
)
from hierarchicalvlm.data.synthetic_render import COLOURS, PALETTE, SHAPES, SPRITES
from hierarchicalvlm.text.tokenizer import split_words

CONFIG = Path(__file__).resolve().parents[2] / "conf" / "data" / "synthetic.yaml"
DEFAULT_SPEC = SyntheticVideoSpec()
BATCH_KEYS = {"frames", "frame_mask", "caption_ids", "caption_mask", "question_ids", "question_mask", "answer", "video_id"}


def dataset(split: str = "train", size: int = 2000, seed: int = 0, **spec) -> SyntheticVideoQADataset:
    return SyntheticVideoQADataset(SyntheticVideoSpec(**spec), seed, split, size)


@functools.cache
def scenes(n: int, split: str = "train", **spec) -> tuple[Scene, ...]:
    """The first ``n`` scenes of a split (cached: several tests read the same ones)."""
    ds = dataset(split, size=n, **spec)
    return tuple(ds.scene(i) for i in range(n))


# --- a reference reader of rendered frames, and a reference solver of the questions ------------
_SPRITE_PIXELS = {shape: frozenset(map(tuple, np.argwhere(sprite))) for shape, sprite in SPRITES.items()}
_PALETTE = np.array([PALETTE[c] for c in COLOURS])


def read_frame(frame: torch.Tensor):
    """(colour, shape, y, x, marked) of the single object in a frame, or (None, marked)."""
    pixels = frame.numpy()
    edge = np.concatenate([pixels[:, 0, :], pixels[:, -1, :], pixels[:, :, 0], pixels[:, :, -1]], axis=1)
    marked = bool((edge == 1.0).all())
    bright = pixels.max(axis=0) > 0.5
    bright[0, :] = bright[-1, :] = bright[:, 0] = bright[:, -1] = False
    coords = np.argwhere(bright)
    if len(coords) == 0:
        return None, marked
    corner = coords.min(axis=0)
    pattern = frozenset(map(tuple, coords - corner))
    matches = [shape for shape, sprite in _SPRITE_PIXELS.items() if sprite == pattern]
    assert len(matches) == 1, f"unrecognised sprite {sorted(pattern)}"
    colour = pixels[:, bright].mean(axis=1)
    nearest = COLOURS[int(np.argmin(((_PALETTE - colour) ** 2).sum(axis=1)))]
    return (nearest, matches[0], int(corner[0]), int(corner[1]), marked), marked


def solve(question: str, objects: list) -> str:
    """Answer a question from the per-frame objects read off the pixels (``None`` = empty frame)."""
    shown = [(t, o) for t, o in enumerate(objects) if o is not None]
    if question.startswith("what"):  # needle: the attribute of the one object in a white frame
        (needle,) = [o for _, o in shown if o[4]]
        return needle[0] if "colour" in question else needle[1]
    if question.startswith("how many"):
        (target,) = [w for w in split_words(question) if w in COLOURS or w in SHAPES]
        return NUMBERS[sum(1 for _, o in shown if target in o[:2]) - 1]
    if "frame" in question:
        (first, _), (second, _) = [(o, t) for t, o in shown if o[4]]
        attribute = 0 if "colour" in question else 1
        return "yes" if first[attribute] == second[attribute] else "no"
    # order: an object is named "red square", "red object" or "square"
    a, b = re.match(r"(?:does|is) the (.+?) (?:appear|shown) .* the (.+)\?$", question).groups()
    (frame_a,) = [t for t, o in shown if a in (f"{o[0]} {o[1]}", f"{o[0]} object", o[1])]
    (frame_b,) = [t for t, o in shown if b in (f"{o[0]} {o[1]}", f"{o[0]} object", o[1])]
    a_first = frame_a < frame_b
    return "yes" if a_first == any(w in question for w in ("before", "earlier")) else "no"


@pytest.mark.parametrize("num_frames,frame_size,attributes",
                         [(32, 16, ("colour", "shape")), (64, 8, ("colour", "shape")), (9, 12, ("colour", "shape")),
                          (32, 16, ("colour",)), (32, 16, ("shape",))])
def test_pixels_show_exactly_the_scene_and_the_answer_follows_from_them(num_frames, frame_size, attributes):
    ds = dataset(num_frames=num_frames, frame_size=frame_size, noise=0.3, size=40, needle_attributes=attributes)
    for i in range(len(ds)):
        sample, scene = ds[i], ds.scene(i)
        by_frame = {e.frame: e for e in scene.events}
        objects = []
        for t in range(num_frames):
            read, marked = read_frame(sample["frames"][t])
            event = by_frame.get(t)
            expected = None if event is None else (event.colour, event.shape, event.y, event.x, event.marked)
            assert read == expected, f"sample {i}, frame {t}"
            assert marked == (event is not None and event.marked)
            objects.append(read)
        assert solve(scene.question, objects) == scene.answer == sample["answer"], scene.question


# --- determinism ------------------------------------------------------------------------------
def test_same_seed_split_index_gives_identical_samples_and_other_splits_or_seeds_differ():
    a, b = dataset(size=6), dataset(size=6)
    for i in range(6):
        x, y = a[i], b[i]
        assert torch.equal(x["frames"], y["frames"])
        assert (x["caption"], x["question"], x["answer"], x["video_id"]) == (y["caption"], y["question"], y["answer"], y["video_id"])
    assert torch.equal(a[3]["frames"], a[3]["frames"])  # access order does not matter
    for other in (dataset("val", size=6), dataset(seed=1, size=6)):
        assert all(not torch.equal(a[i]["frames"], other[i]["frames"]) for i in range(6))
        assert len({a[i]["caption"] for i in range(6)} & {other[i]["caption"] for i in range(6)}) < 3


def test_dataloader_workers_do_not_change_samples():
    dm = SyntheticVideoQADataModule(num_frames=16, frame_size=8, num_train=8, num_val=6, num_test=6, batch_size=3)
    dm.setup()
    serial = list(dm.val_dataloader())
    dm.num_workers = 2
    parallel = list(dm.val_dataloader())
    assert len(serial) == len(parallel) == 2
    for x, y in zip(serial, parallel):
        assert torch.equal(x["frames"], y["frames"]) and torch.equal(x["question_ids"], y["question_ids"])
        assert x["video_id"] == y["video_id"]


def test_index_out_of_range_raises():
    ds = dataset(size=3)
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(IndexError):
        ds[-1]


# --- shapes and the data-module contract ------------------------------------------------------
@pytest.mark.parametrize("num_frames,frame_size", [(8, 8), (32, 16), (100, 24)])
def test_sample_shapes_dtype_and_range(num_frames, frame_size):
    sample = dataset(num_frames=num_frames, frame_size=frame_size, size=2)[1]
    frames = sample["frames"]
    assert frames.shape == (num_frames, 3, frame_size, frame_size) and frames.dtype == torch.float32
    assert frames.min() >= 0 and frames.max() <= 1
    assert all(isinstance(sample[k], str) and sample[k] for k in ("caption", "question", "answer", "video_id"))


def test_collate_input_spec_and_vocabularies():
    dm = SyntheticVideoQADataModule(num_frames=16, frame_size=8, num_train=10, num_val=5, num_test=5)
    assert dm.model_inputs() == {"kind": "pixels", "frame_shape": (3, 8, 8), "max_frames": 16,
                                 "vocab_size": dm.tokenizer.vocab_size,
                                 "num_answers": len(NUMBERS) + 2 + len(COLOURS) + len(SHAPES),
                                 "tasks": ["count", "order", "match", "needle"]}
    samples = [dm.splits["test"][i] for i in range(5)]
    batch = dm.collate(samples)
    assert set(batch) == BATCH_KEYS | {"task", "depth"}
    assert torch.allclose(batch["depth"], torch.tensor([s["depth"] for s in samples]))
    assert [dm.task_names()[i] for i in batch["task"]] == [s["task"] for s in samples]
    assert batch["frames"].shape == (5, 16, 3, 8, 8) and batch["frame_mask"].all()
    assert (batch["answer"] != IGNORE_INDEX).all()
    assert [dm.answers[i] for i in batch["answer"]] == [s["answer"] for s in samples]
    assert batch["question_ids"].shape[0] == batch["caption_ids"].shape[0] == 5


def test_vocabulary_covers_every_text_and_texts_fit_max_text_length():
    dm = SyntheticVideoQADataModule(num_frames=1024, num_train=4, num_val=4, num_test=4)
    dm.setup()
    longest = 0
    for num_frames in (8, 32, 1024):
        for scene in scenes(600, num_frames=num_frames):
            for text in (scene.caption, scene.question):
                ids = dm.tokenizer.encode(text)
                assert dm.tokenizer.unk_id not in ids, text
                longest = max(longest, len(ids))
            assert scene.answer in dm.answers
    assert longest <= dm.max_text_length
    # The vocabularies do not depend on the length, the seed or the split sizes.
    other = SyntheticVideoQADataModule(num_frames=8, seed=3, num_train=1, num_val=1, num_test=1)
    other.setup()
    assert other.tokenizer.vocab == dm.tokenizer.vocab and other.answers == dm.answers


def test_yaml_config_instantiates_the_documented_defaults():
    cfg = OmegaConf.load(CONFIG)
    dm = instantiate(cfg, num_train=4, num_val=2, num_test=2)
    assert isinstance(dm, SyntheticVideoQADataModule)
    # The YAML is the default job of docs/EMBEDDED_TASK.md: the match family on clean frames, otherwise the
    # dataset's own defaults.
    assert dm.spec == dataclasses.replace(DEFAULT_SPEC, tasks=("match",), noise=0.0)
    assert (dm.batch_size, dm.num_workers, dm.max_text_length) == (cfg.batch_size, cfg.num_workers, cfg.max_text_length)
    assert dm.input_spec()["max_frames"] == cfg.num_frames


# --- balance and chance level -----------------------------------------------------------------
# chi-square critical values at p = 0.001 by degrees of freedom: a uniform draw fails 1 time in 1000
CHI2_999 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52, 6: 22.46, 7: 24.32, 8: 26.12}


def test_families_and_answers_are_balanced():
    sample = scenes(2500, num_frames=64)
    families = Counter(s.family for s in sample)
    assert set(families) == set(FAMILIES)
    assert max(families.values()) / min(families.values()) < 1.3
    dm = SyntheticVideoQADataModule(num_frames=64)
    for family, allowed in dm.answers_by_family().items():
        answers = Counter(s.answer for s in sample if s.family == family)
        assert set(answers) == set(allowed), family
        # a needle question names its attribute: answers are uniform among the colours, and among the shapes
        groups = (COLOURS, SHAPES) if family == "needle" else (allowed,)
        for group in groups:
            counts = np.array([answers[a] for a in group], dtype=float)
            expected = counts.mean()
            chi2 = ((counts - expected) ** 2 / expected).sum()
            assert chi2 < CHI2_999[len(group) - 1], (family, answers)


def test_chance_accuracy_is_the_empirical_majority_rate():
    dm = SyntheticVideoQADataModule(num_frames=256, tasks="count,match")
    chance = dm.chance_accuracy()
    assert set(chance) == {"count", "match", "overall"}
    assert chance["count"] == pytest.approx(1 / max_count(256)) and chance["match"] == 0.5
    assert chance["overall"] == pytest.approx((chance["count"] + chance["match"]) / 2)
    sample = scenes(1200, num_frames=256, tasks=("count", "match"))
    for family in ("count", "match"):
        answers = Counter(s.answer for s in sample if s.family == family)
        assert max(answers.values()) / sum(answers.values()) == pytest.approx(chance[family], abs=0.06)


def _masked_template(question: str) -> str:
    return " ".join("_" if w in COLOURS or w in SHAPES else w for w in split_words(question))


@pytest.mark.parametrize("key", [lambda q: q, _masked_template], ids=["question", "template"])
def test_question_text_alone_does_not_predict_the_answer(key):
    """A lookup table question -> majority training answer scores chance on held-out samples."""
    train, val = scenes(3000), scenes(1500, split="val")
    table = defaultdict(Counter)
    for s in train:
        table[key(s.question)][s.answer] += 1
    frequent = [answers for answers in table.values() if sum(answers.values()) >= 10]
    assert frequent and all(len(answers) > 1 for answers in frequent)
    chance = SyntheticVideoQADataModule().chance_accuracy()
    for family in FAMILIES:
        hits = [table[key(s.question)].most_common(1)[0][0] == s.answer
                for s in val if s.family == family and key(s.question) in table]
        if len(hits) >= 100:
            assert np.mean(hits) < chance[family] + 0.08, family


# --- long range by construction: no single frame decides the answer -------------------------------
@pytest.mark.parametrize("num_frames", [8, 33, 256, 1024])
def test_no_single_frame_decides_the_answer(num_frames):
    checked = Counter()
    for scene in scenes(150, num_frames=num_frames):
        frames = [e.frame for e in scene.events]
        assert len(frames) == len(set(frames)), "one object per frame at most"
        keys = scene.key_events
        if scene.family == "count":
            (target,) = [w for w in split_words(scene.question) if w in COLOURS or w in SHAPES]
            counted = [e for e in scene.events if target in (e.colour, e.shape)]
            assert counted == list(keys) and NUMBERS[len(counted) - 1] == scene.answer
            # evenly spread: one counted event in each of n equal segments, never in adjacent frames
            n = len(counted)
            bounds = [k * num_frames // n for k in range(n + 1)]
            assert all(bounds[k] <= e.frame < bounds[k + 1] - 1 for k, e in enumerate(counted))
            assert all(b.frame - a.frame >= 2 for a, b in zip(counted, counted[1:]))
        elif scene.family == "order":
            a, b = keys
            assert a.name != b.name and abs(a.frame - b.frame) >= min_order_separation(num_frames) >= num_frames / 3
            names = [e.name for e in scene.events]
            assert names.count(a.name) == names.count(b.name) == 1
        elif scene.family == "match":
            needle, query = keys
            assert needle.marked and query.marked and not any(e.marked for e in scene.events if not e.key)
            assert query.frame - needle.frame >= min_match_gap(num_frames) >= num_frames // 2
            assert needle.frame < num_frames - min_match_gap(num_frames)
        else:
            # needle: the one white frame holds the answer; its object also appears unmarked elsewhere at
            # times, so only the border (not the object) tells the needle apart
            (needle,) = keys
            assert needle.marked and not any(e.marked for e in scene.events if not e.key)
        assert scene.depth(num_frames) == min(e.frame for e in keys) / (num_frames - 1)
        checked[scene.family] += 1
    assert set(checked) == set(FAMILIES)


def test_needle_depth_is_uniform_over_the_asked_range_and_decoys_share_its_object():
    sample = [s for s in scenes(1200, num_frames=200) if s.family == "needle"]
    depths = np.array([s.depth(200) for s in sample])
    assert np.histogram(depths, bins=5, range=(0, 1))[0].min() > 0.12 * len(sample)  # uniform over [0, 1]
    decoy = [any(e.name == s.key_events[0].name and not e.marked for e in s.events) for s in sample]
    assert 0.3 < np.mean(decoy) < 1.0  # the needle's object is often also shown unmarked
    narrow = scenes(300, num_frames=200, needle_depth=(0.2, 0.3))
    assert all(0.2 <= s.depth(200) <= 0.3 for s in narrow if s.family == "needle")
    exact = scenes(50, num_frames=11, needle_depth=0.5, tasks=("needle",))
    assert {s.key_events[0].frame for s in exact} == {5}


def test_needle_attributes_restrict_what_needle_match_and_order_questions_ask():
    colour_only = scenes(300, num_frames=32, tasks=("needle", "match", "order"), needle_attributes=("colour",))
    for scene in colour_only:
        words = set(split_words(scene.question))
        assert "shape" not in words and not words & set(SHAPES), scene.question
        if scene.family == "needle":
            assert scene.answer in COLOURS
        if scene.family == "order":
            # named by colour alone: no other object of either key colour is shown
            a, b = scene.key_events
            assert f"{a.colour} object" in scene.question and f"{b.colour} object" in scene.question
            colours = [e.colour for e in scene.events]
            assert a.colour != b.colour and colours.count(a.colour) == colours.count(b.colour) == 1
    assert {s.family for s in colour_only} == {"needle", "match", "order"}
    for scene in scenes(200, num_frames=32, tasks=("order",), needle_attributes=("shape",)):
        a, b = scene.key_events
        assert not set(split_words(scene.question)) & set(COLOURS), scene.question
        shapes = [e.shape for e in scene.events]
        assert a.shape != b.shape and shapes.count(a.shape) == shapes.count(b.shape) == 1
    both = scenes(200, num_frames=32, tasks=("needle", "match"))
    assert {"shape" in s.question for s in both} == {True, False}  # the default asks both attributes


def test_order_named_by_one_attribute_is_balanced_and_not_answered_by_its_text():
    train = scenes(1500, num_frames=32, tasks=("order",), needle_attributes=("colour",))
    val = scenes(600, split="val", num_frames=32, tasks=("order",), needle_attributes=("colour",))
    answers = Counter(s.answer for s in train)
    assert abs(answers["yes"] - answers["no"]) < 4 * np.sqrt(len(train))
    table = defaultdict(Counter)
    for s in train:
        table[s.question][s.answer] += 1
    hits = [table[s.question].most_common(1)[0][0] == s.answer for s in val if s.question in table]
    assert len(hits) > 300 and np.mean(hits) < 0.58


def test_num_distractors_fixes_the_distractor_count():
    for s in scenes(200, num_frames=64, num_distractors=7):
        extra = len(s.events) - len(s.key_events)
        # count keeps the total object count independent of its answer: top + 7 objects in all
        assert extra == (max_count(64) + 7 - len(s.key_events) if s.family == "count" else 7), s.family
    with pytest.raises(ValueError, match="data.num_distractors"):
        SyntheticVideoSpec(num_frames=16, num_distractors=15)


def test_length_curriculum_doubles_per_stage_and_trains_on_that_length():
    curriculum = LengthCurriculum.from_config({"start_frames": 16, "epochs_per_stage": 2}, num_frames=100)
    assert [curriculum.frames_at(e) for e in range(8)] == [16, 16, 32, 32, 64, 64, 100, 100]
    assert curriculum.first_full_epoch == 6 and curriculum.frames_at(curriculum.first_full_epoch) == 100
    assert LengthCurriculum.from_config(None, 64) is None
    with pytest.raises(ValueError, match="data.curriculum"):
        LengthCurriculum.from_config({"start": 8}, 64)

    class FakeTrainer:
        reload_dataloaders_every_n_epochs, current_epoch, world_size, global_rank = 0, 1, 1, 0

    dm = SyntheticVideoQADataModule(num_frames=64, frame_size=8, num_train=4, num_val=2, num_test=2, batch_size=2,
                                    curriculum={"start_frames": 16, "epochs_per_stage": 1})
    dm.trainer = FakeTrainer()
    assert next(iter(dm.train_dataloader()))["frames"].shape[1] == 32  # epoch 1: the second stage
    assert next(iter(dm.val_dataloader()))["frames"].shape[1] == 64  # evaluation at the full length
    assert dm.trainer.reload_dataloaders_every_n_epochs == 1  # Lightning asks for a new loader every epoch


def test_difficulty_grows_with_num_frames():
    stats = []
    for num_frames in (32, 64, 256, 1024):
        sample = scenes(150, num_frames=num_frames)
        for family in ("count", "order", "match"):
            # distractors fill a fixed share of the frames in every family, so their number grows with T
            per_frame = np.mean([len(s.events) - len(s.key_events) for s in sample if s.family == family]) / num_frames
            assert 0.7 * DEFAULT_SPEC.distractor_rate < per_frame < 1.3 * DEFAULT_SPEC.distractor_rate, (family, num_frames)
        distractors = np.mean([len(s.events) - len(s.key_events) for s in sample])
        separation = np.mean([abs(s.key_events[0].frame - s.key_events[1].frame) for s in sample if s.family == "order"])
        gap = np.mean([s.key_events[1].frame - s.key_events[0].frame for s in sample if s.family == "match"])
        stats.append((distractors, separation, gap, max_count(num_frames)))
    for shorter, longer in zip(stats, stats[1:]):
        assert all(l > s for s, l in zip(shorter[:3], longer[:3])), stats
        assert longer[3] >= shorter[3]
    assert stats[-1][3] > stats[0][3]


def test_captions_mostly_differ_and_list_the_key_events_in_order():
    sample = scenes(400)
    assert len({s.caption for s in sample}) >= 0.95 * len(sample)
    for s in sample:
        if s.family == "order":
            first, second = s.key_events
            assert -1 < s.caption.index(first.name) < s.caption.index(second.name)


def test_generation_is_well_under_a_millisecond_per_frame():
    ds = dataset(num_frames=1024, size=4)
    ds[0]
    start = time.perf_counter()
    for i in range(1, 4):
        ds[i]
    per_frame = (time.perf_counter() - start) / (3 * 1024)
    assert per_frame < 2e-4, f"{per_frame * 1e6:.0f} us per frame"


# --- bad configuration ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"num_frames": 4}, "data.num_frames"),
        ({"num_frames": 32.5}, "data.num_frames"),
        ({"frame_size": 6}, "data.frame_size"),
        ({"tasks": ["count", "colours"]}, "data.tasks"),
        ({"tasks": []}, "data.tasks"),
        ({"tasks": ["order", "order"]}, "data.tasks"),
        ({"num_train": 0}, "data.num_train"),
        ({"num_val": -1}, "data.num_val"),
        ({"num_test": 0}, "data.num_test"),
        ({"batch_size": 0}, "data.batch_size"),
        ({"num_workers": -1}, "data.num_workers"),
        ({"seed": -1}, "data.seed"),
        ({"noise": 0.8}, "data.noise"),
        ({"distractor_rate": 1.0}, "data.distractor_rate"),
        ({"caption_events": 0}, "data.caption_events"),
        ({"needle_depth": 1.5}, "data.needle_depth"),
        ({"needle_depth": [0.6, 0.2]}, "data.needle_depth"),
        ({"num_distractors": -1}, "data.num_distractors"),
        ({"curriculum": {"start_frames": 2}}, "data.curriculum.start_frames"),
        ({"order_warmup_epochs": -1}, "data.order_warmup_epochs"),
        ({"cache_gib": "lots"}, "data.cache_gib"),
    ],
)
def test_bad_config_raises_a_value_error_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=re.escape(field)):
        SyntheticVideoQADataModule(**kwargs)


def test_cached_split_hands_out_the_samples_it_would_regenerate():
    spec = SyntheticVideoSpec(num_frames=8, frame_size=8, tasks=("match", "needle"))
    cached = SyntheticVideoQADataset(spec, seed=3, split="train", size=4, cache=True)
    fresh = SyntheticVideoQADataset(spec, seed=3, split="train", size=4)
    first = [cached[i] for i in range(4)]
    assert len(cached._cache) == 4
    for i in range(4):
        again, regenerated = cached[i], fresh[i]
        assert again is first[i]  # served from memory
        assert torch.equal(again["frames"], regenerated["frames"])
        assert {k: v for k, v in again.items() if k != "frames"} == {
            k: v for k, v in regenerated.items() if k != "frames"}


def test_cache_holds_only_splits_that_fit_its_budget():
    def cached_splits(cache_gib: float) -> dict[str, bool]:
        dm = SyntheticVideoQADataModule(num_frames=8, frame_size=8, num_train=64, num_val=8, num_test=8,
                                        cache_gib=cache_gib)
        return {split: ds._cache is not None for split, ds in dm.build_splits().items()}

    per_frame = 4 * 3 * 8 * 8
    assert cached_splits(0.0) == {"train": False, "val": False, "test": False}
    assert cached_splits(1.0) == {"train": True, "val": True, "test": True}
    # room for the 8-video splits but not the 64-video one
    assert cached_splits(16 * 8 * per_frame / 2 ** 30) == {"train": False, "val": True, "test": True}
    with pytest.raises(ValueError, match="data.cache_gib"):
        SyntheticVideoQADataModule(cache_gib=-1)


def test_data_workers_do_not_cache(monkeypatch):
    import hierarchicalvlm.data.synthetic as synthetic

    monkeypatch.setattr(synthetic, "get_worker_info", lambda: object())  # as inside a DataLoader worker
    ds = SyntheticVideoQADataset(SyntheticVideoSpec(num_frames=8, frame_size=8), seed=0, split="val", size=2,
                                 cache=True)
    ds[0]
    assert ds._cache == {}


def test_order_warmup_trains_one_polarity_first_and_evaluates_every_template():
    class FakeTrainer:
        reload_dataloaders_every_n_epochs, current_epoch, world_size, global_rank = 0, 0, 1, 0

    dm = SyntheticVideoQADataModule(num_frames=8, frame_size=8, tasks=["order"], needle_attributes=["colour"],
                                    num_train=200, num_val=200, num_test=2, order_warmup_epochs=2)
    dm.trainer = FakeTrainer()
    second_polarity = ("after", "later")

    def questions(split: str) -> list[str]:
        dataset = dm.splits[split]
        return [dataset.scene(i).question for i in range(len(dataset))]

    for epoch, expect_both in ((0, False), (1, False), (2, True), (5, True)):
        dm.trainer.current_epoch = epoch
        dm.train_dataloader()
        asked = questions("train")
        has_second = sum(any(word in q for word in second_polarity) for q in asked)
        assert (has_second > 60) if expect_both else has_second == 0, (epoch, has_second)
        answers = Counter(dm.splits["train"][i]["answer"] for i in range(len(asked)))
        assert abs(answers["yes"] - answers["no"]) < 40  # still balanced with one polarity
    assert dm.trainer.reload_dataloaders_every_n_epochs == 1
    assert sum(any(word in q for word in second_polarity) for q in questions("val")) > 60
