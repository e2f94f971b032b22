"""The paired benchmark design: modes take turns A B B A, warm-up is left out, effects come from the pairs."""

from __future__ import annotations

import pytest

from bench.support.paired import abba, pair_rounds, paired, rounds_of, schedule


def test_modes_take_turns_a_b_b_a() -> None:
    assert abba("AB", 4) == [("A", "B"), ("B", "A"), ("A", "B"), ("B", "A")]
    assert "".join(schedule("AB", pairs=4)) == "ABBAABBA"
    assert abba(("direct", "inproc", "http"), 2) == [("direct", "inproc", "http"), ("http", "inproc", "direct")]


def test_warm_up_steps_alternate_and_are_left_out_of_the_rounds() -> None:
    order = schedule("AB", pairs=2, warmup=3)
    assert "".join(order) == "ABA" + "ABBA"
    steps = list(zip(order, [1000.0, 900.0, 800.0, 10.0, 11.0, 12.0, 13.0], strict=True))
    assert rounds_of(steps, "AB", warmup=3) == [{"A": 10.0, "B": 11.0}, {"B": 12.0, "A": 13.0}]


def test_an_unfinished_round_is_dropped_and_a_step_out_of_order_is_an_error() -> None:
    assert rounds_of([("A", 1.0), ("B", 2.0), ("B", 3.0)], "AB") == [{"A": 1.0, "B": 2.0}]
    with pytest.raises(ValueError, match="not each of"):
        rounds_of([("A", 1.0), ("A", 2.0)], "AB")


def test_the_ratio_comes_from_the_pairs_not_from_pooled_medians() -> None:
    # The machine got three times faster after the first round: pooled medians would say B costs 3x.
    result = paired(base=[100.0, 300.0, 100.0], other=[300.0, 330.0, 110.0])
    assert result.ratio == pytest.approx(1.1)
    assert result.diff == pytest.approx(30.0)
    assert result.diffs == pytest.approx([200.0, 30.0, 10.0])


def test_spread_of_the_paired_difference() -> None:
    result = pair_rounds("AB", [{"A": 10.0, "B": 11.0}, {"A": 10.0, "B": 13.0},
                                {"A": 10.0, "B": 12.0}, {"A": 10.0, "B": 14.0}])
    assert result.diff_iqr == pytest.approx((1.75, 3.25))
    mean, se = result.diff_mean_se
    assert mean == pytest.approx(2.5)
    assert se == pytest.approx(0.6455, abs=1e-4)  # stdev 1.291 / sqrt(4)
    assert "n=4 pairs" in result.describe()


def test_unequal_sides_are_refused() -> None:
    with pytest.raises(ValueError, match="as many"):
        paired([1.0], [1.0, 2.0])


def test_the_median_ratio_has_a_distribution_free_confidence_interval() -> None:
    forty = paired([1.0] * 40, [float(i) for i in range(1, 41)])
    assert forty.ratio_ci() == (14.0, 27.0)  # the 14th and 27th of 40, as binomial tables give
    assert paired([1.0] * 5, [1.0, 2.0, 3.0, 4.0, 5.0]).ratio_ci() == (1.0, 5.0)  # too few: all of it
