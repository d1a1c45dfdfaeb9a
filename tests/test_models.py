import numpy as np
import torch
from scipy.linalg import sqrtm

from pipeline.models.networks import AudioEncoder, CCALayer, cca_projections, sheet_encoder, triplet_loss


def test_encoder_shapes_and_flatten_sizes():
    torch.manual_seed(0)
    s, a = sheet_encoder(), AudioEncoder()
    assert s.flat_size == 800 and a.cnn.flat_size == 160
    assert s(torch.rand(4, 1, 80, 90)).shape == (4, 32)
    assert a(torch.rand(4, 1, 92, 20)).shape == (4, 32)


def _correlated(n=4000, d=6, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d))
    x = z @ rng.standard_normal((d, d)) + 0.3 * rng.standard_normal((n, d))
    y = z[:, ::-1] @ rng.standard_normal((d, d)) + 1.0 * rng.standard_normal((n, d))
    return x, y


def test_cca_matches_an_independent_numpy_cca():
    x, y = _correlated()
    n = len(x)
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = xc.T @ xc / (n - 1), yc.T @ yc / (n - 1), xc.T @ yc / (n - 1)
    k = np.linalg.inv(np.real(sqrtm(sxx))) @ sxy @ np.linalg.inv(np.real(sqrtm(syy)))
    rho_ref = np.linalg.svd(k, compute_uv=False)                    # canonical correlations
    u, v, m1, m2 = cca_projections(torch.tensor(x), torch.tensor(y), 0.0, 0.0, 0.0)
    px, py = (torch.tensor(x) - m1) @ u, (torch.tensor(y) - m2) @ v
    rho = [np.corrcoef(px[:, i], py[:, i])[0, 1] for i in range(x.shape[1])]
    np.testing.assert_allclose(rho, rho_ref, atol=1e-6)
    cov = np.cov(px.numpy().T)
    np.testing.assert_allclose(cov, np.eye(6), atol=1e-6)          # whitened projections


def test_cca_layer_gradients_and_eval_mode():
    x, y = (torch.tensor(a, dtype=torch.float32) for a in _correlated(256, 8))
    x.requires_grad_(True)
    layer = CCALayer(8).train()
    a, b = layer(x, y)
    loss = triplet_loss(torch.nn.functional.normalize(a, dim=1), torch.nn.functional.normalize(b, dim=1), 0.6)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    layer.eval()
    a2, _ = layer(x.detach(), y)
    torch.testing.assert_close(a2, a.detach(), rtol=1e-4, atol=1e-4)   # stored U, means reused


def test_triplet_loss_zero_when_separated_and_positive_otherwise():
    e = torch.eye(4)
    assert triplet_loss(e, e, margin=0.5).item() == 0.0
    assert triplet_loss(e, e.roll(1, 0), margin=0.5).item() > 0.0


def test_masked_negatives_ignore_other_renderings_of_the_same_item():
    e = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]]), dim=1)
    # rows 0 and 1 are two renderings of one system: as negatives of each other they dominate the loss
    plain = triplet_loss(e, e, margin=0.5)
    masked = triplet_loss(e, e, margin=0.5, groups=torch.tensor([7, 7, 3]))
    assert plain.item() > 0.1 and masked.item() == 0.0
    assert triplet_loss(e[:2], e[:2], 0.5, groups=torch.tensor([1, 1])).item() == 0.0   # nothing to contrast


def test_loss_cca_and_distances_stay_float32_under_bf16_autocast():
    from pipeline.core.metrics import cosine_distances
    from pipeline.models.networks import PassageModel, SnippetModel
    torch.manual_seed(0)
    snip = SnippetModel(8).train()
    sheet, audio = torch.rand(16, 1, 80, 90), torch.rand(16, 1, 92, 20)
    passage = PassageModel(8, 16, 4)
    passage.sheet.set_cca(torch.eye(8), torch.zeros(8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = snip.sheet_net(sheet)
        x, y = snip(sheet, audio)                               # CCA layer inside
        loss = triplet_loss(x, y, 0.6)
        feats = passage.sheet.snippet_features(sheet)            # frozen CCA projection
        dist = cosine_distances(x, y)
        low = x.bfloat16() @ y.bfloat16().T                     # what an unguarded matmul would give
    assert z.dtype == torch.bfloat16 and low.dtype == torch.bfloat16   # autocast is really on
    assert x.dtype == y.dtype == loss.dtype == feats.dtype == dist.dtype == torch.float32


def test_optimizer_groups_scale_the_pretrained_cnns_only():
    from pipeline.models.networks import PassageModel
    from pipeline.models.training import Schedule, optimizer_groups
    model = PassageModel(8, 16, 4)
    sched = Schedule(1, 1e-3, 1e-5, 0.0, 0.5, 1, 1e-6)
    groups = optimizer_groups(model, sched, slow=model.pretrained_cnn_parameters(), slow_lr_scale=0.1)
    slow_ids = {id(p) for p in model.pretrained_cnn_parameters()}
    assert groups[0]["lr"] == 1e-3                                  # the logged lr is a full-rate group
    for g in groups:
        assert all((id(p) in slow_ids) == (g["lr"] == 1e-4) for p in g["params"])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_frame_attention_starts_uniform_sums_to_one_and_learns_where_the_content_is():
    """Uniform attention leaves the excerpt unchanged; weights sum to one; gradients reach the branch; on a
    planted case (only frames 30-33 of 42 tell the classes apart) the trained attention puts its mass there."""
    from pipeline.models.networks import AttentionAudioEncoder, FrameAttention
    torch.manual_seed(0)
    att = FrameAttention(42, n_bins=16)
    x = torch.randn(4, 1, 16, 42)
    out, w = att.apply(x)
    assert torch.allclose(w.sum(1), torch.ones(4)) and torch.allclose(out, x)          # zero-initialised: uniform
    enc = AttentionAudioEncoder(dim=8, n_bins=16, context_frames=42)
    enc(x).sum().backward()
    assert enc.attention.to_frames.weight.grad.abs().sum() > 0
    # planted: class +-1 shows only in frames 30..33 (a loud band); elsewhere noise of the same level
    att = FrameAttention(42, n_bins=16, channels=(8, 8, 8, 8))
    head = torch.nn.Linear(16, 1)
    opt = torch.optim.Adam([*att.parameters(), *head.parameters()], lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(60):
        y = torch.randint(0, 2, (32,), generator=gen).float() * 2 - 1
        xb = torch.randn(32, 1, 16, 42, generator=gen)
        xb[:, 0, :, 30:34] += 2.0 * y[:, None, None]
        z, _ = att.apply(xb)
        pred = head(z.mean(dim=3)[:, 0]).squeeze(1)       # time-pooled: only attention can single out frames 30-33
        loss = torch.nn.functional.softplus(-y * pred).mean()
        opt.zero_grad(), loss.backward(), opt.step()
    w = att.weights(torch.randn(32, 1, 16, 42, generator=gen)).mean(0)
    assert w[30:34].sum() > 0.3, f"attention mass on the planted frames: {float(w[30:34].sum()):.3f}"   # uniform: 0.095
