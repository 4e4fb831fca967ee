"""The config validator turns values of the wrong type into the usual one-line error naming the key."""

from __future__ import annotations

import pytest

from hierarchicalvlm.run import config_checks
from hierarchicalvlm.run.config_checks import ConfigError, validate_config

WRONG_TYPES = {
    "model.net.dim=32.5": "model.net.dim must be a positive integer, got 32.5",
    "trainer.max_steps=abc": "trainer.max_steps must be an integer >= -1 (-1: no limit), got 'abc'",
    "seed=abc": "seed must be an integer (or null), got 'abc'",
    "data.num_frames=2.5": "data.num_frames must be a positive integer, got 2.5",
    "trainer.max_epochs=1.5": "trainer.max_epochs must be an integer >= -1",
    "model.net.num_heads=true": "model.net.num_heads must be a positive integer, got True",
    "trainer.gradient_clip_val=abc": "trainer.gradient_clip_val must be a number >= 0",
    "model.net.time_scale=-1": "model.net.time_scale must be a finite number >= 0",
    "model.net.video_summary=pooled": "model.net.video_summary must be one of token, mean",
}


@pytest.mark.parametrize("override", sorted(WRONG_TYPES))
def test_wrong_types_are_one_line_errors_naming_the_key(override, make_cfg):
    with pytest.raises(ConfigError) as info:
        validate_config(make_cfg(override))
    assert str(info.value).startswith(WRONG_TYPES[override]) and "\n" not in str(info.value)


def test_a_check_that_still_meets_a_value_it_cannot_handle_reports_it_in_one_line(make_cfg, monkeypatch):
    def crashing(cfg):
        return 1 // 0

    monkeypatch.setattr(config_checks, "tokens_per_frame", crashing)
    with pytest.raises(ConfigError, match=r"^the config could not be checked \(ZeroDivisionError: .*\); a value of the "
                                          r"wrong type is the usual cause"):
        validate_config(make_cfg())


def test_the_default_config_passes(make_cfg):
    validate_config(make_cfg())
    validate_config(make_cfg("seed=null", "trainer.max_epochs=-1", "trainer.max_steps=5"))
