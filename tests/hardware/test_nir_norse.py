"""NIR files written by Norse 1.1.0 (``norse.torch.to_nir``) import with ``convention="norse"``
and reproduce Norse's own spikes, spike for spike (LIFBoxCell, LIFCell, a conv layer) and its
LI readout (LIBoxCell) to float precision; from the graph in memory and from the file read
back with ``nir.read``."""
import nir
import pytest
import torch

norse = pytest.importorskip("norse.torch")

from neurosim.hardware.nir import from_nir  # noqa: E402

STEPS, BATCH = 80, 3


def run_norse(model, x):
    """Norse's own time loop over ``x [T, batch, ...]`` (SequentialState carries the states)."""
    state, outputs = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            y, state = model(x[t], state)
            outputs.append(y)
    return torch.stack(outputs)


def imported(model, sample, tmp_path, through_file=True):
    """Simulators from the exported graph and (``through_file``) from the same graph written and
    read back. ``sample`` is one sample without a batch axis (the Input node's shape)."""
    graph = norse.to_nir(model, sample)
    graphs = [graph]
    if through_file:
        path = tmp_path / "norse.nir"
        nir.write(str(path), graph, compression=None)   # Norse's 0-d parameters cannot be gzipped
        graphs.append(nir.read(str(path), type_check=False))   # its types are empty
    sims = []
    for g in graphs:
        with pytest.warns(UserWarning, match="norse"):
            sims.append(from_nir(g, convention="norse"))
    return sims


def spikes_in(shape, seed, p=0.3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(STEPS, BATCH, *shape, generator=g) < p).float()


def scaled_linear(n_in, n_out, gain):
    layer = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.mul_(gain)
    return layer


def test_lif_box_and_lif_cell(tmp_path):
    torch.manual_seed(0)
    model = norse.SequentialState(scaled_linear(10, 16, 6.0), norse.LIFBoxCell(),
                                  scaled_linear(16, 8, 12.0), norse.LIFCell())
    x = spikes_in((10,), 0)
    expected = run_norse(model, x)
    assert 20 <= int(expected.sum()) < expected.numel() // 2
    for sim in imported(model, x[0, 0], tmp_path):
        assert sim.dt == 1e-3
        assert torch.equal(sim.run(x).output, expected)


def test_li_readout_matches_norse_membrane(tmp_path):
    torch.manual_seed(1)
    model = norse.SequentialState(scaled_linear(10, 12, 6.0), norse.LIFBoxCell(), scaled_linear(12, 3, 2.0),
                                  norse.LIBoxCell())
    x = spikes_in((10,), 1)
    expected = run_norse(model, x)
    hidden = run_norse(norse.SequentialState(*list(model)[:2]), x)
    assert int(hidden.sum()) >= 20 and float(expected.abs().max()) > 0.1
    for sim in imported(model, x[0, 0], tmp_path):
        got = sim.run(x).output
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_conv_lif_box(tmp_path):
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(2, 4, 3, padding=1)
    with torch.no_grad():
        conv.weight.mul_(6.0)
    model = norse.SequentialState(conv, norse.LIFBoxCell())
    x = spikes_in((2, 6, 6), 2)
    expected = run_norse(model, x)
    assert 20 <= int(expected.sum()) < expected.numel() // 2
    # Norse writes Conv2d(input_shape=None), which nir.write cannot store: in memory only
    for sim in imported(model, x[0, 0], tmp_path, through_file=False):
        assert torch.equal(sim.run(x).output, expected)


def test_dt_override_changes_the_time_constants_read_from_the_file():
    model = norse.SequentialState(torch.nn.Linear(4, 3), norse.LIFBoxCell())
    graph = norse.to_nir(model, torch.zeros(4), dt=1e-4)
    with pytest.warns(UserWarning, match="reset"):
        sim = from_nir(graph, convention="norse", dt=1e-4)
    pop = next(n for n in sim.graph.nodes.values() if hasattr(n, "model"))
    assert pop.params.tau_mem == pytest.approx(1e-2)       # Norse writes dt * tau = 1e-4 * 1e-2
    assert pop.params.integration == "euler" and pop.params.reset == "value"
