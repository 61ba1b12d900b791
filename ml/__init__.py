"""mlform's portable ML core: the machine-learning semantics every provider shares.

The artifact format and its `Predictor`, the built-in trainers and their
hyperparameters, metrics, data profiles, and (as they move here) the split, run
fingerprints, gates, monitor evaluation, dataset checks and retraining decisions.
Written once, so the same stack means the same thing on every platform; a
provider keeps only the calls that talk to its platform. Nothing here imports a
provider. The modules a job runs remotely import only numpy, pandas, scikit-learn
and torch, so the whole package is what providers ship into their job containers.
"""
