"""Learning-rate policy: reduce on a validation-loss plateau, stop early ([Liu2019, sec. 4.2]).

[Liu2019]: "the learning rate is halved if the validation loss gets stuck for a while. The loss
converges after the learning rate goes down below 1e-5". Made precise here:

* after each epoch the validation loss ``v`` is compared with the best so far ``b``: it improves
  when ``v < b * (1 - min_improvement)``;
* after ``patience`` consecutive epochs without improvement the LR is multiplied by ``lr_factor``
  (0.5 = halving) and the count restarts;
* training stops when the LR falls below ``min_lr`` or when the LR would be reduced once more after
  ``max_reductions_without_improvement`` reductions that brought no improvement.

The state is a handful of numbers kept in the checkpoint, so a resumed run makes the same decisions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class PlateauState:
    best_loss: float = math.inf
    bad_epochs: int = 0
    reductions_without_improvement: int = 0


@dataclass
class Decision:
    improved: bool
    new_lr: float
    stop: bool
    reason: str = ""


def plateau_step(state: PlateauState, valid_loss: float, lr: float, *, lr_factor: float, patience: int,
                 min_improvement: float, max_reductions_without_improvement: int, min_lr: float) -> Decision:
    """Update ``state`` in place with this epoch's validation loss; return the LR decision."""
    if math.isfinite(valid_loss) and valid_loss < state.best_loss * (1.0 - min_improvement) \
            or (math.isinf(state.best_loss) and math.isfinite(valid_loss)):
        state.best_loss = valid_loss
        state.bad_epochs = 0
        state.reductions_without_improvement = 0
        return Decision(True, lr, False)
    state.bad_epochs += 1
    if state.bad_epochs < patience:
        return Decision(False, lr, False)
    state.bad_epochs = 0
    if state.reductions_without_improvement >= max_reductions_without_improvement:
        return Decision(False, lr, True, f"no improvement after {state.reductions_without_improvement} "
                                         f"learning-rate reductions")
    state.reductions_without_improvement += 1
    new_lr = lr * lr_factor
    if new_lr < min_lr:
        return Decision(False, new_lr, True, f"learning rate {new_lr:.3g} below min_lr {min_lr:.3g}")
    return Decision(False, new_lr, False)
