"""Tests for neurosim.datasets.tasks: copy / associative recall, bAbI-style stories, episodes."""
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset, default_collate

from neurosim.datasets.tasks import (AssociativeRecall, BabiTasks, CopyTask, EpisodeSampler,
                                     sequence_collate)


# ---------------------------------------------------------------------- copy
def test_copy_shapes_and_target_is_the_input_vectors():
    W, L = 5, 7
    data = CopyTask(n_samples=20, width=W, length=L, seed=3)
    x, target, mask = data[0]
    assert x.shape == (2 * L + 1, W + 1) and target.shape == (L, W) and mask.shape == (2 * L + 1,)
    for x, target, mask in data:
        assert torch.equal(target, x[:L, :W])                    # copy target = presented vectors
        assert x[L, W] == 1 and x[:L, W].sum() == 0 and x[L, :W].sum() == 0   # delimiter
        assert torch.equal(mask, torch.arange(2 * L + 1) > L)    # recall steps after the delimiter
        assert x[L + 1:].abs().sum() == 0                        # recall steps are blank
    assert set(torch.cat([t.flatten() for _, t, _ in data]).tolist()) == {0.0, 1.0}


def test_copy_variable_length():
    W, L = 4, 8
    data = CopyTask(n_samples=60, width=W, length=L, min_length=2, seed=1)
    seen = set()
    for x, target, mask in data:
        delim = torch.nonzero(x[:, W]).flatten()
        assert len(delim) == 1
        l = int(delim)
        seen.add(l)
        assert 2 <= l <= L and int(mask.sum()) == l
        assert torch.equal(torch.nonzero(mask).flatten(), torch.arange(l + 1, 2 * l + 1))
        assert torch.equal(target[:l], x[:l, :W]) and target[l:].abs().sum() == 0
        assert x[l + 1:].abs().sum() == 0
    assert len(seen) > 3


def test_copy_seeded_and_collate_time_first():
    a, b, c = CopyTask(8, 3, 4, seed=5), CopyTask(8, 3, 4, seed=5), CopyTask(8, 3, 4, seed=6)
    assert torch.equal(a.inputs, b.inputs) and not torch.equal(a.inputs, c.inputs)
    x, target, mask = next(iter(DataLoader(a, batch_size=8, collate_fn=sequence_collate)))
    assert x.shape == (9, 8, 4) and target.shape == (4, 8, 3) and mask.shape == (9, 8)
    assert torch.equal(x[:, 2], a[2][0])


@pytest.mark.parametrize("kwargs", [dict(width=0), dict(length=3, min_length=4), dict(n_samples=2.5)])
def test_copy_bad_input(kwargs):
    with pytest.raises(ValueError, match="CopyTask"):
        CopyTask(**kwargs)


# ---------------------------------------------------------------------- associative recall
def _parse_items(x, W, D):
    """Read the items and the query back from the raw channels (independent of the generator)."""
    items, t = [], 0
    while x[t, W] == 1:
        items.append(x[t + 1:t + 1 + D, :W])
        t += D + 1
    assert x[t, W + 1] == 1 and x[t + 1 + D, W + 1] == 1
    return items, x[t + 1:t + 1 + D, :W], t + 2 + D


def test_recall_target_is_the_item_after_the_query():
    W, D, n = 4, 3, 5
    data = AssociativeRecall(n_samples=40, width=W, item_len=D, n_items=n, min_items=2, seed=2)
    x, target, mask = data[0]
    assert x.shape == (n * (D + 1) + 2 * D + 2, W + 2) and target.shape == (D, W)
    counts = set()
    for x, target, mask in data:
        items, query, recall_start = _parse_items(x, W, D)
        counts.add(len(items))
        matches = [i for i, item in enumerate(items) if torch.equal(item, query)]
        assert len(matches) == 1 and matches[0] < len(items) - 1       # unique, not the last
        assert torch.equal(target, items[matches[0] + 1])
        assert torch.equal(torch.nonzero(mask).flatten(), torch.arange(recall_start, recall_start + D))
        assert x[recall_start:].abs().sum() == 0
    assert len(counts) > 1


def test_recall_seeded_and_bad_input():
    assert torch.equal(AssociativeRecall(5, seed=1).inputs, AssociativeRecall(5, seed=1).inputs)
    assert not torch.equal(AssociativeRecall(5, seed=1).inputs, AssociativeRecall(5, seed=2).inputs)
    with pytest.raises(ValueError, match="AssociativeRecall.n_items"):
        AssociativeRecall(n_items=1)
    with pytest.raises(ValueError, match="distinct items"):
        AssociativeRecall(width=1, item_len=1, n_items=3)


# ---------------------------------------------------------------------- bAbI
PLACES = {"bathroom", "hallway", "kitchen", "garden", "office", "bedroom"}


def _answer_from_story(lines, question):
    """A separate interpreter of the story text: where is the person / the object."""
    place, holder, at = {}, {}, {}
    for line in lines:
        words = line.split()
        if words[-1] in PLACES:                            # "<person> <verb> to the <place>"
            place[words[0]] = words[-1]
        elif words[1] in ("got", "grabbed", "took"):
            holder[words[-1]] = words[0]
            at.pop(words[-1], None)
        else:                                              # dropped: stays where its holder was
            assert holder.pop(words[-1]) == words[0]
            at[words[-1]] = place[words[0]]
    target = question.split()[-1]
    if target in place:
        return place[target]
    return place[holder[target]] if target in holder else at[target]


@pytest.mark.parametrize("task", [1, 2])
def test_babi_answer_entailed_by_story(task):
    S, L = 6, 7
    data = BabiTasks(task=task, n_samples=200, sentences=S, min_sentences=2, sentence_len=L, seed=task)
    story, question, answer = data[0]
    assert story.shape == (S, L) and question.shape == (L,) and answer.shape == ()
    kinds = set()
    for i in range(len(data)):
        story, question, answer = data[i]
        lines = [data.vocab.decode(s) for s in story if s.any()]
        assert all(not s.any() for s in story[len(lines):])             # padding sentences at the end
        q = data.vocab.decode(question)
        assert q.startswith("where is")
        assert data.vocab.decode(answer) == _answer_from_story(lines, q)
        kinds.update(line.split()[1] for line in lines)
        if task == 2:
            assert q.startswith("where is the")
    if task == 2:                                                      # grabs and drops occur
        assert kinds & {"got", "grabbed", "took"} and kinds & {"dropped", "discarded", "left"}


def test_babi_memnet_shapes_seeded_newest_first():
    from neurosim.plugins.memnet import MemNetConfig, MemN2N
    a = BabiTasks(task=2, n_samples=16, sentences=5, seed=4)
    b = BabiTasks(task=2, n_samples=16, sentences=5, seed=4)
    r = BabiTasks(task=2, n_samples=16, sentences=5, seed=4, newest_first=True)
    assert torch.equal(a.stories, b.stories) and torch.equal(a.answers, b.answers)
    assert torch.equal(r.stories, a.stories.flip(1)) and torch.equal(r.answers, a.answers)
    story, question, answer = default_collate([a[i] for i in range(16)])
    cfg = MemNetConfig(vocab_size=len(a.vocab), sentences=5, sentence_len=5, embed_dim=8, hops=2)
    assert MemN2N(cfg)(story, question).shape == (16, len(a.vocab))
    assert a.vocab.index("<pad>") == 0 and int(answer.min()) > 0
    with pytest.raises(ValueError, match="BabiTasks.task"):
        BabiTasks(task=3)
    with pytest.raises(ValueError, match="BabiTasks.sentence_len"):
        BabiTasks(sentence_len=3)


# ---------------------------------------------------------------------- episodes
def _labelled(n_classes=10, per_class=8):
    y = torch.arange(n_classes).repeat_interleave(per_class)
    x = torch.arange(len(y)).float().unsqueeze(1) * torch.ones(1, 2)    # x[:, 0] = sample id
    return x, y


@pytest.mark.parametrize("as_dataset", [False, True])
def test_episodes_n_way_k_shot(as_dataset):
    x, y = _labelled()
    data = TensorDataset(x, y) if as_dataset else (x, y)
    N, K, Q = 5, 2, 3
    sampler = EpisodeSampler(data, n_way=N, k_shot=K, q_queries=Q, episodes=20, seed=0)
    for ep in sampler:
        assert ep.support_x.shape == (N * K, 2) and ep.query_x.shape == (N * Q, 2)
        assert len(set(ep.classes.tolist())) == N
        sid, qid = ep.support_x[:, 0].long(), ep.query_x[:, 0].long()
        assert not set(sid.tolist()) & set(qid.tolist())               # disjoint support / query
        assert len(set(sid.tolist())) == N * K and len(set(qid.tolist())) == N * Q
        for ids, new in [(sid, ep.support_y), (qid, ep.query_y)]:
            assert torch.equal(torch.bincount(new, minlength=N), torch.full((N,), len(ids) // N))
            assert torch.equal(ep.classes[new], y[ids])                 # relabelling is consistent


def test_episodes_seeded_and_class_subset():
    x, y = _labelled()
    e1 = EpisodeSampler((x, y), 3, 1, 2, generator=torch.Generator().manual_seed(7)).sample()
    e2 = EpisodeSampler((x, y), 3, 1, 2, generator=torch.Generator().manual_seed(7)).sample()
    assert all(torch.equal(a, b) for a, b in zip(e1, e2))
    train = EpisodeSampler((x, y), 3, 1, 2, classes=[0, 1, 2, 3, 4], episodes=30, seed=1)
    assert set(torch.cat([ep.classes for ep in train]).tolist()) <= {0, 1, 2, 3, 4}
    with pytest.raises(ValueError, match="EpisodeSampler: n_way=4"):
        EpisodeSampler((x, y), 4, 1, 1, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="label 0 has 8 samples"):
        EpisodeSampler((x, y), 2, 5, 4, classes=[0, 1])
