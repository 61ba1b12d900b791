"""Solvers that take the linear trainers to their optimum instead of a few Adam epochs.

    linear_regression    ridge normal equations, solved once in float64 (least squares
                         on the centred rows, so one-hot columns that add up to the
                         intercept need no special care)
    logistic_regression  full-batch L-BFGS with a strong Wolfe line search, in float64,
                         from zero weights, until the gradient or the loss stops moving

Both minimise the mean training loss (squared error on the standardised target;
softmax cross-entropy) plus `weight_decay / 2 * |W|^2`: the penalty Adam's
`weight_decay` applies, on the weights only (not the intercept, as scikit-learn
does). `epochs`, `lr` and `batch_size` do not apply. Nothing is random, so a run
gives the same weights for the same rows whatever the seed.
"""

from __future__ import annotations

from typing import Any

MAX_ITERATIONS = 1000
"""L-BFGS iterations at most: converged problems stop far earlier (tens)."""


def fit(network: Any, x: Any, y: Any, task: str, weight_decay: float,
        on_epoch: Any = None) -> None:
    """Set the single linear layer of `network` to the optimum for rows `x` and
    targets `y` (class indices, or the standardised target as a column)."""
    import torch

    layer = network[-1]
    if task == "regression":
        weight, bias, loss = _ridge(x, y, weight_decay)
    else:
        weight, bias, loss = _logistic(x, y, layer.out_features, weight_decay)
    with torch.no_grad():
        layer.weight.copy_(weight.to(layer.weight.dtype))
        layer.bias.copy_(bias.to(layer.bias.dtype))
    if on_epoch:
        on_epoch(1, 1, loss)


def _ridge(x: Any, y: Any, weight_decay: float) -> tuple[Any, Any, float]:
    import numpy as np
    import torch

    xs = x.detach().to("cpu", torch.float64).numpy()
    ys = y.detach().to("cpu", torch.float64).numpy().reshape(-1)
    rows, width = xs.shape
    x_mean, y_mean = xs.mean(axis=0), ys.mean()
    centred, target = xs - x_mean, ys - y_mean
    if weight_decay > 0:
        # (X'X + n*wd/2 I) w = X'y, as least squares on rows stacked under X
        centred = np.vstack([centred, np.sqrt(rows * weight_decay / 2) * np.eye(width)])
        target = np.concatenate([target, np.zeros(width)])
    w = np.linalg.lstsq(centred, target, rcond=None)[0]
    b = y_mean - x_mean @ w
    loss = float(np.mean((xs @ w + b - ys) ** 2))
    return (torch.from_numpy(w[None, :].copy()), torch.from_numpy(np.array([b])), loss)


def _logistic(x: Any, y: Any, classes: int, weight_decay: float) -> tuple[Any, Any, float]:
    import torch

    xs = x.detach().to(torch.float64)
    # one-hot targets (made on the CPU: scattering on a GPU may refuse deterministic
    # mode): cross-entropy as logsumexp minus the true logit, which unlike gather or
    # nll_loss is plain arithmetic on a GPU too
    onehot = torch.nn.functional.one_hot(y.detach().to("cpu").reshape(-1).long(),
                                         classes).to(xs)
    weight = torch.zeros(classes, xs.shape[1], dtype=torch.float64, device=xs.device,
                         requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, device=xs.device, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=MAX_ITERATIONS,
                                  max_eval=MAX_ITERATIONS * 2, tolerance_grad=1e-8,
                                  tolerance_change=1e-12, history_size=20,
                                  line_search_fn="strong_wolfe")

    def objective() -> Any:
        optimiser.zero_grad()
        logits = xs @ weight.T + bias
        loss = (torch.logsumexp(logits, dim=1) - (logits * onehot).sum(dim=1)).mean()
        if weight_decay > 0:
            loss = loss + weight_decay / 2 * (weight * weight).sum()
        loss.backward()
        return loss

    optimiser.step(objective)
    with torch.no_grad():
        logits = xs @ weight.T + bias
        loss = float((torch.logsumexp(logits, dim=1) - (logits * onehot).sum(dim=1)).mean())
    return weight.detach(), bias.detach(), loss
