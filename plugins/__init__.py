"""neurosim.plugins: blocks that wrap conventional ``torch.nn.Module`` models (CNN, transformer,
GNN, NTM, MAML, diffusion) as rate-coded or hybrid nodes of a simulation graph.

Filled by later issues; the package exists so that ``neurosim.plugins`` is importable."""
