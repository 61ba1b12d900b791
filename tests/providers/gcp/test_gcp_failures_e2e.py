"""Google Cloud's refusals through the provider's verbs, on the Vertex AI fake with the
real SDK: a 503 is retried and the call succeeds; a 403 names the permission and the
resource; a quota refusal that outlasts the retries names the quota."""

from __future__ import annotations

import pytest
from mlform.engine.provider import (
    CreateRequest,
    ObserveRequest,
    Progress,
    ProviderContext,
    ResourceRef,
)
from mlform.providers.gcp.provider import GcpProvider

pytestmark = pytest.mark.e2e

QUIET = Progress(lambda *_: None)
TRAIN = {"dataset": "gs://{bucket}/d/data.csv", "algorithm": "logistic_regression",
         "target": "y"}


@pytest.fixture
def provider(gcs, vertex, gcs_bucket, tmp_path):
    made = GcpProvider(ProviderContext(
        "failures", tmp_path, "vertex",
        {"project": vertex.project, "region": vertex.region, "bucket": gcs_bucket,
         "api_endpoint": vertex.url, "storage_endpoint": gcs.url, "poll_interval": 0.05,
         "max_attempts": 2}, tmp_path / ".mlform" / "vertex"))
    yield made
    made.close()


def train_inputs(bucket: str) -> dict:
    return {**TRAIN, "dataset": TRAIN["dataset"].format(bucket=bucket)}


def test_a_503_is_retried_and_the_call_succeeds(provider, vertex, gcs_bucket):
    vertex.fail_next("ListCustomJobs", 503)
    found = provider.observe(ObserveRequest(ResourceRef("train", "training_job"),
                                            train_inputs(gcs_bucket), None,
                                            idempotency_key="k"))
    assert (found.error, found.exists) == (None, False)


def test_permission_denied_names_the_permission_and_the_resource(provider, vertex,
                                                                  gcs_bucket):
    vertex.fail_next("CreateCustomJob", 403)
    answer = provider.create(CreateRequest(ResourceRef("train", "training_job"),
                                           train_inputs(gcs_bucket), "k"), QUIET)
    assert answer.error.startswith(
        "permission denied: the identity running mlform lacks 'aiplatform.customJobs.create' "
        f"on 'projects/{vertex.project}/locations/{vertex.region}/customJobs' (Permission "
        "'aiplatform.customJobs.create' denied on resource"), answer.error


def test_a_quota_refusal_that_outlasts_the_retries_names_the_quota(provider, vertex,
                                                                    gcs_bucket):
    for _ in range(2):  # max_attempts: 2
        vertex.fail_next("CreateCustomJob", 429)
    answer = provider.create(CreateRequest(ResourceRef("train", "training_job"),
                                           train_inputs(gcs_bucket), "k"), QUIET)
    assert answer.error.startswith(
        "quota exceeded calling 'create_custom_job' on 'train': quota "
        "'aiplatform.googleapis.com/custom_model_training_cpus'"), answer.error
