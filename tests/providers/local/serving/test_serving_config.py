from __future__ import annotations

import pytest
from mlform.engine.spec.models import Endpoint
from mlform.providers.local.paths import LocalPaths
from mlform.providers.local.serving.config import ServingConfig, VariantSpec, serving_config

from .conftest import uri


def variant(model: str = "m1", weight: int = 100, shadow: bool = False) -> VariantSpec:
    return VariantSpec(model=model, path="/nowhere", weight=weight, shadow=shadow)


@pytest.mark.parametrize("config, expected", [
    pytest.param(ServingConfig(endpoint="e", stable={"a": variant()}), {"a": 100.0},
                 id="one variant takes everything"),
    pytest.param(ServingConfig(endpoint="e", stable={"a": variant(weight=90),
                                                     "b": variant(weight=10)}),
                 {"a": 90.0, "b": 10.0}, id="weights split the traffic"),
    pytest.param(ServingConfig(endpoint="e", stable={"a": variant(weight=3),
                                                     "s": variant(shadow=True)}),
                 {"a": 100.0}, id="a shadow answers no request"),
    pytest.param(ServingConfig(endpoint="e", stable={"a": variant()},
                               canary={"b": variant("m2")}, canary_percent=10),
                 {"a": 90.0, "b": 10.0}, id="the canary set takes its percent"),
    pytest.param(ServingConfig(endpoint="e", stable={"a": variant()},
                               canary={"a": variant("m2")}, canary_percent=25),
                 {"a": 100.0}, id="a variant in both sets sums its shares"),
])
def test_traffic(config: ServingConfig, expected: dict) -> None:
    assert config.traffic() == expected


def test_a_config_needs_a_variant_that_answers() -> None:
    with pytest.raises(ValueError, match="at least one variant that is not a shadow"):
        ServingConfig(endpoint="e", stable={"s": variant(shadow=True)})


def test_digest_ignores_a_rollout_in_progress() -> None:
    config = ServingConfig(endpoint="e", stable={"a": variant()})
    assert config.with_canary({"a": variant("m2")}, 50).digest() == config.digest()
    assert config.model_copy(update={"sample_rate": 0.5}).digest() != config.digest()


@pytest.mark.parametrize("model, message", [
    pytest.param("s3://bucket/model", "variant 'v': not a local provider uri: 's3://bucket/model'",
                 id="another provider's uri"),
    pytest.param("local://models/m/9", "variant 'v': model 'local://models/m/9' has no artifact",
                 id="a version that was never registered"),
])
def test_serving_config_names_the_variant_whose_model_is_missing(
        data_dir, model: str, message: str) -> None:
    spec = Endpoint.model_validate({"type": "endpoint", "variants": {"v": {"model": model}}})
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        serving_config("e", spec, LocalPaths(data_dir))


def test_serving_config_resolves_artifacts_and_settings(data_dir) -> None:
    spec = Endpoint.model_validate({
        "type": "endpoint", "variants": {"v": {"model": uri(1), "weight": 7}},
        "logging": {"sample_rate": 0.5, "max_rows": 10}, "compute": {"cpus": 2}})
    config = serving_config("e", spec, LocalPaths(data_dir))
    assert config.stable["v"].path == str(LocalPaths(data_dir).model_version("m", 1) / "artifact")
    assert (config.stable["v"].weight, config.sample_rate, config.max_rows, config.threads) == \
        (7, 0.5, 10, 2)
