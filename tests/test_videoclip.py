"""Open-VCLIP's parts at classroom scale, checked against numpy and first principles: the motions, the video
model starting as frame-averaged CLIP, and weight interpolation."""
import numpy as np
import pytest
import torch

from genhelpers.classroom import digits, smallclip
from genhelpers.classroom import videoclip as vc


@pytest.fixture(scope="module")
def small():
    data = digits.split(0)
    return smallclip.build(smallclip.to_input(data.train_x), seed=0, extra_words=vc.MOTION_WORDS).eval(), data


def test_moves_shift_one_pixel_per_frame_and_turns_a_quarter():
    img = np.arange(64, dtype=np.float32).reshape(8, 8)
    left = vc.make_clip(img, "left")
    assert np.array_equal(left[1][:, :-1], left[0][:, 1:])  # each frame: the previous one a pixel to the left
    down = vc.make_clip(img, "down")
    assert np.array_equal(down[1][1:, :], down[0][:-1, :])
    cw = vc.make_clip(img, "clockwise")
    turned = np.array([[img[7 - j, i] for j in range(8)] for i in range(8)])  # clockwise: row i = column i upward
    assert np.array_equal(cw[1], turned) and np.array_equal(cw[0], img)
    ccw = vc.make_clip(img, "counterclockwise")
    assert np.array_equal(ccw[3], cw[1])  # three quarter turns one way = one the other way
    assert vc.caption(7, "left") == "a seven moving left" and vc.caption(2, "clockwise") == "a two turning clockwise"


def test_the_video_model_starts_as_frame_averaged_clip(small):
    model, data = small
    video = vc.VideoClip(model).eval()
    v = np.stack([vc.make_clip(data.test_x[i], vc.MOTIONS[i % 6]) for i in range(6)])
    with torch.no_grad():
        frames = model.image_features(vc.to_input(v).reshape(-1, 1, 8, 8)).reshape(6, vc.FRAMES, -1)
        expected = torch.nn.functional.normalize(frames.mean(1), dim=-1)
        assert torch.allclose(video.embed_clips(vc.to_input(v)), expected, atol=1e-6)
        # and reversing a clip changes nothing yet: it cannot tell left from right before training
        assert torch.allclose(video.embed_clips(vc.to_input(v[:, ::-1].copy())), expected, atol=1e-6)


def test_direction_flips_counts_what_reversal_does_to_the_predicted_motion(small):
    """Frame-averaged CLIP (the untrained video model) gives a reversed clip the same prediction: nothing flips.
    A model that reads the frames in order in the way wanted here turns left into right, and so on."""
    model, data = small
    video = vc.VideoClip(model).eval()
    v = np.stack([vc.make_clip(data.test_x[i], vc.MOTIONS[i % 6]) for i in range(12)])
    assert vc.direction_flips(video, v, range(10)) == {"flipped": 0.0, "unchanged": 1.0}
    assert all(vc.OPPOSITE[vc.OPPOSITE[m]] == m != vc.OPPOSITE[m] for m in vc.MOTIONS)

    class Oracle:  # a stand-in that reads the frames in order: the centre of mass moves right or left
        def embed_captions(self, texts):
            return torch.eye(len(texts))  # classes of digit 0: left, right, up, down, clockwise, counterclockwise

        def embed_clips(self, x):
            out = torch.zeros(len(x), 6)
            for i, clip in enumerate(x):
                first, last = ((frame.sum(0) * torch.arange(8)).sum() for frame in (clip[0], clip[-1]))
                out[i, 1 if last > first else 0] = 1
            return out

    sideways = np.stack([vc.make_clip(data.test_x[i], "left") for i in range(4)])
    assert vc.direction_flips(Oracle(), sideways, [0]) == {"flipped": 1.0, "unchanged": 0.0}


def test_interpolation_is_linear_in_every_weight(small):
    model, _ = small
    a, b = vc.VideoClip(model), vc.VideoClip(model)
    with torch.no_grad():
        for p in b.parameters():
            p.add_(1.0)
    mid = vc.interpolate(a, b, 0.25)
    for (name, pa), pb, pm in zip(a.named_parameters(), b.parameters(), mid.parameters(), strict=True):
        assert torch.allclose(pm, 0.75 * pa + 0.25 * pb), name
    assert all(torch.equal(p, q) for p, q in zip(vc.interpolate(a, b, 0.0).parameters(), a.parameters(), strict=True))


def test_accuracy_scores_against_the_known_class():
    """A stub model that knows the answer for the first half of the clips and is wrong on the rest: 50%."""
    classes = [(d, k) for d in (3, 4) for k in range(len(vc.MOTIONS))]
    y, m = np.array([3, 4, 3, 4]), np.array([0, 5, 2, 1])

    class Stub:
        def embed_captions(self, texts):
            assert texts == [vc.caption(d, vc.MOTIONS[k]) for d, k in classes]
            return torch.eye(len(classes))

        def embed_clips(self, x):
            right = [classes.index((int(d), int(k))) for d, k in zip(y, m, strict=True)]
            said = right[:2] + [(r + 1) % len(classes) for r in right[2:]]
            return torch.eye(len(classes))[said]

    assert vc.accuracy(Stub(), np.zeros((4, vc.FRAMES, 8, 8)), y, m, [3, 4]) == 0.5


def test_the_xclip_twin_sees_the_clip_and_the_captions(twins):
    """The real route's twin has no dead path: another clip, or another caption, changes X-CLIP's scores."""
    from transformers import XCLIPProcessor

    import genhelpers
    from genhelpers.models import tuneavideo

    model = genhelpers.load("tiny:xclip-base-patch32", genhelpers.runtime(threads=2), quiet=True)
    processor = XCLIPProcessor.from_pretrained(twins["xclip-base-patch32"])
    frames = tuneavideo.demo_clip(8, 96)

    def logits(video, labels):
        inputs = processor(text=labels, videos=[video], return_tensors="pt", padding=True)
        with torch.no_grad():
            return model(**inputs).logits_per_video[0]

    labels = ["a ball bouncing", "a person dancing"]
    base = logits(frames, labels)
    assert not torch.allclose(base, logits(frames[::-1], labels), atol=1e-4)  # the order of frames matters
    assert not torch.allclose(base, logits([f.rotate(90) for f in frames], labels), atol=1e-4)
    assert not torch.allclose(base, logits(frames, ["waves on the sea", "a person dancing"]), atol=1e-4)
