"""Processing jobs that run, for tests that need the gate evaluation job's real answer.

moto records a processing job as Completed and runs nothing. `run_processing_jobs`
patches moto's SageMaker (in this process, where the moto server runs) so that each
job created runs as SageMaker runs it, with this venv's `python` as the image's:
every ProcessingInput's S3 prefix is copied under a scratch directory standing for
its LocalPath, the ContainerEntrypoint runs with those paths, and each output's
LocalPath is uploaded to its S3Uri at the end (S3UploadMode EndOfJob). A non-zero exit
ends the job Failed with the end of its stderr as FailureReason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from moto.sagemaker.models import SageMakerModelBackend


def run_processing_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make processing jobs created from now on (until the test ends) really run."""
    create = SageMakerModelBackend.create_processing_job

    def create_and_run(self: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
        job = create(self, *args, **kwargs)
        _run(self.account_id, job)
        return job

    monkeypatch.setattr(SageMakerModelBackend, "create_processing_job", create_and_run)


def _s3(account: str) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[account]["aws"]


def _run(account: str, job: Any) -> None:
    s3 = _s3(account)
    root = Path(tempfile.mkdtemp(prefix="moto-processing-"))
    try:
        places: dict[str, Path] = {}
        for given in job.processing_inputs or []:
            source = given["S3Input"]
            local = places[source["LocalPath"]] = root / source["LocalPath"].lstrip("/")
            bucket, _, prefix = source["S3Uri"].removeprefix("s3://").partition("/")
            keys = s3.list_objects(s3.get_bucket(bucket), prefix, None, None, 10_000)[0]
            for key in keys:
                rest = key.name[len(prefix):].lstrip("/") or Path(key.name).name
                target = local / rest
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(key.value)
        outputs = [o["S3Output"] for o in
                   (job.processing_output_config or {}).get("Outputs", [])]
        for output in outputs:
            places[output["LocalPath"]] = root / output["LocalPath"].lstrip("/")
            places[output["LocalPath"]].mkdir(parents=True, exist_ok=True)
        command = list(job.app_specification["ContainerEntrypoint"])
        for path in sorted(places, key=len, reverse=True):  # longest first: no prefix clash
            command = [part.replace(path, str(places[path])) for part in command]
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            job.processing_job_status = "Failed"
            job.failure_reason = (done.stderr or done.stdout)[-1000:]
            return
        for output in outputs:
            bucket, _, prefix = output["S3Uri"].removeprefix("s3://").partition("/")
            local = places[output["LocalPath"]]
            for path in sorted(p for p in local.rglob("*") if p.is_file()):
                key = "/".join(p for p in (prefix.strip("/"),
                                           path.relative_to(local).as_posix()) if p)
                s3.put_object(bucket, key, path.read_bytes())
    finally:
        shutil.rmtree(root, ignore_errors=True)
