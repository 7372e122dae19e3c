"""clipnorm, clipvalue and global_clipnorm change the gradient the rule sees;
two at once are refused."""

import numpy as np
import pytest

import lionr
import reference
from tiny import apply_steps

# Gradients chosen so that every clip is exact in float32.
RAW = [np.array([3.0, -4.0, 12.0], "f4"), np.array([0.5, -0.25], "f4")]
CLIPS = {
    # per tensor: |RAW[0]| = 13 is halved, |RAW[1]| < 6.5 is kept
    "clipnorm": (6.5, [[1.5, -2.0, 6.0], [0.5, -0.25]]),
    "clipvalue": (2.5, [[2.5, -2.5, 2.5], [0.5, -0.25]]),
}
GLOBAL_RAW = [np.array([7.0, -3.0, 2.0], "f4"), np.array([-1.0, 1.0], "f4")]
# global norm 8, clipped to 4: everything halved
GLOBAL = (4.0, [[3.5, -1.5, 1.0], [-0.5, 0.5]])


@pytest.mark.parametrize("clip", ["clipnorm", "clipvalue", "global_clipnorm"])
def test_rule_sees_the_clipped_gradient(clip):
    value, clipped = GLOBAL if clip == "global_clipnorm" else CLIPS[clip]
    raw = GLOBAL_RAW if clip == "global_clipnorm" else RAW
    signs = [1.0, -1.0, -1.0, 1.0]  # the clip scales with the gradient's sign
    optimizer = lionr.optimizer_lion(
        learning_rate=0.01, beta_1=0.5, **{clip: value}
    )
    variables = reference.variables_of([np.ones(3), np.ones(2)])
    steps = [[s * g for g in raw] for s in signs]
    records = apply_steps(optimizer, variables, steps)
    for s, step in zip(signs, records):
        for (p, m, _, p_new, m_new), c in zip(step, clipped):
            reference.assert_step_within(
                p, m, s * np.asarray(c), p_new, m_new, 0.01, 0.5, 0.99
            )
    # the first momentum is (1 - beta_2) * clipped, not * raw
    first = records[0][0]
    np.testing.assert_allclose(
        first[4], (1 - reference.f32(0.99)) * np.asarray(clipped[0]),
        rtol=1e-6,
    )
    assert not np.allclose(first[4], (1 - 0.99) * raw[0], rtol=1e-3)


PAIRS = [
    ("clipnorm", "clipvalue"),
    ("clipnorm", "global_clipnorm"),
    ("clipvalue", "global_clipnorm"),
]


@pytest.mark.backend_free
@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
def test_two_clips_refused_naming_both(pair):
    with pytest.raises(ValueError) as info:
        lionr.optimizer_lion(**{pair[0]: 1.0, pair[1]: 2.0})
    message = str(info.value)
    assert f"{pair[0]}=1.0" in message and f"{pair[1]}=2.0" in message


@pytest.mark.backend_free
def test_three_clips_refused():
    with pytest.raises(ValueError, match="clipnorm=1.0.*clipvalue=1.0"):
        lionr.optimizer_lion(clipnorm=1.0, clipvalue=1.0, global_clipnorm=1.0)
