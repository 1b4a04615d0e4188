"""Generated tasks for memory models (no files, no downloads): the NTM's copy and associative
recall (Graves, Wayne & Danihelka 2014, "Neural Turing Machines", sections 4.1 and 4.3), bAbI-style
stories for the memory network (Weston et al. 2015, "Towards AI-Complete Question Answering",
tasks 1 "single supporting fact" and 2 "two supporting facts") and N-way K-shot episodes over any
labelled set (Vinyals et al. 2016; Snell et al. 2017).

Everything is seeded: the same arguments give the same tensors.

* :class:`CopyTask`: L random binary vectors of width W, a delimiter step, L blank recall steps.
  A sample is ``(x [2L+1, W+1], target [L, W], mask [2L+1] bool)``; ``mask`` is True on the recall
  steps, so ``output[mask]`` (``[l, W]``) should equal ``target[:l]``.
* :class:`AssociativeRecall`: items of ``item_len`` vectors, each after a delimiter (channel W);
  then a query item between two query delimiters (channel W+1); the target is the item that
  followed the query item. ``(x [T, W+2], target [item_len, W], mask [T] bool)``.
* :class:`BabiTasks` with :class:`Vocabulary`: ``(story [S, L], question [L], answer [])`` int64
  word indices, 0 = padding, the shapes :class:`neurosim.plugins.memnet.MemN2N` takes.
* :class:`EpisodeSampler`: ``Episode(support_x [N*K, ...], support_y [N*K], query_x [N*Q, ...],
  query_y [N*Q], classes [N])``, labels relabelled 0..N-1.

Batches: :func:`sequence_collate` stacks copy / recall samples time first, ``x [T, B, C]``,
``target [L, B, W]``, ``mask [T, B]``; bAbI samples batch with ``default_collate`` (``story
[B, S, L]``, ``question [B, L]``, ``answer [B]``).

Example::

    >>> data = CopyTask(n_samples=64, width=8, length=5, seed=0)
    >>> x, target, mask = data[0]            # [11, 9], [5, 8], [11]
    >>> babi = BabiTasks(task=1, n_samples=100, sentences=4, seed=0)
    >>> story, question, answer = babi[0]    # [4, 5], [5], []
    >>> babi.vocab.decode(question)          # 'where is mary'
"""
from __future__ import annotations

from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch.utils.data import Dataset

__all__ = ["CopyTask", "AssociativeRecall", "sequence_collate", "Vocabulary", "BabiTasks",
           "Episode", "EpisodeSampler", "BABI_PEOPLE", "BABI_PLACES", "BABI_OBJECTS"]


def _positive_int(where: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}.{name} must be an int >= 1, got {value!r}")
    return value


def _length_range(where: str, name: str, value: int, minimum: Optional[int], floor: int = 1) -> int:
    lo = value if minimum is None else minimum
    if isinstance(lo, bool) or not isinstance(lo, int) or not floor <= lo <= value:
        raise ValueError(f"{where}.min_{name} must be an int in [{floor}, {name}={value}], got {minimum!r}")
    return lo


def _random_lengths(n: int, lo: int, hi: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(lo, hi + 1, (n,), generator=gen) if lo < hi else torch.full((n,), hi)


# ---------------------------------------------------------------------- NTM tasks
class CopyTask(Dataset):
    """Copy task (Graves et al. 2014, 4.1). A sample of length l (``l = length``, or drawn
    uniformly from ``[min_length, length]``) is, with T = 2 * length + 1 steps::

        x[t, :W] = b_t ~ Bernoulli(1/2)^W   t < l          (the vectors to copy)
        x[l, W]  = 1                                       (delimiter channel)
        x[t]     = 0                        l < t <= 2l    (recall steps; rest is padding)
        target[t] = b_t (t < l, else 0),    mask[t] = l < t <= 2l

    Shapes: ``x [2*length+1, W+1]`` float32, ``target [length, W]`` float32, ``mask [2*length+1]``
    bool with ``mask.sum() == l``."""

    def __init__(self, n_samples: int = 256, width: int = 8, length: int = 10,
                 min_length: Optional[int] = None, seed: int = 0):
        where = "CopyTask"
        for name, value in [("n_samples", n_samples), ("width", width), ("length", length)]:
            _positive_int(where, name, value)
        lo = _length_range(where, "length", length, min_length)
        gen = torch.Generator().manual_seed(seed)
        self.lengths = _random_lengths(n_samples, lo, length, gen)
        bits = (torch.rand(n_samples, length, width, generator=gen) < 0.5).float()
        steps = torch.arange(length)
        bits = bits * (steps[None, :] < self.lengths[:, None]).unsqueeze(-1)  # zero beyond l
        T = 2 * length + 1
        self.inputs = torch.zeros(n_samples, T, width + 1)
        self.inputs[:, :length, :width] = bits
        self.inputs[torch.arange(n_samples), self.lengths, width] = 1.0
        t = torch.arange(T)[None, :]
        self.masks = (t > self.lengths[:, None]) & (t <= 2 * self.lengths[:, None])
        self.targets = bits
        self.width, self.length = width, length

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index):
        return self.inputs[index], self.targets[index], self.masks[index]


class AssociativeRecall(Dataset):
    """Associative recall (Graves et al. 2014, 4.3). A sample holds n items (``n = n_items``, or
    drawn from ``[min_items, n_items]``), all distinct, each of ``item_len`` random binary vectors
    of width W. The layout, with D = ``item_len`` and channels W (item delimiter) and W+1 (query
    delimiter)::

        item i:   one step x[., W] = 1, then D steps of vectors        (i = 0 .. n-1)
        query:    x[., W+1] = 1, the D vectors of item q (q < n-1), x[., W+1] = 1
        recall:   D blank steps, mask True; target = item q+1

    Shapes, with T = n_items (D+1) + 2D + 2: ``x [T, W+2]`` float32, ``target [D, W]`` float32,
    ``mask [T]`` bool (D steps True); ``query_index [n_samples]`` holds q. Shorter samples are
    padded with zeros at the end."""

    def __init__(self, n_samples: int = 256, width: int = 6, item_len: int = 3, n_items: int = 6,
                 min_items: Optional[int] = None, seed: int = 0):
        where = "AssociativeRecall"
        for name, value in [("n_samples", n_samples), ("width", width), ("item_len", item_len),
                            ("n_items", n_items)]:
            _positive_int(where, name, value)
        if n_items < 2:
            raise ValueError(f"{where}.n_items must be >= 2 (the query needs a following item), got {n_items}")
        lo = _length_range(where, "items", n_items, min_items, floor=2)
        if 2 ** (width * item_len) < n_items:
            raise ValueError(f"{where}: width={width} x item_len={item_len} gives {2 ** (width * item_len)} "
                             f"distinct items, fewer than n_items={n_items}")
        gen = torch.Generator().manual_seed(seed)
        D, W = item_len, width
        T = n_items * (D + 1) + 2 * D + 2
        self.n_items = _random_lengths(n_samples, lo, n_items, gen)
        self.inputs = torch.zeros(n_samples, T, W + 2)
        self.targets = torch.zeros(n_samples, D, W)
        self.masks = torch.zeros(n_samples, T, dtype=torch.bool)
        self.query_index = torch.zeros(n_samples, dtype=torch.long)
        for s in range(n_samples):
            n = int(self.n_items[s])
            items = (torch.rand(n, D, W, generator=gen) < 0.5).float()
            while torch.unique(items.reshape(n, -1), dim=0).shape[0] < n:      # distinct items
                items = (torch.rand(n, D, W, generator=gen) < 0.5).float()
            q = int(torch.randint(0, n - 1, (1,), generator=gen))
            x = self.inputs[s]
            for i in range(n):
                start = i * (D + 1)
                x[start, W] = 1.0
                x[start + 1:start + 1 + D, :W] = items[i]
            t = n * (D + 1)
            x[t, W + 1] = 1.0
            x[t + 1:t + 1 + D, :W] = items[q]
            x[t + 1 + D, W + 1] = 1.0
            self.masks[s, t + 2 + D:t + 2 + 2 * D] = True
            self.targets[s] = items[q + 1]
            self.query_index[s] = q
        self.width, self.item_len = width, item_len

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index):
        return self.inputs[index], self.targets[index], self.masks[index]


def sequence_collate(samples):
    """Collate ``(x [T, C], target [L, W], mask [T])`` samples time first: ``(x [T, B, C],
    target [L, B, W], mask [T, B])``, the layout the Simulator takes."""
    if not samples or any(len(s) != 3 for s in samples):
        raise ValueError("tasks.sequence_collate: samples must be (x, target, mask) triples")
    x, target, mask = (torch.stack(parts, dim=1) for parts in zip(*samples))
    return x, target, mask


# ---------------------------------------------------------------------- bAbI-style stories
BABI_PEOPLE = ("mary", "john", "sandra", "daniel")
BABI_PLACES = ("bathroom", "hallway", "kitchen", "garden", "office", "bedroom")
BABI_OBJECTS = ("football", "apple", "milk")
_MOVE = ("moved", "went", "journeyed", "travelled")
_GRAB = ("got", "grabbed", "took")
_DROP = ("dropped", "discarded", "left")
_FUNCTION = ("to", "the", "where", "is")


class Vocabulary:
    """Word <-> index map; index 0 is the padding word ``"<pad>"`` (``MemN2N``'s padding index)."""

    PAD = "<pad>"

    def __init__(self, words: Sequence[str]):
        self.words: List[str] = [self.PAD] + sorted(set(words) - {self.PAD})
        self._index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def index(self, word: str) -> int:
        if word not in self._index:
            raise KeyError(f"tasks.Vocabulary: unknown word {word!r}")
        return self._index[word]

    def encode(self, sentence: str, length: int) -> torch.Tensor:
        """``"mary went to the kitchen"`` -> ``[length]`` int64, zero-padded at the end."""
        ids = [self.index(w) for w in sentence.split()]
        if len(ids) > length:
            raise ValueError(f"tasks.Vocabulary.encode: {sentence!r} has {len(ids)} words, more than length={length}")
        return torch.tensor(ids + [0] * (length - len(ids)), dtype=torch.long)

    def decode(self, indices) -> str:
        """Inverse of :meth:`encode`: padding dropped, ``[L]`` -> a string."""
        return " ".join(self.words[int(i)] for i in torch.as_tensor(indices).reshape(-1) if int(i) != 0)


class BabiTasks(Dataset):
    """bAbI-style question answering (Weston et al. 2015), generated from a small world of
    ``BABI_PEOPLE`` moving between ``BABI_PLACES`` and carrying ``BABI_OBJECTS``.

    * ``task=1`` (single supporting fact): sentences ``"<person> <moved|went|..> to the <place>"``;
      question ``"where is <person>"``; answer: the person's last place in the story.
    * ``task=2`` (two supporting facts): also ``"<person> <got|grabbed|took> the <object>"`` and
      ``"<person> <dropped|..> the <object>"``; question ``"where is the <object>"``; answer: the
      current place of the object's holder, or the place where it was dropped.

    A story has ``n`` sentences (``sentences``, or drawn from ``[min_sentences, sentences]``);
    only stories whose question has an answer are kept. ``newest_first=True`` stores the last
    sentence in slot 0 (the paper's reversed memory order); padding sentences are all zero and come
    after the story's sentences either way.

    Shapes: ``story [S, L]``, ``question [L]``, ``answer []``, int64 indices into ``vocab`` (0 =
    padding), S = ``sentences``, L = ``sentence_len`` (>= 5, the longest sentence)."""

    def __init__(self, task: int = 1, n_samples: int = 1000, sentences: int = 6,
                 min_sentences: Optional[int] = None, sentence_len: int = 5,
                 newest_first: bool = False, seed: int = 0):
        where = "BabiTasks"
        if task not in (1, 2):
            raise ValueError(f"{where}.task must be 1 or 2, got {task!r}")
        _positive_int(where, "n_samples", n_samples)
        _positive_int(where, "sentences", sentences)
        lo = _length_range(where, "sentences", sentences, min_sentences)
        if isinstance(sentence_len, bool) or not isinstance(sentence_len, int) or sentence_len < 5:
            raise ValueError(f"{where}.sentence_len must be an int >= 5 (the longest sentence), got {sentence_len!r}")
        self.vocab = Vocabulary(BABI_PEOPLE + BABI_PLACES + BABI_OBJECTS + _MOVE + _GRAB + _DROP + _FUNCTION)
        gen = torch.Generator().manual_seed(seed)
        lengths = _random_lengths(n_samples, lo, sentences, gen)
        self.stories = torch.zeros(n_samples, sentences, sentence_len, dtype=torch.long)
        self.questions = torch.zeros(n_samples, sentence_len, dtype=torch.long)
        self.answers = torch.zeros(n_samples, dtype=torch.long)
        self.texts: List[Tuple[List[str], str, str]] = []
        for s in range(n_samples):
            lines, question, answer = self._story(task, int(lengths[s]), gen)
            order = lines[::-1] if newest_first else lines
            for i, line in enumerate(order):
                self.stories[s, i] = self.vocab.encode(line, sentence_len)
            self.questions[s] = self.vocab.encode(question, sentence_len)
            self.answers[s] = self.vocab.index(answer)
            self.texts.append((lines, question, answer))
        self.task, self.lengths = task, lengths

    @staticmethod
    def _pick(options, gen):
        return options[int(torch.randint(0, len(options), (1,), generator=gen))]

    def _story(self, task: int, n: int, gen: torch.Generator):
        """One answerable story of n sentences: ``(lines, question, answer)`` as text."""
        while True:
            place = {}                     # person -> place
            holder, dropped = {}, {}       # object -> person / place where it was dropped
            lines = []
            for _ in range(n):
                person = self._pick(BABI_PEOPLE, gen)
                carried = [o for o, p in holder.items() if p == person]
                free = [o for o in BABI_OBJECTS if o not in holder]
                roll = float(torch.rand(1, generator=gen)) if task == 2 else 0.0
                if roll < 0.5 or person not in place:
                    where_to = self._pick([p for p in BABI_PLACES if p != place.get(person)], gen)
                    place[person] = where_to
                    lines.append(f"{person} {self._pick(_MOVE, gen)} to the {where_to}")
                elif carried and (roll < 0.7 or not free):
                    obj = self._pick(carried, gen)
                    del holder[obj]
                    dropped[obj] = place[person]
                    lines.append(f"{person} {self._pick(_DROP, gen)} the {obj}")
                elif free:
                    obj = self._pick(free, gen)
                    holder[obj] = person
                    dropped.pop(obj, None)
                    lines.append(f"{person} {self._pick(_GRAB, gen)} the {obj}")
                else:
                    where_to = self._pick([p for p in BABI_PLACES if p != place[person]], gen)
                    place[person] = where_to
                    lines.append(f"{person} {self._pick(_MOVE, gen)} to the {where_to}")
            if task == 1:
                person = self._pick(sorted(place), gen)
                return lines, f"where is {person}", place[person]
            known = sorted(set(holder) | set(dropped))
            if known:
                obj = self._pick(known, gen)
                answer = place[holder[obj]] if obj in holder else dropped[obj]
                return lines, f"where is the {obj}", answer

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, index):
        return self.stories[index], self.questions[index], self.answers[index]


# ---------------------------------------------------------------------- few-shot episodes
class Episode(NamedTuple):
    """One N-way K-shot episode: ``support_x [N*K, ...]``, ``support_y [N*K]``, ``query_x
    [N*Q, ...]``, ``query_y [N*Q]`` (labels 0..N-1, class-major order) and ``classes [N]``, the
    original label of each new label."""

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    classes: torch.Tensor


class EpisodeSampler:
    """N-way K-shot episodes with Q queries per class over a labelled set: ``data`` is a
    sequence of ``(x, y)`` pairs (a ``Dataset``) or a tuple of tensors ``(x [M, ...], y [M])``.

    Per episode: N classes are drawn without replacement from ``classes`` (default: every label
    with at least K + Q samples; pass a subset for meta-train / meta-test splits), relabelled
    0..N-1 in the drawn order; for each class K + Q distinct samples are drawn, the first K the
    support, the rest the queries (so support and query are disjoint). ``generator`` (a
    ``torch.Generator``; default seeded with ``seed``) makes the sequence of episodes reproducible.
    Iterating yields ``episodes`` episodes."""

    def __init__(self, data, n_way: int = 5, k_shot: int = 1, q_queries: int = 5,
                 classes: Optional[Sequence[int]] = None, episodes: int = 100,
                 generator: Optional[torch.Generator] = None, seed: int = 0):
        where = "EpisodeSampler"
        for name, value in [("n_way", n_way), ("k_shot", k_shot), ("q_queries", q_queries), ("episodes", episodes)]:
            _positive_int(where, name, value)
        if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
            self.x, labels = data
            if labels.dim() != 1 or labels.shape[0] != self.x.shape[0]:
                raise ValueError(f"{where}: need x [M, ...] and y [M], got {list(self.x.shape)} and {list(labels.shape)}")
            self._get = lambda i: self.x[i]
        else:
            self.x = None
            self._get = lambda i: data[i][0]
            labels = torch.tensor([int(data[i][1]) for i in range(len(data))], dtype=torch.long)
        labels = labels.long()
        self.by_class = {int(c): torch.nonzero(labels == c).flatten() for c in torch.unique(labels)}
        need = k_shot + q_queries
        if classes is None:
            classes = [c for c, idx in self.by_class.items() if len(idx) >= need]
        classes = sorted(int(c) for c in classes)
        for c in classes:
            if c not in self.by_class:
                raise ValueError(f"{where}.classes: label {c} is not in the data")
            if len(self.by_class[c]) < need:
                raise ValueError(f"{where}.classes: label {c} has {len(self.by_class[c])} samples, fewer than "
                                 f"k_shot + q_queries = {need}")
        if len(classes) < n_way:
            raise ValueError(f"{where}: n_way={n_way} but only {len(classes)} classes have >= {need} samples")
        self.classes = torch.tensor(classes, dtype=torch.long)
        self.n_way, self.k_shot, self.q_queries, self.episodes = n_way, k_shot, q_queries, episodes
        self.generator = generator if generator is not None else torch.Generator().manual_seed(seed)

    def sample(self) -> Episode:
        """Draw one episode (advances the generator)."""
        gen, K, Q = self.generator, self.k_shot, self.q_queries
        chosen = self.classes[torch.randperm(len(self.classes), generator=gen)[:self.n_way]]
        support, query = [], []
        for c in chosen.tolist():
            idx = self.by_class[c]
            pick = idx[torch.randperm(len(idx), generator=gen)[:K + Q]]
            support.append(pick[:K])
            query.append(pick[K:])
        s_idx, q_idx = torch.cat(support), torch.cat(query)
        label = torch.arange(self.n_way)
        return Episode(self._gather(s_idx), label.repeat_interleave(K),
                       self._gather(q_idx), label.repeat_interleave(Q), chosen)

    def _gather(self, index: torch.Tensor) -> torch.Tensor:
        if self.x is not None:
            return self.x[index]
        return torch.stack([torch.as_tensor(self._get(int(i))) for i in index])

    def __len__(self) -> int:
        return self.episodes

    def __iter__(self) -> Iterator[Episode]:
        for _ in range(self.episodes):
            yield self.sample()
