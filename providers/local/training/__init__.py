"""The local `training_job`: built-in PyTorch trainers and custom scripts, each run in
its own process and recorded under `runs/<job>/<run_id>/`."""
