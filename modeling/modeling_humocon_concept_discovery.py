"""HuMoCon concept discovery (stage 1): the two concept encoders trained with the paper's four objectives.

[`HuMoConForConceptDiscovery`] holds a [`HuMoConMotionEncoder`] and a [`HuMoConVideoEncoder`]
(`modeling_humocon_encoders.py`) and one head per objective, each a method of the model:

- masked reconstruction (`motion_reconstruction_loss` / `video_reconstruction_loss`, [`ReconstructionDecoder`]):
  mask quantised tokens, rebuild the input frames (motion) or frame features (video);
- discriminative informativeness (`discriminative_loss`, [`HyperNetworkClassifier`]): a classifier generated from
  each concept's code scores whether a state belongs to that concept;
- velocity reconstruction, the paper's actionable informativeness (`velocity_reconstruction_loss`,
  [`VelocityDecoder`]): the state and the gradient of its concept's score predict the next-frame velocity (motion)
  or the optical flow (video);
- alignment (`alignment_loss`): InfoNCE between paired video key frames and motion tokens.

`forward` computes the encoders' outputs and calls each of them (config switches `use_masked_reconstruction`,
`use_discriminative`, `use_velocity_reconstruction`, `use_alignment`; weights `lambda_*`).

One file (over 600 lines) on purpose: transformers' convention is one self-contained modeling file per model, and
it is what `trust_remote_code` copies to the Hub; the objective heads are parts of the one stage-1 model.

Remote-code rule: this file imports only external libraries and same-folder modules (`from .x import Y`).
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from .configuration_humocon_encoders import LOSS_COMPONENTS, HuMoConConceptDiscoveryConfig
from .modeling_humocon_encoders import (
    HuMoConEncodersPreTrainedModel,
    HuMoConMotionEncoder,
    HuMoConTransformer,
    HuMoConVideoEncoder,
    _check_finite,
    load_vision_tower,
    sinusoidal_embedding,
)

# --------------------------------------------------------------------------------------------------------------------
# Outputs


@dataclass
class ConceptDiscoveryOutput(ModelOutput):
    r"""
    Output of [`HuMoConForConceptDiscovery`]. Components of switched-off objectives (or of an absent modality) are
    `None`.

    Args:
        loss (`torch.FloatTensor` of shape `()`): `L_rec + L_commit + λ_dis L_dis + λ_act L_act + λ_align L_align`.
        loss_rec_motion, loss_rec_video (`torch.FloatTensor` of shape `()`): masked-reconstruction MSE.
        loss_dis (`torch.FloatTensor` of shape `()`): discriminative BCE, summed over modalities.
        loss_velocity (`torch.FloatTensor` of shape `()`): velocity-reconstruction MSE, summed over modalities.
        loss_align (`torch.FloatTensor` of shape `()`): video→motion InfoNCE over the paired samples.
        loss_commit (`torch.FloatTensor` of shape `()`): VQ commitment losses, summed over modalities.
        motion_concept_ids (`torch.LongTensor` of shape `(batch_motion, motion_tokens)`): -1 on padding.
        video_concept_ids (`torch.LongTensor` of shape `(batch_video, video_tokens)`).
        motion_token_mask (`torch.LongTensor` of shape `(batch_motion, motion_tokens)`): 1 for valid motion tokens.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, with `output_hidden_states=True`): the motion encoder's
            concept-transformer states (the video encoder's when only a video is given), one per layer plus the input.
        attentions (`tuple(torch.FloatTensor)`, *optional*, with `output_attentions=True`): the same encoder's
            per-head attention probabilities `(batch, heads, tokens, tokens)`, one per layer.
        video_hidden_states, video_attentions (*optional*): the video encoder's, when a video is given.
    """

    loss: torch.FloatTensor | None = None
    loss_rec_motion: torch.FloatTensor | None = None
    loss_rec_video: torch.FloatTensor | None = None
    loss_dis: torch.FloatTensor | None = None
    loss_velocity: torch.FloatTensor | None = None
    loss_align: torch.FloatTensor | None = None
    loss_commit: torch.FloatTensor | None = None
    motion_concept_ids: torch.LongTensor | None = None
    video_concept_ids: torch.LongTensor | None = None
    motion_token_mask: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    video_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    video_attentions: tuple[torch.FloatTensor, ...] | None = None


# --------------------------------------------------------------------------------------------------------------------
# Heads of the concept-discovery objectives


class HyperNetworkClassifier(nn.Module):
    """
    Hyper-network H (discriminative informativeness): from a code vector `c_k` a 2-layer generator MLP produces
    `rank` coefficients that mix as many learned basis matrices into the weights of a `(C, C + 1)` layer — the
    concept's own classifier. A state `s` is embedded (`act(W_s s)`, the classifier's first layer), passed through the
    generated layer, and scored `sigmoid(cos(μ_k, h) / τ)` with `μ_k` a linear map of the code (InfoCon reference).
    """

    def __init__(
        self,
        code_dim: int,
        state_dim: int,
        classifier_dim: int,
        hidden_size: int,
        rank: int,
        temperature: float,
    ):
        super().__init__()
        self.temperature = temperature
        self.generator = nn.Sequential(
            nn.Linear(code_dim, hidden_size), nn.GELU(), nn.Linear(hidden_size, rank)
        )
        self.basis = nn.Parameter(
            torch.randn(rank, classifier_dim, classifier_dim + 1)
            / math.sqrt(classifier_dim + 1)
        )
        self.state_embed = nn.Linear(state_dim, classifier_dim)
        self.code_direction = nn.Linear(code_dim, classifier_dim)

    def logits(
        self,
        codebook: torch.Tensor,
        states: torch.Tensor,
        code_ids: torch.LongTensor | None = None,
    ) -> torch.Tensor:
        """
        Args:
            codebook (`(K, code_dim)`): code vectors.
            states (`(N, state_dim)`): states to score.
            code_ids (`(N, M)`, *optional*): which codes to score for each state; `None` scores all `K` codes
                (without gathering per-pair copies of the generated weights).

        Returns:
            `(N, M)` (or `(N, K)`) logits `cos(μ_k, h_k(s)) / τ`; the score is their sigmoid.
        """
        coeffs = self.generator(codebook)  # (K, r)
        directions = self.code_direction(codebook)  # (K, C)
        x = F.gelu(self.state_embed(states))
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=-1)  # (N, C + 1)
        basis_out = torch.einsum(
            "rcd,nd->nrc", self.basis, x
        )  # (N, r, C): the state through each basis matrix
        if code_ids is None:
            # h_k = Σ_r a_kr B_r x is never materialised for all K codes: with rank r, μ_k·h_k = Σ_r a_kr (μ_k·B_r x)
            # and |h_k|² = a_k^T G a_k with the (r, r) Gram matrix G of the B_r x — O(N K r²) instead of O(N K C).
            dots = torch.einsum("nrc,kc->nkr", basis_out, directions)
            numerator = (dots * coeffs[None]).sum(-1)  # (N, K)
            gram = torch.einsum("nrc,nsc->nrs", basis_out, basis_out)
            hidden_sq = torch.einsum("kr,nrs,ks->nk", coeffs, gram, coeffs)
            direction_norm = directions.norm(dim=-1)[None]  # (1, K)
        else:
            hidden = torch.einsum(
                "nmr,nrc->nmc", coeffs[code_ids], basis_out
            )  # (N, M, C)
            picked = directions[code_ids]
            numerator = (hidden * picked).sum(-1)
            hidden_sq = hidden.pow(2).sum(-1)
            direction_norm = picked.norm(dim=-1)
        norm = hidden_sq.clamp_min(1e-12).sqrt() * direction_norm
        return numerator / norm.clamp_min(1e-6) / self.temperature


class VelocityDecoder(nn.Module):
    """Velocity decoder A (actionable informativeness): 2-layer MLP on `[state, ∂score/∂state]`."""

    def __init__(self, state_dim: int, hidden_size: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * state_dim, hidden_size),
            nn.GELU(),
            nn.Linear(hidden_size, out_dim),
        )

    def forward(self, state: torch.Tensor, score_grad: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([state, score_grad], dim=-1))


class ReconstructionDecoder(nn.Module):
    """Transformer decoder of the masked-reconstruction objective: (masked) quantised tokens → targets."""

    def __init__(
        self,
        code_dim: int,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        out_dim: int,
    ):
        super().__init__()
        self.mask_embedding = nn.Parameter(torch.zeros(code_dim))
        self.input_proj = nn.Linear(code_dim, hidden_size)
        self.transformer = HuMoConTransformer(
            hidden_size, num_layers, num_heads, 4 * hidden_size, 0.0
        )
        self.output_proj = nn.Linear(hidden_size, out_dim)

    def forward(
        self,
        quantized: torch.Tensor,
        token_mask: torch.Tensor,
        masked: torch.Tensor | None,
    ) -> torch.Tensor:
        if masked is not None:
            quantized = torch.where(
                masked.unsqueeze(-1), self.mask_embedding.to(quantized.dtype), quantized
            )
        hidden = self.input_proj(quantized)
        positions = torch.arange(hidden.shape[1], device=hidden.device)
        hidden = (
            hidden
            + sinusoidal_embedding(positions, hidden.shape[-1]).to(hidden.dtype)[None]
        )
        return self.output_proj(self.transformer(hidden, token_mask))


def random_token_mask(
    token_mask: torch.Tensor, ratio: float, generator: torch.Generator | None = None
) -> torch.Tensor | None:
    """Choose `round(ratio * valid_tokens)` random valid tokens per row to mask (torch's global RNG, or
    `generator`)."""
    if ratio <= 0:
        return None
    noise = torch.rand(token_mask.shape, device=token_mask.device, generator=generator)
    noise = noise.masked_fill(~token_mask, 2.0)
    ranks = noise.argsort(-1).argsort(-1)
    n_mask = torch.round(token_mask.sum(-1).float() * ratio).long()
    return ranks < n_mask[:, None]


# --------------------------------------------------------------------------------------------------------------------
# Concept discovery (stage-1 pre-training)


class HuMoConForConceptDiscovery(HuMoConEncodersPreTrainedModel):
    """
    Stage 1 of HuMoCon: the motion and video concept encoders trained with the four objectives of the paper.

    - Masked reconstruction: a fraction σ of valid quantised tokens (random, in training and evaluation alike) is
      replaced by a learned mask embedding; the motion
      decoder (2 layers) reconstructs the input frames (each token is unfolded back into its `stride` frames), the
      video decoder (12 layers) reconstructs the pooled tower features of each token. MSE over valid frames/tokens.
    - Discriminative informativeness: [`HyperNetworkClassifier`] scores (code, state) pairs; BCE with label
      `[VQ assignment == code]`. All codes are scored (`dis_num_negatives=None`) or the own code plus sampled
      negatives; positives and negatives are averaged separately and summed, so the 1:K imbalance does not make the
      all-negative answer optimal.
    - Actionable informativeness: `g = ∂ Σ_l score(c_{d_l}, s_l) / ∂ s` with `create_graph=True`; the velocity
      decoder maps `[s, g]` to the velocity: for motion, the mean feature vector of token `j + 1` minus that of token
      `j` (the last valid token has no target); for video, the optical flow from key frame `i` to `i + 1`
      (`video_flow`, average-pooled to `flow_grid_size²` cells, times `flow_scale`). Runs under `torch.enable_grad()`
      so the loss can be evaluated in `no_grad` evaluation loops too.
    - Alignment: one linear projection per modality; for each paired video key frame `i`, InfoNCE (temperature ε)
      against all valid motion tokens of its paired motion, positive `floor(t_i * motion_fps / stride)`.

    The state `s` of both informativeness objectives is the encoder's pre-quantisation feature.
    """

    config_class = HuMoConConceptDiscoveryConfig
    config: HuMoConConceptDiscoveryConfig
    main_input_name = "motion_values"

    def __init__(self, config: HuMoConConceptDiscoveryConfig):
        super().__init__(config)
        mc, vc = config.motion_config, config.video_config
        self.motion_encoder = HuMoConMotionEncoder(mc)
        self.video_encoder = HuMoConVideoEncoder(vc)
        self.motion_decoder = ReconstructionDecoder(
            mc.codebook_dim,
            mc.decoder_hidden_size,
            mc.decoder_num_layers,
            mc.decoder_num_attention_heads,
            mc.motion_token_stride * mc.feature_size,
        )
        self.video_decoder = ReconstructionDecoder(
            vc.codebook_dim,
            vc.decoder_hidden_size,
            vc.decoder_num_layers,
            vc.decoder_num_attention_heads,
            vc.vision_config.hidden_size,
        )
        hyper = (
            config.classifier_dim,
            config.hyper_hidden_size,
            config.hyper_rank,
            config.score_temperature,
        )
        self.motion_hyper_network = HyperNetworkClassifier(
            mc.codebook_dim, mc.codebook_dim, *hyper
        )
        self.video_hyper_network = HyperNetworkClassifier(
            vc.codebook_dim, vc.codebook_dim, *hyper
        )
        self.motion_velocity_decoder = VelocityDecoder(
            mc.codebook_dim, config.velocity_hidden_size, mc.feature_size
        )
        self.video_velocity_decoder = VelocityDecoder(
            vc.codebook_dim, config.velocity_hidden_size, 2 * vc.flow_grid_size**2
        )
        self.motion_alignment_projector = nn.Linear(
            mc.codebook_dim, config.alignment_dim
        )
        self.video_alignment_projector = nn.Linear(
            vc.codebook_dim, config.alignment_dim
        )
        self.post_init()
        if vc.freeze_vision_tower:
            self.video_encoder.vision_tower.requires_grad_(False)
        # Codebooks change at the end of each training forward (the heads read the codebook during the forward),
        # or once per optimiser step when a Trainer defers them.
        self.set_codebook_update_mode(deferred=False)

    @classmethod
    def from_vision_tower(
        cls,
        vision_model_name_or_path: str | None = None,
        config: HuMoConConceptDiscoveryConfig | None = None,
        **kwargs,
    ) -> "HuMoConForConceptDiscovery":
        """Model whose video tower holds pre-trained SigLIP weights (Hub id or local folder); see
        [`HuMoConVideoEncoder.from_vision_tower`]."""
        config = HuMoConConceptDiscoveryConfig() if config is None else config
        vc = config.video_config
        tower = load_vision_tower(
            vision_model_name_or_path or vc.vision_model_name_or_path, vc, **kwargs
        )
        model = cls(config)
        model.video_encoder.vision_tower.load_state_dict(tower.state_dict())
        if vc.freeze_vision_tower:
            model.video_encoder.vision_tower.requires_grad_(False)
        return model

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, HyperNetworkClassifier):
            nn.init.normal_(module.basis, std=module.basis.shape[-1] ** -0.5)

    def set_codebook_update_mode(self, deferred: bool) -> None:
        """`deferred=True`: only `apply_codebook_updates()` changes the codebooks (the Trainer calls it once per
        optimiser step, on every process). `False` (default): at the end of every training forward, locally."""
        super().set_codebook_update_mode(
            True
        )  # the encoders never update mid-forward: the heads read the codebook
        self._update_in_forward = not deferred

    # ---- input handling ----------------------------------------------------------------------------------------

    def get_input_embeddings(self) -> nn.Module:
        """The motion encoder's input projection (what `enable_input_require_grads` and PEFT hook)."""
        return self.motion_encoder.get_input_embeddings()

    @staticmethod
    def _pairs(
        paired, n_motion: int | None, n_video: int | None, device
    ) -> torch.LongTensor | None:
        """Normalise `paired` to a `(P, 2)` tensor of (motion row, video row) indices, or None."""
        if paired is None:
            if n_motion is None or n_video is None:
                return None
            if n_motion != n_video:
                raise ValueError(
                    f"motion batch ({n_motion}) and video batch ({n_video}) differ in size and `paired` is not given: "
                    "pass paired=(P, 2) index pairs (motion row, video row) or a boolean mask for equal batches"
                )
            rows = torch.arange(n_motion, device=device)
            return torch.stack([rows, rows], -1)
        if n_motion is None or n_video is None:
            raise ValueError(
                "`paired` was given but only one modality was; paired samples need motion and video"
            )
        paired = torch.as_tensor(paired, device=device)
        if paired.dtype == torch.bool or paired.ndim == 1:
            if n_motion != n_video:
                raise ValueError(
                    f"a per-row `paired` mask needs equal motion ({n_motion}) and video ({n_video}) batch sizes"
                )
            if tuple(paired.shape) != (n_motion,):
                raise ValueError(
                    f"`paired` mask must have shape ({n_motion},), got {tuple(paired.shape)}"
                )
            rows = paired.bool().nonzero().flatten()
            return torch.stack([rows, rows], -1)
        if paired.ndim != 2 or paired.shape[1] != 2:
            raise ValueError(
                f"`paired` must be a (batch,) bool mask or (P, 2) index pairs, got {tuple(paired.shape)}"
            )
        paired = paired.long()
        if paired.numel() and (
            paired.min() < 0
            or paired[:, 0].max() >= n_motion
            or paired[:, 1].max() >= n_video
        ):
            raise ValueError(
                f"`paired` indices out of range for {n_motion} motion and {n_video} video samples: {paired.tolist()}"
            )
        return paired

    # ---- objectives --------------------------------------------------------------------------------------------

    def discriminative_loss(
        self,
        hyper: HyperNetworkClassifier,
        codebook: torch.Tensor,
        states: torch.Tensor,
        ids: torch.LongTensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Discriminative informativeness: the classifier each concept's code generates (`hyper`) tells states
        `(N, D)` of that concept (VQ ids `(N,)`) from those of others (all codes, or `dis_num_negatives` drawn ones);
        balanced BCE."""
        n_codes = codebook.shape[0]
        negatives = self.config.dis_num_negatives
        if negatives is None or negatives >= n_codes - 1:
            logits = hyper.logits(codebook, states)
            labels = F.one_hot(ids, n_codes).to(logits.dtype)
        else:
            # Own code first, then `negatives` distinct other codes (offsets avoid the own id).
            offsets = (
                torch.rand(
                    states.shape[0], n_codes - 1, device=states.device, generator=generator
                ).argsort(-1)[:, :negatives]
                + 1
            )
            code_ids = torch.cat(
                [ids[:, None], (ids[:, None] + offsets) % n_codes], dim=1
            )
            logits = hyper.logits(codebook, states, code_ids)
            labels = (code_ids == ids[:, None]).to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        pos = labels.sum().clamp_min(1.0)
        neg = (1 - labels).sum().clamp_min(1.0)
        return (bce * labels).sum() / pos + (bce * (1 - labels)).sum() / neg

    def velocity_reconstruction_loss(
        self,
        hyper: HyperNetworkClassifier,
        velocity_decoder: VelocityDecoder,
        codebook: torch.Tensor,
        states: torch.Tensor,
        ids: torch.LongTensor,
        velocity_target: torch.Tensor,
        velocity_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Velocity reconstruction (the paper's actionable informativeness): a state `(N, D)` and the gradient of its
        own concept's score predict the velocity `(N, V)` that follows (masked MSE over `velocity_mask`)."""
        with torch.enable_grad():
            state = (
                states
                if states.requires_grad
                else states.detach().requires_grad_(True)
            )
            own_score = torch.sigmoid(
                hyper.logits(codebook, state, ids[:, None])
            ).sum()
            (score_grad,) = torch.autograd.grad(own_score, state, create_graph=True)
            prediction = velocity_decoder(state, score_grad)
            err = (
                (prediction - velocity_target.to(prediction.dtype)).pow(2).mean(-1)
            )
            weight = velocity_mask.to(err.dtype)
            return (err * weight).sum() / weight.sum().clamp_min(1.0)

    def motion_reconstruction_loss(self, motion_out, motion_values, frame_mask, generator=None) -> torch.Tensor:
        """Masked reconstruction, motion: mask a share (`mask_ratio`) of the quantised tokens and rebuild every input
        frame `(batch, frames, feature_size)` from the rest; MSE over valid frames."""
        mc = self.config.motion_config
        token_mask = motion_out.attention_mask.bool()
        num_tokens = token_mask.shape[1]
        masked = random_token_mask(token_mask, mc.mask_ratio, generator)
        recon = self.motion_decoder(motion_out.quantized, token_mask, masked)
        recon = recon.reshape(motion_values.shape[0], num_tokens * mc.motion_token_stride, mc.feature_size)
        recon = recon[:, : motion_values.shape[1]]
        weight = frame_mask.unsqueeze(-1).to(recon.dtype)
        return ((recon - motion_values.to(recon.dtype)).pow(2) * weight).sum() / (weight.sum() * mc.feature_size)

    def video_reconstruction_loss(self, video_out, generator=None) -> torch.Tensor:
        """Masked reconstruction, video: mask a share of the quantised key-frame tokens and rebuild the vision tower's
        frame features from the rest; MSE."""
        token_mask = video_out.attention_mask.bool()
        masked = random_token_mask(token_mask, self.config.video_config.mask_ratio, generator)
        recon = self.video_decoder(video_out.quantized, token_mask, masked)
        return F.mse_loss(recon, video_out.frame_features.detach().to(recon.dtype))

    def _motion_velocity_target(self, motion_values, frame_mask, num_tokens):
        """Mean features per token; target of token j is mean(j + 1) - mean(j), valid when token j + 1 is."""
        stride = self.config.motion_config.motion_token_stride
        batch, frames, width = motion_values.shape
        pad = num_tokens * stride - frames
        x = F.pad(
            motion_values * frame_mask.unsqueeze(-1).to(motion_values.dtype),
            (0, 0, 0, pad),
        )
        m = F.pad(frame_mask.to(motion_values.dtype), (0, pad))
        sums = x.view(batch, num_tokens, stride, width).sum(2)
        counts = m.view(batch, num_tokens, stride).sum(2).clamp_min(1.0)
        means = sums / counts.unsqueeze(-1)
        target = torch.zeros_like(means)
        target[:, :-1] = means[:, 1:] - means[:, :-1]
        token_valid = m.view(batch, num_tokens, stride).sum(2) > 0
        valid = torch.zeros_like(token_valid)
        valid[:, :-1] = token_valid[:, 1:]
        return target, valid

    def _video_velocity_target(self, video_flow, batch, frames):
        vc = self.config.video_config
        if video_flow.ndim != 5 or tuple(video_flow.shape[:3]) != (
            batch,
            frames - 1,
            2,
        ):
            raise ValueError(
                f"video_flow must have shape ({batch}, {frames - 1}, 2, grid, grid) (flow between consecutive key "
                f"frames), got {tuple(video_flow.shape)}"
            )
        _check_finite("video_flow", video_flow)
        per_frame = vc.video_tokens_per_frame
        pooled = F.adaptive_avg_pool2d(
            video_flow.flatten(0, 1).float(), vc.flow_grid_size
        )
        pooled = pooled.reshape(batch, frames - 1, -1) * vc.flow_scale
        target = F.pad(pooled, (0, 0, 0, 1)).repeat_interleave(per_frame, dim=1)
        valid = torch.ones(batch, frames, dtype=torch.bool, device=video_flow.device)
        valid[:, -1] = False
        return target, valid.repeat_interleave(per_frame, dim=1)

    def alignment_loss(
        self, motion_out, video_out, video_timestamps, pairs, n_video_frames
    ):
        mc = self.config.motion_config
        per_frame = self.config.video_config.video_tokens_per_frame
        m_idx, v_idx = pairs[:, 0], pairs[:, 1]
        motion = F.normalize(
            self.motion_alignment_projector(motion_out.quantized[m_idx]), dim=-1
        )  # (P, Tm, A)
        video = self.video_alignment_projector(
            video_out.quantized[v_idx]
        )  # (P, K * per, A)
        video = F.normalize(
            video.view(video.shape[0], n_video_frames, per_frame, -1).mean(2), dim=-1
        )  # (P, K, A)
        token_mask = motion_out.attention_mask[m_idx].bool()
        n_tokens = token_mask.sum(-1)
        if video_timestamps is None:
            raise ValueError(
                "video_timestamps are needed to align paired videos with their motions"
            )
        times = video_timestamps[v_idx].to(motion.device).float()
        if (times < 0).any():
            raise ValueError("video_timestamps must be >= 0 seconds")
        target = torch.floor(
            times * self.config.motion_fps / mc.motion_token_stride + 1e-4
        ).long()
        late = target >= n_tokens[:, None]
        if late.any():
            p = int(late.any(-1).nonzero()[0])
            raise ValueError(
                f"paired video {int(v_idx[p])} has a key frame at {float(times[p].max()):.3f}s but its motion "
                f"{int(m_idx[p])} lasts only {int(n_tokens[p]) * mc.motion_token_stride / self.config.motion_fps:.3f}s "
                "(mismatched pair lengths)"
            )
        logits = (
            torch.einsum("pka,pta->pkt", video, motion)
            / self.config.alignment_temperature
        )
        logits = logits.masked_fill(
            ~token_mask[:, None, :], torch.finfo(logits.dtype).min
        )
        return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten())

    # ---- forward -------------------------------------------------------------------------------------------------

    def forward(
        self,
        motion_values: torch.FloatTensor | None = None,
        motion_attention_mask: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        video_timestamps: torch.FloatTensor | None = None,
        video_flow: torch.FloatTensor | None = None,
        paired: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> ConceptDiscoveryOutput | tuple:
        r"""
        Args:
            motion_values (`torch.FloatTensor` of shape `(batch_motion, frames, feature_size)`, *optional*).
            motion_attention_mask (`torch.LongTensor` of shape `(batch_motion, frames)`, *optional*).
            pixel_values_videos (`torch.FloatTensor` of shape `(batch_video, key_frames, 3, size, size)`, *optional*).
            video_timestamps (`torch.FloatTensor` of shape `(batch_video, key_frames)`, *optional*): seconds; needed
                for alignment.
            video_flow (`torch.FloatTensor` of shape `(batch_video, key_frames - 1, 2, g, g)`, *optional*): optical
                flow between consecutive key frames (target of the video velocity decoder; without it the video part
                of the actionable objective is skipped).
            paired (*optional*): which motion and video rows are frame-aligned pairs: a `(P, 2)` LongTensor of
                (motion row, video row), or a `(batch,)` bool mask when both batches have the same size. When both
                modalities are given with equal batch sizes and `paired` is `None`, every row is a pair.
            output_hidden_states / output_attentions (`bool`, *optional*): return the encoders' per-layer states /
                attention probabilities (defaults: the config's).

        Returns:
            [`ConceptDiscoveryOutput`].
        """
        return_dict = (
            return_dict if return_dict is not None else self.config.return_dict
        )
        if motion_values is None and pixel_values_videos is None:
            raise ValueError(
                "HuMoConForConceptDiscovery needs motion_values and/or pixel_values_videos; got neither"
            )
        if motion_values is None and motion_attention_mask is not None:
            raise ValueError("motion_attention_mask was given without motion_values")
        if pixel_values_videos is None and (
            video_flow is not None or video_timestamps is not None
        ):
            raise ValueError(
                "video_flow / video_timestamps were given without pixel_values_videos"
            )
        cfg = self.config
        n_motion = None if motion_values is None else motion_values.shape[0]
        n_video = None if pixel_values_videos is None else pixel_values_videos.shape[0]
        device = (
            motion_values if motion_values is not None else pixel_values_videos
        ).device
        pairs = (
            self._pairs(paired, n_motion, n_video, device)
            if cfg.use_alignment
            else None
        )
        # Training draws masks and negatives from torch's RNG; evaluation from a fixed seed, so that two identical
        # eval calls (and eval losses across runs) agree.
        generator = None if self.training else torch.Generator(device=device).manual_seed(0)

        losses: dict[str, torch.Tensor | None] = dict.fromkeys(LOSS_COMPONENTS)
        dis_terms, velocity_terms, commit_terms = [], [], []
        motion_out = video_out = None

        if motion_values is not None:
            motion_out = self.motion_encoder(
                motion_values,
                motion_attention_mask,
                return_dict=True,
                output_hidden_states=output_hidden_states,
                output_attentions=output_attentions,
            )
            frame_mask = self.motion_encoder.check_inputs(
                motion_values, motion_attention_mask
            )
            token_mask = motion_out.attention_mask.bool()
            num_tokens = token_mask.shape[1]
            commit_terms.append(motion_out.commitment_loss)
            if cfg.use_masked_reconstruction:
                losses["loss_rec_motion"] = self.motion_reconstruction_loss(
                    motion_out, motion_values, frame_mask, generator
                )
            states = motion_out.pre_quantized[token_mask]
            ids = motion_out.concept_ids[token_mask]
            codebook = self.motion_encoder.quantizer.embed.detach().clone()
            if cfg.use_discriminative:
                dis_terms.append(
                    self.discriminative_loss(self.motion_hyper_network, codebook, states, ids, generator)
                )
            if cfg.use_velocity_reconstruction:
                target, target_valid = self._motion_velocity_target(
                    motion_values, frame_mask, num_tokens
                )
                velocity_terms.append(
                    self.velocity_reconstruction_loss(
                        self.motion_hyper_network, self.motion_velocity_decoder, codebook, states, ids,
                        target[token_mask], target_valid[token_mask],
                    )
                )

        if pixel_values_videos is not None:
            video_out = self.video_encoder(
                pixel_values_videos,
                video_timestamps,
                return_dict=True,
                output_hidden_states=output_hidden_states,
                output_attentions=output_attentions,
            )
            n_frames = pixel_values_videos.shape[1]
            token_mask = video_out.attention_mask.bool()
            commit_terms.append(video_out.commitment_loss)
            if cfg.use_masked_reconstruction:
                losses["loss_rec_video"] = self.video_reconstruction_loss(video_out, generator)
            states = video_out.pre_quantized.flatten(0, 1)
            ids = video_out.concept_ids.flatten()
            codebook = self.video_encoder.quantizer.embed.detach().clone()
            if cfg.use_discriminative:
                dis_terms.append(
                    self.discriminative_loss(self.video_hyper_network, codebook, states, ids, generator)
                )
            if cfg.use_velocity_reconstruction and video_flow is not None and n_frames > 1:
                target, valid = self._video_velocity_target(video_flow.to(device), n_video, n_frames)
                velocity_terms.append(
                    self.velocity_reconstruction_loss(
                        self.video_hyper_network, self.video_velocity_decoder, codebook, states, ids,
                        target.flatten(0, 1), valid.flatten(),
                    )
                )

        if pairs is not None and pairs.shape[0] > 0:
            losses["loss_align"] = self.alignment_loss(
                motion_out, video_out, video_timestamps, pairs, n_frames
            )

        def total(terms):
            terms = [t for t in terms if t is not None]
            return torch.stack(terms).sum() if terms else None

        losses["loss_dis"] = total(dis_terms)
        losses["loss_velocity"] = total(velocity_terms)
        losses["loss_commit"] = total(commit_terms)
        loss = losses["loss_commit"]
        for name, weight in (
            ("loss_rec_motion", 1.0),
            ("loss_rec_video", 1.0),
            ("loss_dis", cfg.lambda_dis),
            ("loss_velocity", cfg.lambda_velocity),
            ("loss_align", cfg.lambda_align),
        ):
            if losses[name] is not None:
                loss = loss + weight * losses[name]

        if self.training and self._update_in_forward:
            self.apply_codebook_updates(sync=False)

        primary = motion_out if motion_out is not None else video_out  # the encoder of the main input
        output = ConceptDiscoveryOutput(
            loss=loss,
            **losses,
            motion_concept_ids=None if motion_out is None else motion_out.concept_ids,
            video_concept_ids=None if video_out is None else video_out.concept_ids,
            motion_token_mask=None if motion_out is None else motion_out.attention_mask,
            hidden_states=primary.hidden_states,
            attentions=primary.attentions,
            video_hidden_states=None if video_out is None else video_out.hidden_states,
            video_attentions=None if video_out is None else video_out.attentions,
        )
        return output if return_dict else output.to_tuple()

    @torch.no_grad()
    def get_concepts(
        self,
        motion_values: torch.Tensor | None = None,
        motion_attention_mask: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        video_timestamps: torch.Tensor | None = None,
    ) -> dict[str, list[dict]]:
        """Per-frame concept ids and segments (see the encoders' `get_concepts`), under keys `motion` / `video`."""
        if motion_values is None and pixel_values_videos is None:
            raise ValueError(
                "get_concepts needs motion_values and/or pixel_values_videos"
            )
        result = {}
        if motion_values is not None:
            result["motion"] = self.motion_encoder.get_concepts(
                motion_values, motion_attention_mask
            )
        if pixel_values_videos is not None:
            result["video"] = self.video_encoder.get_concepts(
                pixel_values_videos, video_timestamps
            )
        return result


__all__ = [
    "ConceptDiscoveryOutput",
    "HuMoConForConceptDiscovery",
    "HyperNetworkClassifier",
    "LOSS_COMPONENTS",
    "ReconstructionDecoder",
    "VelocityDecoder",
]
