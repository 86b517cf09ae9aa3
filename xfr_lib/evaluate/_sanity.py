"""Model-randomisation sanity checks (Adebayo et al. 2018): the model with its weights re-drawn.

A faithful explanation depends on the model: explain the same pairs with a copy whose learned
weights are random, and the maps should change. :func:`randomized_copy` makes that copy.
"""

from __future__ import annotations

import copy

import torch

from xfr_lib.errors import XfrError


def randomized_copy(model: torch.nn.Module, seed: int = 0, top: int | None = None) -> torch.nn.Module:
    """A copy of ``model`` whose learned layers are re-initialised (the sanity-check model).

    Every module with a ``reset_parameters`` method (convolutions, linear layers, PReLU, batch
    norm, ...) is reset to PyTorch's default initialisation for its type: Kaiming-uniform
    weights (``a = sqrt(5)``) and uniform biases for convolutions and linear layers, scale 1 and
    shift 0 for normalisation layers, 0.25 for PReLU. Buffers that are not learned (e.g. the
    input mean) are kept. This is Adebayo et al.'s "re-initialise" randomisation, not a
    shuffle of the trained weights.

    Args:
        model: a face model (left unchanged).
        seed: seed of the new weights (drawn inside ``torch.random.fork_rng``, so the global
            torch random state is not touched).
        top: cascading randomisation: reset only the last ``top`` resettable modules in
            ``model.modules()`` order (the layers nearest the output); None resets all.

    Returns:
        The randomised copy, in eval mode, on the model's device.
    """
    clone = copy.deepcopy(model)
    layers = [m for m in clone.modules()
              if m is not clone and callable(getattr(m, "reset_parameters", None))]
    if not layers:
        raise XfrError(f"{type(model).__name__} has no layer with reset_parameters(); nothing "
                       f"to randomise")
    if top is not None:
        if int(top) != top or top < 1:
            raise XfrError(f"top={top} must be a positive number of layers (or None for all)")
        layers = layers[-int(top):]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.no_grad():
            for m in layers:
                m.reset_parameters()
    return clone.eval()


def resettable_layers(model: torch.nn.Module) -> list[str]:
    """Names of the modules :func:`randomized_copy` resets, input side first."""
    return [name for name, m in model.named_modules()
            if m is not model and callable(getattr(m, "reset_parameters", None))]
