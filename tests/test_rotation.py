"""Turning a loose part by its appearance (scae_tf/rotation.py) and its use as an alignment."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from scae_tf.config import PreprocessConfig
from scae_tf.part_kind import circular_spread, infer_part_kind
from scae_tf.preprocessing import Preprocessor, PreprocessState, fit_preprocess_state, initial_state
from scae_tf.rotation import TurnModel, choose_turn, fit_turn
from scae_tf.synthetic import render_sample, sample_rng

SIZE = 128


def _parts(part: str, count: int, loose: bool = True, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    samples = [render_sample(sample_rng(seed, "train", "good", i, part), SIZE, "good", part, loose=loose) for i in range(count)]
    return [s.image for s in samples], [s.object_mask for s in samples]


def _true_capsule_angles(count: int, seed: int = 0) -> np.ndarray:
    """The angles the generator drew (same draws as render_capsule: length, radius, jitter, angle)."""
    angles = []
    for i in range(count):
        rng = sample_rng(seed, "train", "good", i, "capsule")
        rng.uniform(), rng.uniform(), rng.uniform(size=2)
        angles.append(rng.uniform(-180, 180))
    return np.array(angles)


@pytest.fixture(scope="module")
def capsules() -> tuple[list[np.ndarray], list[np.ndarray]]:
    return _parts("capsule", 24)


def test_turn_follows_the_print_not_the_axis(capsules):
    """A capsule's ends look alike: its axis leaves it end over end at random; the template brings every
    capsule to one orientation (pose angle = drawn angle + a constant, never + 180 for some)."""
    works, masks = capsules
    axes = [float(np.degrees(np.arctan2(*_axis(m)[::-1])) % 180) for m in masks]
    model = fit_turn(works, masks, axes)
    poses = np.array([model.angle(w, m) for w, m in zip(works, masks, strict=True)])
    assert circular_spread(poses - _true_capsule_angles(len(works))) < 2.0


def _axis(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    values, vectors = np.linalg.eigh(np.cov(np.stack([xs, ys]).astype(np.float64)))
    return vectors[:, 1]


def test_turned_image_gives_the_same_crop(capsules):
    works, masks = capsules
    model = fit_turn(works, masks)
    state = PreprocessState(PreprocessConfig(crop_height=48, crop_width=112, normalize_illumination=False), 1.0, None,
                            kind="compact", alignment="appearance", turn=model)
    pre = Preprocessor(state)
    work, mask = works[3], masks[3]
    cx, cy = np.nonzero(mask)[1].mean(), np.nonzero(mask)[0].mean()
    matrix = cv2.getRotationMatrix2D((float(cx), float(cy)), 73.0, 1.0)
    turned_work = cv2.warpAffine(work, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    turned_mask = cv2.warpAffine(mask.astype(np.uint8), matrix, (SIZE, SIZE), flags=cv2.INTER_NEAREST) > 0
    before, inside, pose = pre.canonical(work, mask)
    after, _, turned_pose = pre.canonical(turned_work, turned_mask)
    assert abs(((turned_pose.angle - pose.angle + 73.0) + 180) % 360 - 180) < 1.5  # turned 73 deg counter-clockwise on screen
    assert float(np.abs(after - before)[inside].mean()) < 0.03


def test_choose_turn_only_where_it_is_defined_and_needed(capsules):
    works, masks = capsules
    assert choose_turn(works, masks).model is not None
    # a washer has no mark strong enough to say how far it turned: its half templates disagree
    washers = _parts("round", 24)
    choice = choose_turn(*washers)
    assert choice.model is None and "not well defined" in choice.reason
    # fixtured capsules do not turn: nothing to undo
    fixed = _parts("capsule", 24, loose=False)
    assert choose_turn(*fixed).model is None


def test_training_state_turns_loose_capsules_and_saves_the_template(tmp_path, capsules):
    works, masks = capsules
    decision = infer_part_kind(masks)
    assert (decision.kind, decision.alignment) == ("compact", "rotation")
    config = PreprocessConfig(work_size=SIZE, seg_size=64, kind="compact")
    state = fit_preprocess_state(works, masks, config, initial_state(config, decision, 1, (64, 64)), 16)
    assert state.alignment == "appearance" and state.kind_decision["alignment"] == "appearance"
    assert state.config.crop_width >= 2 * state.config.crop_height  # the template's long axis lies along x, and the crop is sized on the turned parts
    state.save(tmp_path / "preprocessing.json")
    loaded = PreprocessState.load(tmp_path / "preprocessing.json")
    assert isinstance(loaded.turn, TurnModel)
    for work, mask in zip(works[:3], masks[:3], strict=True):
        assert Preprocessor(loaded).pose(work, mask).angle == pytest.approx(Preprocessor(state).pose(work, mask).angle, abs=0.05)
    broken = dataclasses.replace(loaded, turn=None)
    broken.save(tmp_path / "broken.json")
    with pytest.raises(Exception, match="alignment"):
        PreprocessState.load(tmp_path / "broken.json")



def test_the_turn_can_be_set_in_the_config(capsules):
    """``preprocess.turn_by_appearance``: false keeps the mask's axis for capsules, true turns washers whose turn is not well defined."""
    works, masks = capsules
    config = PreprocessConfig(work_size=SIZE, seg_size=64, kind="compact", turn_by_appearance=False)
    state = fit_preprocess_state(works, masks, config, initial_state(config, infer_part_kind(masks), 1, (64, 64)), 16)
    assert state.alignment == "rotation" and state.turn is None
    washers, washer_masks = _parts("round", 16)
    config = dataclasses.replace(config, turn_by_appearance=True)
    state = fit_preprocess_state(washers, washer_masks, config, initial_state(config, infer_part_kind(washer_masks), 1, (64, 64)), 16)
    assert state.alignment == "appearance" and "as preprocess.turn_by_appearance says" in state.kind_decision["turn"]["reason"]
