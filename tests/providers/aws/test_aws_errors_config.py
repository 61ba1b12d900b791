"""Configuration problems and AWS failures in words, through the provider's verbs."""

from __future__ import annotations

import pytest
from aws_stack import create, dataset_inputs, write_data
from botocore.exceptions import ClientError, NoCredentialsError
from mlform.providers.aws.errors import explain


def client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize(("exc", "expected"), [
    (client_error("AccessDeniedException", "not authorized", "CreateTrainingJob"),
     "access denied: the identity running mlform may not call 'sagemaker:CreateTrainingJob' "
     "on 'train' (not authorized); grant it this action"),
    (client_error("ResourceLimitExceeded", "The account-level service limit 'ml.g5.xlarge "
                  "for training job usage' is 0 Instances", "CreateTrainingJob"),
     "quota exceeded calling 'sagemaker:CreateTrainingJob' on 'train': The account-level "
     "service limit 'ml.g5.xlarge for training job usage' is 0 Instances; request an increase"),
    (client_error("AccessDenied", "denied", "PutObject"),
     "may not call 's3:PutObject' on 'train'"),
    (NoCredentialsError(), "no AWS credentials found: set AWS_PROFILE"),
], ids=["access-denied-names-action-and-resource", "quota-names-the-limit",
        "s3-action-is-named-as-s3", "no-credentials-says-how-to-configure"])
def test_failures_are_explained(exc, expected):
    assert expected in explain(exc, "train")


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"region": None}, "region: Input should be a valid string"),
    ({"role_arn": "admin"}, "role_arn: String should match pattern"),
    ({"timeouts": {"training_job": "two hours"}},
     "timeouts: Value error, 'two hours' is not a duration"),
    ({"timeouts": {"trainingjob": "2h"}}, "unknown resource type(s) ['trainingjob']"),
    ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
], ids=["region-required", "role-must-be-an-arn", "timeouts-are-durations",
        "timeouts-name-resource-types", "unknown-setting"])
def test_validate_config_lists_problems(make_provider, overrides, expected):
    problems = make_provider(**overrides).validate_config()
    assert any(expected in str(p) for p in problems), problems


def test_a_misconfigured_provider_answers_with_an_error(tmp_path, make_provider):
    write_data(tmp_path)
    answer = create(make_provider(role_arn="admin"), "transactions", "dataset",
                    dataset_inputs())
    assert answer.error.startswith("provider 'sagemaker' is misconfigured: role_arn:")


def test_missing_credentials_are_reported_with_how_to_configure(tmp_path, make_provider,
                                                                 monkeypatch):
    write_data(tmp_path)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    answer = create(make_provider(), "transactions", "dataset", dataset_inputs())
    assert answer.error.startswith("no AWS credentials found")


def test_importing_the_package_does_not_import_boto3():
    import subprocess
    import sys

    code = ("import sys, mlform.providers.aws, mlform.providers.aws.provider; "
            "print('boto3' in sys.modules)")
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "False"
