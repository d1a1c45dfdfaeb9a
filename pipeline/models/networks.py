"""Snippet encoders, the differentiable CCA layer and the triplet loss (method.md §4–5).

Shapes (batch first): sheet snippets (B, 1, 80, 90) = half-resolution 160 x 180 px;
audio snippets (B, 1, 92, 20) = 92 bins x 20 frames (1 s). Both are transposed before the CNN,
as in lcasr, so the flatten sizes are 800 (sheet) and 160 (audio). Snippet-model variants
(``snippet_variants`` in params.yaml) read longer audio excerpts (B, 1, 92, T), T = 42, 84, 168
frames (flatten size 32 x T // 16 x 5), optionally through :class:`FrameAttention`, and may read
wider sheet snippets (B, 1, 80, W / 2).

Precision: under ``training.amp`` (bfloat16 autocast) only the CNNs and GRUs run in bfloat16; the
CCA layer and projections, the loss and every retrieval distance are computed in float32.
The CNNs keep their weights channels-last: the same float32 math, 1.7x faster on a CPU
(measured on 2 cores), and the layout GPUs prefer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.core import constants as C

CHANNELS = (24, 48, 96, 96)


class TemporalBatchNorm(nn.Module):
    """Per-frequency-bin normalisation of spectrogram snippets (B, 1, n_bins, T), no affine part."""

    def __init__(self, n_bins: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(n_bins, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x.squeeze(1)).unsqueeze(1)


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.GroupNorm(1, channels)


class CNNEncoder(nn.Module):
    """Four blocks of 2 x (Conv3x3 -> norm -> ELU) + MaxPool2, Conv1x1-32 + norm, flatten, Linear -> ``dim``.

    ``norm``: "batch" (sheet path) or "group" (audio path: GroupNorm(1, C), layer-norm-like).
    ``in_hw``: input (H, W) after the transpose, e.g. (90, 80) sheet or (20, 92) audio.
    """

    def __init__(self, in_hw: tuple[int, int], norm: str, dim: int = 32, channels=CHANNELS):
        super().__init__()
        layers, c_in = [], 1
        for c in channels:
            for _ in range(2):
                layers += [nn.Conv2d(c_in, c, 3, padding=1), _norm(norm, c), nn.ELU()]
                c_in = c
            layers.append(nn.MaxPool2d(2))
        layers += [nn.Conv2d(c_in, 32, 1), _norm(norm, 32)]
        self.features = nn.Sequential(*layers)
        h, w = in_hw
        for _ in channels:
            h, w = h // 2, w // 2
        self.flat_size = 32 * h * w
        self.fc = nn.Linear(self.flat_size, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(2, 3)                   # (B, 1, H, W) -> (B, 1, W, H), as lcasr
        return self.fc(self.features(x).flatten(1))


def sheet_encoder(dim: int = 32, width_px: int = C.SHEET_CONTEXT_PX) -> CNNEncoder:
    """Sheet CNN for snippets (B, 1, 80, ``width_px`` / 2): ``width_px`` full-resolution columns [px], halved."""
    return CNNEncoder((width_px // 2, C.STAFF_HEIGHT_PX // 2), "batch", dim)


class AudioEncoder(nn.Module):
    """Audio snippets (B, 1, n_bins, ``context_frames``) -> (B, dim); the default context is 1 s (20 frames)."""

    def __init__(self, dim: int = 32, n_bins: int = C.N_BINS, context_frames: int = C.SPEC_CONTEXT_FRAMES):
        super().__init__()
        self.tbn = TemporalBatchNorm(n_bins)
        self.cnn = CNNEncoder((context_frames, n_bins), "group", dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn(self.tbn(x))


class FrameAttention(nn.Module):
    """Soft attention over the frames of a spectrogram excerpt (Dorfer et al. 2018; Carvalho & Widmer 2021).

    The same VGG-style blocks as the encoders read the excerpt (B, 1, n_bins, T); a 1x1 convolution to
    T channels, global average pooling and a softmax over them give one weight per frame, (B, T),
    summing to one. :meth:`apply` multiplies the excerpt's frames by weight x T, so uniform attention
    leaves it unchanged. The last convolution starts at zero: training starts from uniform attention.
    """

    def __init__(self, context_frames: int, n_bins: int = C.N_BINS, channels=CHANNELS):
        super().__init__()
        layers, c_in = [], 1
        for c in channels:
            for _ in range(2):
                layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.GroupNorm(1, c), nn.ELU()]
                c_in = c
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.to_frames = nn.Conv2d(c_in, context_frames, 1)
        nn.init.zeros_(self.to_frames.weight), nn.init.zeros_(self.to_frames.bias)
        self.context_frames = context_frames

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) attention weights of excerpts ``x`` (B, 1, n_bins, T); float32, rows sum to one."""
        logits = self.to_frames(self.features(x.transpose(2, 3))).mean(dim=(2, 3))
        return torch.softmax(logits.float(), dim=1)

    def apply(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(excerpt reweighted frame by frame, the weights)."""
        w = self.weights(x)
        return x * (w * self.context_frames)[:, None, None, :].to(x.dtype), w


class AttentionAudioEncoder(nn.Module):
    """:class:`FrameAttention` followed by the plain :class:`AudioEncoder` on the reweighted excerpt."""

    def __init__(self, dim: int = 32, n_bins: int = C.N_BINS, context_frames: int = C.SPEC_CONTEXT_FRAMES):
        super().__init__()
        self.tbn = TemporalBatchNorm(n_bins)
        self.attention = FrameAttention(context_frames, n_bins)
        self.cnn = CNNEncoder((context_frames, n_bins), "group", dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[0]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, dim) embeddings of excerpts ``x`` (B, 1, n_bins, T) and their (B, T) attention weights (float32)."""
        x, w = self.attention.apply(self.tbn(x))
        return self.cnn(x), w


def attention_entropy(w: torch.Tensor) -> torch.Tensor:
    """(B,) entropy [nats] of attention weights ``w`` (B, T) whose rows sum to one: log T when uniform, 0 on one frame."""
    w = w.float()
    return -(w * torch.log(w.clamp_min(1e-12))).sum(dim=1)


def _inv_sqrt(s: torch.Tensor) -> torch.Tensor:
    d, a = torch.linalg.eigh(s)
    return a @ torch.diag(d.clamp_min(1e-12).rsqrt()) @ a.T


def cca_projections(h1: torch.Tensor, h2: torch.Tensor, r1=1e-3, r2=1e-3, r_t=1e-3):
    """CCA of two views (m, d): returns (U, V, mean1, mean2); differentiable (eigh), as the CCA layer.

    U, V (d, d) project centred views onto canonical directions sorted by decreasing correlation.
    """
    m = h1.shape[0]
    mean1, mean2 = h1.mean(0), h2.mean(0)
    h1b, h2b = (h1 - mean1).T, (h2 - mean2).T
    eye = torch.eye(h1.shape[1], dtype=h1.dtype, device=h1.device)
    s11 = h1b @ h1b.T / (m - 1) + r1 * eye
    s22 = h2b @ h2b.T / (m - 1) + r2 * eye
    s12 = h1b @ h2b.T / (m - 1)
    s11si, s22si = _inv_sqrt(s11), _inv_sqrt(s22)
    t = s11si @ s12 @ s22si
    _, e = torch.linalg.eigh(t @ t.T + r_t * eye)
    _, f = torch.linalg.eigh(t.T @ t + r_t * eye)
    e, f = e.flip(1), f.flip(1)                 # eigh sorts ascending: largest correlation first
    u, v = s11si @ e, s22si @ f
    signs = torch.sign(torch.diagonal(u.T @ s12 @ v))
    return u * signs, v, mean1, mean2


class CCALayer(nn.Module):
    """Projects two views onto their canonical directions (training: fitted on the batch; eval: stored).

    Fixes lcasr's ``if False:`` (the layer never fitted) by fitting in training mode as ucasr does.
    """

    def __init__(self, dim: int):
        super().__init__()
        for name, shape in (("U", (dim, dim)), ("V", (dim, dim)), ("mean1", (dim,)), ("mean2", (dim,))):
            self.register_buffer(name, torch.zeros(shape))

    def forward(self, h1: torch.Tensor, h2: torch.Tensor):
        if self.training:
            u, v, m1, m2 = cca_projections(h1, h2)
            with torch.no_grad():
                self.U.copy_(u), self.V.copy_(v), self.mean1.copy_(m1), self.mean2.copy_(m2)
        else:
            u, v, m1, m2 = self.U, self.V, self.mean1, self.mean2
        return (h1 - m1) @ u, (h2 - m2) @ v

    @torch.no_grad()
    def refit(self, h1: torch.Tensor, h2: torch.Tensor, ridge: float = 0.0) -> None:
        """CCA refinement: fit U, V and means once on many pre-CCA embedding pairs.

        ``ridge``: extra regularisation of each view's covariance, as a fraction of its mean variance
        (0 = the anchors' 1e-3 only). Without it CCA whitens every dimension alike, which amplifies
        the weak dimensions of embeddings trained without the CCA layer."""
        h1, h2 = h1.double(), h2.double()
        r1, r2 = (1e-3 + ridge * float(h.var(0).mean()) for h in (h1, h2))
        u, v, m1, m2 = cca_projections(h1, h2, r1, r2)
        self.U.copy_(u.float()), self.V.copy_(v.float()), self.mean1.copy_(m1.float()), self.mean2.copy_(m2.float())


def triplet_loss(sheet: torch.Tensor, audio: torch.Tensor, margin: float, symmetric: bool = False,
                 groups: torch.Tensor | None = None, sync_free: bool | None = None) -> torch.Tensor:
    """Hinge loss on cosine similarity with all in-batch negatives (lcasr: sheet anchors only), in float32.

    ``sheet``, ``audio``: (B, d) L2-normalised embeddings of matching pairs (row i with row i).
    ``groups`` (B,) int: rows with equal ids show the same item (another rendering of the same
    system or notehead); they are true matches, so they are not used as each other's negatives
    (``mask_other_renderings``; the anchors use every other row).
    ``sync_free`` (default: off on the CPU, on elsewhere): the mean over the negatives as a masked sum
    instead of boolean indexing, which would read the mask's count back to the host inside every
    training step on a GPU; the same value up to float rounding (the CPU keeps the recorded numbers).
    """
    with torch.autocast(sheet.device.type, enabled=False):
        sheet, audio = sheet.float(), audio.float()
        sim = sheet @ audio.T
        pos = sim.diag().unsqueeze(1)
        if groups is None:
            neg = ~torch.eye(len(sim), dtype=torch.bool, device=sim.device)
        else:
            groups = groups.to(sim.device)
            neg = groups[:, None] != groups[None, :]
        if sync_free if sync_free is not None else sim.device.type != "cpu":
            w = neg.float()
            count = w.sum().clamp_min(1.0)       # no negative at all: loss 0, the graph kept
            loss = (F.relu(margin - (pos - sim)) * w).sum() / count
            if symmetric:
                loss = 0.5 * (loss + (F.relu(margin - (pos.T - sim)) * w).sum() / count)
            return loss
        if not neg.any():
            return (sim * 0.0).sum()          # a batch of one item: nothing to contrast (keeps the graph)
        loss = F.relu(margin - (pos - sim))[neg].mean()
        if symmetric:
            loss = 0.5 * (loss + F.relu(margin - (pos.T - sim))[neg].mean())
        return loss


# --- whole models ---------------------------------------------------------------------------------

def init_weights(module: nn.Module, scheme: str) -> None:
    """Anchor initialisations of conv / linear layers: ``kaiming`` (lcasr's snippet baseline,
    Kaiming-uniform with linear gain) or ``orthogonal`` (lcasr's passage model, zero biases).
    Recurrent layers keep PyTorch's default initialisation, as in lcasr."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "kaiming":
                nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")
            else:
                nn.init.orthogonal_(m.weight)
                nn.init.zeros_(m.bias)


class SnippetModel(nn.Module):
    """Snippet baseline (Dorfer et al. / lcasr ``CMSnippetEncoder``): two CNNs -> CCA -> L2 norm.

    ``forward(sheet (B,1,80,90), audio (B,1,92,20))`` -> two (B, dim) unit-norm embeddings;
    ``pre_cca=True`` returns the CNN outputs (B, dim) before the CCA layer (CCA refinement input);
    ``return_attention=True`` appends the (B, T) attention weights (None without attention).
    Variants (Dorfer et al. 2018, Balke et al. 2019): ``context_frames`` T of the audio excerpt
    (B, 1, 92, T) [frames at 20 fps], ``attention`` (:class:`AttentionAudioEncoder`, its last
    convolution zero after the Kaiming init, so training starts from uniform attention) and
    ``sheet_px``, the sheet snippet's full-resolution width (input (B, 1, 80, sheet_px / 2)).
    """

    def __init__(self, dim: int = 32, use_cca: bool = True, context_frames: int = C.SPEC_CONTEXT_FRAMES,
                 attention: bool = False, sheet_px: int = C.SHEET_CONTEXT_PX):
        super().__init__()
        self.context_frames, self.attention, self.sheet_px = context_frames, attention, sheet_px
        audio = AttentionAudioEncoder if attention else AudioEncoder
        self.sheet_net, self.audio_net = sheet_encoder(dim, sheet_px), audio(dim, context_frames=context_frames)
        self.cca = CCALayer(dim) if use_cca else None
        init_weights(self, "kaiming")
        if attention:
            nn.init.zeros_(self.audio_net.attention.to_frames.weight), nn.init.zeros_(self.audio_net.attention.to_frames.bias)
        self.to(memory_format=torch.channels_last)      # after the init (orthogonal_ needs contiguous weights)

    def geometry(self) -> dict:
        """What the model's inputs are (the artifact's meta keys): audio context [frames], attention, sheet width [px]."""
        return {"audio_context_frames": self.context_frames, "attention": self.attention, "sheet_context_px": self.sheet_px}

    @classmethod
    def from_artifact(cls, art: dict) -> "SnippetModel":
        """Rebuild a trained snippet model from its artifact (``training.load_model``), in eval mode.
        Artifacts without geometry keys are the default 20-frame, 180-px model without attention."""
        m = art["meta"]
        model = cls(m["emb_dim"], use_cca=m["cca"], context_frames=m.get("audio_context_frames", C.SPEC_CONTEXT_FRAMES),
                    attention=m.get("attention", False), sheet_px=m.get("sheet_context_px", C.SHEET_CONTEXT_PX))
        model.load_state_dict(art["state_dict"])
        return model.eval()

    @torch.no_grad()
    def attention_weights(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) attention weights of excerpts (B, 1, 92, T), float32 rows summing to one (uniform without attention)."""
        if not self.attention:
            return torch.full((audio.shape[0], audio.shape[3]), 1.0 / audio.shape[3], device=audio.device)
        return self.audio_net.attention.weights(self.audio_net.tbn(audio))

    @torch.no_grad()
    def embed_sheet(self, sheet: torch.Tensor) -> torch.Tensor:
        """(B, dim) unit-norm sheet embeddings in eval mode (stored CCA projection)."""
        x = self.sheet_net(sheet).float()
        if self.cca is not None:
            x = (x - self.cca.mean1) @ self.cca.U
        return F.normalize(x, dim=1)

    @torch.no_grad()
    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        y = self.audio_net(audio).float()
        if self.cca is not None:
            y = (y - self.cca.mean2) @ self.cca.V
        return F.normalize(y, dim=1)

    def forward(self, sheet, audio, pre_cca: bool = False, return_attention: bool = False):
        x = self.sheet_net(sheet)
        y, w = self.audio_net.encode(audio) if self.attention else (self.audio_net(audio), None)
        extra = (w,) if return_attention else ()
        if pre_cca:
            return (x, y, *extra)
        if self.cca is not None:
            with torch.autocast(x.device.type, enabled=False):
                x, y = self.cca(x.float(), y.float())
        return (F.normalize(x, dim=1), F.normalize(y, dim=1), *extra)


class SequenceEncoder(nn.Module):
    """One modality of the passage model (lcasr ``SequenceEncoder``): snippet CNN -> [frozen CCA
    projection] -> GRU over the snippet sequence -> last hidden state -> Linear -> L2 norm."""

    def __init__(self, cnn: nn.Module, snippet_dim: int, hidden: int, emb_dim: int):
        super().__init__()
        self.cnn = cnn
        self.register_buffer("cca_u", torch.zeros(0))       # (d, d) when loaded from a CCA baseline
        self.register_buffer("cca_mean", torch.zeros(0))
        self.rnn = nn.GRU(snippet_dim, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, emb_dim)

    def set_cca(self, u: torch.Tensor, mean: torch.Tensor) -> None:
        self.cca_u, self.cca_mean = u.detach().clone(), mean.detach().clone()

    def snippet_features(self, snippets: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) snippets -> (N, snippet_dim) GRU inputs: CNN, then the frozen CCA projection (float32)."""
        return self.project(self.cnn(snippets))

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """The frozen CCA projection of CNN outputs (N, snippet_dim), in float32; identity without one."""
        if not self.cca_u.numel():
            return z
        with torch.autocast(z.device.type, enabled=False):
            return (z.float() - self.cca_mean) @ self.cca_u

    def forward(self, snippets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``snippets`` (sum(lengths), 1, H, W) of B passages in order -> (B, emb_dim) unit-norm."""
        return self.summarize(self.snippet_features(snippets), lengths)

    def summarize(self, z: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(sum(lengths), snippet_dim) snippet features of B passages in order -> (B, emb_dim) unit-norm."""
        seqs = torch.split(z, lengths.tolist())
        packed = nn.utils.rnn.pack_sequence(seqs, enforce_sorted=False)
        _, h = self.rnn(packed)                             # h: (1, B, hidden), restored to input order
        return F.normalize(self.fc(h[0]), dim=1)


class PassageModel(nn.Module):
    """ISMIR 2023 recurrent passage model (lcasr ``CrossModalEncoder``): one SequenceEncoder per modality.

    ``freeze_cnn``: FZ variants — the CNNs get no gradient and, unless ``frozen_bn_updates`` (the
    anchor's leak, method.md §4.4), stay in eval mode so their BatchNorm statistics do not move.

    Snippet geometry (issue 14, ``attention.passage_variants``: a passage model whose CNNs are a snippet
    variant's): ``audio_context_frames`` T of each audio window (B, 1, 92, T), ``attention`` (the audio
    CNN is an :class:`AttentionAudioEncoder`: frame attention, then the plain audio CNN) and ``sheet_px``,
    the sheet window's full-resolution width. The defaults (20 frames, no attention, 180 px) build
    exactly the lcasr model (the same modules, in the same order, with the same initialisation).
    """

    def __init__(self, snippet_dim: int = 32, hidden: int = 128, emb_dim: int = 64,
                 freeze_cnn: bool = False, frozen_bn_updates: bool = False,
                 audio_context_frames: int = C.SPEC_CONTEXT_FRAMES, attention: bool = False,
                 sheet_px: int = C.SHEET_CONTEXT_PX):
        super().__init__()
        self.context_frames, self.attention, self.sheet_px = audio_context_frames, attention, sheet_px
        audio = AttentionAudioEncoder if attention else AudioEncoder
        self.sheet = SequenceEncoder(sheet_encoder(snippet_dim, sheet_px), snippet_dim, hidden, emb_dim)
        self.audio = SequenceEncoder(audio(snippet_dim, context_frames=audio_context_frames), snippet_dim, hidden, emb_dim)
        for m in (self.sheet.cnn, self.audio.cnn, self.sheet.fc, self.audio.fc):
            init_weights(m, "orthogonal")
        if attention:           # uniform attention at the first step (as SnippetModel); a loaded snippet model replaces it
            nn.init.zeros_(self.audio.cnn.attention.to_frames.weight), nn.init.zeros_(self.audio.cnn.attention.to_frames.bias)
        self.to(memory_format=torch.channels_last)
        self.freeze_cnn, self.frozen_bn_updates = freeze_cnn, frozen_bn_updates
        if freeze_cnn:
            for p in list(self.sheet.cnn.parameters()) + list(self.audio.cnn.parameters()):
                p.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_cnn and not self.frozen_bn_updates:
            self.sheet.cnn.eval(), self.audio.cnn.eval()
        return self

    def geometry(self) -> dict:
        """The snippet windows the model reads (:meth:`SnippetModel.geometry`'s keys)."""
        return {"audio_context_frames": self.context_frames, "attention": self.attention, "sheet_context_px": self.sheet_px}

    def load_snippet_model(self, state: dict) -> None:
        """Initialise both CNNs (and, if the baseline has one, the frozen CCA projection) from a
        :class:`SnippetModel` state dict (lcasr ``load_pretrained_model``)."""
        for enc, prefix, u, mean in ((self.sheet, "sheet_net.", "cca.U", "cca.mean1"),
                                     (self.audio, "audio_net.", "cca.V", "cca.mean2")):
            enc.cnn.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
            if u in state:
                enc.set_cca(state[u], state[mean])

    def forward(self, sheet, audio, n_sheet, n_audio):
        return self.sheet(sheet, n_sheet), self.audio(audio, n_audio)

    @property
    def features_are_fixed(self) -> bool:
        """True when the CNNs (+ CCA projection) are a fixed function of a snippet: frozen, in eval
        mode. Their outputs can then be computed once per snippet and reused (:mod:`pipeline.models.train_passage`)."""
        return self.freeze_cnn and not self.frozen_bn_updates

    def pretrained_cnn_parameters(self) -> list:
        return list(self.sheet.cnn.parameters()) + list(self.audio.cnn.parameters())
