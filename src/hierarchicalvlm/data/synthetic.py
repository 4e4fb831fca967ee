"""The embedded default dataset: procedural videos of flashing shapes whose questions need long-range reasoning.

Every video is a dark, lightly noisy clip in which single frames show one small coloured sprite
(see :mod:`.synthetic_render`).  Each sample belongs to one task family, chosen uniformly:

* ``needle`` -- "what colour is the object in the white frame?": one white-bordered "needle" frame at a
  chosen depth of the video (``needle_depth``), unmarked distractors everywhere else; the answer is one
  of 6 colours or 4 shapes (``needle_attributes``); needle-in-a-haystack retrieval, asked after the video.
* ``count`` -- "how many times does a red object flash?": the counted events are spread evenly
  over the whole video, one per frame, among distractors of other colours (or shapes).
* ``order`` -- "does the red square appear before the blue plus?": two key objects shown once
  each, at least ``T/3`` frames apart, with distractors (never the key objects) in between; with one
  attribute in ``needle_attributes`` the objects are named by it alone ("the red object", "the square").
* ``match`` -- "do the objects in the two white frames have the same colour?": a white-bordered
  "needle" frame in the first half and a bordered "query" frame at least ``T/2`` frames later; the
  attribute compared is drawn from ``needle_attributes`` too.

The answer is drawn first (uniformly over the family's answers) and the video built to agree
with it, so answers are balanced and independent of the question text; no single frame decides
the answer.  Difficulty grows with the number of frames ``T``: more distractors (a fixed rate per
frame), larger separations and gaps, and a count range of ``1..max_count(T)``.

Sample ``i`` of a split is a pure function of ``(seed, split, i)`` and the configuration, built
on the fly in ``__getitem__``, so it does not depend on DataLoader workers or access order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

import dataclasses

import numpy as np
from torch.utils.data import DataLoader, Dataset, get_worker_info

from .base import Sample, VideoTextDataModule
from .synthetic_render import COLOURS, MIN_FRAME_SIZE, SHAPES, SPRITES, MARGIN, Event, render_frames

FAMILIES: tuple[str, ...] = ("count", "order", "match", "needle")
SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2}
MIN_NUM_FRAMES = 8
MAX_NOISE = 0.3

NUMBERS: tuple[str, ...] = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
YES_NO: tuple[str, ...] = ("yes", "no")
OBJECTS: tuple[tuple[str, str], ...] = tuple((c, s) for c in COLOURS for s in SHAPES)

COUNT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "colour": ("how many times does a {target} object flash?", "how many {target} objects appear in the video?"),
    "shape": ("how many times does a {target} flash?", "how many times does a {target} appear in the video?"),
}
# (template, True when "yes" means the first-named object came first)
ORDER_TEMPLATES: tuple[tuple[str, bool], ...] = (
    ("does the {a} appear before the {b}?", True),
    ("does the {a} appear after the {b}?", False),
    ("is the {a} shown earlier than the {b}?", True),
    ("is the {a} shown later than the {b}?", False),
)
MATCH_TEMPLATES: dict[str, tuple[str, ...]] = {
    "colour": (
        "do the objects in the two white frames have the same colour?",
        "is the object in the last bordered frame the same colour as the one in the first?",
    ),
    "shape": (
        "do the objects in the two white frames have the same shape?",
        "is the object in the last bordered frame the same shape as the one in the first?",
    ),
}
NEEDLE_TEMPLATES: dict[str, str] = {
    "colour": "what colour is the object in the white frame?",
    "shape": "what shape is the object in the white frame?",
}
CAPTION_CONNECTORS: tuple[str, ...] = ("then", "later", "next")
MARK_PHRASE = "in a white frame"


# --- how difficulty scales with the number of frames ------------------------------------------
def max_count(num_frames: int) -> int:
    """Largest answer of ``count``: 2 at T=8, +1 per doubling, capped at 9 (4 at T=32, 9 from T=1024)."""
    return min(len(NUMBERS), 2 + (num_frames // MIN_NUM_FRAMES).bit_length() - 1)


def min_order_separation(num_frames: int) -> int:
    """Fewest frames between the two key objects of ``order``: a third of the video."""
    return -(-num_frames // 3)


def min_match_gap(num_frames: int) -> int:
    """Fewest frames between the needle and the query frame of ``match``: half the video."""
    return num_frames // 2


def answers_for_family(family: str, num_frames: int) -> tuple[str, ...]:
    """The answers a family can give at this length."""
    if family == "count":
        return NUMBERS[: max_count(num_frames)]
    if family == "needle":
        return COLOURS + SHAPES
    return YES_NO


def family_chance(family: str, num_frames: int, needle_attributes: Iterable[str] = ("colour", "shape")) -> float:
    """Accuracy of the best guess from the question alone (answers are uniform given the question).

    A ``needle`` question names its attribute, so the guess picks among 6 colours or 4 shapes (each
    attribute asked equally often); every other family picks among all of its answers."""
    if family == "needle":
        sizes = [len(COLOURS) if a == "colour" else len(SHAPES) for a in needle_attributes]
        return float(np.mean([1.0 / n for n in sizes]))
    return 1.0 / len(answers_for_family(family, num_frames))


def answer_vocabulary(tasks: Iterable[str]) -> list[str]:
    """Every answer of the enabled families at ANY length, so checkpoints transfer across ``num_frames``."""
    tasks = set(tasks)
    return ((list(NUMBERS) if "count" in tasks else []) + (list(YES_NO) if tasks & {"order", "match"} else [])
            + (list(COLOURS + SHAPES) if "needle" in tasks else []))


def lexicon_texts() -> list[str]:
    """Texts containing every word any question or caption can use (for the tokenizer)."""
    colour, shape = COLOURS[0], SHAPES[0]
    texts = [t.format(target=colour) for t in COUNT_TEMPLATES["colour"]]
    texts += [t.format(target=shape) for t in COUNT_TEMPLATES["shape"]]
    texts += [t.format(a=f"{colour} {shape}", b=f"{colour} {shape}") for t, _ in ORDER_TEMPLATES]
    texts += [t for templates in MATCH_TEMPLATES.values() for t in templates]
    texts += list(NEEDLE_TEMPLATES.values())
    texts += [" ".join(COLOURS), " ".join(SHAPES), f"a {colour} {shape} {MARK_PHRASE}, " + " ".join(CAPTION_CONNECTORS)]
    return texts


# --- configuration ---------------------------------------------------------------------------
def _check_int(field: str, value: Any, minimum: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"data.{field} must be an integer >= {minimum}{why}, got {value!r}")


def _check_range(field: str, value: Any, low: float, high: float, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"data.{field} must be a number in [{low}, {high}]{why}, got {value!r}")


def _parse_tasks(tasks: Iterable[str] | str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in tasks.split(",")) if isinstance(tasks, str) else tuple(str(t) for t in tasks)
    unknown = [t for t in names if t not in FAMILIES]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(
            f"data.tasks must be a non-empty list of distinct task names among {list(FAMILIES)}, got {list(names)}"
            + (f" (unknown: {unknown})" if unknown else "")
        )
    return names


def _parse_depth(value: Any) -> tuple[float, float]:
    """``needle_depth``: a fraction in [0, 1] or a ``[low, high]`` range of them (0 = first frame, 1 = last)."""
    pair = [value, value] if isinstance(value, (int, float)) and not isinstance(value, bool) else list(value or [])
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in pair) \
            or not 0.0 <= pair[0] <= pair[1] <= 1.0:
        raise ValueError(
            f"data.needle_depth must be a fraction in [0, 1] or a range [low, high] with 0 <= low <= high <= 1 "
            f"(0 = first frame, 1 = last), got {value!r}"
        )
    return float(pair[0]), float(pair[1])


def depth_of(frame: int, num_frames: int) -> float:
    """Where a frame lies in the video, as a fraction: 0 for the first frame, 1 for the last."""
    return frame / max(1, num_frames - 1)


@dataclass(frozen=True)
class SyntheticVideoSpec:
    """What every synthetic video of a data module looks like (validated on construction)."""

    num_frames: int = 32
    frame_size: int = 16
    tasks: tuple[str, ...] = FAMILIES
    noise: float = 0.05
    distractor_rate: float = 0.25
    caption_events: int = 4
    needle_depth: tuple[float, float] = (0.0, 1.0)
    num_distractors: Optional[int] = None
    needle_attributes: tuple[str, ...] = ("colour", "shape")
    order_polarity: str = "both"  # "first": only the order templates where "yes" means the first-named came first

    def __post_init__(self) -> None:
        _check_int("num_frames", self.num_frames, MIN_NUM_FRAMES, " (shorter videos cannot spread events apart)")
        _check_int("frame_size", self.frame_size, MIN_FRAME_SIZE, " (sprites need room inside the white border)")
        object.__setattr__(self, "tasks", _parse_tasks(self.tasks))
        _check_range("noise", self.noise, 0.0, MAX_NOISE, " (background noise must stay darker than the objects)")
        _check_range("distractor_rate", self.distractor_rate, 0.0, 0.9, " (the expected share of frames with a distractor)")
        _check_int("caption_events", self.caption_events, 1, " (events described per caption)")
        object.__setattr__(self, "needle_depth", _parse_depth(self.needle_depth))
        attributes = tuple(str(a) for a in (self.needle_attributes or ()))
        if not attributes or len(set(attributes)) != len(attributes) or set(attributes) - set(NEEDLE_TEMPLATES):
            raise ValueError(f"data.needle_attributes must be a non-empty list of distinct names among "
                             f"{list(NEEDLE_TEMPLATES)}, got {list(attributes)}")
        object.__setattr__(self, "needle_attributes", attributes)
        if self.order_polarity not in ("both", "first"):
            raise ValueError(f"order_polarity must be 'both' or 'first', got {self.order_polarity!r}")
        if self.num_distractors is not None:
            _check_int("num_distractors", self.num_distractors, 0, " (or null: distractor_rate x frames)")
            most = self.num_frames - max_count(self.num_frames)
            if self.num_distractors > most:
                raise ValueError(
                    f"data.num_distractors={self.num_distractors} does not fit a {self.num_frames}-frame video "
                    f"beside its key events; use at most {most} or null (distractor_rate x frames)"
                )

    def distractor_count(self, rng: np.random.Generator, free_frames: int) -> int:
        """How many distractors a video gets: ``num_distractors`` if set, else Binomial(free, distractor_rate)."""
        if self.num_distractors is not None:
            return min(self.num_distractors, free_frames)
        return int(rng.binomial(free_frames, self.distractor_rate))


@dataclass(frozen=True)
class Scene:
    """Everything about one sample except its pixels: the events (sorted by frame) and the texts."""

    family: str
    question: str
    answer: str
    caption: str
    events: tuple[Event, ...]

    @property
    def key_events(self) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.key)

    def depth(self, num_frames: int) -> float:
        """How far back the evidence starts: the depth (0 = first frame, 1 = last) of the earliest key event."""
        return depth_of(min(e.frame for e in self.key_events), num_frames)


# --- scene generation --------------------------------------------------------------------------
_Item = tuple[int, str, str, bool, bool]  # frame, colour, shape, key, marked


def _pick(rng: np.random.Generator, options: tuple | list) -> Any:
    return options[int(rng.integers(len(options)))]


def _distractors(
    rng: np.random.Generator, num_frames: int, occupied: list[int], count: int, allowed: list[tuple[str, str]]
) -> list[_Item]:
    """``count`` non-key objects drawn from ``allowed``, on distinct frames not in ``occupied``."""
    free = np.setdiff1d(np.arange(num_frames), np.asarray(occupied, dtype=np.int64))
    frames = rng.choice(free, size=count, replace=False)
    picks = rng.integers(len(allowed), size=count)
    return [(int(f), *allowed[p], False, False) for f, p in zip(frames, picks)]


def _count_scene(rng: np.random.Generator, spec: SyntheticVideoSpec) -> tuple[str, str, list[_Item]]:
    T, top = spec.num_frames, max_count(spec.num_frames)
    n = int(rng.integers(1, top + 1))
    attribute = _pick(rng, ("colour", "shape"))
    question_template = _pick(rng, COUNT_TEMPLATES[attribute])
    if attribute == "colour":
        target = _pick(rng, COLOURS)
        keys = [(target, _pick(rng, SHAPES)) for _ in range(n)]
        allowed = [o for o in OBJECTS if o[0] != target]
    else:
        target = _pick(rng, SHAPES)
        keys = [(_pick(rng, COLOURS), target) for _ in range(n)]
        allowed = [o for o in OBJECTS if o[1] != target]
    # One event in each of n equal segments, never in a segment's last frame: evenly spread, never adjacent.
    bounds = (np.arange(n + 1) * T) // n
    frames = [int(f) for f in rng.integers(bounds[:-1], bounds[1:] - 1)]
    items = [(f, c, s, True, False) for f, (c, s) in zip(frames, keys)]
    # The total number of objects does not depend on the answer.
    total = top + spec.distractor_count(rng, T - top)
    items += _distractors(rng, T, frames, total - n, allowed)
    return question_template.format(target=target), NUMBERS[n - 1], items


def _order_scene(rng: np.random.Generator, spec: SyntheticVideoSpec) -> tuple[str, str, list[_Item]]:
    T = spec.num_frames
    answer = _pick(rng, YES_NO)
    templates = ORDER_TEMPLATES if spec.order_polarity == "both" else [t for t in ORDER_TEMPLATES if t[1]]
    template, yes_means_first = _pick(rng, templates)
    named_by = set(spec.needle_attributes)
    if named_by == {"colour", "shape"}:
        # the two key objects are named by colour and shape ("red square"); distractors are any other object
        i, j = rng.choice(len(OBJECTS), size=2, replace=False)
        a, b = OBJECTS[i], OBJECTS[j]
        names = (" ".join(a), " ".join(b))
        allowed = [o for o in OBJECTS if o not in (a, b)]
    else:
        # named by one attribute ("red object", "square"): the other is drawn freely, and no distractor shares
        # either key value, so each named object is shown exactly once
        (attribute,) = named_by
        index = 0 if attribute == "colour" else 1  # the named attribute's place in an object (colour, shape)
        values, free = (COLOURS, SHAPES) if index == 0 else (SHAPES, COLOURS)
        va, vb = (values[k] for k in rng.choice(len(values), size=2, replace=False))
        others = (_pick(rng, free), _pick(rng, free))
        a, b = ((v, o) if index == 0 else (o, v) for v, o in zip((va, vb), others))
        names = (f"{va} object", f"{vb} object") if index == 0 else (va, vb)
        allowed = [o for o in OBJECTS if o[index] not in (va, vb)]
    a_first = (answer == "yes") == yes_means_first
    separation = min_order_separation(T)
    early = int(rng.integers(0, T - separation))
    late = int(rng.integers(early + separation, T))
    frame_a, frame_b = (early, late) if a_first else (late, early)
    items = [(frame_a, *a, True, False), (frame_b, *b, True, False)]
    items += _distractors(rng, T, [early, late], spec.distractor_count(rng, T - 2), allowed)
    return template.format(a=names[0], b=names[1]), answer, items


def _match_scene(rng: np.random.Generator, spec: SyntheticVideoSpec) -> tuple[str, str, list[_Item]]:
    T = spec.num_frames
    answer = _pick(rng, YES_NO)
    attribute = _pick(rng, spec.needle_attributes)
    question = _pick(rng, MATCH_TEMPLATES[attribute])
    gap = min_match_gap(T)
    needle = int(rng.integers(0, T - gap))
    query = int(rng.integers(needle + gap, T))
    colour, shape = _pick(rng, OBJECTS)
    values = COLOURS if attribute == "colour" else SHAPES
    needle_value = colour if attribute == "colour" else shape
    query_value = needle_value if answer == "yes" else _pick(rng, [v for v in values if v != needle_value])
    # The other attribute is drawn independently, so it says nothing about the answer.
    query_object = (query_value, _pick(rng, SHAPES)) if attribute == "colour" else (_pick(rng, COLOURS), query_value)
    items = [(needle, colour, shape, True, True), (query, *query_object, True, True)]
    items += _distractors(rng, T, [needle, query], spec.distractor_count(rng, T - 2), list(OBJECTS))
    return question, answer, items


def _needle_scene(rng: np.random.Generator, spec: SyntheticVideoSpec) -> tuple[str, str, list[_Item]]:
    T = spec.num_frames
    attribute = _pick(rng, spec.needle_attributes)
    answer = _pick(rng, COLOURS if attribute == "colour" else SHAPES)
    # The other attribute is drawn independently, so it says nothing about the answer.
    needle_object = (answer, _pick(rng, SHAPES)) if attribute == "colour" else (_pick(rng, COLOURS), answer)
    low, high = spec.needle_depth
    first, last = int(np.ceil(low * (T - 1))), int(np.floor(high * (T - 1)))
    needle = int(rng.integers(first, max(first, last) + 1))
    items = [(needle, *needle_object, True, True)]
    # Distractors may show any object, the needle's too: only the white border tells the needle apart.
    items += _distractors(rng, T, [needle], spec.distractor_count(rng, T - 1), list(OBJECTS))
    return NEEDLE_TEMPLATES[attribute], answer, items


_FAMILY_BUILDERS = {"count": _count_scene, "order": _order_scene, "match": _match_scene, "needle": _needle_scene}


def _place(rng: np.random.Generator, items: list[_Item], frame_size: int) -> tuple[Event, ...]:
    """Give every object a random position inside the border and sort the events by frame."""
    items = sorted(items)
    heights = np.array([SPRITES[s].shape[0] for _, _, s, _, _ in items], dtype=np.int64)
    widths = np.array([SPRITES[s].shape[1] for _, _, s, _, _ in items], dtype=np.int64)
    ys = rng.integers(MARGIN, frame_size - MARGIN - heights + 1)
    xs = rng.integers(MARGIN, frame_size - MARGIN - widths + 1)
    return tuple(
        Event(frame=f, colour=c, shape=s, y=int(y), x=int(x), key=k, marked=m)
        for (f, c, s, k, m), y, x in zip(items, ys, xs)
    )


def _caption(rng: np.random.Generator, events: tuple[Event, ...], max_events: int) -> str:
    """The key events (and, if room is left, some distractors) in temporal order."""
    keys = [e for e in events if e.key]
    others = [e for e in events if not e.key]
    chosen = [keys[i] for i in rng.choice(len(keys), size=min(max_events, len(keys)), replace=False)]
    room = min(max_events - len(chosen), len(others))
    chosen += [others[i] for i in rng.choice(len(others), size=room, replace=False)]
    phrases = [f"a {e.name}" + (f" {MARK_PHRASE}" if e.marked else "") for e in sorted(chosen, key=lambda e: e.frame)]
    return phrases[0] + "".join(f", {_pick(rng, CAPTION_CONNECTORS)} {p}" for p in phrases[1:])


def sample_rngs(seed: int, split: str, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the scene and for the pixel noise of sample ``index`` of ``split``."""
    scene_seq, pixel_seq = np.random.SeedSequence([seed, SPLIT_CODES[split], index]).spawn(2)
    return np.random.default_rng(scene_seq), np.random.default_rng(pixel_seq)


def make_scene(spec: SyntheticVideoSpec, rng: np.random.Generator) -> Scene:
    """Draw a family, then its answer, then a video consistent with that answer."""
    family = _pick(rng, spec.tasks)
    question, answer, items = _FAMILY_BUILDERS[family](rng, spec)
    events = _place(rng, items, spec.frame_size)
    return Scene(family, question, answer, _caption(rng, events, spec.caption_events), events)


@dataclass(frozen=True)
class LengthCurriculum:
    """Train on short videos first: ``start_frames``, doubled every ``epochs_per_stage`` epochs up to ``num_frames``.

    The task's solution does not depend on the length, but finding it from scratch takes longer the longer
    the video (the answer's evidence is one frame in ``num_frames``, so its share of the gradient shrinks
    with length). Starting short finds it quickly; the later stages carry it to the full length.
    Validation and test always use ``num_frames``. docs/EMBEDDED_TASK.md has the evidence.
    """

    start_frames: int
    epochs_per_stage: int
    num_frames: int

    @classmethod
    def from_config(cls, cfg: Optional[dict[str, Any]], num_frames: int) -> Optional["LengthCurriculum"]:
        if not cfg:
            return None
        if not hasattr(cfg, "keys"):
            raise ValueError(f"data.curriculum must be null or a mapping like {{start_frames: 8, epochs_per_stage: 1}}, "
                             f"got {cfg!r} (quote the override in a shell: 'data.curriculum={{start_frames:8}}')")
        unknown = set(cfg) - {"start_frames", "epochs_per_stage"}
        if unknown:
            raise ValueError(f"data.curriculum takes start_frames and epochs_per_stage, got unknown keys {sorted(unknown)}")
        start, per_stage = cfg.get("start_frames", 32), cfg.get("epochs_per_stage", 1)
        _check_int("curriculum.start_frames", start, MIN_NUM_FRAMES)
        _check_int("curriculum.epochs_per_stage", per_stage, 1)
        return cls(min(int(start), int(num_frames)), int(per_stage), int(num_frames))

    def frames_at(self, epoch: int) -> int:
        """Training length of ``epoch`` (0-based)."""
        return min(self.num_frames, self.start_frames * 2 ** (epoch // self.epochs_per_stage))

    @property
    def first_full_epoch(self) -> int:
        """The first epoch that trains at ``num_frames`` (0 without doublings)."""
        doublings, frames = 0, self.start_frames
        while frames < self.num_frames:
            frames, doublings = frames * 2, doublings + 1
        return doublings * self.epochs_per_stage


class SyntheticVideoQADataset(Dataset):
    """``size`` synthetic samples of one split, each generated on demand from ``(seed, split, index)``.

    With ``cache=True`` a sample generated in the main process is kept and handed out again in later epochs (the
    same values: a sample is a pure function of its index), which spares a small job re-rendering its videos every
    epoch. Data workers never cache: each would hold its own copy, lost with the worker.
    """

    def __init__(self, spec: SyntheticVideoSpec, seed: int, split: str, size: int, cache: bool = False) -> None:
        if split not in SPLIT_CODES:
            raise ValueError(f"split must be one of {list(SPLIT_CODES)}, got {split!r}")
        self.spec, self.seed, self.split, self.size = spec, seed, split, size
        self._cache: Optional[dict[int, Sample]] = {} if cache else None

    def __len__(self) -> int:
        return self.size

    def _rngs(self, index: int) -> tuple[np.random.Generator, np.random.Generator]:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for the {self.split} split of {self.size} samples")
        return sample_rngs(self.seed, self.split, index)

    def scene(self, index: int) -> Scene:
        """The sample's events and texts, without rendering its frames."""
        return make_scene(self.spec, self._rngs(index)[0])

    def __getitem__(self, index: int) -> Sample:
        caching = self._cache is not None and get_worker_info() is None
        if caching and index in self._cache:
            return self._cache[index]
        sample = self._generate(index)
        if caching:
            self._cache[index] = sample
        return sample

    def _generate(self, index: int) -> Sample:
        scene_rng, pixel_rng = self._rngs(index)
        scene = make_scene(self.spec, scene_rng)
        spec = self.spec
        frames = render_frames(list(scene.events), spec.num_frames, spec.frame_size, spec.noise, pixel_rng)
        video_id = f"synthetic-{self.seed}-{self.split}-{index:06d}"
        return {"frames": frames, "caption": scene.caption, "question": scene.question, "answer": scene.answer,
                "video_id": video_id, "task": scene.family, "depth": scene.depth(spec.num_frames)}


class SyntheticVideoQADataModule(VideoTextDataModule):
    """Download-free default data: procedural videos with captions and long-range questions.

    The tokenizer and answer vocabularies are built from the templates, not from sampled texts,
    so they are identical for every seed, split size and ``num_frames`` (a checkpoint trained on
    short videos can be evaluated on long ones).
    """

    def __init__(
        self,
        num_frames: int = 32,
        frame_size: int = 16,
        tasks: Iterable[str] | str = FAMILIES,
        num_train: int = 2048,
        num_val: int = 256,
        num_test: int = 256,
        seed: int = 0,
        noise: float = 0.05,
        distractor_rate: float = 0.25,
        caption_events: int = 4,
        needle_depth: float | Iterable[float] = (0.0, 1.0),
        num_distractors: Optional[int] = None,
        needle_attributes: Iterable[str] = ("colour", "shape"),
        batch_size: int = 32,
        num_workers: int = 0,
        max_text_length: int = 32,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        shuffle: bool = True,
        curriculum: Optional[dict[str, Any]] = None,
        cache_gib: float = 0.0,
        order_warmup_epochs: int = 0,
    ) -> None:
        self.curriculum = LengthCurriculum.from_config(curriculum, num_frames)
        self.spec = SyntheticVideoSpec(num_frames, frame_size, tasks, noise, distractor_rate, caption_events,
                                       needle_depth, num_distractors, needle_attributes)
        for field, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test),
                             ("batch_size", batch_size), ("max_text_length", max_text_length)):
            _check_int(field, value, 1)
        _check_int("num_workers", num_workers, 0)
        _check_int("seed", seed, 0)
        _check_int("order_warmup_epochs", order_warmup_epochs, 0)
        self.order_warmup_epochs = int(order_warmup_epochs)
        _check_range("cache_gib", cache_gib, 0.0, float("inf"), " (0 turns the in-memory cache off)")
        self.cache_gib = float(cache_gib)
        super().__init__(batch_size, num_workers, max_text_length, pin_memory, persistent_workers, shuffle=shuffle)
        self.seed = int(seed)
        self.split_sizes = {"train": num_train, "val": num_val, "test": num_test}

    def build_splits(self) -> dict[str, Dataset]:
        return {split: self._dataset(self.spec, split, size) for split, size in self.split_sizes.items()}

    def _dataset(self, spec: SyntheticVideoSpec, split: str, size: int) -> SyntheticVideoQADataset:
        """A split, cached in memory when its frames fit in ``cache_gib`` GiB."""
        frame_bytes = 4 * 3 * spec.frame_size ** 2  # float32 RGB
        fits = size * spec.num_frames * frame_bytes <= self.cache_gib * 2 ** 30  # never, at cache_gib 0
        return SyntheticVideoQADataset(spec, self.seed, split, size, cache=fits)

    def train_frames_at(self, epoch: int) -> int:
        """Frames per training video in ``epoch`` (the throughput monitor restarts when it changes)."""
        return self.curriculum.frames_at(epoch) if self.curriculum is not None else self.spec.num_frames

    def train_spec_at(self, epoch: int) -> SyntheticVideoSpec:
        """The training videos of ``epoch``: the curriculum's length, and during the first ``order_warmup_epochs``
        only the ``order`` questions whose "yes" means the first-named object came first (validation and test
        always ask every template)."""
        polarity = "first" if epoch < self.order_warmup_epochs else "both"
        return dataclasses.replace(self.spec, num_frames=self.train_frames_at(epoch), order_polarity=polarity)

    def train_dataloader(self) -> DataLoader:
        """Training videos of the current epoch's :meth:`train_spec_at` (``num_frames`` and every template
        without a curriculum or an order warm-up)."""
        if self.curriculum is not None or self.order_warmup_epochs:
            trainer = getattr(self, "trainer", None)
            if trainer is not None:
                # the training videos change with the epoch: Lightning must ask for a new loader every epoch
                trainer.reload_dataloaders_every_n_epochs = 1
            spec = self.train_spec_at(trainer.current_epoch if trainer is not None else 0)
            self.setup()
            train = self.splits["train"]
            if train.spec != spec:
                self.splits["train"] = self._dataset(spec, "train", train.size)
        return super().train_dataloader()

    def input_spec(self) -> dict[str, Any]:
        size = self.spec.frame_size
        return {"kind": "pixels", "frame_shape": (3, size, size), "max_frames": self.spec.num_frames}

    def texts_for_vocab(self) -> tuple[list[str], list[str]]:
        return lexicon_texts(), answer_vocabulary(self.spec.tasks)

    def task_names(self) -> list[str]:
        """The enabled families: validation and test report ``qa_acc/<family>`` for each."""
        return list(self.spec.tasks)

    def answers_by_family(self) -> dict[str, tuple[str, ...]]:
        """The possible answers of each enabled family at this ``num_frames``."""
        return {family: answers_for_family(family, self.spec.num_frames) for family in self.spec.tasks}

    def chance_accuracy(self) -> dict[str, float]:
        """Accuracy of the best guess from the question alone, per family and ``overall``.

        Answers are uniform given the question and families are uniform (see :func:`family_chance`).
        """
        chance = {family: family_chance(family, self.spec.num_frames, self.spec.needle_attributes)
                  for family in self.spec.tasks}
        chance["overall"] = float(np.mean(list(chance.values())))
        return chance
