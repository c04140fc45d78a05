"""Per-class motion programs: all 60 NTU RGB+D classes and the 10 N-UCLA classes.

Each program loosely follows its class name (DATASETS.md 1.8 / 2.4). Hard pairs are built in on
purpose: time-reversed twins are the SAME program run backwards (`_reversed`), so their mean pose
is identical and only temporal order separates them; touch head / neck / chest differ only in
the hand target. Single-person programs take a MotionBuilder `b`; two-person programs (A050-A060)
take the actor `b` and the partner `p`, who stand `partner_gap` metres apart facing each other.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from glimpse_keras.data.synthetic.motion_primitives import MotionBuilder, rise, window

R, L = "right", "left"


def _hold(b: MotionBuilder, a=0.2, c=0.8):
    return window(b.u, 0.0, a, c, 1.0)


def _v(x=0.0, y=0.0, z=0.0, scale=1.0, weight=None):
    """An (F, 3) offset from per-frame components."""
    parts = [np.asarray(c, dtype=float) for c in (x, y, z)]
    frames = max(p.size for p in parts)
    out = np.stack([np.broadcast_to(p, (frames,)) for p in parts], -1) * scale
    return out if weight is None else out * weight[:, None]


# -- single-person programs ----------------------------------------------------------------------------
def drink_water(b):
    w = _hold(b, 0.25, 0.75)
    b.reach(R, b.point("front_waist"), window(b.u, 0.0, 0.12, 0.88, 1.0) * (1 - w))
    b.reach(R, b.point("mouth"), w)
    b.pose.head_pitch -= 0.25 * w * b.amp


def eat_meal(b):
    bite = 0.5 - 0.5 * np.cos(2 * np.pi * 3 * b.params.tempo * b.u)
    active = _hold(b, 0.1, 0.9)
    b.reach(R, b.point("front_waist"), active)
    b.reach(R, b.point("mouth"), active * bite)
    b.reach(L, b.point("front_waist", L, (0.05, -0.05, 0)), active)
    b.pose.head_pitch += 0.15 * active


def brushing_teeth(b):
    w = _hold(b, 0.15, 0.85)
    b.reach(R, b.point("mouth", R, (-0.03, 0, 0.02)), w, _v(0.045 * b.osc(6), scale=b.amp, weight=w))


def brushing_hair(b):
    w = _hold(b, 0.15, 0.85)
    b.reach(R, b.point("head_top", R, (-0.06, 0.0, 0)), w, _v(z=0.09 * b.osc(3), scale=b.amp, weight=w))
    b.pose.head_roll -= 0.15 * w


def drop(b):
    carry = 1 - rise(b.u, 0.55, 0.7)
    w = window(b.u, 0.0, 0.15, 0.55, 0.7)
    b.reach(R, b.point("front_waist"), w * carry + (1 - carry) * window(b.u, 0.5, 0.6, 0.7, 0.85) * 0.5)
    b.pose.head_pitch += 0.4 * window(b.u, 0.4, 0.6, 0.8, 1.0)
    b.pose.bend += 0.15 * window(b.u, 0.5, 0.65, 0.8, 1.0)


def pickup(b, sides=(R,)):
    w = _hold(b, 0.35, 0.65)
    b.pose.bend += 1.0 * w * b.amp
    b.pose.squat += 0.35 * w
    b.pose.head_pitch += 0.3 * w
    for side in sides:
        b.reach(side, b.point("floor_front", side), w)
    # Coming back up with the object held in front.
    for side in sides:
        b.reach(side, b.point("front_waist", side), rise(b.u, 0.7, 0.9) * 0.6)


def throw(b):
    wind = window(b.u, 0.1, 0.4, 0.45, 0.55)
    release = window(b.u, 0.45, 0.55, 0.7, 0.95)
    b.reach(R, b.point("behind_head"), wind)
    b.reach(R, b.point("front_high", R, (0, 0.05, 0.1)), release)
    b.pose.twist += (-0.35 * wind + 0.3 * release) * b.amp
    b.pose.hip_flex_left += 0.3 * window(b.u, 0.35, 0.5, 0.75, 0.95)
    b.pose.bend += 0.2 * release


def sitting_down(b):
    down = rise(b.u, 0.15, 0.85)
    b.pose.squat += down
    b.pose.bend += 0.45 * window(b.u, 0.15, 0.5, 0.6, 0.95) * b.amp + 0.1 * down
    support = window(b.u, 0.2, 0.5, 0.7, 0.95)
    for side in (L, R):
        b.reach(side, b.point("side_out", side, (0.35, -0.35, 0.05)), support * 0.7)
        b.reach(side, b.point("front_waist", side, (0.0, -0.05, 0.05)), down * (1 - support) * 0.7)


def clapping(b):
    w = _hold(b, 0.15, 0.85)
    apart = 0.5 + 0.5 * b.osc(5)
    for side, sign in ((L, 1.0), (R, -1.0)):
        b.reach(side, b.point("chest_centre", side, (-0.03, 0.0, 0.12)), w,
                _v(sign * 0.13 * apart, scale=b.shape.scale * b.amp, weight=w))


def reading(b):
    w = _hold(b, 0.1, 0.9)
    b.both("front_chest", w, (0.02, -0.05, -0.12))
    b.pose.head_pitch += 0.45 * w * b.amp
    page = window(b.u, 0.45, 0.5, 0.55, 0.6)
    b.reach(R, b.point("front_chest", L), page * 0.6)


def writing(b):
    w = _hold(b, 0.1, 0.9)
    b.reach(L, b.point("front_waist", L, (0.05, 0.05, 0)), w)
    b.reach(R, b.point("front_waist", R, (0.05, 0.05, 0)), w,
            _v(0.03 * b.osc(7), 0.015 * b.osc(3.5, 1.0), scale=b.amp, weight=w))
    b.pose.head_pitch += 0.5 * w
    b.pose.bend += 0.15 * w


def tear_up_paper(b):
    w = _hold(b, 0.15, 0.85)
    tear = b.osc(3)
    b.reach(L, b.point("front_chest", L, (0.06, 0, -0.1)), w, _v(y=0.06 * tear, z=0.02, scale=b.amp, weight=w))
    b.reach(R, b.point("front_chest", R, (0.06, 0, -0.1)), w, _v(y=-0.06 * tear, scale=b.amp, weight=w))
    b.pose.head_pitch += 0.3 * w


def wear_jacket(b):
    # An order-specific sequence: right arm back into the sleeve, then the left, then pull the front closed.
    right_in = window(b.u, 0.05, 0.2, 0.3, 0.45)
    left_in = window(b.u, 0.3, 0.45, 0.55, 0.7)
    close = window(b.u, 0.62, 0.75, 0.88, 1.0)
    b.reach(R, b.point("behind_back", R), right_in * b.amp)
    b.reach(L, b.point("behind_back", L), left_in * b.amp)
    b.pose.twist += 0.3 * right_in - 0.3 * left_in
    b.both("chest", close, (0.03, 0.05, 0.0))
    b.pose.hand_right[:, 1] += 0.25 * b.shape.scale * rise(b.u, 0.2, 0.4) * (1 - rise(b.u, 0.5, 0.7))
    b.pose.head_pitch += 0.2 * close


def wear_shoe(b):
    down = window(b.u, 0.0, 0.2, 0.75, 0.9)
    lift = window(b.u, 0.25, 0.4, 0.6, 0.72)
    stomp = window(b.u, 0.72, 0.78, 0.82, 0.9)
    b.pose.bend += 0.9 * down
    b.pose.squat += 0.25 * down
    b.pose.hip_flex_left += 0.7 * lift * b.amp
    b.pose.knee_left += 1.1 * lift
    b.both("floor_front", down, (0.05, 0.25 + 0.25 * 0, -0.1), _v(y=0.25 * b.shape.scale, weight=lift))
    b.pose.hip_flex_left += 0.3 * stomp
    b.pose.head_pitch += 0.35 * down


def wear_glasses(b):
    pick = window(b.u, 0.0, 0.15, 0.3, 0.45)
    at_eyes = window(b.u, 0.3, 0.5, 0.7, 0.8)
    b.both("front_chest", pick, (0.04, 0.1, 0.0))
    b.both("eyes", at_eyes, (-0.06, 0.0, 0.0))
    b.pose.head_pitch -= 0.1 * at_eyes
    b.pose.head_pitch += 0.25 * pick


def put_on_hat(b):
    pick = window(b.u, 0.0, 0.15, 0.3, 0.45)
    on_head = window(b.u, 0.35, 0.55, 0.7, 0.85)
    b.both("front_chest", pick, (0.04, 0.0, 0.0))
    b.both("head_top", on_head, (-0.06, 0.02, 0.0))
    b.pose.head_pitch += 0.25 * pick - 0.1 * on_head


def cheer_up(b):
    w = _hold(b, 0.15, 0.85)
    b.both("up_high", w, (0.05, 0, 0), _v(0.06 * b.osc(3), 0.05 * b.osc(3, 1.0), scale=b.amp, weight=w))
    b.pose.lift += 0.05 * np.clip(b.osc(3), 0, None) * w
    b.pose.head_pitch -= 0.2 * w


def hand_waving(b):
    w = _hold(b, 0.15, 0.85)
    b.reach(R, b.point("wave"), w, _v(0.14 * b.osc(3.5), scale=b.shape.scale * b.amp, weight=w))


def kicking(b):
    kick = window(b.u, 0.25, 0.45, 0.5, 0.75)
    b.pose.hip_flex_right += 1.1 * kick * b.amp
    b.pose.knee_right += 0.9 * window(b.u, 0.2, 0.35, 0.4, 0.5) - 0.0 * kick
    b.pose.bend -= 0.15 * kick
    b.reach(L, b.point("side_out", L, (0.2, -0.2, 0.15)), kick * 0.5)
    b.reach(R, b.point("side_out", R, (0.2, -0.2, -0.1)), kick * 0.5)


def reach_into_pocket(b):
    w = _hold(b, 0.25, 0.75)
    b.reach(R, b.point("pocket"), w, _v(y=0.02 * b.osc(3), scale=b.amp, weight=w))
    b.pose.head_pitch += 0.2 * w
    b.pose.lean += 0.08 * w


def hopping(b):
    w = _hold(b, 0.1, 0.9)
    b.pose.hip_flex_left += 0.5 * w
    b.pose.knee_left += 1.3 * w
    b.pose.lift += 0.09 * b.amp * np.abs(b.osc(2.5)) * w
    b.both("side_out", 0.4 * w, (0.3, -0.1, 0))


def jump_up(b):
    dip = window(b.u, 0.15, 0.3, 0.35, 0.45) + window(b.u, 0.65, 0.72, 0.78, 0.9) * 0.7
    air = window(b.u, 0.38, 0.48, 0.55, 0.68)
    b.pose.squat += 0.35 * dip
    b.pose.bend += 0.3 * dip
    b.pose.lift += 0.22 * air * b.amp
    b.both("up_high", air, (0.05, 0, 0))
    b.both("behind_back", dip * 0.5)


def phone_call(b):
    w = _hold(b, 0.15, 0.85)
    b.reach(R, b.point("ear", R, (0.02, 0.0, 0.03)), w)
    b.pose.head_roll -= 0.2 * w * b.amp


def play_with_phone(b):
    w = _hold(b, 0.1, 0.9)
    b.both("front_chest", w, (0.05, 0.02, -0.15))
    b.reach(R, b.hand(R).copy(), w, _v(0.015 * b.osc(6), 0.015 * b.osc(4), scale=b.amp, weight=w))
    b.pose.head_pitch += 0.5 * w


def typing(b):
    w = _hold(b, 0.1, 0.9)
    for side, phase in ((L, 0.0), (R, np.pi)):
        b.reach(side, b.point("front_waist", side, (-0.04, 0.02, 0.05)), w,
                _v(y=0.02 * b.osc(8, phase), scale=b.amp, weight=w))
    b.pose.head_pitch += 0.3 * w
    b.pose.bend += 0.1 * w


def pointing(b):
    w = _hold(b, 0.25, 0.75)
    b.reach(R, b.point("front_high", R, (-0.25, -0.05, 0.1)), w)
    b.pose.head_yaw -= 0.3 * w


def taking_selfie(b):
    w = _hold(b, 0.2, 0.8)
    b.reach(R, b.point("front_high", R, (-0.15, 0.12, 0.0)), w)
    b.pose.head_yaw -= 0.35 * w
    b.pose.head_pitch -= 0.15 * w
    b.reach(L, b.point("side_out", L, (0.3, -0.05, 0.0)), 0.3 * w)


def check_time(b):
    w = _hold(b, 0.25, 0.7)
    b.reach(L, b.point("chest_centre", L, (0.1, -0.03, 0.1)), w)
    b.pose.head_pitch += 0.45 * w * b.amp
    b.pose.head_yaw += 0.2 * w


def rub_hands(b):
    w = _hold(b, 0.15, 0.85)
    for side, sign in ((L, 1.0), (R, -1.0)):
        b.reach(side, b.point("chest_centre", side, (0.0, -0.1, 0.05)), w,
                _v(z=sign * 0.04 * b.osc(5), scale=b.amp, weight=w))


def nod_head(b):
    w = _hold(b, 0.3, 0.7)
    b.pose.bend += 0.55 * w * b.amp
    b.pose.head_pitch += 0.35 * w


def shake_head(b):
    w = _hold(b, 0.1, 0.9)
    b.pose.head_yaw += 0.6 * b.osc(3) * w * b.amp


def wipe_face(b):
    w = _hold(b, 0.2, 0.8)
    b.reach(R, b.point("eyes", R, (0.0, -0.02, -0.02)), w,
            _v(0.04 * b.osc(2.5), 0.04 * b.osc(2.5, np.pi / 2), scale=b.amp, weight=w))
    b.pose.head_pitch += 0.15 * w


def salute(b):
    w = window(b.u, 0.15, 0.3, 0.75, 0.9)
    b.reach(R, b.point("forehead", R, (-0.07, 0.0, -0.02)), w)
    b.pose.head_pitch -= 0.05 * w


def palms_together(b):
    w = _hold(b, 0.2, 0.8)
    b.both("chest_centre", w, (0.04, 0.0, 0.0))
    b.pose.bend += 0.2 * window(b.u, 0.35, 0.45, 0.55, 0.65)


def cross_hands(b):
    w = _hold(b, 0.2, 0.8)
    b.reach(L, b.point("front_chest", R, (0.05, 0.05, -0.1)), w)
    b.reach(R, b.point("front_chest", L, (0.05, 0.05, -0.1)), w)


def sneeze(b):
    w = window(b.u, 0.1, 0.3, 0.65, 0.85)
    b.reach(R, b.point("mouth", R, (0.0, -0.02, 0.04)), w)
    jerk = window(b.u, 0.35, 0.42, 0.45, 0.52) + window(b.u, 0.55, 0.6, 0.63, 0.7)
    b.pose.bend += 0.45 * jerk * b.amp
    b.pose.head_pitch += 0.3 * jerk


def staggering(b):
    w = _hold(b, 0.05, 0.95)
    speed = 0.018 * w * (1.0 + 0.5 * b.osc(1.5))
    b.walk(speed, turn_rate=0.04 * b.osc(2) * w)
    b.pose.lean += 0.25 * b.osc(2, 0.6) * w * b.amp
    b.both("side_out", 0.5 * w)


def falling(b):
    down = rise(b.u, 0.25, 0.6)
    b.pose.squat += 0.9 * down
    b.pose.bend += 1.1 * rise(b.u, 0.35, 0.7) * b.amp
    kneel = rise(b.u, 0.45, 0.75)  # thighs upright, shins on the floor
    b.pose.hip_flex_left -= 1.2 * kneel
    b.pose.hip_flex_right -= 1.2 * kneel
    b.pose.knee_left += 0.25 * kneel
    b.pose.knee_right += 0.25 * kneel
    b.pose.lift -= 0.1 * kneel
    b.pose.root[:, 2] += 0.3 * rise(b.u, 0.4, 0.75)
    b.both("floor_front", rise(b.u, 0.4, 0.7), (0.1, 0.1, 0.15))
    b.pose.head_pitch -= 0.3 * rise(b.u, 0.5, 0.8)


def touch_head(b):
    w = _hold(b, 0.25, 0.75)
    b.reach(R, b.point("forehead", R, (0.0, 0.03, 0.0)), w, _v(0.015 * b.osc(3), scale=b.amp, weight=w))
    b.pose.head_pitch += 0.15 * w


def touch_chest(b):
    w = _hold(b, 0.25, 0.75)
    b.reach(R, b.point("chest"), w, _v(0.015 * b.osc(3), scale=b.amp, weight=w))
    b.pose.bend += 0.15 * w


def touch_back(b):
    w = _hold(b, 0.25, 0.75)
    b.reach(R, b.point("back"), w)
    b.pose.bend -= 0.15 * w
    b.pose.lean += 0.1 * w


def touch_neck(b):
    w = _hold(b, 0.25, 0.75)
    b.reach(R, b.point("neck"), w, _v(0.015 * b.osc(3), scale=b.amp, weight=w))
    b.pose.head_roll += 0.12 * w


def nausea(b):
    w = _hold(b, 0.2, 0.85)
    b.pose.bend += (0.6 + 0.15 * b.osc(3)) * w * b.amp
    b.reach(R, b.point("stomach"), w)
    b.reach(L, b.point("mouth", L), window(b.u, 0.3, 0.4, 0.6, 0.7))
    b.pose.head_pitch += 0.3 * w


def use_fan(b):
    w = _hold(b, 0.15, 0.85)
    b.reach(R, b.point("mouth", R, (-0.08, 0.0, 0.18)), w, _v(0.07 * b.osc(6), scale=b.amp, weight=w))
    b.pose.head_pitch -= 0.1 * w


# -- two-person programs ---------------------------------------------------------------------------------
def punching(b, p):
    jab = window(b.u, 0.25, 0.35, 0.4, 0.5) + window(b.u, 0.55, 0.65, 0.7, 0.8)
    b.reach(L, b.point("chest_centre", L, (0.0, 0.15, -0.05)), _hold(b))
    b.reach(R, b.toward_partner(0.15 * b.shape.scale, short=0.2), jab)
    b.pose.twist += 0.25 * jab
    p.pose.bend -= 0.2 * jab
    p.pose.head_pitch -= 0.3 * jab


def kicking_other(b, p):
    kick = window(b.u, 0.3, 0.45, 0.5, 0.7)
    b.pose.hip_flex_right += 1.0 * kick * b.amp
    b.pose.bend -= 0.15 * kick
    b.both("side_out", 0.4 * kick)
    p.pose.bend += 0.3 * window(b.u, 0.42, 0.5, 0.55, 0.75)
    p.pose.root[:, 2] -= 0.1 * rise(b.u, 0.45, 0.6)


def pushing(b, p):
    push = window(b.u, 0.25, 0.45, 0.6, 0.8)
    for side in (L, R):
        b.reach(side, b.toward_partner(-0.1 * b.shape.scale, side, lateral=0.12, short=0.25), push)
    b.pose.bend += 0.2 * push
    back = rise(b.u, 0.4, 0.6)
    p.pose.root[:, 2] -= 0.35 * back * b.amp
    p.pose.bend -= 0.25 * window(b.u, 0.4, 0.5, 0.6, 0.8)


def pat_on_back(b, p):
    w = _hold(b, 0.2, 0.8)
    b.pose.root[:, 2] += 0.35 * w
    target = b.toward_partner(0.0, lateral=0.25, short=-0.15)
    b.reach(R, target, w, _v(y=0.04 * np.clip(b.osc(4), 0, None), scale=b.amp, weight=w))
    p.pose.head_pitch += 0.1 * w


def point_at_other(b, p):
    w = _hold(b, 0.25, 0.75)
    b.reach(R, b.toward_partner(0.1 * b.shape.scale, short=0.0), w)
    p.pose.head_pitch += 0.1 * w


def hugging(b, p):
    w = _hold(b, 0.25, 0.75)
    for person in (b, p):
        person.pose.root[:, 2] += 0.3 * w
        for side in (L, R):
            person.reach(side, person.toward_partner(-0.02, side, lateral=0.25, short=0.45), w)
        person.pose.head_yaw += 0.3 * w


def giving(b, p):
    give = window(b.u, 0.1, 0.35, 0.55, 0.75)
    take = window(b.u, 0.3, 0.45, 0.7, 0.9)
    b.reach(R, b.toward_partner(-0.15 * b.shape.scale, short=0.55), give)
    p.reach(R, p.toward_partner(-0.15 * p.shape.scale, short=0.55), take)
    p.pose.head_pitch += 0.2 * take


def touch_pocket(b, p):
    w = _hold(b, 0.3, 0.7)
    b.pose.root[:, 2] += 0.2 * w
    b.reach(R, b.toward_partner(-0.5 * b.shape.scale, lateral=-0.2, short=0.2), w)
    b.pose.bend += 0.3 * w
    b.pose.head_pitch += 0.3 * w


def handshaking(b, p):
    w = _hold(b, 0.25, 0.75)
    shake = _v(y=0.035 * b.osc(4), scale=b.amp, weight=w)
    for person in (b, p):
        person.pose.root[:, 2] += 0.1 * w
        person.reach(R, person.toward_partner(-0.22 * person.shape.scale, short=0.5), w, shake)


def walking_towards(b, p):
    w = window(b.u, 0.0, 0.1, 0.85, 1.0)
    for person in (b, p):
        person.walk(0.022 * w * b.amp)


def walking_apart(b, p):
    w = window(b.u, 0.0, 0.1, 0.85, 1.0)
    for person in (b, p):
        person.pose.facing += np.pi
        person.walk(0.022 * w * b.amp)


# -- N-UCLA-only programs ----------------------------------------------------------------------------------
def drop_trash(b):
    b.walk(0.018 * window(b.u, 0.0, 0.05, 0.3, 0.4))
    w = window(b.u, 0.35, 0.5, 0.6, 0.75)
    b.pose.bend += 0.55 * w
    b.reach(R, b.point("floor_front", R, (0.05, 0.35, 0.0)), w)
    b.reach(R, b.point("front_waist"), window(b.u, 0.0, 0.1, 0.35, 0.5))
    b.walk(0.018 * window(b.u, 0.7, 0.8, 0.95, 1.0))


def walk_around(b):
    w = window(b.u, 0.0, 0.05, 0.95, 1.0)
    b.walk(0.024 * w * b.amp, turn_rate=w * 2.0 * np.pi / max(b.num_frames, 1) * 0.9)


def carry(b):
    w = window(b.u, 0.0, 0.1, 0.9, 1.0)
    b.both("front_waist", w, (0.02, 0.05, -0.05))
    b.walk(0.02 * w * b.amp, turn_rate=0.012 * b.osc(1) * w)


def _reversed(program: Callable) -> Callable:
    """The time-reversed twin of a program: it runs with u -> 1 - u."""

    def run(b, *partner):
        b.u = 1.0 - b.u
        for other in partner:
            other.u = b.u
        try:
            program(b, *partner)
        finally:
            b.u = 1.0 - b.u
            for other in partner:
                other.u = b.u

    run.__name__ = f"reversed_{program.__name__}"
    return run


NTU_PROGRAMS: dict[int, Callable] = {
    1: drink_water, 2: eat_meal, 3: brushing_teeth, 4: brushing_hair, 5: drop, 6: pickup, 7: throw,
    8: sitting_down, 9: _reversed(sitting_down), 10: clapping, 11: reading, 12: writing, 13: tear_up_paper,
    14: wear_jacket, 15: _reversed(wear_jacket), 16: wear_shoe, 17: _reversed(wear_shoe), 18: wear_glasses,
    19: _reversed(wear_glasses), 20: put_on_hat, 21: _reversed(put_on_hat), 22: cheer_up, 23: hand_waving,
    24: kicking, 25: reach_into_pocket, 26: hopping, 27: jump_up, 28: phone_call, 29: play_with_phone,
    30: typing, 31: pointing, 32: taking_selfie, 33: check_time, 34: rub_hands, 35: nod_head, 36: shake_head,
    37: wipe_face, 38: salute, 39: palms_together, 40: cross_hands, 41: sneeze, 42: staggering, 43: falling,
    44: touch_head, 45: touch_chest, 46: touch_back, 47: touch_neck, 48: nausea, 49: use_fan,
    50: punching, 51: kicking_other, 52: pushing, 53: pat_on_back, 54: point_at_other, 55: hugging,
    56: giving, 57: touch_pocket, 58: handshaking, 59: walking_towards, 60: walking_apart,
}

NTU_TWO_PERSON = frozenset(range(50, 61))

# Initial distance between the two people of a two-person class, metres.
NTU_PARTNER_GAP = {59: 3.0, 60: 0.9, 55: 1.3, 53: 1.2}
DEFAULT_PARTNER_GAP = 1.1

NUCLA_PROGRAMS: dict[int, Callable] = {
    1: pickup, 2: lambda b: pickup(b, sides=(L, R)), 3: drop_trash, 4: walk_around, 5: sitting_down,
    6: _reversed(sitting_down), 8: wear_jacket, 9: _reversed(wear_jacket), 11: throw, 12: carry,
}

