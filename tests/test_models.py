import numpy as np
import torch
from scipy.linalg import sqrtm

from pipeline.models import AudioEncoder, CCALayer, cca_projections, sheet_encoder, triplet_loss


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
