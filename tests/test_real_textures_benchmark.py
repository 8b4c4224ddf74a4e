"""benchmarks/real_textures.py: a photograph becomes an MVTec-layout category whose test crops never overlap a training crop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.real_textures import DEFECTS, PER_DEFECT, TEST_GOOD, TEXTURES, TRAIN_IMAGES, main
from scae_tf.data.layout import list_dataset


def test_a_category_per_photograph_with_exact_masks_and_test_crops_from_its_own_rows(tmp_path):
    source = tmp_path / "photos"
    source.mkdir()
    rng = np.random.default_rng(0)
    for name in TEXTURES:  # a grain with a ramp down the rows: a crop's rows tell where it was cut
        grain = cv2.GaussianBlur(rng.random((256, 256)).astype(np.float32), (0, 0), 1.5)
        photo = 0.2 + 0.4 * (grain - grain.min()) / np.ptp(grain) + np.linspace(0, 0.3, 256, dtype=np.float32)[:, None]
        cv2.imwrite(str(source / f"{name}.png"), np.round(photo * 255).astype(np.uint8))
    assert main(["--out", str(tmp_path / "out"), "--side", "64", "--source", str(source)]) == 0
    for name in TEXTURES:
        root = tmp_path / "out" / name
        train, test = list_dataset(root, "train"), list_dataset(root, "test")
        assert len(train) == TRAIN_IMAGES and len(test) == TEST_GOOD + PER_DEFECT * len(DEFECTS)
        photo = cv2.imread(str(source / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        strip = photo[-64:]
        for sample in test:
            image = cv2.imread(str(sample.path), cv2.IMREAD_GRAYSCALE)
            assert image.shape == (64, 64)
            if sample.mask_path is None:  # a good test crop is the photograph's bottom strip, unchanged
                assert any(np.array_equal(image, strip[:, x : x + 64]) for x in range(256 - 63))
                continue
            mask = cv2.imread(str(sample.mask_path), cv2.IMREAD_GRAYSCALE) > 0
            assert mask.any() and 0 < mask.mean() < 0.2
        for sample in train[:20]:  # found where it was cut, each ends above the test strip
            crop = cv2.imread(str(sample.path), cv2.IMREAD_GRAYSCALE)
            y = cv2.minMaxLoc(cv2.matchTemplate(photo, crop, cv2.TM_SQDIFF))[2][1]
            assert y + 64 <= 256 - 64


def test_it_refuses_an_output_folder_in_use(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "out"), "--source", str(tmp_path)])
    assert "not empty" in capsys.readouterr().err
