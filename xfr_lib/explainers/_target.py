"""The pair score as a differentiable target, for every gradient method (Grad-CAM, FGGB, ...).

Tools such as pytorch-grad-cam keep an embedding-similarity target only in a tutorial, and
projects copy it; xfr has it once, here.
"""

from __future__ import annotations

import torch


class SimilarityTarget:
    """The pair score as a differentiable target for gradient methods (Grad-CAM, FGGB, ...).

    ``SimilarityTarget(reference)(embedding)`` is the cosine similarity between each row of
    ``embedding`` (``[B, D]``, from the explained forward pass) and a fixed ``reference``
    embedding (``[D]``), negated with ``sign=-1`` for dissimilarity maps. The reference must be
    computed outside the explained forward pass (and detached): a siamese forward that runs a
    hooked layer twice makes hook-based tools such as Captum attribute the second call.

    Args:
        reference: ``[D]`` embedding of the other image.
        sign: +1 for the similarity score, -1 for its negation.

    Example:
        >>> target = SimilarityTarget(torch.tensor([1.0, 0.0]))
        >>> target(torch.tensor([[3.0, 4.0], [0.0, -2.0]]))
        tensor([0.6000, 0.0000])
    """

    def __init__(self, reference: torch.Tensor, sign: float = 1.0) -> None:
        self.reference = torch.nn.functional.normalize(reference.detach().float().reshape(-1),
                                                       dim=0)
        self.sign = float(sign)

    def __call__(self, embedding: torch.Tensor) -> torch.Tensor:
        emb = torch.nn.functional.normalize(embedding.float(), dim=-1)
        return self.sign * (emb * self.reference.to(emb.device)).sum(-1)


