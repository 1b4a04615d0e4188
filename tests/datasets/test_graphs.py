"""Cora and CiteSeer through PyG's Planetoid from ../shared (copied first: the root is only read),
the standard public split, and the error for a root without the files."""
from pathlib import Path

import pytest

from neurosim.datasets.graphs import MissingDatasetError, planetoid

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "planetoid"


@pytest.mark.parametrize("name,nodes,edges,features,classes", [("Cora", 2708, 10556, 1433, 7),
                                                               ("CiteSeer", 3327, 9104, 3703, 6)])
def test_the_real_citation_graphs_load_with_the_public_split(tmp_path, name, nodes, edges, features, classes):
    before = sorted(p.name for p in (SHARED / name).iterdir())
    data = planetoid(name, SHARED, work_dir=tmp_path)
    assert tuple(data.x.shape) == (nodes, features) and data.edge_index.shape[1] == edges
    assert int(data.y.max()) + 1 == classes
    assert (int(data.train_mask.sum()), int(data.val_mask.sum()), int(data.test_mask.sum())) == (20 * classes, 500, 1000)
    assert sorted(p.name for p in (SHARED / name).iterdir()) == before          # the root is only read
    assert (tmp_path / name / "processed").is_dir()
    again = planetoid(name, SHARED, work_dir=tmp_path)                         # from the processed copy
    assert bool((again.x == data.x).all())


def test_a_root_without_the_files_says_where_they_belong(tmp_path):
    (tmp_path / "Cora" / "raw").mkdir(parents=True)
    (tmp_path / "Cora" / "raw" / "ind.cora.x").write_bytes(b"")
    with pytest.raises(MissingDatasetError, match=r"7 raw file\(s\) missing in .*Cora/raw.*ind\.cora\.tx") as error:
        planetoid("Cora", tmp_path, work_dir=tmp_path / "work")
    assert "never downloads" in str(error.value) and not (tmp_path / "work").exists()
    with pytest.raises(ValueError, match="name must be one of"):
        planetoid("PubMed", tmp_path)
