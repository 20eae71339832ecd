"""EMA vector quantiser for the HuMoCon concept codebooks.

Written here instead of using `vector-quantize-pytorch` because (1) the model files are exported as remote code, which
should only need torch/transformers, (2) HuMoCon's hyper-network reads the whole codebook every step and the update
timing must follow the optimiser step under gradient accumulation and DDP (statistics of all micro-batches and all
processes are reduced once per optimiser step), which the library does not expose, and (3) the method needs only
~150 lines: nearest-code assignment, straight-through estimator, commitment loss, EMA updates and dead-code re-seeding.

Remote-code rule: only external imports here.
"""

import torch
from torch import nn


def _dist_world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def _all_gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Concatenate a (n_r, D) tensor from every process in rank order (n_r may differ between processes)."""
    world = _dist_world_size()
    if world == 1:
        return rows
    size = torch.tensor([rows.shape[0]], device=rows.device, dtype=torch.long)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    torch.distributed.all_gather(sizes, size)
    sizes = [int(s.item()) for s in sizes]
    padded = rows.new_zeros((max(sizes), rows.shape[1]))
    padded[: rows.shape[0]] = rows
    gathered = [torch.zeros_like(padded) for _ in range(world)]
    torch.distributed.all_gather(gathered, padded)
    return torch.cat([g[:n] for g, n in zip(gathered, sizes)], dim=0)


class HuMoConVectorQuantizer(nn.Module):
    """
    Nearest-neighbour VQ with an EMA-updated codebook (van den Oord et al. 2017, Razavi et al. 2019).

    The codebook is a set of buffers (no gradients). In training mode, `forward` records the assignment statistics
    of the valid tokens; `apply_update()` folds them into the EMA, re-seeds dead codes from random recorded features
    and, on the very first call, seeds the whole codebook from recorded features (data-dependent init). With
    `defer_updates=False` the update happens at the end of every training `forward` (plain training loops, single
    process, no cross-process reduction). With `defer_updates=True` the owner calls `apply_update()` once per
    optimiser step on every process: the statistics of all micro-batches are summed and all-reduced across processes,
    so gradient accumulation and multi-process runs update the codebook exactly like one big batch. (In a hand-written
    DDP loop left in immediate mode each process would update from its own shard and DDP's default
    `broadcast_buffers=True` would then copy rank 0's codebook to all: consistent, but statistics of rank 0 only.)

    Before the first update the codebook holds a fixed pseudo-random pattern ([`initial_codebook`], standard normal
    from a private generator seeded with `INIT_SEED`): `__init__` and `reset_parameters()` (transformers'
    `init_weights`, e.g. after building on the meta device) give bit-identical buffers, and neither draws from torch's
    global RNG. The data-dependent init of the first `apply_update()` overwrites it.
    """

    INIT_SEED = 0

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        decay: float = 0.99,
        dead_code_threshold: float = 1.0,
        commitment_weight: float = 0.25,
        eps: float = 1e-5,
    ):
        super().__init__()
        self.codebook_size = codebook_size
        self.dim = dim
        self.decay = decay
        self.dead_code_threshold = dead_code_threshold
        self.commitment_weight = commitment_weight
        self.eps = eps
        self.defer_updates = False
        self.register_buffer("embed", torch.empty(codebook_size, dim))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed_sum", torch.zeros(codebook_size, dim))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.long))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self._pending: list[torch.Tensor] = []
        with torch.no_grad():
            # A no-op on the meta device; `reset_parameters()` writes the same values after `to_empty()`.
            self.embed.copy_(self.initial_codebook())

    def initial_codebook(self) -> torch.Tensor:
        """The codebook before any update: standard normal `(codebook_size, dim)` (float32, CPU) from a private
        generator seeded with `INIT_SEED`. Deterministic and independent of torch's global RNG."""
        generator = torch.Generator(device="cpu").manual_seed(self.INIT_SEED)
        return torch.randn(self.codebook_size, self.dim, generator=generator, device="cpu")

    def reset_parameters(self) -> None:
        """Back to the state after `__init__`: the fixed initial codebook, zero statistics, not initialised."""
        with torch.no_grad():
            self.embed.copy_(self.initial_codebook())
            self.cluster_size.zero_()
            self.embed_sum.zero_()
            self.initialized.zero_()
            self.num_updates.zero_()
        self._pending = []

    @torch.no_grad()
    def assign(self, flat: torch.Tensor) -> torch.LongTensor:
        """Index of the nearest code (squared Euclidean distance, computed in float32) for each row of `flat`."""
        x = flat.float()
        embed = self.embed.float()
        dist = (
            x.pow(2).sum(-1, keepdim=True)
            - 2 * x @ embed.t()
            + embed.pow(2).sum(-1)[None]
        )
        return dist.argmin(-1)

    def forward(
        self, hidden_states: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.LongTensor, torch.Tensor]:
        """
        Args:
            hidden_states (`torch.FloatTensor` of shape `(batch, tokens, dim)`): continuous features.
            mask (`torch.BoolTensor` of shape `(batch, tokens)`, *optional*): valid tokens (padding is ignored by
                the statistics and the commitment loss and gets concept id -1).

        Returns:
            `(quantized, ids, commitment_loss)`: the straight-through quantised features `(batch, tokens, dim)`
            (values of the codes, gradients of `hidden_states`), the concept ids `(batch, tokens)` and the
            commitment loss `commitment_weight * mean ||z - sg(c)||^2` over valid tokens.
        """
        if hidden_states.shape[-1] != self.dim:
            raise ValueError(
                f"quantiser expects features of width {self.dim}, got {hidden_states.shape[-1]}"
            )
        if mask is None:
            mask = torch.ones(
                hidden_states.shape[:-1], dtype=torch.bool, device=hidden_states.device
            )
        mask = mask.bool()
        flat = hidden_states.reshape(-1, self.dim)
        ids = self.assign(flat).view(hidden_states.shape[:-1])
        codes = self.embed[ids].to(hidden_states.dtype)
        valid = mask.unsqueeze(-1).to(hidden_states.dtype)
        n_valid = valid.sum().clamp_min(1.0) * self.dim
        commitment = (
            self.commitment_weight
            * ((hidden_states - codes.detach()).pow(2) * valid).sum()
            / n_valid
        )
        quantized = hidden_states + (codes - hidden_states).detach()
        if self.training:
            self._record(hidden_states.detach()[mask], ids[mask])
            if not self.defer_updates:
                self.apply_update(sync=False)
        ids = ids.masked_fill(~mask, -1)
        return quantized, ids, commitment

    @torch.no_grad()
    def _record(self, flat: torch.Tensor, ids: torch.LongTensor) -> None:
        self._pending.append(
            torch.cat([flat.float(), ids.unsqueeze(-1).float()], dim=-1)
        )

    @torch.no_grad()
    def apply_update(self, sync: bool = True) -> None:
        """Fold the recorded statistics into the codebook. With `sync=True` and an initialised process group this is
        a collective call: every process must call it (a process without recorded tokens contributes nothing)."""
        pending = self._pending
        self._pending = []
        device = self.embed.device
        rows = (
            torch.cat(pending, 0)
            if pending
            else torch.zeros(0, self.dim + 1, device=device)
        )
        if sync:
            rows = _all_gather_rows(rows.to(device))
        if rows.shape[0] == 0:
            return
        rows = rows.to(device)
        flat, ids = rows[:, :-1], rows[:, -1].long()
        generator = torch.Generator().manual_seed(1234 + int(self.num_updates.item()))
        self.num_updates += 1
        if not bool(self.initialized.item()):
            # Data-dependent init: seed every code with a recorded feature and assume uniform usage so far.
            pick = torch.randint(
                flat.shape[0], (self.codebook_size,), generator=generator
            ).to(device)
            self.embed.copy_(flat[pick])
            usage = max(flat.shape[0] / self.codebook_size, self.dead_code_threshold)
            self.cluster_size.fill_(usage)
            self.embed_sum.copy_(self.embed * usage)
            self.initialized.fill_(1)
            return
        counts = torch.bincount(ids, minlength=self.codebook_size).float()
        sums = torch.zeros_like(self.embed_sum, dtype=torch.float32).index_add_(
            0, ids, flat
        )
        self.cluster_size.mul_(self.decay).add_(
            counts.to(self.cluster_size.dtype), alpha=1 - self.decay
        )
        self.embed_sum.mul_(self.decay).add_(
            sums.to(self.embed_sum.dtype), alpha=1 - self.decay
        )
        total = self.cluster_size.sum()
        smoothed = (
            (self.cluster_size + self.eps)
            / (total + self.codebook_size * self.eps)
            * total
        )
        self.embed.copy_(self.embed_sum / smoothed.unsqueeze(-1))
        dead = self.cluster_size < self.dead_code_threshold
        n_dead = int(dead.sum().item())
        if n_dead:
            pick = torch.randint(flat.shape[0], (n_dead,), generator=generator).to(
                device
            )
            self.embed[dead] = flat[pick].to(self.embed.dtype)
            self.cluster_size[dead] = self.dead_code_threshold
            self.embed_sum[dead] = self.embed[dead] * self.dead_code_threshold

    def extra_repr(self) -> str:
        return (
            f"codebook_size={self.codebook_size}, dim={self.dim}, decay={self.decay}, "
            f"dead_code_threshold={self.dead_code_threshold}"
        )


__all__ = ["HuMoConVectorQuantizer"]
