"""One exception family: every error the harness raises on purpose is a HarnessError, and the
second bases keep ``except ValueError`` / pytest's AssertionError reading working."""
import numpy as np
import pytest
import torch

from harness import errors
from harness.errors import AudioError, CalibrationError, GoldenError, LayoutError, ModelNotAvailable
from harness.signal import metrics
from harness.signal.audio import valid_audio
from harness.signal.frontend import get_frontend
from harness.judging.stages import StageResult, measure


def test_every_harness_exception_is_one_family():
    for exc, second in ((AudioError, ValueError), (LayoutError, ValueError), (errors.InputError, ValueError),
                        (ModelNotAvailable, RuntimeError), (CalibrationError, RuntimeError),
                        (GoldenError, AssertionError)):
        assert issubclass(exc, errors.HarnessError) and issubclass(exc, second), exc


@pytest.mark.parametrize("call", [
    lambda: valid_audio(np.zeros(10, dtype=np.float32), "x.wav"),
    lambda: get_frontend("audioldm2")(torch.zeros(1, 100)),
    lambda: metrics.snr(np.zeros(100), np.zeros(101)),
    lambda: metrics.mel_l1(mel_estimate=np.zeros((4, 64)), mel_reference=np.zeros((5, 64))),
], ids=["audio", "frontend", "metrics", "mel-metrics"])
def test_validators_raise_input_errors(call):
    with pytest.raises(errors.InputError):
        call()


def test_measure_turns_a_stage_error_into_its_result():
    def broken():
        raise LayoutError("vocoder: expected a log-mel [batch, frames, 64], got (1, 64, 100)")

    result = measure(broken)
    assert result == StageResult({}, "LayoutError: vocoder: expected a log-mel [batch, frames, 64], got (1, 64, 100)")
    assert measure(lambda: {"mel_l1": np.array([0.1])}).metrics["mel_l1"][0] == 0.1
    with pytest.raises(KeyError):  # not a stage error: a bug in the caller still surfaces
        measure(lambda: {}["missing"])
