"""IoU tracking: ids that follow objects through a sequence, new ids for new objects, none reused."""

import numpy as np
import pytest

from segmentoly.inference.detections import Detections
from segmentoly.inference.tracking import IoUTracker

HEIGHT, WIDTH = 120, 200


def frame(objects) -> Detections:
    """Detections of one frame from ``(label, x0, y0, x1, y1)`` rectangles (exclusive ends), in that order."""
    masks = np.zeros((len(objects), HEIGHT, WIDTH), bool)
    boxes = []
    for mask, (_, x0, y0, x1, y1) in zip(masks, objects):
        mask[max(y0, 0) : y1, max(x0, 0) : x1] = True
        boxes.append([x0, y0, x1 - 1, y1 - 1])
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.linspace(0.9, 0.5, len(objects)).astype(np.float32),
        np.array([obj[0] for obj in objects], np.int64),
        masks,
        ("bg", "person", "car"),
    )


@pytest.mark.parametrize("use_masks", [True, False])
def test_moving_objects_keep_their_ids(use_masks):
    tracker = IoUTracker(use_masks=use_masks)
    history = []
    for t in range(20):
        # Two people walking towards each other 3 px per frame, and a car; the detector's order shuffles.
        objects = [(1, 10 + 3 * t, 20, 40 + 3 * t, 80), (1, 150 - 3 * t, 30, 180 - 3 * t, 90), (2, 60, 90, 120, 115)]
        order = [2, 0, 1] if t % 2 else [0, 1, 2]
        ids = tracker.update(frame([objects[i] for i in order]))
        history.append(ids[np.argsort(order)])  # back to the objects' own order
    history = np.array(history)
    assert (history == history[0]).all(), history
    assert len(set(history[0].tolist())) == 3


def test_overlapping_objects_of_one_class_are_told_apart_by_their_masks():
    # Two thin diagonal-ish objects whose boxes coincide: a "/" and a "\" shape in the same rectangle.
    def crossing(shift):
        masks = np.zeros((2, HEIGHT, WIDTH), bool)
        for i in range(40):
            masks[0, 20 + i, 20 + shift + i : 26 + shift + i] = True  # "\"
            masks[1, 20 + i, 60 + shift - i : 66 + shift - i] = True  # "/"
        boxes = np.array([[20 + shift, 20, 65 + shift, 59]] * 2, np.float32)
        return masks, boxes

    tracker = IoUTracker()
    first_masks, boxes = crossing(0)
    first = tracker.update(Detections(boxes, np.array([0.9, 0.8], np.float32), np.ones(2, np.int64), first_masks))
    # Next frame: the detector lists them the other way round, both shifted by a pixel.
    masks, boxes = crossing(1)
    second = tracker.update(Detections(boxes, np.array([0.9, 0.8], np.float32), np.ones(2, np.int64), masks[::-1]))
    assert second.tolist() == first[::-1].tolist()


def test_a_new_object_gets_a_new_id_and_a_lost_ids_is_never_reused():
    tracker = IoUTracker(max_age=2)
    person = (1, 10, 10, 50, 60)
    ids = tracker.update(frame([person]))
    assert ids.tolist() == [1]
    ids = tracker.update(frame([person, (1, 120, 10, 160, 60)]))
    assert ids.tolist() == [1, 2]
    seen = {1, 2}
    # Object 2 disappears for 3 frames (more than max_age): its track is dropped.
    for _ in range(3):
        assert tracker.update(frame([person])).tolist() == [1]
    assert tracker.active_ids == [1]
    # It comes back exactly where it was, yet gets a fresh id; so does anything new.
    ids = tracker.update(frame([person, (1, 120, 10, 160, 60), (2, 60, 70, 100, 110)]))
    assert ids[0] == 1 and ids[1] not in seen and ids[2] not in seen and ids[1] != ids[2]
    seen.update(ids.tolist())
    tracker.reset()
    assert not set(tracker.update(frame([person])).tolist()) & seen


def test_a_briefly_missed_object_keeps_its_id():
    tracker = IoUTracker(max_age=2)
    person = (1, 10, 10, 50, 60)
    first = tracker.update(frame([person]))
    for _ in range(2):  # missed by the detector for max_age frames
        tracker.update(frame([]))
    assert tracker.update(frame([person])).tolist() == first.tolist()


def test_class_mismatch_never_matches():
    tracker = IoUTracker(iou_threshold=0.1)
    first = tracker.update(frame([(1, 10, 10, 50, 60)]))
    # The same pixels, now called a car: a different object as far as ids go.
    second = tracker.update(frame([(2, 10, 10, 50, 60)]))
    assert second[0] != first[0]


def test_each_track_and_detection_is_matched_at_most_once_best_iou_first():
    tracker = IoUTracker(iou_threshold=0.3)
    first = tracker.update(frame([(1, 10, 10, 50, 50)]))
    # Two candidates overlap the track; the better one (IoU 0.9) continues it, the other starts a new track.
    second = tracker.update(frame([(1, 20, 10, 60, 50), (1, 12, 10, 52, 50)]))
    assert second[1] == first[0] and second[0] != first[0]


def test_empty_frames_and_bad_arguments():
    tracker = IoUTracker()
    ids = tracker.update(frame([]))
    assert ids.dtype == np.int64 and ids.shape == (0,)
    with pytest.raises(ValueError, match="iou_threshold"):
        IoUTracker(iou_threshold=0.0)
    with pytest.raises(ValueError, match="max_age"):
        IoUTracker(max_age=-1)
